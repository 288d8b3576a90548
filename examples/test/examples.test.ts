import { join } from 'node:path'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMemoryBackend, type EngineEvent } from '@waygate/core'
import { build as buildBasic } from '../basic.js'
import { build as buildCustomBackend } from '../custom-backend.js'
import { build as buildCustomResponses, escapeHtml } from '../custom-responses.js'
import { build as buildGlobalMaintenance, OPS_ACTOR } from '../global-maintenance.js'
import { build as buildRouteGuards } from '../route-guards.js'
import { formatRouteTable } from '../lib/route-table.js'
import { isEntryPoint } from '../lib/serve.js'
import { build as buildScheduled } from '../scheduled-maintenance.js'

/** The part of a tap test the helpers need. */
interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** Readies an app built by an example and closes it when the test ends. */
async function ready (t: Teardown, app: FastifyInstance | Promise<FastifyInstance>): Promise<FastifyInstance> {
  const instance = await app
  t.teardown(() => instance.close())
  await instance.ready()
  return instance
}

/** Sets process variables for one test and restores them after it. */
function withVariables (t: Teardown, values: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(values).map(name => [name, process.env[name]]))
  const apply = (from: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(from)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
  apply(values)
  t.teardown(() => apply(saved))
}

t.test('basic', async t => {
  t.test('serves live API docs at /docs that follow runtime state', async t => {
    const app = await ready(t, buildBasic({ env: 'dev', backend: createMemoryBackend() }))
    const paths = async () => Object.keys((await app.inject('/docs/json')).json().paths).sort()
    t.same(await paths(), ['/debug', '/health', '/payments', '/v1/users', '/v2/users'], 'the disabled /old-endpoint is not documented')
    const doc = (await app.inject('/docs/json')).json()
    t.equal(doc.paths['/payments'].get['x-waygate-status'], 'maintenance')
    t.equal(doc.paths['/v1/users'].get.deprecated, true)
    t.notOk(Object.keys(doc.paths).some((p: string) => p.startsWith('/waygate')), 'the admin API is not in the app\'s docs')
    await app.waygate.disable('GET:/v2/users', { reason: 'gone' })
    t.notOk((await paths()).includes('/v2/users'), 'a route disabled at runtime leaves the docs')
    await app.waygate.enableGlobalMaintenance({ reason: 'deploy' })
    t.equal((await app.inject('/docs/json')).statusCode, 200, 'the docs stay up under global maintenance')
    t.equal((await app.inject('/docs/')).statusCode, 200)
  })

  t.test('answers each route as the example documents, in dev', async t => {
    const app = await ready(t, buildBasic({ env: 'dev', backend: createMemoryBackend() }))

    const health = await app.inject('/health')
    t.equal(health.statusCode, 200)
    t.same(health.json(), { status: 'ok', env: 'dev' })

    const payments = await app.inject('/payments')
    t.equal(payments.statusCode, 503)
    t.same(payments.json(), {
      error: {
        code: 'MAINTENANCE_MODE',
        message: 'This endpoint is temporarily down for maintenance',
        reason: 'Database migration, back by 04:00 UTC',
        path: '/payments'
      }
    })

    t.equal((await app.inject('/debug')).statusCode, 200, '/debug is reachable in dev')

    const old = await app.inject('/old-endpoint')
    t.equal(old.statusCode, 503)
    t.equal(old.json().error.code, 'ROUTE_DISABLED')
    t.equal(old.json().error.reason, 'Replaced by /v2/endpoint')

    const v1 = await app.inject('/v1/users')
    t.equal(v1.statusCode, 200)
    t.match(v1.headers.deprecation, /^@\d+$/, 'Deprecation: @<epoch seconds>')
    t.equal(v1.headers.sunset, 'Fri, 01 Jan 2027 00:00:00 GMT')
    t.equal(v1.headers.link, '</v2/users>; rel="successor-version"')
    t.same(v1.json().users[0], { id: 1, name: 'Alice' })

    const v2 = await app.inject('/v2/users')
    t.equal(v2.statusCode, 200)
    t.notOk(v2.headers.deprecation, 'the successor is not deprecated')
  })

  t.test('hides /debug behind the app\'s 404 outside dev', async t => {
    const app = await ready(t, buildBasic({ env: 'production', backend: createMemoryBackend() }))
    const debug = await app.inject('/debug')
    t.equal(debug.statusCode, 404)
    t.equal(debug.json().message, 'Route GET:/debug not found', 'the same answer as a route that does not exist')
    t.same((await app.inject('/health')).json(), { status: 'ok', env: 'production' })
  })

  t.test('a runtime change applies on the next request', async t => {
    const app = await ready(t, buildBasic({ env: 'dev', backend: createMemoryBackend() }))
    await app.waygate.enable('GET:/payments', { actor: 'alice' })
    t.equal((await app.inject('/payments')).statusCode, 200)
    await app.waygate.disable('GET:/v2/users', { reason: 'load test', actor: 'alice' })
    t.equal((await app.inject('/v2/users')).json().error.code, 'ROUTE_DISABLED')
    await t.rejects(app.waygate.disable('GET:/health'), { code: 'WG_ERR_ROUTE_FORCE_ACTIVE' })
  })

  t.test('APP_ENV, then WAYGATE_ENV, pick the environment', async t => {
    withVariables(t, { APP_ENV: 'staging', WAYGATE_ENV: 'production' })
    const fromAppEnv = await ready(t, buildBasic({ backend: createMemoryBackend() }))
    t.equal(fromAppEnv.waygate.env, 'staging')
    t.equal((await fromAppEnv.inject('/debug')).statusCode, 404)

    delete process.env.APP_ENV
    const fromWaygateEnv = await ready(t, buildBasic({ backend: createMemoryBackend() }))
    t.equal(fromWaygateEnv.waygate.env, 'production')
  })

  t.test('the startup table says what each route answers', async t => {
    const app = await ready(t, buildBasic({ env: 'production', backend: createMemoryBackend() }))
    const lines = formatRouteTable(app.waygate).split('\n')
    const row = (route: string) => lines.find(line => line.trim().startsWith(route)) ?? ''
    t.match(row('GET /health '), /active\s+200 always \(force-active\)$/)
    t.match(row('GET /payments '), /maintenance\s+503 MAINTENANCE_MODE$/)
    t.match(row('GET /debug '), /env_gated\s+404 \(only in dev; this is production\)$/)
    t.match(row('GET /old-endpoint '), /disabled\s+503 ROUTE_DISABLED$/)
    t.match(row('GET /v1/users '), /deprecated\s+200 \+ Deprecation, Sunset, Link headers$/)
    await app.waygate.enableGlobalMaintenance({ reason: 'x', exemptPaths: ['/v2/users'] })
    t.match(formatRouteTable(app.waygate), /GET \/v1\/users\s+deprecated\s+503 MAINTENANCE_MODE \(global maintenance\)/)
    t.match(formatRouteTable(app.waygate), /GET \/v2\/users\s+active\s+200$/m, 'exempt')
  })

  t.test('importing an example does not start a server', async t => {
    t.equal(isEntryPoint(new URL('../basic.ts', import.meta.url).href), false)
  })

  t.test('WAYGATE_BACKEND=file keeps runtime changes across restarts', async t => {
    const dir = t.testdir()
    withVariables(t, { APP_ENV: 'dev', WAYGATE_BACKEND: 'file', WAYGATE_FILE_PATH: join(dir, 'state.json') })
    const first = await buildBasic()
    await first.ready()
    t.equal(first.waygate.backend.kind, 'file')
    await first.waygate.enable('GET:/payments', { actor: 'ops' })
    await first.close()

    const second = await ready(t, buildBasic())
    t.equal((await second.inject('/payments')).statusCode, 200, 'the stored state wins over the declaration')
    t.equal(second.waygate.getState('GET:/payments')?.updatedBy, 'ops')
  })
})

t.test('global maintenance', async t => {
  t.test('the /ops endpoints turn it on and off', async t => {
    const app = await ready(t, buildGlobalMaintenance())
    t.equal((await app.inject('/payments')).statusCode, 200)

    const on = await app.inject({ method: 'POST', url: '/ops/maintenance/on', payload: { reason: 'Deploying v2', exemptPaths: ['/status'] } })
    t.equal(on.statusCode, 200)
    t.match(on.json(), { enabled: true, reason: 'Deploying v2', exemptPaths: ['/status'], includeForceActive: false })

    const payments = await app.inject('/payments')
    t.equal(payments.statusCode, 503)
    t.same(payments.json(), {
      error: { code: 'MAINTENANCE_MODE', message: 'The service is temporarily down for maintenance', reason: 'Deploying v2', path: '/payments' }
    })
    t.equal((await app.inject('/orders')).statusCode, 503)
    t.equal((await app.inject('/not-a-route')).statusCode, 503, 'unmatched paths are covered too')
    t.equal((await app.inject('/status')).statusCode, 200, 'exempt')
    t.same((await app.inject('/status')).json().operational, false)
    t.equal((await app.inject('/health')).statusCode, 200, 'force-active')
    t.equal((await app.inject('/ops/maintenance')).json().enabled, true, 'the /ops routes stay reachable')

    const off = await app.inject({ method: 'POST', url: '/ops/maintenance/off' })
    t.equal(off.json().enabled, false)
    t.equal((await app.inject('/payments')).statusCode, 200)

    const audit = (await app.inject('/ops/audit')).json() as Array<{ action: string, actor: string, platform: string }>
    t.same(audit.map(e => e.action), ['global_maintenance_off', 'global_maintenance_on'])
    t.ok(audit.every(e => e.actor === OPS_ACTOR && e.platform === 'api'), 'audited as the ops actor')
  })

  t.test('a bare POST uses the defaults; includeForceActive reaches /health', async t => {
    const app = await ready(t, buildGlobalMaintenance())
    const on = await app.inject({ method: 'POST', url: '/ops/maintenance/on' })
    t.equal(on.statusCode, 200)
    t.match(on.json(), { enabled: true, reason: 'Infrastructure upgrade in progress', exemptPaths: ['/status'] })
    t.equal((await app.inject('/health')).statusCode, 200)

    await app.inject({ method: 'POST', url: '/ops/maintenance/on', payload: { reason: 'Full stop', includeForceActive: true, exemptPaths: [] } })
    t.equal((await app.inject('/health')).statusCode, 503)
    t.equal((await app.inject('/status')).statusCode, 503, 'the exempt list was replaced')
  })

  t.test('bad input is a 400, not a 500', async t => {
    const app = await ready(t, buildGlobalMaintenance())
    const badKey = await app.inject({ method: 'POST', url: '/ops/maintenance/on', payload: { exemptPaths: ['status'] } })
    t.equal(badKey.statusCode, 400)
    t.equal(badKey.json().code, 'WG_ERR_ROUTE_KEY_INVALID')
    const badType = await app.inject({ method: 'POST', url: '/ops/maintenance/on', payload: { includeForceActive: 'yes' } })
    t.equal(badType.statusCode, 400)
    t.equal(app.waygate.getGlobal().enabled, false)
  })
})

t.test('scheduled maintenance', async t => {
  const start = Date.parse('2030-05-01T10:00:00.000Z')

  function fakeClock () {
    let now = start
    return { now: () => now, advance: (ms: number) => { now += ms } }
  }

  t.test('the declared window opens ~10 s after boot and closes 20 s later', async t => {
    const clock = fakeClock()
    const app = await ready(t, buildScheduled({ now: clock.now }))
    const events: EngineEvent[] = []
    app.waygate.subscribe(event => { events.push(event) })

    t.equal((await app.inject('/reports')).statusCode, 200, 'before the window')
    clock.advance(9_999)
    t.equal((await app.inject('/reports')).statusCode, 200, '1 ms before the start')
    clock.advance(1)
    const during = await app.inject('/reports')
    t.equal(during.statusCode, 503, 'the start is inclusive')
    t.equal(during.headers['retry-after'], '20')
    t.match(during.json().error, { code: 'MAINTENANCE_MODE', reason: 'Nightly report rebuild', retryAt: new Date(start + 30_000).toISOString() })

    await app.waygate.runDueTransitions()
    await app.waygate.runDueTransitions()
    t.same(events.filter(e => e.type === 'window_started').map(e => 'key' in e && e.key), ['GET:/reports'], 'announced once')

    clock.advance(19_999)
    t.equal((await app.inject('/reports')).statusCode, 503, '1 ms before the end')
    clock.advance(1)
    t.equal((await app.inject('/reports')).statusCode, 200, 'the end is exclusive')
    await app.waygate.runDueTransitions()
    t.same(events.filter(e => e.type === 'window_ended').map(e => 'key' in e && e.key), ['GET:/reports'])

    const audit = await app.waygate.listAudit({ key: 'GET:/reports' })
    t.same(audit.map(e => e.action), ['window_end', 'window_start'], 'one audit entry per transition')
  })

  t.test('POST /ops/schedule schedules a window through the engine', async t => {
    const clock = fakeClock()
    const app = await ready(t, buildScheduled({ now: clock.now }))
    const res = await app.inject({ method: 'POST', url: '/ops/schedule', payload: { key: 'GET:/orders', startInSeconds: 5, durationSeconds: 10, reason: 'Upgrade' } })
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      scheduled: true,
      key: 'GET:/orders',
      window: { start: new Date(start + 5_000).toISOString(), end: new Date(start + 15_000).toISOString(), reason: 'Upgrade' }
    })
    t.equal((await app.inject('/orders')).statusCode, 200)
    clock.advance(5_000)
    const during = await app.inject('/orders')
    t.equal(during.statusCode, 503)
    t.equal(during.headers['retry-after'], '10')
    clock.advance(10_000)
    t.equal((await app.inject('/orders')).statusCode, 200)

    const [entry] = await app.waygate.listAudit({ key: 'GET:/orders', action: 'schedule' })
    t.match(entry, { actor: 'ops-example', platform: 'api', reason: 'Upgrade' })
  })

  t.test('a bare POST uses the defaults, and a window can be cancelled', async t => {
    const clock = fakeClock()
    const app = await ready(t, buildScheduled({ now: clock.now }))
    t.equal((await app.inject({ method: 'POST', url: '/ops/schedule' })).json().window.start, new Date(start + 5_000).toISOString())
    const cancel = await app.inject({ method: 'POST', url: '/ops/schedule/cancel', payload: { key: 'GET:/orders' } })
    t.same(cancel.json(), { cancelled: ['GET:/orders'] })
    clock.advance(6_000)
    t.equal((await app.inject('/orders')).statusCode, 200)
  })

  t.test('scheduling an unknown route is a 404, a bad key a 400', async t => {
    const app = await ready(t, buildScheduled())
    const missing = await app.inject({ method: 'POST', url: '/ops/schedule', payload: { key: 'GET:/nope' } })
    t.equal(missing.statusCode, 404)
    t.equal(missing.json().code, 'WG_ERR_ROUTE_NOT_FOUND')
    const bad = await app.inject({ method: 'POST', url: '/ops/schedule', payload: { key: 'orders' } })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'WG_ERR_ROUTE_KEY_INVALID')
    const forced = await app.inject({ method: 'POST', url: '/ops/schedule', payload: { key: 'GET:/health' } })
    t.equal(forced.statusCode, 409)
    t.equal(forced.json().code, 'WG_ERR_ROUTE_FORCE_ACTIVE')
  })
})

t.test('custom responses', async t => {
  t.test('the route\'s own factories: HTML page, redirect, plain text', async t => {
    const app = await ready(t, buildCustomResponses())

    const payments = await app.inject('/payments')
    t.equal(payments.statusCode, 503)
    t.match(payments.headers['content-type'], /^text\/html/)
    t.match(payments.body, /<p>Database migration, back by 04:00 UTC<\/p>/)

    const orders = await app.inject('/orders')
    t.equal(orders.statusCode, 302)
    t.equal(orders.headers.location, '/status')
    t.equal((await app.inject('/status')).statusCode, 200, 'the redirect target answers')

    const legacy = await app.inject('/legacy')
    t.equal(legacy.statusCode, 503)
    t.match(legacy.headers['content-type'], /^text\/plain/)
    t.equal(legacy.body, 'Gone. Retired: use /v2/orders\n')
  })

  t.test('a reason is escaped before it goes into HTML', async t => {
    const app = await ready(t, buildCustomResponses())
    const reason = '<script>alert("x")</script> & more'
    await app.waygate.setMaintenance('GET:/payments', { reason })
    await app.waygate.setMaintenance('GET:/inventory', { reason })
    for (const url of ['/payments', '/inventory']) {
      const res = await app.inject(url)
      t.equal(res.statusCode, 503)
      t.notMatch(res.body, /<script>/, `${url}: no live markup from the reason`)
      t.match(res.body, '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more', `${url}: the reason, escaped`)
    }
  })

  t.test('routes without their own factory fall back to the plugin-wide ones', async t => {
    const app = await ready(t, buildCustomResponses())
    const inventory = await app.inject('/inventory')
    t.equal(inventory.statusCode, 503)
    t.match(inventory.headers['content-type'], /^text\/html/)
    t.match(inventory.body, /Stock sync in progress/)

    const exports = await app.inject('/exports')
    t.equal(exports.statusCode, 503)
    t.equal(exports.headers['cache-control'], 'no-store')
    t.same(exports.json(), { ok: false, problem: 'gone', detail: 'Exports moved to /reports/export', see: '/status' })

    await app.waygate.enableGlobalMaintenance({ reason: 'Site upgrade' })
    const unmatched = await app.inject('/no-such-page')
    t.equal(unmatched.statusCode, 503)
    t.match(unmatched.body, /Site upgrade/, 'global maintenance uses the plugin-wide maintenance page too')
  })

  t.test('a factory that throws falls back to the built-in JSON, never a 500', async t => {
    const app = await ready(t, buildCustomResponses())
    const res = await app.inject('/gift-cards')
    t.equal(res.statusCode, 503)
    t.same(res.json(), {
      error: { code: 'MAINTENANCE_MODE', message: 'This endpoint is temporarily down for maintenance', reason: 'Gift card provider outage', path: '/gift-cards' }
    })
  })

  t.test('the HTML page shows when maintenance ends, with Retry-After', async t => {
    const app = await ready(t, buildCustomResponses())
    const end = new Date(Date.now() + 3_600_000)
    await app.waygate.setMaintenance('GET:/payments', { reason: 'Short upgrade', end })
    const res = await app.inject('/payments')
    t.equal(res.statusCode, 503)
    t.ok(Number(res.headers['retry-after']) > 3500, 'Retry-After in seconds')
    t.match(res.body, `We expect to be back at <time datetime="${end.toISOString()}">`)
  })

  t.test('a route answers normally once enabled', async t => {
    const app = await ready(t, buildCustomResponses())
    await app.waygate.enable('GET:/payments')
    const res = await app.inject('/payments')
    t.equal(res.statusCode, 200)
    t.same(res.json(), { payments: [] })
  })

  t.test('escapeHtml', async t => {
    t.equal(escapeHtml('<a href="x" title=\'y\'>&</a>'), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
    t.equal(escapeHtml('plain text'), 'plain text')
  })
})

t.test('route guards', async t => {
  t.test('each guard enforces its route without the plugin', async t => {
    const app = await ready(t, buildRouteGuards({ env: 'dev', backend: createMemoryBackend() }))
    t.notOk(app.hasDecorator('waygate'), 'no plugin registered')

    const orders = await app.inject('/orders')
    t.equal(orders.statusCode, 503)
    t.equal(orders.json().error.code, 'MAINTENANCE_MODE')
    t.equal((await app.inject({ method: 'HEAD', url: '/orders' })).statusCode, 503, 'HEAD follows GET')

    const report = await app.inject('/report')
    t.equal(report.statusCode, 503)
    t.equal(report.json().error.code, 'ROUTE_DISABLED')

    t.equal((await app.inject('/debug')).statusCode, 200)

    const item = await app.inject('/v1/items/7')
    t.equal(item.statusCode, 200)
    t.same(item.json(), { id: '7' })
    t.match(item.headers.deprecation, /^@\d+$/)
    t.equal(item.headers.sunset, 'Fri, 01 Jan 2027 00:00:00 GMT')
    t.equal(item.headers.link, '</v2/items>; rel="successor-version"')

    t.equal((await app.inject('/users')).statusCode, 200)
    t.equal((await app.inject('/health')).statusCode, 200)
  })

  t.test('envOnly answers 404 outside its environments', async t => {
    const app = await ready(t, buildRouteGuards({ env: 'production', backend: createMemoryBackend() }))
    t.equal((await app.inject('/debug')).statusCode, 404)
  })

  t.test('operators can change a guarded route once it has been requested', async t => {
    const app = await ready(t, buildRouteGuards({ env: 'dev', backend: createMemoryBackend() }))
    const early = await app.inject({ method: 'POST', url: '/ops/enable', payload: { key: 'GET:/orders' } })
    t.equal(early.statusCode, 404, 'unknown before its first request: a guard learns its pattern then')
    t.equal(early.json().code, 'WG_ERR_ROUTE_NOT_FOUND')

    t.equal((await app.inject('/orders')).statusCode, 503)
    await new Promise(resolve => setImmediate(resolve))
    const enable = await app.inject({ method: 'POST', url: '/ops/enable', payload: { key: 'GET:/orders' } })
    t.equal(enable.statusCode, 200)
    t.same(enable.json(), [{ key: 'GET:/orders', status: 'active' }])
    t.equal((await app.inject('/orders')).statusCode, 200)
    t.match((await app.inject('/ops/routes')).json(), [{ key: 'GET:/orders', status: 'active' }])
  })
})

t.test('custom backend (SQLite)', async t => {
  t.test('serves the documented answers and keeps changes across restarts', async t => {
    const path = join(t.testdir(), 'waygate.sqlite')
    const first = await buildCustomBackend({ path })
    await first.ready()
    t.same((await first.inject('/health')).json(), { status: 'ok', backend: 'sqlite' })
    t.equal((await first.inject('/payments')).json().error.code, 'MAINTENANCE_MODE')
    t.equal((await first.inject('/legacy')).json().error.code, 'ROUTE_DISABLED')
    t.equal((await first.inject('/orders')).statusCode, 200)

    const disable = await first.inject({ method: 'POST', url: '/ops/disable', payload: { key: 'GET:/orders', reason: 'hotfix' } })
    t.equal(disable.statusCode, 200)
    t.match(disable.json(), [{ key: 'GET:/orders', status: 'disabled', reason: 'hotfix', updatedBy: 'ops-example' }])
    await first.inject({ method: 'POST', url: '/ops/enable', payload: { key: 'GET:/payments' } })
    await first.close()

    const second = await ready(t, buildCustomBackend({ path }))
    t.equal((await second.inject('/orders')).json().error.reason, 'hotfix', 'still disabled after the restart')
    t.equal((await second.inject('/payments')).statusCode, 200, 'still enabled after the restart')
    const audit = (await second.inject('/ops/audit')).json() as Array<{ action: string, key: string }>
    t.same(audit.map(e => `${e.action} ${e.key}`), ['enable GET:/payments', 'disable GET:/orders'])
  })

  t.test('an unknown action or a missing key is a 400', async t => {
    const app = await ready(t, buildCustomBackend({ backend: createMemoryBackend() }))
    t.equal((await app.inject({ method: 'POST', url: '/ops/explode', payload: { key: 'GET:/orders' } })).statusCode, 400)
    t.equal((await app.inject({ method: 'POST', url: '/ops/disable', payload: {} })).statusCode, 400)
  })
})
