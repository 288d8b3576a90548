import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createMemoryBackend, type RouteState } from '@waygate/core'
import { routeState, startProcess, until } from '@waygate/core/testing'
// The CLI depends on no server package; like the other tests, this one borrows the workspace's
// sources to run a real Waygate Server.
import { createWaygateServer } from '@waygate/server'
import { json, sandbox } from './helpers/server.js'

// The seeds' multi-service CLI workflow, through the real binary, against a real Waygate Server on
// loopback with two services registered the way the SDK registers them.

function declared (key: string, fields: Partial<RouteState> = {}): RouteState {
  return routeState(key, { updatedAt: '2026-01-01T00:00:00.000Z', updatedBy: 'config', ...fields })
}

async function call (url: string, method: string, path: string, token: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

t.test('services, WAYGATE_SERVICE, --service beating it, unscoped status and audit, an ambiguous key, service maintenance', async t => {
  const app = await createWaygateServer({
    backend: createMemoryBackend(),
    auth: { username: 'admin', password: 'secret' },
    secretKey: 'cli-test-secret-key-0123456789',
    dashboard: false
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const { token } = await (await fetch(url + '/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret', platform: 'cli' })
  })).json() as { token: string }

  const register = (service: string, instance: string, routes: Array<Record<string, unknown>>) =>
    call(url, 'POST', `/api/sdk/services/${service}/register`, token, {
      manifest: (service === 'orders-service' ? 'b' : 'a').repeat(64),
      instance: { id: instance, host: `${service}-host`, version: '1.0.0' },
      routes
    })
  await register('payments-service', 'p-1', [
    declared('GET:/health', { forceActive: true }),
    declared('GET:/api/payments', { status: 'maintenance', reason: 'Database migration' }),
    declared('GET:/api/refunds')
  ])
  await register('orders-service', 'o-1', [
    declared('GET:/health', { forceActive: true }),
    declared('GET:/api/orders'),
    declared('GET:/api/cart')
  ])
  const stateOf = async (service: string, key: string): Promise<string> =>
    (await call(url, 'GET', `/api/routes?service=${service}`, token) as Array<{ key: string, status: string }>).find(r => r.key === key)!.status

  const box = await sandbox(t, { WAYGATE_SERVER_URL: url, WAYGATE_TOKEN: token })
  const payments = { env: { WAYGATE_SERVICE: 'payments-service' } }

  const services = await box.waygate(['services'])
  t.equal(services.code, 0, services.stderr)
  t.match(services.stdout, /orders-service\s+3\s+off\s+o-1\s+orders-service-host\s+1\.0\.0/)
  t.match(services.stdout, /payments-service\s+3\s+off\s+p-1\s+payments-service-host\s+1\.0\.0/)
  t.match(services.stdout, /2 services, 2 instances connected\n$/)

  const scoped = await box.waygate(['status', '--json'], payments)
  t.equal(scoped.code, 0, scoped.stderr)
  t.same(json(scoped).map((r: { key: string }) => r.key).sort(),
    ['payments-service:GET:/api/payments', 'payments-service:GET:/api/refunds', 'payments-service:GET:/health'])

  const enabled = await box.waygate(['enable', '/api/payments'], payments)
  t.equal(enabled.code, 0, enabled.stderr)
  t.match(enabled.stdout, /payments-service\s+GET:\/api\/payments\s+ACTIVE/)
  t.equal(await stateOf('payments-service', 'payments-service:GET:/api/payments'), 'active')

  const orders = await box.waygate(['status', '--service', 'orders-service'])
  t.equal(orders.code, 0, orders.stderr)
  t.match(orders.stdout, /orders-service\s+GET:\/api\/cart\s+ACTIVE/)
  t.notMatch(orders.stdout, /payments-service/)

  const flagWins = await box.waygate(['disable', '/api/cart', '--reason', 'redesign', '--service', 'orders-service'], payments)
  t.equal(flagWins.code, 0, flagWins.stderr)
  t.equal(await stateOf('orders-service', 'orders-service:GET:/api/cart'), 'disabled', '--service beats WAYGATE_SERVICE')

  const all = await box.waygate(['status'])
  t.equal(all.code, 0, all.stderr)
  t.match(all.stdout, /^SERVICE\s+ROUTE\s+STATUS/)
  t.match(all.stdout, /orders-service\s+GET:\/api\/cart\s+DISABLED\s+.*redesign/)
  t.match(all.stdout, /payments-service\s+GET:\/api\/payments\s+ACTIVE/)
  t.match(all.stdout, /\n6 routes\n$/)

  const ambiguous = await box.waygate(['disable', 'GET:/health'])
  t.equal(ambiguous.code, 1)
  t.match(ambiguous.stderr, /^error: GET:\/health matches routes of 2 services: orders-service:GET:\/health, payments-service:GET:\/health\nhint: pick one with --service orders-service/)

  const sm = await box.waygate(['sm', 'enable', 'payments-service', '--reason', 'failover', '--exempt', 'GET:/health', '--json'])
  t.equal(sm.code, 0, sm.stderr)
  t.match(json(sm), { service: 'payments-service', enabled: true, reason: 'failover', exemptPaths: ['GET:/health'] })
  t.match(await call(url, 'GET', '/api/services/payments-service/maintenance', token), { enabled: true, reason: 'failover' })

  const [audit, auditScoped] = await Promise.all([box.run(['audit']), box.run(['log', '--json', '--service', 'orders-service'])])
  t.equal(audit.code, 0, audit.stderr)
  t.match(audit.stdout, /^WHEN\s+SERVICE\s+ACTOR\s+VIA\s+ACTION\s+ROUTE/)
  t.match(audit.stdout, /payments-service\s+admin\s+cli\s+global_maintenance_on\s+\(service\)/)
  t.match(audit.stdout, /orders-service\s+admin\s+cli\s+disable\s+GET:\/api\/cart/)
  t.same(json(auditScoped).map((e: { service: string, key: string }) => `${e.service} ${e.key}`), ['orders-service orders-service:GET:/api/cart'])
})

// ---- the same workflow against two real services: the seeds' payments-service and orders-service
// (examples/multi-service.ts) as processes of their own, each attached with a service token the
// CLI created; every change is checked where it matters, in what each service answers ----

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url))
const TSX = import.meta.resolve('tsx')

/** What a service answers on `path`: status, error code and reason (JSON bodies only). */
async function answer (url: string, path: string): Promise<{ status: number, code?: string, reason?: string }> {
  const res = await fetch(url + path)
  const body = await res.json().catch(() => null) as { error?: { code?: string, reason?: string } } | null
  return { status: res.status, ...(body?.error?.code === undefined ? {} : { code: body.error.code, reason: body.error.reason }) }
}

/** Polls until the service answers `status` on `path` (it follows the server's stream). */
async function answers (service: { url: string, logs: () => string, name: string }, path: string, status: number): Promise<{ status: number, code?: string, reason?: string }> {
  let last: unknown = null
  return until(async () => {
    const got = await answer(service.url, path)
    last = got
    return got.status === status ? got : undefined
  }, 10_000, () => `${service.name} ${path} did not answer ${status}: last ${JSON.stringify(last)}\n${service.logs()}`, 25)
}

t.test('the seeds\' multi-service workflow against two real services attached with service tokens', async t => {
  const app = await createWaygateServer({
    backend: createMemoryBackend(),
    auth: { username: 'admin', password: 'secret' },
    secretKey: 'cli-test-secret-key-0123456789',
    dashboard: false,
    heartbeatMs: 1000
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  // the operator logs in with the CLI, as the seeds do
  const box = await sandbox(t, { WAYGATE_SERVER_URL: url })
  const login = await box.waygate(['login', 'admin', '--password-stdin'], { input: 'secret\n' })
  t.equal(login.code, 0, login.stderr)

  // one token per service, printed once on stdout
  const tokens: Record<string, string> = {}
  for (const service of ['payments-service', 'orders-service']) {
    const created = await box.waygate(['token', 'create', '--service', service, '--name', `${service} pods`, '--expires', '90d'])
    t.equal(created.code, 0, created.stderr)
    t.match(created.stdout, /^wg1\.\S+\n$/, 'the token alone on stdout')
    t.match(created.stderr, new RegExp(`created token [0-9a-f-]{36} for ${service}`))
    tokens[service] = created.stdout.trim()
  }
  const start = async (service: string) => {
    const proc = startProcess(t, service, ['--conditions=@waygate/source', '--import', TSX, 'multi-service.ts', service], {
      cwd: EXAMPLES,
      env: { PORT: '0', WAYGATE_SERVER_URL: url, WAYGATE_TOKEN: tokens[service]!, LOG_LEVEL: 'warn' }
    })
    const [, serviceUrl] = await proc.waitFor(new RegExp(`${service} on (http://\\S+)`), 60_000)
    return { name: service, url: serviceUrl!, logs: () => proc.logs() }
  }
  const [payments, orders] = await Promise.all([start('payments-service'), start('orders-service')])

  // the seeds' table of what each service answers at the start
  t.same(await answer(payments.url, '/health'), { status: 200 })
  t.match(await answer(payments.url, '/api/payments'), { status: 503, code: 'MAINTENANCE_MODE' })
  t.same(await answer(payments.url, '/api/refunds'), { status: 200 })
  t.match(await answer(orders.url, '/api/shipments'), { status: 503, code: 'ROUTE_DISABLED' })
  t.same(await answer(orders.url, '/api/cart'), { status: 200 })

  const listed = await box.waygate(['services'])
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /orders-service\s+4\s+off\s+\S+/)
  t.match(listed.stdout, /payments-service\s+5\s+off\s+\S+/)
  t.match(listed.stdout, /2 services, 2 instances connected\n$/)
  t.notMatch(listed.stdout, /STALE/)

  const tokenList = await box.waygate(['token', 'list', '--json'])
  t.equal(tokenList.code, 0, tokenList.stderr)
  t.same(json(tokenList).map((i: { service: string, state: string }) => `${i.service} ${i.state}`).sort(), ['orders-service active', 'payments-service active'])
  t.notOk(tokenList.stdout.includes(tokens['payments-service']!) || tokenList.stdout.includes(tokens['orders-service']!), 'the list never shows a token')

  const env = { env: { WAYGATE_SERVICE: 'payments-service' } }
  const scoped = await box.waygate(['status'], env)
  t.equal(scoped.code, 0, scoped.stderr)
  t.match(scoped.stdout, /GET:\/api\/payments\s+MAINTENANCE/)
  t.notMatch(scoped.stdout, /orders-service|\/api\/cart/, 'only the payments routes')

  const enabled = await box.waygate(['enable', '/api/payments'], env)
  t.equal(enabled.code, 0, enabled.stderr)
  t.same(await answers(payments, '/api/payments', 200), { status: 200 }, 'payments serves /api/payments again')

  const current = await box.waygate(['current-service'], env)
  t.equal(current.code, 0, current.stderr)
  t.match(current.stdout, /payments-service/)

  const ordersStatus = await box.waygate(['status', '--service', 'orders-service'], env)
  t.equal(ordersStatus.code, 0, ordersStatus.stderr)
  t.match(ordersStatus.stdout, /GET:\/api\/cart\s+ACTIVE/)
  t.notMatch(ordersStatus.stdout, /payments/, 'the flag beats the variable')

  const disabled = await box.waygate(['disable', '/api/cart', '--reason', 'redesign', '--service', 'orders-service'], env)
  t.equal(disabled.code, 0, disabled.stderr)
  t.same(await answers(orders, '/api/cart', 503), { status: 503, code: 'ROUTE_DISABLED', reason: 'redesign' }, 'orders refuses /api/cart')
  t.same(await answer(payments.url, '/api/payments'), { status: 200 }, 'payments is unaffected')
  t.same(await answer(payments.url, '/api/refunds'), { status: 200 })

  // unscoped: every service, with a service column
  const all = await box.waygate(['status'])
  t.equal(all.code, 0, all.stderr)
  t.match(all.stdout, /^SERVICE\s+ROUTE\s+STATUS/)
  t.match(all.stdout, /orders-service\s+GET:\/api\/cart\s+DISABLED/)
  t.match(all.stdout, /payments-service\s+GET:\/api\/payments\s+ACTIVE/)
  t.match(all.stdout, /\n9 routes\n$/)
  const audit = await box.waygate(['audit'])
  t.equal(audit.code, 0, audit.stderr)
  t.match(audit.stdout, /^WHEN\s+SERVICE\s+ACTOR/)
  t.match(audit.stdout, /orders-service\s+admin\s+cli\s+disable\s+GET:\/api\/cart/)
  t.match(audit.stdout, /payments-service\s+admin\s+cli\s+enable\s+GET:\/api\/payments/)
  t.match(audit.stdout, /payments-service\s+admin\s+cli\s+token_created/)

  // global maintenance reaches both; force-active /health stays up
  const down = await box.waygate(['global', 'enable', '--reason', 'emergency maintenance'])
  t.equal(down.code, 0, down.stderr)
  t.same(await answers(payments, '/api/refunds', 503), { status: 503, code: 'MAINTENANCE_MODE', reason: 'emergency maintenance' })
  t.same(await answers(orders, '/api/orders', 503), { status: 503, code: 'MAINTENANCE_MODE', reason: 'emergency maintenance' })
  t.same(await answer(orders.url, '/health'), { status: 200 })
  const up = await box.waygate(['global', 'disable'])
  t.equal(up.code, 0, up.stderr)
  t.same(await answers(payments, '/api/refunds', 200), { status: 200 })
  t.same(await answers(orders, '/api/orders', 200), { status: 200 })
  t.match(await answer(orders.url, '/api/cart'), { status: 503, code: 'ROUTE_DISABLED' }, 'the route change outlives global maintenance')

  // service rate limit: set, exhausted, reset from the CLI in the service itself
  const rl = await box.waygate(['srl', 'set', 'orders-service', '2/minute'])
  t.equal(rl.code, 0, rl.stderr)
  const limited = await until(async () => {
    const got = await answer(orders.url, '/api/orders')
    return got.status === 429 ? got : undefined
  }, 10_000, () => 'orders never applied its rate limit')
  t.equal(limited.status, 429)
  const reset = await box.waygate(['service', 'rl', 'reset', 'orders-service', '--json'])
  t.equal(reset.code, 0, reset.stderr)
  t.same(json(reset), { service: 'orders-service', reset: true, client: null })
  t.same(await answers(orders, '/api/orders', 200), { status: 200 }, 'the counters were reset in the service')
  t.equal((await box.waygate(['srl', 'reset', 'payments-service'])).code, 1, 'no rate limit to reset: a failure')

  // revoking payments' token closes its stream; it keeps serving what it had, orders carries on
  const id = (json(tokenList) as Array<{ id: string, service: string }>).find(i => i.service === 'payments-service')!.id
  const revoked = await box.waygate(['token', 'revoke', id])
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, new RegExp(`revoked token ${id} of payments-service`))
  await until(async () => {
    // its stream closed: the server lists it as disconnected for a while, then drops it
    const listing = json(await box.run(['services', '--json'])) as Array<{ name: string, instances: Array<{ state?: string }> }>
    const left = listing.find(s => s.name === 'payments-service')?.instances ?? []
    return left.every(i => i.state === 'disconnected') ? true : undefined
  }, 15_000, () => `payments stayed connected:\n${payments.logs()}`, 200)
  await until(async () => /refused this service's credentials \(401 WG_ERR_AUTH_REQUIRED: [^)]*service token was revoked/.test(payments.logs()) ? true : undefined, 10_000,
    () => `payments did not say why it stopped following the server:\n${payments.logs()}`)
  t.pass('the service says why it stopped following the server')
  const stillUp = await box.waygate(['disable', '/api/refunds', '--service', 'payments-service', '--reason', 'after revoke'])
  t.equal(stillUp.code, 0, stillUp.stderr)
  t.same(await answer(payments.url, '/api/refunds'), { status: 200 }, 'a revoked service no longer hears of changes')
  t.same(await answer(payments.url, '/api/payments'), { status: 200 }, 'and keeps serving its last snapshot')
  const revokedList = await box.waygate(['token', 'list', '--service', 'payments-service'])
  t.match(revokedList.stdout, new RegExp(`${id}\\s+payments-service\\s+payments-service pods\\s+revoked`))

  for (const [args, why] of [
    [['token', 'create'], 'no service'],
    [['token', 'create', '--service', 'payments-service', '--expires', '10y'], 'past five years'],
    [['token', 'revoke', 'nope'], 'not an id']
  ] as const) {
    const res = await box.run([...args])
    t.equal(res.code, 2, `${why}: ${res.stderr}`)
  }
  const unknown = await box.run(['token', 'revoke', '00000000-0000-4000-8000-000000000000', '--json'])
  t.equal(unknown.code, 1)
  t.match(JSON.parse(unknown.stderr), { error: { code: 'WG_ERR_TOKEN_NOT_FOUND' } })
})
