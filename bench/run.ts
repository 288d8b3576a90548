/**
 * `pnpm bench`: server CPU per request of each configuration X, measured side by side with bare
 * Fastify (A) at the same fixed rate, as a ratio X/A; then saturation throughput and p99 as
 * context. Variants on Redis also get the CPU per request of a private redis-server, read from
 * /proc/<pid>/stat. Method: /work/shared/BENCHMARKING.md; how to read the output: bench/README.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon, { type Instance, type Result } from 'autocannon'
import { Redis } from 'ioredis'
import { freePort, readCount, type CountReport } from './common.js'

const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH_DIR)

// ---------------------------------------------------------------------------------------------
// settings

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`)
  return value
}

const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true'
// BENCH_PAIRS is the older name of BENCH_ROUNDS: each round measures one fresh pair per variant
const ROUNDS = Math.round(envNumber('BENCH_ROUNDS', envNumber('BENCH_PAIRS', QUICK ? 1 : 4)))
const METHOD: 'paced' | 'slices' = process.env.BENCH_METHOD === 'paced' ? 'paced' : 'slices'
const settings = {
  quick: QUICK,
  /** Requests per second sent to EACH of A and X during the side-by-side pairs. */
  rate: Math.round(envNumber('BENCH_RATE', 2000)),
  /** Seconds per side-by-side measurement. */
  duration: envNumber('BENCH_DURATION', QUICK ? 1 : 2),
  /**
   * Interleaved rounds: each round measures every variant once (the control and the floor
   * `controlRepeat` times, spread over the round), each time with a fresh A and X.
   */
  rounds: ROUNDS,
  /** Pairs per round of the A-vs-A control and of the `maplookup` floor, the two figures every verdict leans on. */
  controlRepeat: Math.round(envNumber('BENCH_CONTROL_REPEAT', QUICK ? 1 : 3)),
  connections: Math.round(envNumber('BENCH_CONNECTIONS', 10)),
  /** Seconds of load at the measuring rate on both fresh servers before the pair, not measured. */
  warmup: envNumber('BENCH_WARMUP', QUICK ? 1 : METHOD === 'slices' ? 1 : 1.5),
  /** Seconds per full-speed saturation run (one of A and one of X per pair, after the pair). */
  satDuration: envNumber('BENCH_SAT_DURATION', 0.5),
  /**
   * How a pair is measured. `slices`: A and X at full speed, one at a time, in alternating slices
   * (A X X A …), CPU per request summed over each one's slices. `paced`: both at once at `rate`.
   */
  method: METHOD,
  /** Slices per pair (`slices` method), half of them A's. */
  slices: Math.round(envNumber('BENCH_SLICES', QUICK ? 4 : 8)),
  /** Seconds per slice. */
  sliceDuration: envNumber('BENCH_SLICE_DURATION', QUICK ? 0.3 : 0.75),
  /** `slices` method: A is a bare app in X's own process (BENCH_TWIN=0: a process of its own). */
  twin: METHOD === 'slices' && process.env.BENCH_TWIN !== '0',
  /**
   * `slices` with the twin: what A is (BENCH_TWIN_AS, default `bare`). Another variant makes every
   * X/A a direct comparison with it, the control row included (it then weighs bare against it).
   */
  twinAs: process.env.BENCH_TWIN_AS ?? 'bare'
}

/** Target X/A CPU per request, from BENCHMARKING.md. */
interface Target {
  max: number
  why: string
}

type Group = 'lifecycle' | 'ratelimit'

interface Case {
  /** Variant started as X (bench/server.ts). */
  variant: string
  label: string
  group: Group
  /** Path requested from both A and X. */
  path: string
  /** The status that counts as a served request. */
  status: number
  /**
   * A status also accepted, up to 1% of the responses, and not counted as served: a tiny limit
   * lets a request through now and then.
   */
  tolerate?: number
  target: Target | null
  /** For @fastify/rate-limit rows: its X/A in BENCHMARKING.md, for comparison. */
  reference?: number
  /** Checks X's answers before measuring; throws when X does not behave as intended. */
  verify: (get: () => Promise<Probe>) => Promise<void>
  /** Lifecycle backend the server must report, when it matters. */
  backend?: string
  /** Rate limiter and store the server must report (rate-limit variants). */
  limiter?: string
  store?: string
  /** Runs against the private redis-server: a key matching this pattern must exist after verify. */
  redisKeys?: string
  /** Another variant whose Redis CPU per request this one's must stay below (BENCHMARKING.md). */
  redisBelow?: string
  /** The share of `redisBelow`'s Redis CPU per request to stay below; default 1. */
  redisBelowShare?: number
  /**
   * Attached to a Waygate Server (its own process, reported by X in `/__cpu`): the runner checks that
   * the state really comes from it and counts the requests it receives during the pairs (target 0).
   */
  controlPlane?: true
}

interface Probe {
  status: number
  headers: Headers
  body: string
}

const ACTIVE_TARGET: Target = { max: 1.05, why: 'lifecycle check on an active or deprecated route, every backend including Redis' }
const BLOCKED_TARGET: Target = { max: 1.10, why: 'blocked by lifecycle (503)' }
const RL_MEMORY_TARGET: Target = { max: 1.15, why: 'rate limit, memory store (@fastify/rate-limit: 1.34)' }
const RL_REDIS_TARGET: Target = { max: 1.50, why: 'rate limit, Redis store (@fastify/rate-limit: 1.96), plus Redis CPU below @fastify/rate-limit\'s' }
const RL_LEASED_TARGET: Target = { max: 1.15, why: 'Redis rate limit in leased mode (the memory store\'s cost), plus Redis CPU below a tenth of @fastify/rate-limit\'s' }
const RL_429_TARGET: Target = { max: 1.20, why: 'answering 429 (@fastify/rate-limit: 1.83 memory / 2.19 Redis)' }
const SERVICE_TARGET: Target = { max: 1.05, why: 'a service attached to a Waygate Server, active route (the embedded engine\'s target), plus zero requests to the server per request' }
const TARGETS = { active: ACTIVE_TARGET, service: SERVICE_TARGET, blocked: BLOCKED_TARGET, rateLimitMemory: RL_MEMORY_TARGET, rateLimitRedis: RL_REDIS_TARGET, rateLimitRedisLeased: RL_LEASED_TARGET, rateLimited429: RL_429_TARGET }
const BODY = JSON.stringify({ hello: 'world', ok: true })
/** Must match bench/server.ts: the "allowed" limit is far above what a run sends. */
const HUGE_LIMIT = 1_000_000_000

function expectBody200 (res: Probe): void {
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${res.body}`)
  if (res.body !== BODY) throw new Error(`unexpected body: ${res.body}`)
}

function expectPlain200 (res: Probe): void {
  expectBody200(res)
  if (res.headers.has('deprecation')) throw new Error('unexpected Deprecation header on an active route')
}

function expectDeprecated (res: Probe): void {
  expectBody200(res)
  const deprecation = res.headers.get('deprecation')
  const sunset = res.headers.get('sunset')
  const link = res.headers.get('link')
  if (deprecation === null || !/^@\d+$/.test(deprecation)) throw new Error(`missing or malformed Deprecation header: ${deprecation}`)
  if (sunset === null || Number.isNaN(Date.parse(sunset))) throw new Error(`missing or malformed Sunset header: ${sunset}`)
  if (link === null || !link.includes('rel="successor-version"')) throw new Error(`missing successor Link header: ${link}`)
}

function errorCode (res: Probe): unknown {
  try {
    return (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code
  } catch {
    throw new Error(`${res.status} body is not JSON: ${res.body}`)
  }
}

function expectBlocked (res: Probe): void {
  if (res.status !== 503) throw new Error(`expected 503, got ${res.status}: ${res.body}`)
  const code = errorCode(res)
  if (code !== 'MAINTENANCE_MODE') throw new Error(`expected error code MAINTENANCE_MODE, got ${String(code)}`)
}

/** Waygate's IETF draft headers: `RateLimit-Policy: "route";q=<quota>;w=<s>` and `RateLimit: "route";r=<left>;t=<s>`. */
function expectWaygateHeaders (res: Probe, quota: number, windowSeconds: number, remaining: (r: number) => boolean): void {
  const policy = res.headers.get('ratelimit-policy')
  const state = res.headers.get('ratelimit')
  if (policy !== `"route";q=${quota};w=${windowSeconds}`) throw new Error(`unexpected RateLimit-Policy header: ${policy}`)
  const match = state === null ? null : /^"route";r=(\d+);t=(\d+)$/.exec(state)
  if (match === null) throw new Error(`missing or malformed RateLimit header: ${state}`)
  if (!remaining(Number(match[1]))) throw new Error(`unexpected remaining count in RateLimit header: ${state}`)
}

/** @fastify/rate-limit's default headers: `x-ratelimit-limit`, `-remaining`, `-reset`. */
function expectFrlHeaders (res: Probe, quota: number, remaining: (r: number) => boolean): void {
  const limit = res.headers.get('x-ratelimit-limit')
  const left = res.headers.get('x-ratelimit-remaining')
  const reset = res.headers.get('x-ratelimit-reset')
  if (limit !== String(quota)) throw new Error(`unexpected x-ratelimit-limit header: ${limit}`)
  if (left === null || !/^\d+$/.test(left) || !remaining(Number(left))) throw new Error(`unexpected x-ratelimit-remaining header: ${left}`)
  if (reset === null || !/^\d+$/.test(reset)) throw new Error(`missing or malformed x-ratelimit-reset header: ${reset}`)
}

function expectRetryAfter (res: Probe): void {
  const retry = res.headers.get('retry-after')
  if (retry === null || !/^\d+$/.test(retry) || Number(retry) < 1) throw new Error(`missing or malformed Retry-After header: ${retry}`)
}

function expectWaygate429 (res: Probe): void {
  if (res.status !== 429) throw new Error(`expected 429, got ${res.status}: ${res.body}`)
  const code = errorCode(res)
  if (code !== 'RATE_LIMIT_EXCEEDED') throw new Error(`expected error code RATE_LIMIT_EXCEEDED, got ${String(code)}`)
  expectRetryAfter(res)
  expectWaygateHeaders(res, 1, 86_400, r => r === 0)
}

function expectFrl429 (res: Probe): void {
  if (res.status !== 429) throw new Error(`expected 429, got ${res.status}: ${res.body}`)
  let statusCode: unknown
  try {
    statusCode = (JSON.parse(res.body) as { statusCode?: unknown }).statusCode
  } catch {
    throw new Error(`429 body is not JSON: ${res.body}`)
  }
  if (statusCode !== 429) throw new Error(`unexpected 429 body: ${res.body}`)
  expectRetryAfter(res)
  expectFrlHeaders(res, 1, r => r === 0)
}

/** One request, one check. */
function once (check: (res: Probe) => void): Case['verify'] {
  return async get => { check(await get()) }
}

/** Allowed traffic: 200 with rate limit headers, and the count really goes down by one per request. */
function allowed (limiter: 'waygate' | 'frl'): Case['verify'] {
  return async get => {
    const seen: number[] = []
    for (let i = 0; i < 2; i++) {
      const res = await get()
      expectBody200(res)
      if (limiter === 'waygate') {
        expectWaygateHeaders(res, HUGE_LIMIT, 60, r => r < HUGE_LIMIT && r > HUGE_LIMIT - 1000)
        seen.push(Number(/r=(\d+)/.exec(res.headers.get('ratelimit') ?? '')?.[1]))
      } else {
        expectFrlHeaders(res, HUGE_LIMIT, r => r < HUGE_LIMIT && r > HUGE_LIMIT - 1000)
        seen.push(Number(res.headers.get('x-ratelimit-remaining')))
      }
    }
    if (seen[1] !== seen[0]! - 1) throw new Error(`the remaining count did not go down by one per request: ${seen.join(', ')}`)
  }
}

/** Blocked traffic (a limit of 1 per day): the first request passes with headers, the next ones get 429. */
function refused (limiter: 'waygate' | 'frl'): Case['verify'] {
  return async get => {
    const first = await get()
    expectBody200(first)
    if (limiter === 'waygate') expectWaygateHeaders(first, 1, 86_400, r => r === 0)
    else expectFrlHeaders(first, 1, r => r === 0)
    for (let i = 0; i < 2; i++) {
      const res = await get()
      if (limiter === 'waygate') expectWaygate429(res)
      else expectFrl429(res)
    }
  }
}

const RL_PATH = '/limited'
const CASES: Case[] = [
  { variant: 'bare', label: 'bare (A-vs-A control)', group: 'lifecycle', path: '/', status: 200, target: null, verify: once(expectPlain200) },
  { variant: 'maplookup', label: 'maplookup (floor)', group: 'lifecycle', path: '/', status: 200, target: null, verify: once(expectPlain200) },
  { variant: 'waygate-active', label: 'waygate-active', group: 'lifecycle', path: '/', status: 200, target: ACTIVE_TARGET, verify: once(expectPlain200), backend: 'memory' },
  { variant: 'waygate-metrics', label: 'waygate-metrics (active, metrics on)', group: 'lifecycle', path: '/', status: 200, target: ACTIVE_TARGET, verify: once(expectPlain200), backend: 'memory' },
  { variant: 'waygate-deprecated', label: 'waygate-deprecated', group: 'lifecycle', path: '/deprecated', status: 200, target: ACTIVE_TARGET, verify: once(expectDeprecated), backend: 'memory' },
  { variant: 'waygate-blocked', label: 'waygate-blocked', group: 'lifecycle', path: '/blocked', status: 503, target: BLOCKED_TARGET, verify: once(expectBlocked), backend: 'memory' },
  { variant: 'waygate-file', label: 'waygate-file (active)', group: 'lifecycle', path: '/', status: 200, target: ACTIVE_TARGET, verify: once(expectPlain200), backend: 'file' },
  {
    variant: 'waygate-redis',
    label: 'waygate-redis (active)',
    group: 'lifecycle',
    path: '/',
    status: 200,
    target: ACTIVE_TARGET,
    verify: once(expectPlain200),
    backend: 'redis',
    redisKeys: '{waygate}:routes'
  },
  // server.ts starts (and stops) a private PostgreSQL for X unless BENCH_POSTGRES_URL is set; requests never reach it
  { variant: 'waygate-postgres', label: 'waygate-postgres (active)', group: 'lifecycle', path: '/', status: 200, target: ACTIVE_TARGET, verify: once(expectPlain200), backend: 'postgres' },
  {
    variant: 'waygate-service',
    label: 'waygate-service (active)',
    group: 'lifecycle',
    path: '/',
    status: 200,
    target: SERVICE_TARGET,
    verify: once(expectPlain200),
    backend: 'remote',
    controlPlane: true
  },
  // rate limiting: each waygate variant next to its @fastify/rate-limit counterpart, so the two
  // are measured minutes apart at most
  {
    variant: 'waygate-rl-memory',
    label: 'waygate-rl-memory',
    group: 'ratelimit',
    path: RL_PATH,
    status: 200,
    target: RL_MEMORY_TARGET,
    verify: allowed('waygate'),
    backend: 'memory',
    limiter: 'waygate',
    store: 'memory'
  },
  { variant: 'frl-memory', label: 'frl-memory', group: 'ratelimit', path: RL_PATH, status: 200, target: null, reference: 1.34, verify: allowed('frl'), limiter: '@fastify/rate-limit', store: 'memory' },
  {
    variant: 'redis-floor',
    label: 'redis-floor (batched INCRBY)',
    group: 'ratelimit',
    path: RL_PATH,
    status: 200,
    target: null,
    verify: once(expectBody200),
    limiter: 'floor',
    store: 'redis',
    redisKeys: 'bench:floor'
  },
  {
    variant: 'waygate-rl-redis',
    label: 'waygate-rl-redis',
    group: 'ratelimit',
    path: RL_PATH,
    status: 200,
    target: RL_REDIS_TARGET,
    verify: allowed('waygate'),
    backend: 'memory',
    limiter: 'waygate',
    store: 'redis',
    redisKeys: 'waygate:rl:*',
    redisBelow: 'frl-redis'
  },
  {
    variant: 'waygate-rl-redis-leased',
    label: 'waygate-rl-redis-leased',
    group: 'ratelimit',
    path: RL_PATH,
    status: 200,
    target: RL_LEASED_TARGET,
    verify: allowed('waygate'),
    backend: 'memory',
    limiter: 'waygate',
    store: 'redis',
    redisKeys: 'waygate:rl:*',
    redisBelow: 'frl-redis',
    redisBelowShare: 0.1
  },
  {
    variant: 'frl-redis',
    label: 'frl-redis',
    group: 'ratelimit',
    path: RL_PATH,
    status: 200,
    target: null,
    reference: 1.96,
    verify: allowed('frl'),
    limiter: '@fastify/rate-limit',
    store: 'redis',
    redisKeys: 'fastify-rate-limit-*'
  },
  {
    variant: 'waygate-rl-429-memory',
    label: 'waygate-rl-429-memory',
    group: 'ratelimit',
    path: RL_PATH,
    status: 429,
    tolerate: 200,
    target: RL_429_TARGET,
    verify: refused('waygate'),
    backend: 'memory',
    limiter: 'waygate',
    store: 'memory'
  },
  {
    variant: 'frl-429-memory',
    label: 'frl-429-memory',
    group: 'ratelimit',
    path: RL_PATH,
    status: 429,
    tolerate: 200,
    target: null,
    reference: 1.83,
    verify: refused('frl'),
    limiter: '@fastify/rate-limit',
    store: 'memory'
  },
  {
    variant: 'waygate-rl-429-redis',
    label: 'waygate-rl-429-redis',
    group: 'ratelimit',
    path: RL_PATH,
    status: 429,
    tolerate: 200,
    target: RL_429_TARGET,
    verify: refused('waygate'),
    backend: 'memory',
    limiter: 'waygate',
    store: 'redis',
    redisKeys: 'waygate:rl:*',
    redisBelow: 'frl-429-redis'
  },
  {
    variant: 'frl-429-redis',
    label: 'frl-429-redis',
    group: 'ratelimit',
    path: RL_PATH,
    status: 429,
    tolerate: 200,
    target: null,
    reference: 2.19,
    verify: refused('frl'),
    limiter: '@fastify/rate-limit',
    store: 'redis',
    redisKeys: 'fastify-rate-limit-*'
  }
]

/** The control and the floor: measured `controlRepeat` times per round. */
function repeatOf (c: Case): number {
  return c.variant === 'bare' || c.variant === 'maplookup' ? settings.controlRepeat : 1
}

// ---------------------------------------------------------------------------------------------
// child processes

interface Server {
  variant: string
  port: number
  child: ChildProcess
  base: string
  /** waygate-service: the Waygate Server X is attached to. */
  waygateServer?: string
  /** With a twin: the bare app that shares X's process (the runner's A). */
  bare?: Server
}

const children = new Set<ChildProcess>()
const running = new Set<Instance>()
const cleanups: Array<() => void> = []

function killAll (signal: NodeJS.Signals): void {
  for (const instance of running) instance.stop()
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
  for (const cleanup of cleanups.splice(0)) cleanup()
}

process.on('exit', () => killAll('SIGKILL'))
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping servers`)
    killAll('SIGTERM')
    process.exit(130)
  })
}

class Skipped extends Error {}

/** Starts `server.ts variant`; with `twin`, a bare app in the same process too, built before or after X's. */
function startServer (variant: string, env: NodeJS.ProcessEnv, twin?: 'first' | 'second'): Promise<Server> {
  const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', 'tsx', join(BENCH_DIR, 'server.ts'), variant, '0'], {
    cwd: ROOT,
    env: twin === undefined ? env : { ...env, BENCH_TWIN: twin, BENCH_TWIN_AS: settings.twinAs },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server ${variant} did not start within 30 s`))
    }, 30_000)
    child.once('error', err => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`server ${variant} exited before it was ready (code ${code}, signal ${signal})`))
    })
    child.once('message', (message: { type?: string, port?: number, barePort?: number, reason?: string }) => {
      clearTimeout(timer)
      if (message.type === 'ready' && typeof message.port === 'number') {
        const server: Server = { variant, port: message.port, child, base: `http://127.0.0.1:${message.port}` }
        if (typeof message.barePort === 'number') server.bare = { variant: 'bare', port: message.barePort, child, base: `http://127.0.0.1:${message.barePort}` }
        if (twin !== undefined && server.bare === undefined) reject(new Error(`server ${variant} started no bare twin`))
        else resolve(server)
      } else if (message.type === 'skip') {
        reject(new Skipped(message.reason ?? 'skipped'))
      } else {
        reject(new Error(`server ${variant} sent an unexpected message: ${JSON.stringify(message)}`))
      }
    })
  })
}

async function stopServer (server: Server): Promise<void> {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>(resolve => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

// ---------------------------------------------------------------------------------------------
// the private redis-server

interface RedisServer {
  pid: number
  port: number
  url: string
  version: string
  /** The runner's own connection: flushes between variants, checks keys, reads command counts. */
  client: Redis
  child: ChildProcess
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
const CLOCK_TICKS = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return Number.isInteger(value) && value > 0 ? value : 100
  } catch {
    return 100
  }
})()

/** Whole CPU time (user + system, all threads) of a process, in µs, from /proc/<pid>/stat. */
function procCpuUs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after "pid (comm) ": state is field 3, utime 14 and stime 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  if (!Number.isFinite(ticks)) throw new Error(`cannot parse /proc/${pid}/stat: ${stat}`)
  return ticks * 1e6 / CLOCK_TICKS
}

/** Starts a private redis-server on a free loopback port, without persistence; killed at exit. */
async function startRedis (): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'waygate-bench-redis-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'ignore', 'inherit']
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', err => reject(new Skipped(`cannot start redis-server: ${err.message}`)))
  })
  await spawned
  const url = `redis://127.0.0.1:${port}`
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 })
  client.on('error', () => {})
  cleanups.unshift(() => client.disconnect())
  const deadline = performance.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at startup (code ${child.exitCode})`)
    try {
      if (client.status === 'wait') await client.connect()
      if (await client.ping() === 'PONG') break
    } catch (err) {
      if (performance.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s: ${(err as Error).message}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const info = await client.info('server')
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
  return { pid: child.pid!, port, url, version, client, child }
}

interface CommandCount {
  /** Every command Redis executed, those a script runs included. */
  commands: number
  /** Script calls (EVALSHA, EVAL, FCALL): each is one round trip. */
  scripts: number
}

/** Commands Redis has executed so far (INFO commandstats), the runner's own INFO calls left out. */
async function redisCommands (redis: RedisServer): Promise<CommandCount> {
  const info = await redis.client.info('commandstats')
  const count: CommandCount = { commands: 0, scripts: 0 }
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = match[1]!
    if (name === 'info') continue
    count.commands += Number(match[2])
    if (/^(evalsha|eval|fcall)(_ro)?$/.test(name)) count.scripts += Number(match[2])
  }
  return count
}

// ---------------------------------------------------------------------------------------------
// measuring

interface CpuReport {
  variant: string
  backend: string
  limiter: string
  store: string
  storeWarnings: number
  pid: number
  user: number
  system: number
  waygateServer?: string
  sync?: { state: string, source: string, revision: number | null, reconnects: number }
}

/** Polls X until `path` answers as `check` wants (after a change made on the Waygate Server). */
async function until (server: Server, path: string, what: string, check: (res: Probe) => boolean): Promise<number> {
  const t0 = performance.now()
  for (;;) {
    const res = await probe(server, path)
    if (check(res)) return performance.now() - t0
    if (performance.now() - t0 > 5000) throw new Error(`X did not ${what} within 5 s of the change on the Waygate Server (last: ${res.status} ${res.body})`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/**
 * waygate-service: proves the state comes from the Waygate Server. X must be connected with a
 * snapshot from the server; a disable through the server's REST API must make X answer 503
 * ROUTE_DISABLED on the measured path, and an enable 200 again, each within 5 s.
 */
async function verifyControlPlane (x: Server, xCpu: CpuReport, c: Case): Promise<string> {
  const serverUrl = xCpu.waygateServer
  if (serverUrl === undefined) throw new Error('X does not report the Waygate Server it is attached to')
  const res = await fetch(`${x.base}/__cpu?sync=1`)
  const { sync } = await res.json() as CpuReport
  if (sync?.state !== 'connected' || sync.source !== 'server') throw new Error(`X is not in sync with the Waygate Server: ${JSON.stringify(sync)}`)
  const login = await fetch(`${serverUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret' })
  })
  const { token } = await login.json() as { token: string }
  const key = encodeURIComponent(`bench-service:GET:${c.path}`)
  const post = async (action: string): Promise<void> => {
    const answer = await fetch(`${serverUrl}/api/routes/${key}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}'
    })
    if (answer.status !== 200) throw new Error(`${action} of ${c.path} on the Waygate Server answered ${answer.status}: ${await answer.text()}`)
  }
  await post('disable')
  const off = await until(x, c.path, 'answer 503 ROUTE_DISABLED', r => r.status === 503 && r.body.includes('ROUTE_DISABLED'))
  await post('enable')
  const on = await until(x, c.path, 'answer 200 again', r => r.status === 200)
  return serverUrl + ` (a disable through its REST API reached X in ${off.toFixed(0)} ms, the enable in ${on.toFixed(0)} ms, polled)`
}

async function readCpu (server: Server): Promise<CpuReport> {
  const res = await fetch(`${server.base}/__cpu`)
  if (res.status !== 200) throw new Error(`${server.variant}: /__cpu answered ${res.status}`)
  return await res.json() as CpuReport
}

async function probe (server: Server, path: string): Promise<Probe> {
  const res = await fetch(`${server.base}${path}`)
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/**
 * Runs autocannon against one server. With `latencies`, every response's latency (ms, fractional)
 * is collected there too: autocannon's own histogram has 1 ms resolution, too coarse for a local p99.
 */
function load (server: Server, path: string, duration: number, rate: number | undefined, latencies?: number[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    // sampleInt: autocannon ends a run at its next sample tick, 1 s apart by default, so a 0.5 s
    // run would last 1 s; at 100 ms a run lasts its duration to within 0.1 s
    const options = { url: `${server.base}${path}`, connections: settings.connections, duration, timeout: 10, sampleInt: 100 }
    const instance = autocannon(rate === undefined ? options : { ...options, overallRate: rate }, (err, result) => {
      running.delete(instance)
      if (err !== null) reject(err)
      else resolve(result)
    })
    if (latencies !== undefined) {
      instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => { latencies.push(ms) })
    }
    running.add(instance)
  })
}

function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

interface Served {
  /** Responses of the expected status. */
  count: number
  /** Responses of the tolerated status (not counted). */
  tolerated: number
}

/** Responses of the expected status; throws when anything else came back (beyond the tolerance). */
function served (result: Result, status: number, who: string, tolerate?: number): Served {
  const expected = result.statusCodeStats[String(status)]?.count ?? 0
  const tolerated = tolerate === undefined ? 0 : result.statusCodeStats[String(tolerate)]?.count ?? 0
  const other = Object.entries(result.statusCodeStats)
    .filter(([code]) => code !== String(status) && (code !== String(tolerate) || tolerated > 0.01 * (expected + tolerated)))
  if (result.errors > 0 || result.timeouts > 0 || other.length > 0) {
    const codes = other.map(([code, { count }]) => `${count}×${code}`).join(', ')
    throw new Error(`${who}: ${expected} responses of the expected ${status}, but also ${codes || 'no other statuses'}, ` +
      `${result.errors} errors, ${result.timeouts} timeouts`)
  }
  if (expected === 0) throw new Error(`${who}: no ${status} responses at all`)
  return { count: expected, tolerated }
}

interface PairSample {
  aCpuUs: number
  xCpuUs: number
  aRequests: number
  xRequests: number
  /** X's responses of the tolerated status (a 200 on a 429 variant), not in xRequests. */
  xTolerated: number
  aUsPerRequest: number
  xUsPerRequest: number
  ratio: number
  aRate: number
  xRate: number
  /** CPU of the private redis-server over the pair, µs (null without one). */
  redisCpuUs: number | null
  /** Commands Redis executed over the pair, for the Redis variants. */
  redisCommands: CommandCount | null
  /** Warnings of X's rate limit store during the pair (degraded answers). */
  storeWarnings: number
  /** waygate-service: HTTP requests the Waygate Server received during the pair (target 0), its periodic reports aside, and its CPU. */
  serverRequests: number | null
  /** waygate-service: the traffic and callers reports X sent on their timers meanwhile (not per request). */
  serverReports: number | null
  serverCpuUs: number | null
}

/** What is read around a pair besides A's and X's CPU: Redis's CPU and commands, the Waygate Server's count. */
interface SideReading {
  redisCpu: number | null
  commands: CommandCount | null
  server: CountReport | null
}

/**
 * Reads Redis and the Waygate Server around a pair. Redis's CPU is read inside the command count
 * (after it at the start, before it at the end), so the INFO call is not in the pair's Redis CPU.
 */
async function readSides (x: Server, c: Case, redis: RedisServer | null, at: 'start' | 'end'): Promise<SideReading> {
  const countCommands = redis !== null && c.redisKeys !== undefined
  const serverUrl = c.controlPlane === true ? x.waygateServer : undefined
  const commandsStart = at === 'start' && countCommands ? await redisCommands(redis) : null
  const server = at === 'end' && serverUrl !== undefined ? await readCount(serverUrl) : null
  const redisCpu = redis === null ? null : procCpuUs(redis.pid)
  const commandsEnd = at === 'end' && countCommands ? await redisCommands(redis) : null
  const serverStart = at === 'start' && serverUrl !== undefined ? await readCount(serverUrl) : null
  return { redisCpu, commands: commandsStart ?? commandsEnd, server: server ?? serverStart }
}

/** The pair's figures from the readings around it. */
function sideDelta (s0: SideReading, s1: SideReading): Pick<PairSample, 'redisCpuUs' | 'redisCommands' | 'serverRequests' | 'serverReports' | 'serverCpuUs'> {
  const [c0, c1, v0, v1] = [s0.commands, s1.commands, s0.server, s1.server]
  return {
    redisCpuUs: s0.redisCpu === null || s1.redisCpu === null ? null : s1.redisCpu - s0.redisCpu,
    redisCommands: c0 === null || c1 === null ? null : { commands: c1.commands - c0.commands, scripts: c1.scripts - c0.scripts },
    serverRequests: v0 === null || v1 === null ? null : requestsBeyondReports(v1) - requestsBeyondReports(v0),
    serverReports: v0 === null || v1 === null ? null : (v1.byKind.report ?? 0) - (v0.byKind.report ?? 0),
    serverCpuUs: v0 === null || v1 === null ? null : (v1.user + v1.system) - (v0.user + v0.system)
  }
}

async function measurePair (a: Server, x: Server, c: Case, xLoadFirst: boolean, redis: RedisServer | null): Promise<PairSample> {
  const sides0 = await readSides(x, c, redis, 'start')
  const [a0, x0] = await Promise.all([readCpu(a), readCpu(x)])
  // both at once; whose load generator starts first alternates from pair to pair
  let runA: Promise<Result>
  let runX: Promise<Result>
  if (!xLoadFirst) {
    runA = load(a, c.path, settings.duration, settings.rate)
    runX = load(x, c.path, settings.duration, settings.rate)
  } else {
    runX = load(x, c.path, settings.duration, settings.rate)
    runA = load(a, c.path, settings.duration, settings.rate)
  }
  const [ra, rx] = await Promise.all([runA, runX])
  const [a1, x1] = await Promise.all([readCpu(a), readCpu(x)])
  const sides1 = await readSides(x, c, redis, 'end')
  const aRequests = served(ra, 200, `A (bare) on ${c.path}`).count
  const xServed = served(rx, c.status, `X (${c.variant}) on ${c.path}`, c.tolerate)
  const xRequests = xServed.count
  const aCpuUs = (a1.user + a1.system) - (a0.user + a0.system)
  const xCpuUs = (x1.user + x1.system) - (x0.user + x0.system)
  const aUsPerRequest = aCpuUs / aRequests
  const xUsPerRequest = xCpuUs / xRequests
  return {
    aCpuUs,
    xCpuUs,
    aRequests,
    xRequests,
    xTolerated: xServed.tolerated,
    aUsPerRequest,
    xUsPerRequest,
    ratio: xUsPerRequest / aUsPerRequest,
    aRate: aRequests / ra.duration,
    xRate: xRequests / rx.duration,
    storeWarnings: x1.storeWarnings - x0.storeWarnings,
    ...sideDelta(sides0, sides1)
  }
}

/** The Waygate Server's requests but for the reports services send on a timer. */
function requestsBeyondReports (count: CountReport): number {
  return count.requests - (count.byKind.report ?? 0)
}

interface SatSample {
  reqPerSec: number
  p99Ms: number
}

/**
 * A and X at full speed, one at a time, in slices ordered A X X A A X X A … (or X first): a slow
 * drift of the machine weighs on both alike. At full speed a wake-up serves many requests, so the
 * CPU per request is the work of a request, not the cost of waking up for it, which at a paced rate
 * varies by ±30 % from one fresh process to the next. Also gives each one's req/s and p99.
 */
async function measureSlices (a: Server, x: Server, c: Case, xFirst: boolean, redis: RedisServer | null): Promise<{ pair: PairSample, satA: SatSample, satX: SatSample }> {
  const sides0 = await readSides(x, c, redis, 'start')
  const warnings0 = (await readCpu(x)).storeWarnings
  const sums = { a: { cpu: 0, requests: 0, seconds: 0, latencies: [] as number[] }, x: { cpu: 0, requests: 0, seconds: 0, latencies: [] as number[] } }
  let xTolerated = 0
  for (let i = 0; i < settings.slices; i++) {
    const onX = (((i + 1) >> 1) & 1) === (xFirst ? 0 : 1)
    const server = onX ? x : a
    const sum = onX ? sums.x : sums.a
    const before = await readCpu(server)
    const result = await load(server, c.path, settings.sliceDuration, undefined, sum.latencies)
    const after = await readCpu(server)
    const got = onX ? served(result, c.status, `X (${c.variant}) on ${c.path}`, c.tolerate) : served(result, 200, `A (bare) on ${c.path}`)
    if (onX) xTolerated += got.tolerated
    sum.cpu += (after.user + after.system) - (before.user + before.system)
    sum.requests += got.count
    sum.seconds += result.duration
  }
  const sides1 = await readSides(x, c, redis, 'end')
  const aUsPerRequest = sums.a.cpu / sums.a.requests
  const xUsPerRequest = sums.x.cpu / sums.x.requests
  const pair: PairSample = {
    aCpuUs: sums.a.cpu,
    xCpuUs: sums.x.cpu,
    aRequests: sums.a.requests,
    xRequests: sums.x.requests,
    xTolerated,
    aUsPerRequest,
    xUsPerRequest,
    ratio: xUsPerRequest / aUsPerRequest,
    aRate: sums.a.requests / sums.a.seconds,
    xRate: sums.x.requests / sums.x.seconds,
    storeWarnings: (await readCpu(x)).storeWarnings - warnings0,
    ...sideDelta(sides0, sides1)
  }
  return {
    pair,
    satA: { reqPerSec: pair.aRate, p99Ms: percentile(sums.a.latencies, 0.99) },
    satX: { reqPerSec: pair.xRate, p99Ms: percentile(sums.x.latencies, 0.99) }
  }
}

async function saturate (server: Server, c: Case, status: number, who: string): Promise<SatSample> {
  const latencies: number[] = []
  const result = await load(server, c.path, settings.satDuration, undefined, latencies)
  const { count } = served(result, status, `${who} saturation on ${c.path}`, who === 'X' ? c.tolerate : undefined)
  return { reqPerSec: count / result.duration, p99Ms: percentile(latencies, 0.99) }
}

// ---------------------------------------------------------------------------------------------
// statistics and output

function median (values: number[]): number {
  const sorted = [...values].sort((p, q) => p - q)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

interface Summary {
  median: number
  min: number
  max: number
}

function summarize (values: number[]): Summary {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

/** Redis's share of a variant, over all its pairs. */
interface RedisUse {
  /**
   * Redis CPU over all pairs ÷ X's requests over all pairs, µs. Pooled rather than a median of
   * pairs: /proc counts in ticks (10 ms), about 1 µs/req within one 5 s pair at 2000 req/s.
   */
  usPerRequest: number
  /** The same per pair. */
  pairs: Summary
  /** Redis commands per X request, those run by scripts included. */
  commandsPerRequest: number
  /** Script calls (round trips) per X request. */
  scriptsPerRequest: number
}

interface CaseResult {
  variant: string
  label: string
  group: Group
  path: string
  expectedStatus: number
  target: Target | null
  reference: number | null
  pairs: PairSample[]
  ratio: Summary
  aUsPerRequest: number
  xUsPerRequest: number
  /** Only for the variants that talk to Redis. */
  redis: RedisUse | null
  /** Redis CPU per request while this variant did not use it (its idle floor), when Redis ran. */
  redisIdleUsPerRequest: number | null
  /** Warnings of X's rate limit store after verification (degraded answers: Redis too slow or down). */
  storeWarnings: number
  tolerated: number
  saturation: { a: SatSample[], x: SatSample[], aReqPerSec: number, xReqPerSec: number, aP99Ms: number, xP99Ms: number }
  versusControl?: 'below' | 'inside' | 'above'
  verdict?: string
  redisVerdict?: string
  /** waygate-service: what the Waygate Server received and spent during the pairs. */
  server: { url: string, requests: number, reports: number, perRequest: number, cpuUsPerRequest: number, check: string } | null
  serverVerdict?: string
  /** Median seconds one fresh pair took, process start and stop included. */
  seconds: number
  /** Pairs measured (each with fresh processes). */
  rounds: number
}

/** What one fresh pair of processes gives: the measured pair and one saturation run of each. */
interface PairRun {
  pair: PairSample
  satA: SatSample
  satX: SatSample
  /** Seconds the whole pair took, process start and stop included. */
  seconds: number
  /** waygate-service, first round: what the REST check found. */
  controlCheck: string | null
  waygateServer: string | null
}

/**
 * One measurement with processes of its own: starts a fresh A and X (in the order `order` says),
 * checks that both answer as intended, warms them at the measuring rate, measures one pair at the
 * same fixed rate, then one saturation run of each, one at a time, and stops both. A per-process
 * bias (JIT luck, CPU placement, which load generator got going first) is drawn anew here, so the
 * median over rounds cancels it instead of tilting every pair of a variant the same way.
 */
async function runPair (c: Case, redis: RedisServer | null, order: PairOrder, full: boolean): Promise<PairRun> {
  const t0 = performance.now()
  if (c.redisKeys !== undefined) {
    if (redis === null) throw new Skipped('no redis-server')
    await redis.client.flushall() // every Redis pair starts from an empty database
  }
  const env = redis === null ? process.env : { ...process.env, BENCH_REDIS_URL: redis.url }
  let started: Array<PromiseSettledResult<Server>>
  if (settings.twin) {
    // one process: X's app and a bare A, which of the two is built first rotating
    const [both] = await Promise.allSettled([startServer(c.variant, env, order.xStartsFirst ? 'second' : 'first')])
    started = both.status === 'fulfilled' ? [{ status: 'fulfilled', value: both.value.bare! }, both] : [both, both]
  } else {
    const first = order.xStartsFirst ? startServer(c.variant, env) : startServer('bare', env)
    const second = order.xStartsFirst ? startServer('bare', env) : startServer(c.variant, env)
    started = await Promise.allSettled(order.xStartsFirst ? [second, first] : [first, second])
  }
  const up = started.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  try {
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const [a, x] = up as [Server, Server]
    let controlCheck: string | null = null

    // does each server answer as intended?
    const [aCpu, xCpu] = await Promise.all([readCpu(a), readCpu(x)])
    if (aCpu.variant !== (settings.twin ? settings.twinAs : 'bare')) throw new Error(`A reports variant ${aCpu.variant}`)
    if (xCpu.variant !== c.variant) throw new Error(`X reports variant ${xCpu.variant}, expected ${c.variant}`)
    if (c.backend !== undefined && xCpu.backend !== c.backend) throw new Error(`${c.variant} runs on backend ${xCpu.backend}, expected ${c.backend}`)
    if (c.limiter !== undefined && xCpu.limiter !== c.limiter) throw new Error(`${c.variant} is rate limited by ${xCpu.limiter}, expected ${c.limiter}`)
    if (c.store !== undefined && xCpu.store !== c.store) throw new Error(`${c.variant} keeps its counters in ${xCpu.store}, expected ${c.store}`)
    expectPlain200(await probe(a, c.path))
    try {
      await c.verify(() => probe(x, c.path))
      if (redis !== null && c.redisKeys !== undefined) {
        const keys = await redis.client.keys(c.redisKeys)
        if (keys.length === 0) throw new Error(`no Redis key matches ${c.redisKeys}: it does not use the private redis-server`)
      }
      if (c.controlPlane === true) {
        x.waygateServer = xCpu.waygateServer
        // the REST round trip through the Waygate Server once per variant; later pairs check the sync only
        if (full) {
          controlCheck = await verifyControlPlane(x, xCpu, c)
          console.log(`  attached to the Waygate Server at ${controlCheck}`)
          // the probes above were X's first requests: the path must still answer as intended
          await c.verify(() => probe(x, c.path))
        } else {
          const res = await fetch(`${x.base}/__cpu?sync=1`)
          const { sync } = await res.json() as CpuReport
          if (sync?.state !== 'connected' || sync.source !== 'server') throw new Error(`X is not in sync with the Waygate Server: ${JSON.stringify(sync)}`)
        }
      }
    } catch (err) {
      throw new Error(`${c.variant} on ${c.path} does not answer as intended: ${(err as Error).message}`)
    }

    if (settings.method === 'slices') {
      // warm-up, not measured: full speed, one at a time, as measured
      for (const s of order.xLoadFirst ? [x, a] : [a, x]) await load(s, c.path, settings.warmup / 2, undefined)
      const sliced = await measureSlices(a, x, c, order.xLoadFirst, redis)
      return { ...sliced, seconds: (performance.now() - t0) / 1000, controlCheck, waygateServer: x.waygateServer ?? null }
    }

    // warm-up, not measured: the measuring rate on both at once. Not full speed: for the first
    // seconds of paced load after full-speed load a server spends 1.5–3× its steady CPU per request
    await Promise.all([load(a, c.path, settings.warmup, settings.rate), load(x, c.path, settings.warmup, settings.rate)])
    const pair = await measurePair(a, x, c, order.xLoadFirst, redis)

    // saturation last, one server at a time, the order alternating
    let satA: SatSample
    let satX: SatSample
    if (order.xSaturatesFirst) {
      satX = await saturate(x, c, c.status, 'X')
      satA = await saturate(a, c, 200, 'A')
    } else {
      satA = await saturate(a, c, 200, 'A')
      satX = await saturate(x, c, c.status, 'X')
    }
    return { pair, satA, satX, seconds: (performance.now() - t0) / 1000, controlCheck, waygateServer: x.waygateServer ?? null }
  } finally {
    await Promise.all(up.map(stopServer))
  }
}

/** Which process starts first, whose load generator starts first, who saturates first: a 2×2×2 rotation. */
interface PairOrder {
  xStartsFirst: boolean
  xLoadFirst: boolean
  xSaturatesFirst: boolean
}

// n-th pair of a variant: every four pairs see each combination of start and load order once
function orderOf (n: number): PairOrder {
  return { xStartsFirst: (n & 1) === 1, xLoadFirst: (n & 2) === 2, xSaturatesFirst: ((n + (n >> 1)) & 1) === 1 }
}

/** Folds the pairs of one variant, over every round, into its result. */
function summarizeCase (c: Case, runs: PairRun[], redis: RedisServer | null): CaseResult {
  const pairs = runs.map(r => r.pair)
  const satA = runs.map(r => r.satA)
  const satX = runs.map(r => r.satX)
  const storeWarnings = pairs.reduce((sum, p) => sum + p.storeWarnings, 0)
  const ratio = summarize(pairs.map(p => p.ratio))
  const xTotal = pairs.reduce((sum, p) => sum + p.xRequests, 0)
  const redisTotal = pairs.reduce((sum, p) => sum + (p.redisCpuUs ?? 0), 0)
  let redisUse: RedisUse | null = null
  if (redis !== null && c.redisKeys !== undefined) {
    redisUse = {
      usPerRequest: redisTotal / xTotal,
      pairs: summarize(pairs.map(p => p.redisCpuUs! / p.xRequests)),
      commandsPerRequest: pairs.reduce((sum, p) => sum + p.redisCommands!.commands, 0) / xTotal,
      scriptsPerRequest: pairs.reduce((sum, p) => sum + p.redisCommands!.scripts, 0) / xTotal
    }
  }
  const controlCheck = runs.find(r => r.controlCheck !== null)?.controlCheck ?? ''
  const url = runs.find(r => r.waygateServer !== null)?.waygateServer ?? ''
  return {
    variant: c.variant,
    label: c.label,
    group: c.group,
    path: c.path,
    expectedStatus: c.status,
    target: c.target,
    reference: c.reference ?? null,
    pairs,
    ratio,
    aUsPerRequest: median(pairs.map(p => p.aUsPerRequest)),
    xUsPerRequest: median(pairs.map(p => p.xUsPerRequest)),
    redis: redisUse,
    redisIdleUsPerRequest: redis !== null && c.redisKeys === undefined ? redisTotal / xTotal : null,
    server: c.controlPlane === true
      ? {
          url,
          requests: pairs.reduce((sum, p) => sum + p.serverRequests!, 0),
          reports: pairs.reduce((sum, p) => sum + p.serverReports!, 0),
          perRequest: pairs.reduce((sum, p) => sum + p.serverRequests!, 0) / xTotal,
          cpuUsPerRequest: pairs.reduce((sum, p) => sum + p.serverCpuUs!, 0) / xTotal,
          check: controlCheck
        }
      : null,
    storeWarnings,
    tolerated: pairs.reduce((sum, p) => sum + p.xTolerated, 0),
    saturation: {
      a: satA,
      x: satX,
      aReqPerSec: median(satA.map(s => s.reqPerSec)),
      xReqPerSec: median(satX.map(s => s.reqPerSec)),
      aP99Ms: median(satA.map(s => s.p99Ms)),
      xP99Ms: median(satX.map(s => s.p99Ms))
    },
    seconds: median(runs.map(r => r.seconds)),
    rounds: runs.length
  }
}

/** One line per measured pair, as it comes. */
function printPair (c: Case, run: PairRun, round: number, order: PairOrder): void {
  const sample = run.pair
  const slow = Math.min(sample.aRate, sample.xRate) < settings.rate * 0.9
  const serverNote = sample.serverRequests === null
    ? ''
    : `, Waygate Server: ${sample.serverRequests} requests, ${(sample.serverCpuUs! / 1000).toFixed(0)} ms CPU`
  const redisNote = serverNote + (sample.redisCpuUs === null || c.redisKeys === undefined
    ? ''
    : `, Redis ${(sample.redisCpuUs / sample.xRequests).toFixed(2)} µs/req, ${(sample.redisCommands!.scripts / sample.xRequests).toFixed(2)} scripts ` +
      `+ ${((sample.redisCommands!.commands - sample.redisCommands!.scripts) / sample.xRequests).toFixed(2)} commands/req`)
  process.stdout.write(`  r${round + 1} ${pad(c.variant, 22)} X/A ${sample.ratio.toFixed(3)} ` +
    `(A ${sample.aUsPerRequest.toFixed(1)} µs/req @ ${Math.round(sample.aRate)}/s, ` +
    `X ${sample.xUsPerRequest.toFixed(1)} µs/req @ ${Math.round(sample.xRate)}/s${redisNote}); ` +
    `sat A ${Math.round(run.satA.reqPerSec)} / X ${Math.round(run.satX.reqPerSec)} req/s; ` +
    `${order.xStartsFirst ? 'X' : 'A'} started first, ${order.xLoadFirst ? 'X' : 'A'}'s load first; ${run.seconds.toFixed(1)} s` +
    `${sample.xTolerated > 0 ? `  (${sample.xTolerated}× ${c.tolerate} tolerated)` : ''}` +
    `${sample.storeWarnings > 0 ? '  WARNING: the rate limit store answered degraded' : ''}` +
    `${slow ? '  WARNING: below 90% of the requested rate, the machine may be saturated' : ''}\n`)
}

function pad (text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width)
}

function table (rows: string[][], rightAligned: Set<number>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  const line = (r: string[]): string => r.map((cell, i) => pad(cell, widths[i]!, rightAligned.has(i))).join('  ')
  return [line(rows[0]!), widths.map(w => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/**
 * The control band: A and A are identical, so their true ratio is 1 and every pair's deviation from
 * 1 is noise. The band is 1 ± the largest such deviation.
 */
interface Band {
  halfWidth: number
  pairs: Summary
}

function judge (results: CaseResult[]): Band | null {
  const control = results.find(r => r.variant === 'bare')
  const band = control === undefined
    ? null
    : { halfWidth: Math.max(...control.pairs.map(p => Math.abs(p.ratio - 1))), pairs: control.ratio }
  for (const r of results) {
    if (band !== null && r !== control) {
      const m = r.ratio.median
      r.versusControl = m > 1 + band.halfWidth ? 'above' : m < 1 - band.halfWidth ? 'below' : 'inside'
    }
    const c = CASES.find(k => k.variant === r.variant)
    if (c?.redisBelow !== undefined && r.redis !== null) {
      const other = results.find(k => k.variant === c.redisBelow)?.redis
      r.redisVerdict = other === undefined || other === null
        ? `n/a (${c.redisBelow} not run)`
        : r.redis.usPerRequest < other.usPerRequest * (c.redisBelowShare ?? 1) ? 'PASS' : 'OVER'
    }
    if (r.server !== null) r.serverVerdict = r.server.requests === 0 ? 'server 0 req PASS' : `server ${r.server.requests} req OVER`
    if (r.target === null) continue
    if (r.ratio.median <= r.target.max) r.verdict = 'PASS'
    else if (band !== null && r.ratio.median <= 1 + band.halfWidth) r.verdict = 'PASS (noise)'
    else r.verdict = 'OVER'
  }
  return band
}

function report (results: CaseResult[], skipped: Array<{ variant: string, reason: string }>, redis: RedisServer | null, loadBefore: number[]): Band | null {
  const band = judge(results)
  const f2 = (n: number): string => n.toFixed(2)
  const rows = [['X', 'X/A CPU/req', 'min–max', 'n', 'µs/req A / X', 'vs control', 'Redis µs/req (scripts, cmds)', 'sat req/s A / X', 'p99 ms A / X', 'target', 'verdict']]
  for (const r of results) {
    let verdict = r.verdict === undefined ? '—' : r.redisVerdict === undefined ? r.verdict : `${r.verdict}; Redis ${r.redisVerdict}`
    if (r.serverVerdict !== undefined) verdict += `; ${r.serverVerdict}`
    rows.push([
      r.label,
      r.ratio.median.toFixed(3),
      `${f2(r.ratio.min)}–${f2(r.ratio.max)}`,
      String(r.rounds),
      `${r.aUsPerRequest.toFixed(1)} / ${r.xUsPerRequest.toFixed(1)}`,
      r.versusControl ?? (r.variant === 'bare' && band !== null ? `±${f2(band.halfWidth)}` : '?'),
      r.redis === null ? '—' : `${f2(r.redis.usPerRequest)} (${f2(r.redis.scriptsPerRequest)}, ${f2(r.redis.commandsPerRequest)})`,
      `${Math.round(r.saturation.aReqPerSec)} / ${Math.round(r.saturation.xReqPerSec)}`,
      `${r.saturation.aP99Ms.toFixed(2)} / ${r.saturation.xP99Ms.toFixed(2)}`,
      r.target !== null ? `≤ ${f2(r.target.max)}` : r.reference !== null ? `ref ${f2(r.reference)}` : '—',
      verdict
    ])
  }
  for (const s of skipped) rows.push([s.variant, 'skipped', '', '', '', '', '', '', '', '', s.reason])
  const method = settings.method === 'slices'
    ? `${settings.twin ? `A ${settings.twinAs === 'bare' ? 'a bare app' : `a ${settings.twinAs} app (BENCH_TWIN_AS)`} in X's own fresh process` : 'a fresh A and X'}, ${settings.slices} alternating full-speed slices of ${settings.sliceDuration} s ` +
      `(half each) after ${settings.warmup / 2} s of warm-up each, ${settings.connections} connections`
    : `a fresh A and X: ${settings.warmup} s warm-up and ${settings.duration} s measured at ${settings.rate} req/s to each of A and X, ` +
      `${settings.connections} connections; then one ${settings.satDuration} s saturation run of each`
  console.log(`\nwaygate benchmark — ${settings.rounds} interleaved rounds (control and floor ${settings.controlRepeat}× per round); each pair: ` +
    `${method}; every column is a median over the pairs`)
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ` +
    `load average at start ${loadBefore.map(l => l.toFixed(2)).join(' ')}, now ${loadavg().map(l => l.toFixed(2)).join(' ')}` +
    `${redis === null ? '' : `; private redis-server ${redis.version} on port ${redis.port}`}\n`)
  console.log(table(rows, new Set([1, 2, 3, 4, 6, 7, 8])))
  if (settings.quick) console.log('\nQUICK run: a smoke test that everything answers as intended; too few pairs to judge by.')

  const tolerated = results.filter(r => r.tolerated > 0)
  if (tolerated.length > 0) {
    console.log(`\nTolerated: ${tolerated.map(r => `${r.variant} ${r.tolerated}× 200`).join(', ')} during the pairs (a limit of 1/day lets one through now and then).`)
  }
  for (const r of results) {
    if (r.server === null) continue
    const served = r.pairs.reduce((sum, p) => sum + p.xRequests, 0)
    console.log(`\n${r.variant}: the Waygate Server received ${r.server.requests} HTTP requests during the pairs, while X served ${served} ` +
      `(${r.server.perRequest.toFixed(4)} per request; target 0), and ${r.server.reports} traffic or callers reports X sends on a timer (every 10 s, whatever the load). ` +
      `Its own process (not in X/A) spent ${(r.server.cpuUsPerRequest * served / 1000).toFixed(0)} ms ` +
      'of CPU meanwhile, in bursts that follow no request: the streams\' heartbeats and the records they write. ' +
      'Checked before measuring: attached to ' + r.server.check + '.')
  }
  const degraded = results.filter(r => r.storeWarnings > 0)
  if (degraded.length > 0) {
    console.log(`\nWARNING: degraded rate limit answers (Redis over its 50 ms timeout) in ${degraded.map(r => r.variant).join(', ')}: ` +
      'those requests were allowed without waiting for Redis.')
  }

  const pairsOfLimiters = [['waygate-rl-memory', 'frl-memory'], ['waygate-rl-redis', 'frl-redis'], ['waygate-rl-redis-leased', 'frl-redis'],
    ['waygate-rl-429-memory', 'frl-429-memory'], ['waygate-rl-429-redis', 'frl-429-redis']]
  const compared = pairsOfLimiters.flatMap(([w, f]) => {
    const rw = results.find(r => r.variant === w)
    const rf = results.find(r => r.variant === f)
    return rw === undefined || rf === undefined ? [] : [[rw, rf] as const]
  })
  if (compared.length > 0) {
    console.log('\nwaygate vs @fastify/rate-limit in this run (X/A CPU per request; Redis µs per request):')
    for (const [rw, rf] of compared) {
      const redisPart = rw.redis === null || rf.redis === null
        ? ''
        : `; Redis ${f2(rw.redis.usPerRequest)} vs ${f2(rf.redis.usPerRequest)} µs/req, ` +
          `${f2(rw.redis.scriptsPerRequest)} vs ${f2(rf.redis.scriptsPerRequest)} script calls/req, ` +
          `${f2(rw.redis.commandsPerRequest)} vs ${f2(rf.redis.commandsPerRequest)} commands/req (script-run ones included)`
      console.log(`  ${pad(rw.variant, 21)} ${rw.ratio.median.toFixed(3)} vs ${rf.variant} ${rf.ratio.median.toFixed(3)}${redisPart}`)
    }
  }

  console.log('\nTargets (BENCHMARKING.md, X/A CPU per request, median):')
  console.log(`  ≤ ${f2(ACTIVE_TARGET.max)}  ${ACTIVE_TARGET.why} (waygate-active, -deprecated, -file, -redis)`)
  console.log(`  ≤ ${f2(SERVICE_TARGET.max)}  ${SERVICE_TARGET.why} (waygate-service)`)
  console.log(`  ≤ ${f2(BLOCKED_TARGET.max)}  ${BLOCKED_TARGET.why} (waygate-blocked)`)
  console.log(`  ≤ ${f2(RL_MEMORY_TARGET.max)}  ${RL_MEMORY_TARGET.why} (waygate-rl-memory)`)
  console.log(`  ≤ ${f2(RL_REDIS_TARGET.max)}  ${RL_REDIS_TARGET.why} (waygate-rl-redis)`)
  console.log(`  ≤ ${f2(RL_LEASED_TARGET.max)}  ${RL_LEASED_TARGET.why} (waygate-rl-redis-leased)`)
  console.log(`  ≤ ${f2(RL_429_TARGET.max)}  ${RL_429_TARGET.why} (waygate-rl-429-memory, -429-redis)`)
  console.log('  "ref" rows: @fastify/rate-limit\'s X/A in BENCHMARKING.md (measured at 5000 req/s), to compare with its X/A here.')
  if (redis !== null) {
    const idle = results.filter(r => r.redisIdleUsPerRequest !== null)
    const idleUs = idle.reduce((sum, r) => sum + r.redisIdleUsPerRequest!, 0) / Math.max(1, idle.length)
    console.log(`Redis µs/req: the private redis-server's CPU (utime + stime from /proc/${redis.pid}/stat, ${CLOCK_TICKS} ticks/s) ` +
      `over all pairs ÷ X's requests (pooled: one tick is ${1000 / CLOCK_TICKS} ms). In parentheses, per request: script calls ` +
      '(EVALSHA, i.e. round trips) and all commands Redis executed, those run inside scripts included (INFO commandstats).')
    if (idle.length > 0) {
      console.log(`  Idle floor (same figure while the variant does not use Redis, mean over ${idle.length} variants): ${f2(idleUs)} µs/req.`)
    }
    console.log('  "Redis PASS" = below the @fastify/rate-limit counterpart\'s Redis µs/req in this run (leased: below a tenth of it).')
  }
  if (band !== null) {
    const lo = f2(1 - band.halfWidth)
    const hi = f2(1 + band.halfWidth)
    console.log(`A-vs-A control band: ${lo}–${hi} (1 ± the largest deviation of an A/A pair, ` +
      `which ranged ${f2(band.pairs.min)}–${f2(band.pairs.max)}); a median inside it is "no measurable cost".`)
    console.log(`Verdict: PASS = median ≤ target; PASS (noise) = above target but ≤ ${hi}; OVER = above both.`)
    if (band.halfWidth > 0.10) {
      console.log('WARNING: the control band is wider than ±10%: this run was noisier than usual, ' +
        'rerun (or raise BENCH_ROUNDS) before trusting verdicts.')
    }
  }
  const copy = (variant: string, name: string): string => {
    const r = results.find(k => k.variant === variant)
    return r === undefined
      ? `  ${name}: not run`
      : `  ${name}: median ${r.ratio.median.toFixed(3)} (min–max ${r.ratio.min.toFixed(3)}–${r.ratio.max.toFixed(3)}, ${r.rounds} fresh pairs); ` +
        `saturation A / X ${Math.round(r.saturation.aReqPerSec)} / ${Math.round(r.saturation.xReqPerSec)} req/s, ` +
        `p99 ${r.saturation.aP99Ms.toFixed(2)} / ${r.saturation.xP99Ms.toFixed(2)} ms`
  }
  console.log(`\nFor docs/performance.md (run of ${new Date().toISOString().slice(0, 16)}Z, load average now ${loadavg()[0]!.toFixed(2)}):`)
  console.log(copy('bare', 'control (bare vs bare)  '))
  console.log(copy('maplookup', 'floor (maplookup)       '))
  console.log('  goal over three consecutive full runs: control 1.00 ± 0.03, floor 1.03 ± 0.04')
  return band
}

// ---------------------------------------------------------------------------------------------

/** `fleet` in BENCH_ONLY: bench/fleet.ts (propagation and fan-out), which a full run does after the CPU pairs. */
const FLEET = 'fleet'

function selectedCases (): { cases: Case[], fleet: boolean } {
  const only = process.env.BENCH_ONLY
  if (only === undefined || only === '') return { cases: CASES, fleet: true }
  const wanted = new Set(only.split(',').map(s => s.trim()).filter(s => s !== ''))
  const fleet = wanted.delete(FLEET)
  // the control always runs with any CPU variant; BENCH_ONLY=fleet alone runs no CPU pairs
  if (wanted.size === 0 && fleet) return { cases: [], fleet }
  wanted.add('bare')
  const unknown = [...wanted].filter(v => !CASES.some(c => c.variant === v))
  if (unknown.length > 0) {
    throw new Error(`BENCH_ONLY: unknown variant(s) ${unknown.join(', ')} (known: ${CASES.map(c => c.variant).join(', ')}, ${FLEET})`)
  }
  return { cases: CASES.filter(c => wanted.has(c.variant)), fleet }
}

/** BENCH_TWIN_AS must name a benchmarked variant, checked before any server starts (as BENCH_ONLY is). */
function checkTwinAs (): void {
  if (!CASES.some(c => c.variant === settings.twinAs)) {
    throw new Error(`BENCH_TWIN_AS: unknown variant ${settings.twinAs} (known: ${CASES.map(c => c.variant).join(', ')})`)
  }
}

/** Runs bench/fleet.ts as a child (its own Waygate Server and 200 service connections); rejects if it fails. */
function runFleet (): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', 'tsx', join(BENCH_DIR, 'fleet.ts')], {
      cwd: ROOT,
      env: process.env,
      stdio: 'inherit'
    })
    children.add(child)
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      children.delete(child)
      if (code === 0) resolve()
      else reject(new Error(`bench/fleet.ts failed (code ${code}, signal ${signal})`))
    })
  })
}

/** Seconds one fresh pair takes, roughly: about 2 s to start, check and stop both servers, plus the loads. */
function estimate (): number {
  return settings.method === 'slices'
    ? 1.5 + settings.warmup + settings.slices * (settings.sliceDuration + 0.05)
    : 2 + settings.warmup + settings.duration + 2 * settings.satDuration
}

/**
 * The order of one round: every variant once, the control and the floor `controlRepeat` times
 * spread over it; odd rounds run backwards, so no variant always sits at the same point of the run.
 */
function schedule (cases: Case[], round: number): Case[] {
  const once = cases.filter(c => repeatOf(c) === 1)
  const repeated = cases.filter(c => repeatOf(c) > 1)
  const list = [...once]
  for (const c of repeated) {
    const n = repeatOf(c)
    for (let k = n - 1; k >= 0; k--) list.splice(Math.floor(k * once.length / n), 0, c)
  }
  return round % 2 === 0 ? list : list.reverse()
}

async function main (): Promise<void> {
  const startedAt = new Date()
  const { cases, fleet } = selectedCases()
  checkTwinAs()
  if (cases.length === 0) {
    await runFleet()
    return
  }
  const loadBefore = loadavg()
  console.log(`waygate bench${settings.quick ? ' (quick)' : ''}: ${JSON.stringify(settings)}`)
  const pairsPerRound = cases.reduce((sum, c) => sum + repeatOf(c), 0)
  console.log(`${cases.length} variants, ${settings.rounds} interleaved rounds of ${pairsPerRound} pairs, ` +
    `about ${(settings.rounds * pairsPerRound * estimate() / 60).toFixed(1)} minutes` +
    `${fleet ? `, then bench/fleet.ts (about ${settings.quick ? 1 : 2} more)` : ''}; ` +
    `load average ${loadBefore.map(l => l.toFixed(2)).join(' ')}`)
  if (loadBefore[0]! > availableParallelism() / 2) {
    console.log(`NOTE: load average is ${loadBefore[0]!.toFixed(2)} before starting: something else is busy, expect a wide control band`)
  }
  const results: CaseResult[] = []
  const skipped: Array<{ variant: string, reason: string }> = []
  let failure: Error | null = null
  let band: Band | null = null
  let redis: RedisServer | null = null
  let redisSkip: string | null = null
  try {
    if (cases.some(c => c.redisKeys !== undefined)) {
      try {
        redis = await startRedis()
        console.log(`private redis-server ${redis.version}: pid ${redis.pid}, ${redis.url} (no persistence; stopped at exit)`)
      } catch (err) {
        if (!(err instanceof Skipped)) throw err
        redisSkip = err.message
        console.log(`NOTE: ${err.message}; the Redis variants are skipped`)
      }
    }
    const runs = new Map<Case, PairRun[]>(cases.map(c => [c, []]))
    const dropped = new Set<Case>()
    const runStart = performance.now()
    for (let round = 0; round < settings.rounds; round++) {
      const order = schedule(cases, round)
      console.log(`\nround ${round + 1}/${settings.rounds}: ${order.length} pairs, each with a fresh A (bare) and X; ` +
        `load average ${loadavg()[0]!.toFixed(2)}, ${((performance.now() - runStart) / 60_000).toFixed(1)} min so far`)
      for (const c of order) {
        if (dropped.has(c)) continue
        const done = runs.get(c)!
        if (round === 0 && done.length === 0) console.log(`  ${c.label}: X = ${c.variant}, GET ${c.path}, expecting ${c.status}`)
        const t0 = performance.now()
        try {
          if (c.redisKeys !== undefined && redis === null) throw new Skipped(redisSkip ?? 'no redis-server')
          const pairOrder = orderOf(done.length)
          const run = await runPair(c, redis, pairOrder, done.length === 0)
          run.seconds = (performance.now() - t0) / 1000
          done.push(run)
          printPair(c, run, round, pairOrder)
        } catch (err) {
          if (!(err instanceof Skipped)) throw err
          console.log(`  SKIPPED ${c.variant}: ${err.message}`)
          skipped.push({ variant: c.variant, reason: err.message })
          dropped.add(c)
        }
      }
    }
    for (const c of cases) {
      const done = runs.get(c)!
      if (done.length > 0) results.push(summarizeCase(c, done, redis))
    }
    console.log(`\n${settings.rounds} rounds in ${((performance.now() - runStart) / 60_000).toFixed(1)} min`)
    band = report(results, skipped, redis, loadBefore)
  } catch (err) {
    failure = err as Error
  }

  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    settings,
    loadAverage: { before: loadBefore, after: loadavg() },
    redis: redis === null ? null : { version: redis.version, port: redis.port, clockTicks: CLOCK_TICKS },
    targets: Object.fromEntries(Object.entries(TARGETS).map(([name, t]) => [name, t.max])),
    controlBand: band === null ? null : { low: 1 - band.halfWidth, high: 1 + band.halfWidth, pairs: band.pairs },
    results,
    skipped,
    error: failure === null ? null : failure.message
  }, null, 2) + '\n')
  console.log(`\nresults: ${relative(process.cwd(), file)}`)
  if (failure !== null) throw failure
  if (fleet) await runFleet()
}

main().then(() => {
  killAll('SIGTERM')
  process.exit(0)
}, err => {
  console.error(`\nbench FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  killAll('SIGTERM')
  process.exit(1)
})
