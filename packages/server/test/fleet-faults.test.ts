// A Waygate Server and its services as real processes on loopback: what the fleet does when the
// operators change things, and when the server goes away and comes back. The tests run in order
// on one fleet (one server on a file, restarted on the same port and file).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { call, login, type Teardown } from './helpers/server.js'
import { countingProxy, freePort, get, SERVICE_SCRIPT, startServerProcess, startTsProcess, until, type Proc } from './helpers/processes.js'

const dir = mkdtempSync(join(tmpdir(), 'wg-fleet-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const port = await freePort()
const serverUrl = `http://127.0.0.1:${port}`
// a fixed secret key, so the services' tokens stay valid across the restart
const serverProcess = { port, stateFile: join(dir, 'server-state.json'), secretKey: 'fleet-test-secret-0123456789' }

/** A service process and its URL. */
interface Service extends Proc {
  url: string
}

/** What lives as long as the file: the server, alpha, beta. */
const fleet: Teardown = t
let server: Proc
async function startServer (): Promise<void> {
  server = await startServerProcess(t, serverProcess)
}

async function startService (tt: Teardown, service: string, env: Record<string, string> = {}): Promise<Service> {
  const proc = startTsProcess(tt, service, SERVICE_SCRIPT, [], {
    SERVICE: service,
    WAYGATE_SERVER_URL: serverUrl,
    WAYGATE_USERNAME: 'admin',
    WAYGATE_PASSWORD: 'secret',
    // the snapshot usually comes in milliseconds; the margin is for a busy machine
    READY_TIMEOUT_MS: '5000',
    BACKOFF_MS: '150',
    ...env
  })
  const [, url] = await proc.waitFor(/listening (http:\/\/\S+)/, 30_000)
  return Object.assign(proc, { url: url! })
}

/** The SDK's status in the service (`app.waygate.status().sync`). */
async function sync (service: Service): Promise<any> {
  return (await get(`${service.url}/sync`)).body
}

async function connected (service: Service, timeoutMs = 5000): Promise<any> {
  return until(async () => {
    const status = await sync(service)
    return status?.state === 'connected' ? status : undefined
  }, timeoutMs, () => `${service.name} did not connect: ${JSON.stringify(service.logs())}`)
}

/** Polls `path` on the service until it answers `status`; resolves the answer and how long it took. */
async function answers (service: Service, path: string, status: number, timeoutMs = 2000): Promise<{ body: any, headers: Headers, ms: number }> {
  const started = Date.now()
  return until(async () => {
    const res = await get(service.url + path)
    return res.status === status ? { body: res.body, headers: res.headers, ms: Date.now() - started } : undefined
  }, timeoutMs, () => `${service.name} ${path} did not answer ${status} within ${timeoutMs} ms\n${service.logs()}`, 10)
}

const key = (k: string): string => encodeURIComponent(k)
const p50 = (samples: number[]): number => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!

async function latencies (service: Service, path: string, count: number): Promise<{ ms: number[], statuses: number[] }> {
  const ms: number[] = []
  const statuses: number[] = []
  for (let i = 0; i < count; i++) {
    const started = process.hrtime.bigint()
    const res = await fetch(service.url + path)
    await res.arrayBuffer()
    ms.push(Number(process.hrtime.bigint() - started) / 1e6)
    statuses.push(res.status)
  }
  return { ms, statuses }
}

// ---- the fleet: one server, alpha and beta (the same paths), and a service with a bad token behind a counting proxy ----
await startServer()
const proxy = await countingProxy(t, port)
const [alpha, beta, locked] = await Promise.all([
  startService(t, 'alpha'),
  startService(t, 'beta'),
  startService(t, 'locked', { WAYGATE_SERVER_URL: proxy.url, WAYGATE_USERNAME: '', WAYGATE_PASSWORD: '', WAYGATE_TOKEN: 'not-a-token-of-this-server' })
])
const lockedStarted = Date.now()
let admin = await login(serverUrl)

t.test('a change through the server\'s REST API is enforced by the right service within a second, never by the other', async t => {
  await Promise.all([connected(alpha), connected(beta)])
  for (const service of [alpha, beta]) {
    t.equal((await get(`${service.url}/health`)).status, 200, `${service.name} /health`)
    t.equal((await get(`${service.url}/api/items`)).status, 200, `${service.name} /api/items`)
  }
  const ambiguous = await call(serverUrl, 'POST', `/api/routes/${key('GET:/api/items')}/disable`, { token: admin, body: { reason: 'which one?' } })
  t.equal(ambiguous.status, 409, 'a key without a service that matches both is refused')

  const changed = await call(serverUrl, 'POST', `/api/routes/${key('alpha:GET:/api/items')}/disable`, { token: admin, body: { reason: 'hotfix' } })
  t.equal(changed.status, 200)
  const disabled = await answers(alpha, '/api/items', 503, 1000)
  t.equal(disabled.body.error.code, 'ROUTE_DISABLED')
  t.equal(disabled.body.error.reason, 'hotfix')
  t.ok(disabled.ms < 1000, `alpha enforced it in ${disabled.ms} ms`)

  const maintenance = await call(serverUrl, 'POST', `/api/routes/${key('beta:GET:/health')}/maintenance`, { token: admin, body: { reason: 'beta checkup' } })
  t.equal(maintenance.status, 200)
  const down = await answers(beta, '/health', 503, 1000)
  t.equal(down.body.error.code, 'MAINTENANCE_MODE')
  t.ok(down.ms < 1000, `beta enforced it in ${down.ms} ms`)

  // a while later, neither change reached the other service
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal((await get(`${beta.url}/api/items`)).status, 200, 'beta\'s /api/items stays up')
  t.equal((await get(`${alpha.url}/health`)).status, 200, 'alpha\'s /health stays up')

  t.equal((await call(serverUrl, 'POST', `/api/routes/${key('alpha:GET:/api/items')}/enable`, { token: admin, body: {} })).status, 200)
  t.equal((await call(serverUrl, 'POST', `/api/routes/${key('beta:GET:/health')}/enable`, { token: admin, body: {} })).status, 200)
  await answers(alpha, '/api/items', 200, 1000)
  await answers(beta, '/health', 200, 1000)
})

t.test('a service with a bad token keeps serving its declared states and says it is unauthorized', async t => {
  t.equal((await get(`${locked.url}/api/items`)).status, 200)
  const old = await get(`${locked.url}/api/old`)
  t.equal(old.status, 503)
  t.equal(old.body.error.code, 'ROUTE_DISABLED', 'the declared state applies')
  const status = await until(async () => {
    const s = await sync(locked)
    return s?.state === 'unauthorized' ? s : undefined
  }, 3000, () => `locked never became unauthorized: ${locked.logs()}`)
  t.match(status, { state: 'unauthorized', source: 'declared', service: 'locked' })
  t.match(locked.logs(), /401|unauthori[sz]ed|refused/i, 'it logged why')
})

t.test('maintenance turned on before a service starts is applied at its first request', async t => {
  t.equal((await call(serverUrl, 'POST', '/api/services/gamma/maintenance/enable', { token: admin, body: { reason: 'gamma upgrade' } })).status, 200)
  const gamma = await startService(t, 'gamma')
  const first = await get(`${gamma.url}/api/items`)
  t.equal(first.status, 503, 'service maintenance, at the first request')
  t.equal(first.body.error?.code, 'MAINTENANCE_MODE')
  t.equal(first.body.error?.reason, 'gamma upgrade')
  t.equal((await get(`${alpha.url}/api/items`)).status, 200, 'the other services stay up')

  t.equal((await call(serverUrl, 'POST', '/api/global/enable', { token: admin, body: { reason: 'fleet freeze' } })).status, 200)
  const delta = await startService(t, 'delta')
  const firstDelta = await get(`${delta.url}/api/items`)
  t.equal(firstDelta.status, 503, 'global maintenance, at the first request')
  t.equal(firstDelta.body.error?.reason, 'fleet freeze')
  await answers(alpha, '/api/items', 503, 1000)

  t.equal((await call(serverUrl, 'POST', '/api/global/disable', { token: admin, body: {} })).status, 200)
  await answers(delta, '/api/items', 200, 1000)
  await answers(alpha, '/api/items', 200, 1000)
  t.equal((await get(`${gamma.url}/api/items`)).body.error?.reason, 'gamma upgrade', 'gamma\'s own maintenance stays')
  t.equal((await call(serverUrl, 'POST', '/api/services/gamma/maintenance/disable', { token: admin, body: {} })).status, 200)
  await answers(gamma, '/api/items', 200, 1000)
  await Promise.all([gamma.stop('SIGTERM'), delta.stop('SIGTERM')])
})

t.test('rate limits set on the server are enforced by the service', async t => {
  const before = (await sync(alpha)).revision
  t.equal((await call(serverUrl, 'POST', '/api/rate-limits', { token: admin, body: { key: 'alpha:GET:/api/limited', limits: ['3/minute'] } })).status, 200)
  await until(async () => (await sync(alpha)).revision > before ? true : undefined, 1000, () => 'alpha did not receive the policy')
  const alphaStatuses = (await latencies(alpha, '/api/limited', 4)).statuses
  t.same(alphaStatuses, [200, 200, 200, 429], 'the route policy: three a minute')
  t.same((await latencies(beta, '/api/limited', 4)).statuses, [200, 200, 200, 200], 'beta\'s route of the same path is not limited')

  const beforeBeta = (await sync(beta)).revision
  t.equal((await call(serverUrl, 'POST', '/api/services/beta/rate-limit', { token: admin, body: { limits: ['2/minute'] } })).status, 200)
  await until(async () => (await sync(beta)).revision > beforeBeta ? true : undefined, 1000, () => 'beta did not receive the policy')
  const limited = await latencies(beta, '/api/items', 3)
  t.same(limited.statuses, [200, 200, 429], 'the service policy covers its routes')
  t.same((await latencies(alpha, '/api/items', 3)).statuses, [200, 200, 200], 'and only that service\'s')

  t.equal((await call(serverUrl, 'DELETE', `/api/rate-limits/${key('alpha:GET:/api/limited')}`, { token: admin })).status, 200)
  t.equal((await call(serverUrl, 'DELETE', '/api/services/beta/rate-limit', { token: admin })).status, 200)
  await answers(beta, '/api/items', 200, 1000)
  await answers(alpha, '/api/limited', 200, 1000)
})

const cacheFile = join(dir, 'zeta-cache.json')

t.test('a service keeps the server\'s state in its cache file', async t => {
  const zeta = await startService(t, 'zeta', { CACHE_FILE: cacheFile })
  await connected(zeta)
  t.equal((await call(serverUrl, 'POST', `/api/routes/${key('zeta:GET:/api/items')}/disable`, { token: admin, body: { reason: 'operator said so' } })).status, 200)
  await answers(zeta, '/api/items', 503, 1000)
  const revision = (await sync(zeta)).revision
  await until(async () => {
    const saved = JSON.parse(readFileSync(cacheFile, 'utf8'))
    return saved.header?.revision >= revision ? true : undefined
  }, 2000, () => `the cache file did not reach revision ${revision}`)
  await zeta.stop('SIGTERM')
})

let reconnectsBefore = 0
let outageStarted = 0

t.test('the server killed: services keep answering from their snapshot, no 5xx, no added latency', async t => {
  // the bad-token service is counted over its first 10 s with the server up
  const wait = lockedStarted + 10_000 - Date.now()
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
  const lockedRequests = proxy.requests.filter(r => r.at <= lockedStarted + 10_000)
  const streams = lockedRequests.filter(r => r.url.includes('/events'))
  t.ok(streams.length >= 1 && streams.length <= 2, `the bad token tried the stream ${streams.length} time(s) in 10 s, not in a loop`)
  t.ok(lockedRequests.length <= 5, `${lockedRequests.length} requests in all: ${JSON.stringify(lockedRequests.map(r => r.url))}`)
  t.equal((await sync(locked)).state, 'unauthorized')

  await latencies(alpha, '/api/items', 20) // warm up
  const healthy = await latencies(alpha, '/api/items', 200)
  reconnectsBefore = (await connected(alpha)).reconnects

  await server.stop('SIGKILL')
  outageStarted = Date.now()
  await until(async () => (await sync(alpha)).state !== 'connected' ? true : undefined, 3000, () => 'alpha did not notice the server went away')

  const burst = await Promise.all(Array.from({ length: 50 }, () => get(`${alpha.url}/api/items`)))
  t.same([...new Set(burst.map(r => r.status))], [200], 'a concurrent burst: all 200')
  const orphaned = await latencies(alpha, '/api/items', 200)
  t.notOk(orphaned.statuses.some(s => s >= 500), 'no 5xx')
  t.same([...new Set(orphaned.statuses)], [200])
  t.equal((await get(`${beta.url}/api/items`)).status, 200, 'beta too')
  t.equal((await get(`${beta.url}/api/old`)).body.error?.code, 'ROUTE_DISABLED', 'the states held are still enforced')
  const [before, after] = [p50(healthy.ms), p50(orphaned.ms)]
  t.ok(after < 2 * before + 2, `p50 ${after.toFixed(2)} ms without the server, ${before.toFixed(2)} ms with it`)
  t.match(await sync(alpha), { state: 'reconnecting', source: 'server' }, 'it says so, and what it enforces')
})

let eta: Service
let zeta: Service

t.test('a service started while the server is down serves its cache file, or its declared states', async t => {
  ;[zeta, eta] = await Promise.all([
    // they outlive this test: the next one restarts the server under them
    // nothing to wait for: the server is down
    startService(fleet, 'zeta', { CACHE_FILE: cacheFile, READY_TIMEOUT_MS: '500' }),
    startService(fleet, 'eta', { READY_TIMEOUT_MS: '500' })
  ])
  const items = await get(`${zeta.url}/api/items`)
  t.equal(items.status, 503, 'the operator\'s change survived the restart')
  t.equal(items.body.error?.reason, 'operator said so')
  t.match(await sync(zeta), { source: 'cache', state: /offline|reconnecting/ })

  t.equal((await get(`${eta.url}/api/items`)).status, 200)
  t.equal((await get(`${eta.url}/api/old`)).body.error?.code, 'ROUTE_DISABLED')
  t.match(await sync(eta), { source: 'declared', state: /offline|reconnecting/ })
})

t.test('the server restarted on its file: services reconnect, register and follow the next change', async t => {
  t.teardown(() => Promise.all([zeta.stop('SIGTERM'), eta.stop('SIGTERM')]))
  await startServer()
  admin = await login(serverUrl)
  const back = await connected(alpha, 10_000)
  const outageMs = Date.now() - outageStarted
  const attempts = back.reconnects - reconnectsBefore
  t.ok(attempts > 0, 'alpha reconnected')
  // the back-off's steps are 150, 300, then 600 ms (BACKOFF_MS, at most 4 ×), each delay at least half its step
  t.ok(attempts <= outageMs / 300 + 5, `with back-off: ${attempts} attempts in a ${outageMs} ms outage`)
  t.match(await connected(beta, 10_000), { state: 'connected', source: 'server' })

  await connected(eta, 10_000)
  const routes = await until(async () => {
    const res = await call(serverUrl, 'GET', '/api/routes?service=eta', { token: admin })
    return res.body.length > 0 ? res.body : undefined
  }, 5000, () => 'eta\'s routes never reached the server')
  t.same(routes.map((r: any) => r.key).sort(), ['eta:GET:/api/items', 'eta:GET:/api/limited', 'eta:GET:/api/old', 'eta:GET:/api/v1/users', 'eta:GET:/health'], 'eta registered once the server was up')
  t.equal(routes.find((r: any) => r.key === 'eta:GET:/api/old').status, 'disabled')

  t.match(await connected(zeta, 10_000), { source: 'server' })
  t.equal((await get(`${zeta.url}/api/items`)).status, 503, 'the server kept the operator\'s change too')

  t.equal((await call(serverUrl, 'POST', `/api/routes/${key('alpha:GET:/api/limited')}/disable`, { token: admin, body: { reason: 'after the restart' } })).status, 200)
  t.ok((await answers(alpha, '/api/limited', 503, 1000)).ms < 1000, 'alpha follows the next change')
  t.equal((await call(serverUrl, 'POST', `/api/routes/${key('eta:GET:/api/items')}/maintenance`, { token: admin, body: {} })).status, 200)
  await answers(eta, '/api/items', 503, 1000)
  t.equal((await get(`${beta.url}/api/limited`)).status, 200)
})
