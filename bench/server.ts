/**
 * One benchmark server process. Started by bench/run.ts as a child, or by hand for profiling:
 *
 *   node --conditions=@waygate/source --import tsx bench/server.ts <variant> <port>
 *
 * Port 0 picks a free port. When started with an IPC channel (by run.ts) the server reports
 * `{ type: 'ready', port }` (or `{ type: 'skip', reason }`) through it and exits when the parent goes
 * away; it always prints `READY <port>` on stdout too.
 *
 * Every variant serves the same four routes, `GET /`, `GET /deprecated`, `GET /blocked` and
 * `GET /limited`, each returning the same small JSON, plus the unmanaged `GET /__cpu`, which reports
 * this process's CPU time so the runner can take differences over a measured interval (warm-up
 * excluded). `/limited` carries the rate limit of the rate-limit variants (waygate's or
 * @fastify/rate-limit's); elsewhere it is an ordinary route.
 *
 * The Redis variants read the server's URL from BENCH_REDIS_URL (run.ts starts a private
 * redis-server and passes it).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction, type RouteOptions, type RouteShorthandOptions } from 'fastify'
import type { RateLimitStore, WaygateBackend, WaygateLogger } from '../packages/core/src/index.js'

const VARIANTS = [
  'bare', 'maplookup', 'waygate-active', 'waygate-deprecated', 'waygate-blocked', 'waygate-file', 'waygate-redis',
  'waygate-rl-memory', 'redis-floor', 'waygate-rl-redis', 'waygate-rl-429-memory', 'waygate-rl-429-redis',
  'frl-memory', 'frl-redis', 'frl-429-memory', 'frl-429-redis'
] as const
type Variant = typeof VARIANTS[number]

/** What `GET /__cpu` answers. */
interface CpuReport {
  variant: string
  /** Lifecycle backend of waygate (`memory`, `file`, `redis`), or `none`. */
  backend: string
  /** Who rate limits `/limited`: `waygate`, `@fastify/rate-limit` or `none`. */
  limiter: string
  /** Where the rate limit counters live: `memory`, `redis`, or `none`. */
  store: string
  /** Warnings the waygate rate limit store logged (a degraded answer: Redis too slow or down). */
  storeWarnings: number
  pid: number
  /** process.cpuUsage(), microseconds since the process started. */
  user: number
  system: number
}

const BODY = { hello: 'world', ok: true }
const SUNSET = '2030-01-01T00:00:00Z'
const SUCCESSOR = '/v2/deprecated'
/** "Allowed" traffic: a limit far above anything the run sends, so every request passes and is counted. */
const HUGE_LIMIT = 1_000_000_000
/** "Blocked" traffic: after the first request of the day, every request is refused. */
const TINY_LIMIT = 1
const MINUTE_MS = 60_000
const DAY_MS = 86_400_000

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

/**
 * The floor of any exact Redis-backed limiter: a per-route `onRequest` hook on `/limited` that
 * makes one round trip (an `INCRBY` of one key) for each batch of requests, batched the way
 * waygate's store batches its checks. Requests made while one batch is on its way wait for the
 * next, which leaves when it is answered. No script, no key per client, no headers.
 */
async function installRedisFloor (app: FastifyInstance): Promise<Installed> {
  const { Redis } = await import('ioredis')
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 })
  await redis.ping()
  app.addHook('onClose', async () => { await redis.quit() })
  let waiting: HookHandlerDoneFunction[] = []
  let inflight = false
  let scheduled = false
  let gathered = 0
  let turns = 0
  const flush = (): void => {
    scheduled = false
    if (inflight || waiting.length === 0) return
    if (waiting.length > gathered && turns < 4) {
      // as the store does: while requests keep arriving, wait up to four more turns of the loop
      gathered = waiting.length
      turns++
      scheduled = true
      setImmediate(flush)
      return
    }
    gathered = 0
    turns = 0
    const batch = waiting
    waiting = []
    inflight = true
    const release = (): void => {
      inflight = false
      for (const done of batch) done()
      schedule()
    }
    redis.incrby('bench:floor', batch.length).then(release, release)
  }
  const schedule = (): void => {
    if (inflight || scheduled || waiting.length === 0) return
    scheduled = true
    setImmediate(flush)
  }
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url !== '/limited') return
    route.onRequest = [(_request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      waiting.push(done)
      schedule()
    }]
  })
  return { backend: 'none', limiter: 'floor', store: 'redis' }
}

function redisUrl (): string {
  const url = process.env.BENCH_REDIS_URL
  if (url === undefined || url === '') {
    console.error(`${variant}: set BENCH_REDIS_URL (run.ts starts a private redis-server and passes it)`)
    process.exit(2)
  }
  return url
}

/** Counts what the rate limit store warns about, so the runner can tell degraded answers happened. */
let storeWarnings = 0
const countingLogger: WaygateLogger = {
  debug: () => {},
  info: () => {},
  warn: () => { storeWarnings++ },
  error: () => { storeWarnings++ }
}

interface Installed {
  backend: string
  limiter: string
  store: string
}

async function installWaygate (app: FastifyInstance, v: Variant): Promise<Installed> {
  const core = await import('../packages/core/src/index.js')
  const { waygate } = await import('../packages/fastify/src/index.js')
  let backend: WaygateBackend | undefined
  let store: RateLimitStore | undefined
  if (v === 'waygate-redis') {
    backend = core.createRedisBackend({ url: redisUrl() })
  } else if (v === 'waygate-rl-redis' || v === 'waygate-rl-429-redis') {
    const redisStore = core.createRedisRateLimitStore({ url: redisUrl(), logger: countingLogger })
    // the plugin does not wait for the connection: without this the first checks would be answered degraded
    await redisStore.init()
    store = redisStore
  } else if (v === 'waygate-file') {
    // createFileBackend is being added to @waygate/core; skip cleanly while it is not exported
    const createFileBackend = (core as Record<string, unknown>).createFileBackend
    if (typeof createFileBackend !== 'function') skip('@waygate/core does not export createFileBackend yet')
    tempDir = mkdtempSync(join(tmpdir(), 'waygate-bench-'))
    backend = (createFileBackend as (options: { path: string }) => WaygateBackend)({
      path: join(tempDir, 'waygate.json')
    })
  }
  const engine = core.createEngine(backend === undefined ? {} : { backend })
  await app.register(waygate, { engine, closeEngine: true, ...(store === undefined ? {} : { rateLimit: { store } }) })
  const limited = v.startsWith('waygate-rl-')
  return { backend: engine.backend.kind, limiter: limited ? 'waygate' : 'none', store: limited ? app.waygateRateLimits.store.kind : 'none' }
}

/** @fastify/rate-limit on plain Fastify, only on the routes that declare `config.rateLimit`. */
async function installFastifyRateLimit (app: FastifyInstance, v: Variant): Promise<Installed> {
  const { default: rateLimit } = await import('@fastify/rate-limit')
  if (v === 'frl-redis' || v === 'frl-429-redis') {
    const { Redis } = await import('ioredis')
    // as its README suggests for Redis
    const redis = new Redis(redisUrl(), { connectTimeout: 500, maxRetriesPerRequest: 1 })
    await redis.ping()
    app.addHook('onClose', async () => { await redis.quit() })
    await app.register(rateLimit, { global: false, redis })
    return { backend: 'none', limiter: '@fastify/rate-limit', store: 'redis' }
  }
  await app.register(rateLimit, { global: false })
  return { backend: 'none', limiter: '@fastify/rate-limit', store: 'memory' }
}

/** The `/limited` route's options for this variant. */
function limitedOptions (v: Variant): RouteShorthandOptions {
  const blocked = v.includes('-429-')
  if (v.startsWith('waygate-rl-')) {
    const limit = blocked ? `${TINY_LIMIT}/day` : `${HUGE_LIMIT}/minute`
    return { config: { waygate: { rateLimit: { limit, algorithm: 'sliding_window' } } } }
  }
  if (v.startsWith('frl-')) {
    // @fastify/rate-limit has one algorithm, a fixed window
    return { config: { rateLimit: blocked ? { max: TINY_LIMIT, timeWindow: DAY_MS } : { max: HUGE_LIMIT, timeWindow: MINUTE_MS } } }
  }
  return {}
}

async function main (v: Variant): Promise<void> {
  const app = Fastify({ logger: false })
  let installed: Installed = { backend: 'none', limiter: 'none', store: 'none' }
  if (v === 'maplookup') installMapLookup(app)
  if (v.startsWith('waygate-')) installed = await installWaygate(app, v)
  if (v.startsWith('frl-')) installed = await installFastifyRateLimit(app, v)
  if (v === 'redis-floor') installed = await installRedisFloor(app)

  const managed = v.startsWith('waygate-')
  const handler = async (): Promise<typeof BODY> => BODY
  app.get('/', handler)
  app.get('/deprecated', managed ? { config: { waygate: { deprecated: { sunset: SUNSET, successor: SUCCESSOR } } } } : {}, handler)
  app.get('/blocked', managed ? { config: { waygate: { maintenance: { reason: 'benchmark' } } } } : {}, handler)
  app.get('/limited', limitedOptions(v), handler)
  app.get('/__cpu', managed ? { config: { waygate: false } } : {}, async (): Promise<CpuReport> => {
    const usage = process.cpuUsage()
    return { variant: v, ...installed, storeWarnings, pid: process.pid, user: usage.user, system: usage.system }
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
