/**
 * One benchmark server process. Started by bench/run.ts as a child, or by hand for profiling:
 *
 *   node --conditions=@waygate/source --import tsx bench/server.ts <variant> <port>
 *
 * Port 0 picks a free port. When started with an IPC channel (by run.ts) the server reports
 * `{ type: 'ready', port }` (or `{ type: 'skip', reason }`) through it and exits when the parent goes
 * away; it always prints `READY <port>` on stdout too. With BENCH_TWIN=first (or second) the process
 * also serves a bare app on a port of its own, built before (or after) the variant's, and reports
 * it as `barePort`: the runner's A in the same process as its X.
 *
 * Every variant serves the same four routes, `GET /`, `GET /deprecated`, `GET /blocked` and
 * `GET /limited`, each returning the same small JSON, plus the unmanaged `GET /__cpu`, which reports
 * this process's CPU time so the runner can take differences over a measured interval (warm-up
 * excluded). `/limited` carries the rate limit of the rate-limit variants (waygate's or
 * @fastify/rate-limit's); elsewhere it is an ordinary route.
 *
 * The Redis variants read the server's URL from BENCH_REDIS_URL (run.ts starts a private
 * redis-server and passes it). `waygate-postgres` uses BENCH_POSTGRES_URL, or else starts a private
 * PostgreSQL of its own (initdb + pg_ctl in a temp directory, unix socket only, fsync off), whose
 * processes are not this one: at exit it stops it and prints the CPU Postgres used and the
 * transactions it committed while this server ran.
 *
 * `waygate-service` is a service attached to a Waygate Server with `waygateService` (the SDK): its
 * state comes from the server's stream. The server runs in a process of its own, so its CPU is not
 * X's: the one at BENCH_WAYGATE_URL, or else a child this process starts (`server.ts waygate-server`).
 * `waygate-server` is that server, not a benchmarked variant: `createWaygateServer` (admin / secret,
 * memory backend, or BENCH_WAYGATE_BACKEND=file with BENCH_WAYGATE_FILE) plus the unmanaged
 * `GET /__count`, which reports the HTTP requests it has received (its own excluded), its open
 * service streams, CPU and memory (`?gc=1` collects garbage first when started with --expose-gc).
 */
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction, type RouteOptions, type RouteShorthandOptions } from 'fastify'
import type { RateLimitStore, WaygateBackend, WaygateLogger } from '../packages/core/src/index.js'
import type { CountReport } from './common.js'

const VARIANTS = [
  'bare', 'maplookup', 'waygate-active', 'waygate-metrics', 'waygate-deprecated', 'waygate-blocked', 'waygate-file', 'waygate-redis',
  'waygate-postgres', 'waygate-service',
  'waygate-rl-memory', 'redis-floor', 'waygate-rl-redis', 'waygate-rl-redis-leased', 'waygate-rl-429-memory', 'waygate-rl-429-redis',
  'frl-memory', 'frl-redis', 'frl-429-memory', 'frl-429-redis',
  // not a benchmarked variant: the Waygate Server that waygate-service (and bench/fleet.ts) attach to
  'waygate-server'
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
  /** waygate-service: the Waygate Server it is attached to (its own process), and how the service follows it. */
  waygateServer?: string
  sync?: { state: string, source: string, revision: number | null, reconnects: number }
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
/** Stops the private PostgreSQL of waygate-postgres, if it started one. */
let stopPostgres: (() => void) | null = null
function cleanup (): void {
  stopPostgres?.()
  stopPostgres = null
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

/** The directory of initdb and pg_ctl: `pg_config --bindir`, else the newest /usr/lib/postgresql/<v>/bin; null when none. */
function postgresBinDir (): string | null {
  const candidates: string[] = []
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  } catch {}
  try {
    for (const v of readdirSync('/usr/lib/postgresql').filter(d => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {}
  return candidates.find(dir => {
    try {
      accessSync(join(dir, 'pg_ctl'), constants.X_OK)
      return true
    } catch {
      return false
    }
  }) ?? null
}

/** CPU (µs) of every process of the cluster whose postmaster has `pid`, from /proc (Linux; 0 elsewhere). */
function clusterCpuUs (pid: number): number {
  let ticks = 0
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        // fields[1] is the parent pid; utime and stime are fields 14 and 15 of stat (11 and 12 here)
        if (Number(entry) === pid || Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12])
      } catch {}
    }
  } catch {}
  return ticks * 10_000 // USER_HZ is 100 on Linux
}

/**
 * waygate-postgres: BENCH_POSTGRES_URL, or a private PostgreSQL started here and stopped at exit
 * (as root it runs as the postgres user, else nobody: PostgreSQL refuses root).
 */
function postgresUrl (): string {
  const given = process.env.BENCH_POSTGRES_URL
  if (given !== undefined && given !== '') return given
  const bin = postgresBinDir()
  if (bin === null) skip('no PostgreSQL server binaries (pg_config --bindir or /usr/lib/postgresql/*/bin); set BENCH_POSTGRES_URL or install postgresql')
  let user: { uid: number, gid: number } | undefined
  if (process.getuid?.() === 0) {
    const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map(line => line.split(':'))
    const entry = passwd.find(f => f[0] === 'postgres') ?? passwd.find(f => f[0] === 'nobody')
    if (entry !== undefined) user = { uid: Number(entry[2]), gid: Number(entry[3]) }
  }
  const dir = mkdtempSync(join(tmpdir(), 'waygate-bench-pg-'))
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  const data = join(dir, 'data')
  const run = (file: string, args: string[]): void => {
    execFileSync(join(bin, file), args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' }, ...user })
  }
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'waygate', '-E', 'UTF8', '--locale=C', '--no-sync'])
  run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-o',
    `-k ${dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c shared_buffers=32MB`, 'start'])
  const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
  const url = `postgresql://waygate@/postgres?host=${encodeURIComponent(dir)}`
  stopPostgres = () => {
    const cpuMs = clusterCpuUs(postmaster) / 1000
    let commits = ''
    try {
      commits = execFileSync(join(bin, 'psql'), ['-h', dir, '-U', 'waygate', '-d', 'postgres', '-At', '-c', "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '' } }).trim()
    } catch {}
    console.error(`waygate-postgres: the private PostgreSQL used ${cpuMs.toFixed(0)} ms of CPU and committed ${commits || '?'} transactions while this server ran (start, registration and heartbeats included)`)
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    } catch {}
    rmSync(dir, { recursive: true, force: true })
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

/** The service name of waygate-service on the Waygate Server; its route keys there are `bench-service:GET:/`… */
const SERVICE_NAME = 'bench-service'
/** The Waygate Server's token key: fixed, so tokens survive a restart (bench/fleet.ts restarts it). */
const SERVER_SECRET = process.env.BENCH_WAYGATE_SECRET ?? 'waygate-bench-secret-key-0123456789'
const SELF = fileURLToPath(import.meta.url)

/** Starts `server.ts waygate-server` as a child (its own CPU, not ours) and resolves its URL. */
function startWaygateServerChild (): Promise<string> {
  const child = spawn(process.execPath, ['--expose-gc', '--conditions=@waygate/source', '--import', 'tsx', SELF, 'waygate-server', '0'], {
    env: process.env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  process.on('exit', () => { if (child.exitCode === null) child.kill('SIGKILL') })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', code => reject(new Error(`the Waygate Server exited before it was ready (code ${code})`)))
    child.once('message', (message: { type?: string, port?: number }) => {
      if (message.type === 'ready' && typeof message.port === 'number') resolve(`http://127.0.0.1:${message.port}`)
      else reject(new Error(`the Waygate Server sent ${JSON.stringify(message)}`))
    })
  })
}

let waygateServerUrl: string | undefined
let serviceStatus: (() => Promise<CpuReport['sync']>) | undefined

/** waygate-service: the `waygateService` plugin (the SDK) against a Waygate Server in another process. */
async function installService (app: FastifyInstance): Promise<Installed> {
  const given = process.env.BENCH_WAYGATE_URL
  waygateServerUrl = given === undefined || given === '' ? await startWaygateServerChild() : given
  const { waygateService } = await import('../packages/fastify/src/index.js')
  // variables: {} so that no WAYGATE_* of the caller's environment changes what is measured
  await app.register(waygateService, { serverUrl: waygateServerUrl, service: SERVICE_NAME, username: 'admin', password: 'secret', variables: {} })
  serviceStatus = async () => {
    const sync = (await app.waygate.status()).sync
    return sync === undefined ? undefined : { state: sync.state, source: sync.source, revision: sync.revision, reconnects: sync.reconnects }
  }
  return { backend: app.waygate.backend.kind, limiter: 'none', store: 'none' }
}

async function installWaygate (app: FastifyInstance, v: Variant): Promise<Installed> {
  const core = await import('../packages/core/src/index.js')
  const { waygate } = await import('../packages/fastify/src/index.js')
  let backend: WaygateBackend | undefined
  let store: RateLimitStore | undefined
  if (v === 'waygate-redis') {
    backend = core.createRedisBackend({ url: redisUrl() })
  } else if (v === 'waygate-postgres') {
    backend = core.createPostgresBackend({ connectionString: postgresUrl() })
  } else if (v === 'waygate-rl-redis' || v === 'waygate-rl-429-redis' || v === 'waygate-rl-redis-leased') {
    const redisStore = core.createRedisRateLimitStore({
      url: redisUrl(),
      logger: countingLogger,
      ...(v === 'waygate-rl-redis-leased' ? { consistency: 'leased' as const } : {}),
      // BENCH_LEASE_BLOCK: the leased store's largest block (default the store's)
      ...(v === 'waygate-rl-redis-leased' && process.env.BENCH_LEASE_BLOCK !== undefined ? { leaseBlock: Number(process.env.BENCH_LEASE_BLOCK) } : {})
    })
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
  // waygate-metrics: the plain active route with Prometheus metrics on (a bound counter per route, one inc per request)
  const metrics = v === 'waygate-metrics' ? { metrics: true } : {}
  await app.register(waygate, { engine, closeEngine: true, ...metrics, ...(store === undefined ? {} : { rateLimit: { store } }) })
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

/** One app of `v` with the four routes and `/__cpu`, not yet listening. */
async function buildApp (v: Variant): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  let installed: Installed = { backend: 'none', limiter: 'none', store: 'none' }
  if (v === 'maplookup') installMapLookup(app)
  if (v === 'waygate-service') installed = await installService(app)
  else if (v.startsWith('waygate-')) installed = await installWaygate(app, v)
  if (v.startsWith('frl-')) installed = await installFastifyRateLimit(app, v)
  if (v === 'redis-floor') installed = await installRedisFloor(app)

  const managed = v.startsWith('waygate-')
  const handler = async (): Promise<typeof BODY> => BODY
  app.get('/', handler)
  app.get('/deprecated', managed ? { config: { waygate: { deprecated: { sunset: SUNSET, successor: SUCCESSOR } } } } : {}, handler)
  app.get('/blocked', managed ? { config: { waygate: { maintenance: { reason: 'benchmark' } } } } : {}, handler)
  app.get('/limited', limitedOptions(v), handler)
  app.get('/__cpu', managed ? { config: { waygate: false } } : {}, async (request): Promise<CpuReport> => {
    const usage = process.cpuUsage()
    const report: CpuReport = { variant: v, ...installed, storeWarnings: v === 'bare' ? 0 : storeWarnings, pid: process.pid, user: usage.user, system: usage.system }
    if (v === 'waygate-service' && waygateServerUrl !== undefined) report.waygateServer = waygateServerUrl
    // only when asked (the runner's checks), never inside a measured interval's readings
    if ((request.query as { sync?: string }).sync === '1' && v === 'waygate-service' && serviceStatus !== undefined) report.sync = await serviceStatus()
    return report
  })
  return app
}

/**
 * The variant's app; with BENCH_TWIN=first or second also a bare app in this same process, built
 * before or after it, on a port of its own: the runner's A. Process-wide luck (JIT timing, memory
 * layout, CPU placement, the machine's drift) then weighs on A and X alike.
 */
async function main (v: Variant): Promise<void> {
  const twin = process.env.BENCH_TWIN
  // BENCH_TWIN_AS: the twin A is this variant instead of a bare app (to weigh two variants directly)
  const as = (process.env.BENCH_TWIN_AS ?? 'bare') as Variant
  if (!VARIANTS.includes(as) || as === 'waygate-server') throw new Error(`BENCH_TWIN_AS: ${as} is not a benchmarked variant`)
  const before = twin === 'first' ? await buildApp(as) : null
  const app = await buildApp(v)
  const after = twin === 'second' ? await buildApp(as) : null
  await announce(app, v, before ?? after)
}

/** Listens, reports ready (IPC and stdout), and shuts down on a signal or when the parent goes away. */
async function announce (app: FastifyInstance, label: string, bare: FastifyInstance | null = null): Promise<void> {
  const address = await app.listen({ port, host: '127.0.0.1' })
  const actual = app.server.address()
  const bound = typeof actual === 'object' && actual !== null ? actual.port : port
  let barePort: number | undefined
  if (bare !== null) {
    await bare.listen({ port: 0, host: '127.0.0.1' })
    barePort = (bare.server.address() as { port: number }).port
  }

  let closing = false
  const shutdown = (): void => {
    if (closing) return
    closing = true
    Promise.allSettled([app.close(), bare?.close()]).finally(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  if (process.send !== undefined) {
    process.on('disconnect', shutdown)
    process.send(barePort === undefined ? { type: 'ready', port: bound } : { type: 'ready', port: bound, barePort })
  }
  console.log(`READY ${bound} ${label} ${address}${barePort === undefined ? '' : ` bare ${barePort}`}`)
}

function kindOf (url: string): string {
  if (url.startsWith('/api/sdk/') && url.includes('/events')) return 'events'
  if (url.startsWith('/api/sdk/') && url.includes('/register')) return 'register'
  // what a service sends on a timer (its traffic rings, its callers sketches), not per request
  if (url.startsWith('/api/sdk/') && (url.includes('/traffic/') || url.includes('/callers/'))) return 'report'
  if (url.startsWith('/api/auth/login')) return 'login'
  if (url === '/api/routes' || url.startsWith('/api/routes?')) return 'routes'
  return 'other'
}

/** The Waygate Server the service variant and bench/fleet.ts attach to, counting what it receives. */
async function serveWaygateServer (): Promise<void> {
  const core = await import('../packages/core/src/index.js')
  const { createWaygateServer } = await import('../packages/server/src/index.js')
  const kind = process.env.BENCH_WAYGATE_BACKEND ?? 'memory'
  let backend: WaygateBackend
  if (kind === 'file') {
    const path = process.env.BENCH_WAYGATE_FILE
    if (path === undefined || path === '') {
      console.error('waygate-server: BENCH_WAYGATE_BACKEND=file needs BENCH_WAYGATE_FILE')
      process.exit(2)
    }
    backend = core.createFileBackend({ path })
  } else {
    backend = core.createMemoryBackend()
  }
  const app = await createWaygateServer({ backend, auth: { username: 'admin', password: 'secret' }, secretKey: SERVER_SECRET, dashboard: false })
  let requests = 0
  let openStreams = 0
  const byKind: Record<string, number> = {}
  // counted at the socket level, so every request is seen, whatever route (or none) it reaches
  app.server.on('request', (req, res) => {
    const url = req.url ?? ''
    if (url.startsWith('/__count')) return
    requests++
    const k = kindOf(url)
    byKind[k] = (byKind[k] ?? 0) + 1
    if (k === 'events') {
      openStreams++
      res.once('close', () => { openStreams-- })
    }
  })
  const gc = (globalThis as { gc?: () => void }).gc
  app.get('/__count', { schema: { hide: true } }, async (request): Promise<CountReport> => {
    if ((request.query as { gc?: string }).gc === '1' && gc !== undefined) {
      gc()
      gc()
    }
    const usage = process.cpuUsage()
    const memory = process.memoryUsage()
    return { requests, byKind: { ...byKind }, openStreams, pid: process.pid, user: usage.user, system: usage.system, rss: memory.rss, heapUsed: memory.heapUsed }
  })
  await announce(app, `waygate-server (${backend.kind})`)
}

;(variant === 'waygate-server' ? serveWaygateServer() : main(variant)).catch(err => {
  if (err instanceof Error && err.message === 'skipped') return
  console.error(err)
  process.exit(1)
})
