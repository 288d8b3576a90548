import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import { createEngine, createFileBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'
import { buildAdminApp, USER } from './helpers/app.js'
import { csrfOf, form, FORM_HEADERS, postAction, sessionCookie, sessionCookieLine, signIn } from './helpers/dashboard.js'

const XSS = '<script>alert(1)</script>'
const ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;'

t.test('every page needs a session: no cookie redirects to the login page, keeping where you were going', async t => {
  const { app } = await buildAdminApp(t)
  for (const url of ['/waygate/', '/waygate', '/waygate/audit', '/waygate/rate-limits', '/waygate/confirm?action=enable&key=GET%3A%2Fpayments']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 303, url)
    t.match(res.headers.location, /^\/waygate\/login/, url)
  }
  t.equal((await app.inject('/waygate/audit')).headers.location, '/waygate/login?next=%2Fwaygate%2Faudit')
  t.equal((await app.inject({ url: '/waygate/', headers: { cookie: 'waygate_session=wg1.forged.token' } })).headers.location, '/waygate/login',
    'a forged cookie is no session')

  const login = await app.inject('/waygate/login?next=%2Fwaygate%2Faudit')
  t.equal(login.statusCode, 200)
  t.match(login.headers['content-type'], /^text\/html/)
  t.match(login.body, /<input id="login-username" name="username"/)
  t.match(login.body, /<input id="login-password" name="password" type="password"/)
  t.match(login.body, /name="next" value="\/waygate\/audit"/)
  t.notMatch(login.body, /waygate-csrf/, 'no session, no token')
})

t.test('login sets the session cookie: HttpOnly, SameSite=Strict, scoped to the prefix, expiring with the token', async t => {
  const { app } = await buildAdminApp(t, { admin: { tokenExpiry: 3600 } })
  const res = await app.inject({ method: 'POST', url: '/waygate/login', headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'secret', next: '/waygate/audit' }) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/waygate/audit')
  const line = sessionCookieLine(res)
  t.match(line, /^waygate_session=wg1\.[\w-]+\.[\w-]+;/)
  t.match(line, /; HttpOnly/)
  t.match(line, /; SameSite=Strict/)
  t.match(line, /; Path=\/waygate(;|$)/)
  t.match(line, /; Max-Age=3600(;|$)/)
  t.notMatch(line, /Secure/, 'plain http: not Secure unless configured')

  const cookie = sessionCookie(res)!
  const me = await app.inject({ url: '/waygate/api/auth/me', headers: { cookie } })
  t.match(me.json(), { user: 'admin', platform: 'dashboard', authenticated: true }, 'the cookie holds a dashboard token')
  t.equal((await app.inject({ url: '/waygate/login', headers: { cookie } })).headers.location, '/waygate/', 'signed in: the login page moves on')
})

t.test('the cookie is Secure when configured, or when the request came over HTTPS', async t => {
  const configured = await buildAdminApp(t, { admin: { cookieSecure: true } })
  const a = await configured.app.inject({ method: 'POST', url: '/waygate/login', headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'secret' }) })
  t.match(sessionCookieLine(a), /; Secure/)

  const login = { method: 'POST' as const, url: '/waygate/login', headers: { ...FORM_HEADERS, 'x-forwarded-proto': 'https' }, payload: form({ username: 'admin', password: 'secret' }) }
  const untrusted = await buildAdminApp(t)
  t.notMatch(sessionCookieLine(await untrusted.app.inject(login)), /Secure/, 'a forwarded header counts only with trustProxy')

  // request.protocol is https on a TLS socket, or behind a trusted proxy that says so
  const app = Fastify({ trustProxy: true })
  t.teardown(() => app.close())
  await app.register(waygate, { engine: createEngine() })
  await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' }, secretKey: 'test-secret-key-0123456789' })
  t.match(sessionCookieLine(await app.inject(login)), /; Secure/, 'HTTPS at the proxy')
})

t.test('the login form refuses wrong passwords, throttles, and never redirects off the dashboard', async t => {
  const { app } = await buildAdminApp(t, { admin: { loginThrottle: { maxAttempts: 2, windowSeconds: 60 } } })
  const attempt = (values: Record<string, string>, headers = {}) =>
    app.inject({ method: 'POST', url: '/waygate/login', headers: { ...FORM_HEADERS, ...headers }, payload: form(values) })

  const wrong = await attempt({ username: '<b>bob</b>', password: 'nope' })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, /Wrong username or password/)
  t.match(wrong.body, /value="&lt;b&gt;bob&lt;\/b&gt;"/, 'the username typed comes back escaped')
  t.equal(sessionCookie(wrong), null)
  t.equal((await attempt({ username: 'admin', password: '' })).statusCode, 400)

  for (const next of ['https://evil.example/', '//evil.example/x', '/elsewhere', '/waygate\\@evil', '/waygate/../evil', '/waygate/%2E%2e/evil']) {
    const res = await attempt({ username: 'admin', password: 'secret', next })
    t.equal(res.headers.location, '/waygate/', `next=${next} stays home`)
  }

  const crossSite = await attempt({ username: 'admin', password: 'secret' }, { 'sec-fetch-site': 'cross-site' })
  t.equal(crossSite.statusCode, 403, 'a login posted from another site is refused')
  t.match(crossSite.body, /WG_ERR_CSRF_INVALID/)
  t.equal(sessionCookie(crossSite), null)

  await attempt({ username: 'admin', password: 'nope' })
  await attempt({ username: 'admin', password: 'nope' })
  const throttled = await attempt({ username: 'admin', password: 'secret' })
  t.equal(throttled.statusCode, 429)
  t.ok(Number(throttled.headers['retry-after']) > 0)
  t.match(throttled.body, /Too many failed sign-ins/)
  t.equal((await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password: 'secret' } })).statusCode, 429,
    'the dashboard and the API share the throttle')
})

t.test('the routes page: every route with its state, counters over all routes, filters and pagination', async t => {
  const { app, engine } = await buildAdminApp(t, {
    routes: app => {
      app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({}))
      for (let i = 0; i < 30; i++) app.get(`/items/${String(i).padStart(2, '0')}`, async () => ({}))
      app.get('/payments', { config: { waygate: { maintenance: { reason: 'DB migration' } } } }, async () => ({}))
      app.get('/debug', { config: { waygate: { envOnly: ['dev', 'staging'] } } }, async () => ({}))
      app.get('/v1/users', { config: { waygate: { deprecated: { sunset: '2030-01-01T00:00:00Z', successor: '/v2/users' } } } }, async () => ({}))
    }
  })
  await engine.schedule('GET:/items/00', { start: engine.now() + 3_600_000, end: engine.now() + 7_200_000, reason: 'reindex' })
  const browser = await signIn(app)
  const get = (url: string) => app.inject({ url, headers: { cookie: browser.cookie } })

  const page = await get('/waygate/')
  t.equal(page.statusCode, 200)
  const body = page.body
  t.match(body, /Showing 1–25 of 34\./)
  t.match(body, /<span class="count">34<\/span>\s*<span class="label">All routes<\/span>/)
  t.match(body, /<span class="count">31<\/span>\s*<span class="label">Active<\/span>/)
  t.match(body, /<span class="count">1<\/span>\s*<span class="label">Maintenance<\/span>/)
  t.match(body, /<span class="count">1<\/span>\s*<span class="label">Force-active<\/span>/)
  t.match(body, /href="\/waygate\/\?page=2" rel="next"/)
  const full = (await get('/waygate/?perPage=100')).body
  t.match(full, /Showing 1–34 of 34\./)
  t.match(full, /<code class="path">\/debug<\/code>/)
  t.match(full, /<span class="chip">dev<\/span>\s*<span class="chip">staging<\/span>/, 'allowed environments')
  t.match(full, /badge-maintenance">Maintenance</)
  t.match(full, /DB migration/)
  t.match(full, /2030-01-01 00:00:00 UTC/, 'the sunset, absolute')
  t.match(full, /→ <code>\/v2\/users<\/code>/, 'the successor')
  t.match(full, /scheduled<\/span>\s*<div>from <time datetime="[^"]+" title="[^"]+" data-relative>in (59 min|1 h)<\/time>/, 'the window, relative and absolute')
  t.match(full, /reindex/)

  const second = await get('/waygate/?page=2')
  t.match(second.body, /Showing 26–34 of 34\./)
  t.match(second.body, /Page 2 of 2/)

  const maintenance = await get('/waygate/?status=maintenance')
  t.match(maintenance.body, /Showing 1–1 of 1 matching \(34 in all\)\./)
  t.match(maintenance.body, /<span class="count">31<\/span>\s*<span class="label">Active<\/span>/, 'counters still count every route')
  t.match(maintenance.body, /class="counter counter-maintenance" href="[^"]*" data-focus="counter-maintenance" aria-current="true"/)

  t.match((await get('/waygate/?q=MIGRATION')).body, /Showing 1–1 of 1 matching/, 'text search covers reasons, any case')
  t.match((await get('/waygate/?q=items%2F1')).body, /Showing 1–10 of 10 matching/)
  t.match((await get('/waygate/?status=protected')).body, /Showing 1–1 of 1 matching/)
  t.match((await get('/waygate/?perPage=10&page=4')).body, /Showing 31–34 of 34\./)
  t.match((await get('/waygate/?page=99&status=bogus&perPage=7')).body, /Showing 26–34 of 34\./, 'nonsense in the query falls back to defaults')
  t.match((await get('/waygate/?service=-')).body, /Showing 1–25 of 34/, 'this app\'s own routes')
  t.match((await get('/waygate/?service=billing')).body, /No routes match these filters/)

  // force-active rows are protected: no action buttons
  const health = /<tr id="route-[\w-]+" data-key="GET:\/health"[\s\S]*?<\/tr>/.exec(full)![0]
  t.match(health, /badge-protected/)
  t.match(health, /No actions: force-active/)
  t.notMatch(health, /data-dialog/)
  const payments = /<tr id="route-[\w-]+" data-key="GET:\/payments"[\s\S]*?<\/tr>/.exec(full)![0]
  for (const action of ['enable', 'maintenance', 'disable', 'env', 'schedule', 'deprecate']) t.match(payments, `data-action="${action}"`)
  t.notMatch(payments, 'data-action="cancel"', 'no window, nothing to cancel')
})

t.test('every user string is escaped: reasons, actors, keys, exempt paths', async t => {
  const { app, engine } = await buildAdminApp(t)
  await engine.disable('GET:/users/:id', { reason: XSS, actor: '<img src=x onerror=alert(2)>' })
  await engine.enableGlobalMaintenance({ reason: `"${XSS}`, exemptPaths: ['/payments'] })
  const browser = await signIn(app)
  for (const url of ['/waygate/', '/waygate/audit', '/waygate/rate-limits', `/waygate/confirm?action=disable&key=${encodeURIComponent('GET:/users/:id')}`]) {
    const res = await app.inject({ url, headers: { cookie: browser.cookie } })
    t.equal(res.statusCode, 200, url)
    t.notMatch(res.body, '<script>alert(1)', url)
    t.notMatch(res.body, '<img src=x', url)
    t.match(res.body, ESCAPED, url)
    // no inline script and no inline style anywhere: they could not run under the CSP anyway
    t.notMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/, `${url}: scripts only by src`)
    t.notMatch(res.body, /<[^>]*\s(style|on[a-z]+)=/i, `${url}: no inline styles or handlers`)
  }
  const audit = await app.inject({ url: '/waygate/audit', headers: { cookie: browser.cookie } })
  t.match(audit.body, '&lt;img src=x onerror=alert(2)&gt;')
  const routes = await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })
  t.match(routes.body, `Reason: <q>&quot;${ESCAPED}</q>`, 'the banner escapes quotes too')
})

t.test('security headers on every dashboard response', async t => {
  const { app } = await buildAdminApp(t)
  const browser = await signIn(app)
  const responses = [
    await app.inject('/waygate/login'),
    await app.inject('/waygate/'),
    await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } }),
    await app.inject({ url: '/waygate/audit', headers: { cookie: browser.cookie } }),
    await app.inject({ url: '/waygate/confirm?action=nope', headers: { cookie: browser.cookie } }),
    await app.inject({ method: 'POST', url: '/waygate/action', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: 'action=enable' }),
    await app.inject('/waygate/assets/dashboard.css')
  ]
  for (const res of responses) {
    const csp = res.headers['content-security-policy'] as string
    t.match(csp, /default-src 'self'/)
    t.match(csp, /script-src 'self'(;|$)/, 'no unsafe-inline, no other origin')
    t.match(csp, /form-action 'self'/)
    t.match(csp, /frame-ancestors 'none'/)
    t.notMatch(csp, /unsafe|https?:/)
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['referrer-policy'], 'same-origin')
  }
  t.equal(responses[2]!.headers['cache-control'], 'no-store', 'pages are never cached')
  t.equal(responses[4]!.statusCode, 400)
  t.match(responses[4]!.body, /unknown action/)
  t.equal(responses[5]!.statusCode, 403, 'a form without its CSRF token')
})

t.test('assets: served by the plugin from memory, with types, ETags and long caching by hash', async t => {
  const { app } = await buildAdminApp(t)
  const browser = await signIn(app)
  const page = (await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })).body
  const css = /href="(\/waygate\/assets\/dashboard\.css\?v=[\w-]+)"/.exec(page)![1]!
  const js = /src="(\/waygate\/assets\/dashboard\.js\?v=[\w-]+)"/.exec(page)![1]!
  const styles = await app.inject(css)
  t.equal(styles.statusCode, 200)
  t.equal(styles.headers['content-type'], 'text/css; charset=utf-8')
  t.equal(styles.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.match(styles.body, /prefers-color-scheme: dark/)
  const script = await app.inject(js)
  t.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
  t.match(script.body, /EventSource/)
  t.equal((await app.inject('/waygate/assets/dashboard.js?v=old')).headers['cache-control'], 'no-cache', 'a stale hash is revalidated')
  t.equal((await app.inject({ url: js, headers: { 'if-none-match': script.headers.etag as string } })).statusCode, 304)
  t.equal((await app.inject('/waygate/assets/plugin.ts')).statusCode, 404)
  t.equal((await app.inject('/waygate/assets/..%2Fsrc%2Fplugin.ts')).statusCode, 404)
  t.equal((await app.inject('/waygate/assets/favicon.svg')).headers['content-type'], 'image/svg+xml')
})

t.test('CSRF: a cookie-authenticated change needs this session\'s token, and nothing changes without it', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  const other = await signIn(app)
  t.not(browser.csrf, other.csrf, 'one token per session')
  const values = { action: 'disable', key: 'GET:/users/:id', reason: 'csrf' }
  const status = () => engine.getState('GET:/users/:id')!.status

  const refusals = [
    ['no token', await app.inject({ method: 'POST', url: '/waygate/action', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form(values) })],
    ['a wrong token', await postAction(app, { ...browser, csrf: 'x'.repeat(43) }, values)],
    ['another session\'s token', await postAction(app, { ...browser, csrf: other.csrf }, values)],
    ['the right token from another site', await postAction(app, browser, values, { 'sec-fetch-site': 'cross-site' })],
    ['the right token with a foreign Origin', await postAction(app, browser, values, { origin: 'https://evil.example' })]
  ] as const
  for (const [why, res] of refusals) {
    t.equal(res.statusCode, 403, why)
    t.match(res.body, /WG_ERR_CSRF_INVALID/, why)
  }
  const json = await app.inject({ method: 'POST', url: '/waygate/action', headers: { ...FORM_HEADERS, cookie: browser.cookie, accept: 'application/json' }, payload: form(values) })
  t.equal(json.statusCode, 403)
  t.equal(json.json().error.code, 'WG_ERR_CSRF_INVALID', 'scripts get the coded JSON error')
  t.equal(status(), 'active', 'nothing changed')
  t.equal((await engine.listAudit()).length, 0, 'nothing audited')

  const ok = await postAction(app, browser, values, { 'sec-fetch-site': 'same-origin', origin: 'http://localhost:80' })
  t.equal(ok.statusCode, 303)
  t.equal(ok.headers.location, '/waygate/')
  t.equal(status(), 'disabled')
  const [entry] = await engine.listAudit()
  t.match(entry, { key: 'GET:/users/:id', action: 'disable', actor: 'admin', platform: 'dashboard', reason: 'csrf' })

  const header = await app.inject({
    method: 'POST',
    url: '/waygate/action',
    headers: { ...FORM_HEADERS, cookie: browser.cookie, 'x-waygate-csrf': browser.csrf, accept: 'application/json' },
    payload: form({ action: 'enable', key: 'GET:/users/:id' })
  })
  t.equal(header.statusCode, 200, 'the token may come in the header instead')
  t.same(header.json(), { ok: true, action: 'enable', key: 'GET:/users/:id' })
  t.equal(status(), 'active')
})

t.test('the cookie also authenticates the REST API: reads freely, changes only with the CSRF header', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  const url = `/waygate/api/routes/${encodeURIComponent('GET:/users/:id')}/disable`
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { cookie: browser.cookie } })).statusCode, 200)
  t.equal((await app.inject({ url: '/waygate/api/global', headers: { cookie: browser.cookie } })).statusCode, 200)

  const bare = await app.inject({ method: 'POST', url, headers: { cookie: browser.cookie }, payload: { reason: 'x' } })
  t.equal(bare.statusCode, 403)
  t.equal(bare.json().error.code, 'WG_ERR_CSRF_INVALID')
  const wrong = await app.inject({ method: 'POST', url, headers: { cookie: browser.cookie, 'x-waygate-csrf': 'nope' }, payload: { reason: 'x' } })
  t.equal(wrong.statusCode, 403)
  t.equal(engine.getState('GET:/users/:id')!.status, 'active')

  const ok = await app.inject({ method: 'POST', url, headers: { cookie: browser.cookie, 'x-waygate-csrf': browser.csrf }, payload: { reason: 'x' } })
  t.equal(ok.statusCode, 200)
  t.match((await engine.listAudit())[0], { actor: 'admin', platform: 'dashboard' })

  // a token in a header is not ambient, so it needs no CSRF token, even next to a cookie
  const token = (await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password: 'secret', platform: 'cli' } })).json().token
  const cli = await app.inject({ method: 'POST', url: url.replace('/disable', '/enable'), headers: { cookie: browser.cookie, 'x-waygate-token': token } })
  t.equal(cli.statusCode, 200)
  t.match((await engine.listAudit())[0], { platform: 'cli' })

  // only dashboard tokens count as a session cookie
  const smuggled = await app.inject({ url: '/waygate/api/routes', headers: { cookie: `waygate_session=${token}` } })
  t.equal(smuggled.statusCode, 403)
})

/** Opens the change feed over a real socket, calls `onHello` once it is open, and resolves at the first change. */
function openFeed (port: number, cookie: string | undefined, onHello: () => Promise<unknown>) {
  return new Promise<{ status: number, text: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/waygate/api/events', headers: cookie === undefined ? {} : { cookie } }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        if (res.statusCode !== 200 || text.includes('event: route_changed')) {
          req.destroy()
          resolve({ status: res.statusCode!, text })
        } else if (chunk.includes('event: hello')) {
          onHello().catch(reject)
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('the session cookie authenticates the SSE change feed', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const change = () => engine.disable('GET:/users/:id', { reason: 'live' })
  t.equal((await openFeed(port, undefined, change)).status, 401)
  const feed = await openFeed(port, browser.cookie, change)
  t.equal(feed.status, 200)
  t.match(feed.text, /event: route_changed\ndata: \{[^\n]*"key":"GET:\/users\/:id"/)
})

t.test('on the file backend, a change made by another process reaches the feed and the pages', async t => {
  const path = join(t.testdir(), 'waygate-state.json')
  const { app } = await buildAdminApp(t, { engine: { backend: createFileBackend({ path, pollIntervalMs: 100 }) } })
  // another process sharing the file: the CLI's server elsewhere, a deploy script…
  const other = createEngine({ backend: createFileBackend({ path, pollIntervalMs: 100 }) })
  await other.start()
  t.teardown(() => other.close())
  const browser = await signIn(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const feed = await openFeed(port, browser.cookie, () => other.setMaintenance('GET:/users/:id', { reason: 'from elsewhere', actor: 'ops', platform: 'cli' }))
  t.match(feed.text, /event: route_changed\ndata: \{[^\n]*"status":"maintenance"/)
  const page = await app.inject({ url: '/waygate/?q=users%2F', headers: { cookie: browser.cookie } })
  t.match(page.body, /data-key="GET:\/users\/:id"[\s\S]*?badge-maintenance">Maintenance<[\s\S]*?from elsewhere/)
  const audit = await app.inject({ url: '/waygate/audit', headers: { cookie: browser.cookie } })
  t.match(audit.body, /<td data-label="Actor">ops<\/td>/)
})

t.test('each action runs the engine operation the REST API runs, audited from the dashboard', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  const key = 'GET:/users/:id'
  const run = async (values: Record<string, string>) => {
    const res = await postAction(app, browser, { key, return: '/waygate/?status=disabled', ...values })
    t.equal(res.statusCode, 303, `${values.action}: ${res.body.slice(0, 300)}`)
    t.equal(res.headers.location, '/waygate/?status=disabled', 'back where the form came from')
    return engine.getState(key)!
  }
  const now = engine.now()

  t.match(await run({ action: 'maintenance', reason: 'reindex' }), { status: 'maintenance', reason: 'reindex', window: null })
  const windowed = await run({ action: 'maintenance', reason: 'short', end: '1h' })
  t.equal(windowed.window!.reason, 'short')
  t.ok(Math.abs(Date.parse(windowed.window!.end!) - now - 3_600_000) < 5000, 'the end, an hour from now')
  t.match(await run({ action: 'enable' }), { status: 'active', window: null })
  const until = await run({ action: 'disable', reason: 'hotfix', until: '2h' })
  t.match(until, { status: 'disabled', reason: 'hotfix' })
  t.ok(until.disabledUntil !== null)
  t.match(await run({ action: 'env', envs: 'dev, staging  qa' }), { status: 'env_gated', allowedEnvs: ['dev', 'staging', 'qa'] })
  const start = new Date(now + 86_400_000).toISOString()
  const scheduled = await run({ action: 'schedule', start, end: '2d', reason: 'upgrade' })
  t.equal(scheduled.window!.start, start)
  t.equal(scheduled.status, 'env_gated', 'a later window leaves the status alone')
  t.equal((await run({ action: 'cancel' })).window, null)
  t.match(await run({ action: 'deprecate', sunset: '2030-01-01', successor: '/v2/users/:id' }), { status: 'deprecated', successor: '/v2/users/:id', sunset: '2030-01-01T00:00:00.000Z' })

  const audit = await engine.listAudit({ limit: 20 })
  t.same(audit.map(e => e.action).reverse(),
    ['maintenance_on', 'maintenance_on', 'enable', 'disable', 'env_gate', 'schedule', 'schedule_cancel', 'deprecate'])
  t.ok(audit.every(e => e.actor === 'admin' && e.platform === 'dashboard'))

  // global maintenance, through the same forms
  const on = await postAction(app, browser, { action: 'global-on', reason: 'deploy', exemptPaths: '/health\nGET:/users/:id, /payments', includeForceActive: 'on' })
  t.equal(on.statusCode, 303)
  t.match(engine.getGlobal(), { enabled: true, reason: 'deploy', exemptPaths: ['/health', 'GET:/users/:id', '/payments'], includeForceActive: true })
  t.equal((await app.inject('/users/1')).statusCode, 200, 'an exempt path answers')
  t.equal((await app.inject('/v1/users')).statusCode, 503, 'the app answers 503')
  await postAction(app, browser, { action: 'global-edit', reason: 'still deploying', exemptPaths: '' })
  t.match(engine.getGlobal(), { enabled: true, reason: 'still deploying', exemptPaths: [], includeForceActive: false })
  t.equal((await postAction(app, browser, { action: 'global-off' })).statusCode, 303)
  t.equal(engine.getGlobal().enabled, false)
  t.match((await engine.listAudit())[0], { key: '*', action: 'global_maintenance_off', platform: 'dashboard' })
})

t.test('a refused action shows the form again with the reason, or a JSON error to the script', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  const bad = await postAction(app, browser, { action: 'schedule', key: 'GET:/payments', start: 'tomorrow', end: '2h', reason: XSS })
  t.equal(bad.statusCode, 400)
  t.match(bad.body, /<section class="card confirm" data-confirm/)
  t.match(bad.body, /<p class="form-error" role="alert" data-form-error>[^<]*expected an ISO 8601 date-time/)
  t.match(bad.body, /name="start" type="text" value="tomorrow"/, 'what was typed stays')
  t.match(bad.body, `value="${ESCAPED}"`)

  const json = await postAction(app, browser, { action: 'maintenance', key: 'GET:/payments', end: '2000-01-01T00:00:00Z' }, { accept: 'application/json' })
  t.equal(json.statusCode, 400)
  t.equal(json.json().error.code, 'WG_ERR_INPUT_INVALID')
  t.equal((await postAction(app, browser, { action: 'env', key: 'GET:/payments', envs: '' }, { accept: 'application/json' })).json().error.code, 'WG_ERR_REQUEST_INVALID')
  t.equal((await postAction(app, browser, { action: 'disable', key: 'GET:/health' }, { accept: 'application/json' })).json().error.code, 'WG_ERR_ROUTE_FORCE_ACTIVE')
  t.equal((await postAction(app, browser, { action: 'disable', key: 'GET:/nope' }, { accept: 'application/json' })).statusCode, 404)
  t.equal((await postAction(app, browser, { action: 'disable', key: 'GET:/payments', reason: 'x'.repeat(2001) }, { accept: 'application/json' })).statusCode, 400)
  t.equal(engine.getState('GET:/payments')!.reason, 'DB migration', 'nothing changed')
  t.equal((await engine.listAudit()).length, 0)
})

t.test('confirmation pages: one per action, prefilled, refused for unknown or protected routes', async t => {
  const { app, engine } = await buildAdminApp(t)
  await engine.setEnvOnly('GET:/users/:id', ['dev', 'qa'])
  await engine.enableGlobalMaintenance({ reason: 'deploy', exemptPaths: ['/health'] })
  const browser = await signIn(app)
  const get = (query: string) => app.inject({ url: `/waygate/confirm?${query}`, headers: { cookie: browser.cookie } })

  const env = await get(`action=env&key=${encodeURIComponent('GET:/users/:id')}&return=${encodeURIComponent('/waygate/?q=users')}`)
  t.equal(env.statusCode, 200)
  t.match(env.body, /<h1 id="confirm-title">Restrict route to environments<\/h1>/)
  t.match(env.body, /<p class="subject"><code>GET:\/users\/:id<\/code><\/p>/)
  t.match(env.body, /name="envs" type="text" value="dev, qa"/)
  t.match(env.body, /name="return" value="\/waygate\/\?q=users"/)
  t.match(env.body, `name="_csrf" value="${browser.csrf}"`)
  t.match(env.body, /<label for="field-envs">Environments<\/label>/, 'every field has a label')

  const edit = await get('action=global-edit')
  t.match(edit.body, /<textarea id="field-exemptPaths" name="exemptPaths"[^>]*>\/health<\/textarea>/)
  t.match(edit.body, /name="reason" type="text" value="deploy"/)
  t.match((await get('action=enable&key=GET%3A%2Fpayments&return=https%3A%2F%2Fevil.example')).body, /name="return" value="\/waygate\/"/, 'return stays on the dashboard')

  t.equal((await get('action=disable&key=GET%3A%2Fnope')).statusCode, 404)
  const protectedRoute = await get('action=disable&key=GET%3A%2Fhealth')
  t.equal(protectedRoute.statusCode, 409)
  t.match(protectedRoute.body, /WG_ERR_ROUTE_FORCE_ACTIVE/)
  t.equal((await get('action=disable')).statusCode, 400)
})

t.test('global maintenance: the card on the routes page and a banner on every page while it is on', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  const get = (url: string) => app.inject({ url, headers: { cookie: browser.cookie } })
  const off = await get('/waygate/')
  t.match(off.body, /Global maintenance is <strong>off<\/strong>/)
  t.match(off.body, /data-action="global-on"/)
  t.notMatch(off.body, /class="banner"/)

  await engine.enableGlobalMaintenance({ reason: 'deploy 42', exemptPaths: ['/health', 'GET:/payments'], includeForceActive: true, actor: 'ci' })
  const on = await get('/waygate/')
  t.match(on.body, /Global maintenance is <strong>on<\/strong>/)
  t.match(on.body, /<code class="chip">\/health<\/code>\s*<code class="chip">GET:\/payments<\/code>/)
  t.match(on.body, /blocked too/)
  t.match(on.body, /data-action="global-edit"/)
  t.match(on.body, /data-action="global-off"/)
  for (const url of ['/waygate/', '/waygate/audit', '/waygate/rate-limits']) {
    const res = await get(url)
    t.match(res.body, /<div class="banner" role="alert">\s*<strong>Global maintenance is on\.<\/strong>\s*<span>Every route answers 503, except 2 exempt paths\.<\/span>\s*<span class="banner-reason">Reason: <q>deploy 42<\/q>/, url)
  }
  t.match((await get('/waygate/rate-limits')).body, /Rate limits/)
})

t.test('the audit page: readable entries, filters and cursor pagination', async t => {
  let clock = Date.parse('2030-03-01T12:00:00Z')
  const { app, engine } = await buildAdminApp(t, { engine: { now: () => clock } })
  for (let i = 0; i < 30; i++) {
    clock += 60_000
    await engine.disable('GET:/users/:id', { reason: `r${i}`, actor: i % 2 === 0 ? 'alice' : 'bob', platform: 'cli' })
    await engine.enable('GET:/users/:id', { actor: 'bob', platform: 'api' })
  }
  await engine.enableGlobalMaintenance({ reason: 'deploy', actor: 'ci', platform: 'sdk' })
  clock += 3 * 60_000
  const browser = await signIn(app)
  const get = (query = '') => app.inject({ url: `/waygate/audit${query}`, headers: { cookie: browser.cookie } })

  const first = await get()
  t.equal(first.statusCode, 200)
  const rows = first.body.match(/<tr id="audit-[^"]+">/g)!
  t.equal(rows.length, 25)
  t.match(first.body, /<span class="global-key">Global maintenance<\/span>/)
  t.match(first.body, /<td data-label="Action">Global maintenance on<\/td>\s*<td data-label="Actor">ci<\/td>\s*<td data-label="Platform"><span class="platform platform-sdk">sdk<\/span>/)
  t.match(first.body, /<time datetime="2030-03-01T12:30:00.000Z" title="2030-03-01 12:30:00 UTC" data-relative>3 min ago<\/time> <small class="abs">2030-03-01 12:30:00 UTC<\/small>/,
    'relative and absolute time')
  t.match(first.body, /badge-disabled">Disabled<\/span>\s*<span class="arrow" aria-label="to">→<\/span>\s*<span class="badge badge-active">Active/, 'old → new')
  const older = /href="(\/waygate\/audit\?before=[^"]+)" rel="next"/.exec(first.body)![1]!.replace(/&amp;/g, '&')
  const second = await get(older.slice('/waygate/audit'.length))
  t.equal(second.body.match(/<tr id="audit-[^"]+">/g)!.length, 25)
  t.match(second.body, /← Newest/)
  t.notMatch(second.body, /Global maintenance<\/span>/, 'the next page starts where the first ended')
  const third = /href="(\/waygate\/audit\?before=[^"]+)" rel="next"/.exec(second.body)![1]!.replace(/&amp;/g, '&')
  const last = await get(third.slice('/waygate/audit'.length))
  t.equal(last.body.match(/<tr id="audit-[^"]+">/g)!.length, 11)
  t.notMatch(last.body, /Older →/)

  t.equal((await get('?actor=alice')).body.match(/<tr id="audit-/g)!.length, 15)
  t.equal((await get('?action=disable&actor=bob')).body.match(/<tr id="audit-/g)!.length, 15)
  t.equal((await get('?key=*')).body.match(/<tr id="audit-/g)!.length, 1)
  t.equal((await get(`?key=${encodeURIComponent('get:/users/:id')}&action=enable`)).body.match(/<tr id="audit-/g)!.length, 25, 'keys are normalised')
  t.match((await get('?since=2030-03-02')).body, /No entries match these filters/)
  t.equal((await get('?since=2030-03-01&until=2030-03-01&actor=ci')).body.match(/<tr id="audit-/g)!.length, 1, 'the until day is included')
  const invalid = await get('?key=nonsense')
  t.equal(invalid.statusCode, 200)
  t.match(invalid.body, /<p class="form-error" role="alert">/)
})

t.test('logout is a POST with the CSRF token; it revokes the token and clears the cookie', async t => {
  const { app } = await buildAdminApp(t)
  const browser = await signIn(app)
  t.equal((await app.inject({ url: '/waygate/logout', headers: { cookie: browser.cookie } })).statusCode, 404, 'no logout by GET')
  const forged = await app.inject({ method: 'POST', url: '/waygate/logout', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: '' })
  t.equal(forged.statusCode, 403)
  t.equal((await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })).statusCode, 200, 'still signed in')

  const out = await app.inject({ method: 'POST', url: '/waygate/logout', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form({ _csrf: browser.csrf }) })
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/waygate/login')
  t.match(sessionCookieLine(out), /^waygate_session=; Max-Age=0; Path=\/waygate; HttpOnly; SameSite=Strict/)
  const replayed = await app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })
  t.equal(replayed.statusCode, 303, 'the old cookie is revoked')
  t.equal(replayed.headers.location, '/waygate/login')
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { cookie: browser.cookie } })).statusCode, 401)
})

t.test('an expired session sends the browser back to the login page', async t => {
  let clock = Date.parse('2030-01-01T00:00:00Z')
  const { app } = await buildAdminApp(t, { engine: { now: () => clock }, admin: { tokenExpiry: 600 } })
  const browser = await signIn(app)
  clock += 601_000
  const res = await app.inject({ url: '/waygate/audit', headers: { cookie: browser.cookie } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/waygate/login?next=%2Fwaygate%2Faudit')
  t.match(sessionCookieLine(res), /Max-Age=0/)
  const action = await postAction(app, browser, { action: 'enable', key: 'GET:/payments' })
  t.equal(action.statusCode, 303)
  t.equal(action.headers.location, '/waygate/login')
})

t.test('an open admin (auth: false) still gives each browser a session, so forms carry a CSRF token', async t => {
  const { app, engine } = await buildAdminApp(t, { admin: { auth: false } })
  t.equal((await app.inject('/waygate/login')).headers.location, '/waygate/', 'nothing to sign in to')
  const stale = await app.inject({ url: '/waygate/login', headers: { cookie: 'waygate_session=wg1.stale.cookie' } })
  t.equal(stale.headers.location, '/waygate/', 'a stale cookie is no obstacle either')
  t.match(sessionCookieLine(stale), /Max-Age=0/, 'and it is cleared')
  const page = await app.inject('/waygate/')
  t.equal(page.statusCode, 200)
  const cookie = sessionCookie(page)!
  t.ok(cookie, 'a session cookie is issued')
  t.match(page.body, /open admin/)
  const csrf = csrfOf(page.body)
  const none = await app.inject({ method: 'POST', url: '/waygate/action', headers: FORM_HEADERS, payload: form({ action: 'disable', key: 'GET:/payments' }) })
  t.equal(none.statusCode, 403, 'no session, no change')
  t.equal((await postAction(app, { cookie, csrf: 'x' }, { action: 'disable', key: 'GET:/payments' })).statusCode, 403)
  t.equal((await postAction(app, { cookie, csrf }, { action: 'disable', key: 'GET:/payments' })).statusCode, 303)
  t.match((await engine.listAudit())[0], { actor: 'anonymous', platform: 'dashboard' })
})

t.test('dashboard: false serves only the REST API, and cookies authenticate nothing', async t => {
  const { app } = await buildAdminApp(t, { admin: { dashboard: false } })
  t.equal((await app.inject('/waygate/')).statusCode, 404)
  t.equal((await app.inject('/waygate/login')).statusCode, 404)
  const token = (await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password: 'secret' } })).json().token
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { cookie: `waygate_session=${token}` } })).statusCode, 401)
  await t.rejects(buildAdminApp(t, { admin: { dashboard: 'yes' as never, cookieSecure: 1 as never } }), { code: 'WG_ERR_ADMIN_OPTIONS_INVALID', message: /dashboard: expected a boolean; cookieSecure: expected a boolean/ })
})

t.test('another prefix scopes the cookie and every link to it', async t => {
  const { app } = await buildAdminApp(t, { admin: { prefix: '/ops/admin' } })
  const login = await app.inject({ method: 'POST', url: '/ops/admin/login', headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'secret' }) })
  t.equal(login.headers.location, '/ops/admin/')
  t.match(sessionCookieLine(login), /; Path=\/ops\/admin;/)
  const page = await app.inject({ url: '/ops/admin/', headers: { cookie: sessionCookie(login)! } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<meta name="waygate-prefix" content="\/ops\/admin">/)
  t.notMatch(page.body, /"\/waygate/)
})

t.test('CSRF: the dashboard checks Origin even when Sec-Fetch-Site says same-origin', async t => {
  const { app, engine } = await buildAdminApp(t)
  const browser = await signIn(app)
  const values = { action: 'disable', key: 'GET:/users/:id', reason: 'csrf' }
  const foreign = ['https://evil.example', 'null', 'http://localhost:8080', 'http://evil.localhost']
  for (const site of ['same-origin', 'none']) {
    for (const origin of foreign) {
      const action = await postAction(app, browser, values, { 'sec-fetch-site': site, origin })
      t.equal(action.statusCode, 403, `action, Sec-Fetch-Site ${site}, Origin ${origin}`)
      t.match(action.body, /WG_ERR_CSRF_INVALID/)
      const login = await app.inject({ method: 'POST', url: '/waygate/login', headers: { ...FORM_HEADERS, 'sec-fetch-site': site, origin }, payload: form(USER) })
      t.equal(login.statusCode, 403, `login, Sec-Fetch-Site ${site}, Origin ${origin}`)
      t.equal(sessionCookie(login), null)
    }
  }
  t.equal(engine.getState('GET:/users/:id')!.status, 'active', 'nothing changed')
})
