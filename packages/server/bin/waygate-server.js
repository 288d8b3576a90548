#!/usr/bin/env node
// The Waygate Server is written in TypeScript and runs from dist/, which `pnpm build` (tsc -b) makes.
// Inside the workspace it also runs from source, without a build:
//   node --conditions=@waygate/source --import tsx packages/server/src/bin.ts
const target = new URL('../dist/bin.js', import.meta.url)
try {
  await import(target.href)
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(target.pathname)) {
    process.stderr.write('error: the waygate server is not built (no dist/bin.js)\n' +
      'hint: run `pnpm build` at the repository root, or run it from source:\n' +
      '  node --conditions=@waygate/source --import tsx packages/server/src/bin.ts\n')
    process.exit(2)
  }
  throw err
}
