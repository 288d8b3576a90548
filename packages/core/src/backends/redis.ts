import { randomUUID } from 'node:crypto'
import type { Redis, Cluster, ClusterNode, ClusterOptions, RedisOptions, SentinelAddress } from 'ioredis'
import { WG_ERR_BACKEND_UNAVAILABLE, WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { loadCluster, loadRedis } from '../ioredis.js'
import { silentLogger, type WaygateLogger } from '../logger.js'
import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { defaultGlobalMaintenance } from '../models.js'
import { asAuditEntry, asGlobal, asRouteState, errorMessage, isRecord, orderKey, parseJson, remoteChange } from './stored-values.js'
import {
  APPEND_AUDIT,
  CAS_FIELD,
  CAS_KEY,
  DELETE_RECORD,
  DELETE_ROUTE,
  LOAD_STATE,
  OUTBOX_CLAIM,
  OUTBOX_COMPLETE,
  OUTBOX_FAIL,
  OUTBOX_RETRY_DEAD,
  PUT_RECORD,
  REGISTER_ROUTES,
  type LuaScript
} from './redis-scripts.js'
import {
  ChangeEmitter,
  DEFAULT_MAX_AUDIT_ENTRIES,
  checkRecordKey,
  clockOption,
  compareIds,
  filterAudit,
  isLive,
  positiveInteger,
  recordExpiry,
  recordJson
} from './shared.js'
import type {
  AuditQuery,
  BackendChange,
  BackendHealth,
  BackendRecord,
  BackendSnapshot,
  DeadLetter,
  OutboxClaim,
  OutboxDelivery,
  Updater,
  WaygateBackend,
  WebhookOutbox
} from './types.js'

/** An ioredis client: a plain or Sentinel-configured `Redis`, or a `Cluster`. */
export type RedisClient = Redis | Cluster

/**
 * Where the Redis backend connects: a URL (`redis://`, `rediss://`, or `unix:///path/to/redis.sock`
 * with optional `?db=` and `?password=`); a Redis Cluster's nodes (`cluster`, any reachable subset,
 * with `clusterOptions` for ioredis); a Sentinel-watched master (`sentinels` and the master's
 * `name`; other connection options such as `sentinelPassword` in `redisOptions`); or an ioredis
 * client you own (plain, Sentinel or Cluster), which the backend uses as is and never quits. The
 * connections the backend opens itself (every form but `client`) get its fail-fast settings.
 */
export type RedisConnection =
  | { url: string }
  | { cluster: ClusterNode[], clusterOptions?: ClusterOptions }
  | { sentinels: Array<Partial<SentinelAddress>>, name: string }
  | { client: RedisClient }

/** Options of {@link createRedisBackend}. */
export interface RedisBackendOptions {
  /**
   * Every key starts with `{<keyPrefix>}:`; the braces are a Cluster hash tag, so all of waygate's
   * keys live in one slot and its scripts can touch several at once. Several apps may share one
   * Redis with different prefixes. 1 to 100 characters, no braces or spaces. Default `waygate`.
   */
  keyPrefix?: string
  /** How many audit entries to keep; older ones are dropped. Default 1000. */
  maxAuditEntries?: number
  /** The clock records expire by, epoch ms; it is passed to the scripts, Redis's own clock is never used. Default `Date.now`. */
  now?: () => number
  /** How long any command may take before it fails with `WG_ERR_BACKEND_UNAVAILABLE`. Default 1000 ms. */
  commandTimeoutMs?: number
  /** How long `init()` waits for the first connection before letting the app start without it. Default 2000 ms. */
  connectTimeoutMs?: number
  /** Longest pause between reconnection attempts of the connections the backend creates. Default 2000 ms. */
  maxReconnectDelayMs?: number
  /** Extra ioredis options for connections made from `url` (TLS settings, `family`…). Waygate's failure settings win. */
  redisOptions?: RedisOptions
  /** Where connection trouble is reported (once per outage). Default silent; `createEngineFromEnv` passes the engine's logger. */
  logger?: WaygateLogger
  /**
   * Replicas that must hold a write before it is acknowledged (Redis `WAIT` after every write), so
   * a failover to a replica loses no acknowledged change. A write that fewer replicas confirm within
   * `replicaTimeoutMs` fails with `WG_ERR_BACKEND_UNAVAILABLE` (it is on the master, and may or may not
   * survive a failover). Default 0: acknowledged once the master has it (asynchronous replication).
   */
  minReplicas?: number
  /** How long a write waits for `minReplicas` replicas; below `commandTimeoutMs`. Default 250 ms. */
  replicaTimeoutMs?: number
}

const DEFAULT_KEY_PREFIX = 'waygate'
const DEFAULT_COMMAND_TIMEOUT_MS = 1000
const DEFAULT_CONNECT_TIMEOUT_MS = 2000
const DEFAULT_MAX_RECONNECT_DELAY_MS = 2000
const DEFAULT_REPLICA_TIMEOUT_MS = 250
/** The connection forms, exactly one of which a connection names. */
const CONNECTION_FORMS = ['url', 'cluster', 'sentinels', 'client'] as const
const KEY_PREFIX = /^[^{}\s]{1,100}$/
/** Attempts of one compare-and-set write before giving up on a key other instances keep changing. */
const MAX_WRITE_ATTEMPTS = 50

/** A record as stored in its namespace's hash: `{"e":<expiresAt or null>,"v":<value>}`. */
function storedRecord (json: string, expiresAt: number | null): string {
  return `{"e":${expiresAt === null ? 'null' : JSON.stringify(expiresAt)},"v":${json}}`
}

function recordFrom (id: string, text: string): BackendRecord | null {
  const stored = parseJson(text)
  if (!isRecord(stored) || !('v' in stored)) return null
  const expiresAt = stored.e
  if (expiresAt !== null && (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))) return null
  return { id, value: stored.v, expiresAt }
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Turns a URL into what `new Redis()` takes; throws a plain message. */
function connectionOptions (url: string): string | RedisOptions {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TypeError(`url must be a redis://, rediss:// or unix:// URL, got ${JSON.stringify(url.slice(0, 200))}`)
  }
  if (parsed.protocol === 'redis:' || parsed.protocol === 'rediss:') return url
  if (parsed.protocol === 'unix:') {
    const path = decodeURIComponent(parsed.pathname)
    if (path === '' || path === '/') throw new TypeError('a unix:// url needs the socket path: unix:///run/redis.sock')
    const options: RedisOptions = { path }
    const db = parsed.searchParams.get('db')
    if (db !== null) {
      if (!/^\d{1,5}$/.test(db)) throw new TypeError(`db must be a number, got ${JSON.stringify(db)}`)
      options.db = Number(db)
    }
    const password = parsed.searchParams.get('password') ?? (parsed.password === '' ? null : decodeURIComponent(parsed.password))
    if (password !== null) options.password = password
    if (parsed.username !== '') options.username = decodeURIComponent(parsed.username)
    return options
  }
  throw new TypeError(`url must be a redis://, rediss:// or unix:// URL, got ${JSON.stringify(parsed.protocol)}`)
}

/** Where the backend connects, for messages: never with the password. */
function describeUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.protocol === 'unix:') return `unix:${decodeURIComponent(parsed.pathname)}`
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`
  } catch {
    return 'redis'
  }
}

function describeClient (client: RedisClient): string {
  if (client.isCluster) return 'a Redis Cluster'
  const options = (client as Redis).options
  if ('sentinels' in options && Array.isArray(options.sentinels) && options.sentinels.length > 0) {
    return `Sentinel master ${String((options as { name?: unknown }).name ?? '')}`.trim()
  }
  if (typeof options.path === 'string' && options.path !== '') return `unix:${options.path}`
  return `redis://${options.host ?? 'localhost'}:${options.port ?? 6379}`
}

/**
 * Keeps routes, global maintenance, the audit trail and records in Redis, for several instances
 * of an app (or several apps) sharing one state. Requests never touch Redis: the engine keeps its
 * snapshot and this backend feeds it the changes of every instance through pub/sub.
 *
 * - Every write is one Lua script: it checks that the stored value is still the one the updater
 *   saw (else the updater runs again), writes, appends the audit entry and publishes the change,
 *   atomically. Writes of one instance run one after the other.
 * - A change is announced to this instance's subscribers before the write resolves, and published
 *   for the others, which ignore their own messages and drop any that is older than their own last
 *   write of the same key. After a lost subscription they are told to reload everything.
 * - Revisions: every write bumps the sequence `{waygate}:seq` in the script that writes and
 *   publishes, and a change carries it as its revision; `load()` reads the state with the
 *   sequence and the epoch (`{waygate}:epoch`, created by the first load of new or wiped
 *   storage) in one script. A message whose sequence skips one (a lost message) or goes back
 *   (the counter was reset) tells the engine to reload.
 * - Failure: no offline queue, bounded command time, reconnection with backoff forever. While Redis
 *   is down every call rejects at once with `WG_ERR_BACKEND_UNAVAILABLE`, which the engine turns
 *   into "serve the last snapshot"; the outage is logged once.
 *
 * Keys (prefix `waygate`): `{waygate}:routes` (hash), `{waygate}:global`, `{waygate}:audit` (list,
 * newest first, capped) with `{waygate}:audit-ids` (set), `{waygate}:rec:<namespace>` (hash) with
 * `{waygate}:rec-exp:<namespace>` (sorted set by expiry), `{waygate}:seq`, `{waygate}:epoch`,
 * channel `{waygate}:changes`.
 *
 * @example
 * const backend = createRedisBackend({ url: process.env.REDIS_URL! }, { keyPrefix: 'shop' })
 * const engine = createEngine({ backend })
 */
export function createRedisBackend (connection: RedisConnection, options: RedisBackendOptions = {}): WaygateBackend {
  let maxAudit: number
  let now: () => number
  let commandTimeoutMs: number
  let connectTimeoutMs: number
  let maxReconnectDelayMs: number
  let minReplicas: number
  let replicaTimeoutMs: number
  let connectWith: string | RedisOptions | null = null
  let clusterNodes: ClusterNode[] | null = null
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX
  try {
    if (!isRecord(connection) || CONNECTION_FORMS.filter(form => form in connection).length !== 1) {
      throw new TypeError('the connection must be one of { url }, { cluster }, { sentinels, name } or { client }')
    }
    if ('url' in connection) {
      if (typeof connection.url !== 'string') throw new TypeError('url must be a string')
      connectWith = connectionOptions(connection.url)
    } else if ('cluster' in connection) {
      if (!Array.isArray(connection.cluster) || connection.cluster.length === 0) throw new TypeError('cluster must be a non-empty array of nodes ({ host, port } or "host:port")')
      if (connection.clusterOptions !== undefined && !isRecord(connection.clusterOptions)) throw new TypeError('clusterOptions must be an object')
      clusterNodes = connection.cluster
    } else if ('sentinels' in connection) {
      if (!Array.isArray(connection.sentinels) || connection.sentinels.length === 0 || !connection.sentinels.every(isRecord)) {
        throw new TypeError('sentinels must be a non-empty array of { host, port }')
      }
      if (typeof connection.name !== 'string' || connection.name === '') throw new TypeError('name (the master\'s name the sentinels monitor) must be a non-empty string')
      connectWith = { sentinels: connection.sentinels, name: connection.name }
    } else if (!isRecord(connection.client) || typeof (connection.client as { duplicate?: unknown }).duplicate !== 'function') {
      throw new TypeError('client must be an ioredis Redis or Cluster instance')
    }
    if (typeof prefix !== 'string' || !KEY_PREFIX.test(prefix)) {
      throw new TypeError(`keyPrefix must be 1 to 100 characters without braces or spaces, got ${JSON.stringify(prefix)}`)
    }
    maxAudit = positiveInteger(options.maxAuditEntries, 'maxAuditEntries', DEFAULT_MAX_AUDIT_ENTRIES)
    now = clockOption(options.now)
    commandTimeoutMs = positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', DEFAULT_COMMAND_TIMEOUT_MS)
    connectTimeoutMs = positiveInteger(options.connectTimeoutMs, 'connectTimeoutMs', DEFAULT_CONNECT_TIMEOUT_MS)
    maxReconnectDelayMs = positiveInteger(options.maxReconnectDelayMs, 'maxReconnectDelayMs', DEFAULT_MAX_RECONNECT_DELAY_MS)
    minReplicas = options.minReplicas === 0 ? 0 : positiveInteger(options.minReplicas, 'minReplicas', 0)
    replicaTimeoutMs = positiveInteger(options.replicaTimeoutMs, 'replicaTimeoutMs', Math.min(DEFAULT_REPLICA_TIMEOUT_MS, commandTimeoutMs))
    if (minReplicas > 0 && replicaTimeoutMs >= commandTimeoutMs) throw new TypeError('replicaTimeoutMs must be below commandTimeoutMs')
    if (options.redisOptions !== undefined && !isRecord(options.redisOptions)) throw new TypeError('redisOptions must be an object')
  } catch (err) {
    throw new WG_ERR_OPTIONS_INVALID((err as Error).message)
  }
  const logger = options.logger ?? silentLogger

  const tag = `{${prefix}}`
  const keys = {
    routes: `${tag}:routes`,
    global: `${tag}:global`,
    audit: `${tag}:audit`,
    auditIds: `${tag}:audit-ids`,
    seq: `${tag}:seq`,
    epoch: `${tag}:epoch`,
    outbox: `${tag}:outbox`,
    outboxDue: `${tag}:outbox-due`,
    outboxAttempts: `${tag}:outbox-attempts`,
    outboxLeases: `${tag}:outbox-leases`,
    outboxDead: `${tag}:outbox-dead`
  }
  const outboxKeys = [keys.outbox, keys.outboxDue, keys.outboxAttempts, keys.outboxLeases]
  const channel = `${tag}:changes`
  const recordKeys = (namespace: string): [string, string] => [`${tag}:rec:${namespace}`, `${tag}:rec-exp:${namespace}`]
  const instance = randomUUID()
  const emitter = new ChangeEmitter()

  /** The failure settings of every connection this backend creates. */
  const failFast = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (times: number) => Math.round(Math.min(maxReconnectDelayMs, 50 * 2 ** Math.min(times, 16)) * (0.5 + Math.random() / 2))
  } satisfies RedisOptions

  const owned = connectWith !== null || clusterNodes !== null
  const client: RedisClient = clusterNodes !== null
    ? openCluster(clusterNodes, (connection as { clusterOptions?: ClusterOptions }).clusterOptions)
    : connectWith === null
      ? (connection as { client: RedisClient }).client
      : typeof connectWith === 'string'
        ? new (loadRedis('the Redis backend'))(connectWith, { ...options.redisOptions, ...failFast })
        : new (loadRedis('the Redis backend'))({ ...options.redisOptions, ...connectWith, ...failFast })

  /** A Cluster whose node connections fail fast, and which keeps trying to reach the cluster. */
  function openCluster (nodes: ClusterNode[], clusterOptions: ClusterOptions | undefined): Cluster {
    const { retryStrategy, ...perNode } = failFast
    return new (loadCluster('the Redis backend'))(nodes, {
      ...clusterOptions,
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      redisOptions: { ...clusterOptions?.redisOptions, ...options.redisOptions, ...perNode }
    })
  }
  // Redis and Cluster share their command methods; one type keeps the calls simple
  const commands = client as unknown as Redis
  const target = 'url' in connection
    ? describeUrl(connection.url)
    : 'sentinels' in connection ? `Sentinel master ${connection.name}` : describeClient(client)

  let subscriber: RedisClient | null = null
  let subscribed = false
  let following: Promise<void> | null = null
  let initialized: Promise<void> | null = null
  let initDone = false
  let closed = false
  /** Whether an outage has been logged and not yet its end. */
  let down = false
  /** Whether subscribers must be told to reload once both connections are back. */
  let resyncOwed = true
  let lastError: string | null = null
  let tail: Promise<unknown> = Promise.resolve()
  let followRetry: NodeJS.Timeout | null = null
  /** This instance's latest write per order key, kept until the channel has gone past it. */
  const ownWrites = new Map<string, number>()
  /** The sequence of the last message of the current subscription, or null before the first. */
  let lastMessage: number | null = null
  /**
   * The highest sequence known to be covered on the current subscription: by a message, or by a
   * load that read while subscribed. A message above it plus one means one went missing.
   */
  let covered: number | null = null
  /** Counts subscriptions, so a load knows whether it read on the one still current. */
  let subscription = 0

  // ---- connection state ----

  function ready (): boolean {
    return client.status === 'ready' && subscribed
  }

  function noteError (err: unknown): void {
    lastError = errorMessage(err)
  }

  function noteDown (): void {
    if (closed || !initDone || down) return
    down = true
    logger.warn({ redis: target, err: lastError ?? undefined },
      'waygate: lost the connection to redis; requests are served from the last known state and changes fail until it is back (reconnecting with backoff)')
  }

  function recover (): void {
    if (closed || !initDone || !ready()) return
    if (down) {
      down = false
      logger.info({ redis: target }, 'waygate: redis reachable again; reloading the state')
    }
    lastError = null
    if (resyncOwed) {
      resyncOwed = false
      ownWrites.clear()
      emitter.emit({ type: 'resync' })
    }
  }

  const onClientReady = (): void => { recover() }
  const onClientClose = (): void => { noteDown() }
  const onClientError = (err: unknown): void => { noteError(err) }
  client.on('ready', onClientReady)
  client.on('close', onClientClose)
  client.on('error', onClientError)

  function createSubscriber (): RedisClient {
    const sub = client.isCluster
      ? (client as Cluster).duplicate(undefined, { lazyConnect: true })
      : (client as Redis).duplicate(owned ? { ...failFast, autoResubscribe: false } : { lazyConnect: true, enableOfflineQueue: false, autoResubscribe: false })
    sub.on('ready', () => { follow().catch(() => {}) })
    sub.on('close', () => {
      if (subscribed) resyncOwed = true
      subscribed = false
      lastMessage = null
      covered = null
      noteDown()
    })
    sub.on('error', noteError)
    sub.on('message', onMessage)
    return sub
  }

  /** Subscribes to the change channel on a fresh subscriber connection. */
  function follow (): Promise<void> {
    // settled in a later microtask, so `following` is never left pointing at a finished attempt
    following ??= subscribeOnce().finally(() => { following = null })
    return following
  }

  async function subscribeOnce (): Promise<void> {
    const sub = subscriber
    if (sub === null || closed || sub.status !== 'ready') return
    try {
      await withTimeout(sub.subscribe(channel), 'subscribe')
      subscribed = true
      subscription++
      recover()
    } catch (err) {
      noteError(err)
      // the connection is up but SUBSCRIBE failed or timed out: try again shortly
      if (!closed && followRetry === null) {
        followRetry = setTimeout(() => {
          followRetry = null
          follow().catch(() => {})
        }, Math.min(1000, maxReconnectDelayMs))
        followRetry.unref()
      }
    }
  }

  function onMessage (from: string, text: string): void {
    if (from !== channel || closed) return
    const message = parseJson(text)
    if (!isRecord(message) || typeof message.s !== 'number' || !Array.isArray(message.c)) return
    const seq = message.s
    // pub/sub delivers one channel in order and every sequence number is published once
    const reset = lastMessage !== null && seq <= lastMessage
    const gap = covered !== null && seq > covered + 1
    lastMessage = seq
    covered = reset ? seq : Math.max(covered ?? seq, seq)
    if (message.i !== instance) {
      for (const raw of message.c) {
        const change = remoteChange(raw, seq)
        if (change === null) continue
        const key = orderKey(change)
        const mine = key === null ? undefined : ownWrites.get(key)
        // this instance already wrote (and announced) a newer value of the same thing
        if (mine !== undefined && mine > seq) continue
        emitter.emit(change)
      }
    }
    if (ownWrites.size > 0) {
      for (const [key, mine] of ownWrites) if (mine <= seq) ownWrites.delete(key)
    }
    if (reset) {
      // the sequence started again (storage wiped or replaced): what this instance knows of its own writes no longer orders anything
      ownWrites.clear()
      emitter.emit({ type: 'resync' })
    } else if (gap) {
      emitter.emit({ type: 'resync' })
    }
  }

  // ---- commands ----

  function withTimeout<T> (pending: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${commandTimeoutMs} ms`)), commandTimeoutMs)
    })
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer))
  }

  function notConnected (what: string): Error {
    return new WG_ERR_BACKEND_UNAVAILABLE(`redis at ${target} is not connected${lastError === null ? '' : ` (${lastError})`}; cannot ${what}`)
  }

  /** Runs a command; rejects at once when not connected, and after `commandTimeoutMs` at most. */
  async function call<T> (what: string, op: (c: Redis) => Promise<T>): Promise<T> {
    if (closed) throw new WG_ERR_BACKEND_UNAVAILABLE('the redis backend is closed')
    if (client.status !== 'ready') throw notConnected(what)
    try {
      return await withTimeout(op(commands), what)
    } catch (err) {
      noteError(err)
      throw new WG_ERR_BACKEND_UNAVAILABLE(`redis at ${target}: ${what} failed: ${errorMessage(err)}`, { cause: err })
    }
  }

  /**
   * As `call`, for a write. A write that failed after it was sent (a timeout, a dropped
   * connection) may still have happened: subscribers are told to reload, so none keeps a stale view.
   */
  async function write<T> (what: string, op: (c: Redis) => Promise<T>): Promise<T> {
    const sent = client.status === 'ready' && !closed
    try {
      const result = await call(what, op)
      if (minReplicas > 0) await replicated(what)
      return result
    } catch (err) {
      if (sent) {
        if (ready()) emitter.emit({ type: 'resync' })
        else resyncOwed = true
      }
      throw err
    }
  }

  /**
   * Waits until `minReplicas` replicas hold this connection's writes (WAIT). In a pipeline after a
   * read of one of the backend's keys, so that on a Cluster it reaches the master of their slot.
   */
  async function replicated (what: string): Promise<void> {
    const replies = await call(`${what} (waiting for replicas)`, c => c.pipeline().exists(keys.seq).wait(minReplicas, replicaTimeoutMs).exec())
    const [err, acked] = replies?.[1] ?? [new Error('no reply')]
    if (err !== null && err !== undefined) throw new WG_ERR_BACKEND_UNAVAILABLE(`redis at ${target}: ${what}: WAIT failed: ${errorMessage(err)}`, { cause: err })
    if (Number(acked) < minReplicas) {
      throw new WG_ERR_BACKEND_UNAVAILABLE(`redis at ${target}: ${what} is on the master, but only ${Number(acked)} of ${minReplicas} replicas confirmed it within ${replicaTimeoutMs} ms; a failover may lose it`)
    }
  }

  async function run (c: Redis, script: LuaScript, scriptKeys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await c.evalsha(script.sha, scriptKeys.length, ...scriptKeys, ...args)
    } catch (err) {
      if (!errorMessage(err).startsWith('NOSCRIPT')) throw err
      return c.eval(script.source, scriptKeys.length, ...scriptKeys, ...args)
    }
  }

  /** Runs the writes of this instance one at a time, so their order is the order they were made. */
  function serial<T> (task: () => Promise<T>): Promise<T> {
    const next = tail.then(task, task)
    tail = next.catch(() => {})
    return next
  }

  function remember (change: BackendChange, seq: number): void {
    const key = orderKey(change)
    if (key !== null) ownWrites.set(key, seq)
  }

  async function contention (attempt: number, what: string): Promise<void> {
    if (attempt >= MAX_WRITE_ATTEMPTS) {
      throw new WG_ERR_BACKEND_UNAVAILABLE(`${what}: gave up after ${attempt} attempts, other instances keep changing the same value`)
    }
    await sleep(Math.random() * Math.min(2 ** attempt, 50))
  }

  /**
   * The compare-and-set write of one value: `script` replaces `raw` (null: absent) by `nextJson`
   * and appends `audit`. Resolves null when the value moved since it was read.
   */
  async function commit (script: LuaScript, key: string, field: string, raw: string | null, nextJson: string,
    audit: AuditEntry | undefined, change: BackendChange, deliveries: OutboxDelivery[] | undefined): Promise<{ seq: number, audited: boolean } | null> {
    const reply = await write('write', c => run(c, script, [key, keys.audit, keys.auditIds, keys.seq, keys.outbox, keys.outboxDue, keys.outboxDead], [
      field,
      raw === null ? '0' : '1',
      raw ?? '',
      nextJson,
      audit?.id ?? '',
      audit === undefined ? '' : JSON.stringify(audit),
      maxAudit,
      channel,
      instance,
      JSON.stringify(change),
      audit === undefined ? '' : JSON.stringify({ type: 'audit', entry: audit }),
      Date.now(),
      ...deliveryArgs(deliveries)
    ])) as number[]
    if (reply[0] !== 1) return null
    return { seq: Number(reply[1]), audited: reply[2] === 1 }
  }

  /** (id, JSON) pairs of deliveries, as the writing scripts take them. */
  function deliveryArgs (deliveries: OutboxDelivery[] | undefined): string[] {
    const args: string[] = []
    for (const delivery of deliveries ?? []) args.push(delivery.id, JSON.stringify(delivery))
    return args
  }

  function asDelivery (value: unknown): OutboxDelivery | null {
    if (!isRecord(value) || typeof value.id !== 'string' || typeof value.webhook !== 'string' || typeof value.body !== 'string') return null
    return value as unknown as OutboxDelivery
  }

  const outbox: WebhookOutbox = {
    async claim ({ webhooks, now: at, leaseUntil, limit }) {
      const token = randomUUID()
      const [flat, first] = await write('claim webhook deliveries', c => run(c, OUTBOX_CLAIM, outboxKeys,
        [at, leaseUntil, limit, token, ...webhooks])) as [Array<string | number>, string | null | false]
      const claims: OutboxClaim[] = []
      for (let i = 0; i + 2 < flat.length; i += 3) {
        const delivery = asDelivery(parseJson(String(flat[i + 1])))
        if (delivery === null) {
          logger.warn({ redis: target, delivery: String(flat[i]) }, 'waygate: ignoring a webhook delivery in redis that is not valid JSON')
          continue
        }
        claims.push({ delivery, attempts: Number(flat[i + 2]), token })
      }
      return { claims, nextDueAt: first === null || first === false ? null : Number(first) }
    },
    async complete (claim) {
      return Number(await write('complete a webhook delivery', c => run(c, OUTBOX_COMPLETE, outboxKeys, [claim.delivery.id, claim.token]))) === 1
    },
    async fail (claim, retryAt, lastError, at) {
      const dead: DeadLetter = { delivery: claim.delivery, attempts: claim.attempts, lastError, failedAt: at }
      return Number(await write('record a failed webhook delivery', c => run(c, OUTBOX_FAIL, [...outboxKeys, keys.outboxDead],
        [claim.delivery.id, claim.token, retryAt === null ? '' : String(retryAt), JSON.stringify(dead)]))) === 1
    },
    async listDead () {
      const all = await call('read dead letters', c => c.hgetall(keys.outboxDead))
      const out: DeadLetter[] = []
      for (const text of Object.values(all)) {
        const value = parseJson(text)
        if (!isRecord(value)) continue
        const delivery = asDelivery(value.delivery)
        if (delivery === null) continue
        out.push({ delivery, attempts: Number(value.attempts) || 0, lastError: String(value.lastError ?? ''), failedAt: Number(value.failedAt) || 0 })
      }
      return out.sort((a, b) => b.failedAt - a.failedAt || (a.delivery.id < b.delivery.id ? -1 : 1))
    },
    async retryDead (id, at) {
      const text = await call('read a dead letter', c => c.hget(keys.outboxDead, id))
      if (text === null) return false
      const value = parseJson(text)
      const delivery = isRecord(value) ? asDelivery(value.delivery) : null
      if (delivery === null) return false
      return Number(await write('retry a dead letter', c => run(c, OUTBOX_RETRY_DEAD, [...outboxKeys, keys.outboxDead],
        [id, text, JSON.stringify(delivery), at]))) === 1
    },
    async deleteDead (id) {
      return Number(await write('delete a dead letter', c => c.hdel(keys.outboxDead, id))) === 1
    },
    async pendingCount () {
      return Number(await call('count webhook deliveries', c => c.hlen(keys.outbox)))
    }
  }

  // ---- reads ----

  async function readAudit (): Promise<AuditEntry[]> {
    const texts = await call('read the audit log', c => c.lrange(keys.audit, 0, -1))
    const entries: AuditEntry[] = []
    for (const text of texts) {
      const entry = asAuditEntry(parseJson(text))
      if (entry !== null) entries.push(entry)
    }
    return entries
  }

  function readGlobal (raw: string | null): GlobalMaintenance | null {
    return raw === null ? null : asGlobal(parseJson(raw))
  }

  return {
    kind: 'redis',
    outbox,

    init () {
      initialized ??= (async () => {
        if (closed) return
        subscriber = createSubscriber()
        const connecting: Array<Promise<unknown>> = [subscriber.connect()]
        if (client.status === 'wait') connecting.push(client.connect())
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          Promise.allSettled(connecting),
          new Promise(resolve => { timer = setTimeout(resolve, connectTimeoutMs) })
        ])
        clearTimeout(timer)
        if (closed) return
        await follow()
        initDone = true
        if (ready()) {
          // the engine loads everything right after init: nothing to reload yet
          resyncOwed = false
        } else {
          down = true
          logger.warn({ redis: target, err: lastError ?? undefined },
            'waygate: redis is unreachable; the app serves the states declared in code until it is, and changes fail meanwhile (reconnecting with backoff)')
        }
      })()
      return initialized
    },

    async load (): Promise<BackendSnapshot> {
      const on = subscribed ? subscription : -1
      const [pairs, globalRaw, revision, epoch] = await call('load the state', async c =>
        await run(c, LOAD_STATE, [keys.routes, keys.global, keys.seq, keys.epoch], [randomUUID()]) as [string[], string | null, number, string])
      if (on === subscription && subscribed) covered = Math.max(covered ?? revision, revision)
      const routes: RouteState[] = []
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        const key = pairs[i]!
        const text = pairs[i + 1]!
        const state = asRouteState(parseJson(text), key)
        if (state === null) {
          logger.warn({ redis: target, key }, 'waygate: ignoring a route state in redis that is not valid JSON for its key')
          continue
        }
        routes.push(state)
      }
      return { routes, global: readGlobal(globalRaw), revision: Number(revision), epoch: String(epoch) }
    },

    async getRoute (key) {
      const raw = await call('read a route', c => c.hget(keys.routes, key))
      return raw === null ? null : asRouteState(parseJson(raw), key)
    },

    updateRoute (key, updater: Updater<RouteState, RouteState | null>) {
      return serial(async () => {
        for (let attempt = 1; ; attempt++) {
          const raw = await call('read a route', c => c.hget(keys.routes, key))
          // an unreadable value counts as absent: the next write replaces it
          const current = raw === null ? null : asRouteState(parseJson(raw), key)
          const update = updater(current)
          if (update === undefined) return raw === null ? null : asRouteState(parseJson(raw), key)
          const next = structuredClone(update.next)
          const audit = update.audit === undefined ? undefined : structuredClone(update.audit)
          const change: BackendChange = { type: 'route', state: next }
          const done = await commit(CAS_FIELD, keys.routes, key, raw, JSON.stringify(next), audit, change, update.deliveries)
          if (done === null) {
            await contention(attempt, `update of ${key}`)
            continue
          }
          remember(change, done.seq)
          emitter.emit({ type: 'route', state: structuredClone(next), revision: done.seq })
          if (done.audited && audit !== undefined) emitter.emit({ type: 'audit', entry: structuredClone(audit) })
          return structuredClone(next)
        }
      })
    },

    registerRoutes (states) {
      return serial(async () => {
        if (states.length === 0) return []
        const args: string[] = [channel, instance]
        for (const state of states) args.push(state.key, JSON.stringify(state), JSON.stringify({ type: 'route', state }))
        const reply = await write('register routes', c => run(c, REGISTER_ROUTES, [keys.routes, keys.seq], args)) as Array<string | number>
        const seq = Number(reply[0])
        const added = new Set(reply.slice(1).map(String))
        const result: string[] = []
        for (const state of states) {
          if (!added.has(state.key) || result.includes(state.key)) continue
          result.push(state.key)
          const change: BackendChange = { type: 'route', state: structuredClone(state), revision: seq }
          remember(change, seq)
          emitter.emit(change)
        }
        return result
      })
    },

    deleteRoute (key) {
      return serial(async () => {
        const change: BackendChange = { type: 'route_deleted', key }
        const seq = Number(await write('delete a route', c => run(c, DELETE_ROUTE, [keys.routes, keys.seq], [key, channel, instance, JSON.stringify(change)])))
        if (seq === 0) return false
        remember(change, seq)
        emitter.emit({ ...change, revision: seq })
        return true
      })
    },

    updateGlobal (updater: Updater<GlobalMaintenance, GlobalMaintenance>) {
      return serial(async () => {
        for (let attempt = 1; ; attempt++) {
          const raw = await call('read global maintenance', c => c.get(keys.global))
          const current = readGlobal(raw) ?? defaultGlobalMaintenance()
          const update = updater(current)
          if (update === undefined) return readGlobal(raw) ?? defaultGlobalMaintenance()
          const next = structuredClone(update.next)
          const audit = update.audit === undefined ? undefined : structuredClone(update.audit)
          const change: BackendChange = { type: 'global', global: next }
          const done = await commit(CAS_KEY, keys.global, '', raw, JSON.stringify(next), audit, change, update.deliveries)
          if (done === null) {
            await contention(attempt, 'update of global maintenance')
            continue
          }
          remember(change, done.seq)
          emitter.emit({ type: 'global', global: structuredClone(next), revision: done.seq })
          if (done.audited && audit !== undefined) emitter.emit({ type: 'audit', entry: structuredClone(audit) })
          return structuredClone(next)
        }
      })
    },

    appendAudit (entry, deliveries) {
      return serial(async () => {
        const copy = structuredClone(entry)
        const change: BackendChange = { type: 'audit', entry: copy }
        const seq = Number(await write('append to the audit log', c => run(c, APPEND_AUDIT,
          [keys.audit, keys.auditIds, keys.seq, keys.outbox, keys.outboxDue, keys.outboxDead],
          [copy.id, JSON.stringify(copy), maxAudit, channel, instance, JSON.stringify(change), Date.now(), ...deliveryArgs(deliveries)])))
        if (seq === 0) return false
        emitter.emit({ type: 'audit', entry: structuredClone(copy) })
        return true
      })
    },

    async listAudit (query?: AuditQuery) {
      return filterAudit(await readAudit(), query)
    },

    async putRecord (namespace, id, value, putOptions) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const json = recordJson(value)
      const expiresAt = recordExpiry(putOptions)
      return serial(async () => {
        const at = now()
        const live = isLive({ expiresAt }, at)
        const stored: BackendChange = { type: 'record', namespace, id, record: { id, value: JSON.parse(json), expiresAt } }
        const removed: BackendChange = { type: 'record', namespace, id, record: null }
        const seq = Number(await write('store a record', c => run(c, PUT_RECORD, [...recordKeys(namespace), keys.seq], [
          id,
          storedRecord(json, expiresAt),
          expiresAt === null ? '' : String(expiresAt),
          String(at),
          live ? '1' : '0',
          channel,
          instance,
          JSON.stringify(stored),
          JSON.stringify(removed)
        ])))
        if (seq === 0) return
        const change: BackendChange = live
          ? { type: 'record', namespace, id, record: { id, value: JSON.parse(json), expiresAt }, revision: seq }
          : { ...removed, revision: seq }
        remember(change, seq)
        emitter.emit(change)
      })
    },

    async getRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const text = await call('read a record', c => c.hget(recordKeys(namespace)[0], id))
      if (text === null) return null
      const record = recordFrom(id, text)
      return record === null || !isLive(record, now()) ? null : record
    },

    async listRecords (namespace) {
      checkRecordKey(namespace, 'namespace')
      const all = await call('read records', c => c.hgetall(recordKeys(namespace)[0]))
      const at = now()
      const records: BackendRecord[] = []
      for (const [id, text] of Object.entries(all)) {
        const record = recordFrom(id, text)
        if (record !== null && isLive(record, at)) records.push(record)
      }
      return records.sort(compareIds)
    },

    async deleteRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      return serial(async () => {
        const change: BackendChange = { type: 'record', namespace, id, record: null }
        const seq = Number(await write('delete a record', c => run(c, DELETE_RECORD, [...recordKeys(namespace), keys.seq],
          [id, String(now()), channel, instance, JSON.stringify(change)])))
        if (seq === 0) return false
        remember(change, seq)
        emitter.emit({ ...change, revision: seq })
        return true
      })
    },

    subscribe (listener) {
      return emitter.subscribe(listener)
    },

    async health (): Promise<BackendHealth> {
      if (closed) return { ok: false, detail: 'the redis backend is closed' }
      try {
        await call('ping', c => c.ping())
      } catch (err) {
        return { ok: false, detail: errorMessage(err) }
      }
      if (!subscribed) return { ok: false, detail: `connected to ${target}, but not following the changes of other instances (subscription down)` }
      return { ok: true }
    },

    async close () {
      if (closed) return
      // writes already queued finish first, so close() means every accepted write is settled
      await tail
      closed = true
      if (followRetry !== null) clearTimeout(followRetry)
      client.off('ready', onClientReady)
      client.off('close', onClientClose)
      client.off('error', onClientError)
      const sub = subscriber
      subscriber = null
      subscribed = false
      if (sub !== null) {
        sub.removeAllListeners('message')
        // keep an error listener: a late socket error must not become an unhandled 'error' event
        sub.on('error', () => {})
        sub.disconnect()
      }
      if (owned) {
        client.on('error', () => {})
        if (client.status === 'ready') await withTimeout(client.quit(), 'quit').catch(() => {})
        client.disconnect()
      }
      emitter.clear()
    }
  }
}
