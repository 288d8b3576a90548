// What issue 13 added to the operators' lists and the service tier: `?service=` on the rate limit
// lists, `stale` on instances, and a reset of a service's rate limit that reaches its instances.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import { waygateService } from '@waygate/fastify'
import { call, login, register, startServer } from './helpers/server.js'
import { until } from './helpers/processes.js'

const enc = encodeURIComponent

t.test('GET /api/rate-limits and /api/rate-limits/blocked take ?service=', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  await register(url, 'payments-service', admin, ['GET:/api/payments'])
  await register(url, 'orders-service', admin, ['GET:/api/cart'])
  for (const key of ['payments-service:GET:/api/payments', 'orders-service:GET:/api/cart']) {
    t.equal((await call(url, 'POST', '/api/rate-limits', { token: admin, body: { key, limits: ['10/minute'] } })).status, 200, key)
  }
  const all = (await call(url, 'GET', '/api/rate-limits', { token: admin })).body
  t.same(all.map((p: { key: string }) => p.key), ['orders-service:GET:/api/cart', 'payments-service:GET:/api/payments'])
  const payments = (await call(url, 'GET', '/api/rate-limits?service=payments-service', { token: admin })).body
  t.same(payments.map((p: { key: string }) => p.key), ['payments-service:GET:/api/payments'])
  t.same((await call(url, 'GET', '/api/rate-limits?service=nobody', { token: admin })).body, [])
  t.same((await call(url, 'GET', '/api/rate-limits/blocked?service=orders-service&limit=5', { token: admin })).body, [])
  for (const path of ['/api/rate-limits?service=Not_A_Name', '/api/rate-limits/blocked?service=%20', '/api/rate-limits?other=1']) {
    const res = await call(url, 'GET', path, { token: admin })
    t.equal(res.status, 400, path)
    t.equal(res.body.error.code, 'WG_ERR_REQUEST_INVALID', path)
  }
})

t.test('an instance that stops heartbeating is flagged stale before it goes', async t => {
  // heartbeats every 2 s: stale after 4 s of silence, gone after 6 s
  const { url } = await startServer(t, { heartbeatMs: 2000 })
  const admin = await login(url)
  await register(url, 'payments-service', admin, ['GET:/x'], 'pod-1')
  const instance = async (): Promise<{ id: string, stale: boolean } | undefined> =>
    (await call(url, 'GET', '/api/services', { token: admin })).body.find((s: { name: string }) => s.name === 'payments-service')?.instances[0]
  t.match(await instance(), { id: 'pod-1', stale: false }, 'fresh after its registration')
  const stale = await until(async () => (await instance())?.stale === true ? true : undefined, 10_000, () => 'pod-1 was never flagged stale')
  t.ok(stale)
  await until(async () => (await instance()) === undefined ? true : undefined, 10_000, () => 'pod-1 stayed listed')
})

t.test('a service rate limit reset from the server resets the counters in the service', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygateService, { serverUrl: url, service: 'payments-service', username: 'admin', password: 'secret', readyTimeoutMs: 5000 })
  app.get('/api/payments', async () => ({ ok: true }))
  await app.ready()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const serviceUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const status = async (): Promise<number> => (await fetch(`${serviceUrl}/api/payments`)).status

  const none = await call(url, 'POST', '/api/services/payments-service/rate-limit/reset', { token: admin, body: {} })
  t.equal(none.status, 400, 'no rate limit, nothing to reset')
  t.equal((await call(url, 'POST', '/api/services/payments-service/rate-limit', { token: admin, body: { limits: ['2/minute'] } })).status, 200)
  await until(async () => (await app.waygateRateLimits.getService()) !== null ? true : undefined, 5000, () => 'the service never got its rate limit')
  t.equal(await status(), 200)
  t.equal(await status(), 200)
  t.equal(await status(), 429, 'the third request of the minute is refused')

  const reset = await call(url, 'POST', '/api/services/payments-service/rate-limit/reset', { token: admin, body: {} })
  t.equal(reset.status, 200)
  t.same(reset.body, { reset: true })
  await until(async () => await status() === 200 ? true : undefined, 5000, () => 'the service still refuses after the reset')
  const audit = (await call(url, 'GET', '/api/audit?service=payments-service&action=rate_limit_reset', { token: admin })).body
  t.match(audit, [{ action: 'rate_limit_reset', actor: 'admin', key: '*', service: 'payments-service' }])

  t.equal((await call(url, 'POST', `/api/services/payments-service/rate-limit/reset?client=${enc('127.0.0.1')}`, { token: admin, body: {} })).status, 200, 'one client')

  // a route's own policy, reset through the server's /api/rate-limits/:key/reset, is reset in the service too
  t.equal((await call(url, 'DELETE', '/api/services/payments-service/rate-limit', { token: admin })).status, 200)
  const key = 'payments-service:GET:/api/payments'
  t.equal((await call(url, 'POST', '/api/rate-limits', { token: admin, body: { key, limits: ['1/minute'] } })).status, 200)
  await until(async () => app.waygateRateLimits.policyFor('GET:/api/payments') !== null && (await app.waygateRateLimits.getService()) === null ? true : undefined,
    5000, () => 'the service never got the route policy')
  await until(async () => await status() === 429 ? true : undefined, 5000, () => 'the route policy never refused')
  t.equal((await call(url, 'POST', `/api/rate-limits/${enc(key)}/reset`, { token: admin, body: {} })).status, 200)
  await until(async () => await status() === 200 ? true : undefined, 5000, () => 'the route\'s counters were not reset in the service')
  t.equal(await status(), 429, 'and count again from there')
  t.equal((await call(url, 'POST', '/api/services/GET/rate-limit/reset', { token: admin, body: {} })).status, 400, 'an HTTP method names no service')
  const scoped = await login(url, { service: 'payments-service' })
  t.equal((await call(url, 'POST', '/api/services/payments-service/rate-limit/reset', { token: scoped, body: {} })).status, 403, 'not with a service\'s token')
})
