import type { RateLimitRule } from './rule.js'

/**
 * The answer to one rate limit check: everything the `RateLimit` / `RateLimit-Policy` headers
 * (IETF draft), the legacy `X-RateLimit-*` headers and the 429 body need.
 *
 * With several limits on a rule it describes the most restrictive one: when refused, the
 * refusing limit that frees up last; when allowed, the limit with the fewest units left (the
 * first declared on a tie).
 */
export interface RateLimitResult {
  /** Whether the request may proceed. */
  allowed: boolean
  /** Units the reported limit allows per window: its limit plus burst. */
  limit: number
  /** Units left right now under the reported limit, after this request when it was allowed. */
  remaining: number
  /**
   * Epoch ms at which the reported limit's whole allowance is back if no further request comes:
   * the header's reset time. For a refused request it is never before `now + retryAfterMs`.
   */
  resetAt: number
  /** 0 when allowed; otherwise ms until the same request would be allowed (at least 1). */
  retryAfterMs: number
  /** Window of the reported limit, in ms (the `w` of `RateLimit-Policy`). */
  windowMs: number
  /** Index in `rule.limits` of the reported limit; -1 for an unlimited rule. */
  index: number
  /**
   * The store could not answer (Redis down or slower than its timeout): the request was allowed
   * (fail-open), or refused when the rule is `failClosed`. Counters were not touched.
   */
  degraded: boolean
}

/** What a store can report about itself, for status endpoints. */
export interface RateLimitStoreHealth {
  ok: boolean
  detail?: string
}

/**
 * Where rate limit counters live. A counter is addressed by a scope (a route key, a group, the
 * global policy) and an id within it (an address, a user, an API key). Each limit of a rule
 * has its own counter under that address, named by its algorithm and window, so changing a
 * limit's count keeps the counts already made while changing its window or algorithm starts
 * afresh.
 */
export interface RateLimitStore {
  /** `memory` or `redis`. */
  readonly kind: string
  /**
   * Counts a request of `cost` units (default 1, an integer from 0; 0 only looks) against every
   * limit of `rule`, all or nothing: a request refused by one limit consumes no quota of the
   * others. Answers synchronously whenever it can (the memory store always; the Redis store for
   * unlimited rules, keys it knows to be blocked and an unreachable server) and with a promise
   * otherwise. Never rejects for a store failure: see {@link RateLimitResult.degraded}.
   *
   * `out`, when given, is filled and returned instead of a new object (for an unlimited rule,
   * with the fields of {@link UNLIMITED_RESULT}): lend one only where it is read before the next
   * check that is lent it, e.g. a scratch object used right after a synchronous answer.
   */
  check(scope: string, id: string, rule: RateLimitRule, cost?: number, out?: RateLimitResult): RateLimitResult | Promise<RateLimitResult>
  /** Forgets the counters of one id in a scope, under every rule. */
  reset(scope: string, id: string): Promise<void>
  /** Forgets the counters of every id in a scope, or every counter of the store without one. */
  resetAll(scope?: string): Promise<void>
  /**
   * Forgets what this process caches about counters held elsewhere (the Redis store's list of
   * blocked keys), without touching the counters: for a reset made by another instance.
   */
  invalidateLocal(scope?: string, id?: string): void
  health(): Promise<RateLimitStoreHealth>
  /** Stops timers and, for a connection the store opened itself, closes it. */
  close(): Promise<void>
}

/** What every store answers for an unlimited rule: allowed, without touching any counter. */
export const UNLIMITED_RESULT: Readonly<RateLimitResult> = Object.freeze({
  allowed: true,
  limit: Number.POSITIVE_INFINITY,
  remaining: Number.POSITIVE_INFINITY,
  resetAt: 0,
  retryAfterMs: 0,
  windowMs: 0,
  index: -1,
  degraded: false
})
