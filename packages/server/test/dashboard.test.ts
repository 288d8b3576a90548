// The Waygate Server's dashboard pages over inject: what a browser without the script gets, CSRF on
// every change, escaped output, the token shown once; the browser test (dashboard.e2e.test.ts)
// drives the same pages in Chromium against real processes.
import t from 'tap'
import Fastify from 'fastify'
import { createMemoryBackend, createEngine } from '@waygate/core'
import { waygateAdmin } from '@waygate/admin'
import { createWaygateServer } from '../src/index.js'
import { register, SECRET, type Teardown } from './helpers/server.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const form = (values: Record<string, string>): string => new URLSearchParams(values).toString()

async function server (t: Teardown) {
  const app = await createWaygateServer({ backend: createMemoryBackend(), auth: { username: 'admin', password: 'secret' }, secretKey: SECRET })
  t.teardown(() => app.close())
  await app.ready()
  const login = await app.inject({ method: 'POST', url: '/login', headers: FORM, payload: form({ username: 'admin', password: 'secret' }) })
  const cookie = String(login.headers['set-cookie']).split(';')[0]!
  const home = await app.inject({ url: '/', headers: { cookie } })
  const csrf = /<meta name="waygate-csrf" content="([^"]+)">/.exec(home.body)![1]!
  const sdk = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: 'secret', platform: 'sdk', service: 'payments' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  for (const service of ['payments', 'orders']) {
    const token = service === 'payments' ? sdk.json().token : (await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: 'secret', platform: 'sdk', service } })).json().token
    const registered = await register(url, service, token, ['GET:/api/items', 'GET:/health'])
    if (registered.status !== 200) throw new Error(`register ${service}: ${registered.status}`)
  }
  const get = (path: string) => app.inject({ url: path, headers: { cookie } })
  const post = (path: string, values: Record<string, string>, withCsrf = true) =>
    app.inject({ method: 'POST', url: path, headers: { ...FORM, cookie }, payload: form(withCsrf ? { _csrf: csrf, ...values } : values) })
  return { app, get, post }
}

t.test('the service selector scopes every page through ?service=, and keeps it in the links', async t => {
  const { get } = await server(t)
  for (const path of ['/', '/audit', '/rate-limits', '/rate-limits/blocked', '/services', '/tokens']) {
    const page = await get(`${path}?service=payments`)
    t.equal(page.statusCode, 200, path)
    t.match(page.body, /<option value="payments" selected>payments<\/option>/, `${path}: payments selected`)
    t.match(page.body, /href="\/audit\?service=payments"/, `${path}: the nav keeps the scope`)
  }
  const scoped = await get('/?service=payments')
  t.match(scoped.body, /id="wg-service-card"/, 'the service card, scoped')
  t.notMatch(scoped.body, 'data-key="orders:', 'no route of orders')
  t.notMatch(scoped.body, /chip-service" title="Service"/, 'scoped rows name no service')
  const all = await get('/')
  t.match(all.body, /chip-service" title="Service">orders</, 'unscoped rows name their service')
  t.notMatch(all.body, /id="wg-service-card"/)
  const rl = await get('/rate-limits?service=orders')
  t.match(rl.body, /id="wg-rl-service"/, 'the service rate limit card')
  // what cannot name a service is no scope, and is never echoed
  const odd = await get('/?service=%3Cscript%3Ealert(1)%3C%2Fscript%3E')
  t.equal(odd.statusCode, 200)
  t.notMatch(odd.body, /<script>alert/)
})

t.test('service maintenance and rate limit from the dashboard: CSRF-checked, stored and audited like the REST API', async t => {
  const { app, get, post } = await server(t)
  const refused = await post('/action', { action: 'service-on', key: 'payments', reason: 'x' }, false)
  t.equal(refused.statusCode, 403, 'no CSRF token: refused')
  t.equal((await app.inject({ url: '/api/services/payments/maintenance', headers: { authorization: `Bearer ${(await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: 'secret' } })).json().token}` } })).json().enabled, false)

  const done = await post('/action', { action: 'service-on', key: 'payments', reason: '<script>alert(1)</script> migration', exemptPaths: 'GET:/health', return: '/?service=payments' })
  t.equal(done.statusCode, 303)
  t.equal(done.headers.location, '/?service=payments')
  const page = await get('/?service=payments')
  t.match(page.body, /Maintenance of <span class="chip chip-service">payments<\/span> is <strong>on/)
  t.match(page.body, '&lt;script&gt;alert(1)&lt;/script&gt; migration', 'the reason, escaped')
  t.notMatch(page.body, '<script>alert(1)')
  t.match(page.body, '<code class="chip">GET:/health</code>')
  t.match((await get('/?service=orders')).body, /Maintenance of <span class="chip chip-service">orders<\/span> is <strong>off/, 'orders is not')

  const unknown = await post('/action', { action: 'service-on', key: 'nobody' })
  t.equal(unknown.statusCode, 404, 'an unknown service')
  const foreign = await post('/action', { action: 'service-on', key: 'payments', exemptPaths: 'orders:GET:/health' })
  t.equal(foreign.statusCode, 400, 'an exempt path of another service is refused')
  t.match(foreign.body, /belongs to service &quot;orders&quot;/)

  const limited = await post('/rate-limits/action', { action: 'rl-service-set', key: 'orders', limits: '5/minute', enabled: 'on' })
  t.equal(limited.statusCode, 303)
  t.match((await get('/rate-limits?service=orders')).body, /Rate limit of <span class="chip chip-service">orders<\/span> is <strong>on/)
  t.match((await get('/rate-limits?service=orders')).body, /<td data-label="Service limit">applies<\/td>/, 'routes without their own limit: the service limit applies')
  const off = await post('/rate-limits/action', { action: 'rl-service-disable', key: 'orders' })
  t.equal(off.statusCode, 303)
  t.match((await get('/rate-limits?service=orders')).body, /is <strong>off/)
  t.equal((await post('/rate-limits/action', { action: 'rl-service-delete', key: 'orders' })).statusCode, 303)
  t.match((await get('/rate-limits?service=orders')).body, /is <strong>not set/)

  const audit = await app.waygate.listAudit({ limit: 10 })
  t.match(audit.map(e => `${e.service} ${e.action} ${e.platform} ${e.actor}`), [
    'orders rate_limit_delete dashboard admin',
    'orders rate_limit_set dashboard admin',
    'orders rate_limit_set dashboard admin',
    'payments global_maintenance_on dashboard admin'
  ])
  t.match((await get('/audit?service=orders')).body, /Rate limit removed/, 'the audit page, scoped')
  t.notMatch((await get('/audit?service=orders')).body, /migration/, 'scoped: nothing of payments')

  t.equal((await post('/action', { action: 'service-off', key: 'payments' })).statusCode, 303)
  t.match((await get('/?service=payments')).body, /is <strong>off/)
})

t.test('tokens page: the token shown once, CSRF on create and revoke, names escaped, bad input explained', async t => {
  const { app, get, post } = await server(t)
  const noCsrf = await post('/tokens', { service: 'payments', name: 'x' }, false)
  t.equal(noCsrf.statusCode, 403)
  t.match((await get('/tokens')).body, /No service token yet/, 'nothing created without the CSRF token')

  const bad = await post('/tokens', { service: 'payments', expires: '10y' })
  t.equal(bad.statusCode, 400)
  t.match(bad.body, /at most five years/)
  t.match(bad.body, /value="payments"/, 'the form keeps what was typed')
  t.equal((await post('/tokens', { service: 'GET', expires: '1d' })).statusCode, 400, 'a method cannot name a service')

  const created = await post('/tokens', { service: 'payments', name: '<script>alert(1)</script> pods', expires: '30d' })
  t.equal(created.statusCode, 200)
  const token = /id="new-token-value" class="token-value" type="text" value="([^"]+)"/.exec(created.body)?.[1]
  t.ok(token !== undefined && token.length > 40, 'the token, once')
  t.match(created.body, /data-copy="new-token-value"/, 'with a copy button')
  t.match(created.headers['cache-control'], 'no-store')
  const list = await get('/tokens')
  t.notOk(list.body.includes(token!), 'never again')
  t.match(list.body, '&lt;script&gt;alert(1)&lt;/script&gt; pods')
  t.notMatch(list.body, '<script>alert(1)')

  // the token works as the service's credential, and only for it
  const snapshot = await app.inject({ url: '/api/sdk/services/payments/snapshot', headers: { authorization: `Bearer ${token}` } })
  t.equal(snapshot.statusCode, 200)
  t.equal((await app.inject({ url: '/api/sdk/services/orders/snapshot', headers: { authorization: `Bearer ${token}` } })).statusCode, 403)

  const id = /data-action="token-revoke" data-focus="token-[^"]+"/.exec(list.body) === null ? null : /confirm\?action=token-revoke&amp;key=([^&]+)&amp;/.exec(list.body)?.[1]
  t.ok(id, 'a revoke link')
  t.equal((await post('/action', { action: 'token-revoke', key: decodeURIComponent(id!) }, false)).statusCode, 403, 'revoke needs the CSRF token')
  t.equal((await post('/action', { action: 'token-revoke', key: decodeURIComponent(id!), return: '/tokens' })).statusCode, 303)
  t.equal((await app.inject({ url: '/api/sdk/services/payments/snapshot', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'revoked')
  t.match((await get('/tokens')).body, /badge-token-revoked/)
  t.equal((await post('/action', { action: 'token-revoke', key: 'no-such-id' })).statusCode, 404)
  const audit = await app.waygate.listAudit({ service: 'payments', limit: 5 })
  t.match(audit.map(e => `${e.action} ${e.platform}`), ['token_revoked dashboard', 'token_created dashboard'])
})

t.test('the services page and its poll', async t => {
  const { get } = await server(t)
  const page = await get('/services')
  t.match(page.body, /id="service-[^"]+"[^>]*>[\s\S]*payments/)
  t.match(page.body, /data-poll="\/services\/live"/)
  const live = await get('/services/live')
  t.match(live.json(), { version: String })
  t.equal((await get('/services/live')).json().version, live.json().version, 'the same while nothing changes')
})

t.test('an app\'s own admin (no fleet) keeps its dashboard as it was', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygateAdmin, { engine: createEngine({ backend: createMemoryBackend() }), auth: false })
  const home = await app.inject({ url: '/waygate/' })
  t.equal(home.statusCode, 200)
  t.notMatch(home.body, /scopebar/, 'no service selector')
  t.notMatch(home.body, /href="\/waygate\/services"/, 'no services page in the nav')
  t.equal((await app.inject({ url: '/waygate/services' })).statusCode, 404)
  t.equal((await app.inject({ url: '/waygate/tokens' })).statusCode, 404)
})
