/**
 * `pnpm soak`: the chaos soak. Two app instances (bench/soak/app.ts) share one private
 * redis-server; autocannon sends each a steady fixed rate over ten managed routes; an operator
 * makes a random change every 100 ms through the admin API of either instance; Redis is killed
 * (SIGKILL) and restarted every 20 s. At the end it checks, and prints:
 *
 * - requests served and every unexpected answer (a 5xx that is not waygate's own maintenance or
 *   disabled answer, a 404 that is not an env gate, a connection error): must be 0;
 * - p99 latency while Redis is down vs while it is up;
 * - every acknowledged change in the final state and in the audit log: 0 lost;
 * - both instances holding the same state within 2 s of each Redis restart;
 * - each instance's RSS at the start and the end: growth under SOAK_RSS_GROWTH_MB (default 64).
 *
 * Redis runs with `appendonly yes` and `appendfsync always`, as a deployment that must keep
 * acknowledged writes across a crash would; without persistence a restarted Redis is empty.
 *
 * Settings: SOAK_SECONDS (300), SOAK_RATE (requests/s per instance, 200), SOAK_KILL_EVERY (s, 20),
 * SOAK_DOWN (s Redis stays down, 3), SOAK_OP_MS (100), SOAK_JSON (a path to write the report to).
 * Exit code 0 when every check holds, 1 otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { EventEmitter } from 'node:events'
import autocannon, { type Result } from 'autocannon'
import { createRedisBackend, type AuditEntry, type RouteState } from '../../packages/core/src/index.js'
import { freePort } from '../common.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const TSX = import.meta.resolve('tsx')

function setting (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`)
  return value
}

const SECONDS = setting('SOAK_SECONDS', 300)
const RATE = setting('SOAK_RATE', 200)
const KILL_EVERY = setting('SOAK_KILL_EVERY', 20)
const DOWN = setting('SOAK_DOWN', 3)
const OP_MS = setting('SOAK_OP_MS', 100)
const RSS_GROWTH_MB = setting('SOAK_RSS_GROWTH_MB', 64)
const CONVERGE_MS = 2000
const ROUTES = Array.from({ length: 10 }, (_, i) => `/r${i}`)
const ACTIONS = ['enable', 'disable', 'maintenance', 'env', 'deprecate'] as const
type Action = typeof ACTIONS[number]
const EXPECTED_STATUS: Record<Action, RouteState['status']> = { enable: 'active', disable: 'disabled', maintenance: 'maintenance', env: 'env_gated', deprecate: 'deprecated' }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const log = (line: string): void => { process.stderr.write(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`) }
const t0 = Date.now()

// ---- processes ----

const dir = mkdtempSync(join(tmpdir(), 'waygate-soak-'))
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

function waitForLine (child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = pattern.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        resolve(match)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}) before it was ready:\n${output}`))
    })
  })
}

const redisPort = await freePort()
const redisUrl = `redis://127.0.0.1:${redisPort}`
let redis: ChildProcess | null = null

async function startRedis (): Promise<void> {
  const child = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
    '--appendfsync', 'always', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  await waitForLine(child, /Ready to accept connections/, 'redis-server')
  redis = child
}

async function killRedis (): Promise<void> {
  const child = redis
  if (child === null) return
  redis = null
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

interface Instance { name: string, base: string, child: ChildProcess, token: string }

async function startApp (name: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', TSX, join(HERE, 'app.ts')], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', SOAK_REDIS_URL: redisUrl, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  children.add(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  child.once('exit', code => {
    children.delete(child)
    if (!finished) log(`${name} exited (${code}) during the soak:\n${stderr}`)
  })
  const port = (await waitForLine(child, /READY (\d+)\n/, name))[1]!
  const base = `http://127.0.0.1:${port}`
  const res = await fetch(`${base}/waygate/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret', platform: 'cli' })
  })
  if (res.status !== 200) throw new Error(`${name}: login answered ${res.status}`)
  const { token } = await res.json() as { token: string }
  return { name, base, child, token }
}

async function rss (instance: Instance): Promise<number> {
  return ((await (await fetch(`${instance.base}/__rss`)).json()) as { rss: number }).rss
}

// ---- the run ----

let finished = false
await startRedis()
const apps = [await startApp('app-a'), await startApp('app-b')]
// every route known to both before the clock starts
for (const app of apps) for (const path of ROUTES) await fetch(`${app.base}${path}`)
await sleep(500)
const rssStart = await Promise.all(apps.map(rss))
log(`redis on ${redisPort}, ${apps.map(a => a.base).join(' and ')}; ${SECONDS} s at ${RATE} req/s each, a change every ${OP_MS} ms, Redis killed every ${KILL_EVERY} s for ${DOWN} s`)

/** Intervals in which Redis was down (kill → restart), epoch ms. */
const outages: Array<{ from: number, to: number }> = []
/** Every answer's time and latency, for the p99 inside and outside outages. */
const times: number[] = []
const latencies: number[] = []
const answers = { ok: 0, blocked: 0, gated: 0, unexpected: 0, byStatus: new Map<string, number>() }
let firstUnexpected: string | null = null

function classify (status: number, body: string): void {
  if (status === 200) answers.ok++
  else if (status === 503 && /"code":"(MAINTENANCE_MODE|ROUTE_DISABLED)"/.test(body)) answers.blocked++
  else if (status === 404 && /not found/i.test(body)) answers.gated++
  else {
    answers.unexpected++
    answers.byStatus.set(String(status), (answers.byStatus.get(String(status)) ?? 0) + 1)
    firstUnexpected ??= `${status} ${body.slice(0, 200)}`
  }
}

const load = apps.map(app => new Promise<Result>((resolve, reject) => {
  autocannon({
    url: app.base,
    connections: 8,
    overallRate: RATE,
    duration: SECONDS,
    timeout: 10,
    requests: ROUTES.map(path => ({ method: 'GET', path, onResponse: classify })),
    setupClient: (client: EventEmitter) => {
      client.on('response', (_status: number, _bytes: number, ms: number) => {
        times.push(Date.now())
        latencies.push(ms)
      })
    }
  }, (err, result) => { if (err !== null) reject(err); else resolve(result) })
}))

interface Op { n: number, at: number, app: string, path: string, action: Action, reason: string, status: number, ms: number }
const ops: Op[] = []

async function operator (): Promise<void> {
  const end = t0 + SECONDS * 1000
  let n = 0
  while (Date.now() < end - 500) {
    const started = Date.now()
    n++
    const app = apps[Math.floor(Math.random() * apps.length)]!
    const path = ROUTES[Math.floor(Math.random() * ROUTES.length)]!
    const action = ACTIONS[Math.floor(Math.random() * ACTIONS.length)]!
    const reason = `soak-${n}`
    const body = action === 'enable' ? {} : action === 'env' ? { envs: ['staging'], reason } : { reason }
    let status = 0
    try {
      const res = await fetch(`${app.base}/waygate/api/routes/${encodeURIComponent(`GET:${path}`)}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-waygate-token': app.token },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000)
      })
      status = res.status
      await res.arrayBuffer()
    } catch {
      status = 0
    }
    ops.push({ n, at: started, app: app.name, path, action, reason, status, ms: Date.now() - started })
    await sleep(Math.max(0, OP_MS - (Date.now() - started)))
  }
}

/** One route's state as compared between instances. */
const view = (routes: RouteState[]): string => JSON.stringify(routes.filter(r => ROUTES.includes(r.path)).map(r => [r.key, r.status, r.reason]).sort())

async function routesOf (app: Instance): Promise<RouteState[]> {
  const res = await fetch(`${app.base}/waygate/api/routes`, { headers: { 'x-waygate-token': app.token }, signal: AbortSignal.timeout(5000) })
  return await res.json() as RouteState[]
}

const convergence: number[] = []

async function chaos (): Promise<void> {
  const end = t0 + SECONDS * 1000
  for (;;) {
    await sleep(KILL_EVERY * 1000 - DOWN * 1000)
    if (Date.now() + DOWN * 1000 + CONVERGE_MS > end) return
    const from = Date.now()
    await killRedis()
    log('redis killed')
    await sleep(DOWN * 1000)
    await startRedis()
    const restarted = Date.now()
    outages.push({ from, to: restarted })
    log(`redis restarted after ${restarted - from} ms`)
    // converged: both instances hold the same state, and it holds every change acknowledged before now
    const deadline = restarted + 10_000
    let took = -1
    while (Date.now() < deadline) {
      try {
        const [a, b] = await Promise.all(apps.map(routesOf))
        if (view(a!) === view(b!)) {
          took = Date.now() - restarted
          break
        }
      } catch {}
      await sleep(50)
    }
    convergence.push(took)
    log(took < 0 ? 'instances did NOT converge within 10 s' : `instances converged ${took} ms after the restart`)
  }
}

const [results] = await Promise.all([Promise.all(load), operator(), chaos()])
finished = true
await sleep(1500)

// ---- checks ----

const [finalA, finalB] = await Promise.all(apps.map(routesOf))
const backend = createRedisBackend({ url: redisUrl })
await backend.init?.()
await backend.load()
const audit: AuditEntry[] = await backend.listAudit({ limit: 1_000_000 })
await backend.close()
const rssEnd = await Promise.all(apps.map(rss))

const lost: string[] = []
const final = new Map(finalA!.map(r => [r.path, r]))
for (const path of ROUTES) {
  const mine = ops.filter(op => op.path === path)
  const lastAcked = mine.findLastIndex(op => op.status === 200)
  if (lastAcked < 0) continue
  // a change that failed (no answer, or a 5xx) may still have been written: what follows the last
  // acknowledged one may show, never what precedes it
  const candidates = mine.slice(lastAcked).filter((op, i) => i === 0 || op.status !== 200)
  const state = final.get(path)
  const matches = candidates.some(op => state?.status === EXPECTED_STATUS[op.action] && (op.action === 'enable' || state.reason === op.reason))
  if (!matches) lost.push(`${path}: last acknowledged ${mine[lastAcked]!.action} ${mine[lastAcked]!.reason}, final state ${state?.status} "${state?.reason}"`)
}
const auditReasons = new Set(audit.map(entry => entry.reason))
const enablesAudited = new Map<string, number>()
for (const entry of audit) if (entry.action === 'enable') enablesAudited.set(entry.key, (enablesAudited.get(entry.key) ?? 0) + 1)
// enabling a route that is already active changes nothing and writes no entry: only enables that
// followed an acknowledged change of another kind must be audited
const enablesAcked = new Map<string, number>()
const previous = new Map<string, Action>()
for (const op of ops) {
  if (op.status !== 200) continue
  if (op.action === 'enable') {
    const before = previous.get(op.path)
    if (before !== undefined && before !== 'enable') enablesAcked.set(`GET:${op.path}`, (enablesAcked.get(`GET:${op.path}`) ?? 0) + 1)
  } else if (!auditReasons.has(op.reason)) lost.push(`audit entry of ${op.action} ${op.path} ${op.reason}`)
  previous.set(op.path, op.action)
}
for (const [key, n] of enablesAcked) if ((enablesAudited.get(key) ?? 0) < n) lost.push(`${key}: ${n} enables acknowledged, ${enablesAudited.get(key) ?? 0} audited`)

function p99 (values: number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
}
const inOutage = (t: number): boolean => outages.some(o => t >= o.from && t <= o.to)
const during: number[] = []
const outside: number[] = []
for (let i = 0; i < times.length; i++) (inOutage(times[i]!) ? during : outside).push(latencies[i]!)

const acked = ops.filter(op => op.status === 200)
const failedFast = ops.filter(op => op.status === 503)
const served = results.reduce((sum, r) => sum + r['2xx'] + r.non2xx, 0)
const errors = results.reduce((sum, r) => sum + r.errors + r.timeouts, 0)
const report = {
  seconds: SECONDS,
  rate: RATE,
  requests: { served, ok: answers.ok, blockedByWaygate: answers.blocked, envGated: answers.gated, unexpected: answers.unexpected, unexpectedByStatus: Object.fromEntries(answers.byStatus), connectionErrors: errors, firstUnexpected },
  latencyMs: { p99Outside: p99(outside), p99DuringOutages: p99(during), answersDuringOutages: during.length },
  mutations: { attempted: ops.length, acknowledged: acked.length, refusedDuringOutage: failedFast.length, slowestRefusalMs: Math.max(0, ...failedFast.map(op => op.ms)), lost: lost.length, lostDetail: lost.slice(0, 20) },
  audit: { entries: audit.length },
  redisRestarts: outages.length,
  convergenceMs: convergence,
  instancesAgreeAtEnd: view(finalA!) === view(finalB!),
  rssMb: apps.map((app, i) => ({ app: app.name, start: Math.round(rssStart[i]! / 2 ** 20), end: Math.round(rssEnd[i]! / 2 ** 20) }))
}

const checks: Array<[string, boolean]> = [
  ['no unexpected answer on the managed routes (0 5xx beyond waygate\'s own)', answers.unexpected === 0 && errors === 0],
  ['every acknowledged change is in the final state and the audit log', lost.length === 0],
  [`both instances converged within ${CONVERGE_MS} ms of every Redis restart`, convergence.length > 0 && convergence.every(ms => ms >= 0 && ms <= CONVERGE_MS)],
  ['both instances agree at the end', report.instancesAgreeAtEnd],
  [`RSS grew by less than ${RSS_GROWTH_MB} MB`, rssEnd.every((end, i) => end - rssStart[i]! < RSS_GROWTH_MB * 2 ** 20)],
  ['changes were acknowledged while Redis was up and refused while it was down', acked.length > 0 && (outages.length === 0 || failedFast.length > 0)]
]

process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
for (const [what, ok] of checks) process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${what}\n`)
if (process.env.SOAK_JSON !== undefined && process.env.SOAK_JSON !== '') writeFileSync(process.env.SOAK_JSON, JSON.stringify({ report, checks }, null, 2))
process.exit(checks.every(([, ok]) => ok) ? 0 : 1)
