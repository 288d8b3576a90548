import type { ServerResponse } from 'node:http'
import t from 'tap'
import type { RouteState } from '@waygate/core'
import { routeState } from '@waygate/core/testing'
import { startHostile, type SeenRequest } from './helpers/hostile.js'
import { json, sandbox } from './helpers/server.js'
import { splitKey } from '../src/parse.js'

// The service scope against a fake Waygate Server on a real socket: it answers the documented
// shapes of the server's REST API and records what the CLI asked, so each test asserts the
// request (path, query, encoded key, body) and what the operator reads.

// the binary reads the real clock: times are set relative to it
const NOW = Date.now()
const ago = (ms: number): string => new Date(NOW - ms).toISOString()

function route (key: string, fields: Partial<RouteState> = {}): RouteState {
  return routeState(key, { updatedAt: ago(60_000), updatedBy: 'config', ...fields })
}

const ROUTES = [
  route('orders-service:GET:/api/cart'),
  route('orders-service:GET:/health', { forceActive: true }),
  route('payments-service:GET:/api/payments', { status: 'maintenance', reason: 'DB migration' }),
  route('payments-service:GET:/health', { forceActive: true })
]
const OFF = { enabled: false, reason: '', exemptPaths: [], includeForceActive: false, since: null }

const SERVICES = [
  {
    name: 'orders-service',
    service: 'orders-service',
    routes: 2,
    maintenance: OFF,
    rateLimit: null,
    instances: [{ id: 'o-1', host: 'orders-a', version: '1.2.0', pid: 10, connectedSince: ago(3_600_000), lastHeartbeat: ago(8_000), revision: 41 }]
  },
  {
    name: 'payments-service',
    service: 'payments-service',
    routes: 2,
    maintenance: { enabled: true, reason: 'failover\u001b[2J', exemptPaths: ['GET:/health'], includeForceActive: false, since: ago(600_000) },
    rateLimit: { policy: { key: '@service:payments-service', limits: ['100/minute'] }, enabled: true, exemptRoutes: [] },
    instances: [
      { id: 'p-1', host: 'pay-a', version: '2.0.0', pid: 11, connectedSince: ago(7_200_000), lastHeartbeat: ago(2_000), revision: 41 },
      { id: 'p-2', host: 'pay-b', version: '2.0.0', pid: 12, connectedSince: ago(7_200_000), lastHeartbeat: ago(180_000), revision: 39 },
      // its stream closed 20 s ago (killed): the server lists it for a while, as a Waygate Server answers it
      { id: 'p-3', host: 'pay-c', version: '2.0.0', pid: 13, connectedSince: ago(600_000), lastHeartbeat: ago(22_000), revision: 40, stale: true, state: 'disconnected', disconnectedAt: ago(20_000) }
    ]
  },
  { name: 'idle-service', service: 'idle-service', routes: 1, maintenance: OFF, rateLimit: null, instances: [] }
]

interface Teardown { teardown: (fn: () => unknown) => void }

/** The routes a key names, as the server resolves it (exact key, else same pattern, method and service). */
function resolve (key: string): Array<Record<string, unknown>> {
  const exact = ROUTES.filter(r => r.key === key)
  if (exact.length > 0) return exact
  const parts = splitKey(key)
  if (parts === null) return []
  return ROUTES.filter(r => r.path === parts.path && (parts.method === null || r.method === parts.method) && (parts.service === null || r.service === parts.service))
}

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

/** The parts of the server's API these commands use, with in-memory state the tests can read. */
async function startFake (t: Teardown) {
  const state = {
    maintenance: { ...OFF } as Record<string, unknown>,
    rateLimit: null as Record<string, unknown> | null
  }
  const fake = await startHostile(t, (req: SeenRequest, res) => {
    const url = new URL(req.url, 'http://x')
    const p = url.pathname.replace(/^\/waygate/, '')
    const body = req.body === '' ? {} : JSON.parse(req.body)
    if (req.method === 'GET' && p === '/api/services') return send(res, 200, SERVICES)
    if (req.method === 'GET' && p === '/api/routes') {
      const service = url.searchParams.get('service')
      return send(res, 200, ROUTES.filter(r => service === null || r.service === service))
    }
    if (req.method === 'GET' && p === '/api/global') return send(res, 200, OFF)
    let m = /^\/api\/routes\/([^/]+)(?:\/(enable|disable))?$/.exec(p)
    if (m !== null) {
      const key = decodeURIComponent(m[1]!)
      const found = resolve(key)
      if (found.length > 1 && body.all !== true) {
        return send(res, 409, { error: { code: 'WG_ERR_ROUTE_AMBIGUOUS', message: `Route key "${key}" is ambiguous`, matches: found.map(r => r.key) } })
      }
      if (found.length === 0) return send(res, 404, { error: { code: 'WG_ERR_ROUTE_NOT_FOUND', message: `No route is registered as "${key}"` } })
      if (m[2] === undefined) return send(res, 200, found[0])
      return send(res, 200, { routes: found.map(r => ({ ...r, status: m![2] === 'enable' ? 'active' : 'disabled' })) })
    }
    m = /^\/api\/services\/([^/]+)\/(maintenance(?:\/enable|\/disable)?|rate-limit)$/.exec(p)
    if (m !== null) {
      const service = decodeURIComponent(m[1]!)
      if (m[2] === 'maintenance') return send(res, 200, state.maintenance)
      if (m[2] === 'maintenance/enable') {
        state.maintenance = { ...OFF, enabled: true, since: ago(0), reason: body.reason ?? '', exemptPaths: body.exemptPaths ?? [], includeForceActive: body.includeForceActive ?? false }
        return send(res, 200, state.maintenance)
      }
      if (m[2] === 'maintenance/disable') {
        state.maintenance = { ...OFF }
        return send(res, 200, state.maintenance)
      }
      if (req.method === 'GET') {
        return state.rateLimit === null
          ? send(res, 404, { error: { code: 'WG_ERR_NOT_FOUND', message: `no rate limit is set for service ${service}` } })
          : send(res, 200, state.rateLimit)
      }
      if (req.method === 'DELETE') {
        const deleted = state.rateLimit !== null
        state.rateLimit = null
        return send(res, 200, { deleted })
      }
      const { exemptRoutes, enabled, ...policy } = body
      // as the server: what the body leaves out is kept
      state.rateLimit = { policy: { ...policy, key: `@service:${service}` }, enabled: enabled ?? state.rateLimit?.enabled ?? true, exemptRoutes: exemptRoutes ?? state.rateLimit?.exemptRoutes ?? [] }
      return send(res, 200, state.rateLimit)
    }
    send(res, 404, { error: { code: 'WG_ERR_NOT_FOUND', message: `nothing at ${p}` } })
  })
  return { ...fake, state }
}

/** What the CLI asked for, as `METHOD /path?query` without the admin mount. */
function asked (requests: SeenRequest[]): string[] {
  return requests.map(r => `${r.method} ${r.url.replace(/^\/waygate/, '')}`)
}

t.test('services: each service with its maintenance and instances, a stale one and a disconnected one flagged, server text escaped; --json adds stale', async t => {
  const fake = await startFake(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: fake.adminUrl })
  const shown = await box.waygate(['services'], { env: { WAYGATE_SERVICE: 'orders-service' } })
  t.equal(shown.code, 0, shown.stderr)
  const lines = shown.stdout.split('\n')
  t.match(lines[0], /^SERVICE\s+ROUTES\s+MAINTENANCE\s+INSTANCE\s+HOST\s+VERSION\s+CONNECTED\s+HEARTBEAT\s+REVISION\s+NOTES$/)
  t.match(shown.stdout, /orders-service\s+2\s+off\s+o-1\s+orders-a\s+1\.2\.0\s+\S+ ago\s+\S+ ago\s+41\s+← current/)
  t.match(shown.stdout, /payments-service\s+2\s+ON: failover\\x1b\[2J\s+p-1\s+pay-a\s+2\.0\.0/, 'the reason is shown escaped, never obeyed')
  t.notOk(shown.stdout.includes('\u001b'), 'no raw escape reaches the terminal')
  t.match(shown.stdout, /\n\s+p-2\s+pay-b\s+2\.0\.0\s+.*\s+39\s+STALE: no heartbeat for \S+/, 'an instance silent for more than 60 s')
  t.match(shown.stdout, /rate limit 100\/minute/)
  t.match(shown.stdout, /idle-service\s+1\s+off\s+-.*no instance connected/)
  t.match(shown.stdout, /\n\s+p-3\s+pay-c\s+2\.0\.0\s+.*\s+40\s+DISCONNECTED \d+s ago\n/, 'an instance whose stream closed, with when')
  t.notMatch(shown.stdout, /p-3.*STALE/, 'flagged disconnected, not also stale')
  t.match(shown.stdout, /3 services, 3 instances connected, 1 stale, 1 disconnected\n$/)

  const listed = json(await box.run(['services', '--json']))
  t.equal(listed.length, 3)
  t.same(listed[1].instances.map((i: { id: string, stale: boolean }) => [i.id, i.stale]), [['p-1', false], ['p-2', true], ['p-3', true]])
  t.match(listed[1].instances[2], { state: 'disconnected', disconnectedAt: String }, '--json keeps the server\'s state')
  t.equal(listed[1].maintenance.reason, 'failover\u001b[2J', '--json keeps the value exactly')
  t.same(asked(fake.requests), ['GET /api/services', 'GET /api/services'])
})

t.test('a service in scope qualifies bare paths and METHOD:/path; the flag beats the variable; status lists with ?service=', async t => {
  const fake = await startFake(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: fake.adminUrl })
  const [byEnv, byFlag, method, listed] = await Promise.all([
    box.waygate(['enable', '/api/payments', '--json'], { env: { WAYGATE_SERVICE: 'payments-service' } }),
    box.run(['disable', 'GET:/health', '--service', 'orders-service', '--json'], { env: { WAYGATE_SERVICE: 'payments-service' } }),
    box.run(['status', 'GET:/api/cart', '--json'], { env: { WAYGATE_SERVICE: 'orders-service' } }),
    box.run(['status', '--service', 'payments-service'])
  ])
  t.equal(byEnv.code, 0, byEnv.stderr)
  t.same(json(byEnv).routes.map((r: { key: string }) => r.key), ['payments-service:GET:/api/payments'])
  t.equal(byFlag.code, 0, byFlag.stderr)
  t.same(json(byFlag).routes.map((r: { key: string }) => r.key), ['orders-service:GET:/health'], '--service wins over WAYGATE_SERVICE')
  t.equal(method.code, 0, method.stderr)
  t.match(json(method), { key: 'orders-service:GET:/api/cart', service: 'orders-service' })
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /^SERVICE\s+ROUTE\s+STATUS/m)
  t.match(listed.stdout, /payments-service\s+GET:\/api\/payments\s+MAINTENANCE/, 'the ROUTE column leaves the service to its column')
  const seen = asked(fake.requests)
  t.ok(seen.includes('POST /api/routes/payments-service%3A%2Fapi%2Fpayments/enable'), 'a bare path in the scope, percent-encoded')
  t.ok(seen.includes('POST /api/routes/orders-service%3AGET%3A%2Fhealth/disable'))
  t.ok(seen.includes('GET /api/routes/orders-service%3AGET%3A%2Fapi%2Fcart'))
  t.ok(seen.includes('GET /api/routes?service=payments-service'))
  t.ok(seen.includes('GET /api/services/payments-service/maintenance'), 'status in a scope reads the service\'s maintenance for its banner')
})

t.test('a key naming a service: used as given; against --service it is a usage error, against WAYGATE_SERVICE a note', async t => {
  const fake = await startFake(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: fake.adminUrl })
  const [plain, contradiction, noted, badName, badEnv] = await Promise.all([
    box.run(['enable', 'orders-service:GET:/api/cart', '--json']),
    box.run(['enable', 'orders-service:GET:/api/cart', '--service', 'payments-service']),
    box.run(['enable', 'orders-service:GET:/api/cart'], { env: { WAYGATE_SERVICE: 'payments-service' } }),
    box.run(['status', '--service', 'Payments']),
    box.run(['status'], { env: { WAYGATE_SERVICE: 'get' } })
  ])
  t.equal(plain.code, 0, plain.stderr)
  t.equal(contradiction.code, 2)
  t.equal(contradiction.stderr, 'error: route orders-service:GET:/api/cart names service orders-service, but --service is payments-service\n' +
    'hint: drop --service, or give the route without its service: GET:/api/cart\n')
  t.equal(noted.code, 0, noted.stderr)
  t.equal(noted.stderr, 'note: orders-service:GET:/api/cart names service orders-service; using it, not payments-service from WAYGATE_SERVICE\n')
  t.match(noted.stdout, /orders-service\s+GET:\/api\/cart\s+ACTIVE/)
  t.equal(badName.code, 2)
  t.match(badName.stderr, /^error: --service: "Payments" is not a service name/)
  t.equal(badEnv.code, 1)
  t.match(badEnv.stderr, /^error: WAYGATE_SERVICE: "get" is an HTTP method, not a service name/)
  t.equal(asked(fake.requests).filter(r => r.startsWith('POST')).length, 2, 'the refused ones sent nothing')
})

t.test('a key matching routes of several services: exit 1 naming them and how to pick one; --all applies to every one', async t => {
  const fake = await startFake(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: fake.adminUrl })
  const [refused, refusedJson, all, missing] = await Promise.all([
    box.waygate(['disable', 'GET:/health']),
    box.run(['disable', 'GET:/health', '--json']),
    box.run(['disable', 'GET:/health', '--all', '--json']),
    box.run(['disable', 'GET:/nope', '--service', 'orders-service'])
  ])
  t.equal(refused.code, 1)
  t.equal(refused.stderr, 'error: GET:/health matches routes of 2 services: orders-service:GET:/health, payments-service:GET:/health\n' +
    'hint: pick one with --service orders-service (or WAYGATE_SERVICE), or name it in full, e.g. orders-service:GET:/health; --all changes all 2\n')
  t.match(JSON.parse(refusedJson.stderr), { error: { code: 'WG_ERR_ROUTE_AMBIGUOUS', status: 409, matches: ['orders-service:GET:/health', 'payments-service:GET:/health'] } })
  t.equal(all.code, 0)
  t.same(json(all).routes.map((r: { key: string }) => r.key), ['orders-service:GET:/health', 'payments-service:GET:/health'])
  t.equal(missing.code, 1)
  t.equal(missing.stderr, 'error: GET:/nope is not a route of service orders-service\nhint: list its routes: waygate status --service orders-service\n')
})

t.test('service maintenance: status, enable with --reason and --exempt, disable; the alias sm; SERVICE is required and checked', async t => {
  const fake = await startFake(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: fake.adminUrl })
  const on = await box.waygate(['service', 'maintenance', 'enable', 'payments-service', '--reason', 'failover', '--exempt', 'GET:/health', '--exempt', 'payments-service:/status', '--include-force-active'])
  t.equal(on.code, 0, on.stderr)
  t.match(on.stdout, /^maintenance of payments-service\s+ON\nreason\s+failover\n/)
  const enable = fake.requests.find(r => r.method === 'POST')!
  t.equal(enable.url, '/waygate/api/services/payments-service/maintenance/enable')
  t.same(JSON.parse(enable.body), { reason: 'failover', exemptPaths: ['GET:/health', '/status'], includeForceActive: true }, 'exempt keys sent as the service knows them')
  const status = json(await box.run(['sm', 'payments-service', '--json']))
  t.match(status, { service: 'payments-service', enabled: true, reason: 'failover' }, 'status is the default')
  const off = await box.run(['sm', 'disable', 'payments-service', '--json'])
  t.match(json(off), { service: 'payments-service', enabled: false })
  t.equal(fake.state.maintenance.enabled, false)

  const [missing, badName, foreignExempt, contradiction, noted] = await Promise.all([
    box.run(['sm', 'enable']),
    box.run(['sm', 'enable', 'Payments']),
    box.run(['sm', 'enable', 'payments-service', '--exempt', 'orders-service:/x']),
    box.run(['sm', 'enable', 'payments-service', '--service', 'orders-service']),
    box.run(['sm', 'status', 'payments-service'], { env: { WAYGATE_SERVICE: 'orders-service' } })
  ])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing required argument 'service'/)
  t.equal(badName.code, 2)
  t.equal(foreignExempt.code, 2)
  t.match(foreignExempt.stderr, /--exempt orders-service:\/x is a route of service orders-service, not payments-service/)
  t.equal(contradiction.code, 2)
  t.equal(noted.code, 0)
  t.equal(noted.stderr, 'note: acting on payments-service, not orders-service from WAYGATE_SERVICE\n')
  t.equal(fake.requests.filter(r => r.method === 'POST').length, 2, 'refused commands sent nothing')
})

t.test('service rate limit: get none, set keeps settings, enable/disable send the policy back, delete; the alias srl', async t => {
  const fake = await startFake(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: fake.adminUrl })
  const none = await box.run(['service', 'rl', 'get', 'payments-service'])
  t.equal(none.code, 0)
  t.equal(none.stdout, 'rate limit of payments-service  none\n')
  t.equal(none.stderr, 'hint: set one with: waygate service rl set payments-service 1000/minute\n')
  const noneOff = await box.run(['srl', 'disable', 'payments-service'])
  t.equal(noneOff.code, 1)
  t.match(noneOff.stderr, /no rate limit is set for service payments-service\nhint: set one with: waygate service rl set payments-service/)

  const set = await box.waygate(['srl', 'set', 'payments-service', '100/minute', '--key', 'global', '--burst', '5', '--exempt', 'GET:/health'])
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /rate limit of payments-service\s+ON\nlimits\s+100\/minute\nalgorithm\s+sliding_window\nkey\s+global\nburst\s+5/)
  const posted = () => fake.requests.filter(r => r.method === 'POST').map(r => JSON.parse(r.body))
  t.same(posted()[0], { limits: ['100/minute'], keyBy: 'global', burst: 5, exemptRoutes: ['GET:/health'] })
  await box.run(['srl', 'set', 'payments-service', '200/minute'])
  t.same(posted()[1], { keyBy: 'global', burst: 5, limits: ['200/minute'] }, 'a new limit keeps the key and burst; the exempt list stays on the server')
  const off = json(await box.run(['srl', 'disable', 'payments-service', '--json']))
  t.match(off, { service: 'payments-service', enabled: false, policy: { limits: ['200/minute'] } })
  t.same(posted()[2], { keyBy: 'global', burst: 5, limits: ['200/minute'], exemptRoutes: ['GET:/health'], enabled: false }, 'the whole policy, without its key')
  t.match(json(await box.run(['srl', 'enable', 'payments-service', '--json'])), { enabled: true })
  const deleted = await box.run(['srl', 'delete', 'payments-service'])
  t.equal(deleted.stdout, 'deleted the rate limit of payments-service\n')
  t.same(json(await box.run(['srl', 'delete', 'payments-service', '--json'])), { service: 'payments-service', deleted: false })
  t.ok(asked(fake.requests).every(r => r.includes('/api/services/payments-service/rate-limit')), asked(fake.requests).join('\n'))
})
