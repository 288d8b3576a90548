import t from 'tap'
import Fastify from 'fastify'
import { join } from 'node:path'
import { createEngine, createFileBackend, createMemoryBackend } from '@waygate/core'
import { routeState } from '@waygate/core/testing'
import { waygate } from '@waygate/fastify'
import { buildApp, fakeClock } from './helpers/app.js'

const ok = async () => ({ ok: true })

t.test('a route in maintenance answers 503 MAINTENANCE_MODE with the concrete path', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/users/:id', { config: { waygate: { maintenance: { reason: 'DB migration' } } } }, ok)
  })
  const res = await app.inject('/users/42?x=1')
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /application\/json/)
  t.same(res.json(), {
    error: {
      code: 'MAINTENANCE_MODE',
      message: 'This endpoint is temporarily down for maintenance',
      reason: 'DB migration',
      path: '/users/42'
    }
  })
  t.notOk(res.headers['retry-after'], 'no Retry-After when the end is unknown')
})

t.test('a maintenance window applies from start to end, with Retry-After while it runs', async t => {
  const clock = fakeClock()
  const start = clock.now() + 60_000
  const end = start + 3_600_000
  const { app } = await buildApp(t, app => {
    app.get('/payments', { config: { waygate: { maintenance: { reason: 'upgrade', start: new Date(start), end: new Date(end) } } } }, ok)
  }, { engine: { now: clock.now } })

  t.equal((await app.inject('/payments')).statusCode, 200, 'before the window')
  clock.set(start - 1)
  t.equal((await app.inject('/payments')).statusCode, 200, 'one ms before the window')
  clock.set(start)
  const during = await app.inject('/payments')
  t.equal(during.statusCode, 503, 'at the start')
  t.equal(during.headers['retry-after'], '3600', 'Retry-After is delay-seconds until the end')
  t.equal(during.json().error.retryAfter, 3600)
  t.equal(during.json().error.retryAt, new Date(end).toISOString())
  clock.set(end - 1500)
  t.equal((await app.inject('/payments')).headers['retry-after'], '2', 'rounded up, never 0')
  clock.set(end)
  t.equal((await app.inject('/payments')).statusCode, 200, 'ends by itself at the end')
})

t.test('a disabled route answers 503 ROUTE_DISABLED', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/old-endpoint', { config: { waygate: { disabled: { reason: 'Use /v2/endpoint instead' } } } }, ok)
  })
  const res = await app.inject('/old-endpoint')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { error: { code: 'ROUTE_DISABLED', message: 'This endpoint is disabled', reason: 'Use /v2/endpoint instead', path: '/old-endpoint' } })
})

t.test('an env-gated route looks absent outside its envs, through the app\'s own 404', async t => {
  const routes = (app: import('fastify').FastifyInstance) => {
    app.setNotFoundHandler((request, reply) => { reply.code(404).send({ custom: 'not here' }) })
    app.get('/debug', { config: { waygate: { envOnly: ['dev', 'staging'] } } }, ok)
  }
  const prod = await buildApp(t, routes, { engine: { env: 'production' } })
  const res = await prod.app.inject('/debug')
  t.equal(res.statusCode, 404)
  t.same(res.json(), { custom: 'not here' })

  const dev = await buildApp(t, routes, { engine: { env: 'dev' } })
  t.equal((await dev.app.inject('/debug')).statusCode, 200)
})

t.test('a deprecated route runs and carries RFC 9745, RFC 8594 and successor headers', async t => {
  const clock = fakeClock(Date.parse('2026-06-01T12:00:00.000Z'))
  const { app } = await buildApp(t, app => {
    app.get('/v1/users', { config: { waygate: { deprecated: { sunset: 'Sat, 01 Jan 2027 00:00:00 GMT', successor: '/v2/users' } } } },
      async () => ({ users: [] }))
  }, { engine: { now: clock.now } })
  const res = await app.inject('/v1/users')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { users: [] })
  t.equal(res.headers.deprecation, `@${Date.parse('2026-06-01T12:00:00.000Z') / 1000}`)
  t.equal(res.headers.sunset, 'Fri, 01 Jan 2027 00:00:00 GMT', 'normalised HTTP-date')
  t.equal(res.headers.link, '</v2/users>; rel="successor-version"')
})

t.test('force-active routes are immune to everything but global maintenance with includeForceActive', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
    app.get('/other', ok)
  })
  await t.rejects(engine.disable('GET:/health', { reason: 'no' }), { code: 'WG_ERR_ROUTE_FORCE_ACTIVE' })
  await engine.enableGlobalMaintenance({ reason: 'upgrade' })
  t.equal((await app.inject('/health')).statusCode, 200, 'global maintenance spares force-active')
  t.equal((await app.inject('/other')).statusCode, 503)
  await engine.enableGlobalMaintenance({ reason: 'upgrade', includeForceActive: true })
  t.equal((await app.inject('/health')).statusCode, 503, 'unless includeForceActive')
})

t.test('global maintenance blocks routes and unmatched paths, spares exempt keys and preflights', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/a', ok)
    app.post('/a', ok)
    app.get('/status', ok)
    app.get('/items/:id', ok)
  })
  await engine.enableGlobalMaintenance({ reason: 'Deploying v2', exemptPaths: ['/status', 'POST:/a'] })
  const blocked = await app.inject('/a')
  t.equal(blocked.statusCode, 503)
  t.same(blocked.json().error, { code: 'MAINTENANCE_MODE', message: 'The service is temporarily down for maintenance', reason: 'Deploying v2', path: '/a' })
  t.equal((await app.inject({ method: 'POST', url: '/a' })).statusCode, 200, 'METHOD: exempt key')
  t.equal((await app.inject('/status')).statusCode, 200, 'bare exempt key')
  t.equal((await app.inject('/items/7')).statusCode, 503)

  const unmatched = await app.inject('/nowhere?q=1')
  t.equal(unmatched.statusCode, 503, 'unmatched paths too')
  t.equal(unmatched.json().error.path, '/nowhere')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/nowhere', headers: { origin: 'http://x', 'access-control-request-method': 'GET' } })
  t.equal(preflight.statusCode, 404, 'a CORS preflight is not answered with 503')
  t.equal((await app.inject({ method: 'OPTIONS', url: '/nowhere' })).statusCode, 503, 'a plain OPTIONS is not a preflight')

  await engine.disableGlobalMaintenance()
  t.equal((await app.inject('/a')).statusCode, 200)
  t.equal((await app.inject('/nowhere')).statusCode, 404)
})

t.test('runtime changes apply on the next request', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/payments', ok)
  })
  t.equal((await app.inject('/payments')).statusCode, 200)
  await engine.disable('GET:/payments', { reason: 'hotfix', actor: 'alice', platform: 'cli' })
  t.equal((await app.inject('/payments')).json().error.code, 'ROUTE_DISABLED')
  await engine.setMaintenance('/payments', { reason: 'later' })
  t.equal((await app.inject('/payments')).json().error.code, 'MAINTENANCE_MODE')
  await engine.enable('GET:/payments')
  t.equal((await app.inject('/payments')).statusCode, 200)
  const [last] = await engine.listAudit({ key: 'GET:/payments' })
  t.match(last, { action: 'enable', previousStatus: 'maintenance', newStatus: 'active' })
})

t.test('HEAD follows the GET route', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/doc', ok)
  })
  t.equal((await app.inject({ method: 'HEAD', url: '/doc' })).statusCode, 200)
  await engine.disable('GET:/doc')
  t.equal((await app.inject({ method: 'HEAD', url: '/doc' })).statusCode, 503)
  t.notOk(engine.listRoutes().some(r => r.method === 'HEAD'), 'no separate HEAD key')
})

t.test('one route with several methods gets one key per method', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.route({ method: ['PUT', 'PATCH'], url: '/thing', handler: ok })
  })
  await engine.disable('PATCH:/thing')
  t.equal((await app.inject({ method: 'PUT', url: '/thing' })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: '/thing' })).statusCode, 503)
  await t.rejects(engine.disable('/thing'), { code: 'WG_ERR_ROUTE_AMBIGUOUS' })
  await engine.disable('/thing', { all: true })
  t.equal((await app.inject({ method: 'PUT', url: '/thing' })).statusCode, 503)
})

t.test('prefixed routes are keyed by their full pattern', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.register(async child => { child.get('/orders/:id', ok) }, { prefix: '/api' })
  })
  t.ok(engine.getState('GET:/api/orders/:id'))
  await engine.setMaintenance('GET:/api/orders/:id')
  t.equal((await app.inject('/api/orders/9')).statusCode, 503)
})

t.test('a route\'s response schema does not reshape the built-in body', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/s', {
      schema: { response: { '5xx': { type: 'object', properties: { other: { type: 'string' } } } } },
      config: { waygate: { disabled: { reason: 'x' } } }
    }, ok)
  })
  t.equal((await app.inject('/s')).json().error.code, 'ROUTE_DISABLED')
})

t.test('an invalid route config fails ready() naming every bad route', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate)
  app.get('/a', { config: { waygate: { maintenance: { reason: 42 } } as never } }, ok)
  app.get('/b', { config: { waygate: { envOnly: [] } } }, ok)
  app.get('/c', { config: { waygate: { maintenence: {} } as never } }, ok)
  app.get('/d', { config: { waygate: { maintenance: { start: '2026-01-02', end: '2026-01-01' } } } }, ok)
  app.get('/e', { config: { waygate: { deprecated: { sunset: 'not a date' } } } }, ok)
  await t.rejects(async () => { await app.ready() }, {
    code: 'WG_ERR_ROUTE_CONFIG_INVALID',
    message: /GET:\/a.*GET:\/b.*GET:\/c.*maintenence.*GET:\/d.*end must be after.*GET:\/e.*not a valid date/s
  })
})

t.test('an invalid route config is listed once, not again for its automatic HEAD route', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate)
  app.get('/a', { config: { waygate: { forceActiv: true } as never } }, ok)
  app.get('/b', { config: { waygate: { maintenance: { reasn: 'x' } } as never } }, ok)
  // a HEAD route of its own, with its own bad declaration, is still reported
  app.head('/c', { config: { waygate: { envOnly: 'dev' } as never } }, ok)
  const err = await app.ready().then(() => null, (err: Error) => err)
  t.equal((err as { code?: string } | null)?.code, 'WG_ERR_ROUTE_CONFIG_INVALID')
  const message = err?.message ?? ''
  t.equal(message.match(/"forceActiv"/g)?.length, 1, message)
  t.equal(message.match(/reasn/g)?.length, 1, message)
  t.notMatch(message, /HEAD:\/[ab]/)
  t.match(message, /HEAD:\/c/)
})

t.test('invalid plugin options are refused at registration', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(waygate, { responses: { maintenance: 'nope' } as never, unmanagedRoutes: 'loud' as never }) }, {
    code: 'WG_ERR_PLUGIN_OPTIONS_INVALID',
    message: /responses\.maintenance.*unmanagedRoutes/
  })
})

t.test('an app with no earlier routes gets no warning about them', async t => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(waygate, { unmanagedRoutes: 'error' })
  app.get('/a', ok)
  await app.ready()
  t.same(lines, [])
})

t.test('routes declared before the plugin are reported, not silently skipped', async t => {
  const lines: string[] = []
  const stream = { write: (line: string) => { lines.push(line) } }
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  app.get('/early', ok)
  await app.register(waygate)
  app.get('/late', ok)
  await app.ready()
  t.ok(lines.some(l => l.includes('NOT managed') && l.includes('early')), 'a loud warning names the route')
  t.equal(app.waygate.getState('GET:/early'), null)
  t.ok(app.waygate.getState('GET:/late'))

  const strict = Fastify()
  t.teardown(() => strict.close())
  strict.get('/early', ok)
  await t.rejects(async () => { await strict.register(waygate, { unmanagedRoutes: 'error' }) }, { code: 'WG_ERR_ROUTES_BEFORE_PLUGIN' })
})

t.test('waygate: false and ignorePrefixes leave routes unmanaged', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/plain', { config: { waygate: false } }, ok)
    app.get('/admin/x', ok)
    app.get('/managed', ok)
  }, { plugin: { ignorePrefixes: ['/admin'] } })
  await engine.enableGlobalMaintenance({ reason: 'x' })
  t.equal((await app.inject('/plain')).statusCode, 200)
  t.equal((await app.inject('/admin/x')).statusCode, 200)
  t.equal((await app.inject('/admin/missing')).statusCode, 404, 'unmatched paths under an ignored prefix are not blocked')
  t.equal((await app.inject('/managed')).statusCode, 503)
  t.same(engine.listRoutes().map(r => r.key), ['GET:/managed'])
})

t.test('encapsulation: registered in a child context, waygate manages only that context', async t => {
  const engine = createEngine()
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(async child => {
    await child.register(waygate, { engine, closeEngine: true })
    child.get('/inside', { config: { waygate: { disabled: {} } } }, ok)
  })
  app.register(async sibling => {
    sibling.get('/outside', { config: { waygate: { disabled: {} } } }, ok)
  })
  await app.ready()
  t.equal((await app.inject('/inside')).statusCode, 503)
  t.equal((await app.inject('/outside')).statusCode, 200)
  t.notOk(app.hasDecorator('waygate'), 'the root instance is not decorated')
})

t.test('persisted state wins over route config at restart', async t => {
  const backend = createMemoryBackend()
  // the backend outlives each engine, as a file or Redis would
  const keep = { ...backend, close: async () => {} }
  const routes = (app: import('fastify').FastifyInstance) => {
    app.get('/payments', { config: { waygate: { maintenance: { reason: 'from config' } } } }, ok)
  }
  const first = await buildApp(t, routes, { engine: { backend: keep } })
  t.equal((await first.app.inject('/payments')).statusCode, 503)
  await first.engine.enable('GET:/payments', { actor: 'ops' })
  await first.app.close()

  const second = await buildApp(t, routes, { engine: { backend: keep } })
  t.equal((await second.app.inject('/payments')).statusCode, 200, 'the runtime change survives')
  t.equal(second.engine.getState('GET:/payments')?.updatedBy, 'ops')
})

t.test('testBypass turns every check off', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/m', { config: { waygate: { maintenance: {} } } }, ok)
  }, { engine: { testBypass: true } })
  await engine.enableGlobalMaintenance({})
  t.equal((await app.inject('/m')).statusCode, 200)
  t.equal((await app.inject('/missing')).statusCode, 404)
})

t.test('fail-open: a backend that cannot load still lets the app start and serve', async t => {
  const backend = createMemoryBackend()
  const broken = {
    ...backend,
    load: async () => { throw new Error('connection refused') },
    registerRoutes: async () => { throw new Error('connection refused') },
    updateRoute: async () => { throw new Error('connection refused') }
  }
  const { app, engine } = await buildApp(t, app => {
    app.get('/a', ok)
    app.get('/m', { config: { waygate: { maintenance: { reason: 'declared' } } } }, ok)
  }, { engine: { backend: broken, resyncIntervalMs: 0 } })
  t.equal((await app.inject('/a')).statusCode, 200)
  t.equal((await app.inject('/m')).statusCode, 503, 'declared state still applies')
  t.equal((await engine.status()).healthy, false)
  await t.rejects(engine.disable('GET:/a'), { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 })
  t.equal((await app.inject('/a')).statusCode, 200, 'a failed write changes nothing')
})

t.test('on the file backend, a runtime change survives a restart of the app', async t => {
  const path = join(t.testdir(), 'state.json')
  const routes = (app: import('fastify').FastifyInstance) => {
    app.get('/payments', { config: { waygate: { maintenance: { reason: 'from config' } } } }, ok)
    app.get('/orders', ok)
  }
  const first = await buildApp(t, routes, { engine: { backend: createFileBackend({ path }) } })
  t.equal((await first.app.inject('/payments')).statusCode, 503)
  await first.engine.enable('GET:/payments', { actor: 'ops', platform: 'cli' })
  await first.engine.disable('GET:/orders', { reason: 'hotfix' })
  await first.app.close()

  const second = await buildApp(t, routes, { engine: { backend: createFileBackend({ path }) } })
  t.equal((await second.app.inject('/payments')).statusCode, 200, 'config does not overwrite the persisted state')
  t.equal((await second.app.inject('/orders')).json().error.reason, 'hotfix')
  const audit = await second.engine.listAudit({ key: 'GET:/payments' })
  t.match(audit[0], { action: 'enable', actor: 'ops', platform: 'cli', previousStatus: 'maintenance', newStatus: 'active' })
})

t.test('without an engine option the plugin builds one from the environment', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate)
  app.get('/a', { config: { waygate: { envOnly: ['dev'] } } }, ok)
  await app.ready()
  t.equal(app.waygate.env, process.env.WAYGATE_ENV ?? 'dev')
  t.equal((await app.inject('/a')).statusCode, app.waygate.env === 'dev' ? 200 : 404)
})

t.test('no stored state makes a route answer 500: header-bound values that cannot be sent are dropped or encoded', async t => {
  const backend = createMemoryBackend()
  const bad = ['\u0000', '\u007f', '\r\nx-injected: 1', '🚀', '\ud800']
  await backend.registerRoutes([
    ...bad.map((c, i) => routeState(`GET:/s${i}`, { status: 'deprecated', successor: `/v2/${c}` })),
    routeState('GET:/latin', { status: 'deprecated', successor: '/v2/é' }),
    routeState('GET:/far', { status: 'maintenance', window: { start: '2020-01-01T00:00:00.000Z', end: '9999-12-31T23:59:59.000Z', reason: 'long' } })
  ])
  const logs: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { logs.push(line) } } } })
  const engine = createEngine({ backend, resyncIntervalMs: 0, logger: app.log })
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true })
  for (let i = 0; i < bad.length; i++) app.get(`/s${i}`, async () => ({ ok: i }))
  app.get('/latin', async () => ({ ok: true }))
  app.get('/far', async () => ({ ok: true }))
  await app.ready()
  for (let i = 0; i < bad.length; i++) {
    const res = await app.inject(`/s${i}`)
    t.equal(res.statusCode, 200, `successor with ${JSON.stringify(bad[i])}`)
    t.ok(res.headers.deprecation, 'still marked deprecated')
    t.equal(res.headers.link, i === 3 ? '</v2/%F0%9F%9A%80>; rel="successor-version"' : undefined)
    t.equal(res.headers['x-injected'], undefined)
  }
  t.equal((await app.inject('/latin')).headers.link, '</v2/%C3%A9>; rel="successor-version"', 'Latin-1 is percent-encoded as UTF-8, not sent raw')
  t.ok(logs.some(l => l.includes('GET:/s0') && l.includes('successor')), 'logged')
  const far = await app.inject('/far')
  t.equal(far.statusCode, 503)
  t.equal(far.headers['retry-after'], '2147483647', 'Retry-After is bounded')
})

t.test('a response factory setting a header the state makes unsendable still answers, without that header', async t => {
  const logs: string[] = []
  const engine = createEngine({ backend: createMemoryBackend(), resyncIntervalMs: 0 })
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { logs.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(waygate, {
    engine,
    closeEngine: true,
    responses: {
      disabled: async (_request, reply, block) => {
        reply.header('x-why', block.reason).header('x-ok', 'yes')
        return { custom: block.reason }
      }
    }
  })
  app.get('/m', { config: { waygate: { response: (_request, reply, block) => { reply.header('x-why', block.reason); return { custom: true } } } } }, async () => ({ ok: true }))
  app.get('/d', async () => ({ ok: true }))
  await app.ready()
  for (const reason of ['up 🚀', 'a\u0000b', 'a\u007fb', 'line\r\nx-injected: 1', 'plain é']) {
    await engine.setMaintenance('GET:/m', { reason })
    await engine.disable('GET:/d', { reason })
    const m = await app.inject('/m')
    t.equal(m.statusCode, 503, `route factory, reason ${JSON.stringify(reason)}`)
    t.same(m.json(), { custom: true })
    const d = await app.inject('/d')
    t.equal(d.statusCode, 503, `plugin factory, reason ${JSON.stringify(reason)}`)
    t.same(d.json(), { custom: reason })
    t.equal(d.headers['x-ok'], 'yes', 'the other headers are kept')
    t.equal(d.headers['x-injected'], undefined)
    if (reason === 'plain é') t.ok(d.headers['x-why'], 'Latin-1, which Node sends, is left alone')
    else t.equal(d.headers['x-why'], undefined, 'the unsendable header is dropped')
  }
  t.ok(logs.some(l => l.includes('x-why')), 'the dropped header is logged')
})
