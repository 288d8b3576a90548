import t from 'tap'
import { call, login, openStream, register, startServer } from './helpers/server.js'

const enc = encodeURIComponent

t.test('a stream starts with the service\'s snapshot and follows a change made through the REST API within a second', async t => {
  const { url } = await startServer(t)
  const token = await login(url, { service: 'payments' })
  t.equal((await register(url, 'payments', token, ['GET:/api/payments', 'GET:/health'])).status, 200)
  const other = await login(url, { service: 'orders' })
  await register(url, 'orders', other, ['GET:/api/orders'])

  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=i-1', { token })
  t.equal(stream.status, 200)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.match(stream.headers['cache-control'], /no-cache/)
  t.equal(stream.headers['x-accel-buffering'], 'no')
  t.notOk(stream.headers['content-encoding'])
  const snapshot = await stream.next()
  t.equal(snapshot.event, 'snapshot')
  t.equal(snapshot.id, `${snapshot.data.epoch}.${snapshot.data.revision}`)
  t.same(snapshot.data.routes.map((r: { key: string }) => r.key).sort(), ['GET:/api/payments', 'GET:/health'], 'its own routes, keys plain')
  t.equal(snapshot.data.service, 'payments')
  t.equal(snapshot.data.manifest, 'a'.repeat(64))

  const admin = await login(url)
  const started = Date.now()
  const res = await call(url, 'POST', `/api/routes/${enc('payments:GET:/api/payments')}/maintenance`, { token: admin, body: { reason: 'migration' } })
  t.equal(res.status, 200)
  const change = await stream.next(e => e.event === 'change', 1000)
  t.ok(Date.now() - started < 1000)
  t.equal(change.data.change.type, 'route')
  t.equal(change.data.change.state.key, 'GET:/api/payments')
  t.equal(change.data.change.state.status, 'maintenance')
  t.equal(change.id, `${snapshot.data.epoch}.${change.data.revision}`)
  t.ok(change.data.revision > snapshot.data.revision)

  // another service's change never reaches this stream; a global one does
  await call(url, 'POST', `/api/routes/${enc('orders:GET:/api/orders')}/disable`, { token: admin, body: {} })
  await call(url, 'POST', '/api/global/enable', { token: admin, body: { reason: 'all down' } })
  const next = await stream.next(e => e.event === 'change')
  t.equal(next.data.change.type, 'global', 'the orders change was not sent')
  t.equal(next.data.change.global.enabled, true)
})

t.test('resuming with Last-Event-ID replays exactly the missed changes of that service', async t => {
  const { url } = await startServer(t)
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  await register(url, 'payments', token, ['GET:/a', 'GET:/b'])
  await register(url, 'orders', admin, ['GET:/a'])
  const first = await openStream(t, url, '/api/sdk/services/payments/events', { token })
  const snapshot = await first.next()
  first.close()

  await call(url, 'POST', `/api/routes/${enc('payments:GET:/a')}/disable`, { token: admin, body: {} })
  await call(url, 'POST', `/api/routes/${enc('orders:GET:/a')}/disable`, { token: admin, body: {} })
  await call(url, 'POST', '/api/services/payments/maintenance/enable', { token: admin, body: { reason: 'deploy' } })
  await call(url, 'POST', `/api/routes/${enc('payments:GET:/b')}/deprecate`, { token: admin, body: {} })

  const resumed = await openStream(t, url, '/api/sdk/services/payments/events', { token, lastEventId: snapshot.id! })
  const got = [await resumed.next(), await resumed.next(), await resumed.next()]
  t.same(got.map(e => e.event), ['change', 'change', 'change'], 'no snapshot')
  t.same(got.map(e => e.data.change.type), ['route', 'service', 'route'])
  t.equal(got[0]!.data.change.state.key, 'GET:/a')
  t.equal(got[1]!.data.change.maintenance.enabled, true)
  t.equal(got[2]!.data.change.state.status, 'deprecated')
  const revisions = got.map(e => e.data.revision)
  t.same([...revisions].sort((a, b) => a - b), revisions, 'in revision order')
  await t.rejects(resumed.next(undefined, 300), 'nothing else: the orders change is not replayed')

  // the same resume id through the query string
  const again = await openStream(t, url, `/api/sdk/services/payments/events?lastEventId=${enc(got[1]!.id!)}`, { token })
  t.equal((await again.next()).data.change.state.key, 'GET:/b')
})

t.test('a resume id of another epoch, ahead of the server, malformed or older than the log gets a snapshot', async t => {
  const { url } = await startServer(t, { replayLogSize: 2 })
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  await register(url, 'payments', token, ['GET:/a'])
  const first = await openStream(t, url, '/api/sdk/services/payments/events', { token })
  const { data: snap } = await first.next()
  first.close()
  for (const id of [`other-epoch.${snap.revision}`, `${snap.epoch}.${snap.revision + 1000}`, 'garbage', `${snap.epoch}.x`]) {
    const s = await openStream(t, url, '/api/sdk/services/payments/events', { token, lastEventId: id })
    t.equal((await s.next()).event, 'snapshot', `resume from ${id}`)
    s.close()
  }
  for (const reason of ['one', 'two', 'three']) {
    await call(url, 'POST', `/api/routes/${enc('payments:GET:/a')}/disable`, { token: admin, body: { reason } })
  }
  const old = await openStream(t, url, '/api/sdk/services/payments/events', { token, lastEventId: `${snap.epoch}.${snap.revision}` })
  const e = await old.next()
  t.equal(e.event, 'snapshot', 'three changes missed, two kept: too old')
  t.equal(e.data.routes[0].reason, 'three')
})

t.test('heartbeat comments keep the stream alive and the instance listed', async t => {
  const { url } = await startServer(t, { heartbeatMs: 50 })
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/a'], 'pod-7')
  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-7', { token })
  await stream.next()
  await new Promise(resolve => setTimeout(resolve, 200))
  t.ok(stream.comments.filter(c => c === 'hb').length >= 2, 'hb comments')
  const admin = await login(url)
  const services = (await call(url, 'GET', '/api/services', { token: admin })).body
  t.equal(services.length, 1)
  t.match(services[0], { name: 'payments', service: 'payments', routes: 1, rateLimit: null, maintenance: { enabled: false } })
  t.match(services[0].instances, [{ id: 'pod-7', host: 'test-host', version: '1.0.0', revision: Number }])
  t.ok(Date.parse(services[0].instances[0].connectedSince) <= Date.parse(services[0].instances[0].lastHeartbeat))
  stream.close()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.match((await call(url, 'GET', '/api/services', { token: admin })).body[0].instances, [{ id: 'pod-7', state: 'disconnected', stale: true, disconnectedAt: String }],
    'listed disconnected once its stream ends (for 60 s: see instances.test.ts)')
})
