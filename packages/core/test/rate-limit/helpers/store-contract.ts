import { createRateLimitRule, UNLIMITED_RESULT } from '@waygate/core'
import type { RateLimitResult, RateLimitRule, RateLimitRuleOptions, RateLimitStore } from '@waygate/core'
import type { Test } from 'tap'
import { createClock, type FakeClock } from '../../helpers/clock.js'

/** Epoch ms the tables start from: a day boundary, so every window is aligned on it. */
export const T0 = Date.parse('2030-01-01T00:00:00Z')
const MINUTE = 60_000

/** Creates a fresh, empty store on the given clock; it is closed by the suite. */
export type StoreFactory = (clock: FakeClock) => Promise<RateLimitStore>

/** One request of a table: when (ms after T0), how much, for whom, and the whole expected answer. */
export interface Step {
  at: number
  cost?: number
  id?: string
  /** How many identical requests; each expects the next value of `remaining` when it is an array. */
  expect: Omit<Partial<RateLimitResult>, 'remaining' | 'resetAt'> & { remaining?: number | number[], resetAt?: number | number[] }
}

export interface Table {
  name: string
  rule: RateLimitRuleOptions
  steps: Step[]
}

const ok = (remaining: number | number[], resetAt: number | number[]) => ({ allowed: true, retryAfterMs: 0, remaining, resetAt })
const no = (retryAfterMs: number, remaining: number, resetAt: number) => ({ allowed: false, retryAfterMs, remaining, resetAt })

/**
 * The pinned semantics of every algorithm, as tables of (time, cost) → answer. Each table runs
 * unchanged against every store: memory and Redis must give exactly these answers.
 */
export const TABLES: Table[] = [
  {
    name: 'fixed_window: aligned windows, hard reset at the boundary',
    rule: { limits: '5/minute', algorithm: 'fixed_window' },
    steps: [
      { at: 0, expect: ok([4, 3, 2, 1, 0], 60_000) },
      { at: 0, expect: no(60_000, 0, 60_000) },
      { at: 59_999, expect: no(1, 0, 60_000) },
      { at: 60_000, expect: ok(4, 120_000) },
      { at: 119_000, expect: ok([3, 2, 1, 0], 120_000) },
      { at: 119_999, expect: no(1, 0, 120_000) },
      // the known weakness: a full window's allowance on each side of the boundary
      { at: 120_000, expect: ok([4, 3, 2, 1, 0], 180_000) }
    ]
  },
  {
    name: 'sliding_window: previous window weighted by the part of it still inside the last minute',
    rule: { limits: '10/minute', algorithm: 'sliding_window' },
    steps: [
      { at: 30_000, expect: ok([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 120_000) },
      // 10 × (60000 − e) / 60000 + 1 ≤ 10 first holds at e = 6000 of the next window
      { at: 30_000, expect: no(36_000, 0, 120_000) },
      { at: 65_999, expect: no(1, 0, 120_000) },
      { at: 66_000, expect: ok(0, 180_000) },
      { at: 66_000, expect: no(6_000, 0, 180_000) },
      { at: 72_000, expect: ok(0, 180_000) },
      // estimate 10 × 0.5 + 2 = 7, so 3 fit; after this one 2 do
      { at: 90_000, expect: ok(2, 180_000) },
      // two windows later nothing is left of either count
      { at: 185_000, expect: ok(9, 300_000) }
    ]
  },
  {
    name: 'sliding_window: the weighted count is exact, never rounded down',
    rule: { limits: '3/minute' },
    steps: [
      { at: 0, expect: ok([2, 1, 0], 120_000) },
      // cost 0 only looks: 3 × 55/60 = 2.75 counts as 3 for remaining
      { at: 65_000, cost: 0, expect: ok(0, 120_000) },
      // 3 × 50/60 + 1 = 3.5 > 3: refused, though floor(2.5) + 1 = 3 would fit
      { at: 70_000, expect: no(10_000, 0, 120_000) },
      { at: 79_999, expect: no(1, 0, 120_000) },
      // 3 × 40/60 + 1 = 3 exactly: allowed
      { at: 80_000, expect: ok(0, 180_000) }
    ]
  },
  {
    name: 'moving_window: an exact log, each request counted for one window after it',
    rule: { limits: '3/minute', algorithm: 'moving_window' },
    steps: [
      { at: 0, expect: ok(2, 60_000) },
      { at: 10_000, expect: ok(1, 70_000) },
      { at: 20_000, expect: ok(0, 80_000) },
      { at: 30_000, expect: no(30_000, 0, 80_000) },
      { at: 59_999, expect: no(1, 0, 80_000) },
      { at: 60_000, expect: ok(0, 120_000) },
      { at: 60_000, expect: no(10_000, 0, 120_000) },
      // cost 2 needs two free entries: the one of 20 000 must expire too
      { at: 70_000, cost: 2, expect: no(10_000, 1, 120_000) },
      { at: 80_000, cost: 2, expect: ok(0, 140_000) },
      { at: 80_000, expect: no(40_000, 0, 140_000) }
    ]
  },
  {
    name: 'token_bucket: capacity limit + burst, continuous refill of limit per window',
    rule: { limits: '6/minute', algorithm: 'token_bucket', burst: 2 },
    steps: [
      { at: 0, expect: ok([7, 6, 5, 4, 3, 2, 1, 0], [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000]) },
      { at: 0, expect: no(10_000, 0, 80_000) },
      { at: 5_000, expect: no(5_000, 0, 80_000) },
      { at: 10_000, expect: ok(0, 90_000) },
      // 2.5 tokens: one taken, 1.5 left, whole tokens reported
      { at: 35_000, expect: ok(1, 100_000) },
      { at: 35_000, cost: 3, expect: no(15_000, 1, 100_000) },
      { at: 50_000, cost: 3, expect: ok(0, 130_000) },
      { at: 3_600_000, expect: ok(7, 3_610_000) }
    ]
  },
  ...(['fixed_window', 'sliding_window', 'moving_window', 'token_bucket'] as const).map((algorithm): Table => ({
    name: `${algorithm}: 5/minute with burst 3 allows 8 requests before the first 429`,
    rule: { limits: '5/minute', algorithm, burst: 3 },
    steps: [
      { at: 1_000, expect: { ...ok([7, 6, 5, 4, 3, 2, 1, 0], algorithm === 'token_bucket' ? [13_000, 25_000, 37_000, 49_000, 61_000, 73_000, 85_000, 97_000] : algorithm === 'moving_window' ? 61_000 : algorithm === 'fixed_window' ? 60_000 : 120_000), limit: 8 } },
      {
        at: 1_000,
        expect: {
          allowed: false,
          limit: 8,
          remaining: 0,
          // fixed: the window's end; sliding: 8 × (60000 − e) / 60000 + 1 ≤ 8 at e = 7500 of the
          // next window; moving: the first entry expires; token: one token refills in 12 s
          retryAfterMs: { fixed_window: 59_000, sliding_window: 66_500, moving_window: 60_000, token_bucket: 12_000 }[algorithm]
        }
      }
    ]
  })),
  {
    name: 'several limits: all must fit; a refusal consumes nothing; ties report the first',
    rule: { limits: ['1/second', '3/minute'], algorithm: 'fixed_window' },
    steps: [
      { at: 0, expect: { ...ok(0, 1_000), index: 0, limit: 1, windowMs: 1_000 } },
      // refused by the per-second limit five times: the minute limit keeps its 2 units
      { at: 0, expect: { ...no(1_000, 0, 1_000), index: 0 } },
      { at: 0, expect: { ...no(1_000, 0, 1_000), index: 0 } },
      { at: 500, expect: { ...no(500, 0, 1_000), index: 0 } },
      { at: 999, expect: { ...no(1, 0, 1_000), index: 0 } },
      { at: 999, expect: { ...no(1, 0, 1_000), index: 0 } },
      { at: 1_000, expect: { ...ok(0, 2_000), index: 0 } },
      // both have 0 left: the first declared is reported
      { at: 2_000, expect: { ...ok(0, 3_000), index: 0 } },
      // only the minute limit refuses
      { at: 3_000, expect: { ...no(57_000, 0, 60_000), index: 1, limit: 3, windowMs: 60_000 } },
      { at: 60_000, expect: { ...ok(0, 61_000), index: 0 } }
    ]
  },
  {
    name: 'several limits: when both refuse, the one that frees up last is reported',
    rule: { limits: ['1/second', '2/minute'], algorithm: 'sliding_window' },
    steps: [
      { at: 0, expect: { allowed: true, index: 0, remaining: 0 } },
      // both have 0 left: the first declared is reported
      { at: 2_000, expect: { allowed: true, index: 0, remaining: 0 } },
      // per second: 1 + 1 > 1 until 4000; per minute: 2 × (60000 − e) / 60000 + 1 ≤ 2 at e = 30000 of the next window
      { at: 2_100, expect: { allowed: false, index: 1, windowMs: 60_000, retryAfterMs: 90_000 - 2_100 } }
    ]
  },
  {
    name: 'a cost above the capacity is refused for one window, and a cost of 0 only looks',
    rule: { limits: '5/minute', algorithm: 'sliding_window' },
    steps: [
      { at: 0, cost: 6, expect: no(60_000, 5, 0) },
      { at: 0, cost: 0, expect: ok(5, 0) },
      { at: 0, cost: 5, expect: ok(0, 120_000) }
    ]
  }
]

async function answer (store: RateLimitStore, scope: string, id: string, rule: RateLimitRule, cost?: number, out?: RateLimitResult): Promise<RateLimitResult> {
  return store.check(scope, id, rule, cost, out)
}

/**
 * Runs every table and the store behaviours every store shares. `name` labels the stores'
 * subtests; `create` builds an empty store for each.
 */
export function rateLimitStoreContract (t: Test, name: string, create: StoreFactory): void {
  async function setup (t: Test, start = T0) {
    const clock = createClock(start)
    const store = await create(clock)
    t.teardown(() => store.close())
    return { clock, store }
  }

  for (const table of TABLES) {
    t.test(`${name}: ${table.name}`, async t => {
      const { clock, store } = await setup(t)
      const rule = createRateLimitRule(table.rule)
      let n = 0
      for (const step of table.steps) {
        clock.set(T0 + step.at)
        const { remaining, resetAt, ...rest } = step.expect
        const times = Math.max(Array.isArray(remaining) ? remaining.length : 1, Array.isArray(resetAt) ? resetAt.length : 1)
        for (let i = 0; i < times; i++) {
          const result = await answer(store, 'GET:/t', step.id ?? 'client', rule, step.cost)
          const expected: Partial<RateLimitResult> = { ...rest, degraded: false }
          if (remaining !== undefined) expected.remaining = Array.isArray(remaining) ? remaining[i] : remaining
          if (resetAt !== undefined) expected.resetAt = T0 + (Array.isArray(resetAt) ? resetAt[i] as number : resetAt)
          t.match(result, expected, `request ${++n} at +${step.at} ms (cost ${step.cost ?? 1})`)
        }
      }
    })
  }

  t.test(`${name}: keys are independent by scope and id, and unambiguous`, async t => {
    const { store } = await setup(t)
    const rule = createRateLimitRule({ limits: '1/minute' })
    t.match(await answer(store, 'GET:/a', '1.2.3.4', rule), { allowed: true })
    t.match(await answer(store, 'GET:/a', '1.2.3.4', rule), { allowed: false })
    t.match(await answer(store, 'GET:/a', '1.2.3.5', rule), { allowed: true })
    t.match(await answer(store, 'GET:/b', '1.2.3.4', rule), { allowed: true })
    t.match(await answer(store, 'a', 'b|c', rule), { allowed: true })
    t.match(await answer(store, 'a|b', 'c', rule), { allowed: true }, 'a separator inside a scope does not merge keys')
  })

  t.test(`${name}: a changed limit keeps the count of its window; another window starts afresh`, async t => {
    const { store } = await setup(t)
    const five = createRateLimitRule({ limits: '5/minute', algorithm: 'fixed_window' })
    const ten = createRateLimitRule({ limits: '10/minute', algorithm: 'fixed_window' })
    const hourly = createRateLimitRule({ limits: ['5/hour', '10/minute'], algorithm: 'fixed_window' })
    for (let i = 0; i < 4; i++) await answer(store, 'GET:/x', 'u', five)
    t.match(await answer(store, 'GET:/x', 'u', ten), { allowed: true, remaining: 5, limit: 10 })
    t.match(await answer(store, 'GET:/x', 'u', hourly), { allowed: true, remaining: 4, index: 0, limit: 5 }, 'the hour starts afresh')
    t.match(await answer(store, 'GET:/x', 'u', ten), { allowed: true, remaining: 3 }, 'the minute counted through every rule')
    const sliding = createRateLimitRule({ limits: '10/minute' })
    t.match(await answer(store, 'GET:/x', 'u', sliding), { allowed: true, remaining: 9 }, 'another algorithm starts afresh')
  })

  t.test(`${name}: reset one id, every id of a scope, or everything`, async t => {
    const { store } = await setup(t)
    const rule = createRateLimitRule({ limits: '1/minute' })
    const scopes = ['GET:/files/*', 'GET:/files/x', 'GET:/[a]', 'GET:/other']
    const ids = ['1.2.3.4', 'u[1]*']
    // cost 0 only looks: a used key has nothing left
    const refused = async () => {
      const out: string[] = []
      for (const s of scopes) for (const id of ids) if ((await answer(store, s, id, rule, 0)).remaining === 0) out.push(`${s} ${id}`)
      return out
    }
    for (const s of scopes) for (const id of ids) await answer(store, s, id, rule)
    t.equal((await refused()).length, 8)

    await store.reset('GET:/files/*', 'u[1]*')
    t.same(await refused(), scopes.flatMap(s => ids.map(id => `${s} ${id}`)).filter(k => k !== 'GET:/files/* u[1]*'))

    await store.resetAll('GET:/files/*')
    t.same(await refused(), ['GET:/files/x 1.2.3.4', 'GET:/files/x u[1]*', 'GET:/[a] 1.2.3.4', 'GET:/[a] u[1]*', 'GET:/other 1.2.3.4', 'GET:/other u[1]*'],
      'glob characters in a scope are literal')
    await store.resetAll('GET:/[a]')
    t.same(await refused(), ['GET:/files/x 1.2.3.4', 'GET:/files/x u[1]*', 'GET:/other 1.2.3.4', 'GET:/other u[1]*'])

    await store.resetAll()
    t.same(await refused(), [])
    t.match(await answer(store, 'GET:/other', '1.2.3.4', rule), { allowed: true, remaining: 0 })
  })

  t.test(`${name}: a key past its reset time is fresh again`, async t => {
    const { clock, store } = await setup(t)
    for (const algorithm of ['fixed_window', 'sliding_window', 'moving_window', 'token_bucket'] as const) {
      const rule = createRateLimitRule({ limits: ['2/minute', '3/hour'], algorithm })
      clock.set(T0)
      await answer(store, 's', algorithm, rule)
      const last = await answer(store, 's', algorithm, rule)
      t.match(last, { allowed: true, remaining: 0, index: 0 })
      clock.set(T0 + 2 * 60 * MINUTE)
      t.match(await answer(store, 's', algorithm, rule), { allowed: true, remaining: 1, index: 0 }, algorithm)
    }
  })

  t.test(`${name}: an unlimited rule passes without counting`, async t => {
    const { store } = await setup(t)
    const rule = createRateLimitRule({ limits: 'unlimited' })
    t.equal(store.check('GET:/x', 'a', rule), UNLIMITED_RESULT, 'synchronously')
  })

  t.test(`${name}: a lent result object is filled and returned`, async t => {
    const { store } = await setup(t)
    const rule = createRateLimitRule({ limits: '1/minute', algorithm: 'fixed_window' })
    const out = { ...UNLIMITED_RESULT }
    const first = await answer(store, 'GET:/x', 'a', rule, 1, out)
    t.equal(first, out)
    t.same(out, { allowed: true, limit: 1, remaining: 0, resetAt: T0 + 60_000, retryAfterMs: 0, windowMs: 60_000, index: 0, degraded: false })
    t.equal(await answer(store, 'GET:/x', 'a', rule, 1, out), out)
    t.match(out, { allowed: false, retryAfterMs: 60_000 })
    t.equal(store.check('GET:/x', 'a', createRateLimitRule({ limits: 'unlimited' }), 1, out), out)
    t.same(out, UNLIMITED_RESULT)
  })

  t.test(`${name}: a cost that is not an integer from 0 is a coded error`, async t => {
    const { store } = await setup(t)
    const rule = createRateLimitRule({ limits: '5/minute' })
    for (const cost of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      t.throws(() => store.check('GET:/x', 'a', rule, cost), { code: 'WG_ERR_RATE_LIMIT_INVALID' }, String(cost))
    }
  })
}
