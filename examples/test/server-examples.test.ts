// The seeds' two Waygate Server examples: the server on a loopback port, the services attached
// to it (in this process, requests injected), then each example started with its one command.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMemoryBackend } from '@waygate/core'
import { build as buildServer } from '../waygate-server.js'
import { build as buildService } from '../waygate-service.js'
import { buildOrders, buildPayments } from '../multi-service.js'
import type { ServiceExampleOptions } from '../lib/service-app.js'
import { runScript, until, type Teardown } from './helpers/processes.js'

/** The server example on a loopback port, on its own memory backend. */
async function startServer (t: Teardown): Promise<string> {
  const server = await buildServer({ backend: createMemoryBackend() })
  t.teardown(() => server.close())
  await server.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
}

/** A service example attached to `serverUrl`, ready (its snapshot taken), closed when the test ends. */
async function startService (t: Teardown, build: (options: ServiceExampleOptions) => Promise<FastifyInstance>, serverUrl: string): Promise<FastifyInstance> {
  const app = await build({ serverUrl, username: 'admin', password: 'secret', readyTimeoutMs: 5000 })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

async function adminToken (serverUrl: string): Promise<string> {
  const res = await fetch(`${serverUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret' })
  })
  return ((await res.json()) as { token: string }).token
}

/** What the service answers: status and error code. */
async function answer (app: FastifyInstance, path: string): Promise<[number, string | undefined]> {
  const res = await app.inject(path)
  return [res.statusCode, res.statusCode >= 400 ? res.json().error?.code : undefined]
}

t.test('single service: the seeds\' table', async t => {
  const serverUrl = await startServer(t)
  const app = await startService(t, buildService, serverUrl)
  t.match((await app.waygate.status()).sync, { state: 'connected', source: 'server', service: 'payments-service' })

  t.same(await answer(app, '/health'), [200, undefined])
  t.same(await answer(app, '/api/payments'), [503, 'MAINTENANCE_MODE'])
  t.equal((await app.inject('/api/payments')).json().error.reason, 'Payment processor upgrade, back at 04:00 UTC')
  t.same(await answer(app, '/api/orders'), [200, undefined])
  t.same(await answer(app, '/api/legacy'), [503, 'ROUTE_DISABLED'])
  const v1 = await app.inject('/api/v1/products')
  t.equal(v1.statusCode, 200)
  t.match(v1.headers.deprecation, /^@\d+$/, 'Deprecation')
  t.equal(v1.headers.sunset, 'Thu, 01 Jun 2028 00:00:00 GMT')
  t.equal(v1.headers.link, '</api/v2/products>; rel="successor-version"')
  t.same(await answer(app, '/api/v2/products'), [200, undefined])

  // the server holds the same table, under the service's name
  const token = await adminToken(serverUrl)
  const routes = await (await fetch(`${serverUrl}/api/routes?service=payments-service`, { headers: { authorization: `Bearer ${token}` } })).json() as Array<{ key: string, status: string }>
  t.same(Object.fromEntries(routes.map(r => [r.key, r.status])), {
    'payments-service:GET:/health': 'active',
    'payments-service:GET:/api/payments': 'maintenance',
    'payments-service:GET:/api/orders': 'active',
    'payments-service:GET:/api/legacy': 'disabled',
    'payments-service:GET:/api/v1/products': 'deprecated',
    'payments-service:GET:/api/v2/products': 'active'
  })
})

t.test('multi-service: the seeds\' tables, and Swagger UI following the server', async t => {
  const serverUrl = await startServer(t)
  const [payments, orders] = await Promise.all([startService(t, buildPayments, serverUrl), startService(t, buildOrders, serverUrl)])

  t.same(await answer(payments, '/health'), [200, undefined])
  t.same(await answer(payments, '/api/payments'), [503, 'MAINTENANCE_MODE'])
  t.same(await answer(payments, '/api/refunds'), [200, undefined])
  const v1 = await payments.inject('/api/v1/invoices')
  t.equal(v1.statusCode, 200)
  t.match(v1.headers.deprecation, /^@\d+$/)
  t.equal(v1.headers.sunset, 'Thu, 01 Jun 2028 00:00:00 GMT')
  t.equal(v1.headers.link, '</api/v2/invoices>; rel="successor-version"')
  t.same(await answer(payments, '/api/v2/invoices'), [200, undefined])

  t.same(await answer(orders, '/health'), [200, undefined])
  t.same(await answer(orders, '/api/orders'), [200, undefined])
  t.same(await answer(orders, '/api/shipments'), [503, 'ROUTE_DISABLED'])
  t.same(await answer(orders, '/api/cart'), [200, undefined])
  t.same(await answer(payments, '/api/orders'), [404, undefined], 'each service has only its own routes')

  const token = await adminToken(serverUrl)
  const services = await (await fetch(`${serverUrl}/api/services`, { headers: { authorization: `Bearer ${token}` } })).json() as Array<{ name: string, routes: number, instances: unknown[] }>
  t.same(services.map(s => [s.name, s.routes, s.instances.length]).sort(), [['orders-service', 4, 1], ['payments-service', 5, 1]], 'both services are on the server, each with one instance')

  const documented = async (app: FastifyInstance): Promise<string[]> => Object.keys((await app.inject('/docs/json')).json().paths).sort()
  t.same(await documented(payments), ['/api/payments', '/api/refunds', '/api/v1/invoices', '/api/v2/invoices', '/health'])
  t.same(await documented(orders), ['/api/cart', '/api/orders', '/health'], 'the disabled /api/shipments is not documented')
  t.equal((await payments.inject('/docs/')).statusCode, 200, 'Swagger UI is served')

  const res = await fetch(`${serverUrl}/api/routes/${encodeURIComponent('payments-service:GET:/api/refunds')}/disable`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'refunds paused' })
  })
  t.equal(res.status, 200, 'disabled through the server\'s REST API')
  await until(async () => (await documented(payments)).includes('/api/refunds') ? undefined : true, 2000,
    () => 'the disabled route stayed in the payments service\'s docs')
  t.same(await answer(payments, '/api/refunds'), [503, 'ROUTE_DISABLED'])
  t.same(await documented(orders), ['/api/cart', '/api/orders', '/health'], 'the other service\'s docs are unchanged')
})

t.test('each example starts with its one command', async t => {
  const server = runScript(t, 'waygate-server', { PORT: '0' })
  const [, serverUrl] = await server.waitFor(/Waygate Server on (http:\/\/\S+)/, 30_000)
  const payments = runScript(t, 'payments-service', { PORT: '0', WAYGATE_SERVER_URL: serverUrl! })
  const [, paymentsUrl] = await payments.waitFor(/payments-service on (http:\/\/\S+)/, 30_000)
  for (const [name, url, proc] of [['server', serverUrl!, server], ['payments-service', paymentsUrl!, payments]] as const) {
    const health = await until(async () => {
      const res = await fetch(`${url}/health`)
      return res.status === 200 ? res : undefined
    }, 10_000, () => `${name} /health never answered 200:\n${proc.logs()}`)
    t.equal(health.status, 200, `${name} /health`)
  }
  t.match(payments.logs(), /connected/, 'the service says it is connected to the server')
  t.equal((await fetch(`${paymentsUrl}/api/payments`)).status, 503, 'and enforces the server\'s state')
})
