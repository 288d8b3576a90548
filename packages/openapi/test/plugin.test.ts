import t from 'tap'
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { createEngine } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { BANNER_SCRIPT_FILE, BANNER_STYLE_FILE, waygateOpenApi } from '../src/index.js'
import { buildDocsApp, operations } from './helpers/app.js'

t.test('/docs/json follows runtime state on the next load: disable, enable, deprecate, maintenance, global', async t => {
  const { app, engine } = await buildDocsApp(t)
  const load = async () => {
    const res = await app.inject('/docs/json')
    t.equal(res.statusCode, 200)
    return res.json()
  }
  t.ok((await load()).paths['/users/{id}'].get)

  await engine.disable('GET:/users/:id', { reason: 'gone for now' })
  t.notOk((await load()).paths['/users/{id}'].get, 'disabled: gone')
  t.ok((await load()).paths['/users/{id}'].put, 'the other methods stay')

  await engine.enable('GET:/users/:id')
  t.ok((await load()).paths['/users/{id}'].get, 'enabled: back')

  await engine.deprecate('GET:/users', { sunset: '2027-01-01T00:00:00Z', successor: '/v2/users' })
  const deprecated = (await load()).paths['/users'].get
  t.equal(deprecated.deprecated, true, 'deprecated: marked')
  t.equal(deprecated['x-waygate-successor'], '/v2/users')

  await engine.setMaintenance('POST:/users', { reason: 'Reindex' })
  t.equal((await load()).paths['/users'].post['x-waygate-status'], 'maintenance', 'maintenance: annotated')

  await engine.enableGlobalMaintenance({ reason: 'Upgrade to v3', exemptPaths: ['/health'] })
  const global = await load()
  t.equal(global.info['x-waygate-global-maintenance'].reason, 'Upgrade to v3', 'global: info extension')
  t.equal(global.paths['/v1/orders'].post['x-waygate-global'], true)

  await engine.disableGlobalMaintenance()
  t.notOk((await load()).info['x-waygate-global-maintenance'], 'global off: gone')

  const yaml = await app.inject('/docs/yaml')
  t.match(yaml.body, /x-waygate-status: maintenance/, 'the YAML document follows too')
})

t.test('the admin API and the docs UI never appear in the document', async t => {
  const { app } = await buildDocsApp(t)
  const doc = (await app.inject('/docs/json')).json()
  t.notOk(Object.keys(doc.paths).some((p: string) => p.startsWith('/waygate') || p.startsWith('/docs')))
  t.ok(doc.paths['/internal'], 'a route unmanaged by waygate is documented as it is')
})

t.test('the docs, their theme and the status endpoint stay reachable under global maintenance', async t => {
  const { app, engine } = await buildDocsApp(t)
  await engine.enableGlobalMaintenance({ reason: 'Upgrade <script>alert(1)</script>' })
  t.equal((await app.inject('/users')).statusCode, 503, 'the API is down')

  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200)
  t.match(page.body, `<script src="./static/theme/${BANNER_SCRIPT_FILE}"`, 'the page loads the banner script')
  t.match(page.body, `href="./static/theme/${BANNER_STYLE_FILE}"`)

  const script = await app.inject(`/docs/static/theme/${BANNER_SCRIPT_FILE}`)
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /javascript/)
  t.notMatch(script.body, /innerHTML/, 'the script never parses HTML')
  t.notMatch(script.body, /Upgrade/, 'no state is baked into the script')
  t.equal((await app.inject(`/docs/static/theme/${BANNER_STYLE_FILE}`)).statusCode, 200)

  const status = await app.inject('/docs/waygate-status')
  t.equal(status.statusCode, 200)
  t.equal(status.headers['cache-control'], 'no-store')
  const body = status.json()
  t.same(body.global, { enabled: true, reason: 'Upgrade <script>alert(1)</script>', exemptPaths: [], since: engine.getGlobal().since })
  t.equal(body.version, engine.version)
  t.ok(body.maintenance.some((m: { method: string, path: string }) => m.method === 'GET' && m.path === '/users/{id}'))
  t.match(status.headers['content-type'], /application\/json/, 'JSON, never HTML')
})

t.test('swaggerUiOptions keeps your own theme files and transform', async t => {
  const { app, engine } = await buildDocsApp(t, {
    ui: {
      theme: { title: 'Mine', css: [{ filename: 'mine.css', content: 'body{}' }] },
      transformSpecification: (spec: Record<string, any>) => {
        spec.info.title = 'Changed by mine'
        return spec
      }
    }
  })
  await engine.disable('GET:/users')
  const doc = (await app.inject('/docs/json')).json()
  t.equal(doc.info.title, 'Changed by mine', 'yours runs')
  t.notOk(doc.paths['/users'].get, 'after waygate\'s')
  t.equal(app.waygateOpenApi.document().info && (app.waygateOpenApi.document().info as { title: string }).title, 'Test API',
    'on a copy: the cached document is untouched')
  const page = await app.inject('/docs/')
  t.match(page.body, '<title>Mine</title>')
  t.match(page.body, 'theme/mine.css')
  t.match(page.body, `theme/${BANNER_STYLE_FILE}`)
})

t.test('swaggerUiOptions refuses a docs prefix other than the plugin\'s', async t => {
  const { app } = await buildDocsApp(t, { ui: false })
  t.throws(() => app.waygateOpenApi.swaggerUiOptions({ routePrefix: '/other' }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.equal(app.waygateOpenApi.swaggerUiOptions({ routePrefix: '/docs/' }).routePrefix, '/docs')
  t.equal(app.waygateOpenApi.swaggerUiOptions().transformSpecificationClone, false)
})

t.test('works under swagger-ui\'s strict static CSP', async t => {
  const { app } = await buildDocsApp(t, { ui: { staticCSP: true } })
  const page = await app.inject('/docs/')
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.notMatch(csp, /unsafe-inline/, 'no inline script needed')
  t.equal((await app.inject('/docs/waygate-status')).statusCode, 200)
})

t.test('specRoute serves the live document for other UIs (Scalar, ReDoc)', async t => {
  const { app, engine } = await buildDocsApp(t, { ui: false, openapi: { specRoute: '/openapi.json' } })
  t.ok((await app.inject('/openapi.json')).json().paths['/users'].get)
  await engine.disable('GET:/users')
  const res = await app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  t.notOk(res.json().paths['/users'].get)
  t.notOk(res.json().paths['/openapi.json'], 'not documented itself')
  await engine.enableGlobalMaintenance({ reason: 'x' })
  t.equal((await app.inject('/openapi.json')).statusCode, 200, 'reachable under global maintenance')
})

t.test('statusRoute: false serves no status endpoint', async t => {
  const { app } = await buildDocsApp(t, { openapi: { statusRoute: false } })
  t.equal((await app.inject('/docs/waygate-status')).statusCode, 404)
})

t.test('excludePrefixes replaces the default list', async t => {
  const { app } = await buildDocsApp(t, { openapi: { excludePrefixes: ['/v1'] } })
  const doc = (await app.inject('/docs/json')).json()
  t.same(operations(doc).filter(o => o.includes('/v1') || o.includes('/waygate')), ['GET /waygate/api/routes', 'POST /waygate/api/routes/{key}/disable'])
})

t.test('rejects bad options at registration, listing each', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine: createEngine(), closeEngine: true })
  await t.rejects(async () => app.register(waygateOpenApi, {
    engine: {} as ReturnType<typeof createEngine>,
    routePrefix: 'docs',
    excludePrefixes: ['waygate'],
    specRoute: 'x',
    statusRoute: 'yes' as unknown as boolean,
    pollIntervalMs: 10,
    swaggerDecorator: ''
  }), {
    code: 'WG_ERR_OPTIONS_INVALID',
    message: /engine.*routePrefix.*excludePrefixes.*specRoute.*statusRoute.*pollIntervalMs.*swaggerDecorator/
  })
})

t.test('needs an engine: fastify.waygate or the engine option', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => app.register(waygateOpenApi), { code: 'WG_ERR_OPTIONS_INVALID', message: /register @waygate\/fastify/ })
})

t.test('needs @fastify/swagger by ready()', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygateOpenApi, { engine: createEngine() })
  await t.rejects(async () => app.ready(), { code: 'WG_ERR_OPTIONS_INVALID', message: /register @fastify\/swagger/ })
})

t.test('warns when waygate manages the docs routes', async t => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(waygate, { engine: createEngine(), closeEngine: true })
  await app.register(swagger, { openapi: { info: { title: 't', version: '1' } } })
  await app.register(waygateOpenApi, { routePrefix: '/docs' })
  await app.register(swaggerUi, app.waygateOpenApi.swaggerUiOptions())
  await app.ready()
  t.ok(lines.some(line => line.includes('ignorePrefixes') && line.includes('/docs')))
})
