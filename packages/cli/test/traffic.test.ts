import t from 'tap'
import { sparkline } from '../src/commands/traffic.js'
import { json, loggedIn, startServer } from './helpers/server.js'

// `waygate traffic ROUTE` through the real binary against a real app: requests sent, then read back
t.test('waygate traffic: a sparkline of requests and blocked requests, and --json', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  for (let i = 0; i < 4; i++) await (await fetch(`${server.origin}/payments`)).arrayBuffer()
  for (let i = 0; i < 3; i++) await (await fetch(`${server.origin}/health`)).arrayBuffer()

  const human = await box.waygate(['traffic', 'GET:/payments'])
  t.equal(human.code, 0, human.stderr)
  t.match(human.stdout, /^GET:\/payments {2}\(last hour, 1 bucket a minute; peak 4\)\n/)
  t.match(human.stdout, /requests │ {59}█│ 4\n/, '60 one-minute cells, the last one full')
  t.match(human.stdout, /blocked {2}│ {59}█│ 4\n/)
  t.match(human.stdout, /blocked by\s+requests\nmaintenance\s+4/)

  const day = json(await box.waygate(['traffic', 'GET:/health', '--day', '--json']))
  t.equal(day.range, 'day')
  t.equal(day.bucketSeconds, 300)
  t.equal(day.buckets.length, 288)
  t.same(day.totals.requests, 3)
  t.same(day.totals.blocked, 0)
  t.same(day.buckets[287].outcomes, { passed: 3 })

  const ambiguous = await box.waygate(['traffic', '/payments'])
  t.equal(ambiguous.code, 1, 'a bare path with two methods')
  t.match(ambiguous.stderr, /matches several routes: .*GET:\/payments/)
  const missing = await box.waygate(['traffic', 'GET:/nope', '--json'])
  t.not(missing.code, 0)
  t.match(json({ ...missing, stdout: missing.stderr }).error.code, 'WG_ERR_ROUTE_NOT_FOUND')
})

t.test('the REST endpoint validates its query and key like the others', async t => {
  const server = await startServer(t)
  const token = await server.token()
  const get = (url: string) => server.app.inject({ url: `/waygate/api${url}`, headers: { 'x-waygate-token': token } })
  t.equal((await get('/routes/GET%3A%2Fpayments/traffic?range=week')).statusCode, 400)
  t.equal((await get('/routes/GET%3A%2Fpayments/traffic?extra=1')).statusCode, 400)
  t.equal((await get('/routes/nonsense/traffic')).json().error.code, 'WG_ERR_REQUEST_INVALID')
  t.equal((await server.app.inject('/waygate/api/routes/GET%3A%2Fpayments/traffic')).statusCode, 401, 'needs a caller')
  const b64 = Buffer.from('GET:/payments').toString('base64url')
  const res = await get(`/routes/${b64}/traffic`)
  t.equal(res.statusCode, 200)
  t.equal(res.json().buckets.length, 60)
  const summary = (await get('/traffic')).json()
  t.type(summary.version, 'string')
  t.ok(summary.routes.some((r: { key: string }) => r.key === 'GET:/payments'))
})

t.test('sparkline scales to the peak, and any count above zero shows', async t => {
  t.equal(sparkline([0, 1, 4, 8]), ' ▁▄█')
  t.equal(sparkline([0, 1, 100]), ' ▁█')
  t.equal(sparkline([0, 0]), '  ')
})
