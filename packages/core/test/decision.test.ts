import t from 'tap'
import { compilePlan, defaultGlobalMaintenance, effectiveStatus, isExempt, PASS, retryAfterSeconds } from '@waygate/core'
import type { Decision, RoutePlan, RouteState } from '@waygate/core'
import { globalOn, routeState } from './helpers/states.js'

const OFF = defaultGlobalMaintenance()
const target = (key = 'GET:/payments', forceActive = false) => {
  const colon = key.indexOf(':/')
  return { key, path: key.slice(colon + 1), forceActive }
}

/** What the engine's decide() does with a plan at time `at`. */
function decideAt (plan: RoutePlan, at: number): Decision {
  return at >= plan.windowStart && at < plan.windowEnd ? plan.inside : plan.outside
}

t.test('PASS is one shared frozen object', async t => {
  t.same(PASS, { action: 'pass' })
  t.ok(Object.isFrozen(PASS))
})

t.test('an active route passes, with no window to check', async t => {
  const plan = compilePlan(target(), routeState('GET:/payments'), OFF, 'dev')
  t.equal(plan.outside, PASS)
  t.equal(plan.inside, PASS)
  t.equal(plan.windowStart, Infinity)
  t.equal(plan.windowEnd, Infinity)
})

t.test('a route with no state passes', async t => {
  t.equal(compilePlan(target(), undefined, OFF, 'dev').outside, PASS)
})

t.test('maintenance blocks with its reason and no known end', async t => {
  const plan = compilePlan(target(), routeState('GET:/payments', { status: 'maintenance', reason: 'DB migration' }), OFF, 'dev')
  t.same(plan.outside, { action: 'block', kind: 'maintenance', key: 'GET:/payments', reason: 'DB migration', global: false, retryAt: null })
  t.ok(Object.isFrozen(plan.outside), 'decisions are shared, so they are frozen')
})

t.test('disabled blocks as disabled', async t => {
  const plan = compilePlan(target(), routeState('GET:/payments', { status: 'disabled', reason: 'gone' }), OFF, 'dev')
  t.same(plan.outside, { action: 'block', kind: 'disabled', key: 'GET:/payments', reason: 'gone', global: false, retryAt: null })
})

t.test('env-gated passes in an allowed env and hides the route elsewhere', async t => {
  const state = routeState('GET:/debug', { status: 'env_gated', allowedEnvs: ['dev', 'staging'] })
  t.equal(compilePlan(target('GET:/debug'), state, OFF, 'dev').outside, PASS)
  t.equal(compilePlan(target('GET:/debug'), state, OFF, 'staging').outside, PASS)
  t.match(compilePlan(target('GET:/debug'), state, OFF, 'production').outside, { action: 'block', kind: 'env_gated', key: 'GET:/debug' })
  t.match(compilePlan(target('GET:/debug'), state, OFF, 'Dev').outside, { action: 'block', kind: 'env_gated' }, 'env names are exact')
})

t.test('deprecated passes with RFC 9745 / RFC 8594 header values', async t => {
  const state = routeState('GET:/v1/users', {
    status: 'deprecated',
    updatedAt: '2030-03-01T12:00:00.500Z',
    sunset: '2031-01-01T00:00:00.000Z',
    successor: '/v2/users'
  })
  const d = compilePlan(target('GET:/v1/users'), state, OFF, 'dev').outside
  t.same(d, {
    action: 'deprecated',
    deprecation: `@${Math.floor(Date.parse('2030-03-01T12:00:00Z') / 1000)}`,
    sunset: 'Wed, 01 Jan 2031 00:00:00 GMT',
    link: '</v2/users>; rel="successor-version"'
  })
  t.match(d, { deprecation: /^@\d+$/ }, 'Deprecation is an @-prefixed integer of epoch seconds')
})

t.test('deprecated without sunset or successor sends only Deprecation', async t => {
  const d = compilePlan(target(), routeState('GET:/payments', { status: 'deprecated' }), OFF, 'dev').outside
  t.match(d, { action: 'deprecated', deprecation: '@1893456000', sunset: null, link: null })
})

t.test('an absolute successor URL is kept as is', async t => {
  const d = compilePlan(target(), routeState('GET:/payments', { status: 'deprecated', successor: 'https://api.example.com/v2/payments' }), OFF, 'dev').outside
  t.match(d, { link: '<https://api.example.com/v2/payments>; rel="successor-version"' })
})

t.test('a maintenance window', async t => {
  const start = Date.parse('2030-01-01T10:00:00Z')
  const end = Date.parse('2030-01-01T12:00:00Z')
  const windowed = (fields: Partial<RouteState> = {}) => routeState('GET:/payments', {
    window: { start: '2030-01-01T10:00:00.000Z', end: '2030-01-01T12:00:00.000Z', reason: 'planned upgrade' },
    ...fields
  })

  t.test('blocks from start (inclusive) to end (exclusive) and tells when it ends', async t => {
    const plan = compilePlan(target(), windowed(), OFF, 'dev')
    t.equal(plan.windowStart, start)
    t.equal(plan.windowEnd, end)
    t.equal(decideAt(plan, start - 1), PASS)
    t.same(decideAt(plan, start), { action: 'block', kind: 'maintenance', key: 'GET:/payments', reason: 'planned upgrade', global: false, retryAt: end })
    t.equal(decideAt(plan, end - 1).action, 'block')
    t.equal(decideAt(plan, end), PASS)
  })

  t.test('without an end it blocks from start on, with no retry time', async t => {
    const plan = compilePlan(target(), windowed({ window: { start: '2030-01-01T10:00:00.000Z', end: null, reason: '' } }), OFF, 'dev')
    t.equal(decideAt(plan, start - 1), PASS)
    t.match(decideAt(plan, start + 1e10), { action: 'block', kind: 'maintenance', retryAt: null })
  })

  t.test('falls back to the route reason when the window has none', async t => {
    const plan = compilePlan(target(), windowed({ reason: 'route reason', window: { start: '2030-01-01T10:00:00.000Z', end: null, reason: '' } }), OFF, 'dev')
    t.match(plan.inside, { reason: 'route reason' })
  })

  t.test('a deprecated route is deprecated outside its window and in maintenance inside', async t => {
    const plan = compilePlan(target(), windowed({ status: 'deprecated' }), OFF, 'dev')
    t.equal(decideAt(plan, start - 1).action, 'deprecated')
    t.equal(decideAt(plan, start).action, 'block')
    t.equal(decideAt(plan, end).action, 'deprecated')
  })

  t.test('a disabled route stays disabled, window or not', async t => {
    const plan = compilePlan(target(), windowed({ status: 'disabled' }), OFF, 'dev')
    t.match(decideAt(plan, start - 1), { kind: 'disabled' })
    t.match(decideAt(plan, start), { kind: 'disabled' })
  })

  t.test('an env-gated route stays hidden from other envs during its window', async t => {
    const gated = windowed({ status: 'env_gated', allowedEnvs: ['staging'] })
    const hidden = compilePlan(target(), gated, OFF, 'production')
    t.match(decideAt(hidden, start), { kind: 'env_gated' })
    const shown = compilePlan(target(), gated, OFF, 'staging')
    t.equal(decideAt(shown, start - 1), PASS)
    t.match(decideAt(shown, start), { kind: 'maintenance' })
  })
})

t.test('global maintenance', async t => {
  t.test('blocks every route, whatever its own state, as a global maintenance', async t => {
    for (const status of ['active', 'disabled', 'deprecated', 'maintenance'] as const) {
      const plan = compilePlan(target(), routeState('GET:/payments', { status, reason: 'own' }), globalOn({ reason: 'site upgrade' }), 'dev')
      t.same(plan.outside, { action: 'block', kind: 'maintenance', key: 'GET:/payments', reason: 'site upgrade', global: true, retryAt: null }, status)
      t.equal(plan.inside, plan.outside)
    }
    t.match(compilePlan(target(), undefined, globalOn(), 'dev').outside, { action: 'block', global: true })
  })

  t.test('spares exempt routes, named bare or by method key', async t => {
    const state = routeState('GET:/health')
    t.equal(compilePlan(target('GET:/health'), state, globalOn({ exemptPaths: ['/health'] }), 'dev').outside, PASS)
    t.equal(compilePlan(target('GET:/health'), state, globalOn({ exemptPaths: ['GET:/health'] }), 'dev').outside, PASS)
    t.match(compilePlan(target('GET:/health'), state, globalOn({ exemptPaths: ['POST:/health'] }), 'dev').outside,
      { action: 'block' }, 'another method of the same path is not exempt')
    t.match(compilePlan(target('GET:/healthz'), routeState('GET:/healthz'), globalOn({ exemptPaths: ['/health'] }), 'dev').outside,
      { action: 'block' }, 'no prefix matching')
  })

  t.test('an exempt route keeps its own state', async t => {
    const state = routeState('GET:/health', { status: 'disabled' })
    t.match(compilePlan(target('GET:/health'), state, globalOn({ exemptPaths: ['/health'] }), 'dev').outside, { kind: 'disabled', global: false })
  })

  t.test('force-active routes pass unless includeForceActive', async t => {
    t.equal(compilePlan(target('GET:/health', true), undefined, globalOn(), 'dev').outside, PASS)
    t.equal(compilePlan(target('GET:/health'), routeState('GET:/health', { forceActive: true }), globalOn(), 'dev').outside, PASS,
      'the stored flag counts too')
    t.match(compilePlan(target('GET:/health', true), undefined, globalOn({ includeForceActive: true }), 'dev').outside,
      { action: 'block', global: true })
  })
})

t.test('force-active ignores the route state and its windows', async t => {
  const state = routeState('GET:/health', {
    status: 'disabled',
    window: { start: '2030-01-01T00:00:00.000Z', end: null, reason: '' }
  })
  const plan = compilePlan(target('GET:/health', true), state, OFF, 'dev')
  t.equal(plan.outside, PASS)
  t.equal(plan.inside, PASS)
  t.equal(plan.windowStart, Infinity)
})

t.test('isExempt matches the exact key or the bare pattern', async t => {
  t.ok(isExempt(['/health'], 'GET:/health', '/health'))
  t.ok(isExempt(['GET:/health'], 'GET:/health', '/health'))
  t.notOk(isExempt(['POST:/health'], 'GET:/health', '/health'))
  t.notOk(isExempt([], 'GET:/health', '/health'))
})

t.test('effectiveStatus applies the window at a given time', async t => {
  const state = routeState('GET:/x', { window: { start: '2030-01-01T10:00:00.000Z', end: '2030-01-01T11:00:00.000Z', reason: '' } })
  t.equal(effectiveStatus(state, Date.parse('2030-01-01T09:59:59.999Z')), 'active')
  t.equal(effectiveStatus(state, Date.parse('2030-01-01T10:00:00Z')), 'maintenance')
  t.equal(effectiveStatus(state, Date.parse('2030-01-01T11:00:00Z')), 'active')
  t.equal(effectiveStatus({ ...state, status: 'deprecated' }, Date.parse('2030-01-01T12:00:00Z')), 'deprecated')
  t.equal(effectiveStatus({ ...state, status: 'disabled' }, Date.parse('2030-01-01T10:30:00Z')), 'disabled')
  t.equal(effectiveStatus(routeState('GET:/x', { status: 'env_gated' }), 0), 'env_gated')
})

t.test('retryAfterSeconds rounds up and never says 0', async t => {
  t.equal(retryAfterSeconds(10_000, 0), 10)
  t.equal(retryAfterSeconds(10_001, 0), 11)
  t.equal(retryAfterSeconds(500, 0), 1)
  t.equal(retryAfterSeconds(0, 5000), 1, 'a past end still asks to retry in 1 s')
})
