import t from 'tap'
import { buildAdminApp, enc } from './helpers/app.js'

const HOUR = 3_600_000

function clockAt (iso: string) {
  let now = Date.parse(iso)
  return { now: () => now, set: (to: string) => { now = Date.parse(to) } }
}

t.test('GET /api/routes/:key/callers: the merged top callers with count, error and last seen', async t => {
  // records expire by the backend's clock: keep the engine's in the future
  const clock = clockAt('2030-03-01T09:00:00.000Z')
  const { app, login } = await buildAdminApp(t, {
    engine: { now: clock.now },
    routes: app => {
      app.get('/v1/users', { config: { waygate: { deprecated: { sunset: '2030-06-01T00:00:00Z', callers: { by: 'api_key' } } } } }, async () => 'ok')
      app.get('/v2/users', async () => 'ok')
    }
  })
  const token = await login()
  const headers = { authorization: `Bearer ${token}` }
  for (let i = 0; i < 4; i++) await app.inject({ url: '/v1/users', headers: { 'x-api-key': 'acme-prod' } })
  await app.inject({ url: '/v1/users', headers: { 'x-api-key': '<script>alert(1)</script>' } })
  const res = await app.inject({ url: `/waygate/api/routes/${enc('GET:/v1/users')}/callers`, headers })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { key: 'GET:/v1/users', status: 'deprecated', sunset: '2030-06-01T00:00:00.000Z', afterSunset: null, gone: null, total: 5, slots: 200, sketches: 1 })
  t.same(body.callers, [
    { id: 'acme-prod', count: 4, error: 0, lastSeen: '2030-03-01T09:00:00.000Z' },
    { id: '<script>alert(1)</script>', count: 1, error: 0, lastSeen: '2030-03-01T09:00:00.000Z' }
  ])
  t.equal(body.since, new Date(Date.parse('2030-03-01T09:00:00.000Z') - 23 * HOUR).toISOString())

  const limited = await app.inject({ url: `/waygate/api/routes/${enc('GET:/v1/users')}/callers?limit=1`, headers })
  t.equal(limited.json().callers.length, 1)
  const bad = await app.inject({ url: `/waygate/api/routes/${enc('GET:/v1/users')}/callers?limit=0`, headers })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { error: { code: String, message: /limit/ } })
  const unknown = await app.inject({ url: `/waygate/api/routes/${enc('GET:/nope')}/callers`, headers })
  t.equal(unknown.statusCode, 404)
  const active = await app.inject({ url: `/waygate/api/routes/${enc('GET:/v2/users')}/callers`, headers })
  t.match(active.json(), { status: 'active', total: 0, callers: [] })
  t.equal((await app.inject({ url: `/waygate/api/routes/${enc('GET:/v1/users')}/callers` })).statusCode, 401, 'auth required')
})

t.test('brownouts over REST: plan, list, 410 inside, cancel; audited with actor and platform', async t => {
  const clock = clockAt('2030-03-01T09:00:00.000Z')
  const { app, engine, login } = await buildAdminApp(t, { engine: { now: clock.now } })
  const token = await login('api')
  const headers = { authorization: `Bearer ${token}` }
  const url = `/waygate/api/routes/${enc('GET:/v1/users')}/brownouts`
  const planned = await app.inject({ method: 'POST', url, headers, payload: { start: '1h', end: '2030-03-01T10:15:00Z', reason: 'v1 retires in June' } })
  t.equal(planned.statusCode, 200, planned.body)
  const [route] = planned.json().routes
  t.match(route.brownouts, [{ id: String, start: '2030-03-01T10:00:00.000Z', end: '2030-03-01T10:15:00.000Z', reason: 'v1 retires in June' }])
  const listed = await app.inject({ url, headers })
  t.same(listed.json().brownouts, route.brownouts)
  t.equal((await app.inject('/v1/users')).statusCode, 200, 'outside the window')
  clock.set('2030-03-01T10:05:00.000Z')
  const inside = await app.inject('/v1/users')
  t.equal(inside.statusCode, 410)
  t.equal(inside.json().error.code, 'ROUTE_BROWNOUT')
  t.equal(inside.headers['retry-after'], '600')
  const callers = await app.inject({ url: `/waygate/api/routes/${enc('GET:/v1/users')}/callers`, headers })
  t.equal(callers.json().gone, 'brownout')

  const onActive = await app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/brownouts`, headers, payload: { start: '1h', end: '2h' } })
  t.equal(onActive.statusCode, 400, 'only a deprecated route has brownouts')
  t.match(onActive.json(), { error: { code: 'WG_ERR_INPUT_INVALID', message: /not deprecated/ } })
  const badBody = await app.inject({ method: 'POST', url, headers, payload: { start: '1h' } })
  t.equal(badBody.statusCode, 400)
  const unknownId = await app.inject({ method: 'DELETE', url: `${url}?id=nope`, headers })
  t.equal(unknownId.statusCode, 400)

  const cancelled = await app.inject({ method: 'DELETE', url: `${url}?id=${route.brownouts[0].id}`, headers })
  t.equal(cancelled.statusCode, 200)
  t.same(cancelled.json().routes[0].brownouts, [])
  t.equal((await app.inject('/v1/users')).statusCode, 200, 'a cancelled brownout answers no more')
  const audit = await engine.listAudit({ key: 'GET:/v1/users' })
  t.match(audit.filter(e => e.action.startsWith('brownout')).map(e => ({ action: e.action, actor: e.actor, platform: e.platform })), [
    { action: 'brownout_cancel', actor: 'admin', platform: 'api' },
    { action: 'brownout_schedule', actor: 'admin', platform: 'api' }
  ])
})

t.test('deprecate with afterSunset: gone over REST; 410 ROUTE_SUNSET once the date passed', async t => {
  const clock = clockAt('2030-03-01T09:00:00.000Z')
  const { app, engine, login } = await buildAdminApp(t, { engine: { now: clock.now } })
  const headers = { authorization: `Bearer ${await login()}` }
  const url = `/waygate/api/routes/${enc('GET:/users/:id')}/deprecate`
  const noSunset = await app.inject({ method: 'POST', url, headers, payload: { afterSunset: 'gone' } })
  t.equal(noSunset.statusCode, 400)
  const bad = await app.inject({ method: 'POST', url, headers, payload: { sunset: '1d', afterSunset: 'later' } })
  t.equal(bad.statusCode, 400)
  const ok = await app.inject({ method: 'POST', url, headers, payload: { sunset: '1d', successor: '/v2/users/:id', afterSunset: 'gone' } })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(ok.json().routes[0].afterSunset, 'gone')
  t.equal((await app.inject('/users/7')).statusCode, 200)
  clock.set('2030-03-02T09:00:00.000Z')
  const gone = await app.inject('/users/7')
  t.equal(gone.statusCode, 410)
  t.equal(gone.json().error.code, 'ROUTE_SUNSET')
  t.equal(gone.headers.link, '</v2/users/:id>; rel="successor-version"')
  t.equal(gone.headers.sunset, 'Sat, 02 Mar 2030 09:00:00 GMT')
  const [entry] = await engine.listAudit({ key: 'GET:/users/:id', action: 'deprecate' })
  t.match(entry, { actor: 'admin', platform: 'cli' })
})

t.test('the dashboard plans and cancels brownouts and deprecates with afterSunset, through its CSRF forms', async t => {
  const { signIn, postAction } = await import('./helpers/dashboard.js')
  const clock = clockAt('2030-03-01T09:00:00.000Z')
  const { app, engine } = await buildAdminApp(t, { engine: { now: clock.now } })
  const browser = await signIn(app)
  const planned = await postAction(app, browser, { action: 'brownout', key: 'GET:/v1/users', start: '1h', end: '90m', reason: 'v1 <retires>' })
  t.equal(planned.statusCode, 303, planned.body)
  t.match(engine.getState('GET:/v1/users')!.brownouts, [{ start: '2030-03-01T10:00:00.000Z', end: '2030-03-01T10:30:00.000Z', reason: 'v1 <retires>' }])
  const page = await app.inject({ url: `/waygate/routes/${enc('GET:/v1/users')}`, headers: { cookie: browser.cookie } })
  t.match(page.body, /v1 &lt;retires&gt;/, 'the reason is escaped on the route page')
  t.notMatch(page.body, /v1 <retires>/)
  const refused = await postAction(app, browser, { action: 'brownout', key: 'GET:/users/:id', start: '1h', end: '2h' })
  t.equal(refused.statusCode, 400, 'not deprecated')
  t.equal((await postAction(app, browser, { action: 'cancel-brownouts', key: 'GET:/v1/users' })).statusCode, 303)
  t.same(engine.getState('GET:/v1/users')!.brownouts, [])
  t.equal((await postAction(app, browser, { action: 'deprecate', key: 'GET:/users/:id', sunset: '1d', afterSunset: 'on' })).statusCode, 303)
  t.equal(engine.getState('GET:/users/:id')!.afterSunset, 'gone')
  const audit = await engine.listAudit({ key: 'GET:/v1/users' })
  t.match(audit.filter(e => e.action.startsWith('brownout')).map(e => [e.action, e.platform]), [['brownout_cancel', 'dashboard'], ['brownout_schedule', 'dashboard']])
})
