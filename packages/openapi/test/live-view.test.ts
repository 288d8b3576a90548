import t from 'tap'
import { createOpenApiView, nextWindowChange } from '../src/index.js'
import { buildDocsApp, deepFreeze, fakeClock, routeState } from './helpers/app.js'

type Doc = Record<string, any>

t.test('serves the same document until the engine\'s state changes', async t => {
  const { app, engine } = await buildDocsApp(t, { openapi: false, ui: false })
  const view = createOpenApiView(engine)
  const source = deepFreeze(app.swagger() as Doc)
  const first = view.transform(source)
  t.equal(view.transform(source), first, 'cached')
  t.not(first, source, 'a new document, not the source')
  await engine.disable('GET:/users')
  const second = view.transform(source)
  t.not(second, first, 'rebuilt after a change')
  t.notOk(second.paths['/users'].get)
  t.equal(view.transform(source), second)
  await engine.enable('GET:/users')
  t.ok(view.transform(source).paths['/users'].get)
})

t.test('rebuilds when a maintenance window opens or a timed disablement ends, without a state change', async t => {
  const clock = fakeClock()
  const { app, engine } = await buildDocsApp(t, { openapi: false, ui: false, engine: { now: clock.now } })
  const view = createOpenApiView(engine)
  const source = app.swagger() as Doc
  const start = clock.now() + 60_000
  await engine.schedule('GET:/users', { start, end: start + 60_000, reason: 'Upgrade' })
  await engine.disable('POST:/users', { until: start + 30_000 })
  const before = view.transform(source)
  t.notOk(before.paths['/users'].get['x-waygate-status'])
  t.notOk(before.paths['/users'].post, 'disabled for now')
  const version = engine.version
  clock.set(start)
  const during = view.transform(source)
  t.equal(engine.version, version, 'no state change happened')
  t.equal(during.paths['/users'].get['x-waygate-status'], 'maintenance')
  clock.set(start + 30_000)
  t.ok(view.transform(source).paths['/users'].post, 'back when the disablement ends')
})

t.test('nextWindowChange finds the nearest future boundary', async t => {
  const now = Date.parse('2026-06-01T12:00:00.000Z')
  const iso = (ms: number) => new Date(ms).toISOString()
  const routes = [
    routeState('GET', '/a', { window: { start: iso(now + 5000), end: iso(now + 9000), reason: '' } }),
    routeState('GET', '/b', { window: { start: iso(now - 5000), end: iso(now + 7000), reason: '' } }),
    routeState('GET', '/c', { window: { start: iso(now - 5000), end: null, reason: '' } }),
    routeState('GET', '/d')
  ]
  t.equal(nextWindowChange(routes, now), now + 5000)
  t.equal(nextWindowChange(routes.slice(1), now), now + 7000)
  t.equal(nextWindowChange(routes.slice(2), now), Infinity)
})

t.test('the status lists operations in maintenance by document path, and a layout that follows the operations', async t => {
  const { app, engine } = await buildDocsApp(t, { openapi: false, ui: false })
  const view = createOpenApiView(engine)
  const source = app.swagger() as Doc
  const idle = view.status(source)
  t.same(idle.global, { enabled: false, reason: '', exemptPaths: [], since: null })
  t.same(idle.maintenance, [])
  t.equal(idle.env, 'dev')
  t.equal(view.status(source), idle, 'cached')

  await engine.setMaintenance('GET:/users/:id', { reason: 'Reindex' })
  const one = view.status(source)
  t.same(one.maintenance, [{ method: 'GET', path: '/users/{id}', reason: 'Reindex', global: false, retryAfter: null }])
  t.equal(one.layout, idle.layout, 'maintenance does not change the documented operations')
  t.equal(one.version, engine.version)

  await engine.disable('PUT:/users/:id')
  t.not(view.status(source).layout, idle.layout, 'a removed operation changes the layout')

  await engine.enableGlobalMaintenance({ reason: 'Upgrade', exemptPaths: ['/health'] })
  const global = view.status(source)
  t.equal(global.global.enabled, true)
  t.equal(global.global.reason, 'Upgrade')
  t.same(global.global.exemptPaths, ['/health'])
  t.ok(global.maintenance.some(m => m.global && m.method === 'POST' && m.path === '/v1/orders'))
})
