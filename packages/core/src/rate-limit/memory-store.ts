import { WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { ALGORITHMS, CounterState, type Algorithm } from './algorithms/index.js'
import { WG_ERR_RATE_LIMIT_INVALID } from './errors.js'
import { makeResult, unlimitedResult, validCost } from './result.js'
import type { CompiledLimit, RateLimitRule } from './rule.js'
import type { RateLimitResult, RateLimitStore, RateLimitStoreHealth } from './types.js'

/** Options of {@link createMemoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys (scope and id pairs) held at once; beyond it the least recently used key is
   * forgotten, as if it had expired. Default 100 000.
   */
  maxKeys?: number
  /** How often keys past their reset time are swept, in ms (the timer is unref'd). Default 60 000; 0 turns the timer off. */
  sweepIntervalMs?: number
  /** The clock, epoch ms. Default `Date.now`. */
  now?: () => number
}

/** A rate limit store in this process' memory: it answers every check synchronously. */
export interface MemoryRateLimitStore extends RateLimitStore {
  check(scope: string, id: string, rule: RateLimitRule, cost?: number, out?: RateLimitResult): RateLimitResult
  /** Keys held now. */
  readonly size: number
  /** Drops every key whose state is back to fresh. Resolves how many it dropped. */
  sweep(): number
}

/** Default of {@link MemoryRateLimitStoreOptions.maxKeys}. */
export const DEFAULT_MAX_KEYS = 100_000

// One key: the states of every limit of the rule it was last checked with, in a
// least-recently-used list (head = most recent)
class Entry {
  scope: string
  id: string
  byId: Map<string, Entry>
  rule: RateLimitRule
  states: CounterState[]
  /**
   * States of limits another rule used on this key and the current one does not (routes of one
   * group with different windows): kept until they are fresh again, as Redis keeps their keys.
   */
  spare: Map<string, Spare> | null = null
  spareExpiresAt = 0
  expiresAt = 0
  newer: Entry | null = null
  older: Entry | null = null

  constructor (scope: string, id: string, byId: Map<string, Entry>, rule: RateLimitRule, states: CounterState[]) {
    this.scope = scope
    this.id = id
    this.byId = byId
    this.rule = rule
    this.states = states
  }
}

interface Spare {
  limit: CompiledLimit
  algorithm: Algorithm
  state: CounterState
}

/**
 * Creates a store that keeps counters in memory, bounded by `maxKeys` (least recently used keys
 * go first) with keys past their reset time swept lazily and by a timer. For one process; use
 * the Redis store to share counters between instances.
 */
export function createMemoryRateLimitStore (options: MemoryRateLimitStoreOptions = {}): MemoryRateLimitStore {
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
  const sweepIntervalMs = options.sweepIntervalMs ?? 60_000
  const now = options.now ?? Date.now
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new WG_ERR_OPTIONS_INVALID('maxKeys must be an integer of at least 1')
  if (!Number.isFinite(sweepIntervalMs) || sweepIntervalMs < 0) throw new WG_ERR_OPTIONS_INVALID('sweepIntervalMs must be a number of ms from 0')
  if (typeof now !== 'function') throw new WG_ERR_OPTIONS_INVALID('now must be a function')

  const scopes = new Map<string, Map<string, Entry>>()
  let size = 0
  let newest: Entry | null = null
  let oldest: Entry | null = null
  let closed = false

  const timer = sweepIntervalMs > 0 ? setInterval(sweep, sweepIntervalMs) : null
  timer?.unref()

  function unlink (entry: Entry): void {
    if (entry.newer === null) newest = entry.older
    else entry.newer.older = entry.older
    if (entry.older === null) oldest = entry.newer
    else entry.older.newer = entry.newer
    entry.newer = null
    entry.older = null
  }

  function pushNewest (entry: Entry): void {
    entry.older = newest
    if (newest !== null) newest.newer = entry
    newest = entry
    if (oldest === null) oldest = entry
  }

  function remove (entry: Entry): void {
    unlink(entry)
    entry.byId.delete(entry.id)
    if (entry.byId.size === 0 && scopes.get(entry.scope) === entry.byId) scopes.delete(entry.scope)
    size--
  }

  function freshStates (rule: RateLimitRule, algorithm: Algorithm, t: number): CounterState[] {
    const states: CounterState[] = []
    for (const limit of rule.limits) {
      const st = new CounterState()
      algorithm.init(st, limit, t)
      states.push(st)
    }
    return states
  }

  // Another rule for a known key (a policy changed, routes of one group with other limits): each
  // limit gets the state of its algorithm and window, as the Redis store does by key name; the
  // states the new rule does not use are set aside until they are fresh
  function adopt (entry: Entry, rule: RateLimitRule, algorithm: Algorithm, t: number): void {
    const oldRule = entry.rule
    const old = oldRule.limits
    const oldAlgorithm = ALGORITHMS[oldRule.algorithm]
    const spare = entry.spare ?? new Map<string, Spare>()
    for (let j = 0; j < old.length; j++) {
      const limit = old[j] as CompiledLimit
      spare.set(limit.slot, { limit, algorithm: oldAlgorithm, state: entry.states[j] as CounterState })
    }
    const states: CounterState[] = []
    for (const limit of rule.limits) {
      const kept = spare.get(limit.slot)
      let found: CounterState
      if (kept !== undefined) {
        spare.delete(limit.slot)
        found = kept.state
      } else {
        found = new CounterState()
        algorithm.init(found, limit, t)
      }
      states.push(found)
    }
    let spareExpiresAt = 0
    for (const [slot, kept] of spare) {
      kept.algorithm.normalize(kept.state, kept.limit, t)
      const resetAt = kept.algorithm.resetAt(kept.state, kept.limit, t)
      if (resetAt <= t) spare.delete(slot)
      else if (resetAt > spareExpiresAt) spareExpiresAt = resetAt
    }
    entry.spare = spare.size > 0 ? spare : null
    entry.spareExpiresAt = spareExpiresAt
    entry.rule = rule
    entry.states = states
  }

  function check (scope: string, id: string, rule: RateLimitRule, cost = 1, out?: RateLimitResult): RateLimitResult {
    if (rule.unlimited) return unlimitedResult(out)
    if (!validCost(cost)) throw new WG_ERR_RATE_LIMIT_INVALID(`cost must be an integer from 0, got ${String(cost)}`)
    const algorithm = ALGORITHMS[rule.algorithm]
    const t = now()

    let byId = scopes.get(scope)
    if (byId === undefined) {
      byId = new Map()
      scopes.set(scope, byId)
    }
    let entry = byId.get(id)
    if (entry === undefined) {
      if (size >= maxKeys && oldest !== null) remove(oldest)
      // the eviction may have dropped this scope's map
      if (byId.size === 0 && scopes.get(scope) !== byId) scopes.set(scope, byId)
      entry = new Entry(scope, id, byId, rule, freshStates(rule, algorithm, t))
      byId.set(id, entry)
      pushNewest(entry)
      size++
    } else {
      if (entry !== newest) {
        unlink(entry)
        pushNewest(entry)
      }
      if (entry.expiresAt <= t) {
        // back to fresh: in place when the rule is the same, so a returning client allocates nothing
        entry.spare = null
        if (entry.rule === rule) {
          const limits = rule.limits
          for (let i = 0; i < limits.length; i++) algorithm.init(entry.states[i] as CounterState, limits[i] as CompiledLimit, t)
        } else {
          entry.rule = rule
          entry.states = freshStates(rule, algorithm, t)
        }
      } else if (entry.rule !== rule) {
        adopt(entry, rule, algorithm, t)
      }
    }
    return decide(entry, rule, algorithm, t, cost, out)
  }

  // Normalise every limit, refuse if any refuses (reporting the one that frees up last), else
  // consume from all (reporting the one with the fewest units left). Mirrors the Lua driver.
  function decide (entry: Entry, rule: RateLimitRule, algorithm: Algorithm, t: number, cost: number, out: RateLimitResult | undefined): RateLimitResult {
    const limits = rule.limits
    const states = entry.states
    const n = limits.length
    let worst = -1
    let worstRetry = 0
    for (let i = 0; i < n; i++) {
      const limit = limits[i] as CompiledLimit
      const st = states[i] as CounterState
      algorithm.normalize(st, limit, t)
      const retry = cost > limit.capacity ? limit.windowMs : algorithm.retryAfter(st, limit, t, cost)
      if (retry > worstRetry) {
        worst = i
        worstRetry = retry
      }
    }
    // a refusal writes nothing, as in Redis: the key expires when its last write said
    if (worst >= 0) {
      const limit = limits[worst] as CompiledLimit
      const st = states[worst] as CounterState
      return makeResult(false, limit.capacity, algorithm.remaining(st, limit, t), algorithm.resetAt(st, limit, t),
        worstRetry, limit.windowMs, worst, false, out)
    }
    let best = -1
    let bestRemaining = 0
    let bestReset = 0
    let expiresAt = entry.spare === null || entry.spareExpiresAt < t ? t : entry.spareExpiresAt
    for (let i = 0; i < n; i++) {
      const limit = limits[i] as CompiledLimit
      const st = states[i] as CounterState
      algorithm.consume(st, limit, t, cost)
      const left = algorithm.remaining(st, limit, t)
      const resetAt = algorithm.resetAt(st, limit, t)
      if (resetAt > expiresAt) expiresAt = resetAt
      if (best < 0 || left < bestRemaining) {
        best = i
        bestRemaining = left
        bestReset = resetAt
      }
    }
    entry.expiresAt = expiresAt
    const limit = limits[best] as CompiledLimit
    return makeResult(true, limit.capacity, bestRemaining, bestReset, 0, limit.windowMs, best, false, out)
  }

  function sweep (): number {
    const t = now()
    let dropped = 0
    let entry = oldest
    while (entry !== null) {
      const next: Entry | null = entry.newer
      if (entry.expiresAt <= t) {
        remove(entry)
        dropped++
      }
      entry = next
    }
    return dropped
  }

  function dropScope (byId: Map<string, Entry>): void {
    for (const entry of [...byId.values()]) remove(entry)
  }

  return {
    kind: 'memory',
    check,
    get size () { return size },
    sweep,
    async reset (scope, id) {
      const entry = scopes.get(scope)?.get(id)
      if (entry !== undefined) remove(entry)
    },
    async resetAll (scope) {
      if (scope === undefined) {
        for (const byId of [...scopes.values()]) dropScope(byId)
        return
      }
      const byId = scopes.get(scope)
      if (byId !== undefined) dropScope(byId)
    },
    invalidateLocal () {},
    async health (): Promise<RateLimitStoreHealth> {
      return closed ? { ok: false, detail: 'closed' } : { ok: true }
    },
    async close () {
      closed = true
      if (timer !== null) clearInterval(timer)
    }
  }
}
