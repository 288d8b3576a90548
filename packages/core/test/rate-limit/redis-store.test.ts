import { once } from 'node:events'
import t from 'tap'
import { createMemoryRateLimitStore, createRateLimitRule, createRedisRateLimitStore } from '@waygate/core'
import type { RateLimitResult, RateLimitRule } from '@waygate/core'
import { createClock } from '../helpers/clock.js'
import { evalshaCalls, startRedisServer } from './helpers/redis-server.js'
import { rateLimitStoreContract, T0 } from './helpers/store-contract.js'
import { randomTrafficAgrees } from './helpers/differential.js'

const server = await startRedisServer(t)
const client = server.client()
let stores = 0
// These tests are about answers, not timeouts (redis-failures.test.ts): a busy CI host must not turn them degraded
const SLOW_HOST_MS = 5000

rateLimitStoreContract(t, 'redis', async clock => {
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: `c${++stores}:`, timeoutMs: SLOW_HOST_MS })
  await store.init()
  return store
})

// A Redis store and a memory store on one clock, to compare their answers
async function storePair (t: { teardown: (fn: () => unknown) => void }, prefix: string, start: number) {
  const clock = createClock(start)
  const redis = createRedisRateLimitStore({ client, now: clock.now, prefix, timeoutMs: SLOW_HOST_MS })
  const memory = createMemoryRateLimitStore({ now: clock.now, sweepIntervalMs: 0 })
  await redis.init()
  t.teardown(() => redis.close())
  t.teardown(() => memory.close())
  return { clock, redis, memory }
}

t.test('one script call per check, every key of it under the prefix and one hash tag', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'tags:', timeoutMs: SLOW_HOST_MS })
  await store.init()
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: ['10/second', '100/minute', '1000/day'] })
  const before = await evalshaCalls(client)
  await store.check('GET:/users/:id', '2001:db8::/64', rule)
  t.equal(await evalshaCalls(client) - before, 1)
  const keys = (await client.keys('tags:*')).sort()
  t.same(keys, [
    'tags:{14:GET:/users/:id|2001:db8::/64}:sw:1000',
    'tags:{14:GET:/users/:id|2001:db8::/64}:sw:60000',
    'tags:{14:GET:/users/:id|2001:db8::/64}:sw:86400000'
  ])
  t.equal(store.keyFor('GET:/users/:id', '2001:db8::/64', 'sw:1000'), keys[0])
  for (const key of keys) {
    const ttl = await client.pttl(key)
    t.ok(ttl > 0, `${key} expires`)
  }
})

t.test('a key Redis refused is refused from memory, without a round trip, until it may pass', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'blocked:', timeoutMs: SLOW_HOST_MS })
  await store.init()
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '2/minute', algorithm: 'fixed_window' })
  await store.check('GET:/x', 'a', rule)
  await store.check('GET:/x', 'a', rule)
  const first = await store.check('GET:/x', 'a', rule)
  t.match(first, { allowed: false, retryAfterMs: 60_000 })

  const before = await evalshaCalls(client)
  clock.set(T0 + 30_000)
  for (let i = 0; i < 100; i++) {
    const result = store.check('GET:/x', 'a', rule)
    t.notOk(result instanceof Promise, 'answered synchronously')
    if (i === 0) t.same(result, { allowed: false, limit: 2, remaining: 0, resetAt: T0 + 60_000, retryAfterMs: 30_000, windowMs: 60_000, index: 0, degraded: false })
  }
  t.equal(await evalshaCalls(client) - before, 0, 'no script call for 100 refusals')

  t.ok(store.check('GET:/x', 'a', rule, 2) instanceof Promise, 'another cost asks Redis')
  const raised = createRateLimitRule({ limits: '5/minute', algorithm: 'fixed_window' })
  t.match(await store.check('GET:/x', 'a', raised), { allowed: true, remaining: 2 }, 'a changed rule asks Redis')
  t.ok(store.check('GET:/x', 'b', rule) instanceof Promise, 'other keys ask Redis')

  await store.check('GET:/x', 'c', rule)
  await store.check('GET:/x', 'c', rule)
  t.match(await store.check('GET:/x', 'c', rule), { allowed: false })
  await store.reset('GET:/x', 'c')
  t.match(await store.check('GET:/x', 'c', rule), { allowed: true, remaining: 1 }, 'a reset clears the local block')

  await store.check('GET:/x', 'c', rule)
  t.match(await store.check('GET:/x', 'c', rule), { allowed: false })
  await client.del(store.keyFor('GET:/x', 'c', rule.limits[0]?.slot as string))
  store.invalidateLocal('GET:/x', 'c')
  t.match(await store.check('GET:/x', 'c', rule), { allowed: true }, 'invalidateLocal forgets a block reset elsewhere')

  clock.set(T0 + 60_000)
  t.ok(store.check('GET:/x', 'a', rule) instanceof Promise, 'after the retry time Redis is asked again')
})

t.test('the blocked cache is bounded and can be turned off', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'bounded:', blockedCacheSize: 2, timeoutMs: SLOW_HOST_MS })
  const off = createRedisRateLimitStore({ client, now: clock.now, prefix: 'off:', blockedCacheSize: 0, timeoutMs: SLOW_HOST_MS })
  await store.init()
  t.teardown(() => store.close())
  t.teardown(() => off.close())
  const rule = createRateLimitRule({ limits: '1/minute' })
  for (const id of ['a', 'b', 'c']) {
    await store.check('s', id, rule)
    await store.check('s', id, rule)
    await off.check('s', id, rule)
    await off.check('s', id, rule)
  }
  t.notOk(store.check('s', 'a', rule) instanceof Promise)
  t.notOk(store.check('s', 'b', rule) instanceof Promise)
  t.ok(store.check('s', 'c', rule) instanceof Promise, 'the third block was not kept')
  t.ok(off.check('s', 'a', rule) instanceof Promise)
})

t.test('scripts missing from Redis (restart, SCRIPT FLUSH) are sent again', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'noscript:', timeoutMs: SLOW_HOST_MS })
  t.teardown(() => store.close())
  await client.script('FLUSH')
  const rule = createRateLimitRule({ limits: '5/minute', algorithm: 'moving_window' })
  t.match(await store.check('s', 'a', rule), { allowed: true, remaining: 4, degraded: false })
  t.match(await store.check('s', 'a', rule), { allowed: true, remaining: 3, degraded: false })
})

t.test('agrees with the memory store on random traffic, every algorithm and several limits', async t => {
  const { clock, redis, memory } = await storePair(t, 'random:', T0 + 12_345)
  await randomTrafficAgrees(t, clock, memory, redis)
})

t.test('checks made together leave in one script call per algorithm, each at its own time, answered as one by one', async t => {
  const { clock, redis, memory } = await storePair(t, 'batch:', T0 + 777)
  const rules = [
    createRateLimitRule({ limits: ['5/second', '12 per 10 seconds'] }),
    createRateLimitRule({ limits: '4/second', algorithm: 'token_bucket', burst: 2 }),
    createRateLimitRule({ limits: '6 per 2 seconds', algorithm: 'moving_window' })
  ]
  const mismatches: string[] = []
  let calls = 0
  let checks = 0
  let refused = 0
  for (let round = 0; round < 12; round++) {
    const expected: RateLimitResult[] = []
    const answers: Array<RateLimitResult | Promise<RateLimitResult>> = []
    const algorithms = new Set<number>()
    for (let i = 0; i < 20; i++) {
      // the clock moves between checks of one batch: each is judged at its own time
      clock.advance((round * 7 + i * 13) % 90)
      const r = (round + i) % 3
      const rule = rules[r] as RateLimitRule
      const id = `c${(i * 5 + round) % 3}`
      const cost = i % 9 === 4 ? 2 : 1
      expected.push(memory.check(`s${r}`, id, rule, cost))
      const answer = redis.check(`s${r}`, id, rule, cost)
      answers.push(answer)
      if (answer instanceof Promise) {
        algorithms.add(r)
        checks++
      }
    }
    const before = await evalshaCalls(client)
    const got = await Promise.all(answers)
    t.equal(await evalshaCalls(client) - before, algorithms.size, `round ${round}: one call per algorithm`)
    calls += algorithms.size
    got.forEach((b, i) => {
      const a = expected[i] as RateLimitResult
      if (!a.allowed) refused++
      if (JSON.stringify(a) !== JSON.stringify(b)) mismatches.push(`round ${round} #${i}: memory ${JSON.stringify(a)} redis ${JSON.stringify(b)}`)
    })
    clock.advance(400)
  }
  t.same(mismatches, [], 'identical answers')
  t.ok(refused > 20 && refused < 200, `both outcomes exercised (${refused} of 240 refused)`)
  t.ok(checks > 200, `${checks} checks sent in ${calls} script calls`)
})

t.test('rules taking turns on one key (routes of a group with other limits) agree with the memory store', async t => {
  const { clock, redis, memory } = await storePair(t, 'turns:', T0 + 777)
  const rules = [
    createRateLimitRule({ limits: ['5/second', '12 per 10 seconds'] }),
    createRateLimitRule({ limits: '12 per 10 seconds' }),
    createRateLimitRule({ limits: '4/second', algorithm: 'token_bucket', burst: 2 }),
    createRateLimitRule({ limits: ['6 per 2 seconds', '20/minute'], algorithm: 'moving_window' })
  ]
  const mismatches: string[] = []
  let refused = 0
  for (let i = 0; i < 500; i++) {
    clock.advance((i * 37) % 160)
    const rule = rules[(i * 7 + (i >> 3)) % rules.length] as RateLimitRule
    const a = memory.check('group:search', 'c', rule)
    const b = await redis.check('group:search', 'c', rule)
    if (!a.allowed) refused++
    if (JSON.stringify(a) !== JSON.stringify(b)) mismatches.push(`#${i}: memory ${JSON.stringify(a)} redis ${JSON.stringify(b)}`)
  }
  t.same(mismatches.slice(0, 3), [], 'identical answers')
  t.ok(refused > 50 && refused < 450, `both outcomes exercised (${refused} of 500 refused)`)
})

t.test('more checks than one call takes are split over several calls of one write', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'split:', timeoutMs: SLOW_HOST_MS })
  await store.init()
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '500/minute', algorithm: 'fixed_window' })
  const before = await evalshaCalls(client)
  const answers = await Promise.all(Array.from({ length: 600 }, () => store.check('s', 'a', rule)))
  t.equal(await evalshaCalls(client) - before, 3, '600 checks, 256 per call at most')
  t.equal(answers.filter(a => a.allowed).length, 500)
  t.same(answers.slice(498, 502).map(a => [a.allowed, a.remaining]), [[true, 1], [true, 0], [false, 0], [false, 0]], 'in the order they were made')
})

t.test('checks made turn after turn of the event loop gather into one call, for a few turns at most', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'gather:', timeoutMs: SLOW_HOST_MS })
  await store.init()
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '100/minute' })
  const nextTurn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

  let before = await evalshaCalls(client)
  const three: Array<Promise<RateLimitResult>> = []
  for (let i = 0; i < 3; i++) {
    three.push(Promise.resolve(store.check('s', 'a', rule)))
    await nextTurn()
  }
  t.same((await Promise.all(three)).map(a => a.remaining), [99, 98, 97])
  t.equal(await evalshaCalls(client) - before, 1, 'a check in each of three turns: one call')

  // a check in every turn, on and on: the batch stops waiting after a few turns
  before = await evalshaCalls(client)
  const steady: Array<Promise<RateLimitResult>> = []
  for (let i = 0; i < 12; i++) {
    steady.push(Promise.resolve(store.check('s', 'b', rule)))
    await nextTurn()
  }
  t.same((await Promise.all(steady)).map(a => a.remaining), Array.from({ length: 12 }, (_, i) => 99 - i))
  const calls = await evalshaCalls(client) - before
  t.ok(calls >= 2 && calls <= 6, `12 checks in 12 turns: ${calls} calls`)
})

t.test('pipelining: false sends every check at once, in its own call', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'nopipe:', timeoutMs: SLOW_HOST_MS, pipelining: false })
  await store.init()
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '10/minute' })
  const before = await evalshaCalls(client)
  const answers = await Promise.all(Array.from({ length: 12 }, () => store.check('s', 'a', rule)))
  t.equal(await evalshaCalls(client) - before, 12)
  t.same(answers.map(a => a.allowed), [...Array(10).fill(true), false, false])
})

t.test('opens and closes its own connection from a URL', async t => {
  const store = createRedisRateLimitStore({ url: server.socket, prefix: 'url:', timeoutMs: SLOW_HOST_MS })
  await store.init()
  t.match(await store.check('s', 'a', createRateLimitRule({ limits: '1/minute' })), { allowed: true, degraded: false })
  t.same(await store.health(), { ok: true })
  await store.close()
  if (store.client.status !== 'end') await once(store.client, 'end')
  t.equal(store.client.status, 'end')
  t.match(store.check('s', 'a', createRateLimitRule({ limits: '1/minute' })), { allowed: true, degraded: true }, 'closed: degraded, synchronously')
})

t.test('does not close a client it was given', async t => {
  const store = createRedisRateLimitStore({ client })
  await store.close()
  t.equal(client.status, 'ready')
})

t.test('rejects invalid options', async t => {
  t.throws(() => createRedisRateLimitStore({}), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisRateLimitStore({ client, url: server.socket }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisRateLimitStore({ client, prefix: 'a{b}' }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisRateLimitStore({ client, timeoutMs: 0 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisRateLimitStore({ client, blockedCacheSize: -1 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisRateLimitStore({ client, pipelining: 'yes' as unknown as boolean }), { code: 'WG_ERR_OPTIONS_INVALID' })
})
