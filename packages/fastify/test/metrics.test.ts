import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Counter, Registry } from 'prom-client'
import { createEngine, createMemoryBackend, createRedisRateLimitStore, OUTCOME_INDEX } from '@waygate/core'
import { freePort } from '@waygate/core/testing'
import { waygate, type WaygatePluginOptions } from '@waygate/fastify'
import { fakeClock } from './helpers/app.js'

interface Sample { name: string, labels: Record<string, string>, value: number }

/** Reads the Prometheus text exposition format: `name{a="b",...} value` lines, comments skipped. */
function parse (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1')
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

const ok = async () => ({ ok: true })

async function start (t: Test, plugin: Omit<WaygatePluginOptions, 'engine'>, engineOptions: Parameters<typeof createEngine>[0] = {},
  routes?: (app: FastifyInstance) => void) {
  const engine = createEngine({ backend: createMemoryBackend(), env: 'production', ...engineOptions })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true, ...plugin })
  if (routes !== undefined) {
    routes(app)
  } else {
    app.get('/ok', ok)
    app.get('/old', { config: { waygate: { deprecated: { sunset: '2030-01-01T00:00:00Z' } } } }, ok)
    app.get('/maint', { config: { waygate: { maintenance: { reason: 'db' } } } }, ok)
    app.get('/off', { config: { waygate: { disabled: { reason: 'gone' } } } }, ok)
    app.get('/hidden', { config: { waygate: { envOnly: ['staging'] } } }, ok)
    app.get('/limited', { config: { waygate: { rateLimit: '2/minute' } } }, ok)
    app.get('/users/:id', ok)
  }
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const scrape = async (path = '/metrics', headers: Record<string, string> = {}) => {
    const res = await fetch(address + path, { headers })
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
  }
  const samples = async (path?: string) => {
    const res = await scrape(path)
    t.equal(res.status, 200, `GET ${path ?? '/metrics'} answers`)
    return parse(res.text)
  }
  const get = async (path: string) => (await fetch(address + path)).status
  return { app, engine, address, scrape, samples, get }
}

t.test('requests_total counts every request once per route pattern and outcome, scraped over HTTP', async t => {
  const s = await start(t, { metrics: true })
  const sent: Array<[string, number]> = [
    ['/ok', 200], ['/ok', 200], ['/ok', 200],
    ['/old', 200], ['/old', 200],
    ['/maint', 503],
    ['/off', 503],
    ['/hidden', 404],
    ['/limited', 200], ['/limited', 200], ['/limited', 429], ['/limited', 429],
    ['/users/1', 200], ['/users/2', 200], ['/users/3?x=1', 200]
  ]
  for (const [path, status] of sent) t.equal(await s.get(path), status, path)
  await s.engine.enableGlobalMaintenance({ reason: 'upgrade', actor: 't' })
  t.equal(await s.get('/ok'), 503)
  t.equal(await s.get('/nowhere'), 503, 'an unmatched path under global maintenance')

  const res = await s.scrape()
  t.match(res.type, /^text\/plain; version=0\.0\.4/)
  const m = parse(res.text)
  const count = (route: string, outcome: string) => value(m, 'waygate_requests_total', { route, outcome })
  t.equal(count('GET:/ok', 'passed'), 3)
  t.equal(count('GET:/ok', 'global_maintenance'), 1)
  t.equal(count('GET:/old', 'deprecated'), 2)
  t.equal(count('GET:/maint', 'maintenance'), 1)
  t.equal(count('GET:/off', 'disabled'), 1)
  t.equal(count('GET:/hidden', 'env_gated'), 1)
  t.equal(count('GET:/limited', 'passed'), 2)
  t.equal(count('GET:/limited', 'rate_limited'), 2)
  t.equal(count('GET:/users/:id', 'passed'), 3, 'the pattern, never the concrete URL')
  t.equal(count('*', 'global_maintenance'), 1, 'unmatched paths count under *')
  t.equal(count('GET:/ok', 'maintenance'), 0, 'every outcome of a route is there from the start')
  const total = m.filter(x => x.name === 'waygate_requests_total').reduce((a, x) => a + x.value, 0)
  t.equal(total, sent.length + 2, 'one count per request sent, no more')
  const routes = new Set(m.filter(x => x.name === 'waygate_requests_total').map(x => x.labels.route))
  t.notOk([...routes].some(r => r?.includes('/users/1')), 'no concrete URL as a label')
  t.equal(value(m, 'waygate_global_maintenance'), 1)
  t.equal(value(m, 'waygate_backend_up', { backend: 'memory' }), 1)
  t.equal(value(m, 'waygate_backend_sync_age_seconds', { backend: 'memory' }), 0)
  t.equal(value(m, 'waygate_rate_limit_store_up', { store: 'memory' }), 1)
  t.equal(value(m, 'waygate_rate_limit_degraded_total'), 0)

  // the traffic rings saw the same requests
  const report = s.app.waygateTraffic.get('GET:/limited')!.report('hour')
  t.same(report.totals.outcomes.rate_limited, 2)
  t.same(report.totals.requests, 4)
})

t.test('route_status follows state changes; status_since_seconds grows with the clock', async t => {
  const clock = fakeClock()
  const s = await start(t, { metrics: true }, { now: clock.now })
  let m = await s.samples()
  const status = (route: string, st: string) => value(m, 'waygate_route_status', { route, status: st })
  t.equal(status('GET:/ok', 'active'), 1)
  t.equal(status('GET:/ok', 'maintenance'), 0)
  t.equal(status('GET:/maint', 'maintenance'), 1)
  t.equal(status('GET:/hidden', 'env_gated'), 1)
  t.equal(value(m, 'waygate_global_maintenance'), 0)

  await s.engine.setMaintenance('GET:/ok', { reason: 'reindex', actor: 't' })
  clock.advance(2 * 3_600_000)
  m = await s.samples()
  t.equal(status('GET:/ok', 'active'), 0, 'the old status goes to 0')
  t.equal(status('GET:/ok', 'maintenance'), 1, 'the new one to 1')
  t.equal(value(m, 'waygate_route_status_since_seconds', { route: 'GET:/ok' }), 7200, 'in maintenance for 2 h: the alert rule fires')
  t.equal(m.filter(x => x.name === 'waygate_route_status' && x.labels.route === 'GET:/ok' && x.value === 1).length, 1, 'one status at a time')

  // a scheduled window counts from the moment it opens
  const opens = clock.now() + 60_000
  await s.engine.schedule('GET:/users/:id', { start: new Date(opens), end: new Date(opens + 3_600_000), reason: 'window', actor: 't' })
  clock.set(opens + 30_000)
  m = await s.samples()
  t.equal(status('GET:/users/:id', 'maintenance'), 1, 'inside its window a route is in maintenance')
  t.equal(value(m, 'waygate_route_status_since_seconds', { route: 'GET:/users/:id' }), 30, 'since the window opened')

  await s.engine.enable('GET:/ok', { actor: 't' })
  await s.engine.enableGlobalMaintenance({ reason: 'x', actor: 't' })
  m = await s.samples()
  t.equal(status('GET:/ok', 'active'), 1)
  t.equal(value(m, 'waygate_route_status_since_seconds', { route: 'GET:/ok' }), 0)
  t.equal(value(m, 'waygate_global_maintenance'), 1)
})

t.test('a registry of the app is honoured: waygate registers beside its metrics, with a prefix and a path of its choice', async t => {
  const registry = new Registry()
  const mine = new Counter({ name: 'app_orders_total', help: 'orders', registers: [registry] })
  mine.inc(5)
  const s = await start(t, { metrics: { registry, path: '/internal/metrics', prefix: 'edge_' } })
  await s.get('/ok')
  t.equal(await s.get('/metrics'), 404, 'not at the default path')
  const m = await s.samples('/internal/metrics')
  t.equal(value(m, 'app_orders_total'), 5, "the app's own metric is served too")
  t.equal(value(m, 'edge_requests_total', { route: 'GET:/ok', outcome: 'passed' }), 1)
  t.equal(value(m, 'waygate_requests_total'), undefined, 'the prefix replaces waygate_')
  t.match(await registry.metrics(), /edge_route_status\{route="GET:\/ok",service="",status="active"\} 1/)
  // the metrics endpoint itself is outside waygate: global maintenance leaves it up, and it is not counted
  await s.engine.enableGlobalMaintenance({ reason: 'x', actor: 't' })
  t.equal((await s.scrape('/internal/metrics')).status, 200)
  t.equal(s.engine.getState('GET:/internal/metrics'), null, 'not a managed route')
})

t.test('path: false serves nothing; the registry still holds the metrics', async t => {
  const registry = new Registry()
  const s = await start(t, { metrics: { registry, path: false } })
  await s.get('/ok')
  t.equal(await s.get('/metrics'), 404)
  t.match(await registry.metrics(), /waygate_requests_total\{route="GET:\/ok",outcome="passed"\} 1/)
})

t.test('without the metrics option nothing is served and prom-client is not loaded, but traffic is kept', async t => {
  const s = await start(t, {})
  await s.get('/ok')
  await s.get('/maint')
  t.equal(await s.get('/metrics'), 404)
  t.same(s.app.waygateTraffic.get('GET:/maint')!.totals('hour'), { requests: 1, blocked: 1 })
  t.equal(s.app.waygateTraffic.get('GET:/ok')!.report('hour').totals.outcomes.passed, 1)
})

t.test('bad metrics options are refused at registration, every problem listed', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  const err = await app.register(waygate, {
    engine: createEngine({ backend: createMemoryBackend() }),
    metrics: { path: 'metrics', prefix: '9x', auth: 'yes', registry: {}, extra: 1 } as never
  }).ready().then(() => null, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'WG_ERR_PLUGIN_OPTIONS_INVALID')
  for (const p of ['metrics.path', 'metrics.prefix', 'metrics.auth', 'metrics.registry', 'metrics.extra']) t.match(err?.message, p)
})

t.test('metrics.auth without the admin registered fails at ready()', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine: createEngine({ backend: createMemoryBackend() }), metrics: { auth: true } })
  await t.rejects(async () => { await app.ready() }, { code: 'WG_ERR_PLUGIN_OPTIONS_INVALID', message: /metrics\.auth/ })
})

t.test('a rate limit store that cannot answer: degraded answers counted, store_up 0, requests let through', async t => {
  // a Redis store pointed at a port nobody listens on: every check is answered degraded (fail-open)
  const port = await freePort()
  const store = createRedisRateLimitStore({ url: `redis://127.0.0.1:${port}`, timeoutMs: 20 })
  const s = await start(t, { metrics: true, rateLimit: { store } }, {}, app => {
    app.get('/limited', { config: { waygate: { rateLimit: '1/minute' } } }, ok)
  })
  for (let i = 0; i < 3; i++) t.equal(await s.get('/limited'), 200, 'fail-open')
  const m = await s.samples()
  t.equal(value(m, 'waygate_rate_limit_degraded_total'), 3)
  t.equal(value(m, 'waygate_rate_limit_store_up', { store: 'redis' }), 0)
  t.equal(value(m, 'waygate_requests_total', { route: 'GET:/limited', outcome: 'passed' }), 3)
  t.equal(OUTCOME_INDEX.passed, 0)
})

t.test('webhook deliveries are counted by outcome', async t => {
  const { createServer } = await import('node:http')
  const receiver = createServer((req, res) => {
    req.resume()
    res.statusCode = req.url === '/down' ? 500 : 200
    res.end()
  })
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => receiver.close(resolve)))
  const port = (receiver.address() as { port: number }).port
  const s = await start(t, { metrics: true }, {
    webhooks: [{ url: `http://127.0.0.1:${port}/up` }, { url: `http://127.0.0.1:${port}/down`, retries: 1, retryDelayMs: 10 }]
  })
  await s.engine.setMaintenance('GET:/ok', { reason: 'x', actor: 't' })
  await s.engine.enable('GET:/ok', { actor: 't' })
  let m: Sample[] = []
  for (let i = 0; i < 100; i++) {
    m = await s.samples()
    if (value(m, 'waygate_webhook_deliveries_total', { outcome: 'failed' }) === 2) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal(value(m, 'waygate_webhook_deliveries_total', { outcome: 'delivered' }), 2, 'two changes reached /up')
  t.equal(value(m, 'waygate_webhook_deliveries_total', { outcome: 'retried' }), 2, 'each /down delivery tried again once')
  t.equal(value(m, 'waygate_webhook_deliveries_total', { outcome: 'failed' }), 2, 'then given up')
  t.equal(value(m, 'waygate_webhook_deliveries_total', { outcome: 'dropped' }), 0)
})

t.test('the 410s of a deprecated route past its sunset count as sunset', async t => {
  const s = await start(t, { metrics: true }, {}, app => {
    app.get('/gone', { config: { waygate: { deprecated: { sunset: '2020-01-01T00:00:00Z', afterSunset: 'gone' } } } }, ok)
  })
  t.equal(await s.get('/gone'), 410)
  const m = await s.samples()
  t.equal(value(m, 'waygate_requests_total', { route: 'GET:/gone', outcome: 'sunset' }), 1)
})
