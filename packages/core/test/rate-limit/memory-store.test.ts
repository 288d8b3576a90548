import t from 'tap'
import { createMemoryRateLimitStore, createRateLimitRule, DEFAULT_MAX_KEYS } from '@waygate/core'
import { createClock } from '../helpers/clock.js'
import { rateLimitStoreContract, T0 } from './helpers/store-contract.js'

rateLimitStoreContract(t, 'memory', async clock => createMemoryRateLimitStore({ now: clock.now, sweepIntervalMs: 0 }))

t.test('answers synchronously', async t => {
  const store = createMemoryRateLimitStore({ sweepIntervalMs: 0 })
  t.teardown(() => store.close())
  const result = store.check('GET:/x', 'a', createRateLimitRule({ limits: '1/minute' }))
  t.notOk(result instanceof Promise)
  t.match(result, { allowed: true, remaining: 0, degraded: false })
})

t.test('holds at most maxKeys keys (default 100 000) with 200 000 distinct clients', async t => {
  const clock = createClock(T0)
  const store = createMemoryRateLimitStore({ now: clock.now, sweepIntervalMs: 0 })
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '1/hour' })
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < 200_000; i++) store.check('GET:/x', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, rule)
  t.equal(store.size, DEFAULT_MAX_KEYS)
  const grownMb = (process.memoryUsage().heapUsed - before) / 1e6
  t.ok(grownMb < 120, `heap grew ${grownMb.toFixed(1)} MB for 100 000 keys`)
  // the most recent keys are still counted, the oldest forgotten
  t.match(store.check('GET:/x', '10.3.13.63', rule), { allowed: false }, 'client 199 999 is remembered')
  t.match(store.check('GET:/x', '10.0.0.0', rule), { allowed: true }, 'client 0 was evicted')
})

t.test('evicts the least recently used key, not the oldest created', async t => {
  const store = createMemoryRateLimitStore({ maxKeys: 3, sweepIntervalMs: 0 })
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '1/hour' })
  for (const id of ['a', 'b', 'c']) store.check('s', id, rule)
  store.check('s', 'a', rule)
  store.check('s', 'd', rule)
  t.equal(store.size, 3)
  t.match(store.check('s', 'a', rule), { allowed: false }, 'a was used recently')
  t.match(store.check('s', 'b', rule), { allowed: true }, 'b was the least recently used')
})

t.test('sweeps keys whose state is back to fresh, and only those', async t => {
  const clock = createClock(T0)
  const store = createMemoryRateLimitStore({ now: clock.now, sweepIntervalMs: 0 })
  t.teardown(() => store.close())
  const minute = createRateLimitRule({ limits: '5/minute', algorithm: 'fixed_window' })
  const day = createRateLimitRule({ limits: '5/day', algorithm: 'fixed_window' })
  store.check('s', 'short', minute)
  store.check('s', 'long', day)
  store.check('s', 'peek', minute, 0)
  t.equal(store.size, 3)
  t.equal(store.sweep(), 1, 'a key that only looked holds nothing')
  clock.set(T0 + 60_000)
  t.equal(store.sweep(), 1)
  t.equal(store.size, 1)
  t.match(store.check('s', 'long', day), { remaining: 3 })
})

t.test('the sweep timer runs by itself and is unref\'d', async t => {
  let now = T0
  const store = createMemoryRateLimitStore({ now: () => now, sweepIntervalMs: 5 })
  t.teardown(() => store.close())
  store.check('s', 'a', createRateLimitRule({ limits: '5/second' }))
  t.equal(store.size, 1)
  now += 10_000
  await new Promise(resolve => setTimeout(resolve, 30))
  t.equal(store.size, 0)
})

t.test('reset and resetAll resolve and forget', async t => {
  const store = createMemoryRateLimitStore({ sweepIntervalMs: 0 })
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '1/hour' })
  store.check('a', '1', rule)
  store.check('a', '2', rule)
  store.check('b', '1', rule)
  await store.reset('a', '1')
  await store.reset('a', 'unknown')
  t.equal(store.size, 2)
  await store.resetAll('a')
  t.equal(store.size, 1)
  await store.resetAll()
  t.equal(store.size, 0)
  t.same(await store.health(), { ok: true })
  await store.close()
  t.same(await store.health(), { ok: false, detail: 'closed' })
})

t.test('rejects invalid options', async t => {
  t.throws(() => createMemoryRateLimitStore({ maxKeys: 0 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createMemoryRateLimitStore({ sweepIntervalMs: -1 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createMemoryRateLimitStore({ now: 1 as unknown as () => number }), { code: 'WG_ERR_OPTIONS_INVALID' })
})
