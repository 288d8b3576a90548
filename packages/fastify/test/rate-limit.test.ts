import t from 'tap'
import Fastify from 'fastify'
import { createEngine, createMemoryRateLimitStore } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { buildApp, fakeClock } from './helpers/app.js'

const ok = async () => ({ ok: true })

t.test('a route limit answers 429 with the DESIGN body, Retry-After and draft headers', async t => {
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const { app } = await buildApp(t, app => {
    app.get('/posts', { config: { waygate: { rateLimit: { limit: '3/minute', algorithm: 'fixed_window' } } } }, ok)
    app.get('/free', ok)
  }, { engine: { now: clock.now }, plugin: { rateLimit: { store: createMemoryRateLimitStore({ now: clock.now }) } } })
  for (let i = 0; i < 3; i++) {
    const res = await app.inject('/posts')
    t.equal(res.statusCode, 200)
    t.equal(res.headers['ratelimit-policy'], '"route";q=3;w=60')
    t.equal(res.headers.ratelimit, `"route";r=${2 - i};t=60`)
  }
  clock.advance(15_000)
  const refused = await app.inject('/posts?page=2')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '45')
  t.same(refused.json(), {
    error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests', limit: '3/minute', retryAfterSeconds: 45, resetAt: '2030-01-01T00:01:00.000Z', path: '/posts' }
  })
  t.notOk((await app.inject('/free')).headers.ratelimit, 'routes without a limit carry no headers')
  clock.advance(45_000)
  t.equal((await app.inject('/posts')).statusCode, 200, 'a new window')
})

t.test('burst really adds to the allowance, per client address', async t => {
  const clock = fakeClock()
  const { app } = await buildApp(t, app => {
    app.get('/x', { config: { waygate: { rateLimit: { limit: '5/minute', burst: 3 } } } }, ok)
  }, { engine: { now: clock.now }, plugin: { rateLimit: { store: createMemoryRateLimitStore({ now: clock.now }) } } })
  const codes: number[] = []
  for (let i = 0; i < 9; i++) codes.push((await app.inject({ url: '/x', remoteAddress: '10.0.0.1' })).statusCode)
  t.same(codes, [200, 200, 200, 200, 200, 200, 200, 200, 429], '5/minute + burst 3 = 8 before the first 429')
  t.equal((await app.inject({ url: '/x', remoteAddress: '10.0.0.2' })).statusCode, 200, 'another client has its own counter')
})

t.test('IPv6 clients are grouped by /64 and exemptIps takes CIDRs', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/x', { config: { waygate: { rateLimit: { limit: '1/minute', exemptIps: ['192.168.0.0/16'] } } } }, ok)
  })
  t.equal((await app.inject({ url: '/x', remoteAddress: '2001:db8:1:2::1' })).statusCode, 200)
  t.equal((await app.inject({ url: '/x', remoteAddress: '2001:db8:1:2::ffff' })).statusCode, 429, 'same /64')
  t.equal((await app.inject({ url: '/x', remoteAddress: '2001:db8:1:3::1' })).statusCode, 200, 'another /64')
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/x', remoteAddress: '192.168.4.4' })).statusCode, 200, 'exempt')
})

t.test('the address follows Fastify trustProxy: X-Forwarded-For counts only when trusted', async t => {
  for (const trustProxy of [false, true]) {
    const app = Fastify({ trustProxy })
    t.teardown(() => app.close())
    await app.register(waygate, { engine: createEngine(), closeEngine: true })
    app.get('/x', { config: { waygate: { rateLimit: '1/minute' } } }, ok)
    await app.ready()
    await app.inject({ url: '/x', headers: { 'x-forwarded-for': '203.0.113.1' } })
    const second = await app.inject({ url: '/x', headers: { 'x-forwarded-for': '203.0.113.2' } })
    t.equal(second.statusCode, trustProxy ? 200 : 429, `trustProxy ${String(trustProxy)}`)
  }
})

t.test('keys: user, api_key with fallback, global, custom sync and async; missing key policies', async t => {
  const { app } = await buildApp(t, app => {
    app.addHook('onRequest', async (request) => {
      const user = request.headers['x-user']
      if (typeof user === 'string') (request as unknown as { user: { id: string } }).user = { id: user }
    })
    app.get('/user', { config: { waygate: { rateLimit: { limit: '1/minute', key: 'user' } } } }, ok)
    app.get('/user-block', { config: { waygate: { rateLimit: { limit: '1/minute', key: 'user', onMissingKey: 'block' } } } }, ok)
    app.get('/apikey', { config: { waygate: { rateLimit: { limit: '1/minute', key: 'api_key' } } } }, ok)
    app.get('/global', { config: { waygate: { rateLimit: { limit: '2/minute', key: 'global' } } } }, ok)
    app.get('/custom/:tenant', { config: { waygate: { rateLimit: { limit: '1/minute', key: (r) => (r.params as { tenant: string }).tenant } } } }, ok)
    app.get('/async', { config: { waygate: { rateLimit: { limit: '1/minute', key: async (r) => r.headers['x-tenant'] as string | undefined } } } }, ok)
  })
  const get = (url: string, headers: Record<string, string> = {}, remoteAddress = '127.0.0.1') => app.inject({ url, headers, remoteAddress }).then(r => r.statusCode)
  t.equal(await get('/user', { 'x-user': 'a' }), 200)
  t.equal(await get('/user', { 'x-user': 'a' }), 429)
  t.equal(await get('/user', { 'x-user': 'b' }), 200)
  t.equal(await get('/user'), 200, 'no user: exempt by default')
  t.equal(await get('/user'), 200)
  t.equal(await get('/user-block'), 429, 'onMissingKey block')
  t.equal(await get('/apikey', { 'x-api-key': 'k1' }), 200)
  t.equal(await get('/apikey', { 'x-api-key': 'k1' }), 429)
  t.equal(await get('/apikey', {}, '10.1.1.1'), 200, 'no key: counted by address')
  t.equal(await get('/apikey', {}, '10.1.1.1'), 429)
  t.equal(await get('/global', {}, '1.1.1.1'), 200)
  t.equal(await get('/global', {}, '2.2.2.2'), 200)
  t.equal(await get('/global', {}, '3.3.3.3'), 429, 'one counter for everyone')
  t.equal(await get('/custom/acme'), 200)
  t.equal(await get('/custom/acme'), 429)
  t.equal(await get('/custom/globex'), 200)
  t.equal(await get('/async', { 'x-tenant': 't1' }), 200)
  t.equal(await get('/async', { 'x-tenant': 't1' }), 429)
})

t.test('tiers: resolver or the plan property; unlimited; unknown tier gets the first', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/reports', {
      config: { waygate: { rateLimit: { tiers: { free: '1/minute', pro: '3/minute', enterprise: 'unlimited' }, tierResolver: r => r.headers['x-plan'] as string } } }
    }, ok)
  })
  const hit = async (plan: string, n: number) => {
    const codes: number[] = []
    for (let i = 0; i < n; i++) codes.push((await app.inject({ url: '/reports', headers: { 'x-plan': plan }, remoteAddress: `10.0.0.${plan.length}` })).statusCode)
    return codes
  }
  t.same(await hit('free', 2), [200, 429])
  t.same(await hit('pro', 4), [200, 200, 200, 429])
  t.same(await hit('enterprise', 5), [200, 200, 200, 200, 200])
  t.same(await hit('nonsense', 2), [200, 429], 'unknown tier is the first')
})

t.test('several limits, cost, and legacy headers', async t => {
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const { app } = await buildApp(t, app => {
    app.get('/multi', { config: { waygate: { rateLimit: { limit: ['2/second', '3/minute'], algorithm: 'fixed_window' } } } }, ok)
    app.get('/cost', { config: { waygate: { rateLimit: { limit: '10/minute', cost: r => Number(r.headers['x-cost'] ?? 1) } } } }, ok)
  }, { engine: { now: clock.now }, plugin: { rateLimit: { headers: 'legacy', store: createMemoryRateLimitStore({ now: clock.now }) } } })
  t.equal((await app.inject('/multi')).statusCode, 200)
  const second = await app.inject('/multi')
  t.equal(second.headers['x-ratelimit-limit'], '2')
  t.equal(second.headers['x-ratelimit-remaining'], '0')
  t.notOk(second.headers.ratelimit, 'no draft headers in legacy mode')
  t.equal((await app.inject('/multi')).statusCode, 429, '2/second')
  clock.advance(1000)
  t.equal((await app.inject('/multi')).statusCode, 200)
  clock.advance(1000)
  const minute = await app.inject('/multi')
  t.equal(minute.statusCode, 429, '3/minute')
  t.equal(minute.json().error.limit, '3/minute')
  t.equal((await app.inject({ url: '/cost', headers: { 'x-cost': '8' } })).statusCode, 200)
  t.equal((await app.inject({ url: '/cost', headers: { 'x-cost': '3' } })).statusCode, 429)
  t.equal((await app.inject({ url: '/cost', headers: { 'x-cost': '2' } })).statusCode, 200)
})

t.test('lifecycle first: a route in maintenance answers 503 and consumes no quota; enabling resets counters', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/x', { config: { waygate: { rateLimit: '2/minute' } } }, ok)
  })
  t.equal((await app.inject('/x')).statusCode, 200)
  await engine.setMaintenance('GET:/x')
  for (let i = 0; i < 5; i++) t.equal((await app.inject('/x')).statusCode, 503)
  await engine.enable('GET:/x')
  t.equal((await app.inject('/x')).statusCode, 200, 'counters reset on enable')
  t.equal((await app.inject('/x')).statusCode, 200)
  t.equal((await app.inject('/x')).statusCode, 429)
})

t.test('custom 429 responses per route and plugin-wide; a throwing one falls back', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/own', { config: { waygate: { rateLimit: { limit: '1/minute', response: (r, reply, c) => ({ slowDown: c.retryAfterSeconds > 0, limit: c.limit }) } } } }, ok)
    app.get('/shared', { config: { waygate: { rateLimit: '1/minute' } } }, ok)
    app.get('/broken', { config: { waygate: { rateLimit: { limit: '1/minute', response: () => { throw new Error('x') } } } } }, ok)
  }, { plugin: { responses: { rateLimited: async (r, reply) => { reply.type('text/plain'); return 'shared 429' } } } })
  for (const url of ['/own', '/shared', '/broken']) await app.inject(url)
  const own = await app.inject('/own')
  t.equal(own.statusCode, 429)
  t.same(own.json(), { slowDown: true, limit: '1/minute' })
  t.equal((await app.inject('/shared')).body, 'shared 429')
  const broken = await app.inject('/broken')
  t.equal(broken.statusCode, 429)
  t.equal(broken.json().error.code, 'RATE_LIMIT_EXCEEDED')
})

t.test('runtime policies override config, are audited, survive in the backend and can be deleted', async t => {
  const { app, engine } = await buildApp(t, app => {
    app.get('/x', { config: { waygate: { rateLimit: '1/minute' } } }, ok)
    app.get('/y', ok)
  })
  const limits = app.waygateRateLimits
  await limits.setPolicy({ key: 'GET:/x', limits: ['3/minute'] }, { actor: 'ops', platform: 'cli' })
  await limits.setPolicy({ key: 'GET:/y', limits: ['1/minute'] })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject({ url: '/x', remoteAddress: '9.9.9.9' })).statusCode)
  t.same(codes, [200, 200, 200, 429], 'runtime 3/minute beats config 1/minute')
  t.equal((await app.inject('/y')).statusCode, 200)
  t.equal((await app.inject('/y')).statusCode, 429, 'a route without config limits gets one at runtime')
  t.same(limits.list().map(p => [p.key, p.source]), [['GET:/x', 'runtime'], ['GET:/y', 'runtime']])
  t.ok(await engine.backend.getRecord('waygate:rate-limits', 'GET:/x'), 'stored in the backend')
  t.match((await engine.listAudit({ key: 'GET:/x' }))[0], { action: 'rate_limit_set', actor: 'ops', platform: 'cli', reason: '3/minute' })
  t.equal(await limits.deletePolicy('GET:/x'), true)
  t.same(limits.list().find(p => p.key === 'GET:/x')?.source, 'config', 'the config applies again')
  await limits.reset('GET:/y')
  t.equal((await app.inject('/y')).statusCode, 200, 'reset clears counters')
  await t.rejects(limits.setPolicy({ key: 'GET:/x', limits: ['lots/minute'] }), { code: 'WG_ERR_RATE_LIMIT_INVALID' })
})

t.test('the global policy is checked before the route\'s, with exempt routes', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/a', ok)
    app.get('/b', { config: { waygate: { rateLimit: '5/minute' } } }, ok)
    app.get('/health', ok)
  })
  await app.waygateRateLimits.setGlobal({ limits: ['2/minute'] }, { exemptRoutes: ['GET:/health'] })
  t.equal((await app.inject('/a')).statusCode, 200)
  const b = await app.inject('/b')
  t.equal(b.statusCode, 200)
  const third = await app.inject('/a')
  t.equal(third.statusCode, 429)
  t.equal(third.json().error.limit, '2/minute')
  for (let i = 0; i < 4; i++) t.equal((await app.inject('/health')).statusCode, 200, 'exempt from the global policy')
  await app.waygateRateLimits.setGlobalEnabled(false)
  t.equal((await app.inject('/a')).statusCode, 200, 'disabled global policy')
  const blocked = app.waygateRateLimits.blocked()
  t.match(blocked[0], { key: '*', path: '/a', limit: '2/minute', client: '127.0.0.1' })
})

t.test('an invalid rate limit in route config fails ready() naming the route', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine: createEngine(), closeEngine: true })
  app.get('/a', { config: { waygate: { rateLimit: '100/fortnight' } } }, ok)
  app.get('/b', { config: { waygate: { rateLimit: { limit: '1/minute', algorithm: 'leaky' as never } } } }, ok)
  await t.rejects(async () => { await app.ready() }, { code: 'WG_ERR_ROUTE_CONFIG_INVALID', message: /GET:\/a.*fortnight.*GET:\/b.*algorithm/s })
})

t.test('resetting one client of a tiered policy frees it whatever its tier', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/r', { config: { waygate: { rateLimit: { tiers: { free: '1/minute', pro: '2/minute' }, tierResolver: r => r.headers['x-plan'] as string } } } }, ok)
  })
  const hit = () => app.inject({ url: '/r', headers: { 'x-plan': 'free' }, remoteAddress: '10.9.9.9' }).then(r => r.statusCode)
  t.equal(await hit(), 200)
  t.equal(await hit(), 429)
  await app.waygateRateLimits.reset('GET:/r', '10.9.9.9')
  t.equal(await hit(), 200)
})
