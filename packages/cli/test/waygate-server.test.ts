import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createMemoryBackend, type RouteState } from '@waygate/core'
import { routeState } from '@waygate/core/testing'
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
