import { makeResult } from './result.js'
import type { RateLimitRule } from './rule.js'
import type { RateLimitResult } from './types.js'

interface Block {
  rule: RateLimitRule
  until: number
  limit: number
  remaining: number
  resetAt: number
  windowMs: number
  index: number
}

/**
 * Keys a shared store refused, until the time they may pass again. Nothing is consumed while a
 * key is refused and a refused key only frees up with time, so until then the answer is known:
 * it is given from here without a round trip. Only refusals of cost 1 are kept: for those every
 * field of the answer (remaining 0, the reset and retry times) stays exactly what Redis would
 * say, while with a larger cost `remaining` could grow before the request fits. A reset clears
 * it; a changed rule (another object) misses it. Bounded: when full it drops expired blocks (at
 * most once a second) and otherwise stops adding.
 */
export class BlockedCache {
  private readonly scopes = new Map<string, Map<string, Block>>()
  private size = 0
  private lastPrune = Number.NEGATIVE_INFINITY
  private readonly max: number

  constructor (max: number) {
    this.max = max
  }

  get (scope: string, id: string, rule: RateLimitRule, cost: number, now: number, out?: RateLimitResult): RateLimitResult | undefined {
    const block = this.scopes.get(scope)?.get(id)
    if (block === undefined) return undefined
    if (block.until <= now || block.rule !== rule) {
      this.delete(scope, id)
      return undefined
    }
    if (cost !== 1) return undefined
    return makeResult(false, block.limit, block.remaining, block.resetAt, block.until - now, block.windowMs, block.index, false, out)
  }

  set (scope: string, id: string, rule: RateLimitRule, cost: number, result: RateLimitResult, now: number): void {
    if (this.max === 0 || cost !== 1) return
    let byId = this.scopes.get(scope)
    const known = byId?.has(id) === true
    if (!known && this.size >= this.max) {
      this.prune(now)
      if (this.size >= this.max) return
      byId = this.scopes.get(scope)
    }
    if (byId === undefined) {
      byId = new Map()
      this.scopes.set(scope, byId)
    }
    byId.set(id, {
      rule,
      until: now + result.retryAfterMs,
      limit: result.limit,
      remaining: result.remaining,
      resetAt: result.resetAt,
      windowMs: result.windowMs,
      index: result.index
    })
    if (!known) this.size++
  }

  delete (scope: string, id?: string): void {
    const byId = this.scopes.get(scope)
    if (byId === undefined) return
    if (id === undefined) {
      this.size -= byId.size
      this.scopes.delete(scope)
      return
    }
    if (byId.delete(id)) this.size--
    if (byId.size === 0) this.scopes.delete(scope)
  }

  clear (): void {
    this.scopes.clear()
    this.size = 0
  }

  get count (): number {
    return this.size
  }

  private prune (now: number): void {
    if (now - this.lastPrune < 1000 && now >= this.lastPrune) return
    this.lastPrune = now
    for (const [scope, byId] of this.scopes) {
      for (const [id, block] of byId) {
        if (block.until <= now) {
          byId.delete(id)
          this.size--
        }
      }
      if (byId.size === 0) this.scopes.delete(scope)
    }
  }
}
