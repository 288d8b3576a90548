import type { CompiledLimit, RateLimitRule } from './rule.js'
import { UNLIMITED_RESULT, type RateLimitResult } from './types.js'

/** How long a fail-closed store outage asks clients to wait, in ms. */
export const FAIL_CLOSED_RETRY_MS = 1000

// One literal shape for every result, so callers' property reads stay monomorphic; written into
// `out` when the caller lends one (most of a check's allocation is its result object)
export function makeResult (
  allowed: boolean, limit: number, remaining: number, resetAt: number, retryAfterMs: number,
  windowMs: number, index: number, degraded: boolean, out?: RateLimitResult
): RateLimitResult {
  if (out === undefined) return { allowed, limit, remaining, resetAt, retryAfterMs, windowMs, index, degraded }
  out.allowed = allowed
  out.limit = limit
  out.remaining = remaining
  out.resetAt = resetAt
  out.retryAfterMs = retryAfterMs
  out.windowMs = windowMs
  out.index = index
  out.degraded = degraded
  return out
}

/** An unlimited rule's answer, in `out` when one is lent. */
export function unlimitedResult (out?: RateLimitResult): RateLimitResult {
  return out === undefined ? UNLIMITED_RESULT : Object.assign(out, UNLIMITED_RESULT)
}

/**
 * The answer when the store cannot give one: allowed with the first limit's full allowance
 * reported (the counters are unknown), or, for a fail-closed rule, refused for
 * {@link FAIL_CLOSED_RETRY_MS}.
 */
export function degradedResult (rule: RateLimitRule, now: number, out?: RateLimitResult): RateLimitResult {
  const first = rule.limits[0] as CompiledLimit
  return rule.failClosed
    ? makeResult(false, first.capacity, 0, now + FAIL_CLOSED_RETRY_MS, FAIL_CLOSED_RETRY_MS, first.windowMs, 0, true, out)
    : makeResult(true, first.capacity, first.capacity, now, 0, first.windowMs, 0, true, out)
}

const MAX_COST = Number.MAX_SAFE_INTEGER

/** Whether a cost is an integer from 0: checked per call, cheaply. */
export function validCost (cost: number): boolean {
  return Number.isInteger(cost) && cost >= 0 && cost <= MAX_COST
}
