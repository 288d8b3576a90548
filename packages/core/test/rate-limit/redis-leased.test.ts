// The Redis store's leased consistency: blocks of allowance taken from Redis and spent locally.
// The bound (at most instances × block over the limit per window), exactness with one instance,
// headers from the block's view, hand-back of what is not used, and fail-open with Redis killed.
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createRateLimitRule, createRedisRateLimitStore, RATE_LIMIT_ALGORITHMS } from '@waygate/core'
import type { RateLimitResult, RateLimitRule, RedisRateLimitStore } from '@waygate/core'
import { startProcess } from '@waygate/core/testing'
import { createClock } from '../helpers/clock.js'
import { startRedisServer } from './helpers/redis-server.js'
import { T0 } from './helpers/store-contract.js'

const CHILD = fileURLToPath(new URL('./helpers/leased-child.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')

function strip (r: RateLimitResult) {
  return { allowed: r.allowed, remaining: r.remaining, retryAfterMs: r.retryAfterMs, limit: r.limit, degraded: r.degraded }
}

t.test('one instance is exact: the same answers as the exact store, request by request (fixed and sliding window)', async t => {
  const server = await startRedisServer(t)
  const clock = createClock(T0)
  for (const algorithm of ['fixed_window', 'sliding_window'] as const) {
    const rule = createRateLimitRule({ limits: '300/second', algorithm })
    const exact = createRedisRateLimitStore({ client: server.client(), now: clock.now, prefix: `exact-${algorithm}:`, timeoutMs: 5000 })
    const leased = createRedisRateLimitStore({ client: server.client(), now: clock.now, prefix: `leased-${algorithm}:`, consistency: 'leased', timeoutMs: 5000 })
    t.teardown(() => Promise.all([exact.close(), leased.close()]))
    await Promise.all([exact.init(), leased.init()])
    t.equal(leased.consistency, 'leased')
    let admitted = 0
    let roundTrips = 0
    const differences: string[] = []
    for (let step = 0; step < 250; step++) {
      // 2 requests per ms: over the limit within the first window, then into the next one
      for (let i = 0; i < 2; i++) {
        const fromLease = leased.check('s', 'a', rule)
        if (fromLease instanceof Promise) roundTrips++
        const a = await fromLease
        const b = await exact.check('s', 'a', rule)
        if (JSON.stringify(strip(a)) !== JSON.stringify(strip(b))) differences.push(`+${clock.now() - T0} ms: ${JSON.stringify(strip(a))} vs ${JSON.stringify(strip(b))}`)
        if (a.allowed) admitted++
      }
      clock.advance(5)
    }
    t.same(differences.slice(0, 5), [], `${algorithm}: 500 checks, the same answer from both (allowed, remaining, retry, limit)`)
    t.ok(admitted > 300, `${algorithm}: ${admitted} admitted over 1.25 windows`)
    // blocks of 3, shrinking to 1 near exhaustion (with the sliding window's previous count weighing in, often)
    t.ok(roundTrips < (algorithm === 'fixed_window' ? admitted / 2 : admitted), `${algorithm}: ${roundTrips} round trips for ${admitted} admitted`)
  }
})

t.test('4 instances (separate connections) on one key: per window at most limit + 4 × block, never far under', async t => {
  const server = await startRedisServer(t)
  const clock = createClock(T0)
  for (const algorithm of RATE_LIMIT_ALGORITHMS) {
    const rule = createRateLimitRule({ limits: '500/second', algorithm })
    const block = 5
    const stores: RedisRateLimitStore[] = []
    for (let i = 0; i < 4; i++) stores.push(createRedisRateLimitStore({ client: server.client(), now: clock.now, consistency: 'leased', prefix: `b-${algorithm}:`, timeoutMs: 5000 }))
    t.teardown(() => Promise.all(stores.map(s => s.close())))
    await Promise.all(stores.map(s => s.init()))
    // admitted requests by time (ms since T0); 10 checks per store every 10 ms, for 3 windows
    const times: number[] = []
    let degraded = 0
    for (let ms = 0; ms < 3000; ms += 10) {
      const answers = await Promise.all(stores.flatMap(s => Array.from({ length: 10 }, () => s.check('s', 'hot', rule))))
      for (const a of answers) {
        if (a.degraded) degraded++
        else if (a.allowed) times.push(ms)
      }
      clock.advance(10)
    }
    t.equal(degraded, 0, `${algorithm}: no degraded answer`)
    const inWindow = (from: number, to: number): number => times.filter(x => x >= from && x < to).length
    // the algorithms' own allowance in any window: the limit (token bucket: a full bucket plus a window's refill)
    const allowance = algorithm === 'token_bucket' ? 1000 : 500
    const starts = algorithm === 'fixed_window' || algorithm === 'sliding_window' ? [0, 1000, 2000] : Array.from({ length: 21 }, (_, i) => i * 100)
    let most = 0
    for (const s of starts) most = Math.max(most, inWindow(s, s + 1000))
    t.ok(most <= allowance + 4 * block, `${algorithm}: at most ${most} admitted in one window (limit ${allowance}, bound ${allowance + 4 * block})`)
    if (algorithm === 'fixed_window') {
      for (const s of starts) {
        const n = inWindow(s, s + 1000)
        t.ok(n >= 500 - 4 * block, `fixed_window: ${n} admitted in window ${s / 1000} (demand 4000)`)
      }
    }
    t.ok(times.length >= 1300, `${algorithm}: ${times.length} admitted over 3 windows`)
  }
})

t.test('4 processes hammering one key: admitted per window within limit + 4 × block', async t => {
  const server = await startRedisServer(t)
  const limit = 400
  const block = 4
  const children = Array.from({ length: 4 }, (_, i) => startProcess(t, `instance ${i}`,
    ['--conditions=@waygate/source', '--import', TSX, CHILD, server.socket, `${limit}/second`, '4000']))
  await Promise.all(children.map(c => c.waitFor(/ready\n/, 60_000)))
  await server.client().set('go', '1') // all four start together
  const reports = await Promise.all(children.map(async c => {
    await c.waitFor(/\{.*\}\n/, 60_000)
    return JSON.parse(/(\{.*\})\n/.exec(c.logs())![1]!) as { admitted: Record<string, number>, refused: number, degraded: number, start: number, end: number }
  }))
  const total = new Map<number, number>()
  for (const r of reports) {
    t.equal(r.degraded, 0, 'no degraded answers')
    for (const [w, n] of Object.entries(r.admitted)) total.set(Number(w), (total.get(Number(w)) ?? 0) + n)
  }
  const allFrom = Math.max(...reports.map(r => r.start))
  const allTo = Math.min(...reports.map(r => r.end))
  let full = 0
  for (const [w, n] of [...total].sort((p, q) => p[0] - q[0])) {
    t.ok(n <= limit + 4 * block, `window ${w}: ${n} admitted (limit ${limit}, bound ${limit + 4 * block})`)
    if (w * 1000 >= allFrom && (w + 1) * 1000 <= allTo) {
      full++
      t.ok(n >= limit - 4 * block, `window ${w}, all four hammering throughout: ${n} admitted`)
    }
  }
  t.ok(full >= 2, `${total.size} windows seen, ${full} with all four hammering throughout`)
  t.ok(reports.every(r => r.refused > 0), 'every instance was refused at times: the demand was above the limit')
})

t.test('headers from the block\'s view, and what a lease does not use goes back', async t => {
  const server = await startRedisServer(t)
  const clock = createClock(T0 + 100)
  const rule = createRateLimitRule({ limits: '1000/minute', algorithm: 'fixed_window' })
  const a = createRedisRateLimitStore({ client: server.client(), now: clock.now, consistency: 'leased', leaseMs: 500, timeoutMs: 5000 })
  const b = createRedisRateLimitStore({ client: server.client(), now: clock.now, consistency: 'leased', leaseMs: 500, timeoutMs: 5000 })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  await Promise.all([a.init(), b.init()])
  const first = await a.check('s', 'x', rule)
  t.match(first, { allowed: true, remaining: 999, limit: 1000, degraded: false })
  const second = a.check('s', 'x', rule)
  t.notOk(second instanceof Promise, 'from the block: answered synchronously')
  t.match(second, { allowed: true, remaining: 998 })
  t.equal(a.leasedUnits, 8, 'a block of 10 (1000 / 100), 2 used')
  t.match(await b.check('s', 'x', rule), { allowed: true, remaining: 989 }, 'the other instance sees the first one\'s block as taken (1000 − 20 + its own 9)')
  const key = a.keyFor('s', 'x', rule.limits[0]!.slot)
  const raw = server.client()
  t.equal(await raw.hget(key, 'c'), '20', 'two blocks taken from the counter')
  clock.advance(600)
  await new Promise(resolve => setTimeout(resolve, 300)) // the sweep hands back what is left
  t.equal(a.leasedUnits + b.leasedUnits, 0)
  t.equal(await raw.hget(key, 'c'), '3', 'the unused 17 went back: the counter holds what was used')
  t.match(await a.check('s', 'x', rule), { allowed: true, remaining: 996 }, 'a new block after the hand-back')

  // a cost other than 1 is an exact check
  const big = await a.check('s', 'x', rule, 5)
  t.match(big, { allowed: true })
  await a.reset('s', 'x')
  t.equal(a.leasedUnits, 0, 'a reset forgets the leases')
  t.match(await a.check('s', 'x', rule), { allowed: true, remaining: 999 })
})

t.test('a refused key is refused locally; a killed Redis fails open (or closed for failClosed), as the exact store', async t => {
  const server = await startRedisServer(t)
  const client = server.client()
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, consistency: 'leased', timeoutMs: 50 })
  t.teardown(() => store.close())
  await store.init()
  const tiny: RateLimitRule = createRateLimitRule({ limits: '2/minute' })
  t.match(await store.check('s', 'a', tiny), { allowed: true, remaining: 1 })
  t.match(await store.check('s', 'a', tiny), { allowed: true, remaining: 0 })
  const refused = await store.check('s', 'a', tiny)
  t.match(refused, { allowed: false, remaining: 0, degraded: false })
  t.ok(refused.retryAfterMs > 0)
  const again = store.check('s', 'a', tiny)
  t.notOk(again instanceof Promise, 'refused from local memory')

  const open = createRateLimitRule({ limits: '5/minute' })
  const closed = createRateLimitRule({ limits: '5/minute', failClosed: true })
  await server.kill()
  const first = await store.check('s', 'b', open)
  t.match(first, { allowed: true, degraded: true }, 'fail-open')
  if (client.status === 'ready') await once(client, 'close')
  let openAnswers = 0
  for (let i = 0; i < 100; i++) {
    const r = await store.check('s', `k${i}`, open)
    if (r.allowed && r.degraded) openAnswers++
  }
  t.equal(openAnswers, 100, 'every check allowed, as degraded')
  t.match(await store.check('s', 'c', closed), { allowed: false, degraded: true }, 'a failClosed rule refuses')
  t.match(await store.health(), { ok: false })
  await server.restart()
  if (client.status !== 'ready') await once(client, 'ready')
  t.match(await store.check('s', 'd', open), { allowed: true, remaining: 4, degraded: false }, 'Redis is used again after it comes back')
})

t.test('a hot counter\'s blocks double up to the largest; a slow one keeps small blocks', async t => {
  const server = await startRedisServer(t)
  const clock = createClock(T0 + 100)
  const store = createRedisRateLimitStore({ client: server.client(), now: clock.now, consistency: 'leased', timeoutMs: 5000 })
  t.teardown(() => store.close())
  await store.init()
  const rule = createRateLimitRule({ limits: '10000000/hour', algorithm: 'fixed_window' })
  // all at one instant: every block is used up at once, so each grant asks for twice the last
  const blocks: number[] = []
  let most = 0
  for (let i = 0; i < 6000; i++) {
    const r = store.check('s', 'hot', rule)
    if (r instanceof Promise) {
      await r
      blocks.push(store.leasedUnits + 1) // the check that waited took one unit of the block
    }
    most = Math.max(most, store.leasedUnits)
  }
  t.same(blocks, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000], 'blocks of 10, 20, … up to the largest, 1000 (min(limit / 100, leaseBlock))')
  t.ok(most < 1000, `never more than one block held (${most})`)
  const raw = server.client()
  t.equal(await raw.hget(store.keyFor('s', 'hot', rule.limits[0]!.slot), 'c'), '6270', 'the counter holds what the blocks took')

  await store.reset('s', 'hot')
  t.equal(store.leasedUnits, 0)
  // 1 check per 60 ms: a block of 10 lasts 600 ms, far longer than a tenth of leaseMs, so it does not grow
  const sizes: number[] = []
  for (let i = 0; i < 35; i++) {
    const r = store.check('s', 'slow', rule)
    if (r instanceof Promise) {
      await r
      sizes.push(store.leasedUnits + 1)
    }
    clock.advance(60)
  }
  t.same(sizes, [10, 10, 10, 10], '35 checks 60 ms apart: a block of 10 every 10 checks')
})
