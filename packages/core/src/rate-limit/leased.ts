import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { Cluster, Redis } from 'ioredis'
import { WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { createThrottledWarn, silentLogger, type WaygateLogger } from '../logger.js'
import { ALGORITHMS, LUA_PRELUDE, idiv, type LuaScript } from './algorithms/index.js'
import { BlockedCache } from './blocked-cache.js'
import type { RedisRateLimitStore } from './redis-store.js'
import { degradedResult, makeResult } from './result.js'
import type { CompiledLimit, RateLimitAlgorithm, RateLimitRule } from './rule.js'
import type { RateLimitResult } from './types.js'

/**
 * Leased consistency of the Redis store: each instance takes a small block of allowance from a
 * counter in one atomic script call (the same algorithm consumes the whole block at once) and
 * answers checks from it locally, without a round trip. What it does not use goes back to the
 * counter when the lease ends. See docs/rate-limiting.md for the bound this gives.
 */

// Largest block of a lease, and how much of what is left one instance may take near exhaustion
// (the block is also at most 1 % of the limit: the bound stays within 1 % per instance)
export const DEFAULT_LEASE_BLOCK = 1000
/**
 * The block a counter's first lease asks for. A lease used up within a tenth of `leaseMs` asks
 * for twice as much next time, up to the largest block; after one that lapses with units left,
 * the counter starts again from this size.
 */
export const FIRST_LEASE_BLOCK = 10
/** Default of how long a lease is used, in ms, before what is left of it goes back. */
export const DEFAULT_LEASE_MS = 1000
const SHARE_DIVISOR = 8

// The grant: KEYS the limit keys of one check; ARGV[1] a JSON array
// [now, wanted, n, capacity, window, limit (× n)]. It takes min(wanted, max(1, floor(left / 8)))
// units where `left` is the smallest allowance left over the limits, or refuses when a single
// unit does not fit. Reply: granted (0 = refused), index, remaining after, resetAt, retryAfterMs.
const GRANT = `
local A = cjson.decode(ARGV[1])
now = A[1]
local wanted = A[2]
local n = A[3]
local states = {}
local worst, worst_retry = 0, 0
local room = nil
for i = 1, n do
  local o = 3 + 3 * i
  local st = load(KEYS[i], A[o - 2], A[o - 1], A[o])
  states[i] = st
  local r
  if st.cap < 1 then r = st.win else r = retry(st, 1) end
  if r > worst_retry then worst = i; worst_retry = r end
  local left = remaining(st)
  if room == nil or left < room then room = left end
end
if worst > 0 then
  local st = states[worst]
  return { 0, worst - 1, remaining(st), reset_at(st), worst_retry }
end
local k = math.floor(room / ${SHARE_DIVISOR})
if k > wanted then k = wanted end
if k < 1 then k = 1 end
local best, best_remaining, best_reset = 0, 0, 0
for i = 1, n do
  local st = states[i]
  consume(st, k)
  save(st)
  local left = remaining(st)
  if best == 0 or left < best_remaining then best = i; best_remaining = left; best_reset = reset_at(st) end
end
return { k, best - 1, best_remaining, best_reset, 0 }
`

// Handing back: KEYS the limit keys; ARGV[1] [at, units, n, window, limit (× n)], `at` the time
// of the grant. Each algorithm takes the units off the count they were added to, and leaves a
// counter alone that has moved on (a fixed window already over, a reset).
const GIVEBACK: Readonly<Record<RateLimitAlgorithm, string>> = {
  fixed_window: `
local function giveback(key, win, lim, at, units)
  local v = redis.call('HMGET', key, 'w', 'c')
  if not v[1] or tonumber(v[1]) ~= idiv(at, win) then return end
  local c = tonumber(v[2]) - units
  if c < 0 then c = 0 end
  redis.call('HSET', key, 'c', num(c))
end
`,
  sliding_window: `
local function giveback(key, win, lim, at, units)
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
  if not v[1] then return end
  local lw = idiv(at, win)
  local sw = tonumber(v[1])
  local field, value
  if sw == lw then field = 'c'; value = tonumber(v[2])
  elseif sw == lw + 1 then field = 'p'; value = tonumber(v[3])
  else return end
  value = value - units
  if value < 0 then value = 0 end
  redis.call('HSET', key, field, num(value))
end
`,
  moving_window: `
local function giveback(key, win, lim, at, units)
  local s = num(at)
  local members = redis.call('ZRANGEBYSCORE', key, s, s, 'LIMIT', 0, units)
  if #members > 0 then redis.call('ZREM', key, unpack(members)) end
end
`,
  token_bucket: `
local function giveback(key, win, lim, at, units)
  local v = redis.call('HMGET', key, 'd', 'ts', 'u')
  if not v[1] then return end
  local d = tonumber(v[1]) - units * win
  if d < 0 then d = 0 end
  local ts = tonumber(v[2])
  redis.call('HSET', key, 'd', num(d), 'u', num(ts + idiv(d + lim - 1, lim)))
end
`
}

const GIVEBACK_DRIVER = `
local A = cjson.decode(ARGV[1])
local at, units, n = A[1], A[2], A[3]
for i = 1, n do giveback(KEYS[i], A[2 + 2 * i], A[3 + 2 * i], at, units) end
return n
`

function script (source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/** The grant and hand-back scripts of each algorithm. */
export const LEASE_SCRIPTS: Readonly<Record<RateLimitAlgorithm, { grant: LuaScript, giveback: LuaScript }>> = Object.fromEntries(
  Object.entries(ALGORITHMS).map(([name, algorithm]) => [name, {
    grant: script(`-- waygate rate limit lease: ${name}\n${LUA_PRELUDE}${algorithm.lua}${GRANT}`),
    giveback: script(`-- waygate rate limit lease hand-back: ${name}\n${LUA_PRELUDE}${GIVEBACK[name as RateLimitAlgorithm]}${GIVEBACK_DRIVER}`)
  }])
) as Record<RateLimitAlgorithm, { grant: LuaScript, giveback: LuaScript }>

/** The largest block a lease of `rule` asks for: min(smallest capacity / 100, `max`), at least 1. */
export function blockFor (rule: RateLimitRule, max: number): number {
  let smallest = Number.POSITIVE_INFINITY
  for (const l of rule.limits) if (l.capacity < smallest) smallest = l.capacity
  const block = Math.floor(smallest / 100)
  return block < 1 ? 1 : block > max ? max : block
}

// One check waiting for a grant
interface Waiter {
  resolve: (result: RateLimitResult) => void
  out: RateLimitResult | undefined
  now: number
}

interface Lease {
  rule: RateLimitRule
  keys: string[]
  /** Units granted and not yet used. */
  units: number
  /** The block it asks for (it grows while the counter is hot), and the largest it may ask for. */
  size: number
  most: number
  /** Time of the grant (the `now` sent with it), and the end of its use. */
  at: number
  until: number
  // what the grant reported, for the headers
  limit: number
  remaining: number
  resetAt: number
  windowMs: number
  index: number
  /** A grant in flight, and the checks waiting for it. */
  fetching: boolean
  waiters: Waiter[]
  deadline: number
}

/** How the leases reach Redis; the store provides it. */
export interface LeaseTransport {
  ready(): boolean
  call(script: LuaScript, keys: string[], json: string): Promise<unknown>
  keyFor(scope: string, id: string, slot: string): string
  degrade(rule: RateLimitRule, t: number, reason: string, err?: unknown, out?: RateLimitResult): RateLimitResult
  ok(): void
}

export interface LeaseOptions {
  block: number
  leaseMs: number
  timeoutMs: number
  now: () => number
  blocked: BlockedCache
}

/**
 * The local leases of one store: at most one per counter address (scope, id) at any time, so that
 * what one instance holds beyond the counter is never more than one block.
 */
export class Leases {
  private readonly scopes = new Map<string, Map<string, Lease>>()
  private readonly transport: LeaseTransport
  private readonly options: LeaseOptions
  private readonly timer: NodeJS.Timeout
  private closed = false

  constructor (transport: LeaseTransport, options: LeaseOptions) {
    this.transport = transport
    this.options = options
    this.timer = setInterval(() => this.sweep(), Math.max(20, Math.min(100, options.leaseMs / 2)))
    this.timer.unref()
  }

  /** A check of cost 1: from the lease when it has a unit left, otherwise after a grant. */
  check (scope: string, id: string, rule: RateLimitRule, t: number, out?: RateLimitResult): RateLimitResult | Promise<RateLimitResult> {
    let byId = this.scopes.get(scope)
    let lease = byId?.get(id)
    if (lease !== undefined && lease.rule !== rule && !lease.fetching) {
      this.end(scope, id, lease)
      lease = undefined
    }
    if (lease !== undefined && !lease.fetching && lease.units > 0 && t < lease.until) {
      lease.units--
      return makeResult(true, lease.limit, lease.remaining + lease.units, lease.resetAt, 0, lease.windowMs, lease.index, false, out)
    }
    if (lease !== undefined && lease.fetching) {
      return new Promise(resolve => { (lease as Lease).waiters.push({ resolve, out, now: t }) })
    }
    if (this.closed) return this.transport.degrade(rule, t, 'store closed', undefined, out)
    if (!this.transport.ready()) return this.transport.degrade(rule, t, 'connection down', undefined, out)
    const most = blockFor(rule, this.options.block)
    let size = FIRST_LEASE_BLOCK
    if (lease !== undefined) {
      // the next block of this counter: twice as large when the last one went within a tenth of
      // its time, the same when it went more slowly, the first size again when it lapsed unused
      // (or was never granted: a grant that failed leaves `until` at `at`)
      if (lease.units === 0 && lease.until > lease.at) size = t - lease.at < this.options.leaseMs / 10 ? lease.size * 2 : lease.size
      this.giveback(lease) // what is left of an ended lease goes back first
    }
    if (size > most) size = most
    if (size < 1) size = 1
    if (byId === undefined) {
      byId = new Map()
      this.scopes.set(scope, byId)
    }
    const keys: string[] = new Array(rule.limits.length)
    for (let i = 0; i < keys.length; i++) keys[i] = this.transport.keyFor(scope, id, (rule.limits[i] as CompiledLimit).slot)
    const fresh: Lease = {
      rule,
      keys,
      units: 0,
      size,
      most,
      at: t,
      until: t,
      limit: 0,
      remaining: 0,
      resetAt: t,
      windowMs: 0,
      index: 0,
      fetching: true,
      waiters: [],
      deadline: 0
    }
    byId.set(id, fresh)
    return new Promise(resolve => {
      fresh.waiters.push({ resolve, out, now: t })
      this.grant(scope, id, fresh, t)
    })
  }

  private grant (scope: string, id: string, lease: Lease, t: number): void {
    const rule = lease.rule
    const numbers: number[] = [t, lease.size, rule.limits.length]
    for (const l of rule.limits) numbers.push(l.capacity, l.windowMs, l.limit)
    lease.fetching = true
    lease.at = t
    lease.deadline = performance.now() + this.options.timeoutMs
    this.transport.call(LEASE_SCRIPTS[rule.algorithm].grant, lease.keys, JSON.stringify(numbers))
      .then(reply => this.granted(scope, id, lease, t, reply), err => this.failed(lease, 'command failed', err))
  }

  private granted (scope: string, id: string, lease: Lease, t: number, reply: unknown): void {
    const r = reply as number[]
    const limit = Array.isArray(r) && r.length === 5 ? lease.rule.limits[r[1] as number] : undefined
    if (!lease.fetching || this.scopes.get(scope)?.get(id) !== lease) {
      // answered too late (the waiters were answered degraded) or reset since: hand the units back
      if (limit !== undefined && (r[0] as number) > 0 && this.scopes.get(scope)?.get(id) === lease) {
        this.send(lease, t, r[0] as number)
      }
      return
    }
    if (limit === undefined) {
      this.failed(lease, 'unexpected script reply', reply)
      return
    }
    this.transport.ok()
    const units = r[0] as number
    lease.fetching = false
    if (units === 0) {
      // refused: every waiter gets the refusal, and the key is refused locally until it may pass
      this.scopes.get(scope)?.delete(id)
      const waiters = lease.waiters
      lease.waiters = []
      let first: RateLimitResult | undefined
      for (const w of waiters) {
        const result = makeResult(false, limit.capacity, r[2] as number, r[3] as number, Math.max(1, (r[4] as number) - (w.now - t)), limit.windowMs, r[1] as number, false, w.out)
        if (first === undefined) {
          first = result
          this.options.blocked.set(scope, id, lease.rule, 1, result, t)
        }
        w.resolve(result)
      }
      return
    }
    lease.units = units
    lease.until = endOf(lease.rule, t, this.options.leaseMs)
    lease.limit = limit.capacity
    lease.remaining = r[2] as number
    lease.resetAt = r[3] as number
    lease.windowMs = limit.windowMs
    lease.index = r[1] as number
    const waiters = lease.waiters
    lease.waiters = []
    let i = 0
    for (; i < waiters.length && lease.units > 0; i++) {
      const w = waiters[i] as Waiter
      lease.units--
      w.resolve(makeResult(true, lease.limit, lease.remaining + lease.units, lease.resetAt, 0, lease.windowMs, lease.index, false, w.out))
    }
    if (i < waiters.length) {
      // more checks than units: the rest wait for the next block, a larger one
      lease.waiters = waiters.slice(i)
      lease.size = Math.min(lease.size * 2, lease.most)
      if (this.closed || !this.transport.ready()) {
        this.failed(lease, 'connection down')
        return
      }
      this.grant(scope, id, lease, (lease.waiters[0] as Waiter).now)
    }
  }

  private failed (lease: Lease, reason: string, err?: unknown): void {
    if (!lease.fetching) return
    lease.fetching = false
    lease.units = 0
    const waiters = lease.waiters
    lease.waiters = []
    for (const w of waiters) w.resolve(this.transport.degrade(lease.rule, w.now, reason, err, w.out))
  }

  /** Hands back what is left of a lease (its units are then gone from here). */
  private giveback (lease: Lease): void {
    if (lease.units > 0) this.send(lease, lease.at, lease.units)
    lease.units = 0
  }

  private send (lease: Lease, at: number, units: number): void {
    if (!this.transport.ready()) return
    const rule = lease.rule
    const numbers: number[] = [at, units, rule.limits.length]
    for (const l of rule.limits) numbers.push(l.windowMs, l.limit)
    this.transport.call(LEASE_SCRIPTS[rule.algorithm].giveback, lease.keys, JSON.stringify(numbers)).catch(() => {})
  }

  private end (scope: string, id: string, lease: Lease): void {
    this.giveback(lease)
    const byId = this.scopes.get(scope)
    byId?.delete(id)
    if (byId?.size === 0) this.scopes.delete(scope)
  }

  /** Ends leases past their time (handing back what is left) and answers grants past their timeout. */
  sweep (): void {
    const t = this.options.now()
    const p = performance.now()
    for (const [scope, byId] of this.scopes) {
      for (const [id, lease] of byId) {
        if (lease.fetching) {
          if (lease.deadline <= p) this.failed(lease, `no answer within ${this.options.timeoutMs} ms`)
          continue
        }
        // a lease used up stays until its time ends, for the size of the next block
        if (t >= lease.until) {
          this.giveback(lease)
          byId.delete(id)
        }
      }
      if (byId.size === 0) this.scopes.delete(scope)
    }
  }

  /** Forgets leases without handing anything back: their counters were reset. */
  forget (scope?: string, id?: string): void {
    const drop = (lease: Lease): void => {
      lease.units = 0
      lease.fetching = false
    }
    if (scope === undefined) {
      for (const byId of this.scopes.values()) for (const lease of byId.values()) if (!lease.fetching) drop(lease)
      this.scopes.clear()
      return
    }
    const byId = this.scopes.get(scope)
    if (byId === undefined) return
    if (id === undefined) {
      for (const lease of byId.values()) if (!lease.fetching) drop(lease)
      this.scopes.delete(scope)
      return
    }
    const lease = byId.get(id)
    if (lease !== undefined && !lease.fetching) drop(lease)
    byId.delete(id)
  }

  /** Units held here right now, over every lease (for tests and status). */
  get held (): number {
    let n = 0
    for (const byId of this.scopes.values()) for (const lease of byId.values()) n += lease.units
    return n
  }

  /** Hands back every lease and answers the checks still waiting as degraded. */
  close (): void {
    this.closed = true
    clearInterval(this.timer)
    for (const byId of this.scopes.values()) {
      for (const lease of byId.values()) {
        if (lease.fetching) this.failed(lease, 'store closed')
        else this.giveback(lease)
      }
    }
    this.scopes.clear()
  }
}

// A lease is used until `leaseMs` after its grant, and never past the end of the current window
// of a fixed or sliding window (units taken in one window are only good in that window)
function endOf (rule: RateLimitRule, t: number, leaseMs: number): number {
  let until = t + leaseMs
  if (rule.algorithm === 'fixed_window' || rule.algorithm === 'sliding_window') {
    for (const l of rule.limits) {
      const end = (idiv(t, l.windowMs) + 1) * l.windowMs
      if (end < until) until = end
    }
  }
  return until
}

/** What {@link leasedStore} needs of the store's options. */
export interface LeasedStoreOptions {
  now?: () => number
  timeoutMs?: number
  logger?: WaygateLogger
  blockedCacheSize?: number
  leaseBlock?: number
  leaseMs?: number
}

/**
 * The Redis store in leased consistency: checks of cost 1 are answered from local leases; other
 * costs, resets, health and closing go to the exact store underneath.
 */
export function leasedStore (inner: RedisRateLimitStore, options: LeasedStoreOptions): RedisRateLimitStore {
  const now = options.now ?? Date.now
  const timeoutMs = options.timeoutMs ?? 50
  const block = options.leaseBlock ?? DEFAULT_LEASE_BLOCK
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
  if (!Number.isSafeInteger(block) || block < 1) throw new WG_ERR_OPTIONS_INVALID('leaseBlock must be an integer from 1')
  if (!Number.isFinite(leaseMs) || leaseMs < 1) throw new WG_ERR_OPTIONS_INVALID('leaseMs must be a number of ms from 1')
  const warn = createThrottledWarn(options.logger ?? silentLogger, now)
  const blocked = new BlockedCache(options.blockedCacheSize ?? 50_000)
  const client = inner.client
  let lastError: string | null = null

  function call (script: LuaScript, keys: string[], json: string): Promise<unknown> {
    return client.evalsha(script.sha, keys.length, ...keys, json).catch((err: unknown) => {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err
      return client.eval(script.source, keys.length, ...keys, json)
    })
  }

  const leases = new Leases({
    ready: () => client.status === 'ready',
    call,
    keyFor: inner.keyFor,
    degrade (rule, t, reason, err, out) {
      lastError = reason
      warn('rate-limit-redis', { err, reason, failClosed: rule.failClosed },
        `rate limit store unavailable (${reason}): requests are ${rule.failClosed ? 'refused (failClosed)' : 'allowed (fail-open)'}`)
      return degradedResult(rule, t, out)
    },
    ok () { lastError = null }
  }, { block, leaseMs, timeoutMs, now, blocked })

  return {
    kind: inner.kind,
    consistency: 'leased',
    client,
    keyFor: inner.keyFor,
    check (scope, id, rule, cost = 1, out) {
      if (cost !== 1 || rule.unlimited) return inner.check(scope, id, rule, cost, out)
      const t = now()
      const known = blocked.get(scope, id, rule, 1, t, out)
      if (known !== undefined) return known
      return leases.check(scope, id, rule, t, out)
    },
    async init () {
      await inner.init()
      try {
        const nodes = typeof (client as Cluster).nodes === 'function' ? (client as Cluster).nodes('master') : [client as Redis]
        for (const node of nodes) {
          for (const pair of Object.values(LEASE_SCRIPTS)) {
            await node.script('LOAD', pair.grant.source)
            await node.script('LOAD', pair.giveback.source)
          }
        }
      } catch {
        // logged by the store's own init; EVALSHA falls back to the source
      }
    },
    async reset (scope, id) {
      leases.forget(scope, id)
      blocked.delete(scope, id)
      await inner.reset(scope, id)
      leases.forget(scope, id)
      blocked.delete(scope, id)
    },
    async resetAll (scope) {
      leases.forget(scope)
      if (scope === undefined) blocked.clear()
      else blocked.delete(scope)
      await inner.resetAll(scope)
      leases.forget(scope)
      if (scope === undefined) blocked.clear()
      else blocked.delete(scope)
    },
    invalidateLocal (scope, id) {
      leases.forget(scope, id)
      if (scope === undefined) blocked.clear()
      else blocked.delete(scope, id)
      inner.invalidateLocal(scope, id)
    },
    async health () {
      const health = await inner.health()
      return health.ok && lastError !== null && health.detail === undefined ? { ok: true, detail: `last failure: ${lastError}` } : health
    },
    async close () {
      // what the leases hold goes back before the connection closes (the hand-backs are queued first)
      leases.close()
      blocked.clear()
      await inner.close()
    },
    get leasedUnits () { return leases.held }
  }
}
