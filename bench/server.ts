/**
 * One benchmark server process. Started by bench/run.ts as a child, or by hand for profiling:
 *
 *   node --conditions=@waygate/source --import tsx bench/server.ts <variant> <port>
 *
 * Port 0 picks a free port. When started with an IPC channel (by run.ts) the server reports
 * `{ type: 'ready', port }` (or `{ type: 'skip', reason }`) through it and exits when the parent goes
 * away; it always prints `READY <port>` on stdout too.
 *
 * Every variant serves the same three routes, `GET /`, `GET /deprecated` and `GET /blocked`, each
 * returning the same small JSON, plus the unmanaged `GET /__cpu`, which reports this process's CPU
 * time so the runner can take differences over a measured interval (warm-up excluded).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction, type RouteOptions } from 'fastify'
import type { WaygateBackend } from '../packages/core/src/index.js'

const VARIANTS = ['bare', 'maplookup', 'waygate-active', 'waygate-deprecated', 'waygate-blocked', 'waygate-file'] as const
type Variant = typeof VARIANTS[number]

/** What `GET /__cpu` answers. */
interface CpuReport {
  variant: string
  backend: string
  pid: number
  /** process.cpuUsage(), microseconds since the process started. */
  user: number
  system: number
}

const BODY = { hello: 'world', ok: true }
const SUNSET = '2030-01-01T00:00:00Z'
const SUCCESSOR = '/v2/deprecated'

const variant = process.argv[2] as Variant | undefined
const port = Number(process.argv[3] ?? '0')
if (variant === undefined || !(VARIANTS as readonly string[]).includes(variant) || !Number.isInteger(port) || port < 0) {
  console.error(`usage: server.ts <${VARIANTS.join('|')}> <port>`)
  process.exit(2)
}

let tempDir: string | null = null
function cleanup (): void {
  if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true })
  tempDir = null
}
process.on('exit', cleanup)

function skip (reason: string): never {
  console.log(`SKIP ${reason}`)
  if (process.send !== undefined) {
    process.send({ type: 'skip', reason }, () => process.exit(0))
    // exit after the message is flushed; the callback above does it
    setTimeout(() => process.exit(0), 1000).unref()
  } else {
    process.exit(0)
  }
  // keep the type checker happy: process.exit never returns, but send's callback does it later
  throw new Error('skipped')
}

/** The floor: one Map.get of a key precomputed per route, in a per-route onRequest hook. */
function installMapLookup (app: FastifyInstance): void {
  const states = new Map<string, 'active' | 'blocked'>()
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url === undefined || route.url.startsWith('/__')) return
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const key = `${methods[0]!.toUpperCase()}:${route.url}`
    states.set(key, 'active')
    const hook = function mapLookup (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
      if (states.get(key) === 'blocked') {
        reply.code(503).send({ error: 'blocked' })
        return
      }
      done()
    }
    const current = route.onRequest
    route.onRequest = current === undefined ? [hook] : [hook, ...(Array.isArray(current) ? current : [current])]
  })
}

async function installWaygate (app: FastifyInstance, useFile: boolean): Promise<string> {
  const core = await import('../packages/core/src/index.js')
  const { waygate } = await import('../packages/fastify/src/index.js')
  let backend: WaygateBackend | undefined
  if (useFile) {
    // createFileBackend is being added to @waygate/core; skip cleanly while it is not exported
    const createFileBackend = (core as Record<string, unknown>).createFileBackend
    if (typeof createFileBackend !== 'function') skip('@waygate/core does not export createFileBackend yet')
    tempDir = mkdtempSync(join(tmpdir(), 'waygate-bench-'))
    backend = (createFileBackend as (options: { path: string }) => WaygateBackend)({
      path: join(tempDir, 'waygate.json')
    })
  }
  const engine = core.createEngine(backend === undefined ? {} : { backend })
  await app.register(waygate, { engine, closeEngine: true })
  return engine.backend.kind
}

async function main (v: Variant): Promise<void> {
  const app = Fastify({ logger: false })
  let backend = 'none'
  if (v === 'maplookup') installMapLookup(app)
  if (v.startsWith('waygate-')) backend = await installWaygate(app, v === 'waygate-file')

  const managed = v.startsWith('waygate-')
  const handler = async (): Promise<typeof BODY> => BODY
  app.get('/', handler)
  app.get('/deprecated', managed ? { config: { waygate: { deprecated: { sunset: SUNSET, successor: SUCCESSOR } } } } : {}, handler)
  app.get('/blocked', managed ? { config: { waygate: { maintenance: { reason: 'benchmark' } } } } : {}, handler)
  app.get('/__cpu', managed ? { config: { waygate: false } } : {}, async (): Promise<CpuReport> => {
    const usage = process.cpuUsage()
    return { variant: v, backend, pid: process.pid, user: usage.user, system: usage.system }
  })

  const address = await app.listen({ port, host: '127.0.0.1' })
  const actual = app.server.address()
  const bound = typeof actual === 'object' && actual !== null ? actual.port : port

  let closing = false
  const shutdown = (): void => {
    if (closing) return
    closing = true
    app.close().finally(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  if (process.send !== undefined) {
    process.on('disconnect', shutdown)
    process.send({ type: 'ready', port: bound })
  }
  console.log(`READY ${bound} ${v} ${address}`)
}

main(variant).catch(err => {
  if (err instanceof Error && err.message === 'skipped') return
  console.error(err)
  process.exit(1)
})
