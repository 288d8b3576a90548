import t from 'tap'
import { createMemoryBackend, type SyncStatus } from '@waygate/core'
import { buildAdminApp, enc } from './helpers/app.js'

t.test('every API route needs a token; login gives one that works in both headers', async t => {
  const { app, login } = await buildAdminApp(t)
  const anonymous = await app.inject('/waygate/api/routes')
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().error.code, 'WG_ERR_AUTH_REQUIRED')
  t.match(anonymous.json().error.message, /waygate login/)

  const token = await login('cli')
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': token } })).statusCode, 200)
  const me = await app.inject({ url: '/waygate/api/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.match(me.json(), { user: 'admin', platform: 'cli', authenticated: true })

  const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': forged } })).statusCode, 401, 'a forged signature')
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { authorization: 'Bearer nonsense' } })).statusCode, 401)
})

t.test('wrong credentials are a 401 with a code, and repeated failures are throttled with Retry-After', async t => {
  const { app } = await buildAdminApp(t, { admin: { loginThrottle: { maxAttempts: 3, windowSeconds: 60 } } })
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password } })
  const wrong = await attempt('nope')
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().error.code, 'WG_ERR_AUTH_INVALID')
  t.equal((await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'ghost', password: 'secret' } })).json().error.code,
    'WG_ERR_AUTH_INVALID', 'an unknown user gets the same answer')
  await attempt('nope')
  await attempt('nope')
  const throttled = await attempt('secret')
  t.equal(throttled.statusCode, 429, 'even the right password waits out the lockout')
  t.equal(throttled.json().error.code, 'WG_ERR_AUTH_THROTTLED')
  t.ok(Number(throttled.headers['retry-after']) > 0 && Number(throttled.headers['retry-after']) <= 60)
})

t.test('routes: list (an array), filter, paginate, get one by percent-encoded or base64url key', async t => {
  const { app, login } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  const list = await app.inject({ url: '/waygate/api/routes', headers })
  t.equal(list.statusCode, 200)
  t.same(list.json().map((r: { key: string }) => r.key), ['GET:/health', 'GET:/payments', 'POST:/payments', 'GET:/users/:id', 'GET:/v1/users'])
  t.equal(list.headers['x-total-count'], '5')
  t.notOk(list.json().some((r: { key: string }) => r.key.startsWith('GET:/waygate')), 'the admin\'s own routes are not managed')

  const maintenance = await app.inject({ url: '/waygate/api/routes?status=maintenance,deprecated', headers })
  t.same(maintenance.json().map((r: { key: string }) => r.key), ['GET:/payments', 'GET:/v1/users'])
  const page = await app.inject({ url: '/waygate/api/routes?page=2&perPage=2', headers })
  t.same(page.json().map((r: { key: string }) => r.key), ['POST:/payments', 'GET:/users/:id'])
  t.equal(page.headers['x-total-pages'], '3')
  t.same((await app.inject({ url: '/waygate/api/routes?q=migration', headers })).json().map((r: { key: string }) => r.key), ['GET:/payments'])

  const one = await app.inject({ url: `/waygate/api/routes/${enc('GET:/users/:id')}`, headers })
  t.equal(one.statusCode, 200)
  t.match(one.json(), { key: 'GET:/users/:id', path: '/users/:id', method: 'GET', status: 'active' })
  const b64 = Buffer.from('GET:/payments').toString('base64url')
  t.equal((await app.inject({ url: `/waygate/api/routes/${b64}`, headers })).json().status, 'maintenance')

  const missing = await app.inject({ url: `/waygate/api/routes/${enc('GET:/nope')}`, headers })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error.code, 'WG_ERR_ROUTE_NOT_FOUND')
  const ambiguous = await app.inject({ url: `/waygate/api/routes/${enc('/payments')}`, headers })
  t.equal(ambiguous.statusCode, 409)
  t.same(ambiguous.json().error.matches, ['GET:/payments', 'POST:/payments'])
})

t.test('mutations change what the app answers and are audited with the caller and platform', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login('cli') }
  const post = (path: string, payload?: object) => app.inject({ method: 'POST', url: `/waygate/api/routes/${path}`, headers, ...(payload === undefined ? {} : { payload }) })

  t.equal((await app.inject('/users/1')).statusCode, 200)
  const disabled = await post(`${enc('GET:/users/:id')}/disable`, { reason: 'hotfix' })
  t.equal(disabled.statusCode, 200)
  t.match(disabled.json(), { routes: [{ key: 'GET:/users/:id', status: 'disabled', reason: 'hotfix', updatedBy: 'admin' }] })
  t.equal((await app.inject('/users/1')).json().error.code, 'ROUTE_DISABLED')

  t.equal((await post(`${enc('GET:/users/:id')}/enable`)).json().routes[0].status, 'active')
  t.equal((await app.inject('/users/1')).statusCode, 200)

  t.equal((await post(`${enc('GET:/users/:id')}/maintenance`, { reason: 'upgrade', end: '2h' })).json().routes[0].status, 'maintenance')
  const during = await app.inject('/users/1')
  t.equal(during.statusCode, 503)
  t.ok(Number(during.headers['retry-after']) > 7000, 'Retry-After from the window end')

  t.equal((await post(`${enc('GET:/users/:id')}/env`, { envs: ['staging'] })).json().routes[0].status, 'env_gated')
  t.equal((await app.inject('/users/1')).statusCode, 404)
  const ungated = await app.inject({ method: 'DELETE', url: `/waygate/api/routes/${enc('GET:/users/:id')}/env`, headers })
  t.equal(ungated.json().routes[0].status, 'active')

  const start = new Date(engine.now() + 3_600_000).toISOString()
  const end = new Date(engine.now() + 7_200_000).toISOString()
  const scheduled = await post(`${enc('GET:/users/:id')}/schedule`, { start, end, reason: 'planned' })
  t.match(scheduled.json().routes[0], { status: 'active', window: { start, end, reason: 'planned' } })
  const cancelled = await app.inject({ method: 'DELETE', url: `/waygate/api/routes/${enc('GET:/users/:id')}/schedule`, headers })
  t.equal(cancelled.json().routes[0].window, null)

  t.match((await post(`${enc('GET:/users/:id')}/deprecate`, { successor: '/v2/users/:id', sunset: '2030-01-01' })).json().routes[0],
    { status: 'deprecated', successor: '/v2/users/:id', sunset: '2030-01-01T00:00:00.000Z' })

  const both = await post(`${enc('/payments')}/disable`, { reason: 'all methods', all: true })
  t.same(both.json().routes.map((r: { key: string }) => r.key), ['GET:/payments', 'POST:/payments'])

  const audit = await app.inject({ url: `/waygate/api/audit?key=${enc('GET:/users/:id')}`, headers })
  t.same(audit.json().map((e: { action: string }) => e.action), ['deprecate', 'schedule_cancel', 'schedule', 'enable', 'env_gate', 'maintenance_on', 'enable', 'disable'])
  t.match(audit.json().at(-1), { actor: 'admin', platform: 'cli', reason: 'hotfix', previousStatus: 'active', newStatus: 'disabled', path: '/users/:id' })
})

t.test('force-active routes refuse changes with a 409', async t => {
  const { app, login } = await buildAdminApp(t)
  const res = await app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/health')}/disable`, headers: { 'x-waygate-token': await login() } })
  t.equal(res.statusCode, 409)
  t.equal(res.json().error.code, 'WG_ERR_ROUTE_FORCE_ACTIVE')
  t.equal((await app.inject('/health')).statusCode, 200)
})

t.test('global maintenance through the API, and the admin itself is never locked out', async t => {
  const { app, login } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  const on = await app.inject({ method: 'POST', url: '/waygate/api/global/enable', headers, payload: { reason: 'Deploying v2', exemptPaths: ['/users/:id'] } })
  t.match(on.json(), { enabled: true, reason: 'Deploying v2', exemptPaths: ['/users/:id'], includeForceActive: false })
  t.equal((await app.inject('/payments')).statusCode, 503)
  t.equal((await app.inject('/nowhere')).statusCode, 503)
  t.equal((await app.inject('/users/1')).statusCode, 200)
  t.equal((await app.inject({ url: '/waygate/api/routes', headers })).statusCode, 200, 'the admin API still answers')
  const adminMissing = await app.inject({ url: '/waygate/api/nothing-here', headers })
  t.equal(adminMissing.statusCode, 404, 'unknown admin paths are the admin\'s 404, not a 503')
  t.equal(adminMissing.json().error.code, 'WG_ERR_NOT_FOUND')

  const added = await app.inject({ method: 'POST', url: '/waygate/api/global/exempt/add', headers, payload: { paths: ['GET:/payments'] } })
  t.same(added.json().exemptPaths, ['/users/:id', 'GET:/payments'])
  t.equal(added.json().enabled, true, 'adding an exemption does not toggle maintenance')
  t.equal((await app.inject('/payments')).statusCode, 503, 'GET:/payments is exempt from global but still in its own maintenance')
  const removed = await app.inject({ method: 'POST', url: '/waygate/api/global/exempt/remove', headers, payload: { paths: ['/users/:id'] } })
  t.same(removed.json().exemptPaths, ['GET:/payments'])
  t.equal((await app.inject('/users/1')).statusCode, 503)

  const off = await app.inject({ method: 'POST', url: '/waygate/api/global/disable', headers })
  t.equal(off.json().enabled, false)
  t.same(off.json().exemptPaths, ['GET:/payments'], 'exemptions are kept for next time')
  t.equal((await app.inject('/users/1')).statusCode, 200)
  t.same((await app.inject({ url: '/waygate/api/global', headers })).json().enabled, false)
  const audit = await app.inject({ url: '/waygate/api/audit?key=*', headers })
  t.same(audit.json().map((e: { action: string }) => e.action),
    ['global_maintenance_off', 'global_exempt_remove', 'global_exempt_add', 'global_maintenance_on'])
})

t.test('audit: filters, limit and cursor pagination', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  for (let i = 0; i < 5; i++) await engine.disable('GET:/users/:id', { reason: `r${i}`, actor: i % 2 === 0 ? 'alice' : 'bob' })
  const first = await app.inject({ url: '/waygate/api/audit?limit=2', headers })
  t.same(first.json().map((e: { reason: string }) => e.reason), ['r4', 'r3'])
  const cursor = first.headers['x-next-cursor'] as string
  t.ok(cursor)
  const second = await app.inject({ url: `/waygate/api/audit?limit=2&before=${encodeURIComponent(cursor)}`, headers })
  t.same(second.json().map((e: { reason: string }) => e.reason), ['r2', 'r1'])
  const alice = await app.inject({ url: '/waygate/api/audit?actor=alice', headers })
  t.same(alice.json().map((e: { reason: string }) => e.reason), ['r4', 'r2', 'r0'])
  const none = await app.inject({ url: '/waygate/api/audit?action=enable', headers })
  t.same(none.json(), [])
})

t.test('status reports version, backend and health', async t => {
  const { app, login } = await buildAdminApp(t)
  const res = await app.inject({ url: '/waygate/api/status', headers: { 'x-waygate-token': await login() } })
  t.match(res.json(), { version: /^\d+\.\d+\.\d+/, backend: 'memory', healthy: true, lastError: null, env: 'dev', routes: 5, auth: true })
})

t.test('status reports the backend revision, and the sync state of a backend that mirrors a Waygate Server', async t => {
  const plain = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await plain.login() }
  const before = (await plain.app.inject({ url: '/waygate/api/status', headers })).json()
  t.notOk('sync' in before, 'an embedded engine has no sync state')
  await plain.engine.disable('GET:/payments')
  const after = (await plain.app.inject({ url: '/waygate/api/status', headers })).json()
  t.ok(after.revision > before.revision, 'the revision moves with each stored change')

  const sync: SyncStatus = {
    state: 'reconnecting',
    source: 'cache',
    revision: 41,
    epoch: 'e1',
    lastSync: '2030-01-01T00:00:00.000Z',
    staleSeconds: 12,
    reconnects: 3,
    serverUrl: 'http://127.0.0.1:8001',
    service: 'payments-service'
  }
  const mirrored = await buildAdminApp(t, { engine: { backend: Object.assign(createMemoryBackend(), { syncStatus: () => sync }) } })
  const status = await mirrored.app.inject({ url: '/waygate/api/status', headers: { 'x-waygate-token': await mirrored.login() } })
  t.same(status.json().sync, sync, 'a service shows how far its snapshot is behind the server')
})

t.test('auth: false opens the admin, taking the actor from X-Waygate-Actor', async t => {
  const { app, logs, engine } = await buildAdminApp(t, { admin: { auth: false } })
  t.ok(logs.some(l => l.includes('auth is false')), 'a startup warning')
  await app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/disable`, headers: { 'x-waygate-actor': 'deploy-bot', 'x-waygate-platform': 'cli' } })
  await app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/enable` })
  const audit = await engine.listAudit({ key: 'GET:/users/:id' })
  t.match(audit, [{ actor: 'anonymous', platform: 'api' }, { actor: 'deploy-bot', platform: 'cli' }])
})

t.test('credentials and tokens never reach the log', async t => {
  const { app, login, logs } = await buildAdminApp(t)
  const token = await login()
  await app.inject({ url: '/waygate/api/routes', headers: { authorization: `Bearer ${token}` } })
  await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password: 'wrong-password-123' } })
  const all = logs.join('\n')
  t.notOk(all.includes(token), 'no token')
  t.notOk(all.includes('secret'), 'no password')
  t.notOk(all.includes('wrong-password-123'), 'no wrong password either')
  t.ok(all.includes('failed login'), 'but the failure is logged')
})

t.test('a query string cannot switch authentication off', async t => {
  const { app, engine } = await buildAdminApp(t)
  for (const url of ['/waygate/api/global?x=/api/auth/', '/waygate/api/status?next=/api/auth/login', `/waygate/api/routes/${enc('GET:/payments')}?a=/api/auth/`, '/waygate/api/events?x=/api/auth/']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 401, `GET ${url}`)
  }
  for (const url of ['/waygate/api/global/enable?x=/api/auth/', `/waygate/api/routes/${enc('GET:/users/:id')}/disable?x=/api/auth/login`]) {
    const res = await app.inject({ method: 'POST', url, payload: {} })
    t.equal(res.statusCode, 401, `POST ${url}`)
  }
  t.equal(engine.getGlobal().enabled, false, 'nothing changed')
  t.equal(engine.getState('GET:/users/:id')?.status, 'active')
})

t.test('the audit cursor is only given when another page exists', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  for (let i = 0; i < 4; i++) await engine.disable('GET:/users/:id', { reason: `r${i}` })
  const full = await app.inject({ url: `/waygate/api/audit?key=${enc('GET:/users/:id')}&limit=4`, headers })
  t.equal(full.json().length, 4)
  t.notOk(full.headers['x-next-cursor'], 'an exactly full last page has no cursor')
  const partial = await app.inject({ url: `/waygate/api/audit?key=${enc('GET:/users/:id')}&limit=3`, headers })
  t.ok(partial.headers['x-next-cursor'])
})

t.test('a time that would not read back as written is refused with 400 before anything is written', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  const post = (action: string, payload: object) =>
    app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/${action}`, headers, payload })
  const auditBefore = (await app.inject({ url: '/waygate/api/audit', headers })).json().length
  const stateBefore = (await app.inject({ url: `/waygate/api/routes/${enc('GET:/users/:id')}`, headers })).json()
  const impossible = [
    '9999-12-31T23:59:59-23:59', // year 10000 in UTC
    '2030-02-30', // rolls over to 2 March today
    '2030-02-29T00:00:00Z', // 2030 is not a leap year
    '2030-04-31T00:00:00Z',
    '2030-06-01T24:00:00Z',
    '2030-06-01T10:60:00Z',
    '2016-12-31T23:59:60Z',
    '9999999999d' // a duration past year 9999
  ]
  for (const when of impossible) {
    for (const [action, payload] of [
      ['maintenance', { end: when }],
      ['maintenance', { start: when, end: '2099-01-01T00:00:00Z' }],
      ['disable', { until: when }],
      ['schedule', { start: '2099-01-01T00:00:00Z', end: when }],
      ['deprecate', { sunset: when }]
    ] as const) {
      const res = await post(action, payload)
      t.equal(res.statusCode, 400, `${action} ${JSON.stringify(payload)}`)
      t.match(res.json().error, { code: /^WG_ERR_(INPUT|REQUEST)_INVALID$/, message: /valid date|expected an ISO/ })
    }
  }
  t.equal((await app.inject({ url: '/waygate/api/audit', headers })).json().length, auditBefore, 'nothing was audited')
  const list = await app.inject({ url: '/waygate/api/routes', headers })
  t.equal(list.statusCode, 200, 'the route list still reads')
  t.same((await app.inject({ url: `/waygate/api/routes/${enc('GET:/users/:id')}`, headers })).json(), stateBefore, 'nothing was written')
  t.equal((await app.inject('/users/1')).statusCode, 200)

  const ok = await post('maintenance', { end: '2099-12-31T23:59:59+05:00' })
  t.equal(ok.statusCode, 200, 'an offset that stays within 9999 is fine')
  t.equal(ok.json().routes[0].window.end, '2099-12-31T18:59:59.000Z')
  t.equal(engine.getState('GET:/users/:id')!.window!.end, '2099-12-31T18:59:59.000Z')
})

t.test('a stored time the model cannot read never makes the route list, a route or the app fail', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  // as an older version could have written it
  await engine.backend.updateRoute('GET:/users/:id', current => ({
    next: { ...current!, status: 'active', window: { start: '2020-01-01T00:00:00.000Z', end: '+010000-01-01T23:58:59.000Z', reason: 'long' } }
  }))
  await engine.backend.updateRoute('POST:/payments', current => ({
    next: { ...current!, status: 'disabled', disabledUntil: '+275760-09-13T00:00:00.000Z' }
  }))
  await engine.resync()
  const list = await app.inject({ url: '/waygate/api/routes', headers })
  t.equal(list.statusCode, 200)
  t.match(list.json().find((r: { key: string }) => r.key === 'GET:/users/:id'), { status: 'maintenance', window: { end: null } })
  const one = await app.inject({ url: `/waygate/api/routes/${enc('POST:/payments')}`, headers })
  t.equal(one.statusCode, 200)
  t.match(one.json(), { status: 'disabled', disabledUntil: null })
  const route = await app.inject('/users/1')
  t.equal(route.statusCode, 503)
  t.equal(route.headers['retry-after'], undefined, 'no Retry-After for a window that never ends')
})

t.test('audit since and until: a leap second or impossible date is a 400, an offset is read as the instant it names', async t => {
  const { app, login } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  await app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/disable`, headers, payload: {} })
  for (const field of ['since', 'until']) {
    for (const when of ['2016-12-31T23:59:60Z', '2016-12-31T23:59:60+00:00', '2016-12-31T18:59:60-05:00', '9999-12-31T23:59:59-23:59', '2030-02-30T00:00:00Z', 'yesterday']) {
      const res = await app.inject({ url: `/waygate/api/audit?${field}=${encodeURIComponent(when)}`, headers })
      t.equal(res.statusCode, 400, `${field}=${when}`)
      t.match(res.json().error, { code: /^WG_ERR_(INPUT|REQUEST)_INVALID$/, message: new RegExp(field) })
    }
  }
  const now = Date.now()
  const inOneHour = new Date(now + 3_600_000)
  // the same instant an hour ahead, written at +02:00
  const local = new Date(inOneHour.getTime() + 2 * 3_600_000).toISOString().slice(0, 19) + '+02:00'
  t.same((await app.inject({ url: `/waygate/api/audit?since=${encodeURIComponent(local)}`, headers })).json(), [], 'nothing after an hour from now')
  t.equal((await app.inject({ url: `/waygate/api/audit?until=${encodeURIComponent(local)}`, headers })).json()[0].action, 'disable')
})
