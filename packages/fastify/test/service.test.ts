import t from 'tap'
import Fastify from 'fastify'
import { waygateService } from '@waygate/fastify'
import { routeState } from '@waygate/core/testing'
import { startFakeServer } from '../../core/test/remote/helpers/fake-server.js'
import { waitFor } from '../../core/test/remote/helpers/timer-clock.js'

t.test('missing serverUrl and service: registration fails naming both and their variables', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(waygateService, { variables: {} })
  await t.rejects(async () => { await app.ready() }, {
    code: 'WG_ERR_PLUGIN_OPTIONS_INVALID',
    message: /serverUrl: required.*WAYGATE_SERVER_URL.*service: required.*WAYGATE_SERVICE/
  })
  const half = Fastify()
  t.teardown(() => half.close())
  half.register(waygateService, { variables: { WAYGATE_SERVER_URL: 'http://127.0.0.1:1', WAYGATE_SERVICE: 'p', WAYGATE_USERNAME: 'u' } })
  await t.rejects(async () => { await half.ready() }, { code: 'WG_ERR_PLUGIN_OPTIONS_INVALID', message: /username and password/ })
})

t.test('from the environment: registers its routes, enforces the server\'s state and follows its changes', async t => {
  const fake = await startFakeServer()
  t.teardown(() => fake.close())
  fake.routes.set('GET:/legacy', routeState('GET:/legacy', { status: 'disabled', reason: 'gone' }))
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygateService, {
    variables: { WAYGATE_SERVER_URL: fake.url, WAYGATE_SERVICE: 'payments', WAYGATE_TOKEN: 'tok', WAYGATE_ENV: 'production' }
  })
  app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ ok: true }))
  app.get('/legacy', async () => ({ ok: true }))
  app.get('/pay', { config: { waygate: { maintenance: { reason: 'declared' } } } }, async () => ({ ok: true }))
  await app.ready()

  t.equal(app.waygate.env, 'production')
  t.equal(app.waygate.backend.kind, 'remote')
  await waitFor(() => fake.manifest !== null)
  const registered = fake.requests.find(q => q.path.endsWith('/register'))!.body as { routes: Array<{ key: string }> }
  const keys = registered.routes.map(r => r.key)
  for (const key of ['GET:/health', 'GET:/legacy', 'GET:/pay']) t.ok(keys.includes(key), `${key} registered`)

  t.equal((await app.inject('/health')).statusCode, 200)
  t.match((await app.inject('/legacy')).json(), { error: { code: 'ROUTE_DISABLED' } }, 'the server\'s stored state wins')
  t.match((await app.inject('/pay')).json(), { error: { code: 'MAINTENANCE_MODE' } }, 'declared state registered')

  fake.change({ type: 'route', state: routeState('GET:/legacy') })
  await waitFor(() => app.waygate.getState('GET:/legacy')?.status === 'active')
  t.equal((await app.inject('/legacy')).statusCode, 200, 'a change on the server is enforced')

  const sync = app.waygate.backend.syncStatus?.()
  t.match(sync, { state: 'connected', source: 'server', service: 'payments', serverUrl: fake.url })

  await app.waygate.enable('GET:/pay', { actor: 'payments' })
  t.equal((await app.inject('/pay')).statusCode, 200, 'a mutation in code goes to the server and applies')
  t.match(fake.routes.get('GET:/pay'), { status: 'active' })

  await app.close()
  await waitFor(() => fake.openStreams() === 0)
  t.pass('closing the app ends the stream')
})

t.test('explicit options beat the environment; username and password log in', async t => {
  const fake = await startFakeServer()
  t.teardown(() => fake.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygateService, {
    serverUrl: fake.url,
    service: 'payments',
    username: 'svc',
    password: 'pw',
    variables: { WAYGATE_SERVER_URL: 'http://127.0.0.1:1', WAYGATE_SERVICE: 'other', WAYGATE_TOKEN: 'wrong' }
  })
  await app.ready()
  t.match(fake.requests.find(q => q.path === '/api/auth/login')?.body, { username: 'svc', password: 'pw', platform: 'sdk', service: 'payments' })
  t.match(app.waygate.backend.syncStatus?.(), { state: 'connected' })
})
