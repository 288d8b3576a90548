import { realpathSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'

/**
 * True when the module whose `import.meta.url` is given was started directly (`node … basic.ts`)
 * rather than imported, e.g. by a test that only wants its `build()`.
 */
export function isEntryPoint (moduleUrl: string): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    // import.meta.url is the real path; argv[1] may go through a symlink
    return moduleUrl === pathToFileURL(realpathSync(script)).href
  } catch {
    return false
  }
}

/**
 * The Fastify logger options the examples use when started from the command line: `LOG_LEVEL`,
 * else `fallback` (`warn` keeps the demo output to what matters; `LOG_LEVEL=info` logs each request).
 */
export function exampleLogger (fallback = 'warn'): { level: string } {
  return { level: process.env.LOG_LEVEL ?? fallback }
}

function portFromEnv (): number {
  const raw = process.env.PORT ?? '3000'
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be an integer between 0 and 65535, got "${raw}"`)
  }
  return port
}

/**
 * Listens on `HOST`:`PORT` (default 127.0.0.1:3000), closes the app cleanly on Ctrl-C or
 * SIGTERM (so backends flush and release their files), and resolves the base URL.
 */
export async function serve (app: FastifyInstance): Promise<string> {
  const host = process.env.HOST ?? '127.0.0.1'
  await app.listen({ port: portFromEnv(), host })
  const { port } = app.server.address() as AddressInfo
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.close().then(() => process.exit(0), err => {
        console.error(err)
        process.exit(1)
      })
    })
  }
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`
}
