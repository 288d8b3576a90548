import t from 'tap'
import { createEngine, createMemoryBackend, MAX_REASON_LENGTH, PASS, WG_ERR_BACKEND_UNAVAILABLE } from '@waygate/core'
import type { EngineEvent, WaygateBackend, WaygateLogger } from '@waygate/core'
import { createClock, HOUR } from './helpers/clock.js'
import { setup } from './helpers/engine.js'
import { createFailingBackend } from './helpers/failing-backend.js'
import { routeState } from './helpers/states.js'

const EPOCH_2030 = Date.parse('2030-01-01T00:00:00Z') / 1000

t.test('createEngine rejects bad options by code', async t => {
  t.throws(() => createEngine({ env: '' }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createEngine({ resyncIntervalMs: -1 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createEngine({ resyncIntervalMs: 1.5 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createEngine({ now: 42 as unknown as () => number }), { code: 'WG_ERR_OPTIONS_INVALID' })
})

t.test('defaults: env dev, memory backend, no bypass', async t => {
  const engine = createEngine({ resyncIntervalMs: 0 })
  t.teardown(() => engine.close())
  await engine.start()
  t.equal(engine.env, 'dev')
  t.equal(engine.testBypass, false)
  t.match(await engine.status(), { backend: 'memory', healthy: true, lastError: null, env: 'dev', routes: 0, testBypass: false })
})

t.test('start() is idempotent', async t => {
  const { engine } = await setup(t)
  await engine.start()
  await engine.start()
  t.equal((await engine.status()).healthy, true)
})

t.test('declared routes get their initial state', async t => {
  const { engine } = await setup(t, { env: 'production' })
  const plain = engine.declareRoute('GET', '/health')
  const maint = engine.declareRoute('GET', '/payments', { maintenance: { reason: 'DB migration' } })
  const off = engine.declareRoute('delete', '/users/:id', { disabled: { reason: 'use archive' } })
  const debug = engine.declareRoute('GET', '/debug', { envOnly: ['dev', 'staging'] })
  const old = engine.declareRoute('GET', '/v1/users', {
    deprecated: { sunset: '2031-01-01T00:00:00Z', successor: '/v2/users', reason: 'v2 is out' }
  })
  await engine.registerDeclaredRoutes()

  t.equal(engine.decide(plain), PASS)
  t.match(engine.decide(maint), { action: 'block', kind: 'maintenance', reason: 'DB migration', global: false, retryAt: null })
  t.equal(off.key, 'DELETE:/users/:id', 'the method is upper-cased in the key')
  t.match(engine.decide(off), { action: 'block', kind: 'disabled', reason: 'use archive' })
  t.match(engine.decide(debug), { action: 'block', kind: 'env_gated' }, 'production is not an allowed env')
  t.same(engine.decide(old), {
    action: 'deprecated',
    deprecation: `@${EPOCH_2030}`,
    sunset: 'Wed, 01 Jan 2031 00:00:00 GMT',
    link: '</v2/users>; rel="successor-version"'
  })

  t.match(engine.getState('GET:/payments'), { status: 'maintenance', reason: 'DB migration', updatedBy: 'config', method: 'GET', path: '/payments' })
  t.match(engine.getState('DELETE:/users/:id'), { status: 'disabled' })
  t.match(engine.getState('GET:/debug'), { status: 'env_gated', allowedEnvs: ['dev', 'staging'] })
  t.match(engine.getState('GET:/v1/users'), { status: 'deprecated', sunset: '2031-01-01T00:00:00.000Z', successor: '/v2/users' })
})

t.test('an env-gated route passes in an allowed env', async t => {
  const { engine } = await setup(t, { env: 'staging' })
  const debug = engine.declareRoute('GET', '/debug', { envOnly: ['dev', 'staging'] })
  await engine.registerDeclaredRoutes()
  t.equal(engine.decide(debug), PASS)
})

t.test('declaring a route twice returns the same handle', async t => {
  const { engine } = await setup(t)
  const a = engine.declareRoute('GET', '/x', { disabled: {} })
  const b = engine.declareRoute('get', '/x')
  t.equal(a, b)
})

t.test('invalid declarations are rejected at declaration, by code', async t => {
  const { engine } = await setup(t)
  const bad = [
    { maintenanse: { reason: 'typo' } },
    { envOnly: [] },
    { envOnly: ['prod uction'] },
    { disabled: { reason: 'x'.repeat(MAX_REASON_LENGTH + 1) } },
    { maintenance: { start: '2030-01-02T00:00:00Z', end: '2030-01-01T00:00:00Z' } },
    { maintenance: { start: 'soon' } },
    { deprecated: { sunset: 'someday' } },
    { forceActive: 'yes' }
  ]
  for (const declaration of bad) {
    t.throws(() => engine.declareRoute('GET', '/bad', declaration as never), { code: 'WG_ERR_INPUT_INVALID', message: /GET:\/bad/ },
      JSON.stringify(declaration))
  }
  t.equal(engine.getState('GET:/bad'), null, 'nothing was declared')
})

t.test('mutations change decisions at once', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()

  const [disabled] = await engine.disable('GET:/payments', { reason: 'fraud', actor: 'alice', platform: 'cli' })
  t.match(disabled, { key: 'GET:/payments', status: 'disabled', reason: 'fraud', updatedBy: 'alice', updatedAt: clock.iso() })
  t.match(engine.decide(h), { action: 'block', kind: 'disabled', reason: 'fraud' })

  clock.advance(HOUR)
  await engine.setMaintenance('GET:/payments', { reason: 'migration' })
  t.match(engine.decide(h), { action: 'block', kind: 'maintenance', reason: 'migration', retryAt: null })
  t.match(engine.getState('GET:/payments'), { status: 'maintenance', updatedAt: clock.iso() })

  await engine.setEnvOnly('GET:/payments', ['staging'])
  t.match(engine.decide(h), { action: 'block', kind: 'env_gated' })
  await engine.setEnvOnly('GET:/payments', ['dev', 'staging'])
  t.equal(engine.decide(h), PASS)

  clock.advance(HOUR)
  await engine.deprecate('GET:/payments', { sunset: new Date('2031-06-30T00:00:00Z'), successor: 'https://api.example.com/v2/payments' })
  t.same(engine.decide(h), {
    action: 'deprecated',
    deprecation: `@${EPOCH_2030 + 2 * 3600}`,
    sunset: 'Mon, 30 Jun 2031 00:00:00 GMT',
    link: '<https://api.example.com/v2/payments>; rel="successor-version"'
  })

  const [enabled] = await engine.enable('GET:/payments')
  t.match(enabled, { status: 'active', reason: '', allowedEnvs: [], sunset: null, successor: null, window: null })
  t.equal(engine.decide(h), PASS)
})

t.test('route keys in mutations', async t => {
  const { engine } = await setup(t)
  const get = engine.declareRoute('GET', '/payments')
  const post = engine.declareRoute('POST', '/payments')
  const user = engine.declareRoute('GET', '/users/:id')
  await engine.registerDeclaredRoutes()

  t.test('a bare path naming several methods is ambiguous and changes nothing', async t => {
    await t.rejects(engine.disable('/payments'), { code: 'WG_ERR_ROUTE_AMBIGUOUS', statusCode: 409, message: /GET:\/payments, POST:\/payments/ })
    t.equal(engine.decide(get), PASS)
    t.equal(engine.decide(post), PASS)
  })

  t.test('all: true applies to every method', async t => {
    const changed = await engine.disable('/payments', { all: true, reason: 'outage' })
    t.same(changed.map(s => s.key), ['GET:/payments', 'POST:/payments'])
    t.match(engine.decide(get), { kind: 'disabled' })
    t.match(engine.decide(post), { kind: 'disabled' })
    await engine.enable('/payments', { all: true })
    t.equal(engine.decide(get), PASS)
  })

  t.test('a bare path naming one method key resolves to it', async t => {
    const [state] = await engine.setMaintenance('/users/:id')
    t.equal(state?.key, 'GET:/users/:id')
    t.match(engine.decide(user), { kind: 'maintenance' })
    await engine.enable('get:/users/:id')
    t.equal(engine.decide(user), PASS)
  })

  t.test('an unknown key is a 404', async t => {
    await t.rejects(engine.disable('DELETE:/payments'), { code: 'WG_ERR_ROUTE_NOT_FOUND', statusCode: 404 })
    await t.rejects(engine.disable('/nowhere'), { code: 'WG_ERR_ROUTE_NOT_FOUND', statusCode: 404 })
    t.equal(engine.getState('DELETE:/payments'), null)
  })

  t.test('a malformed key is a 400', async t => {
    await t.rejects(engine.disable('payments'), { code: 'WG_ERR_ROUTE_KEY_INVALID', statusCode: 400 })
  })

  t.test('resolveKeys answers what a key names', async t => {
    t.same(engine.resolveKeys('/payments', true), ['GET:/payments', 'POST:/payments'])
    t.throws(() => engine.resolveKeys('/payments'), { code: 'WG_ERR_ROUTE_AMBIGUOUS' })
  })
})

t.test('force-active routes', async t => {
  const { engine, backend } = await setup(t)
  const health = engine.declareRoute('GET', '/health', { forceActive: true })
  const other = engine.declareRoute('POST', '/health')
  await engine.registerDeclaredRoutes()

  t.test('refuse every mutation by code and stay active', async t => {
    const attempts = {
      enable: () => engine.enable('GET:/health'),
      disable: () => engine.disable('GET:/health'),
      setMaintenance: () => engine.setMaintenance('GET:/health'),
      schedule: () => engine.schedule('GET:/health', { start: '2030-01-01T01:00:00Z', end: '2030-01-01T02:00:00Z' }),
      cancelSchedule: () => engine.cancelSchedule('GET:/health'),
      setEnvOnly: () => engine.setEnvOnly('GET:/health', ['staging']),
      deprecate: () => engine.deprecate('GET:/health')
    }
    for (const [name, attempt] of Object.entries(attempts)) {
      await t.rejects(attempt(), { code: 'WG_ERR_ROUTE_FORCE_ACTIVE', statusCode: 409 }, name)
    }
    t.equal(engine.decide(health), PASS)
    t.match(engine.getState('GET:/health'), { status: 'active', forceActive: true })
    t.same(await backend.listAudit({ key: 'GET:/health' }), [], 'nothing audited')
  })

  t.test('with all: true, one force-active match refuses the whole change', async t => {
    await t.rejects(engine.disable('/health', { all: true }), { code: 'WG_ERR_ROUTE_FORCE_ACTIVE' })
    t.equal(engine.decide(other), PASS, 'the other method was not changed either')
  })

  t.test('pass under global maintenance unless includeForceActive', async t => {
    await engine.enableGlobalMaintenance({ reason: 'upgrade' })
    t.equal(engine.decide(health), PASS)
    t.match(engine.decide(other), { action: 'block', global: true })
    await engine.enableGlobalMaintenance({ reason: 'upgrade', includeForceActive: true })
    t.match(engine.decide(health), { action: 'block', kind: 'maintenance', global: true, reason: 'upgrade' })
    await engine.disableGlobalMaintenance()
    t.equal(engine.decide(health), PASS)
  })
})

t.test('force-active follows the code, not a stale stored flag', async t => {
  const backend = createMemoryBackend()
  await backend.registerRoutes([routeState('GET:/health', { forceActive: true })])
  const { engine } = await setup(t, { backend })
  const h = engine.declareRoute('GET', '/health')
  await engine.registerDeclaredRoutes()
  await engine.disable('GET:/health')
  t.match(engine.decide(h), { kind: 'disabled' })
})

t.test('global maintenance', async t => {
  const { engine, clock } = await setup(t)
  const payments = engine.declareRoute('GET', '/payments')
  const health = engine.declareRoute('GET', '/health')
  const hook = engine.declareRoute('POST', '/webhooks')
  const hookGet = engine.declareRoute('GET', '/webhooks')
  const gone = engine.declareRoute('GET', '/gone', { disabled: { reason: 'removed' } })
  await engine.registerDeclaredRoutes()

  t.equal(engine.decideUnmatched('/nope', 'GET'), PASS, 'unmatched paths pass while it is off')

  const global = await engine.enableGlobalMaintenance({ reason: 'v2 launch', exemptPaths: ['/health', 'post:/webhooks'], actor: 'ops', platform: 'dashboard' })
  t.same(global, { enabled: true, reason: 'v2 launch', exemptPaths: ['/health', 'POST:/webhooks'], includeForceActive: false, since: clock.iso() })
  t.same(engine.getGlobal(), global)

  t.match(engine.decide(payments), { action: 'block', kind: 'maintenance', reason: 'v2 launch', global: true, key: 'GET:/payments' })
  t.match(engine.decide(gone), { action: 'block', kind: 'maintenance', global: true }, 'global maintenance wins over a disabled route')
  t.equal(engine.decide(health), PASS, 'exempt by bare path')
  t.equal(engine.decide(hook), PASS, 'exempt by method key')
  t.match(engine.decide(hookGet), { action: 'block' }, 'another method of an exempt key is not exempt')

  t.test('unmatched paths are blocked, except CORS preflights and exempt paths', async t => {
    t.match(engine.decideUnmatched('/nope', 'GET'), { action: 'block', kind: 'maintenance', key: '*', global: true, reason: 'v2 launch' })
    t.match(engine.decideUnmatched('/nope', 'POST'), { action: 'block' })
    t.equal(engine.decideUnmatched('/nope', 'OPTIONS', true), PASS)
    t.equal(engine.decideUnmatched('/nope', 'OPTIONS').action, 'block', 'a plain OPTIONS is not a preflight')
    t.equal(engine.decideUnmatched('/health', 'GET'), PASS)
    t.equal(engine.decideUnmatched('/health?verbose=1', 'GET'), PASS, 'the query string does not defeat an exemption')
    t.equal(engine.decideUnmatched('/webhooks', 'POST'), PASS)
    t.match(engine.decideUnmatched('/webhooks', 'GET'), { action: 'block' })
  })

  t.test('enabling again keeps since and, without exemptPaths, the exempt list', async t => {
    clock.advance(HOUR)
    const again = await engine.enableGlobalMaintenance({ reason: 'still launching' })
    t.equal(again.since, global.since)
    t.same(again.exemptPaths, ['/health', 'POST:/webhooks'])
    t.match(engine.decide(payments), { reason: 'still launching' })
  })

  t.test('exempt paths can be added and removed while it is on', async t => {
    await engine.addGlobalExempt(['GET:/payments'])
    t.equal(engine.decide(payments), PASS)
    await engine.removeGlobalExempt(['GET:/payments', '/health'])
    t.match(engine.decide(payments), { action: 'block' })
    t.match(engine.decide(health), { action: 'block' })
    t.same(engine.getGlobal().exemptPaths, ['POST:/webhooks'])
    await t.rejects(engine.addGlobalExempt(['health']), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
    await t.rejects(engine.addGlobalExempt('/health' as unknown as string[]), { code: 'WG_ERR_INPUT_INVALID' })
    await t.rejects(engine.enableGlobalMaintenance({ includeForceActive: 'yes' as unknown as boolean }), { code: 'WG_ERR_INPUT_INVALID' })
  })

  t.test('turning it off restores each route\'s own state', async t => {
    const off = await engine.disableGlobalMaintenance({ actor: 'ops' })
    t.match(off, { enabled: false, reason: '', since: null, exemptPaths: ['POST:/webhooks'] })
    t.equal(engine.decide(payments), PASS)
    t.match(engine.decide(gone), { kind: 'disabled', global: false })
    t.equal(engine.decideUnmatched('/nope', 'GET'), PASS)
  })

  t.test('it is audited under the key "*"', async t => {
    const entries = await engine.listAudit({ key: '*' })
    t.match(entries.map(e => e.action), ['global_maintenance_off', 'global_exempt_remove', 'global_exempt_add', 'global_maintenance_on', 'global_maintenance_on'])
    t.match(entries.at(-1), { actor: 'ops', platform: 'dashboard', reason: 'v2 launch', previousStatus: 'active', newStatus: 'maintenance' })
    t.match(entries[0], { actor: 'ops', previousStatus: 'maintenance', newStatus: 'active' })
  })
})

t.test('the audit log', async t => {
  const { engine, clock } = await setup(t)
  engine.declareRoute('GET', '/payments')
  engine.declareRoute('GET', '/orders')
  await engine.registerDeclaredRoutes()

  await engine.setMaintenance('GET:/payments', { reason: 'migration', actor: 'alice', platform: 'dashboard' })
  clock.advance(1000)
  await engine.disable('GET:/orders', { reason: 'bug', actor: 'bob', platform: 'cli' })
  clock.advance(1000)
  await engine.enable('GET:/payments', { actor: 'alice', platform: 'api' })
  clock.advance(1000)
  await engine.deprecate('GET:/orders')

  t.test('records who, where, why and the status change, newest first', async t => {
    const entries = await engine.listAudit()
    t.equal(entries.length, 4)
    t.match(entries, [
      { key: 'GET:/orders', action: 'deprecate', actor: 'system', platform: 'system', previousStatus: 'disabled', newStatus: 'deprecated', timestamp: '2030-01-01T00:00:03.000Z' },
      { key: 'GET:/payments', action: 'enable', actor: 'alice', platform: 'api', previousStatus: 'maintenance', newStatus: 'active' },
      { key: 'GET:/orders', action: 'disable', actor: 'bob', platform: 'cli', reason: 'bug', previousStatus: 'active', newStatus: 'disabled' },
      { key: 'GET:/payments', action: 'maintenance_on', actor: 'alice', platform: 'dashboard', reason: 'migration', previousStatus: 'active', newStatus: 'maintenance', timestamp: '2030-01-01T00:00:00.000Z' }
    ])
    t.equal(new Set(entries.map(e => e.id)).size, 4, 'ids are unique')
  })

  t.test('filters by key and limits', async t => {
    const payments = await engine.listAudit({ key: 'GET:/payments' })
    t.same(payments.map(e => e.action), ['enable', 'maintenance_on'])
    t.same((await engine.listAudit({ limit: 1 })).map(e => e.action), ['deprecate'])
    t.same((await engine.listAudit({ actor: 'bob' })).map(e => e.action), ['disable'])
  })

  t.test('a change that changes nothing is not audited', async t => {
    await engine.enable('GET:/payments')
    await engine.cancelSchedule('GET:/payments')
    t.equal((await engine.listAudit()).length, 4)
  })

  t.test('actor and platform are checked', async t => {
    await t.rejects(engine.disable('GET:/payments', { actor: '' }), { code: 'WG_ERR_INPUT_INVALID' })
    await t.rejects(engine.disable('GET:/payments', { actor: 'x'.repeat(201) }), { code: 'WG_ERR_INPUT_INVALID' })
    await t.rejects(engine.disable('GET:/payments', { platform: 'fax' as never }), { code: 'WG_ERR_INPUT_INVALID' })
    t.equal(engine.getState('GET:/payments')?.status, 'active')
  })

  t.test('an env gate without a reason says which envs', async t => {
    await engine.setEnvOnly('GET:/payments', ['staging', 'staging', 'qa'])
    const [entry] = await engine.listAudit({ limit: 1 })
    t.match(entry, { action: 'env_gate', reason: 'only in staging, qa', newStatus: 'env_gated' })
    t.same(engine.getState('GET:/payments')?.allowedEnvs, ['staging', 'qa'], 'duplicates dropped')
  })
})

t.test('subscribers see every change', async t => {
  const { engine, events } = await setup(t)
  engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  events.length = 0

  await engine.disable('GET:/payments', { reason: 'fraud', actor: 'alice' })
  t.match(events, [
    { type: 'route_changed', key: 'GET:/payments', state: { status: 'disabled', reason: 'fraud' }, previous: { status: 'active' } },
    { type: 'audit', entry: { key: 'GET:/payments', action: 'disable', actor: 'alice' } }
  ])
  const versions = events.map(e => e.version)
  t.ok(versions.every(v => typeof v === 'number' && v > 0))

  events.length = 0
  await engine.enableGlobalMaintenance({ reason: 'upgrade' })
  t.match(events, [
    { type: 'global_changed', global: { enabled: true, reason: 'upgrade' }, previous: { enabled: false } },
    { type: 'audit', entry: { key: '*', action: 'global_maintenance_on' } }
  ])

  t.test('a throwing subscriber does not break others or the change', async t => {
    const seen: EngineEvent[] = []
    const offBad = engine.subscribe(() => { throw new Error('subscriber bug') })
    const off = engine.subscribe(e => { seen.push(e) })
    await engine.enable('GET:/payments')
    t.ok(seen.some(e => e.type === 'route_changed'))
    t.equal(engine.getState('GET:/payments')?.status, 'active')
    off()
    offBad()
    seen.length = 0
    await engine.disable('GET:/payments')
    t.same(seen, [], 'unsubscribed listeners hear nothing')
  })
})

t.test('the version moves with every applied change', async t => {
  const { engine } = await setup(t)
  engine.declareRoute('GET', '/x')
  await engine.registerDeclaredRoutes()
  const before = engine.version
  await engine.disable('GET:/x')
  t.ok(engine.version > before)
  t.equal((await engine.status()).version, engine.version)
})

t.test('invalid mutation input is rejected with no state change', async t => {
  const { engine, backend } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  const before = engine.getState('GET:/payments')

  const attempts: Record<string, () => Promise<unknown>> = {
    'reason too long': () => engine.disable('GET:/payments', { reason: 'x'.repeat(MAX_REASON_LENGTH + 1) }),
    'reason not a string': () => engine.setMaintenance('GET:/payments', { reason: 42 as unknown as string }),
    'no envs': () => engine.setEnvOnly('GET:/payments', []),
    'bad env name': () => engine.setEnvOnly('GET:/payments', ['prod uction']),
    'envs not an array': () => engine.setEnvOnly('GET:/payments', 'prod' as unknown as string[]),
    'bad sunset': () => engine.deprecate('GET:/payments', { sunset: 'next year' }),
    'bad successor': () => engine.deprecate('GET:/payments', { successor: '/v2 users' }),
    'successor with angle brackets': () => engine.deprecate('GET:/payments', { successor: '</v2>; rel=x' }),
    'global reason too long': () => engine.enableGlobalMaintenance({ reason: 'x'.repeat(MAX_REASON_LENGTH + 1) })
  }
  for (const [name, attempt] of Object.entries(attempts)) {
    await t.rejects(attempt(), { code: 'WG_ERR_INPUT_INVALID', statusCode: 400 }, name)
  }
  t.same(engine.getState('GET:/payments'), before)
  t.equal(engine.decide(h), PASS)
  t.equal(engine.getGlobal().enabled, false)
  t.same(await backend.listAudit(), [], 'nothing audited')

  const [state] = await engine.disable('GET:/payments', { reason: 'x'.repeat(MAX_REASON_LENGTH) })
  t.equal(state?.reason.length, MAX_REASON_LENGTH, 'a reason of exactly the limit is accepted')
})

t.test('declared config never overwrites persisted state', async t => {
  const backend = createMemoryBackend()
  const clock = createClock()

  const first = createEngine({ backend, now: clock.now, resyncIntervalMs: 0 })
  first.declareRoute('GET', '/payments', { maintenance: { reason: 'from config' } })
  await first.start()
  await first.registerDeclaredRoutes()
  await first.disable('GET:/payments', { reason: 'operator said so' })
  await first.close()

  t.test('at registration after a restart', async t => {
    const { engine } = await setup(t, { backend, clock })
    const h = engine.declareRoute('GET', '/payments', { deprecated: { successor: '/v2/payments' } })
    t.match(engine.decide(h), { kind: 'disabled', reason: 'operator said so' }, 'stored state applies as soon as the route is declared')
    await engine.registerDeclaredRoutes()
    t.match(engine.decide(h), { kind: 'disabled', reason: 'operator said so' })
    t.match(engine.getState('GET:/payments'), { status: 'disabled', successor: null })
  })

  t.test('when routes are declared before start', async t => {
    const engine = createEngine({ backend, now: clock.now, resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    const h = engine.declareRoute('GET', '/payments', { envOnly: ['qa'] })
    t.match(engine.decide(h), { kind: 'env_gated' }, 'before start only the declaration is known')
    await engine.start()
    await engine.registerDeclaredRoutes()
    t.match(engine.decide(h), { kind: 'disabled' })
  })
})

t.test('routes are listed and read back', async t => {
  const { engine } = await setup(t)
  engine.declareRoute('POST', '/b')
  engine.declareRoute('GET', '/b')
  engine.declareRoute('GET', '/a', { disabled: {} })
  t.same(engine.listRoutes().map(s => s.key), ['GET:/a', 'GET:/b', 'POST:/b'], 'declared routes are listed before registration')
  await engine.registerDeclaredRoutes()
  t.same(engine.listRoutes().map(s => s.key), ['GET:/a', 'GET:/b', 'POST:/b'])
  t.match(engine.getState('get:/a'), { key: 'GET:/a', status: 'disabled' })
  t.equal(engine.getState('GET:/c'), null)
  t.equal((await engine.status()).routes, 3)

  const copy = engine.getState('GET:/a')!
  copy.status = 'active'
  t.equal(engine.getState('GET:/a')?.status, 'disabled', 'callers get copies')
})

t.test('two engines over one backend see each other\'s changes', async t => {
  const backend = createMemoryBackend()
  const a = await setup(t, { backend })
  const b = await setup(t, { backend })
  const ha = a.engine.declareRoute('GET', '/payments')
  const hb = b.engine.declareRoute('GET', '/payments')
  await a.engine.registerDeclaredRoutes()
  await b.engine.registerDeclaredRoutes()
  await a.engine.disable('GET:/payments')
  t.match(b.engine.decide(hb), { kind: 'disabled' })
  await b.engine.enableGlobalMaintenance()
  t.match(a.engine.decide(ha), { kind: 'maintenance', global: true })
})

t.test('testBypass makes every decision pass', async t => {
  const { engine } = await setup(t, { testBypass: true, env: 'production' })
  const handles = [
    engine.declareRoute('GET', '/m', { maintenance: {} }),
    engine.declareRoute('GET', '/d', { disabled: {} }),
    engine.declareRoute('GET', '/e', { envOnly: ['dev'] }),
    engine.declareRoute('GET', '/old', { deprecated: { successor: '/new' } }),
    engine.declareRoute('GET', '/w', { maintenance: { start: '2029-01-01T00:00:00Z', end: '2031-01-01T00:00:00Z' } })
  ]
  await engine.registerDeclaredRoutes()
  await engine.enableGlobalMaintenance({ includeForceActive: true })
  for (const h of handles) t.equal(engine.decide(h), PASS, h.key)
  t.equal(engine.decideUnmatched('/nope', 'GET'), PASS)
  t.equal((await engine.status()).testBypass, true)
  t.equal(engine.getState('GET:/d')?.status, 'disabled', 'state itself is still tracked')
})

t.test('fail-open: a backend that cannot load', async t => {
  const warnings: Array<{ obj: object, msg: string | undefined }> = []
  const logger: WaygateLogger = {
    debug () {},
    info () {},
    warn (obj, msg) { warnings.push({ obj, msg }) },
    error () {}
  }
  const backend = createFailingBackend()
  const { engine } = await setup(t, { backend, logger })
  const plain = engine.declareRoute('GET', '/payments')
  const maint = engine.declareRoute('GET', '/admin', { maintenance: { reason: 'declared' } })
  await t.resolves(engine.registerDeclaredRoutes(), 'registration does not throw either')

  t.test('start() resolved and decisions come from the declarations', async t => {
    t.equal(engine.decide(plain), PASS)
    t.match(engine.decide(maint), { action: 'block', kind: 'maintenance', reason: 'declared' })
    t.equal(engine.decideUnmatched('/nope', 'GET'), PASS)
  })

  t.test('status reports it', async t => {
    t.match(await engine.status(), { backend: 'failing-memory', healthy: false, lastError: /ECONNREFUSED/ })
  })

  t.test('mutations and audit reads reject by code', async t => {
    const err = await engine.disable('GET:/payments').catch((e: unknown) => e) as Error & { code: string, statusCode: number }
    t.match(err, { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 })
    t.match(err.cause, { code: 'ECONNREFUSED' }, 'the backend error is the cause')
    await t.rejects(engine.enableGlobalMaintenance(), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
    await t.rejects(engine.listAudit(), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
    t.equal(engine.decide(plain), PASS, 'and nothing changed')
  })

  t.test('failures are logged, but not once per call', async t => {
    const before = warnings.length
    t.ok(before > 0)
    await engine.disable('GET:/payments').catch(() => {})
    await engine.disable('GET:/payments').catch(() => {})
    t.ok(warnings.length - before <= 1, 'repeated write failures log at most once more')
  })

  t.test('recovers once the backend answers', async t => {
    backend.down = false
    await engine.resync()
    t.match(await engine.status(), { healthy: true, lastError: null })
    await engine.disable('GET:/payments')
    t.match(engine.decide(plain), { kind: 'disabled' })
  })
})

t.test('fail-open: the last known state stays when the backend goes away', async t => {
  const backend = createFailingBackend(createMemoryBackend(), false)
  const { engine } = await setup(t, { backend })
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.disable('GET:/payments', { reason: 'known' })
  backend.down = true
  const err = await engine.resync().catch((e: unknown) => e)
  t.match(err, { code: 'WG_ERR_BACKEND_UNAVAILABLE', cause: { code: 'ECONNREFUSED' } })
  t.match(engine.decide(h), { kind: 'disabled', reason: 'known' })
  t.match(engine.getState('GET:/payments'), { status: 'disabled' })
  t.equal((await engine.status()).healthy, false)
})

t.test('fail-open: a backend that reports its own coded failure marks the engine unhealthy', async t => {
  // the file backend rejects with WG_ERR_BACKEND_UNAVAILABLE itself (lock timeout, corrupt file)
  const inner = createMemoryBackend()
  let corrupt = false
  const backend: WaygateBackend = {
    ...inner,
    kind: 'locked',
    load: async () => {
      if (corrupt) throw new WG_ERR_BACKEND_UNAVAILABLE('state.json is corrupt')
      return inner.load()
    },
    updateRoute: async () => { throw new WG_ERR_BACKEND_UNAVAILABLE('lock on state.json not acquired in 10000 ms') }
  }
  const { engine } = await setup(t, { backend })
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await t.rejects(engine.disable('GET:/payments'), { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /lock on state\.json/ })
  t.match(await engine.status(), { healthy: false, lastError: /lock on state\.json/ })
  t.equal(engine.decide(h), PASS)

  corrupt = true
  await t.rejects(engine.resync(), { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /state\.json is corrupt/ }, 'the backend\'s own message is kept')
  t.match(await engine.status(), { healthy: false, lastError: /state\.json is corrupt/ })
})

t.test('a closed engine refuses work', async t => {
  const engine = createEngine({ resyncIntervalMs: 0 })
  engine.declareRoute('GET', '/x')
  await engine.start()
  await engine.close()
  await engine.close()
  await t.rejects(engine.disable('GET:/x'), { code: 'WG_ERR_ENGINE_CLOSED' })
  await t.rejects(engine.enableGlobalMaintenance(), { code: 'WG_ERR_ENGINE_CLOSED' })
  await t.rejects(engine.start(), { code: 'WG_ERR_ENGINE_CLOSED' })
})

t.test('the Deprecation date is when the route was first deprecated, not its last change', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/v1/users')
  await engine.registerDeclaredRoutes()
  const first = clock.now()
  await engine.deprecate('GET:/v1/users', { successor: '/v2/users' })
  clock.advance(86_400_000)
  await engine.deprecate('GET:/v1/users', { successor: '/v2/users', sunset: '2031-01-01T00:00:00Z' })
  t.match(engine.decide(h), { action: 'deprecated', deprecation: `@${first / 1000}`, sunset: 'Wed, 01 Jan 2031 00:00:00 GMT' })
  await engine.enable('GET:/v1/users')
  clock.advance(1000)
  await engine.deprecate('GET:/v1/users')
  t.match(engine.decide(h), { deprecation: `@${clock.now() / 1000}` }, 'a new deprecation after enabling gets a new date')
})

t.test('a successor a Link header cannot carry is refused; a non-ASCII one is percent-encoded', async t => {
  const { engine } = await setup(t)
  const h = engine.declareRoute('GET', '/v1/users')
  await engine.registerDeclaredRoutes()
  for (const successor of ['/v2/\u0000users', '/v2/users\u007f', '/v2/users\r\nSet-Cookie: a=b', '/v2/\tusers', '/v2/\u0085', '/v2/\ud800', '/v2/<x>', '']) {
    await t.rejects(engine.deprecate('GET:/v1/users', { successor }), { code: 'WG_ERR_INPUT_INVALID', statusCode: 400, message: /successor/ }, JSON.stringify(successor))
    t.throws(() => engine.declareRoute('GET', `/d${successor.length}${successor.charCodeAt(4)}`, { deprecated: { successor } }), { code: 'WG_ERR_INPUT_INVALID' }, `declared ${JSON.stringify(successor)}`)
  }
  t.same(await engine.listAudit(), [], 'nothing was written')
  const [state] = await engine.deprecate('GET:/v1/users', { successor: 'https://api.example.com/v2/usérs/🚀?q=ü' })
  t.equal(state!.successor, 'https://api.example.com/v2/us%C3%A9rs/%F0%9F%9A%80?q=%C3%BC', 'stored as the URI the header carries')
  t.match(engine.decide(h), { action: 'deprecated', link: '<https://api.example.com/v2/us%C3%A9rs/%F0%9F%9A%80?q=%C3%BC>; rel="successor-version"' })
  const declared = engine.declareRoute('GET', '/v1/items', { deprecated: { successor: '/v2/é' } })
  t.match(engine.decide(declared), { link: '</v2/%C3%A9>; rel="successor-version"' })
  await t.rejects(engine.deprecate('GET:/v1/users', { successor: '/' + 'é'.repeat(1000) }), { code: 'WG_ERR_INPUT_INVALID' }, 'too long once encoded')
})

t.test('a stored successor no header can carry is left out of the plan and logged, never sent', async t => {
  const backend = createMemoryBackend()
  const warnings: Array<{ obj: unknown, msg?: string }> = []
  const logger: WaygateLogger = { debug () {}, info () {}, error () {}, warn (obj, msg) { warnings.push({ obj, msg }) } }
  await backend.registerRoutes([
    routeState('GET:/a', { status: 'deprecated', successor: '/v2/\u0000a' }),
    routeState('GET:/b', { status: 'deprecated', successor: '/v2/\u007fb\r\n' }),
    routeState('GET:/c', { status: 'deprecated', successor: '/v2/café' }),
    routeState('GET:/d', { status: 'deprecated', successor: 42 as unknown as string })
  ])
  const { engine } = await setup(t, { backend, logger })
  const [a, b, c, d] = ['/a', '/b', '/c', '/d'].map(p => engine.declareRoute('GET', p))
  t.match(engine.decide(a!), { action: 'deprecated', link: null })
  t.match(engine.decide(b!), { action: 'deprecated', link: null })
  t.match(engine.decide(c!), { action: 'deprecated', link: '</v2/caf%C3%A9>; rel="successor-version"' })
  t.match(engine.decide(d!), { action: 'deprecated', link: null })
  t.ok(warnings.some(w => (w.obj as { key?: string }).key === 'GET:/a' && /successor/.test(w.msg ?? '')), 'the dropped header is logged')
})
