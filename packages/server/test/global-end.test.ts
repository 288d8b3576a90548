import t from 'tap'
import { call, login, openStream, register, startServer } from './helpers/server.js'

t.test('a global maintenance end reaches the services, in the snapshot and in changes', async t => {
  const { url } = await startServer(t)
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/api/payments'])
  const admin = await login(url)

  const before = Date.now()
  const on = await call(url, 'POST', '/api/global/enable', { token: admin, body: { reason: 'deploying', end: '15m' } })
  t.equal(on.status, 200)
  const end = Date.parse(on.body.end)
  t.ok(end >= before + 15 * 60_000 && end <= Date.now() + 15 * 60_000, 'fifteen minutes from now')

  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=i-1', { token })
  const snapshot = await stream.next()
  t.match(snapshot.data.global, { enabled: true, end: on.body.end }, 'services enforce it with its end')

  const later = await call(url, 'POST', '/api/global/enable', { token: admin, body: { reason: 'deploying', end: '2h' } })
  const change = await stream.next(e => e.event === 'change')
  t.equal(change.data.change.type, 'global')
  t.equal(change.data.change.global.end, later.body.end)
  t.equal((await call(url, 'POST', '/api/global/enable', { token: admin, body: { end: 'later' } })).status, 400)
})
