import t from 'tap'
import { call, declared, login, openStream, register, startServer } from './helpers/server.js'

const enc = encodeURIComponent

t.test('a service token reaches only its own service\'s SDK endpoints, me and logout', async t => {
  const { url } = await startServer(t)
  const login1 = await call(url, 'POST', '/api/auth/login', { body: { username: 'svc-user', password: 'svc-pass', platform: 'sdk', service: 'payments' } })
  t.equal(login1.status, 200)
  t.equal(login1.body.service, 'payments')
  t.equal(login1.body.platform, 'sdk')
  const token = login1.body.token as string
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'))
  t.equal(claims.svc, 'payments', 'the claim is svc')

  t.equal((await register(url, 'payments', token, ['GET:/x'])).status, 200)
  t.equal((await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })).status, 200)
  t.match((await call(url, 'GET', '/api/auth/me', { token })).body, { user: 'svc-user', platform: 'sdk', service: 'payments' })

  for (const [method, path] of [
    ['GET', '/api/routes'], ['GET', '/api/services'], ['GET', '/api/audit'], ['POST', '/api/global/enable'],
    ['GET', '/api/rate-limits'], ['POST', '/api/services/payments/maintenance/enable'], ['GET', '/api/status'],
    ['POST', `/api/routes/${enc('payments:GET:/x')}/disable`]
  ] as const) {
    const res = await call(url, method, path, { token, body: method === 'POST' ? {} : undefined })
    t.equal(res.status, 403, `${method} ${path}`)
    t.equal(res.body.error?.code, 'WG_ERR_AUTH_SCOPE')
  }
  const otherPaths = [
    ['GET', '/api/sdk/services/orders/snapshot'],
    ['POST', '/api/sdk/services/orders/register'],
    ['PUT', `/api/sdk/services/orders/routes/${enc('GET:/x')}`],
    ['GET', '/api/sdk/services/orders/audit']
  ] as const
  for (const [method, path] of otherPaths) {
    const res = await call(url, method, path, { token, body: method === 'GET' ? undefined : {} })
    t.equal(res.status, 403, `another service: ${method} ${path}`)
    t.equal(res.body.error?.code, 'WG_ERR_AUTH_SCOPE')
  }
  const stream = await openStream(t, url, '/api/sdk/services/orders/events', { token })
  t.equal(stream.status, 403, 'nor its stream')

  // its own registration cannot carry another service's routes
  const sneaky = await register(url, 'payments', token, [declared('GET:/y', { service: 'orders' })])
  t.equal(sneaky.status, 403)
  const qualified = await register(url, 'payments', token, ['orders:GET:/y'])
  t.equal(qualified.status, 403)
  const admin = await login(url)
  const keys = (await call(url, 'GET', '/api/routes', { token: admin })).body.map((r: { key: string }) => r.key)
  t.same(keys, ['payments:GET:/x'], 'nothing was registered for orders')

  // operators' tokens work on every service's SDK endpoints
  t.equal((await call(url, 'GET', '/api/sdk/services/orders/snapshot', { token: admin })).status, 200)
  // a scope only comes with platform sdk, and must be a service name
  t.equal((await call(url, 'POST', '/api/auth/login', { body: { username: 'admin', password: 'secret', platform: 'cli', service: 'payments' } })).status, 400)
  t.equal((await call(url, 'POST', '/api/auth/login', { body: { username: 'admin', password: 'secret', platform: 'sdk', service: 'get' } })).status, 400)
  t.equal((await call(url, 'POST', '/api/auth/login', { body: { username: 'admin', password: 'secret', platform: 'sdk', service: 'Bad Name' } })).status, 400)
})

t.test('revoking a service token closes its open streams at once', async t => {
  const { url } = await startServer(t)
  const token = await login(url, { service: 'payments' })
  const keep = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/x'])
  const stream = await openStream(t, url, '/api/sdk/services/payments/events', { token })
  const other = await openStream(t, url, '/api/sdk/services/payments/events', { token: keep })
  await stream.next()
  await other.next()
  const started = Date.now()
  t.equal((await call(url, 'POST', '/api/auth/logout', { token, body: {} })).status, 200)
  await stream.closed(1000)
  t.ok(Date.now() - started < 1000)
  t.notOk(other.ended, 'another token\'s stream stays open')
  t.equal((await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })).status, 401, 'and the token is refused from then on')
})

t.test('a server without auth leaves the SDK endpoints open', async t => {
  const { url } = await startServer(t, { auth: false })
  t.equal((await register(url, 'payments', 'ignored', ['GET:/x'])).status, 200)
  t.equal((await call(url, 'GET', '/api/sdk/services/payments/snapshot')).status, 200)
})
