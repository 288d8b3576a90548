import t from 'tap'
import { startReceiver } from '../../core/test/helpers/webhook-receiver.js'
import { call, declared, login, openStream, register, startServer } from './helpers/server.js'

const enc = encodeURIComponent

t.test('service maintenance: get, enable, disable, audited, streamed to that service only', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/api/payments', 'GET:/health'])
  await register(url, 'orders', admin, ['GET:/api/orders'])
  const payments = await openStream(t, url, '/api/sdk/services/payments/events', { token })
  const orders = await openStream(t, url, '/api/sdk/services/orders/events', { token: admin })
  await payments.next()
  await orders.next()

  t.match((await call(url, 'GET', '/api/services/payments/maintenance', { token: admin })).body, { enabled: false })
  const on = await call(url, 'POST', '/api/services/payments/maintenance/enable', { token: admin, body: { reason: 'deploy', exemptPaths: ['GET:/health', 'payments:/status'] } })
  t.equal(on.status, 200)
  t.match(on.body, { enabled: true, reason: 'deploy', exemptPaths: ['GET:/health', '/status'], includeForceActive: false })
  const change = await payments.next()
  t.same(change.data.change, { type: 'service', maintenance: on.body })
  t.match((await call(url, 'GET', '/api/services/payments/maintenance', { token: admin })).body, { enabled: true, reason: 'deploy' })
  t.match((await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })).body.serviceMaintenance, { enabled: true })
  t.match((await call(url, 'GET', '/api/services', { token: admin })).body, [{ name: 'orders', maintenance: { enabled: false } }, { name: 'payments', maintenance: { enabled: true } }])

  const off = await call(url, 'POST', '/api/services/payments/maintenance/disable', { token: admin, body: {} })
  t.match(off.body, { enabled: false, reason: '' })
  t.equal((await payments.next()).data.change.maintenance.enabled, false)
  await t.rejects(orders.next(undefined, 200), 'orders heard of neither')

  const audit = (await call(url, 'GET', '/api/audit?service=payments', { token: admin })).body
  t.match(audit.map((e: { action: string }) => e.action), ['global_maintenance_off', 'global_maintenance_on'])
  t.match(audit[1], { service: 'payments', key: '*', actor: 'admin', reason: 'deploy' })
  t.same((await call(url, 'GET', '/api/audit?service=orders', { token: admin })).body, [])

  // invalid input is a 400, never a 500
  for (const [path, body] of [
    ['/api/services/payments/maintenance/enable', { reason: 5 }],
    ['/api/services/payments/maintenance/enable', { exemptPaths: ['orders:GET:/x'] }],
    ['/api/services/payments/maintenance/enable', { extra: true }],
    ['/api/services/Not_A_Name/maintenance/enable', {}],
    ['/api/services/get/maintenance/enable', {}]
  ] as const) {
    const res = await call(url, 'POST', path, { token: admin, body })
    t.equal(res.status, 400, `${path} ${JSON.stringify(body)}`)
  }
})

t.test('service rate limit: set, read, delete, audited, streamed as @service', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/api/payments'])
  const stream = await openStream(t, url, '/api/sdk/services/payments/events', { token })
  await stream.next()

  t.equal((await call(url, 'GET', '/api/services/payments/rate-limit', { token: admin })).status, 404)
  const set = await call(url, 'POST', '/api/services/payments/rate-limit', { token: admin, body: { limits: ['100/minute'], exemptRoutes: ['GET:/api/payments'] } })
  t.equal(set.status, 200)
  t.match(set.body, { policy: { key: '@service:payments', limits: ['100/minute'] }, enabled: true, exemptRoutes: ['GET:/api/payments'] })
  const change = (await stream.next()).data.change
  t.match(change, { type: 'record', namespace: 'waygate:rate-limits', id: '@service', record: { id: '@service', value: { enabled: true } } })
  t.match((await call(url, 'GET', '/api/services/payments/rate-limit', { token: admin })).body, { enabled: true })
  const snapshot = (await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })).body
  t.match(snapshot.rateLimits, [{ id: '@service' }])

  // a route policy set by an operator reaches the service under its plain key, the global one as *
  t.equal((await call(url, 'POST', '/api/rate-limits', { token: admin, body: { key: 'payments:GET:/api/payments', limits: ['5/second'] } })).status, 200)
  t.match((await stream.next()).data.change, { type: 'record', id: 'GET:/api/payments', record: { value: { key: 'GET:/api/payments' } } })
  t.equal((await call(url, 'POST', '/api/rate-limits/global', { token: admin, body: { limits: ['1000/minute'] } })).status, 200)
  t.match((await stream.next()).data.change, { type: 'record', id: '*' })

  t.equal((await call(url, 'POST', '/api/services/payments/rate-limit', { token: admin, body: { limits: ['lots'] } })).status, 400)
  t.equal((await call(url, 'POST', '/api/services/payments/rate-limit', { token: admin, body: { limits: ['1/second'], exemptRoutes: ['orders:GET:/x'] } })).status, 400)
  t.same((await call(url, 'DELETE', '/api/services/payments/rate-limit', { token: admin })).body, { deleted: true })
  t.match((await stream.next()).data.change, { type: 'record', id: '@service', record: null })
  t.same((await call(url, 'DELETE', '/api/services/payments/rate-limit', { token: admin })).body, { deleted: false })
  const actions = (await call(url, 'GET', '/api/audit?service=payments', { token: admin })).body.map((e: { action: string }) => e.action)
  t.same(actions, ['rate_limit_delete', 'rate_limit_set', 'rate_limit_set'], 'the service policy and its route\'s policy')
})

t.test('a key without a service matching routes of two services is refused with the matches', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  await register(url, 'payments', admin, ['GET:/health'])
  await register(url, 'orders', admin, ['GET:/health'])
  const res = await call(url, 'POST', `/api/routes/${enc('GET:/health')}/disable`, { token: admin, body: {} })
  t.equal(res.status, 409)
  t.equal(res.body.error.code, 'WG_ERR_ROUTE_AMBIGUOUS')
  t.same(res.body.error.matches.sort(), ['orders:GET:/health', 'payments:GET:/health'])
  t.equal((await call(url, 'POST', `/api/routes/${enc('orders:GET:/health')}/disable`, { token: admin, body: {} })).status, 200)
  const listed = (await call(url, 'GET', '/api/routes?service=orders', { token: admin })).body
  t.match(listed, [{ key: 'orders:GET:/health', service: 'orders', status: 'disabled' }])
})

t.test('compare-and-set writes from a service: 409 with current, audited as sdk, webhooks once', async t => {
  const receiver = await startReceiver(t)
  const { url } = await startServer(t, { webhooks: [{ url: receiver.url }] })
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/a'])
  const { body: snapshot } = await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })
  const current = snapshot.routes[0]
  const next = { ...current, status: 'disabled', reason: 'from code', updatedBy: 'payments' }
  const entry = {
    id: 'e-1',
    timestamp: new Date().toISOString(),
    key: 'GET:/a',
    service: null,
    action: 'disable',
    actor: 'payments',
    platform: 'system',
    reason: 'from code',
    previousStatus: 'active',
    newStatus: 'disabled'
  }
  const path = `/api/sdk/services/payments/routes/${enc('GET:/a')}`
  const ok = await call(url, 'PUT', path, { token, body: { base: current, next, audit: entry } })
  t.equal(ok.status, 200)
  t.match(ok.body.state, { key: 'GET:/a', status: 'disabled', service: 'payments' })

  const stale = await call(url, 'PUT', path, { token, body: { base: current, next: { ...current, reason: 'other' } } })
  t.equal(stale.status, 409)
  t.equal(stale.body.error.code, 'WG_ERR_CONFLICT')
  t.match(stale.body.error.current, { key: 'GET:/a', status: 'disabled' }, 'current, key plain')

  const created = await call(url, 'PUT', `/api/sdk/services/payments/routes/${enc('GET:/new')}`, { token, body: { base: null, next: declared('GET:/new') } })
  t.equal(created.status, 200, 'base null: a key nobody stored')
  t.equal((await call(url, 'PUT', path, { token, body: { base: null, next: declared('GET:/other') } })).status, 400, 'next must be the key of the path')

  const [delivery] = await receiver.waitFor(1)
  t.match(delivery!.json, { })
  t.match(JSON.stringify(delivery!.json), /payments:GET:\/a/)
  const audit = (await call(url, 'GET', '/api/sdk/services/payments/audit', { token })).body
  t.match(audit, [{ id: 'e-1', key: 'GET:/a', platform: 'sdk', service: 'payments', actor: 'payments' }])
  const admin = await login(url)
  t.match((await call(url, 'GET', '/api/audit?service=payments', { token: admin })).body, [{ key: 'payments:GET:/a', platform: 'sdk' }])

  // an audit entry sent on its own is written once per id
  const appended = { ...entry, id: 'e-2', action: 'rate_limit_set', key: '*' }
  t.same((await call(url, 'POST', '/api/sdk/services/payments/audit', { token, body: appended })).body, { written: true })
  t.same((await call(url, 'POST', '/api/sdk/services/payments/audit', { token, body: appended })).body, { written: false })
  await receiver.waitFor(2)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(receiver.received.length, 2, 'one webhook per change')
})

t.test('service maintenance and rate limit records through the SDK', async t => {
  const { url } = await startServer(t)
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/a'])
  const { body: snapshot } = await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })
  const next = { ...snapshot.serviceMaintenance, enabled: true, reason: 'from code', since: new Date().toISOString() }
  const res = await call(url, 'PUT', '/api/sdk/services/payments/maintenance', { token, body: { base: snapshot.serviceMaintenance, next } })
  t.equal(res.status, 200)
  t.same(res.body.maintenance, next)
  const stale = await call(url, 'PUT', '/api/sdk/services/payments/maintenance', { token, body: { base: snapshot.serviceMaintenance, next } })
  t.equal(stale.status, 409)
  t.same(stale.body.error.current, next)

  const recordPath = `/api/sdk/services/payments/records/${enc('waygate:rate-limits')}/${enc('GET:/a')}`
  t.equal((await call(url, 'PUT', recordPath, { token, body: { value: { key: 'GET:/a', limits: ['3/second'] } } })).status, 200)
  const admin = await login(url)
  t.match((await call(url, 'GET', '/api/rate-limits', { token: admin })).body, [{ key: 'payments:GET:/a', source: 'runtime' }])
  t.equal((await call(url, 'PUT', recordPath, { token, body: { value: { limits: ['many'] } } })).status, 400)
  t.equal((await call(url, 'PUT', `/api/sdk/services/payments/records/${enc('waygate:revoked-tokens')}/x`, { token, body: { value: {} } })).status, 400)
  t.equal((await call(url, 'PUT', `/api/sdk/services/payments/records/${enc('waygate:rate-limits')}/*`, { token, body: { value: { policy: { limits: ['1/second'] }, enabled: true, exemptRoutes: [] } } })).status, 403,
    'a service cannot set the global rate limit')
  t.same((await call(url, 'DELETE', recordPath, { token })).body, { deleted: true })
})
