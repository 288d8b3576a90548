#!/usr/bin/env node
// The waygate CLI is written in TypeScript and runs from dist/, which `pnpm build` (tsc -b) makes.
// Inside the workspace it also runs from source, without a build:
//   node --import tsx packages/cli/src/bin.ts status
const target = new URL('../dist/bin.js', import.meta.url)
try {
  await import(target.href)
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(target.pathname)) {
    process.stderr.write('error: the waygate CLI is not built (no dist/bin.js)\n' +
      'hint: run `pnpm build` at the repository root (or `pnpm --filter @waygate/cli build`)\n')
    process.exit(1)
  }
  throw err
}
