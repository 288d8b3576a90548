import t from 'tap'
import { buildAdminApp } from './helpers/app.js'
import { signIn } from './helpers/dashboard.js'

const T0 = Date.parse('2030-01-01T00:00:00Z')

t.test('POST /api/global/enable with an end: a duration or a date-time, with Retry-After until then', async t => {
  let now = T0
  const { app, login, engine } = await buildAdminApp(t, { engine: { now: () => now, resyncIntervalMs: 0 } })
  const headers = { 'x-waygate-token': await login() }

  const on = await app.inject({ method: 'POST', url: '/waygate/api/global/enable', headers, payload: { reason: 'deploying', end: '15m', exemptPaths: ['/users/:id'] } })
  t.equal(on.statusCode, 200)
  t.match(on.json(), { enabled: true, reason: 'deploying', end: '2030-01-01T00:15:00.000Z' })
  t.equal((await app.inject({ url: '/waygate/api/global', headers })).json().end, '2030-01-01T00:15:00.000Z', 'GET shows the end')

  t.equal((await app.inject('/users/2')).statusCode, 200, 'exempt paths answer')
  const blocked = await app.inject({ method: 'POST', url: '/payments' })
  t.equal(blocked.statusCode, 503)
  t.equal(blocked.headers['retry-after'], '900', 'Retry-After counts down to the end')
  now = T0 + 10 * 60_000
  t.equal((await app.inject({ method: 'POST', url: '/payments' })).headers['retry-after'], '300')
  t.equal((await app.inject('/nowhere')).headers['retry-after'], '300', 'unmatched paths too')

  now = T0 + 15 * 60_000
  t.equal((await app.inject({ method: 'POST', url: '/payments' })).statusCode, 200, 'open again at the end')
  await engine.runDueTransitions()
  const global = (await app.inject({ url: '/waygate/api/global', headers })).json()
  t.match(global, { enabled: false, since: null })
  t.notOk('end' in global)
  const audit = (await app.inject({ url: '/waygate/api/audit?key=*', headers })).json()
  t.match(audit[0], { action: 'global_maintenance_off', actor: 'scheduler', platform: 'scheduler' })
  t.match(audit[1], { action: 'global_maintenance_on', platform: 'cli', reason: 'deploying' })

  const iso = await app.inject({ method: 'POST', url: '/waygate/api/global/enable', headers, payload: { end: '2030-01-02T00:00:00Z' } })
  t.equal(iso.json().end, '2030-01-02T00:00:00.000Z')
})

t.test('a bad end is a 400 and changes nothing', async t => {
  const { app, login } = await buildAdminApp(t, { engine: { now: () => T0 } })
  const headers = { 'x-waygate-token': await login() }
  for (const end of ['soon', '', 15, '2029-12-31T23:00:00Z', '2030-02-30T00:00:00Z', '15 minutes from now', 'x'.repeat(65)]) {
    const res = await app.inject({ method: 'POST', url: '/waygate/api/global/enable', headers, payload: { reason: 'r', end } })
    t.equal(res.statusCode, 400, `end ${JSON.stringify(end).slice(0, 20)}`)
    t.match(res.json().error, { code: /^WG_ERR_(REQUEST|INPUT)_INVALID$/, message: /end/ })
  }
  t.equal((await app.inject({ url: '/waygate/api/global', headers })).json().enabled, false)
})

t.test('the dashboard shows when global maintenance turns itself off', async t => {
  const { app, engine } = await buildAdminApp(t, { engine: { now: () => T0, resyncIntervalMs: 0 } })
  const browser = await signIn(app)
  await engine.enableGlobalMaintenance({ reason: 'deploying', end: '2030-01-01T00:15:00Z' })
  const page = await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })
  t.match(page.body, /<p class="global-end">Turns itself off <time datetime="2030-01-01T00:15:00.000Z"[^>]*>in 15 min[^<]*<\/time> <small class="abs">2030-01-01 00:15:00 UTC<\/small>/)
  t.match(page.body, /<span>Ends <time datetime="2030-01-01T00:15:00.000Z"/, 'in the banner too')

  await engine.enableGlobalMaintenance({ reason: 'no end' })
  t.notMatch((await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })).body, /global-end|Ends <time/, 'nothing when it has no end')
})
