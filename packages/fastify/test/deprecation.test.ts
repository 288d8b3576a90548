import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { callerTrackerOf, createEngine, createMemoryBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { buildApp, fakeClock } from './helpers/app.js'

const SUNSET = '2026-07-01T00:00:00.000Z'
const HOUR = 3_600_000

/** RFC 9745: `@` and integer epoch seconds; RFC 8594: an IMF-fixdate. */
function checkDeprecationHeaders (t: Test, headers: Record<string, unknown>): void {
  t.match(headers.deprecation, /^@\d+$/, 'Deprecation is @<epoch seconds>')
  t.equal(headers.sunset, 'Wed, 01 Jul 2026 00:00:00 GMT', 'Sunset is an HTTP-date')
  t.equal(headers.link, '<https://api.example.com/v2/users>; rel="successor-version"')
}

t.test('afterSunset gone: served with headers before the sunset, 410 ROUTE_SUNSET from it on', async t => {
  const clock = fakeClock(Date.parse(SUNSET) - 1000)
  const { app } = await buildApp(t, app => {
    app.get('/v1/users', { config: { waygate: { deprecated: { sunset: SUNSET, successor: 'https://api.example.com/v2/users', afterSunset: 'gone' } } } }, async () => ({ users: [] }))
    app.get('/v1/kept', { config: { waygate: { deprecated: { sunset: SUNSET } } } }, async () => 'kept')
  }, { engine: { now: clock.now } })
  const before = await app.inject('/v1/users')
  t.equal(before.statusCode, 200)
  checkDeprecationHeaders(t, before.headers)
  clock.set(Date.parse(SUNSET))
  const after = await app.inject('/v1/users')
  t.equal(after.statusCode, 410, 'gone at the sunset instant')
  checkDeprecationHeaders(t, after.headers)
  t.notOk('retry-after' in after.headers, 'no Retry-After: it is not coming back')
  const body = after.json()
  t.equal(body.error.code, 'ROUTE_SUNSET')
  t.equal(body.error.path, '/v1/users')
  t.equal(body.error.sunset, SUNSET)
  t.equal(body.error.successor, 'https://api.example.com/v2/users')
  t.equal((await app.inject('/v1/kept')).statusCode, 200, 'without afterSunset a route keeps serving past its sunset')
})

t.test('a brownout answers 410 ROUTE_BROWNOUT with Retry-After inside its window only', async t => {
  const clock = fakeClock(Date.parse('2026-06-10T09:00:00.000Z'))
  const { app, engine } = await buildApp(t, app => {
    app.get('/v1/users', { config: { waygate: { deprecated: { sunset: SUNSET, successor: 'https://api.example.com/v2/users' } } } }, async () => ({ users: [] }))
  }, { engine: { now: clock.now } })
  const [state] = await engine.scheduleBrownout('GET:/v1/users', { start: '2026-06-10T10:00:00Z', end: '2026-06-10T10:30:00Z', reason: 'planned brownout', actor: 'ops' })
  t.equal(state!.brownouts!.length, 1)
  t.equal((await app.inject('/v1/users')).statusCode, 200, 'before the window')
  clock.set(Date.parse('2026-06-10T10:00:00.000Z'))
  const inside = await app.inject('/v1/users')
  t.equal(inside.statusCode, 410, 'at its start')
  t.equal(inside.headers['retry-after'], '1800', 'Retry-After: seconds to the window end (RFC 9110)')
  checkDeprecationHeaders(t, inside.headers)
  const body = inside.json()
  t.equal(body.error.code, 'ROUTE_BROWNOUT')
  t.equal(body.error.brownout, true)
  t.match(body.error.message, /planned brownout/)
  t.equal(body.error.retryAt, '2026-06-10T10:30:00.000Z')
  t.equal(body.error.reason, 'planned brownout')
  clock.set(Date.parse('2026-06-10T10:29:59.999Z'))
  t.equal((await app.inject('/v1/users')).statusCode, 410)
  clock.set(Date.parse('2026-06-10T10:30:00.000Z'))
  t.equal((await app.inject('/v1/users')).statusCode, 200, 'the end is exclusive')

  const audit = await engine.listAudit({ key: 'GET:/v1/users' })
  t.same(audit.filter(e => e.action.startsWith('brownout')).map(e => [e.action, e.actor]), [['brownout_schedule', 'ops']])
  await engine.scheduleBrownout('GET:/v1/users', { start: '2026-06-11T10:00:00Z', end: '2026-06-11T11:00:00Z', actor: 'ops' })
  const [cancelled] = await engine.cancelBrownouts('GET:/v1/users', { actor: 'ops' })
  t.same(cancelled!.brownouts, [], 'cancel drops them all')
  clock.set(Date.parse('2026-06-11T10:10:00.000Z'))
  t.equal((await app.inject('/v1/users')).statusCode, 200, 'a cancelled brownout never answers')
  t.equal((await engine.listAudit({ key: 'GET:/v1/users', action: 'brownout_cancel' })).length, 1)
})

t.test('brownouts are refused on routes that are not deprecated, and a maintenance window wins over one', async t => {
  const clock = fakeClock(Date.parse('2026-06-10T09:00:00.000Z'))
  const { app, engine } = await buildApp(t, app => {
    app.get('/active', async () => 'ok')
    app.get('/old', { config: { waygate: { deprecated: {} } } }, async () => 'ok')
  }, { engine: { now: clock.now } })
  await t.rejects(engine.scheduleBrownout('GET:/active', { start: '2026-06-10T10:00:00Z', end: '2026-06-10T11:00:00Z' }), { code: 'WG_ERR_INPUT_INVALID' })
  await t.rejects(engine.scheduleBrownout('GET:/old', { start: '2026-06-10T08:00:00Z', end: '2026-06-10T08:30:00Z' }), { code: 'WG_ERR_INPUT_INVALID' }, 'an end in the past')
  await engine.scheduleBrownout('GET:/old', { start: '2026-06-10T10:00:00Z', end: '2026-06-10T11:00:00Z' })
  await engine.setMaintenance('GET:/old', { start: '2026-06-10T10:15:00Z', end: '2026-06-10T10:45:00Z' })
  clock.set(Date.parse('2026-06-10T10:20:00.000Z'))
  t.equal((await app.inject('/old')).statusCode, 503, 'maintenance inside the brownout')
  clock.set(Date.parse('2026-06-10T10:50:00.000Z'))
  t.equal((await app.inject('/old')).statusCode, 410)
  // enabling the route makes it active: its brownouts no longer apply
  await engine.enable('GET:/old')
  t.equal((await app.inject('/old')).statusCode, 200)
  t.equal((await app.inject('/active')).statusCode, 200)
})

t.test('deprecate with afterSunset at runtime; afterSunset needs a sunset', async t => {
  const clock = fakeClock(Date.parse('2026-08-01T00:00:00.000Z'))
  const { app, engine } = await buildApp(t, app => { app.get('/v1/orders', async () => 'ok') }, { engine: { now: clock.now } })
  await t.rejects(engine.deprecate('GET:/v1/orders', { afterSunset: 'gone' }), { code: 'WG_ERR_INPUT_INVALID' })
  await engine.deprecate('GET:/v1/orders', { sunset: SUNSET, afterSunset: 'gone' })
  t.equal((await app.inject('/v1/orders')).statusCode, 410)
  await engine.deprecate('GET:/v1/orders', { sunset: SUNSET })
  t.equal((await app.inject('/v1/orders')).statusCode, 200, 'deprecating again without it keeps serving')
  t.equal(engine.getState('GET:/v1/orders')!.afterSunset, null)
  await t.rejects(async () => {
    const app2 = Fastify()
    t.teardown(() => app2.close())
    await app2.register(waygate, { engine: createEngine({ backend: createMemoryBackend() }), closeEngine: true })
    app2.get('/x', { config: { waygate: { deprecated: { afterSunset: 'gone' } } } }, async () => 'x')
    await app2.ready()
  }, { code: 'WG_ERR_ROUTE_CONFIG_INVALID' })
})

// records expire by the backend's own clock: the callers tests' clocks are in the future
t.test('callers of a deprecated route are counted by the configured key; active routes count nothing', async t => {
  const clock = fakeClock(Date.parse('2030-06-10T09:00:00.000Z'))
  const { app, engine } = await buildApp(t, app => {
    app.get('/v1/users', { config: { waygate: { deprecated: { callers: { by: 'api_key' } } } } }, async () => 'ok')
    app.get('/v1/by-ip', { config: { waygate: { deprecated: {} } } }, async () => 'ok')
    app.get('/v1/custom', { config: { waygate: { deprecated: { callers: { by: req => (req.query as { team?: string }).team } } } } }, async () => 'ok')
    app.get('/active', async () => 'ok')
  }, { engine: { now: clock.now }, plugin: { callers: { publishIntervalMs: 0 } } })
  for (let i = 0; i < 5; i++) await app.inject({ url: '/v1/users', headers: { 'x-api-key': 'key-a' } })
  await app.inject({ url: '/v1/users', headers: { 'x-api-key': 'key-b' } })
  await app.inject({ url: '/v1/users', remoteAddress: '10.1.2.3' })
  await app.inject({ url: '/v1/by-ip', remoteAddress: '2001:db8:1:2::7' })
  await app.inject({ url: '/v1/custom?team=blue' })
  for (let i = 0; i < 3; i++) await app.inject('/active')
  const tracker = callerTrackerOf(engine)!
  t.ok(tracker, 'the plugin registered its tracker')
  await tracker.publish()
  const users = await tracker.read('GET:/v1/users')
  t.same(users.callers.map(c => [c.id, c.count]), [['key-a', 5], ['10.1.2.3', 1], ['key-b', 1]], 'a missing key counts by address (ties by id)')
  t.equal(users.callers[0]!.lastSeen, '2030-06-10T09:00:00.000Z')
  t.same((await tracker.read('GET:/v1/by-ip')).callers.map(c => c.id), ['2001:db8:1:2::/64'], 'IPv6 by /64, as rate limiting')
  t.same((await tracker.read('GET:/v1/custom')).callers.map(c => c.id), ['blue'])
  t.same(await engine.backend.listRecords('callers:GET:/active'), [], 'nothing stored for an active route')
})

t.test('callers follow trustProxy: X-Forwarded-For names the caller only when Fastify trusts the proxy', async t => {
  for (const trustProxy of [true, false]) {
    const engine = createEngine({ backend: createMemoryBackend() })
    const app = Fastify({ trustProxy })
    t.teardown(() => app.close())
    await app.register(waygate, { engine, closeEngine: true, callers: { publishIntervalMs: 0 } })
    app.get('/old', { config: { waygate: { deprecated: {} } } }, async () => 'ok')
    await app.ready()
    await app.inject({ url: '/old', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } })
    const tracker = callerTrackerOf(engine)!
    await tracker.publish()
    t.same((await tracker.read('GET:/old')).callers.map(c => c.id), [trustProxy ? '203.0.113.9' : '10.0.0.1'], `trustProxy ${trustProxy}`)
  }
})

t.test('callers during a brownout are counted too; callers: false counts nothing', async t => {
  const clock = fakeClock(Date.parse('2030-06-10T10:10:00.000Z'))
  const { app, engine } = await buildApp(t, app => {
    app.get('/old', { config: { waygate: { deprecated: {} } } }, async () => 'ok')
  }, { engine: { now: clock.now }, plugin: { callers: { publishIntervalMs: 0 } } })
  await engine.scheduleBrownout('GET:/old', { start: '2030-06-10T10:00:00Z', end: '2030-06-10T11:00:00Z' })
  t.equal((await app.inject({ url: '/old', remoteAddress: '10.9.9.9' })).statusCode, 410)
  const tracker = callerTrackerOf(engine)!
  await tracker.publish()
  t.same((await tracker.read('GET:/old')).callers.map(c => c.id), ['10.9.9.9'])

  const off = await buildApp(t, app => { app.get('/old', { config: { waygate: { deprecated: {} } } }, async () => 'ok') }, { plugin: { callers: false } })
  await off.app.inject('/old')
  t.equal(callerTrackerOf(off.engine), undefined)
  t.same(await off.engine.backend.listRecords('callers:GET:/old'), [])
  clock.advance(HOUR)
})

t.test('bad callers options are refused at registration', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(waygate, { engine: createEngine(), closeEngine: true, callers: { by: 'cookie' as 'ip', slots: 0 } })
    await app.ready()
  }, { code: 'WG_ERR_PLUGIN_OPTIONS_INVALID', message: /callers\.by.*callers\.slots/ })
})
