import t from 'tap'
import { createRedisBackend } from '@waygate/core'
import { startRedisServer } from '../../core/test/helpers/redis-server.js'
import { call, login, openStream, register, startServer } from './helpers/server.js'

const enc = encodeURIComponent

t.test('two server instances on one Redis are one server', async t => {
  const redis = await startRedisServer(t)
  const a = await startServer(t, { backend: createRedisBackend({ url: redis.url }), heartbeatMs: 100 })
  const b = await startServer(t, { backend: createRedisBackend({ url: redis.url }), heartbeatMs: 100 })

  // a token from one instance works on the other: same secret, same revocations
  const token = await login(a.url, { service: 'payments' })
  t.equal((await register(b.url, 'payments', token, ['GET:/api/payments'], 'pod-1')).status, 200)
  const stream = await openStream(t, a.url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  const snapshot = await stream.next()
  t.same(snapshot.data.routes.map((r: { key: string }) => r.key), ['GET:/api/payments'], 'A sees what was registered through B')

  const admin = await login(b.url)
  const started = Date.now()
  t.equal((await call(b.url, 'POST', `/api/routes/${enc('payments:GET:/api/payments')}/disable`, { token: admin, body: { reason: 'via B' } })).status, 200)
  const change = await stream.next(e => e.event === 'change', 1000)
  t.ok(Date.now() - started < 1000, 'within a second')
  t.match(change.data.change, { type: 'route', state: { key: 'GET:/api/payments', status: 'disabled', reason: 'via B' } })
  t.equal(change.id!.split('.')[0], snapshot.data.epoch, 'one epoch for both instances')

  t.equal((await call(b.url, 'POST', '/api/services/payments/maintenance/enable', { token: admin, body: { reason: 'via B' } })).status, 200)
  t.match((await stream.next(e => e.event === 'change', 1000)).data.change, { type: 'service', maintenance: { enabled: true } })

  // the instance connected to A is listed by B
  await new Promise(resolve => setTimeout(resolve, 250))
  const listed = (await call(b.url, 'GET', '/api/services', { token: admin })).body
  t.match(listed, [{ name: 'payments', routes: 1, instances: [{ id: 'pod-1', host: 'test-host' }] }])

  // a resume on B from what A sent replays nothing twice, and revoking through B closes A's stream
  const resumed = await openStream(t, b.url, '/api/sdk/services/payments/events', { token, lastEventId: change.id! })
  t.match((await resumed.next()).data.change, { type: 'service' })
  t.equal((await call(b.url, 'POST', '/api/auth/logout', { token, body: {} })).status, 200)
  await stream.closed(1000)
  await resumed.closed(1000)
})
