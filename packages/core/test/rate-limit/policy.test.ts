import t from 'tap'
import {
  checkRateLimitPolicy,
  compileRateLimitPolicy,
  createRateLimitRule,
  RateLimitPolicy,
  rateLimitPolicyErrors,
  resolveTier
} from '@waygate/core'
import { Value } from '@sinclair/typebox/value'

t.test('a minimal policy compiles with documented defaults', async t => {
  const p = compileRateLimitPolicy({ key: 'GET:/posts', limits: ['100/minute'] })
  t.match(p, {
    key: 'GET:/posts',
    scope: 'GET:/posts',
    algorithm: 'sliding_window',
    keyBy: 'ip',
    burst: 0,
    onMissingKey: 'exempt',
    userProperty: ['user', 'id'],
    tierProperty: ['plan'],
    apiKeyHeader: 'x-api-key',
    failClosed: false
  })
  t.match(p.rule, { algorithm: 'sliding_window', unlimited: false, failClosed: false, limits: [{ limit: 100, burst: 0, capacity: 100, windowMs: 60_000, slot: 'sw:60000', text: '100/minute' }] })
  t.equal(p.tiers.size, 0)
  t.equal(p.ruleFor('pro'), p.rule)
  t.equal(p.isExemptIp('127.0.0.1'), false)
  t.ok(Object.isFrozen(p))
})

t.test('every field is honoured', async t => {
  const p = compileRateLimitPolicy({
    key: 'POST:/data',
    limits: ['10/second', '1000/day'],
    algorithm: 'token_bucket',
    keyBy: 'api_key',
    burst: 5,
    exemptIps: ['10.0.0.0/8', '::1'],
    userProperty: 'session.account.id',
    tierProperty: 'account.plan',
    apiKeyHeader: 'X-Client-Key',
    group: 'bulk',
    failClosed: true
  })
  t.match(p, { scope: 'group:bulk', algorithm: 'token_bucket', keyBy: 'api_key', onMissingKey: 'fallback_ip', apiKeyHeader: 'x-client-key', failClosed: true })
  t.same(p.userProperty, ['session', 'account', 'id'])
  t.same(p.tierProperty, ['account', 'plan'])
  t.match(p.rule, { failClosed: true, limits: [{ capacity: 15, slot: 'tb:1000' }, { capacity: 1005, slot: 'tb:86400000' }] })
  t.equal(p.isExemptIp('10.9.8.7'), true)
  t.equal(p.isExemptIp('::ffff:10.9.8.7'), true)
  t.equal(p.isExemptIp('::1'), true)
  t.equal(p.isExemptIp('11.0.0.1'), false)
})

t.test('tiers: each its rule, unknown or missing names get the first, unlimited counts nothing', async t => {
  const p = compileRateLimitPolicy({ key: 'GET:/reports', keyBy: 'user', tiers: { free: '10/minute', pro: ['100/minute', '2000/day'], enterprise: 'unlimited' } })
  t.same([...p.tiers.keys()], ['free', 'pro', 'enterprise'])
  t.equal(p.rule, p.tiers.get('free'))
  t.equal(p.ruleFor('pro'), p.tiers.get('pro'))
  t.equal(p.ruleFor('platinum'), p.tiers.get('free'))
  t.equal(p.ruleFor(undefined), p.tiers.get('free'))
  t.equal(p.ruleFor(42), p.tiers.get('free'))
  t.equal(p.ruleFor('toString'), p.tiers.get('free'), 'inherited names are not tiers')
  t.equal(p.ruleFor('enterprise').unlimited, true)
  t.equal(p.ruleFor('pro').limits.length, 2)
  t.equal(resolveTier(p.tiers, 'pro'), 'pro')
  t.equal(resolveTier(p.tiers, 'gold'), 'free')
  t.equal(resolveTier(['a', 'b'], null), 'a')
  t.equal(resolveTier([], 'a'), undefined)
})

t.test('every failing field is listed in one coded 400 error', async t => {
  const input = {
    key: '',
    limits: ['10/minit', '5/minute', '7/minute', 'unlimited'],
    algorithm: 'leaky_bucket',
    keyBy: 'cookie',
    burst: -1,
    onMissingKey: 'ignore',
    exemptIps: ['10.0.0.0/33', 'localhost'],
    tiers: { free: '1/minute' },
    userProperty: 'user..id',
    tierProperty: '__proto__.x',
    apiKeyHeader: 'bad header',
    failClosed: 'yes',
    extra: 1
  }
  const errors = rateLimitPolicyErrors(input)
  const text = errors.join('\n')
  for (const field of ['/key', '/algorithm', '/keyBy', '/burst', '/onMissingKey', '/userProperty', '/tierProperty', '/apiKeyHeader', '/failClosed', '/extra']) {
    t.match(text, new RegExp(`^${field}: `, 'm'), `${field} is listed`)
  }
  t.match(text, /^\/limits\/0: "10\/minit" has an unknown unit "minit"/m)
  t.match(text, /^\/limits\/2: "7\/minute" has the same window as \/limits\/1 \("5\/minute"\)/m)
  t.match(text, /^\/limits: "unlimited" cannot be combined with other limits/m)
  t.match(text, /^\/exemptIps\/0: "10\.0\.0\.0\/33" has a prefix longer than 32 bits/m)
  t.match(text, /^\/exemptIps\/1: "localhost" is not an IP address or CIDR/m)
  t.match(text, /^\/tiers: give limits or tiers, not both/m)
  t.match(text, /^\/tierProperty: may not use __proto__/m)
  t.throws(() => checkRateLimitPolicy(input, 'route config of GET:/x'), {
    code: 'WG_ERR_RATE_LIMIT_INVALID',
    statusCode: 400,
    message: /^Invalid rate limit: route config of GET:\/x: .*\/limits\/0: "10\/minit"/
  })
  t.throws(() => compileRateLimitPolicy(input), { code: 'WG_ERR_RATE_LIMIT_INVALID' })
})

t.test('limits or tiers are required, with valid limit strings in tiers too', async t => {
  t.match(rateLimitPolicyErrors({ key: 'GET:/x' }), ['/limits: give limits or tiers'])
  t.match(rateLimitPolicyErrors({ key: 'GET:/x', limits: [] }).join(), /\/limits/)
  t.match(rateLimitPolicyErrors({ key: 'GET:/x', tiers: {} }).join(), /\/tiers/)
  t.match(rateLimitPolicyErrors({ key: 'GET:/x', tiers: { free: '1/fortnight', pro: ['1/minute', '2/minute'] } }), [
    /^\/tiers\/free: "1\/fortnight" has an unknown unit/,
    /^\/tiers\/pro\/1: "2\/minute" has the same window/
  ])
  t.match(rateLimitPolicyErrors({ key: 'GET:/x', tiers: { '1st': '1/minute' } }).join(), /\/tiers/, 'tier names start with a letter')
  t.match(rateLimitPolicyErrors(null), [/\(root\)/])
  t.match(rateLimitPolicyErrors('10/minute'), [/\(root\)/])
})

t.test('limits too large for exact arithmetic are refused, burst included', async t => {
  t.same(rateLimitPolicyErrors({ key: 'k', limits: ['26000000/day'] }), [])
  t.match(rateLimitPolicyErrors({ key: 'k', limits: ['27000000/day'] }), [/too large/])
  t.match(rateLimitPolicyErrors({ key: 'k', limits: ['26000000/day'], burst: 1_000_000 }), [/with burst 1000000 is too large/])
})

t.test('the TypeBox schema is the one source of truth for the JSON shape', async t => {
  t.ok(Value.Check(RateLimitPolicy, { key: 'GET:/x', limits: ['1/minute'], algorithm: 'moving_window', keyBy: 'global' }))
  t.notOk(Value.Check(RateLimitPolicy, { key: 'GET:/x', limits: ['1/minute'], algorithm: 'moving' }))
  t.equal(RateLimitPolicy.additionalProperties, false)
})

t.test('createRateLimitRule: one string, several, or unlimited', async t => {
  t.match(createRateLimitRule({ limits: '5/minute', burst: 3 }), { unlimited: false, limits: [{ limit: 5, burst: 3, capacity: 8 }] })
  t.match(createRateLimitRule({ limits: ['unlimited'] }), { unlimited: true, limits: [] })
  t.throws(() => createRateLimitRule({ limits: [] }), { code: 'WG_ERR_RATE_LIMIT_INVALID', message: /at least one limit/ })
  t.throws(() => createRateLimitRule({ limits: '5/minute', burst: 1.5 }), { code: 'WG_ERR_RATE_LIMIT_INVALID', message: /\/burst/ })
  t.throws(() => createRateLimitRule({ limits: '5/minute', algorithm: 'leaky' as 'fixed_window' }), { code: 'WG_ERR_RATE_LIMIT_INVALID', message: /unknown algorithm "leaky"/ })
  t.ok(Object.isFrozen(createRateLimitRule({ limits: '5/minute' }).limits[0]))
})
