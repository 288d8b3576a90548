import { performance } from 'node:perf_hooks'
import { Redis, type Cluster } from 'ioredis'
import { WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { createThrottledWarn, silentLogger, type WaygateLogger } from '../logger.js'
import { LUA_SCRIPTS, type LuaScript } from './algorithms/index.js'
import { BlockedCache } from './blocked-cache.js'
import { WG_ERR_RATE_LIMIT_INVALID } from './errors.js'
import { degradedResult, makeResult, unlimitedResult, validCost } from './result.js'
import type { RateLimitRule } from './rule.js'
import type { RateLimitResult, RateLimitStore, RateLimitStoreHealth } from './types.js'

/** Options of {@link createRedisRateLimitStore}. */
export interface RedisRateLimitStoreOptions {
  /** A connected (or connecting) ioredis client or Cluster; the store never closes it. */
  client?: Redis | Cluster
  /** Or a Redis URL (or unix socket path) to open a connection the store owns and closes. */
  url?: string
  /** Namespace of every key. Default `waygate:rl:`. May not contain `{` or `}`. */
  prefix?: string
  /**
   * Longest wait for Redis, in ms; a check that takes longer is answered as degraded (allowed,
   * or refused when the rule is fail-closed). Default 50.
   */
  timeoutMs?: number
  /** The clock, epoch ms, sent to Redis with every check. Default `Date.now`. */
  now?: () => number
  /** A pino-compatible logger for store failures (at most one warning per 30 s). Default silent. */
  logger?: WaygateLogger
  /** Most keys remembered as blocked, answered without a round trip. Default 50 000; 0 turns it off. */
  blockedCacheSize?: number
}

/** A rate limit store in Redis: one atomic script call per check, shared by every instance. */
export interface RedisRateLimitStore extends RateLimitStore {
  readonly client: Redis | Cluster
  /**
   * Waits (up to 2 s) for the connection and loads the scripts. Never rejects: while Redis is
   * unreachable, checks are answered as degraded and the failure is logged.
   */
  init(): Promise<void>
  /** The Redis key of one limit's counter: `<prefix>{<scope length>:<scope>|<id>}:<slot>`. */
  keyFor(scope: string, id: string, slot: string): string
}

/** Default of {@link RedisRateLimitStoreOptions.prefix}. */
export const DEFAULT_REDIS_PREFIX = 'waygate:rl:'

// What a rule needs per call, computed once per rule object
interface Prepared {
  script: LuaScript
  slots: string[]
  tail: number[]
}

interface Pending {
  resolve: (result: RateLimitResult) => void
  deadline: number
  done: boolean
  scope: string
  id: string
  rule: RateLimitRule
  cost: number
  now: number
  args: Array<string | number>
  out: RateLimitResult | undefined
}

type ScriptReply = [number, number, number, number, number]

/**
 * Creates a store that keeps counters in Redis with one Lua script per algorithm. Every key of
 * one check shares a hash tag (scope and id), so each check is one EVALSHA on one Cluster slot.
 * A check Redis does not answer within `timeoutMs`, or made while the connection is down, is
 * answered at once as degraded and never queued. A key Redis refused is refused from memory,
 * without a round trip, until it may pass again.
 */
export function createRedisRateLimitStore (options: RedisRateLimitStoreOptions): RedisRateLimitStore {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  const timeoutMs = options.timeoutMs ?? 50
  const now = options.now ?? Date.now
  const logger = options.logger ?? silentLogger
  const blockedCacheSize = options.blockedCacheSize ?? 50_000
  if ((options.client === undefined) === (options.url === undefined)) throw new WG_ERR_OPTIONS_INVALID('give the rate limit Redis store either client or url')
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new WG_ERR_OPTIONS_INVALID('prefix must be a string without { or }')
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1) throw new WG_ERR_OPTIONS_INVALID('timeoutMs must be a number of ms from 1')
  if (!Number.isSafeInteger(blockedCacheSize) || blockedCacheSize < 0) throw new WG_ERR_OPTIONS_INVALID('blockedCacheSize must be an integer from 0')
  if (typeof now !== 'function') throw new WG_ERR_OPTIONS_INVALID('now must be a function')

  const owned = options.client === undefined
  // An own connection does not queue commands while down: checks are answered as degraded instead
  const client: Redis | Cluster = options.client ?? new Redis(options.url as string, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1
  })
  const warn = createThrottledWarn(logger, now)
  if (owned) client.on('error', err => { warn('rate-limit-redis-connection', { err }, 'rate limit store connection error') })
  const blocked = new BlockedCache(blockedCacheSize)
  const prepared = new WeakMap<RateLimitRule, Prepared>()
  const queue: Pending[] = []
  let queueHead = 0
  let timer: NodeJS.Timeout | null = null
  let closed = false
  let lastError: string | null = null
  const tickMs = Math.max(1, Math.min(10, Math.floor(timeoutMs / 5)))

  function keyFor (scope: string, id: string, slot: string): string {
    return `${prefix}{${scope.length}:${scope}|${id}}:${slot}`
  }

  function prepare (rule: RateLimitRule): Prepared {
    let p = prepared.get(rule)
    if (p === undefined) {
      const tail: number[] = []
      for (const limit of rule.limits) tail.push(limit.capacity, limit.windowMs, limit.limit)
      p = { script: LUA_SCRIPTS[rule.algorithm], slots: rule.limits.map(l => l.slot), tail }
      prepared.set(rule, p)
    }
    return p
  }

  function degrade (rule: RateLimitRule, t: number, reason: string, err?: unknown, out?: RateLimitResult): RateLimitResult {
    lastError = reason
    warn('rate-limit-redis', { err, reason, failClosed: rule.failClosed },
      `rate limit store unavailable (${reason}): requests are ${rule.failClosed ? 'refused (failClosed)' : 'allowed (fail-open)'}`)
    return degradedResult(rule, t, out)
  }

  function check (scope: string, id: string, rule: RateLimitRule, cost = 1, out?: RateLimitResult): RateLimitResult | Promise<RateLimitResult> {
    if (rule.unlimited) return unlimitedResult(out)
    if (!validCost(cost)) throw new WG_ERR_RATE_LIMIT_INVALID(`cost must be an integer from 0, got ${String(cost)}`)
    const t = now()
    const known = blocked.get(scope, id, rule, cost, t, out)
    if (known !== undefined) return known
    if (closed) return degrade(rule, t, 'store closed', undefined, out)
    if (client.status !== 'ready') return degrade(rule, t, `connection ${client.status}`, undefined, out)

    const { script, slots, tail } = prepare(rule)
    const n = slots.length
    const args: Array<string | number> = new Array(4 + n + tail.length)
    args[0] = script.sha
    args[1] = n
    for (let i = 0; i < n; i++) args[2 + i] = keyFor(scope, id, slots[i] as string)
    args[2 + n] = t
    args[3 + n] = cost
    for (let i = 0; i < tail.length; i++) args[4 + n + i] = tail[i] as number
    return new Promise<RateLimitResult>(resolve => {
      const p: Pending = { resolve, deadline: performance.now() + timeoutMs, done: false, scope, id, rule, cost, now: t, args, out }
      enqueue(p)
      send(p, false)
    })
  }

  function send (p: Pending, fallback: boolean): void {
    const call = fallback
      ? client.eval(LUA_SCRIPTS[p.rule.algorithm].source, ...(p.args.slice(1) as [number, ...string[]]))
      : client.evalsha(...(p.args as [string, number, ...string[]]))
    call.then(reply => onReply(p, reply as ScriptReply), err => onError(p, err, fallback))
  }

  function onReply (p: Pending, reply: ScriptReply): void {
    if (p.done) return
    p.done = true
    const limit = p.rule.limits[reply[1]]
    if (limit === undefined) {
      p.resolve(degrade(p.rule, p.now, 'unexpected script reply', reply, p.out))
      return
    }
    const allowed = reply[0] === 1
    const result = makeResult(allowed, limit.capacity, reply[2], reply[3], reply[4], limit.windowMs, reply[1], false, p.out)
    lastError = null
    if (!allowed) blocked.set(p.scope, p.id, p.rule, p.cost, result, p.now)
    p.resolve(result)
  }

  function onError (p: Pending, err: unknown, fallback: boolean): void {
    if (p.done) return
    if (!fallback && String((err as Error)?.message).startsWith('NOSCRIPT')) {
      send(p, true)
      return
    }
    p.done = true
    p.resolve(degrade(p.rule, p.now, 'command failed', err, p.out))
  }

  function enqueue (p: Pending): void {
    queue.push(p)
    if (timer === null) {
      timer = setInterval(expire, tickMs)
      timer.unref()
    }
  }

  // Deadlines are all `timeoutMs` after sending, so the queue is in deadline order
  function expire (): void {
    const t = performance.now()
    while (queueHead < queue.length) {
      const p = queue[queueHead] as Pending
      if (!p.done && p.deadline > t) break
      queueHead++
      if (!p.done) {
        p.done = true
        p.resolve(degrade(p.rule, p.now, `no answer within ${timeoutMs} ms`, undefined, p.out))
      }
    }
    if (queueHead === queue.length) {
      queue.length = 0
      queueHead = 0
      if (timer !== null) clearInterval(timer)
      timer = null
    } else if (queueHead > 1024 && queueHead * 2 > queue.length) {
      queue.splice(0, queueHead)
      queueHead = 0
    }
  }

  function nodes (): Redis[] {
    const cluster = client as Cluster
    return typeof cluster.nodes === 'function' ? cluster.nodes('master') : [client as Redis]
  }

  // SCAN every master for a pattern and unlink what matches, one key per command so that keys
  // of different Cluster slots never share one
  async function unlinkMatching (pattern: string): Promise<void> {
    const clientPrefix = (client.options as { keyPrefix?: string }).keyPrefix ?? ''
    for (const node of nodes()) {
      const nodePrefix = node.options.keyPrefix ?? ''
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', clientPrefix + pattern, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) {
          const pipeline = node.pipeline()
          for (const key of keys) pipeline.unlink(key.startsWith(nodePrefix) ? key.slice(nodePrefix.length) : key)
          await pipeline.exec()
        }
      } while (cursor !== '0')
    }
  }

  async function waitReady (ms: number): Promise<void> {
    if (client.status === 'ready') return
    if (client.status === 'wait') {
      await client.connect()
      return
    }
    await new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => {
        client.off('ready', onReady)
        reject(new Error(`not ready within ${ms} ms (${client.status})`))
      }, ms)
      function onReady (): void {
        clearTimeout(timeout)
        resolve()
      }
      client.once('ready', onReady)
    })
  }

  return {
    kind: 'redis',
    client,
    keyFor,
    check,
    async init () {
      try {
        await waitReady(2000)
        for (const node of nodes()) {
          for (const script of Object.values(LUA_SCRIPTS)) await node.script('LOAD', script.source)
        }
        lastError = null
      } catch (err) {
        lastError = String((err as Error)?.message ?? err)
        warn('rate-limit-redis', { err }, 'rate limit store could not connect; checks are degraded until it does')
      }
    },
    async reset (scope, id) {
      blocked.delete(scope, id)
      await unlinkMatching(`${escapeGlob(keyFor(scope, id, ''))}*`)
      blocked.delete(scope, id)
    },
    async resetAll (scope) {
      if (scope === undefined) {
        blocked.clear()
        await unlinkMatching(`${escapeGlob(prefix)}*`)
        blocked.clear()
        return
      }
      blocked.delete(scope)
      await unlinkMatching(`${escapeGlob(`${prefix}{${scope.length}:${scope}|`)}*`)
      blocked.delete(scope)
    },
    invalidateLocal (scope, id) {
      if (scope === undefined) blocked.clear()
      else blocked.delete(scope, id)
    },
    async health (): Promise<RateLimitStoreHealth> {
      if (closed) return { ok: false, detail: 'closed' }
      if (client.status !== 'ready') return { ok: false, detail: `connection ${client.status}` }
      let timeout: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          client.ping(),
          new Promise((resolve, reject) => { timeout = setTimeout(() => reject(new Error('ping timed out')), Math.max(timeoutMs, 1000)) })
        ])
        return lastError === null ? { ok: true } : { ok: true, detail: `last failure: ${lastError}` }
      } catch (err) {
        return { ok: false, detail: String((err as Error)?.message ?? err) }
      } finally {
        clearTimeout(timeout)
      }
    },
    async close () {
      if (closed) return
      closed = true
      if (timer !== null) clearInterval(timer)
      timer = null
      for (let i = queueHead; i < queue.length; i++) {
        const p = queue[i] as Pending
        if (!p.done) {
          p.done = true
          p.resolve(degradedResult(p.rule, p.now, p.out))
        }
      }
      queue.length = 0
      queueHead = 0
      blocked.clear()
      if (owned) await client.quit().catch(() => client.disconnect())
    }
  }
}

function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
