import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { createEngine, createMemoryBackend, type RateLimitPolicy } from '@waygate/core'
import { waygateAdmin } from '@waygate/admin'
import { buildAdminApp, SECRET, USER } from './helpers/app.js'
import { form, FORM_HEADERS, signIn, type Browser } from './helpers/dashboard.js'
import { policyFromForm, policyToForm } from '../src/dashboard/rate-limit-actions.js'

const XSS = '<script>alert(1)</script>'
const ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;'
const ok = async () => ({ ok: true })

/** Routes with one limit declared in code, a few without, and a route that keys by API key. */
function routes (app: FastifyInstance): void {
  app.get('/posts', { config: { waygate: { rateLimit: { limit: '2/minute', algorithm: 'fixed_window' } } } }, ok)
  app.get('/search', ok)
  app.post('/search', ok)
  app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
  app.get('/keys', { config: { waygate: { rateLimit: { limit: '1/minute', key: 'api_key', group: XSS } } } }, ok)
  app.get('/plans', { config: { waygate: { rateLimit: { tiers: { free: '1/minute', pro: '5/minute' }, key: (request) => request.headers['x-user'] as string } } } }, ok)
}

async function setup (t: Parameters<typeof buildAdminApp>[0]) {
  const built = await buildAdminApp(t, { routes })
  const browser = await signIn(built.app)
  const get = (url: string) => built.app.inject({ url, headers: { cookie: browser.cookie } })
  return { ...built, browser, get, limiter: built.app.waygateRateLimits }
}

/** Posts a rate limit form as a browser without the script would. */
function postRateLimit (app: FastifyInstance, browser: Browser, values: Record<string, string>, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/waygate/rate-limits/action',
    headers: { ...FORM_HEADERS, cookie: browser.cookie, ...headers },
    payload: form({ _csrf: browser.csrf, ...values })
  })
}

/** The row of a key in a page. */
function row (html: string, key: string): string {
  const found = new RegExp(`<tr id="[\\w-]+" data-key="${key.replace(/[/*]/g, '\\$&')}"[\\s\\S]*?</tr>`).exec(html)
  return found === null ? '' : found[0]
}

t.test('the page: policies from code and runtime, routes without one, the global card', async t => {
  const { app, get, limiter } = await setup(t)
  await limiter.setPolicy({ key: 'POST:/search', limits: ['10/second', '1000 per day'], burst: 5, keyBy: 'user', exemptIps: ['10.0.0.0/8'] }, { actor: 'ops', platform: 'cli' })

  const res = await get('/waygate/rate-limits')
  t.equal(res.statusCode, 200)
  const body = res.body
  t.match(body, /<a href="\/waygate\/rate-limits"[^>]*aria-current="page">Rate limits<\/a>/, 'the nav points here, no longer a placeholder')
  t.notMatch(body, /soon/)
  t.match(body, /<a href="\/waygate\/rate-limits" data-focus="rl-tab-policies" aria-current="page">Policies<\/a>/)
  t.match(body, /Global rate limit is <strong>not set<\/strong>/)
  t.match(body, /data-action="rl-global-set"/)
  t.notMatch(body, /data-action="rl-global-(edit|delete|reset|enable|disable)"/)
  t.match(body, /<span class="count">4<\/span>\s*<span class="label">Policies<\/span>/)
  t.match(body, /<span class="count">1<\/span>\s*<span class="label">Set at runtime<\/span>/)
  t.match(body, /<span class="count">2<\/span>\s*<span class="label">Routes without a limit<\/span>/)

  const posts = row(body, 'GET:/posts')
  t.match(posts, /<code class="chip">2\/minute<\/code>/)
  t.match(posts, /Fixed window/)
  t.match(posts, /source-config[^>]*>code</)
  t.match(posts, /data-action="rl-edit"/)
  t.match(posts, /data-action="rl-reset"/)
  t.notMatch(posts, /rl-delete/, 'a limit declared in code cannot be deleted, only overridden')

  const search = row(body, 'POST:/search')
  t.match(search, /<code class="chip">10\/second<\/code>\s*<code class="chip">1000 per day<\/code>/)
  t.match(search, /Sliding window <span class="muted">\(default\)<\/span>/)
  t.match(search, /User <code class="rl-key-detail">request\.user\.id<\/code>/)
  t.match(search, /\+5/)
  t.match(search, /1 exempt address/)
  t.match(search, /source-runtime[^>]*>runtime</)
  t.match(search, /data-action="rl-delete"/)

  const plans = row(body, 'GET:/plans')
  t.match(plans, /<span class="tier-name">free<\/span> <code class="chip">1\/minute<\/code>/)
  t.match(plans, /<span class="tier-name">pro<\/span> <code class="chip">5\/minute<\/code>/)
  t.match(plans, /Key function \(code\)/)
  t.match(plans, /tier from request\.plan/)

  const unlimited = /<section id="wg-rl-unlimited"[\s\S]*?<\/section>/.exec(body)![0]
  t.match(row(unlimited, 'GET:/search'), /data-action="rl-add"[^>]*>Add limit…</)
  t.match(row(unlimited, 'GET:/health'), /badge-active/, 'force-active routes can be limited too')
  t.notMatch(unlimited, /data-key="GET:\/posts"/)

  // the search covers keys and groups; the global card shows its policy and exemptions
  t.match((await get('/waygate/rate-limits?q=posts')).body, /1 matching of 4 in all/)
  t.match((await get('/waygate/rate-limits?q=script')).body, /data-key="GET:\/keys"/, 'groups are searched too')
  await limiter.setGlobal({ limits: ['100/minute'], keyBy: 'ip' }, { exemptRoutes: ['GET:/health'] })
  const withGlobal = (await get('/waygate/rate-limits')).body
  t.match(withGlobal, /Global rate limit is <strong>on<\/strong>/)
  t.match(withGlobal, /<code class="chip">100\/minute<\/code>[\s\S]*<dt>Exempt routes<\/dt>\s*<dd>\s*<code class="chip">GET:\/health<\/code>/)
  for (const action of ['rl-global-edit', 'rl-global-disable', 'rl-global-reset', 'rl-global-delete']) t.match(withGlobal, `data-action="${action}"`)
  t.match(row(withGlobal, 'GET:/health'), /<td data-label="Global limit"><span class="muted">exempt<\/span>/)
  t.match(row(withGlobal, 'GET:/search'), /<td data-label="Global limit">applies<\/td>/)
  t.equal((await app.inject('/waygate/rate-limits')).statusCode, 303, 'signed out: the login page')
})

t.test('every change calls the limiter as the REST API does, audited from the dashboard', async t => {
  const { app, browser, limiter, engine } = await setup(t)
  const run = async (values: Record<string, string>) => {
    const res = await postRateLimit(app, browser, { return: '/waygate/rate-limits?q=search', ...values })
    t.equal(res.statusCode, 303, `${values.action}: ${res.body.slice(0, 400)}`)
    t.equal(res.headers.location, '/waygate/rate-limits?q=search', 'back where the form came from')
  }

  await run({ action: 'rl-add', key: 'GET:/search', limits: '2/minute', algorithm: 'fixed_window', burst: '1' })
  t.same(limiter.policyFor('GET:/search')!.policy, { key: 'GET:/search', limits: ['2/minute'], algorithm: 'fixed_window', burst: 1 })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject('/search')).statusCode)
  t.same(codes, [200, 200, 200, 429], 'limit + burst, then 429 at once')

  await run({ action: 'rl-reset', key: 'GET:/search' })
  t.equal((await app.inject('/search')).statusCode, 200, 'counters reset')

  await run({
    action: 'rl-edit',
    key: 'GET:/search',
    limits: '',
    tiers: 'free: 1/minute\npro = 5 per minute, 100/day',
    keyBy: 'api_key',
    apiKeyHeader: 'x-key',
    onMissingKey: 'block',
    exemptIps: '10.0.0.1, 192.168.0.0/16',
    group: 'searches',
    failClosed: 'on'
  })
  t.same(limiter.policyFor('GET:/search')!.policy, {
    key: 'GET:/search',
    keyBy: 'api_key',
    onMissingKey: 'block',
    exemptIps: ['10.0.0.1', '192.168.0.0/16'],
    tiers: { free: '1/minute', pro: ['5 per minute', '100/day'] },
    apiKeyHeader: 'x-key',
    group: 'searches',
    failClosed: true
  })
  t.equal((await app.inject('/search')).statusCode, 429, 'no API key: refused, as onMissingKey says')

  await run({ action: 'rl-edit', key: 'GET:/posts', limits: '100/minute' })
  t.match(limiter.list().find(p => p.key === 'GET:/posts'), { source: 'runtime', policy: { limits: ['100/minute'] } }, 'a runtime override of the code')
  await run({ action: 'rl-delete', key: 'GET:/posts' })
  t.match(limiter.list().find(p => p.key === 'GET:/posts'), { source: 'config', policy: { limits: ['2/minute'] } }, 'the code applies again')
  await run({ action: 'rl-delete', key: 'GET:/search' })
  t.equal(limiter.policyFor('GET:/search'), null)

  await run({ action: 'rl-global-set', limits: '3/minute', exemptRoutes: 'GET:/health\n/posts', enabled: 'on' })
  t.same(limiter.getGlobal(), { policy: { key: '*', limits: ['3/minute'] }, enabled: true, exemptRoutes: ['GET:/health', '/posts'] })
  for (let i = 0; i < 3; i++) await app.inject('/search')
  t.equal((await app.inject('/search')).statusCode, 429, 'the global policy applies')
  t.equal((await app.inject('/health')).statusCode, 200, 'an exempt route does not count')
  await run({ action: 'rl-global-reset' })
  t.equal((await app.inject('/search')).statusCode, 200)
  await run({ action: 'rl-global-disable' })
  t.equal(limiter.getGlobal()!.enabled, false)
  await run({ action: 'rl-global-enable' })
  t.equal(limiter.getGlobal()!.enabled, true)
  await run({ action: 'rl-global-edit', limits: '50/minute', exemptRoutes: '' })
  t.same(limiter.getGlobal(), { policy: { key: '*', limits: ['50/minute'] }, enabled: false, exemptRoutes: [] }, 'an unticked box turns it off')
  await run({ action: 'rl-global-delete' })
  t.equal(limiter.getGlobal(), null)

  const audit = await engine.listAudit({ limit: 50 })
  t.same(audit.map(e => e.action).reverse(), [
    'rate_limit_set', 'rate_limit_reset', 'rate_limit_set', 'rate_limit_set', 'rate_limit_delete', 'rate_limit_delete',
    'rate_limit_set', 'rate_limit_reset', 'rate_limit_set', 'rate_limit_set', 'rate_limit_set', 'rate_limit_delete'
  ])
  t.ok(audit.every(e => e.actor === 'admin' && e.platform === 'dashboard'), 'by the signed-in user, from the dashboard')
  t.match(audit.find(e => e.action === 'rate_limit_reset' && e.key === 'GET:/search'), { reason: 'all clients' })

  const json = await postRateLimit(app, browser, { action: 'rl-add', key: 'GET:/search', limits: '5/second' }, { accept: 'application/json' })
  t.equal(json.statusCode, 200)
  t.same(json.json(), { ok: true, action: 'rl-add', key: 'GET:/search' }, 'the script gets JSON')
})

t.test('the dashboard refuses what the REST API refuses, with the same words', async t => {
  const { app, browser, limiter, login } = await setup(t)
  const headers = { 'x-waygate-token': await login() }
  const viaApi = (payload: object) => app.inject({ method: 'POST', url: '/waygate/api/rate-limits', headers, payload })
  const viaDashboard = (values: Record<string, string>) => postRateLimit(app, browser, values, { accept: 'application/json' })

  const cases: Array<[Record<string, string>, object]> = [
    [{ limits: 'many/minute' }, { limits: ['many/minute'] }],
    [{ limits: '5/minute', tiers: 'free: 1/minute' }, { limits: ['5/minute'], tiers: { free: '1/minute' } }],
    [{ limits: '5/minute', exemptIps: 'not-an-ip' }, { limits: ['5/minute'], exemptIps: ['not-an-ip'] }],
    [{}, {}]
  ]
  for (const [values, payload] of cases) {
    const api = await viaApi({ key: 'GET:/search', ...payload })
    const dashboard = await viaDashboard({ action: 'rl-add', key: 'GET:/search', ...values })
    t.equal(dashboard.statusCode, api.statusCode, JSON.stringify(values))
    t.same(dashboard.json(), api.json(), `same error: ${api.json().error.message}`)
  }
  // the API's body schema names choices first; the limiter refuses them for the form
  t.match((await viaDashboard({ action: 'rl-add', key: 'GET:/search', limits: '5/minute', algorithm: 'leaky_bucket' })).json(),
    { error: { code: 'WG_ERR_RATE_LIMIT_INVALID', message: /\/algorithm/ } })
  t.equal(limiter.policyFor('GET:/search'), null, 'nothing was set')

  // the form's own reading: a burst that is no number, a tier line without a name
  t.match((await viaDashboard({ action: 'rl-add', key: 'GET:/search', limits: '5/minute', burst: 'lots' })).json(),
    { error: { code: 'WG_ERR_REQUEST_INVALID', message: /burst: expected a whole number/ } })
  t.match((await viaDashboard({ action: 'rl-add', key: 'GET:/search', tiers: 'free 1/minute' })).json(),
    { error: { code: 'WG_ERR_REQUEST_INVALID', message: /tiers: line 1: expected "name: limits"/ } })
  t.match((await viaDashboard({ action: 'rl-add', key: 'GET:/search', tiers: 'free: 1/minute\nfree: 2/minute' })).json(),
    { error: { message: /"free" is given twice/ } })
  // keys resolve as the REST API resolves them
  t.equal((await viaDashboard({ action: 'rl-add', key: 'GET:/nope', limits: '1/minute' })).statusCode, 404)
  const ambiguous = await viaDashboard({ action: 'rl-add', key: '/search', limits: '1/minute' })
  t.equal(ambiguous.statusCode, 409)
  t.equal(ambiguous.json().error.code, (await viaApi({ key: '/search', limits: ['1/minute'] })).json().error.code)
  t.equal((await viaDashboard({ action: 'rl-reset', key: 'GET:/search' })).json().error.message, 'Invalid request: GET:/search has no rate limit')
  t.equal((await viaDashboard({ action: 'rl-delete', key: 'GET:/posts' })).statusCode, 404, 'no runtime policy to delete')
  t.equal((await viaDashboard({ action: 'rl-global-disable' })).statusCode, 404, 'no global policy')
  t.equal((await viaDashboard({ action: 'rl-global-delete' })).statusCode, 404)
  t.equal((await viaDashboard({ action: 'rl-nope', key: 'GET:/search' })).statusCode, 400)
  t.equal((await viaDashboard({ action: 'rl-add', limits: '1/minute' })).statusCode, 400, 'which route?')
  t.equal((await viaDashboard({ action: 'rl-global-set', limits: '1/minute', exemptRoutes: 'nonsense' })).statusCode, 400)
  t.equal(limiter.getGlobal(), null)

  // without the script: the form again, with what was typed and what went wrong
  const page = await postRateLimit(app, browser, { action: 'rl-add', key: 'GET:/search', limits: `3/minute, ${XSS}`, group: XSS })
  t.equal(page.statusCode, 400)
  t.match(page.body, /<section class="card confirm" data-confirm/)
  t.match(page.body, /<p class="form-error" role="alert" data-form-error>Invalid rate limit: rate limit of GET:\/search: \/limits\/1: [^<]*&lt;script&gt;/)
  t.match(page.body, `name="limits" type="text" value="3/minute, ${ESCAPED}"`)
  t.match(page.body, /<details class="more" open>/, 'the advanced settings unfold when one was given')
  t.match(page.body, `name="group" type="text" value="${ESCAPED}"`)
  t.notMatch(page.body, '<script>alert(1)')
})

t.test('confirmation forms: prefilled, for the right target, refused for unknown routes', async t => {
  const { get, limiter } = await setup(t)
  await limiter.setPolicy({ key: 'POST:/search', tiers: { free: '1/minute', pro: ['5/minute', '100/day'] }, exemptIps: ['10.0.0.1', '::1'], failClosed: true })
  const confirm = (query: string) => get(`/waygate/rate-limits/confirm?${query}`)

  const edit = await confirm(`action=rl-edit&key=${encodeURIComponent('POST:/search')}&return=${encodeURIComponent('/waygate/rate-limits?q=search')}`)
  t.equal(edit.statusCode, 200)
  t.match(edit.body, /<h1 id="confirm-title">Edit rate limit<\/h1>/)
  t.match(edit.body, /<p class="subject"><code>POST:\/search<\/code><\/p>/)
  t.match(edit.body, /Saving replaces this route&#39;s runtime policy/)
  t.match(edit.body, /<textarea id="field-tiers" name="tiers"[^>]*>free: 1\/minute\npro: 5\/minute, 100\/day<\/textarea>/)
  t.match(edit.body, /<textarea id="field-exemptIps" name="exemptIps"[^>]*>10\.0\.0\.1\n::1<\/textarea>/)
  t.match(edit.body, /name="failClosed" type="checkbox" value="on" checked/)
  t.match(edit.body, /<details class="more" open>/)
  t.match(edit.body, /name="return" value="\/waygate\/rate-limits\?q=search"/)
  t.match(edit.body, /<form method="post" action="\/waygate\/rate-limits\/action"/)
  t.match(edit.body, /<label for="field-limits">Limits<\/label>/, 'every field has a label')
  t.notMatch(edit.body, /value="custom"/, 'a key function is offered only where one is in use')

  const code = await confirm(`action=rl-edit&key=${encodeURIComponent('GET:/posts')}`)
  t.match(code.body, /overrides the limit declared in the route&#39;s code/)
  t.match(code.body, /name="limits" type="text" value="2\/minute"/)
  t.match(code.body, /<option value="fixed_window" selected>Fixed window<\/option>/)
  t.match(code.body, /<details class="more">/, 'nothing advanced: folded')
  t.match((await confirm(`action=rl-edit&key=${encodeURIComponent('GET:/plans')}`)).body, /<option value="custom" selected>Key function \(code\)<\/option>/)

  const add = await confirm(`action=rl-add&key=${encodeURIComponent('get:/search')}`)
  t.match(add.body, /<p class="subject"><code>GET:\/search<\/code><\/p>/, 'the key is normalised')
  t.match(add.body, /name="limits" type="text" value="" maxlength="600" placeholder="100\/minute, 1000\/day"/)

  const reset = await confirm(`action=rl-reset&key=${encodeURIComponent('GET:/posts')}&client=${encodeURIComponent(XSS)}`)
  t.match(reset.body, `name="client" type="text" value="${ESCAPED}"`, 'the client comes prefilled, escaped')
  t.notMatch((await confirm(`action=rl-edit&key=${encodeURIComponent('GET:/posts')}&client=1.2.3.4`)).body, /1\.2\.3\.4/, 'only reset forms take a client')

  const global = await confirm('action=rl-global-set&return=https%3A%2F%2Fevil.example')
  t.match(global.body, /<p class="subject"><strong>Global rate limit<\/strong><\/p>/)
  t.match(global.body, /name="enabled" type="checkbox" value="on" checked/)
  t.match(global.body, /<textarea id="field-exemptRoutes"/)
  t.match(global.body, /name="return" value="\/waygate\/rate-limits"/, 'return stays on the dashboard')

  t.equal((await confirm('action=rl-edit&key=GET%3A%2Fnope')).statusCode, 404)
  t.equal((await confirm('action=rl-edit')).statusCode, 400)
  t.equal((await confirm('action=rl-what&key=GET%3A%2Fposts')).statusCode, 400)
})

t.test('CSRF: a rate limit change needs this session\'s token', async t => {
  const { app, browser, limiter, engine } = await setup(t)
  const other = await signIn(app)
  const values = { action: 'rl-add', key: 'GET:/search', limits: '1/minute' }
  const refusals = [
    await app.inject({ method: 'POST', url: '/waygate/rate-limits/action', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form(values) }),
    await postRateLimit(app, { ...browser, csrf: other.csrf }, values),
    await postRateLimit(app, browser, values, { 'sec-fetch-site': 'cross-site' }),
    await postRateLimit(app, browser, values, { origin: 'https://evil.example' })
  ]
  for (const res of refusals) {
    t.equal(res.statusCode, 403)
    t.match(res.body, /WG_ERR_CSRF_INVALID/)
  }
  t.equal(limiter.policyFor('GET:/search'), null, 'nothing changed')
  t.equal((await engine.listAudit()).length, 0)
  t.equal((await postRateLimit(app, browser, values, { 'sec-fetch-site': 'same-origin' })).statusCode, 303)
})

t.test('the blocked-requests page: newest first, filters, the most refused, and a reset per client', async t => {
  const { app, browser, get, limiter } = await setup(t)
  for (const ip of ['10.0.0.1', '10.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.2', '10.0.0.2', '10.0.0.1']) {
    await app.inject({ url: '/posts', remoteAddress: ip })
  }
  await app.inject({ url: '/plans', headers: { 'x-user': 'ann' } })
  await app.inject({ url: '/plans', headers: { 'x-user': 'ann' } })
  t.equal(limiter.blocked().length, 4)

  const res = await get('/waygate/rate-limits/blocked')
  t.equal(res.statusCode, 200)
  const body = res.body
  t.match(body, /Blocked requests <span class="tab-count">4<\/span>/)
  t.match(body, /Showing the newest 4 of 4\./)
  const rows = [...body.matchAll(/<tr id="(blocked-[\w-]+)">([\s\S]*?)<\/tr>/g)]
  t.equal(rows.length, 4)
  t.match(rows[0]![2], /<code>GET:\/plans<\/code>[\s\S]*<code>ann<\/code>[\s\S]*<code class="chip">1\/minute<\/code>[\s\S]*<td data-label="Tier">free<\/td>/, 'newest first, with its tier')
  t.match(rows[1]![2], /<code>GET:\/posts<\/code>[\s\S]*<code>\/posts<\/code>[\s\S]*<code>10\.0\.0\.1<\/code>[\s\S]*2\/minute[\s\S]*\d+ s<\/td>/)
  t.match(rows[2]![2], /<code>10\.0\.0\.2<\/code>/)
  t.match(rows[3]![2], /<code>10\.0\.0\.1<\/code>/)
  t.match(rows[1]![2], /confirm\?action=rl-reset&amp;key=GET%3A%2Fposts&amp;client=10\.0\.0\.1&amp;return=%2Fwaygate%2Frate-limits%2Fblocked/, 'reset this client')
  t.notMatch(rows[0]![2], /client=/, 'a tiered counter is kept per plan: the row resets the route')
  t.match(body, /Most refused routes[\s\S]*<code>GET:\/posts<\/code><\/a> <span class="count">3<\/span>[\s\S]*<code>GET:\/plans<\/code><\/a> <span class="count">1<\/span>/)
  t.match(body, /Most refused clients<\/h2>\s*<ol class="rl-top">\s*<li><a [^>]*><code>10\.0\.0\.1<\/code><\/a> <span class="count">2<\/span>/)

  const again = (await get('/waygate/rate-limits/blocked')).body
  t.same([...again.matchAll(/<tr id="(blocked-[\w-]+)">/g)].map(m => m[1]), rows.map(m => m[1]), 'row ids are stable, so live updates patch in place')

  t.match((await get(`/waygate/rate-limits/blocked?key=${encodeURIComponent('GET:/posts')}`)).body, /Showing the newest 3 of 3 matching \(4 in the log\)\./)
  t.match((await get('/waygate/rate-limits/blocked?client=0.0.2')).body, /Showing the newest 1 of 1 matching/)
  t.match((await get('/waygate/rate-limits/blocked?client=nobody')).body, /No refused request matches these filters \(4 in the log\)\./)
  t.match((await get('/waygate/rate-limits/blocked?limit=7&key=')).body, /<option value="100" selected>/, 'nonsense falls back to the default')
  t.match((await get('/waygate/rate-limits')).body, /<a href="\/waygate\/rate-limits\/blocked\?key=GET%3A%2Fposts" class="blocked-count"[^>]*>3<\/a>/, 'the policies page counts them per route')

  // the row's reset: one client gets its allowance back, the other stays refused
  const resetForm = await get(rows[1]![2]!.match(/href="([^"]+)"/)![1]!.replace(/&amp;/g, '&'))
  t.match(resetForm.body, /name="client" type="text" value="10\.0\.0\.1"/)
  t.equal((await postRateLimit(app, browser, { action: 'rl-reset', key: 'GET:/posts', client: '10.0.0.1' })).statusCode, 303)
  t.equal((await app.inject({ url: '/posts', remoteAddress: '10.0.0.1' })).statusCode, 200)
  t.equal((await app.inject({ url: '/posts', remoteAddress: '10.0.0.2' })).statusCode, 429)

  // the global policy's refusals reset the global counters
  await limiter.setGlobal({ limits: ['1/minute'] }, { exemptRoutes: [] })
  await app.inject({ url: '/search', remoteAddress: '10.0.0.9' })
  await app.inject({ url: '/search', remoteAddress: '10.0.0.9' })
  const global = (await get('/waygate/rate-limits/blocked')).body
  t.match(global, /<span class="global-key">Global limit<\/span>[\s\S]*?action=rl-global-reset&amp;client=10\.0\.0\.9/)
  t.match(global, /<option value="\*">Global limit<\/option>/)

  const empty = await buildAdminApp(t)
  const emptyBrowser = await signIn(empty.app)
  const none = await empty.app.inject({ url: '/waygate/rate-limits/blocked', headers: { cookie: emptyBrowser.cookie } })
  t.match(none.body, /Nothing refused yet/)
  t.match(none.body, /<tr id="blocked-empty">/)
})

t.test('every user string is escaped: keys, groups, clients, paths, exempt routes', async t => {
  const { app, get, limiter } = await setup(t)
  await limiter.setGlobal({ limits: ['100/minute'], group: XSS }, { exemptRoutes: [`/${XSS}`] })
  await limiter.setPolicy({ key: `GET:/${XSS}`, limits: ['1/minute'], group: XSS })
  await app.inject({ url: '/keys', headers: { 'x-api-key': XSS } })
  await app.inject({ url: '/keys', headers: { 'x-api-key': XSS } })
  t.equal(limiter.blocked()[0]!.client, XSS)
  const urls = [
    '/waygate/rate-limits',
    `/waygate/rate-limits?q=${encodeURIComponent(XSS)}`,
    '/waygate/rate-limits/blocked',
    `/waygate/rate-limits/blocked?client=${encodeURIComponent(XSS)}&key=${encodeURIComponent(XSS)}`,
    `/waygate/rate-limits/confirm?action=rl-edit&key=${encodeURIComponent(`GET:/${XSS}`)}`,
    `/waygate/rate-limits/confirm?action=rl-reset&key=GET%3A%2Fkeys&client=${encodeURIComponent(XSS)}`,
    '/waygate/rate-limits/confirm?action=rl-global-edit'
  ]
  for (const url of urls) {
    const res = await get(url)
    t.equal(res.statusCode, 200, url)
    t.notMatch(res.body, '<script>alert(1)', url)
    t.match(res.body, ESCAPED, url)
    t.notMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/, `${url}: scripts only by src`)
    t.notMatch(res.body, /<[^>]*\s(style|on[a-z]+)=/i, `${url}: no inline styles or handlers`)
    t.match(res.headers['content-security-policy'], /script-src 'self'(;|$)/)
  }
})

/** Reads the change feed over a real socket until `until` matches what arrived. */
function readFeed (port: number, cookie: string, onHello: () => Promise<unknown>, until: RegExp) {
  return new Promise<string>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/waygate/api/events', headers: { cookie } }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        if (until.test(text)) {
          req.destroy()
          resolve(text)
        } else if (chunk.includes('event: hello')) {
          onHello().catch(reject)
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('live: policy changes reach the feed; the pages\' version changes with policies and with each refusal', async t => {
  const { app, browser, get, limiter } = await setup(t)
  const live = async () => {
    const res = await app.inject({ url: '/waygate/rate-limits/live', headers: { cookie: browser.cookie, accept: 'application/json' } })
    t.equal(res.statusCode, 200)
    return res.json().version as string
  }
  const first = await live()
  t.match((await get('/waygate/rate-limits')).body, `data-poll="/waygate/rate-limits/live" data-poll-version="${first}"`, 'the page carries the version it shows')
  t.match((await get('/waygate/rate-limits/blocked')).body, `data-poll-version="${first}"`)
  t.equal(await live(), first, 'steady while nothing happens')
  await app.inject('/posts')
  t.equal(await live(), first, 'an allowed request changes nothing shown')
  await app.inject('/posts')
  await app.inject('/posts')
  const blocked = await live()
  t.not(blocked, first, 'a refusal does')
  await limiter.setPolicy({ key: 'GET:/search', limits: ['1/second'] })
  t.not(await live(), blocked, 'so does a policy change')
  t.equal((await app.inject({ url: '/waygate/rate-limits/live', headers: { accept: 'application/json' } })).statusCode, 401, 'signed in only')

  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const feed = await readFeed(port, browser.cookie, () => postRateLimit(app, browser, { action: 'rl-add', key: 'POST:/search', limits: '3/minute' }),
    /event: record_changed\ndata: [^\n]*"namespace":"waygate:rate-limits"[^\n]*\n/)
  t.match(feed, /"id":"POST:\/search"[^\n]*"limits":\["3\/minute"\]/, 'the record the pages refresh on')
})

t.test('a change through one instance\'s dashboard shows on another instance\'s page', async t => {
  const backend = createMemoryBackend()
  const a = await buildAdminApp(t, { routes, engine: { backend } })
  const b = await buildAdminApp(t, { routes, engine: { backend } })
  const onA = await signIn(a.app)
  const onB = await signIn(b.app)
  t.equal((await postRateLimit(a.app, onA, { action: 'rl-add', key: 'GET:/search', limits: '1/minute' })).statusCode, 303)
  t.same(b.app.waygateRateLimits.policyFor('GET:/search')?.policy, { key: 'GET:/search', limits: ['1/minute'] }, 'B follows the record')
  const page = await b.app.inject({ url: '/waygate/rate-limits', headers: { cookie: onB.cookie } })
  t.match(row(page.body, 'GET:/search'), /<code class="chip">1\/minute<\/code>[\s\S]*source-runtime/)
  await b.app.inject('/search')
  t.equal((await b.app.inject('/search')).statusCode, 429, 'and enforces it')
  const blockedOnA = await a.app.inject({ url: '/waygate/rate-limits/blocked', headers: { cookie: onA.cookie } })
  t.match(blockedOnA.body, /Nothing refused yet/, 'the blocked log is per instance')
})

t.test('without the waygate plugin, the page says rate limiting is not available here', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygateAdmin, { engine: createEngine(), auth: USER, secretKey: SECRET })
  const browser = await signIn(app)
  const res = await app.inject({ url: '/waygate/rate-limits', headers: { cookie: browser.cookie } })
  t.equal(res.statusCode, 200)
  t.match(res.body, /does not run waygate's rate limiting/)
  t.equal((await app.inject({ url: '/waygate/rate-limits/blocked', headers: { cookie: browser.cookie } })).statusCode, 404)
})

t.test('a policy survives its trip through the form', async t => {
  const policies: Array<Omit<RateLimitPolicy, 'key'>> = [
    { limits: ['10/second', '5 per 10 minutes'], algorithm: 'token_bucket', burst: 3 },
    { tiers: { free: '1/minute', pro: ['5/minute', '100/day'], enterprise: 'unlimited' }, tierProperty: 'account.plan', keyBy: 'user', userProperty: 'auth.sub' },
    { limits: ['1/minute'], keyBy: 'api_key', apiKeyHeader: 'x-key', onMissingKey: 'block', exemptIps: ['10.0.0.0/8', '::1'], group: 'g', failClosed: true }
  ]
  for (const policy of policies) t.same(policyFromForm(policyToForm({ key: 'GET:/x', ...policy })), policy)
  t.same(policyFromForm({ limits: ' 1/second ;2/minute\n', burst: '0', failClosed: '' }), { limits: ['1/second', '2/minute'], burst: 0 })
  t.same(Object.keys(policyFromForm({ tiers: '__proto__: 1/minute' }).tiers!), ['__proto__'], 'a tier name is data, never a prototype')
})
