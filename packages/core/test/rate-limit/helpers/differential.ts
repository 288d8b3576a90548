import { createRateLimitRule } from '@waygate/core'
import type { RateLimitResult, RateLimitRule, RateLimitStore } from '@waygate/core'
import type { FakeClock } from '../../helpers/clock.js'

/** The part of a tap test the differential needs. */
export interface DifferentialTest {
  same (found: unknown, wanted: unknown, ...message: [] | [string]): unknown
  ok (value: unknown, ...message: [] | [string]): unknown
}

/**
 * Random traffic (a fixed seed: the same on every run) over every algorithm and several limits,
 * sent to a memory store and to `other` on one clock: every answer must be identical, and both
 * outcomes must occur.
 */
export async function randomTrafficAgrees (t: DifferentialTest, clock: FakeClock, memory: RateLimitStore, other: RateLimitStore): Promise<void> {
  // mulberry32
  let seed = 42
  const random = (n: number): number => {
    seed = (seed + 0x6D2B79F5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return (((x ^ (x >>> 14)) >>> 0) % n)
  }
  for (const algorithm of ['fixed_window', 'sliding_window', 'moving_window', 'token_bucket'] as const) {
    const rules: RateLimitRule[] = [
      createRateLimitRule({ limits: ['3/second', '7 per 10 seconds'], algorithm }),
      createRateLimitRule({ limits: ['4/second', '7 per 10 seconds'], algorithm, burst: 1 }),
      // a single limit takes the script's straight path where the algorithm has one
      createRateLimitRule({ limits: '3/second', algorithm, burst: 1 })
    ]
    const mismatches: string[] = []
    let allowed = 0
    for (let i = 0; i < 400; i++) {
      clock.advance(random(5) === 0 ? random(2500) : random(120))
      const r = random(10)
      const rule = rules[r === 0 ? 1 : r < 4 ? 2 : 0] as RateLimitRule
      const id = `c${random(3)}${r < 4 && r > 0 ? 's' : ''}`
      const cost = random(8) === 0 ? random(4) : 1
      const a = memory.check('s', id, rule, cost) as RateLimitResult
      const b = await other.check('s', id, rule, cost)
      if (a.allowed) allowed++
      if (JSON.stringify(a) !== JSON.stringify(b)) mismatches.push(`#${i} ${id} cost ${cost}: memory ${JSON.stringify(a)} other ${JSON.stringify(b)}`)
    }
    t.same(mismatches, [], `${algorithm}: identical answers`)
    t.ok(allowed > 50 && allowed < 390, `${algorithm}: both outcomes exercised (${allowed} allowed)`)
  }
}
