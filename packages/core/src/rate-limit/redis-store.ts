import { performance } from 'node:perf_hooks'
import type { Redis, Cluster, ClusterNode, ClusterOptions } from 'ioredis'
import { WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { loadCluster, loadRedis } from '../ioredis.js'
import { createThrottledWarn, silentLogger, type WaygateLogger } from '../logger.js'
import { LUA_SCRIPTS, type LuaScript } from './algorithms/index.js'
import { BlockedCache } from './blocked-cache.js'
import { leasedStore } from './leased.js'
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
  /** Or a Redis Cluster's nodes (any reachable subset), to open a Cluster the store owns and closes. */
  cluster?: ClusterNode[]
  /** ioredis options of the Cluster opened from `cluster`; the store's fail-fast settings win. */
  clusterOptions?: ClusterOptions
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
  /**
   * Pipelining on a single-node client (default true): while one batch of checks is waiting for
   * Redis, the checks that arrive queue up and leave together, in one write, when it is answered
   * (or a few turns of the event loop later, while more keep arriving).
   * Each check stays one atomic script call; under load a check may wait up to one round trip
   * longer, and Node and Redis spend far less CPU per check. `false` sends every check at once.
   * A Cluster client always sends at once.
   */
  pipelining?: boolean
  /**
   * `exact` (default): every check is one atomic evaluation in Redis. `leased`: each instance takes
   * small blocks of allowance from Redis (one script call per block) and answers checks of cost 1
   * from them locally, handing back what it does not use; per window at most instances × block
   * size more requests than the limit pass. docs/rate-limiting.md says when to pick which.
   */
  consistency?: 'exact' | 'leased'
  /**
   * Leased: the largest block, in units: a block is at most min(capacity / 100, this), at least 1.
   * A counter's first block is 10 (or that largest one, when smaller); each block used up within a
   * tenth of `leaseMs` doubles the next. Default 1000.
   */
  leaseBlock?: number
  /** Leased: ms a block is used before what is left goes back (never past a fixed or sliding window's end). Default 1000. */
  leaseMs?: number
}

/** A rate limit store in Redis: one atomic script evaluation per check, shared by every instance. */
export interface RedisRateLimitStore extends RateLimitStore {
  readonly client: Redis | Cluster
  readonly consistency: 'exact' | 'leased'
  /** Units this instance holds in leases right now (always 0 in exact consistency). */
  readonly leasedUnits: number
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

// Script calls written to Redis together; the next batch leaves when this one is answered
interface Batch {
  left: number
  sentAt: number
}

// One check waiting for its answer
interface Pending {
  resolve: (result: RateLimitResult) => void
  deadline: number
  done: boolean
  scope: string
  id: string
  rule: RateLimitRule
  prepared: Prepared
  keys: string[]
  cost: number
  now: number
  out: RateLimitResult | undefined
}

// One script call: the checks of one algorithm, evaluated in order
interface Call {
  script: LuaScript
  checks: Pending[]
  batch: Batch | null
}

/** Most checks in one script call, so that one call never holds Redis for long. */
const MAX_CHECKS_PER_CALL = 256

/** Most extra turns of the event loop a batch waits for while checks keep arriving. */
const MAX_GATHER_TURNS = 4

/**
 * Creates a store that keeps counters in Redis with one Lua script per algorithm. Every key of
 * one check shares a hash tag (scope and id), so on a Cluster each check is one EVALSHA on one
 * slot. On a single node, checks made while a batch is on its way are sent together when it is
 * answered: one EVALSHA per algorithm evaluates them in order, each atomically and at its own
 * time, so the answers are those of one call per check. A check Redis does not answer within
 * `timeoutMs`, or made while the connection is down, is answered at once as degraded and never
 * queued. A key Redis refused is refused from memory, without a round trip, until it may pass
 * again.
 */
export function createRedisRateLimitStore (options: RedisRateLimitStoreOptions): RedisRateLimitStore {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  const timeoutMs = options.timeoutMs ?? 50
  const now = options.now ?? Date.now
  const logger = options.logger ?? silentLogger
  const blockedCacheSize = options.blockedCacheSize ?? 50_000
  if ([options.client, options.url, options.cluster].filter(given => given !== undefined).length !== 1) {
    throw new WG_ERR_OPTIONS_INVALID('give the rate limit Redis store one of client, url or cluster')
  }
  if (options.cluster !== undefined && (!Array.isArray(options.cluster) || options.cluster.length === 0)) {
    throw new WG_ERR_OPTIONS_INVALID('cluster must be a non-empty array of nodes ({ host, port } or "host:port")')
  }
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new WG_ERR_OPTIONS_INVALID('prefix must be a string without { or }')
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1) throw new WG_ERR_OPTIONS_INVALID('timeoutMs must be a number of ms from 1')
  if (!Number.isSafeInteger(blockedCacheSize) || blockedCacheSize < 0) throw new WG_ERR_OPTIONS_INVALID('blockedCacheSize must be an integer from 0')
  if (typeof now !== 'function') throw new WG_ERR_OPTIONS_INVALID('now must be a function')
  if (options.pipelining !== undefined && typeof options.pipelining !== 'boolean') throw new WG_ERR_OPTIONS_INVALID('pipelining must be a boolean')
  const consistency = options.consistency ?? 'exact'
  if (consistency !== 'exact' && consistency !== 'leased') throw new WG_ERR_OPTIONS_INVALID('consistency must be \'exact\' or \'leased\'')

  const owned = options.client === undefined
  // An own connection neither queues commands while down nor sends them again after reconnecting:
  // by then those checks were answered as degraded
  const ownSettings = { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 }
  const client: Redis | Cluster = options.client ?? (options.cluster !== undefined
    ? new (loadCluster('the Redis rate limit store'))(options.cluster, {
      ...options.clusterOptions,
      enableOfflineQueue: false,
      redisOptions: { ...options.clusterOptions?.redisOptions, ...ownSettings }
    })
    : new (loadRedis('the Redis rate limit store'))(options.url as string, ownSettings))
  const warn = createThrottledWarn(logger, now)
  if (owned) client.on('error', err => { warn('rate-limit-redis-connection', { err }, 'rate limit store connection error') })
  const blocked = new BlockedCache(blockedCacheSize)
  const prepared = new WeakMap<RateLimitRule, Prepared>()
  // Every check not yet answered, oldest first (answered ones leave from the front)
  const queue: Array<Pending | undefined> = []
  let queueHead = 0
  let timer: NodeJS.Timeout | null = null
  let closed = false
  let lastError: string | null = null
  const pipelining = options.pipelining !== false && typeof (client as Cluster).nodes !== 'function'
  const outbox: Pending[] = []
  let inflight: Batch | null = null
  let flushScheduled = false
  // checks in the outbox at the previous turn of the event loop, and turns waited so far
  let gathered = 0
  let gatherTurns = 0

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

    const prep = prepare(rule)
    const slots = prep.slots
    const keys: string[] = new Array(slots.length)
    for (let i = 0; i < slots.length; i++) keys[i] = keyFor(scope, id, slots[i] as string)
    return new Promise<RateLimitResult>(resolve => {
      const p: Pending = { resolve, deadline: performance.now() + timeoutMs, done: false, scope, id, rule, prepared: prep, keys, cost, now: t, out }
      enqueue(p)
      if (!pipelining) {
        send({ script: prep.script, checks: [p], batch: null }, false)
        return
      }
      outbox.push(p)
      scheduleFlush()
    })
  }

  function scheduleFlush (): void {
    if (inflight !== null || flushScheduled || outbox.length === 0) return
    flushScheduled = true
    // after the current poll phase: the checks of every request read in it leave together
    setImmediate(flush)
  }

  // Sends what waits in the outbox: one script call per algorithm (and per MAX_CHECKS_PER_CALL
  // checks), all in one write
  function flush (): void {
    flushScheduled = false
    if (inflight !== null || closed) return
    if (outbox.length > gathered && gatherTurns < MAX_GATHER_TURNS) {
      // checks arrived during the last turn, so more are probably on their way: one more turn
      // (no wait when none are) makes fewer, bigger batches, and each round trip costs both
      // processes far more than the checks it carries
      gathered = outbox.length
      gatherTurns++
      flushScheduled = true
      setImmediate(flush)
      return
    }
    gathered = 0
    gatherTurns = 0
    const stream = (client as Redis).stream as { writable?: boolean, cork?: () => void, uncork?: () => void } | undefined
    if (client.status !== 'ready' || stream?.writable === false) {
      // the connection dropped since these checks were made: answer now rather than leave them
      // in a client's offline queue, to be counted long after they were answered
      const reason = client.status !== 'ready' ? `connection ${client.status}` : 'connection closing'
      for (let i = 0; i < outbox.length; i++) {
        const p = outbox[i] as Pending
        if (p.done) continue
        p.done = true
        p.resolve(degrade(p.rule, p.now, reason, undefined, p.out))
      }
      outbox.length = 0
      drain()
      return
    }
    const batch: Batch = { left: 0, sentAt: performance.now() }
    const calls: Call[] = []
    for (let i = 0; i < outbox.length; i++) {
      const p = outbox[i] as Pending
      if (p.done) continue
      const script = p.prepared.script
      let call: Call | undefined
      for (let j = 0; j < calls.length; j++) {
        const c = calls[j] as Call
        if (c.script === script && c.checks.length < MAX_CHECKS_PER_CALL) call = c
      }
      if (call === undefined) {
        call = { script, checks: [], batch }
        calls.push(call)
      }
      call.checks.push(p)
    }
    outbox.length = 0
    if (calls.length === 0) return
    const cork = calls.length > 1 && typeof stream?.cork === 'function' && typeof stream.uncork === 'function'
    if (cork) stream!.cork!()
    batch.left = calls.length
    inflight = batch
    for (const call of calls) send(call, false)
    if (cork) stream!.uncork!()
  }

  // A call of the batch in flight has its answer (or failed)
  function release (call: Call): void {
    const batch = call.batch
    if (batch === null) return
    call.batch = null
    batch.left--
    if (batch.left === 0 && inflight === batch) {
      inflight = null
      scheduleFlush()
    }
  }

  function send (call: Call, fallback: boolean): void {
    const checks = call.checks
    let keyCount = 0
    for (let i = 0; i < checks.length; i++) keyCount += (checks[i] as Pending).keys.length
    const args: Array<string | number> = [fallback ? call.script.source : call.script.sha, keyCount]
    // every number of the call travels as one JSON array: a few arguments instead of dozens
    // is far less work for ioredis and for Redis' own argument parsing
    const numbers: number[] = [checks.length]
    for (let i = 0; i < checks.length; i++) {
      const p = checks[i] as Pending
      const keys = p.keys
      for (let j = 0; j < keys.length; j++) args.push(keys[j] as string)
      const tail = p.prepared.tail
      numbers.push(p.now, p.cost, keys.length)
      for (let j = 0; j < tail.length; j++) numbers.push(tail[j] as number)
    }
    args.push(JSON.stringify(numbers))
    // the Buffer variant leaves the reply (numbers only) as it is, without a conversion pass
    client.callBuffer(fallback ? 'eval' : 'evalsha', args).then(reply => onReply(call, reply), err => onError(call, err, fallback))
  }

  function onReply (call: Call, reply: unknown): void {
    release(call)
    const checks = call.checks
    const valid = Array.isArray(reply) && reply.length === 5 * checks.length
    for (let i = 0; i < checks.length; i++) {
      const p = checks[i] as Pending
      if (p.done) continue
      p.done = true
      const o = 5 * i
      const limit = valid ? p.rule.limits[(reply as number[])[o + 1] as number] : undefined
      if (limit === undefined) {
        p.resolve(degrade(p.rule, p.now, 'unexpected script reply', reply, p.out))
        continue
      }
      const r = reply as number[]
      const allowed = r[o] === 1
      const result = makeResult(allowed, limit.capacity, r[o + 2] as number, r[o + 3] as number, r[o + 4] as number, limit.windowMs, r[o + 1] as number, false, p.out)
      lastError = null
      if (!allowed) blocked.set(p.scope, p.id, p.rule, p.cost, result, p.now)
      p.resolve(result)
    }
    drain()
  }

  function onError (call: Call, err: unknown, fallback: boolean): void {
    if (!fallback && String((err as Error)?.message).startsWith('NOSCRIPT')) {
      // Redis lost its scripts (a restart or SCRIPT FLUSH): the same call with the source, once
      send(call, true)
      return
    }
    release(call)
    for (const p of call.checks) {
      if (p.done) continue
      p.done = true
      p.resolve(degrade(p.rule, p.now, 'command failed', err, p.out))
    }
    drain()
  }

  // Lets go of answered checks at the front of the queue at once: kept until their deadline,
  // thousands of them would outlive a young-generation GC and cost far more to collect
  function drain (): void {
    while (queueHead < queue.length && (queue[queueHead] as Pending).done) queue[queueHead++] = undefined
    if (queueHead === queue.length) {
      queue.length = 0
      queueHead = 0
    } else if (queueHead > 1024 && queueHead * 2 > queue.length) {
      queue.splice(0, queueHead)
      queueHead = 0
    }
  }

  function enqueue (p: Pending): void {
    queue.push(p)
    if (timer === null) arm(p.deadline)
  }

  // One timer, for the oldest check still waiting: under steady traffic it fires about once per
  // `timeoutMs`, and only does work when Redis is late
  function arm (deadline: number): void {
    timer = setTimeout(expire, Math.max(1, Math.ceil(deadline - performance.now())))
    timer.unref()
  }

  // Deadlines are all `timeoutMs` after the check, so the queue is in deadline order
  function expire (): void {
    timer = null
    const t = performance.now()
    // a batch Redis has not answered in time no longer holds back the next one
    if (inflight !== null && inflight.sentAt + timeoutMs <= t) {
      inflight = null
      scheduleFlush()
    }
    while (queueHead < queue.length) {
      const p = queue[queueHead] as Pending
      if (!p.done && p.deadline > t) break
      queue[queueHead++] = undefined
      if (!p.done) {
        p.done = true
        p.resolve(degrade(p.rule, p.now, `no answer within ${timeoutMs} ms`, undefined, p.out))
      }
    }
    drain()
    if (queueHead < queue.length) arm((queue[queueHead] as Pending).deadline)
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

  const store: RedisRateLimitStore = {
    kind: 'redis',
    consistency: 'exact',
    leasedUnits: 0,
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
      if (timer !== null) clearTimeout(timer)
      timer = null
      for (let i = queueHead; i < queue.length; i++) {
        const p = queue[i] as Pending
        if (p !== undefined && !p.done) {
          p.done = true
          p.resolve(degradedResult(p.rule, p.now, p.out))
        }
      }
      queue.length = 0
      queueHead = 0
      outbox.length = 0
      inflight = null
      blocked.clear()
      if (owned) await client.quit().catch(() => client.disconnect())
    }
  }
  return consistency === 'leased' ? leasedStore(store, options) : store
}

function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
