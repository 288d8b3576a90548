import t from 'tap'
import { createMemoryRateLimitStore, RATE_LIMIT_NAMESPACE, type RateLimitStore } from '@waygate/core'
import { buildApp, fakeClock } from './helpers/app.js'

const ok = async () => ({ ok: true })
const tier = (limits: string[], exemptRoutes: string[] = [], enabled = true) =>
  ({ policy: { key: '@service', limits, algorithm: 'fixed_window' as const }, enabled, exemptRoutes })

function routes (app: import('fastify').FastifyInstance): void {
  app.get('/a', { config: { waygate: { rateLimit: { limit: '50/minute', algorithm: 'fixed_window' } } } }, ok)
  app.get('/b', ok)
  app.get('/health', ok)
  app.get('/users/:id', ok)
}

t.test('the service tier refuses after its limit while the route and global limits allow', async t => {
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const { app } = await buildApp(t, routes, { engine: { now: clock.now }, plugin: { rateLimit: { store: createMemoryRateLimitStore({ now: clock.now }), headers: 'both' } } })
  const limits = app.waygateRateLimits
  await limits.setGlobal({ limits: ['100/minute'] })
  await limits.setService({ limits: ['3/minute'], algorithm: 'fixed_window' })
  const first = await app.inject('/b')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-policy'], '"service";q=3;w=60', 'a route without its own limit shows the service tier')
  t.equal(first.headers.ratelimit, '"service";r=2;t=60')
  t.equal((await app.inject('/a')).headers['ratelimit-policy'], '"route";q=50;w=60', 'the route\u2019s own headers come last')
  t.equal((await app.inject('/users/7')).statusCode, 200)
  clock.advance(20_000)
  const refused = await app.inject('/a?x=1')
  t.equal(refused.statusCode, 429, 'the fourth request of the service, though route and global allow it')
  t.equal(refused.headers['retry-after'], '40')
  t.equal(refused.headers['ratelimit-policy'], '"service";q=3;w=60')
  t.equal(refused.headers['x-ratelimit-remaining'], '0')
  t.same(refused.json(), {
    error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests', limit: '3/minute', retryAfterSeconds: 40, resetAt: '2030-01-01T00:01:00.000Z', path: '/a' }
  })
  t.equal((await app.inject('/b')).statusCode, 429, 'one counter for the whole service')
  t.match(limits.blocked(), [{ key: '@service', path: '/b', limit: '3/minute' }, { key: '@service', path: '/a', client: '127.0.0.1' }])
  t.equal((await app.inject({ url: '/b', remoteAddress: '10.0.0.9' })).statusCode, 200, 'counted per client address')
  clock.advance(40_000)
  t.equal((await app.inject('/a')).statusCode, 200, 'a new window')
})

t.test('tiers run global, then service, then route: the first that refuses answers', async t => {
  const { app } = await buildApp(t, routes)
  const limits = app.waygateRateLimits
  const hit = (url: string, remoteAddress: string) => app.inject({ url, remoteAddress })

  await limits.setGlobal({ limits: ['2/minute'] })
  await limits.setService({ limits: ['5/minute'] })
  for (let i = 0; i < 2; i++) await hit('/b', '10.0.0.1')
  t.equal((await hit('/b', '10.0.0.1')).json().error.limit, '2/minute')
  t.equal(limits.blocked()[0]?.key, '*', 'refused by the global tier')

  await limits.setGlobal({ limits: ['50/minute'] })
  await limits.setService({ limits: ['2/minute'] })
  await limits.setPolicy({ key: 'GET:/a', limits: ['10/minute'] })
  for (let i = 0; i < 2; i++) await hit('/a', '10.0.0.2')
  t.equal((await hit('/a', '10.0.0.2')).json().error.limit, '2/minute')
  t.equal(limits.blocked()[0]?.key, '@service', 'refused by the service tier before the route\u2019s')

  await limits.setService({ limits: ['10/minute'] })
  await limits.setPolicy({ key: 'GET:/a', limits: ['1/minute'] })
  await hit('/a', '10.0.0.3')
  t.equal((await hit('/a', '10.0.0.3')).json().error.limit, '1/minute')
  t.equal(limits.blocked()[0]?.key, 'GET:/a', 'refused by the route')
})

t.test('exemptRoutes of the service tier skip it, by key or by pattern, and nothing else', async t => {
  const { app } = await buildApp(t, routes)
  const limits = app.waygateRateLimits
  await limits.setService({ limits: ['1/minute'] }, { exemptRoutes: ['GET:/health', '/users/:id'] })
  for (let i = 0; i < 3; i++) {
    t.equal((await app.inject('/health')).statusCode, 200, 'exempt by key')
    t.equal((await app.inject('/users/1')).statusCode, 200, 'exempt by pattern')
  }
  t.notOk((await app.inject('/health')).headers.ratelimit, 'an exempt route is not counted at all')
  t.equal((await app.inject('/b')).statusCode, 200)
  t.equal((await app.inject('/b')).statusCode, 429, 'other routes are limited')

  await limits.setGlobal({ limits: ['1/minute'] })
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal((await app.inject('/health')).statusCode, 429, 'the global tier still applies to a service-exempt route')
})

t.test('runtime changes of record @service are followed live', async t => {
  const { app, engine } = await buildApp(t, routes)
  const backend = engine.backend
  const codes = async (n: number, remoteAddress: string) => {
    const out: number[] = []
    for (let i = 0; i < n; i++) out.push((await app.inject({ url: '/b', remoteAddress })).statusCode)
    return out
  }
  t.same(await codes(3, '10.1.0.1'), [200, 200, 200], 'no service tier yet')
  // as a service's backend applies the server's change
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', tier(['2/minute']))
  t.same(await codes(3, '10.1.0.2'), [200, 200, 429], 'set')
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', tier(['3/minute']))
  t.same(await codes(4, '10.1.0.3'), [200, 200, 200, 429], 'changed')
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', tier(['3/minute'], ['GET:/b']))
  t.same(await codes(5, '10.1.0.3'), [200, 200, 200, 200, 200], 'exempted')
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', tier(['1/minute'], [], false))
  t.same(await codes(3, '10.1.0.4'), [200, 200, 200], 'disabled')
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', tier(['1/minute']))
  t.same(await codes(2, '10.1.0.5'), [200, 429], 'enabled again')
  await backend.deleteRecord(RATE_LIMIT_NAMESPACE, '@service')
  t.same(await codes(3, '10.1.0.6'), [200, 200, 200], 'deleted')
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service:orders', tier(['1/minute']))
  t.same(await codes(2, '10.1.0.7'), [200, 200], 'another service\u2019s policy does not apply here')
})

t.test('a store answering with promises: every tier is checked in order, then the handler runs', async t => {
  const memory = createMemoryRateLimitStore()
  let checks = 0
  const store: RateLimitStore = Object.assign(Object.create(memory) as RateLimitStore, {
    check (...args: Parameters<RateLimitStore['check']>) {
      checks++
      return Promise.resolve(memory.check(...args))
    }
  })
  const { app } = await buildApp(t, app => {
    app.get('/k', { config: { waygate: { rateLimit: { limit: '2/minute', key: async (r: import('fastify').FastifyRequest) => r.headers['x-user'] as string } } } }, ok)
  }, { plugin: { rateLimit: { store } } })
  const limits = app.waygateRateLimits
  await limits.setGlobal({ limits: ['10/minute'] })
  await limits.setService({ limits: ['3/minute'] })
  const hit = (user: string) => app.inject({ url: '/k', headers: { 'x-user': user } })
  t.equal((await hit('u1')).statusCode, 200)
  t.equal(checks, 3, 'global, service and route each checked once')
  t.equal((await hit('u1')).statusCode, 200)
  const third = await hit('u1')
  t.equal(third.statusCode, 429)
  t.equal(third.json().error.limit, '2/minute', 'the route, with its async key, after both tiers passed')
  t.equal((await hit('u2')).statusCode, 429, 'the service tier counts by address whatever the route key')
  t.equal(limits.blocked()[0]?.key, '@service')
  t.equal(checks, 11, 'no tier after a refusing one is checked')
})
