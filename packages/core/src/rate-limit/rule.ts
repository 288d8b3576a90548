import { Type, type Static } from '@sinclair/typebox'
import { WG_ERR_RATE_LIMIT_INVALID } from './errors.js'
import { formatLimit, isUnlimited, limitStringError, MAX_LIMIT, parseLimit, type ParsedLimit } from './limit-string.js'

/** How requests are counted. docs/rate-limiting.md pins the exact semantics of each. */
export const RateLimitAlgorithm = Type.Union([
  Type.Literal('fixed_window'),
  Type.Literal('sliding_window'),
  Type.Literal('moving_window'),
  Type.Literal('token_bucket')
], { description: 'How requests are counted; default sliding_window' })
export type RateLimitAlgorithm = Static<typeof RateLimitAlgorithm>

/** Every algorithm, the default first. */
export const RATE_LIMIT_ALGORITHMS: readonly RateLimitAlgorithm[] = ['sliding_window', 'fixed_window', 'moving_window', 'token_bucket']

/** The algorithm a policy gets when it names none. */
export const DEFAULT_ALGORITHM: RateLimitAlgorithm = 'sliding_window'

/**
 * Largest `(limit + burst) × window in ms` a limit may have, so that every step of every
 * algorithm is exact integer arithmetic in JavaScript and in Redis' Lua (both use doubles).
 * It allows about 26 million requests a day, or 37 000 million an hour.
 */
export const MAX_CAPACITY_WINDOW = 2 ** 51

const SLOT_PREFIX: Readonly<Record<RateLimitAlgorithm, string>> = {
  fixed_window: 'fw',
  sliding_window: 'sw',
  moving_window: 'mw',
  token_bucket: 'tb'
}

/** One limit of a rule, ready for the stores. */
export interface CompiledLimit {
  /** Requests per window, as declared. */
  readonly limit: number
  /** Extra units allowed on top of `limit`. */
  readonly burst: number
  /** `limit + burst`: what the counter allows (windows) or holds (token bucket). */
  readonly capacity: number
  readonly windowMs: number
  /** Names the counter: the algorithm and the window (`sw:60000`). */
  readonly slot: string
  /** Canonical text of the limit (`10/minute`). */
  readonly text: string
}

/**
 * What a store checks: an algorithm and one or more limits, all enforced together. Create
 * one with {@link createRateLimitRule} when a policy is compiled and reuse it for every request:
 * stores key their per-rule preparations on its identity.
 */
export interface RateLimitRule {
  readonly algorithm: RateLimitAlgorithm
  /** Empty for an unlimited rule. */
  readonly limits: readonly CompiledLimit[]
  /** The rule is `unlimited`: every request passes and nothing is counted. */
  readonly unlimited: boolean
  /** Refuse, rather than allow, requests when the store cannot answer. */
  readonly failClosed: boolean
}

/** Options of {@link createRateLimitRule}. */
export interface RateLimitRuleOptions {
  /** One limit string or several (all must hold), or `unlimited`. */
  limits: string | readonly string[]
  /** Default `sliding_window`. */
  algorithm?: RateLimitAlgorithm
  /** Extra units on top of every limit. Default 0. */
  burst?: number
  /** Default false. */
  failClosed?: boolean
}

/**
 * Lists every problem of a rule's limits, each prefixed with `path` and the limit's position
 * (`/limits/1: "10/minit" has an unknown unit…`). Empty when the rule is valid.
 */
export function rateLimitRuleErrors (options: RateLimitRuleOptions, path = '/limits'): string[] {
  const list = typeof options.limits === 'string' ? [options.limits] : options.limits
  const single = typeof options.limits === 'string'
  const at = (i: number) => single ? path : `${path}/${i}`
  const errors: string[] = []
  if (!Array.isArray(list) || list.length === 0) return [`${path}: at least one limit is required`]
  const burst = options.burst ?? 0
  if (!Number.isSafeInteger(burst) || burst < 0 || burst > MAX_LIMIT) errors.push(`/burst: must be an integer from 0 to ${MAX_LIMIT}`)
  const windows = new Map<number, number>()
  let unlimited = 0
  list.forEach((text, i) => {
    const error = limitStringError(text)
    if (error !== null) {
      errors.push(`${at(i)}: ${error}`)
      return
    }
    const parsed = parseLimit(text)
    if (isUnlimited(parsed)) {
      unlimited++
      return
    }
    const earlier = windows.get(parsed.windowMs)
    if (earlier !== undefined) {
      errors.push(`${at(i)}: "${text}" has the same window as ${at(earlier)} ("${String(list[earlier])}"); keep the stricter one`)
    } else {
      windows.set(parsed.windowMs, i)
    }
    const capacity = parsed.limit + (Number.isSafeInteger(burst) ? burst : 0)
    if (capacity * parsed.windowMs > MAX_CAPACITY_WINDOW) {
      errors.push(`${at(i)}: "${text}"${burst > 0 ? ` with burst ${burst}` : ''} is too large: (limit + burst) × window in ms must stay under 2^51 (about 26 million a day)`)
    }
  })
  if (unlimited > 0 && list.length > 1) errors.push(`${path}: "unlimited" cannot be combined with other limits`)
  return errors
}

/**
 * Compiles limits into a rule. Throws `WG_ERR_RATE_LIMIT_INVALID` listing every bad limit.
 * `burst` is added to every limit's capacity (see the algorithms' documentation for what it
 * means for each).
 */
export function createRateLimitRule (options: RateLimitRuleOptions): RateLimitRule {
  const errors = rateLimitRuleErrors(options)
  if (errors.length > 0) throw new WG_ERR_RATE_LIMIT_INVALID(errors.join('; '))
  const algorithm = options.algorithm ?? DEFAULT_ALGORITHM
  if (SLOT_PREFIX[algorithm] === undefined) throw new WG_ERR_RATE_LIMIT_INVALID(`/algorithm: unknown algorithm "${String(algorithm)}"`)
  const failClosed = options.failClosed === true
  const list = typeof options.limits === 'string' ? [options.limits] : options.limits
  const parsed = list.map(text => parseLimit(text))
  if (parsed.some(isUnlimited)) return Object.freeze({ algorithm, limits: Object.freeze([]), unlimited: true, failClosed })
  const burst = options.burst ?? 0
  const limits = (parsed as ParsedLimit[]).map(p => Object.freeze({
    limit: p.limit,
    burst,
    capacity: p.limit + burst,
    windowMs: p.windowMs,
    slot: `${SLOT_PREFIX[algorithm]}:${p.windowMs}`,
    text: formatLimit(p)
  }))
  return Object.freeze({ algorithm, limits: Object.freeze(limits), unlimited: false, failClosed })
}
