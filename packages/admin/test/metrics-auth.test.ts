import t from 'tap'
import Fastify from 'fastify'
import { createEngine, createMemoryBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'

// the plugin's metrics endpoint with auth: true lets in only callers the admin authenticates
t.test('metrics.auth: the admin\'s tokens guard /metrics; without auth it is open beside a guarded admin', async t => {
  const build = async (auth: boolean) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(waygate, { engine: createEngine({ backend: createMemoryBackend() }), closeEngine: true, metrics: { auth } })
    app.get('/ok', async () => 'ok')
    await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' }, secretKey: 'metrics-test-secret-0123456789' })
    await app.ready()
    return app
  }
  const guarded = await build(true)
  t.equal((await guarded.inject('/metrics')).statusCode, 401, 'no token')
  t.equal((await guarded.inject({ url: '/metrics', headers: { authorization: 'Bearer nonsense' } })).statusCode, 401, 'a bad token')
  const login = await guarded.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password: 'secret', platform: 'cli' } })
  const token = login.json().token as string
  const ok = await guarded.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.statusCode, 200)
  t.match(ok.body, /waygate_route_status\{route="GET:\/ok",service="",status="active"\} 1/)

  const open = await build(false)
  t.equal((await open.inject('/metrics')).statusCode, 200, 'open: outside the admin auth')
  t.equal((await open.inject('/waygate/api/routes')).statusCode, 401, 'while the admin stays guarded')
})
