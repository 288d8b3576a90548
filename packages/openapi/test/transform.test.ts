import t from 'tap'
import { applyWaygateToSpec, snapshotOf, type WaygateSnapshot } from '../src/index.js'
import { apiRoutes, buildDocsApp, deepFreeze, fakeClock, operations, routeState, type DocsAppOptions } from './helpers/app.js'

type Doc = Record<string, any>

/** A real document from @fastify/swagger, and the engine of the same app. */
async function documented (t: { teardown: (fn: () => unknown) => void }, options: DocsAppOptions = {}) {
  const { app, engine } = await buildDocsApp(t, { openapi: false, ui: false, ...options })
  const source = deepFreeze(app.swagger() as Doc)
  const apply = (opts?: Parameters<typeof applyWaygateToSpec>[2]): Doc =>
    applyWaygateToSpec(source, deepFreeze(snapshotOf(engine)), opts)
  return { app, engine, source, apply }
}

const ALL_OPERATIONS = [
  'DELETE /users/{id}',
  'GET /files/{name}.png',
  'GET /health',
  'GET /internal',
  'GET /static/{*}',
  'GET /users',
  'GET /users/{id}',
  'GET /v1/orders/{orderId}',
  'POST /users',
  'POST /v1/orders',
  'PUT /users/{id}'
]

t.test('with every route active the document keeps every operation but the admin API', async t => {
  const { source, apply } = await documented(t)
  t.ok(source.paths['/waygate/api/routes'], '@fastify/swagger documents the admin stand-ins')
  const doc = apply()
  t.same(operations(doc), ALL_OPERATIONS)
  t.equal(doc.paths['/users/{id}'], source.paths['/users/{id}'], 'untouched path items are shared, not copied')
  t.notOk(doc.info['x-waygate-global-maintenance'])
})

t.test('removes disabled operations, keeps the other methods of the path, drops emptied path items', async t => {
  const { engine, apply } = await documented(t)
  await engine.disable('GET:/users/:id', { reason: 'gone' })
  await engine.disable('/v1/orders/:orderId')
  await engine.disable('GET:/files/:name(^\\d+).png')
  const doc = apply()
  t.notOk(doc.paths['/users/{id}'].get, 'disabled GET removed')
  t.ok(doc.paths['/users/{id}'].put, 'PUT of the same path stays')
  t.ok(doc.paths['/users/{id}'].delete, 'DELETE of the same path stays')
  t.notOk('/v1/orders/{orderId}' in doc.paths, 'a prefixed route, its path item gone with its only operation')
  t.notOk('/files/{name}.png' in doc.paths, 'a regex parameter route')
  t.ok(doc.paths['/v1/orders'].post)
})

t.test('removes env-gated operations outside their environments only', async t => {
  const prod = await documented(t, { engine: { env: 'production' } })
  await prod.engine.setEnvOnly('GET:/static/*', ['dev', 'staging'])
  t.notOk('/static/{*}' in prod.apply().paths, 'hidden in production')

  const staging = await documented(t, { engine: { env: 'staging' } })
  await staging.engine.setEnvOnly('GET:/static/*', ['dev', 'staging'])
  const doc = staging.apply()
  t.ok(doc.paths['/static/{*}'].get, 'shown in staging')
  t.notOk(doc.paths['/static/{*}'].get['x-waygate-status'], 'and not annotated')
})

t.test('marks deprecated operations with sunset and successor', async t => {
  const { engine, apply } = await documented(t)
  await engine.deprecate('GET:/users', { sunset: '2027-01-01T00:00:00Z', successor: '/v2/users', reason: 'Use v2' })
  const op = apply().paths['/users'].get
  t.equal(op.deprecated, true)
  t.equal(op['x-waygate-status'], 'deprecated')
  t.equal(op['x-waygate-sunset'], '2027-01-01T00:00:00.000Z')
  t.equal(op['x-waygate-successor'], '/v2/users')
  t.equal(op['x-waygate-reason'], 'Use v2')
  t.match(op.description, /^> ⚠️ \*\*Deprecated:\*\* Use v2\. Sunset: 2027-01-01T00:00:00\.000Z\. Use \/v2/)
  t.equal(op.summary, 'List users', 'the summary is left alone')
})

t.test('annotates operations in maintenance, once, with Retry-After when the window end is known', async t => {
  const clock = fakeClock()
  const { engine, apply, source } = await documented(t, { engine: { now: clock.now } })
  await engine.setMaintenance('GET:/users/:id', { reason: 'DB migration' })
  const end = clock.now() + 3_600_000
  await engine.setMaintenance('POST:/users', { reason: 'Index rebuild', end })
  const doc = apply()
  const get = doc.paths['/users/{id}'].get
  t.equal(get['x-waygate-status'], 'maintenance')
  t.equal(get['x-waygate-reason'], 'DB migration')
  t.notOk('x-waygate-retry-after' in get, 'no Retry-After when the end is unknown')
  t.equal(get.summary, '[Maintenance] Get a user')
  t.equal(get.description, '> 🔧 **Maintenance:** DB migration. Requests answer 503 until it ends.\n\nOne user, by id.')
  t.equal(get.parameters, source.paths['/users/{id}'].get.parameters, 'the rest of the operation is shared')
  const post = doc.paths['/users'].post
  t.equal(post['x-waygate-retry-after'], new Date(end).toISOString())
  t.match(post.description, `until ${new Date(end).toISOString()}.`)

  const twice = applyWaygateToSpec(deepFreeze(doc), snapshotOf(engine))
  t.same(twice, doc, 'applying to its own output changes nothing')
  t.equal(twice.paths['/users/{id}'].get.description.split('🔧').length, 2, 'one notice')

  await engine.enable('GET:/users/:id')
  const after = applyWaygateToSpec(deepFreeze(doc), snapshotOf(engine)).paths['/users/{id}'].get
  t.same(after, source.paths['/users/{id}'].get, 'an earlier pass is undone when the state changes')
})

t.test('a scheduled window shows as maintenance only while it runs', async t => {
  const clock = fakeClock()
  const { engine, apply } = await documented(t, { engine: { now: clock.now } })
  const start = clock.now() + 60_000
  await engine.schedule('PUT:/users/:id', { start, end: start + 60_000, reason: 'Upgrade' })
  t.notOk(apply().paths['/users/{id}'].put['x-waygate-status'], 'before the window')
  clock.set(start)
  t.equal(apply().paths['/users/{id}'].put['x-waygate-reason'], 'Upgrade', 'during the window')
  clock.set(start + 60_000)
  t.notOk(apply().paths['/users/{id}'].put['x-waygate-status'], 'after the window')
})

t.test('global maintenance annotates every managed, non-exempt operation and adds an info extension', async t => {
  const { engine, apply, source } = await documented(t)
  await engine.enableGlobalMaintenance({ reason: 'Upgrade <b>now</b>', exemptPaths: ['/users', 'DELETE:/users/:id'] })
  const doc = apply()
  t.same(doc.info['x-waygate-global-maintenance'], {
    enabled: true,
    reason: 'Upgrade <b>now</b>',
    exemptPaths: ['/users', 'DELETE:/users/:id'],
    since: engine.getGlobal().since
  })
  t.equal(doc.info.title, 'Test API')
  const put = doc.paths['/users/{id}'].put
  t.equal(put['x-waygate-status'], 'maintenance')
  t.equal(put['x-waygate-global'], true)
  t.equal(put['x-waygate-reason'], 'Upgrade <b>now</b>')
  t.equal(put.description, '> 🔧 **Site-wide maintenance:** Upgrade &lt;b&gt;now&lt;/b&gt;. Requests answer 503 until it ends.', 'no HTML gets through')
  t.equal(doc.paths['/v1/orders'].post['x-waygate-status'], 'maintenance')
  t.equal(doc.paths['/users'].get, source.paths['/users'].get, 'bare exempt key: every method')
  t.equal(doc.paths['/users'].post, source.paths['/users'].post)
  t.equal(doc.paths['/users/{id}'].delete, source.paths['/users/{id}'].delete, 'METHOD: exempt key')
  t.equal(doc.paths['/health'].get, source.paths['/health'].get, 'force-active routes keep answering')
  t.equal(doc.paths['/internal'].get, source.paths['/internal'].get, 'unmanaged routes keep answering')

  await engine.enableGlobalMaintenance({ reason: 'All of it', includeForceActive: true })
  t.equal(apply().paths['/health'].get['x-waygate-status'], 'maintenance', 'unless includeForceActive')

  await engine.disableGlobalMaintenance()
  const off = applyWaygateToSpec(deepFreeze(doc), snapshotOf(engine))
  t.notOk('x-waygate-global-maintenance' in off.info, 'the extension goes when global maintenance ends')
  t.same(off, apply(), 'applied to the old output, the same as applied to the source')
  t.same(operations(off), ALL_OPERATIONS)
})

t.test('global maintenance wins over a route\'s own maintenance, disabled routes stay hidden', async t => {
  const { engine, apply } = await documented(t)
  await engine.setMaintenance('GET:/users', { reason: 'own reason' })
  await engine.deprecate('PUT:/users/:id', { successor: '/v2/users/:id' })
  await engine.disable('DELETE:/users/:id')
  await engine.enableGlobalMaintenance({ reason: 'global reason' })
  const doc = apply()
  t.equal(doc.paths['/users'].get['x-waygate-reason'], 'global reason')
  t.equal(doc.paths['/users'].get.description.split('🔧').length, 2, 'one maintenance notice')
  const put = doc.paths['/users/{id}'].put
  t.equal(put.deprecated, true, 'still deprecated')
  t.equal(put['x-waygate-status'], 'maintenance')
  t.equal(put['x-waygate-successor'], '/v2/users/:id')
  t.match(put.description, /^> 🔧 .*\n\n> ⚠️ \*\*Deprecated\.\*\* Use \/v2\/users\/:id instead\.$/)
  t.notOk(doc.paths['/users/{id}'].delete)
})

t.test('a bare key applies to every method of its pattern', async t => {
  const { engine, source } = await documented(t)
  const base = snapshotOf(engine)
  const bare = routeState(null, '/users/:id', { status: 'disabled' })
  // a snapshot with only the bare key for this pattern
  const snapshot: WaygateSnapshot = deepFreeze({ ...base, routes: [...base.routes.filter(r => r.path !== '/users/:id'), bare] })
  const doc = applyWaygateToSpec(source, snapshot)
  t.notOk('/users/{id}' in doc.paths)
  t.ok(doc.paths['/users'].get)
})

t.test('HEAD operations follow their GET route', async t => {
  const { engine, apply } = await documented(t, { swaggerPlugin: { exposeHeadRoutes: true } })
  t.ok(apply().paths['/users'].head, 'HEAD is documented')
  await engine.setMaintenance('GET:/users', { reason: 'r' })
  t.equal(apply().paths['/users'].head['x-waygate-status'], 'maintenance')
  await engine.disable('GET:/users')
  t.notOk(apply().paths['/users'].head)
})

t.test('follows the server base path @fastify/swagger strips', async t => {
  const { engine, apply, source } = await documented(t, {
    document: { servers: [{ url: 'https://api.example.com/api' }] },
    routes: app => {
      app.register(async api => {
        api.get('/items/:id', async () => ({}))
        api.delete('/items/:id', async () => ({}))
      }, { prefix: '/api' })
    }
  })
  t.ok(source.paths['/items/{id}'], 'documented without the base path')
  await engine.disable('DELETE:/api/items/:id')
  await engine.setMaintenance('GET:/api/items/:id', { reason: 'r' })
  const doc = apply()
  t.notOk(doc.paths['/items/{id}'].delete)
  t.equal(doc.paths['/items/{id}'].get['x-waygate-status'], 'maintenance')
})

t.test('Swagger 2 documents, with a basePath', async t => {
  const { engine, apply, source } = await documented(t, {
    swagger2: true,
    document: { basePath: '/v1' },
    routes: app => {
      apiRoutes(app)
    }
  })
  t.equal(source.swagger, '2.0')
  t.ok(source.paths['/orders/{orderId}'], 'stripped of its basePath')
  await engine.disable('GET:/users/:id')
  await engine.deprecate('POST:/v1/orders', { sunset: '2027-01-01T00:00:00Z' })
  await engine.enableGlobalMaintenance({ reason: 'r', exemptPaths: ['/users'] })
  const doc = apply()
  t.equal(doc.swagger, '2.0')
  t.notOk(doc.paths['/users/{id}'].get)
  t.equal(doc.paths['/orders'].post.deprecated, true)
  t.equal(doc.paths['/orders'].post['x-waygate-status'], 'maintenance')
  t.equal(doc.paths['/orders/{orderId}'].get['x-waygate-global'], true)
  t.equal(doc.paths['/users'].get, source.paths['/users'].get)
  t.equal(doc.info['x-waygate-global-maintenance'].reason, 'r')
  t.notOk('/waygate/api/routes' in doc.paths)
})

t.test('excludePrefixes removes the admin API by default, and what you name', async t => {
  const { apply } = await documented(t)
  t.notOk(Object.keys(apply().paths).some(p => p.startsWith('/waygate')), 'default: /waygate')
  const custom = apply({ excludePrefixes: ['/v1', '/static/'] })
  t.ok(custom.paths['/waygate/api/routes'], 'replaced, not added to')
  t.notOk(custom.paths['/v1/orders'])
  t.notOk(custom.paths['/static/{*}'])
  t.ok(custom.paths['/users'])
  t.ok(apply({ excludePrefixes: [] }).paths['/waygate/api/routes'])
})

t.test('leaves documents and parts it does not know alone', async t => {
  const snapshot = deepFreeze({ routes: [], global: { enabled: false, reason: '', exemptPaths: [], includeForceActive: false, since: null }, env: 'dev', now: 0 })
  const doc = deepFreeze({ openapi: '3.1.0', info: { title: 'x', version: '1' }, paths: { '/a': { get: { responses: {} }, parameters: [] }, '/b': null } })
  t.same(applyWaygateToSpec(doc, snapshot), doc)
  t.same(applyWaygateToSpec(deepFreeze({ openapi: '3.1.0' }), snapshot), { openapi: '3.1.0' })
  t.throws(() => applyWaygateToSpec(null as unknown as object, snapshot), TypeError)
})

t.test('handles OpenAPI 3.2 additionalOperations and hostile path names', async t => {
  const snapshot: WaygateSnapshot = deepFreeze({
    routes: [
      routeState('PROPFIND', '/dav', { status: 'disabled' }),
      routeState('GET', '/__proto__', { status: 'maintenance' })
    ],
    global: { enabled: false, reason: '', exemptPaths: [], includeForceActive: false, since: null },
    env: 'dev',
    now: 0
  })
  const doc = deepFreeze(JSON.parse('{"openapi":"3.2.0","paths":{"/dav":{"get":{},"additionalOperations":{"PROPFIND":{},"LOCK":{}}},"/__proto__":{"get":{}}}}'))
  const out = applyWaygateToSpec(doc, snapshot) as Doc
  t.same(Object.keys(out.paths['/dav'].additionalOperations), ['LOCK'])
  t.ok(Object.hasOwn(out.paths, '/__proto__'))
  t.equal(Object.getPrototypeOf(out.paths), Object.prototype)
  t.equal(out.paths['/__proto__'].get['x-waygate-status'], 'maintenance')
})
