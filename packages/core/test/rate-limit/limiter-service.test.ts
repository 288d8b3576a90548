import t from 'tap'
import {
  createEngine,
  createMemoryBackend,
  createRateLimiter,
  RATE_LIMIT_NAMESPACE,
  SERVICE_RATE_LIMIT_ID,
  type WaygateEngine
} from '@waygate/core'

async function setup (t: { teardown: (fn: () => unknown) => void }, serviceId?: string): Promise<{ engine: WaygateEngine, limiter: ReturnType<typeof createRateLimiter> }> {
  const engine = createEngine({ backend: createMemoryBackend() })
  await engine.start()
  const limiter = createRateLimiter(engine, serviceId === undefined ? {} : { serviceId })
  await limiter.start()
  t.teardown(async () => {
    await limiter.close()
    await engine.close()
  })
  return { engine, limiter }
}

const record = (limits: string[], enabled = true, exemptRoutes: string[] = []) => ({ policy: { key: '@service', limits }, enabled, exemptRoutes })

t.test('the service policy follows record @service live: set, disabled, deleted', async t => {
  const { engine, limiter } = await setup(t)
  t.equal(limiter.serviceId, SERVICE_RATE_LIMIT_ID)
  t.equal(SERVICE_RATE_LIMIT_ID, '@service')
  t.equal(limiter.activeService(), null)
  // written as a service's backend would apply a change from the server
  await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', record(['5/minute'], true, ['GET:/health']))
  const active = limiter.activeService()
  t.ok(active, 'followed without a restart')
  t.equal(active!.compiled.key, '@service')
  t.equal(active!.compiled.rule.limits[0]!.text, '5/minute')
  t.same([...active!.exempt], ['GET:/health'])
  t.match(limiter.getService(), { enabled: true, exemptRoutes: ['GET:/health'] })
  t.equal(limiter.activeGlobal(), null, 'the global tier is another record')
  t.same(limiter.list(), [], 'not listed as a route policy')

  await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', record(['5/minute'], false))
  t.equal(limiter.activeService(), null, 'disabled')
  t.match(limiter.getService(), { enabled: false })
  await engine.backend.deleteRecord(RATE_LIMIT_NAMESPACE, '@service')
  t.equal(limiter.getService(), null, 'deleted')
})

t.test('a stored service policy is loaded at start, and a broken one is ignored', async t => {
  const backend = createMemoryBackend()
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', record(['2/second']))
  const engine = createEngine({ backend })
  await engine.start()
  const limiter = createRateLimiter(engine)
  await limiter.start()
  t.teardown(async () => { await limiter.close(); await engine.close() })
  t.equal(limiter.activeService()?.compiled.rule.limits[0]?.text, '2/second')
  await backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', record(['lots/second']))
  t.equal(limiter.activeService()?.compiled.rule.limits[0]?.text, '2/second', 'the last good policy stays')
})

t.test('setService, setServiceEnabled, resetService and deleteService write record @service, audited', async t => {
  const { engine, limiter } = await setup(t)
  const set = await limiter.setService({ limits: ['10/minute'] }, { exemptRoutes: ['get:/health', '/metrics'] }, { actor: 'ops', platform: 'cli' })
  t.same(set.exemptRoutes, ['GET:/health', '/metrics'])
  t.equal(set.policy.key, '@service')
  t.match(await engine.backend.getRecord(RATE_LIMIT_NAMESPACE, '@service'), { value: { enabled: true, exemptRoutes: ['GET:/health', '/metrics'] } })
  t.ok(limiter.activeService())
  t.match((await engine.listAudit({ key: '*' }))[0], { action: 'rate_limit_set', actor: 'ops', platform: 'cli', reason: 'service: 10/minute', service: null },
    'audited under the global key, as readers of the audit log expect a route key or *')

  const kept = await limiter.setService({ limits: ['20/minute'] })
  t.same(kept.exemptRoutes, ['GET:/health', '/metrics'], 'exemptions kept when not given')
  await limiter.setServiceEnabled(false)
  t.equal(limiter.activeService(), null)
  await limiter.resetService('1.2.3.4')
  t.ok(await engine.backend.getRecord(RATE_LIMIT_NAMESPACE, 'reset:@service'), 'the reset reaches other instances')
  t.equal(await limiter.deleteService(), true)
  t.equal(await limiter.deleteService(), false)
  t.equal(limiter.getService(), null)
  await t.rejects(limiter.setServiceEnabled(true), { code: 'WG_ERR_INPUT_INVALID' })
  await t.rejects(limiter.setService({ limits: ['often'] }), { code: 'WG_ERR_RATE_LIMIT_INVALID' })
  await t.rejects(limiter.setService({ limits: ['1/second'] }, { exemptRoutes: ['nope'] }), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
})

t.test('serviceId @service:<name>: follows that service only, exemptions are its own routes', async t => {
  const { engine, limiter } = await setup(t, '@service:payments')
  await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, '@service:orders', record(['1/minute']))
  await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, '@service', record(['1/minute']))
  t.equal(limiter.activeService(), null, 'other services\u2019 policies and the unnamed id are not its own')
  t.same(limiter.list(), [], 'nor are they taken for route policies')
  const set = await limiter.setService({ limits: ['3/minute'] }, { exemptRoutes: ['payments:GET:/health', 'GET:/ping'] })
  t.same(set.exemptRoutes, ['GET:/health', 'GET:/ping'], 'its own qualifier is dropped')
  t.ok(await engine.backend.getRecord(RATE_LIMIT_NAMESPACE, '@service:payments'))
  t.equal(limiter.activeService()?.compiled.key, '@service:payments')
  t.match((await engine.listAudit({ key: '*' }))[0], { action: 'rate_limit_set', service: 'payments', reason: 'service: 3/minute' })
  await t.rejects(limiter.setService({ limits: ['3/minute'] }, { exemptRoutes: ['orders:GET:/health'] }),
    { code: 'WG_ERR_INPUT_INVALID', message: /service orders, not of payments/ })
})

t.test('serviceId must be @service or @service:<service name>', async t => {
  const engine = createEngine()
  t.teardown(() => engine.close())
  for (const bad of ['', '*', 'service', '@service:', '@service:Payments', '@service:get', '@svc']) {
    t.throws(() => createRateLimiter(engine, { serviceId: bad }), { code: 'WG_ERR_INPUT_INVALID' }, bad)
  }
})

t.test('route policies take service-qualified keys: stored canonical, audited with the service', async t => {
  const { engine, limiter } = await setup(t)
  await limiter.setPolicy({ key: 'payments:get:/api/payments', limits: ['5/minute'] }, { actor: 'ops' })
  t.ok(await engine.backend.getRecord(RATE_LIMIT_NAMESPACE, 'payments:GET:/api/payments'))
  t.equal(limiter.policyFor('payments:GET:/api/payments')?.rule.limits[0]?.text, '5/minute')
  t.match((await engine.listAudit({ key: 'payments:GET:/api/payments' }))[0], { action: 'rate_limit_set', service: 'payments' })
  await limiter.reset('payments:GET:/api/payments')
  t.match((await engine.listAudit({ key: 'payments:GET:/api/payments' }))[0], { action: 'rate_limit_reset', service: 'payments' })
  t.equal(await limiter.deletePolicy('payments:GET:/api/payments'), true)
  t.equal(limiter.policyFor('payments:GET:/api/payments'), null)
  await t.rejects(limiter.setPolicy({ key: 'Payments:GET:/x', limits: ['1/minute'] }), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
  await limiter.setPolicy({ key: 'GET:/plain', limits: ['1/minute'] })
  t.match((await engine.listAudit({ key: 'GET:/plain' }))[0], { service: null }, 'unqualified keys as before')
})
