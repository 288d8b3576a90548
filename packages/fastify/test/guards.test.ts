import t from 'tap'
import Fastify from 'fastify'
import { createEngine } from '@waygate/core'
import { createGuards } from '@waygate/fastify'

const ok = async () => ({ ok: true })

t.test('guards enforce state per route without the plugin, through the same engine', async t => {
  const engine = createEngine({ env: 'production' })
  await engine.start()
  const guards = createGuards(engine)
  const app = Fastify()
  t.teardown(async () => { await app.close(); await engine.close() })
  app.get('/orders', { onRequest: guards.maintenance({ reason: 'Order upgrade' }) }, ok)
  app.get('/report', { onRequest: guards.disabled({ reason: 'Use /v2/report' }) }, ok)
  app.get('/debug', { onRequest: guards.envOnly('dev') }, ok)
  app.get('/v1/items/:id', { onRequest: guards.deprecated({ successor: '/v2/items/:id' }) }, ok)
  app.get('/free', { onRequest: guards.guard() }, ok)
  app.get('/plain', ok)

  t.equal((await app.inject('/orders')).json().error.code, 'MAINTENANCE_MODE')
  t.equal((await app.inject('/report')).json().error.code, 'ROUTE_DISABLED')
  t.equal((await app.inject('/debug')).statusCode, 404)
  const dep = await app.inject('/v1/items/3')
  t.equal(dep.statusCode, 200)
  t.equal(dep.headers.link, '</v2/items/:id>; rel="successor-version"')
  t.equal((await app.inject('/free')).statusCode, 200)

  // the guarded routes are now known to the engine, so operators can act on them
  await new Promise(resolve => setImmediate(resolve))
  t.same(engine.listRoutes().map(r => r.key).sort(), ['GET:/debug', 'GET:/free', 'GET:/orders', 'GET:/report', 'GET:/v1/items/:id'])
  await engine.enable('GET:/orders')
  t.equal((await app.inject('/orders')).statusCode, 200, 'a runtime change reaches the guard')
  await engine.disable('GET:/free', { reason: 'off' })
  t.equal((await app.inject('/free')).statusCode, 503)
  t.equal((await app.inject({ method: 'HEAD', url: '/free' })).statusCode, 503, 'HEAD follows GET')
  t.equal((await app.inject('/plain')).statusCode, 200)
})

t.test('a bad guard declaration fails where the route is defined', async t => {
  const guards = createGuards(createEngine())
  t.throws(() => guards.envOnly(), { code: 'WG_ERR_INPUT_INVALID', message: /waygate guard: .*envOnly/ })
  t.throws(() => guards.maintenance({ start: '2030-01-02', end: '2030-01-01' }), { code: 'WG_ERR_INPUT_INVALID', message: /end must be after/ })
})

t.test('guards use their own response, then the guard-wide responses', async t => {
  const engine = createEngine()
  await engine.start()
  const guards = createGuards(engine, { responses: { disabled: () => 'guard-wide' } })
  const app = Fastify()
  t.teardown(async () => { await app.close(); await engine.close() })
  app.get('/a', { onRequest: guards.disabled({ reason: 'x', response: () => 'own' }) }, ok)
  app.get('/b', { onRequest: guards.disabled({ reason: 'x' }) }, ok)
  t.equal((await app.inject('/a')).body, 'own')
  t.equal((await app.inject('/b')).body, 'guard-wide')
})
