import { randomUUID } from 'node:crypto'
import type { Notification, Pool, PoolClient, PoolConfig, QueryResult } from 'pg'
import { WG_ERR_BACKEND_UNAVAILABLE, WG_ERR_INPUT_INVALID, WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { silentLogger, type WaygateLogger } from '../logger.js'
import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { defaultGlobalMaintenance } from '../models.js'
import { asAuditEntry, asGlobal, asRouteState, errorMessage, isRecord, orderKey, parseJson, remoteChange } from './stored-values.js'
import { loadPg } from '../pg.js'
import { MIGRATION_LOCK, MIGRATIONS, SCHEMA_NAME, SCHEMA_VERSION } from './postgres-schema.js'
import {
  ChangeEmitter,
  DEFAULT_AUDIT_LIMIT,
  checkRecordKey,
  clockOption,
  compareIds,
  isLive,
  positiveInteger,
  recordExpiry,
  recordJson
} from './shared.js'
import { DELIVERY_ID } from './outbox-state.js'
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

/**
 * The part of a node-postgres `Pool` the backend uses; a `pg.Pool` (or anything shaped like one)
 * fits. Declared here so that waygate's types never require `@types/pg`.
 */
export interface PostgresPool {
  connect (): Promise<unknown>
  query (text: string, values?: unknown[]): Promise<unknown>
}

/**
 * Where the Postgres backend connects: a connection string (`postgres://user:pass@host/db`, or
 * `postgres://user@/db?host=/run/postgresql` for a unix socket), or a `pg.Pool` you own, which the
 * backend borrows connections from and never ends.
 */
export type PostgresConnection = { connectionString: string } | { pool: PostgresPool }

/** How long the audit log is kept; both limits apply when both are set. */
export interface PostgresAuditRetention {
  /** Entries older than this many days are pruned in the background; `false` keeps them for good. Default 365. */
  maxAgeDays?: number | false
  /** At most this many entries, the oldest dropped as new ones are written; `false` for no limit. Default no limit. */
  maxEntries?: number | false
}

/** Options of {@link createPostgresBackend}. */
export interface PostgresBackendOptions {
  /** The schema waygate's tables live in, created when missing: a lower-case identifier of 1 to 48 characters. Default `waygate`. */
  schema?: string
  /** How long the audit log is kept. Default: one year, no count limit. */
  auditRetention?: PostgresAuditRetention
  /** Same as `auditRetention.maxEntries`, the name the other backends use (and the backend contract passes). */
  maxAuditEntries?: number
  /** How often expired audit entries and records are deleted. Default one hour; the first run is a minute after start. */
  pruneIntervalMs?: number
  /** The clock records expire by, epoch ms; it is passed to the queries, Postgres's own clock is never used for expiry. Default `Date.now`. */
  now?: () => number
  /** How long any one query may take before it fails with `WG_ERR_BACKEND_UNAVAILABLE`. Default 1000 ms. */
  commandTimeoutMs?: number
  /** How long `init()` waits for the database before letting the app start without it; also the timeout of a new connection. Default 2000 ms. */
  connectTimeoutMs?: number
  /** Longest pause between reconnection attempts of the change feed's connection. Default 2000 ms. */
  maxReconnectDelayMs?: number
  /** How often the change feed's connection is checked with a `SELECT 1`, so a silently dead one is noticed. Default 5000 ms. */
  heartbeatMs?: number
  /** Extra `pg.Pool` options for a pool made from `connectionString` (`ssl`, `max`…). Waygate's timeouts win. */
  poolOptions?: Record<string, unknown>
  /** Where connection trouble is reported (once per outage). Default silent; `createEngineFromEnv` passes the engine's logger. */
  logger?: WaygateLogger
}

const DEFAULT_SCHEMA = 'waygate'
const DEFAULT_COMMAND_TIMEOUT_MS = 1000
const DEFAULT_CONNECT_TIMEOUT_MS = 2000
const DEFAULT_MAX_RECONNECT_DELAY_MS = 2000
const DEFAULT_HEARTBEAT_MS = 5000
const DEFAULT_PRUNE_INTERVAL_MS = 60 * 60_000
const FIRST_PRUNE_MS = 60_000
const DEFAULT_AUDIT_MAX_AGE_DAYS = 365
const DAY_MS = 24 * 60 * 60_000
/** Rows one pruning statement deletes, so pruning never holds locks for long. */
const PRUNE_BATCH = 5000
/** Postgres refuses notifications of 8000 bytes and more; a change too big for one tells the others to reload. */
const MAX_NOTIFY_BYTES = 7900
const GLOBAL = 'global'

/** Postgres text cannot hold NUL; filter columns of the audit log get a replacement character instead. */
function sqlText (value: string): string {
  return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value
}

function checkNoNul (value: string, name: 'namespace' | 'id'): void {
  if (value.includes('\u0000')) throw new WG_ERR_INPUT_INVALID(`record ${name} must not contain NUL characters (Postgres text cannot hold them)`)
}

/** Where a connection string points, for messages: never with the password. */
function describeConnectionString (text: string): string {
  // not URL-parsed: `postgresql://user@/db?host=/run/postgresql` is valid for pg but not for URL
  const match = /^postgres(?:ql)?:\/\/(?:[^@/?]*@)?([^/?]*)(\/[^?]*)?(?:\?(.*))?$/i.exec(text)
  if (match === null) return 'postgres'
  const host = match[1] !== '' ? match[1] : (new URLSearchParams(match[3] ?? '').get('host') ?? 'localhost')
  return `postgres://${host}${match[2] ?? ''}`
}

function optionalPositive (value: unknown, name: string): number | null {
  if (value === undefined || value === false) return null
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number or false, got ${String(value)}`)
  }
  return value
}

/** A query runner bound to one connection inside a transaction. */
type Query = (text: string, values?: unknown[]) => Promise<QueryResult>

/**
 * Keeps routes, global maintenance, records and the audit log in PostgreSQL, for several
 * instances of an app (or a Waygate Server) sharing one state, with an audit log kept for as
 * long as compliance asks and queried in SQL. Requests never touch the database: the engine keeps
 * its snapshot and this backend feeds it every instance's changes through `LISTEN/NOTIFY`.
 *
 * - Every write is one transaction that first takes the next revision (`meta.revision`, a row
 *   lock that orders all writers), reads the current value, runs the updater, writes the value
 *   with its audit entry and notifies the change; an updater that changes nothing rolls back.
 *   Revisions are therefore gap-free and in commit order, which is the order notifications arrive in.
 * - A change is announced to this instance's subscribers before the write resolves; the others
 *   get it by notification, skip their own and drop any older than their own last write of the
 *   same key. A notification that skips a revision, or a reconnect, makes them reload.
 * - Failure: every query is bounded (`commandTimeoutMs`); while the change feed's connection is
 *   down every call rejects at once with `WG_ERR_BACKEND_UNAVAILABLE`, which the engine turns
 *   into "serve the last snapshot"; the outage is logged once; reconnection with backoff forever.
 * - Schema: created and migrated by `init()` under an advisory lock (see `postgres-schema.ts`).
 *   Tables: `meta`, `routes`, `config`, `records`, `audit`.
 *
 * @example
 * const backend = createPostgresBackend({ connectionString: process.env.DATABASE_URL! })
 * const engine = createEngine({ backend })
 */
export function createPostgresBackend (connection: PostgresConnection, options: PostgresBackendOptions = {}): WaygateBackend {
  let now: () => number
  let commandTimeoutMs: number
  let connectTimeoutMs: number
  let maxReconnectDelayMs: number
  let heartbeatMs: number
  let pruneIntervalMs: number
  let maxAgeDays: number | null
  let maxEntries: number | null
  const schema = options.schema ?? DEFAULT_SCHEMA
  try {
    if (!isRecord(connection) || !(('connectionString' in connection) !== ('pool' in connection))) {
      throw new TypeError('the connection must be { connectionString } or { pool }')
    }
    if ('connectionString' in connection) {
      if (typeof connection.connectionString !== 'string' || connection.connectionString === '') throw new TypeError('connectionString must be a non-empty string')
    } else if (!isRecord(connection.pool) || typeof connection.pool.connect !== 'function' || typeof connection.pool.query !== 'function') {
      throw new TypeError('pool must be a pg Pool')
    }
    if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
      throw new TypeError(`schema must be a lower-case identifier of 1 to 48 letters, digits or underscores, got ${JSON.stringify(schema)}`)
    }
    now = clockOption(options.now)
    commandTimeoutMs = positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', DEFAULT_COMMAND_TIMEOUT_MS)
    connectTimeoutMs = positiveInteger(options.connectTimeoutMs, 'connectTimeoutMs', DEFAULT_CONNECT_TIMEOUT_MS)
    maxReconnectDelayMs = positiveInteger(options.maxReconnectDelayMs, 'maxReconnectDelayMs', DEFAULT_MAX_RECONNECT_DELAY_MS)
    heartbeatMs = positiveInteger(options.heartbeatMs, 'heartbeatMs', DEFAULT_HEARTBEAT_MS)
    pruneIntervalMs = positiveInteger(options.pruneIntervalMs, 'pruneIntervalMs', DEFAULT_PRUNE_INTERVAL_MS)
    const retention = options.auditRetention ?? {}
    if (!isRecord(retention)) throw new TypeError('auditRetention must be an object')
    maxAgeDays = retention.maxAgeDays === undefined ? DEFAULT_AUDIT_MAX_AGE_DAYS : optionalPositive(retention.maxAgeDays, 'auditRetention.maxAgeDays')
    maxEntries = options.maxAuditEntries !== undefined
      ? positiveInteger(options.maxAuditEntries, 'maxAuditEntries', 1)
      : retention.maxEntries === undefined || retention.maxEntries === false
        ? null
        : positiveInteger(retention.maxEntries, 'auditRetention.maxEntries', 1)
    if (options.poolOptions !== undefined && !isRecord(options.poolOptions)) throw new TypeError('poolOptions must be an object')
  } catch (err) {
    throw new WG_ERR_OPTIONS_INVALID((err as Error).message)
  }
  const logger = options.logger ?? silentLogger
  const S = `"${schema}"`
  const channel = `${schema}.changes`
  const instance = randomUUID()
  const emitter = new ChangeEmitter()

  const owned = 'connectionString' in connection
  const pool: Pool = owned
    ? new (loadPg('the Postgres backend').Pool)({
      ...(options.poolOptions as PoolConfig | undefined),
      connectionString: connection.connectionString,
      connectionTimeoutMillis: connectTimeoutMs,
      keepAlive: true,
      application_name: 'waygate'
    })
    : (connection as { pool: PostgresPool }).pool as unknown as Pool
  const target = owned ? describeConnectionString(connection.connectionString) : 'a pg pool'
  // an idle pooled connection that dies must not become an unhandled 'error' event
  const onPoolError = (err: unknown): void => { noteError(err) }
  if (owned) pool.on('error', onPoolError)

  let listener: PoolClient | null = null
  let listening = false
  let connecting: Promise<void> | null = null
  let reconnectTimer: NodeJS.Timeout | null = null
  let reconnectAttempts = 0
  let heartbeat: NodeJS.Timeout | null = null
  let pruneTimer: NodeJS.Timeout | null = null
  let initialized: Promise<void> | null = null
  let initDone = false
  let migrated = false
  let closed = false
  let down = false
  let resyncOwed = true
  let lastError: string | null = null
  let tail: Promise<unknown> = Promise.resolve()
  const ownWrites = new Map<string, number>()
  let lastMessage: number | null = null
  let covered: number | null = null
  let subscription = 0

  // ---- connection state ----

  function noteError (err: unknown): void {
    lastError = errorMessage(err)
  }

  function noteDown (): void {
    if (closed || !initDone || down) return
    down = true
    logger.warn({ postgres: target, err: lastError ?? undefined },
      'waygate: lost the connection to postgres; requests are served from the last known state and changes fail until it is back (reconnecting with backoff)')
  }

  function recover (): void {
    if (closed || !initDone || !listening) return
    if (down) {
      down = false
      logger.info({ postgres: target }, 'waygate: postgres reachable again; reloading the state')
    }
    lastError = null
    if (resyncOwed) {
      resyncOwed = false
      ownWrites.clear()
      emitter.emit({ type: 'resync' })
    }
  }

  function dropListener (client: PoolClient, err?: unknown): void {
    if (listener !== client) return
    if (err !== undefined) noteError(err)
    listener = null
    if (listening) resyncOwed = true
    listening = false
    lastMessage = null
    covered = null
    client.removeListener('notification', onNotification)
    try {
      // destroyed, not returned: a connection that LISTENs must not serve other queries
      client.release(err instanceof Error ? err : new Error('change feed connection dropped'))
    } catch {
      // released already
    }
    noteDown()
    scheduleReconnect()
  }

  function scheduleReconnect (): void {
    if (closed || reconnectTimer !== null || connecting !== null) return
    const delay = Math.round(Math.min(maxReconnectDelayMs, 50 * 2 ** Math.min(reconnectAttempts++, 16)) * (0.5 + Math.random() / 2))
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null
      connect().catch(() => {})
    }, delay)
    reconnectTimer.unref()
  }

  /** Opens the change feed: a pooled connection kept for LISTEN, after the schema is migrated. */
  function connect (): Promise<void> {
    connecting ??= connectOnce().finally(() => {
      connecting = null
      // a failed attempt schedules the next one only now: scheduleReconnect skips while one is running
      if (listener === null) scheduleReconnect()
    })
    return connecting
  }

  async function connectOnce (): Promise<void> {
    if (closed || listener !== null) return
    let client: PoolClient
    try {
      client = await borrow('connect', connectTimeoutMs)
    } catch (err) {
      noteError(err)
      return
    }
    if (closed) {
      client.release(true)
      return
    }
    client.on('error', err => { dropListener(client, err) })
    client.on('end', () => { dropListener(client) })
    listener = client
    try {
      if (!migrated) {
        await migrate(client)
        migrated = true
      }
      client.on('notification', onNotification)
      await withTimeout(client.query(`LISTEN "${channel}"`), 'listen')
    } catch (err) {
      dropListener(client, err)
      return
    }
    reconnectAttempts = 0
    listening = true
    subscription++
    recover()
  }

  /** Creates or upgrades the schema; instances doing it at once queue on the advisory lock. */
  async function migrate (client: PoolClient): Promise<void> {
    const timeout = Math.max(commandTimeoutMs, connectTimeoutMs) * 5
    try {
      await withTimeout(client.query('BEGIN'), 'migrate', timeout)
      await withTimeout(client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK, schema]), 'migrate', timeout)
      await withTimeout(client.query(`CREATE SCHEMA IF NOT EXISTS ${S}`), 'migrate', timeout)
      await withTimeout(client.query(`CREATE TABLE IF NOT EXISTS ${S}.migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`), 'migrate', timeout)
      const found = await withTimeout(client.query(`SELECT coalesce(max(version), 0)::int AS version FROM ${S}.migrations`), 'migrate', timeout)
      const version = Number(found.rows[0]?.version ?? 0)
      if (version > SCHEMA_VERSION) {
        throw new Error(`schema ${schema} is at version ${version}, newer than this waygate knows (${SCHEMA_VERSION}); upgrade waygate`)
      }
      for (let v = version + 1; v <= SCHEMA_VERSION; v++) {
        for (const statement of MIGRATIONS[v - 1]!) await withTimeout(client.query(statement.replaceAll('$S', S)), 'migrate', timeout)
        await withTimeout(client.query(`INSERT INTO ${S}.migrations (version) VALUES ($1)`, [v]), 'migrate', timeout)
      }
      await withTimeout(client.query('COMMIT'), 'migrate', timeout)
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    }
  }

  function onNotification (message: Notification): void {
    if (message.channel !== channel || closed || message.payload === undefined) return
    const parsed = parseJson(message.payload)
    if (!isRecord(parsed) || typeof parsed.s !== 'number') return
    const seq = parsed.s
    const reset = lastMessage !== null && seq <= lastMessage
    const gap = covered !== null && seq > covered + 1
    lastMessage = seq
    covered = reset ? seq : Math.max(covered ?? seq, seq)
    let reload = false
    if (parsed.i !== instance) {
      if (Array.isArray(parsed.c)) {
        for (const raw of parsed.c) {
          const change = remoteChange(raw, seq)
          if (change === null) continue
          const key = orderKey(change)
          const mine = key === null ? undefined : ownWrites.get(key)
          if (mine !== undefined && mine > seq) continue
          emitter.emit(change)
        }
      } else {
        // the change was too big to notify: read it all again
        reload = true
      }
    }
    if (ownWrites.size > 0) {
      for (const [key, mine] of ownWrites) if (mine <= seq) ownWrites.delete(key)
    }
    if (reset) ownWrites.clear()
    if (reset || gap || reload) emitter.emit({ type: 'resync' })
  }

  function startTimers (): void {
    heartbeat = setInterval(() => {
      const client = listener
      if (client === null || !listening) return
      withTimeout(client.query('SELECT 1'), 'heartbeat').catch(err => { dropListener(client, err) })
    }, heartbeatMs)
    heartbeat.unref()
    if (maxAgeDays !== null) {
      const first = setTimeout(() => {
        prune().catch(() => {})
        pruneTimer = setInterval(() => { prune().catch(() => {}) }, pruneIntervalMs)
        pruneTimer.unref()
      }, Math.min(FIRST_PRUNE_MS, pruneIntervalMs))
      first.unref()
      pruneTimer = first
    }
  }

  // ---- queries ----

  function withTimeout<T> (pending: Promise<T>, what: string, ms = commandTimeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    })
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer))
  }

  /** A pooled connection within `ms`; one that arrives after the timeout goes back to the pool. */
  async function borrow (what: string, ms: number): Promise<PoolClient> {
    const pending = pool.connect()
    try {
      return await withTimeout(pending, what, ms)
    } catch (err) {
      pending.then(late => { late.release() }, () => {})
      throw err
    }
  }

  function notConnected (what: string): Error {
    return new WG_ERR_BACKEND_UNAVAILABLE(`postgres at ${target} is not connected${lastError === null ? '' : ` (${lastError})`}; cannot ${what}`)
  }

  function unavailable (what: string, err: unknown): Error {
    noteError(err)
    return new WG_ERR_BACKEND_UNAVAILABLE(`postgres at ${target}: ${what} failed: ${errorMessage(err)}`, { cause: err })
  }

  function checkOpen (what: string): void {
    if (closed) throw new WG_ERR_BACKEND_UNAVAILABLE('the postgres backend is closed')
    if (!listening) throw notConnected(what)
  }

  /** One query on any pooled connection; rejects at once when not connected, after `commandTimeoutMs` at most. */
  async function read (what: string, text: string, values?: unknown[]): Promise<QueryResult> {
    checkOpen(what)
    try {
      return await withTimeout(pool.query(text, values), what)
    } catch (err) {
      throw unavailable(what, err)
    }
  }

  /** Raised inside a transaction body to roll back and resolve a value without writing. */
  class NoChange<T> {
    constructor (readonly value: T) {}
  }

  /**
   * Runs `body` in a write transaction holding the next revision. The body returns what the write
   * resolves to and the changes to notify (none: roll back). An error the body throws (an
   * updater's own) rolls back and is rethrown as it is; a failing query becomes
   * `WG_ERR_BACKEND_UNAVAILABLE`. A transaction whose COMMIT went unanswered may have happened:
   * subscribers are told to reload.
   */
  async function transaction<T> (what: string, body: (query: Query, revision: number, auditCount: number) => Promise<{ result: T, changes: BackendChange[] } | NoChange<T>>): Promise<{ result: T, revision: number | null, changes: BackendChange[] }> {
    checkOpen(what)
    let client: PoolClient
    try {
      client = await borrow(what, connectTimeoutMs)
    } catch (err) {
      throw unavailable(what, err)
    }
    let broken: Error | undefined
    let committing = false
    // a connection lost between two queries is reported here, not as an unhandled 'error' event
    const onClientError = (err: Error): void => { broken = err }
    client.on('error', onClientError)
    const query: Query = async (text, values) => {
      try {
        return await withTimeout(client.query(text, values), what)
      } catch (err) {
        broken = err as Error
        throw unavailable(what, err)
      }
    }
    try {
      const opened = await query(`BEGIN; SET LOCAL statement_timeout = ${commandTimeoutMs}; SET LOCAL idle_in_transaction_session_timeout = ${commandTimeoutMs * 5}; UPDATE ${S}.meta SET revision = revision + 1 WHERE id = 1 RETURNING revision, audit_count`) as unknown as QueryResult[]
      const row = opened[opened.length - 1]?.rows[0] as { revision: string, audit_count: string } | undefined
      if (row === undefined) throw unavailable(what, new Error(`schema ${schema} has no meta row`))
      const revision = Number(row.revision)
      const outcome = await body(query, revision, Number(row.audit_count))
      if (outcome instanceof NoChange) {
        await query('ROLLBACK')
        return { result: outcome.value, revision: null, changes: [] }
      }
      let payload = JSON.stringify({ i: instance, s: revision, c: outcome.changes })
      if (Buffer.byteLength(payload) > MAX_NOTIFY_BYTES) payload = JSON.stringify({ i: instance, s: revision })
      await query('SELECT pg_notify($1, $2)', [channel, payload])
      committing = true
      await query('COMMIT')
      return { result: outcome.result, revision, changes: outcome.changes }
    } catch (err) {
      if (committing) {
        if (listening) emitter.emit({ type: 'resync' })
        else resyncOwed = true
      }
      if (broken === undefined) await client.query('ROLLBACK').catch((rollbackErr: Error) => { broken = rollbackErr })
      throw err
    } finally {
      client.removeListener('error', onClientError)
      client.release(broken)
    }
  }

  /** Runs the writes of this instance one at a time, so their order is the order they were made. */
  function serial<T> (task: () => Promise<T>): Promise<T> {
    const next = tail.then(task, task)
    tail = next.catch(() => {})
    return next
  }

  /** Announces what a committed write changed, each state change with its revision. */
  function announce (revision: number, changes: BackendChange[]): void {
    for (const change of changes) {
      if (change.type === 'audit' || change.type === 'resync') {
        emitter.emit(structuredClone(change))
        continue
      }
      const key = orderKey(change)
      if (key !== null) ownWrites.set(key, revision)
      emitter.emit({ ...structuredClone(change), revision })
    }
  }

  /** Inserts an audit entry in the transaction; resolves whether it was new. Keeps the count limit. */
  async function insertAudit (query: Query, entry: AuditEntry, auditCount: number, deliveries?: readonly OutboxDelivery[]): Promise<boolean> {
    const time = Date.parse(entry.timestamp)
    const inserted = await query(`WITH ins AS (
        INSERT INTO ${S}.audit (id, ts, key, service, action, actor, platform, entry)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING 1
      )
      UPDATE ${S}.meta SET audit_count = audit_count + (SELECT count(*) FROM ins) WHERE id = 1 RETURNING audit_count`, [
      entry.id,
      new Date(Number.isNaN(time) ? Date.now() : time).toISOString(),
      sqlText(String(entry.key)),
      entry.service === null || entry.service === undefined ? null : sqlText(String(entry.service)),
      sqlText(String(entry.action)),
      sqlText(String(entry.actor)),
      entry.platform === undefined ? null : sqlText(String(entry.platform)),
      JSON.stringify(entry)
    ])
    const count = Number(inserted.rows[0]?.audit_count ?? auditCount)
    if (count === auditCount) return false
    if (maxEntries !== null && count > maxEntries) {
      await query(`WITH gone AS (
          DELETE FROM ${S}.audit WHERE seq IN (SELECT seq FROM ${S}.audit ORDER BY seq LIMIT $1) RETURNING 1
        )
        UPDATE ${S}.meta SET audit_count = audit_count - (SELECT count(*) FROM gone) WHERE id = 1`, [count - maxEntries])
    }
    const due = (deliveries ?? []).filter(d => DELIVERY_ID.test(d.id))
    if (due.length > 0) {
      // due at once; one already pending or dead keeps its place
      await query(`INSERT INTO ${S}.outbox (id, webhook, delivery, due, attempts, created_at)
        SELECT u.id, u.delivery->>'webhook', u.delivery, $3, 0, (u.delivery->>'createdAt')::bigint
        FROM unnest($1::text[], $2::json[]) AS u(id, delivery)
        WHERE NOT EXISTS (SELECT 1 FROM ${S}.outbox_dead d WHERE d.id = u.id)
        ON CONFLICT (id) DO NOTHING`, [due.map(d => d.id), due.map(d => JSON.stringify(d)), Date.now()])
    }
    return true
  }

  function asDelivery (value: unknown): OutboxDelivery | null {
    if (!isRecord(value) || typeof value.id !== 'string' || typeof value.webhook !== 'string' || typeof value.body !== 'string') return null
    return value as unknown as OutboxDelivery
  }

  const outbox: WebhookOutbox = {
    async claim ({ webhooks, now: at, leaseUntil, limit }) {
      const token = randomUUID()
      const claims: OutboxClaim[] = []
      if (limit > 0 && webhooks.length > 0) {
        // SKIP LOCKED: instances claiming at once each take different deliveries
        const taken = await read('claim webhook deliveries', `WITH picked AS (
            SELECT id FROM ${S}.outbox WHERE due <= $1 AND webhook = ANY($2::text[])
            ORDER BY due, created_at LIMIT $3 FOR UPDATE SKIP LOCKED
          )
          UPDATE ${S}.outbox o SET due = $4, attempts = o.attempts + 1, lease = $5
          FROM picked WHERE o.id = picked.id
          RETURNING o.delivery, o.attempts, o.created_at`, [at, [...webhooks], limit, leaseUntil, token])
        const rows = [...taken.rows].sort((a, b) => Number(a.created_at) - Number(b.created_at))
        for (const row of rows) {
          const delivery = asDelivery(row.delivery)
          if (delivery !== null) claims.push({ delivery, attempts: Number(row.attempts), token })
        }
      }
      const first = await read('read the outbox', `SELECT min(due) AS due FROM ${S}.outbox`)
      const due = first.rows[0]?.due
      return { claims, nextDueAt: due === null || due === undefined ? null : Number(due) }
    },
    async complete (claim) {
      const result = await read('complete a webhook delivery', `DELETE FROM ${S}.outbox WHERE id = $1 AND lease = $2`, [claim.delivery.id, claim.token])
      return result.rowCount === 1
    },
    async fail (claim, retryAt, lastError, at) {
      if (retryAt !== null) {
        const result = await read('record a failed webhook delivery', `UPDATE ${S}.outbox SET due = $3, lease = NULL WHERE id = $1 AND lease = $2`,
          [claim.delivery.id, claim.token, retryAt])
        return result.rowCount === 1
      }
      const result = await read('record a failed webhook delivery', `WITH gone AS (
          DELETE FROM ${S}.outbox WHERE id = $1 AND lease = $2 RETURNING delivery, attempts
        )
        INSERT INTO ${S}.outbox_dead (id, delivery, attempts, last_error, failed_at)
        SELECT $1, delivery, attempts, $3, $4 FROM gone
        ON CONFLICT (id) DO UPDATE SET delivery = excluded.delivery, attempts = excluded.attempts, last_error = excluded.last_error, failed_at = excluded.failed_at`,
      [claim.delivery.id, claim.token, lastError, at])
      return result.rowCount === 1
    },
    async listDead () {
      const result = await read('read dead letters', `SELECT delivery, attempts, last_error, failed_at FROM ${S}.outbox_dead ORDER BY failed_at DESC, id`)
      const out: DeadLetter[] = []
      for (const row of result.rows) {
        const delivery = asDelivery(row.delivery)
        if (delivery !== null) out.push({ delivery, attempts: Number(row.attempts), lastError: String(row.last_error), failedAt: Number(row.failed_at) })
      }
      return out
    },
    async retryDead (id, at) {
      const result = await read('retry a dead letter', `WITH gone AS (
          DELETE FROM ${S}.outbox_dead WHERE id = $1 RETURNING delivery
        )
        INSERT INTO ${S}.outbox (id, webhook, delivery, due, attempts, lease, created_at)
        SELECT $1, delivery->>'webhook', delivery, $2, 0, NULL, (delivery->>'createdAt')::bigint FROM gone
        ON CONFLICT (id) DO UPDATE SET due = excluded.due, attempts = 0, lease = NULL`, [id, at])
      return result.rowCount === 1
    },
    async deleteDead (id) {
      const result = await read('delete a dead letter', `DELETE FROM ${S}.outbox_dead WHERE id = $1`, [id])
      return result.rowCount === 1
    },
    async pendingCount () {
      const result = await read('count webhook deliveries', `SELECT count(*)::int AS n FROM ${S}.outbox`)
      return Number(result.rows[0]?.n ?? 0)
    }
  }

  /** Deletes audit entries past the age limit and expired records, a batch per transaction. */
  async function prune (): Promise<void> {
    if (closed || !listening) return
    const cutoff = maxAgeDays === null ? null : new Date(now() - maxAgeDays * DAY_MS).toISOString()
    try {
      if (cutoff !== null) {
        for (;;) {
          const client = await borrow('prune', connectTimeoutMs)
          let deleted = 0
          let broken: Error | undefined
          try {
            await client.query(`BEGIN; SET LOCAL statement_timeout = ${commandTimeoutMs * 10}; SELECT 1 FROM ${S}.meta WHERE id = 1 FOR UPDATE`)
            const result = await client.query(`WITH gone AS (
                DELETE FROM ${S}.audit WHERE seq IN (SELECT seq FROM ${S}.audit WHERE ts < $1 ORDER BY seq LIMIT $2) RETURNING 1
              )
              UPDATE ${S}.meta SET audit_count = greatest(0, audit_count - (SELECT count(*) FROM gone)) WHERE id = 1
              RETURNING (SELECT count(*) FROM gone)::int AS deleted`, [cutoff, PRUNE_BATCH])
            deleted = Number(result.rows[0]?.deleted ?? 0)
            await client.query('COMMIT')
          } catch (err) {
            broken = err as Error
            throw err
          } finally {
            client.release(broken)
          }
          if (deleted < PRUNE_BATCH || closed) break
        }
      }
      await withTimeout(pool.query(`DELETE FROM ${S}.records WHERE expires_at IS NOT NULL AND expires_at <= $1`, [now()]), 'prune', commandTimeoutMs * 10)
    } catch (err) {
      noteError(err)
      logger.warn({ postgres: target, err: errorMessage(err) }, 'waygate: pruning the audit log and expired records failed; trying again at the next interval')
    }
  }

  function recordOf (row: { id: string, value: unknown, expires_at: string | null }): BackendRecord {
    return { id: row.id, value: row.value, expiresAt: row.expires_at === null ? null : Number(row.expires_at) }
  }

  return {
    kind: 'postgres',
    outbox,

    init () {
      initialized ??= (async () => {
        if (closed) return
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          connect(),
          new Promise(resolve => { timer = setTimeout(resolve, connectTimeoutMs * 2) })
        ])
        clearTimeout(timer)
        if (closed) return
        initDone = true
        startTimers()
        if (listening) {
          // the engine loads everything right after init: nothing to reload yet
          resyncOwed = false
        } else {
          down = true
          logger.warn({ postgres: target, err: lastError ?? undefined },
            'waygate: postgres is unreachable; the app serves the states declared in code until it is, and changes fail meanwhile (reconnecting with backoff)')
        }
      })()
      return initialized
    },

    async load (): Promise<BackendSnapshot> {
      checkOpen('load the state')
      const on = subscription
      let results: QueryResult[]
      try {
        results = await withTimeout(pool.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
          SELECT revision, epoch FROM ${S}.meta WHERE id = 1;
          SELECT key, state FROM ${S}.routes ORDER BY key;
          SELECT value FROM ${S}.config WHERE name = '${GLOBAL}';
          COMMIT`), 'load the state') as unknown as QueryResult[]
      } catch (err) {
        throw unavailable('load the state', err)
      }
      const meta = results[1]?.rows[0] as { revision: string, epoch: string } | undefined
      const revision = Number(meta?.revision ?? 0)
      if (on === subscription && listening) covered = Math.max(covered ?? revision, revision)
      const routes: RouteState[] = []
      for (const row of results[2]?.rows ?? []) {
        const state = asRouteState(row.state, row.key)
        if (state === null) {
          logger.warn({ postgres: target, key: row.key }, 'waygate: ignoring a route state in postgres that is not valid for its key')
          continue
        }
        routes.push(state)
      }
      const globalRow = results[3]?.rows[0]
      return { routes, global: globalRow === undefined ? null : asGlobal(globalRow.value), revision, epoch: String(meta?.epoch ?? '') }
    },

    async getRoute (key) {
      const result = await read('read a route', `SELECT state FROM ${S}.routes WHERE key = $1`, [key])
      const row = result.rows[0]
      return row === undefined ? null : asRouteState(row.state, key)
    },

    updateRoute (key, updater: Updater<RouteState, RouteState | null>) {
      return serial(async () => {
        const done = await transaction<RouteState | null>(`update ${key}`, async (query, revision, auditCount) => {
          const found = await query(`SELECT state FROM ${S}.routes WHERE key = $1`, [key])
          const current = found.rows[0] === undefined ? null : asRouteState(found.rows[0].state, key)
          const update = updater(current === null ? null : structuredClone(current))
          if (update === undefined) return new NoChange(current)
          const next = structuredClone(update.next)
          await query(`INSERT INTO ${S}.routes (key, state, revision) VALUES ($1, $2, $3)
            ON CONFLICT (key) DO UPDATE SET state = excluded.state, revision = excluded.revision, updated_at = now()`, [key, JSON.stringify(next), revision])
          const changes: BackendChange[] = [{ type: 'route', state: next }]
          if (update.audit !== undefined && await insertAudit(query, update.audit, auditCount, update.deliveries)) {
            changes.push({ type: 'audit', entry: structuredClone(update.audit) })
          }
          return { result: next, changes }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
        return done.result === null ? null : structuredClone(done.result)
      })
    },

    registerRoutes (states) {
      return serial(async () => {
        if (states.length === 0) return []
        const done = await transaction<string[]>('register routes', async (query, revision) => {
          const result = await query(`INSERT INTO ${S}.routes (key, state, revision)
            SELECT k, s, $3 FROM unnest($1::text[], $2::json[]) AS u(k, s)
            ON CONFLICT (key) DO NOTHING RETURNING key`, [states.map(s => s.key), states.map(s => JSON.stringify(s)), revision])
          const added = new Set(result.rows.map(row => String(row.key)))
          if (added.size === 0) return new NoChange([])
          const keys: string[] = []
          const changes: BackendChange[] = []
          for (const state of states) {
            if (!added.has(state.key) || keys.includes(state.key)) continue
            keys.push(state.key)
            changes.push({ type: 'route', state: structuredClone(state) })
          }
          return { result: keys, changes }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
        return done.result
      })
    },

    deleteRoute (key) {
      return serial(async () => {
        const done = await transaction<boolean>(`delete ${key}`, async query => {
          const result = await query(`DELETE FROM ${S}.routes WHERE key = $1`, [key])
          if (result.rowCount === 0) return new NoChange(false)
          return { result: true, changes: [{ type: 'route_deleted', key }] }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
        return done.result
      })
    },

    updateGlobal (updater: Updater<GlobalMaintenance, GlobalMaintenance>) {
      return serial(async () => {
        const done = await transaction<GlobalMaintenance>('update global maintenance', async (query, revision, auditCount) => {
          const found = await query(`SELECT value FROM ${S}.config WHERE name = '${GLOBAL}'`)
          const current = (found.rows[0] === undefined ? null : asGlobal(found.rows[0].value)) ?? defaultGlobalMaintenance()
          const update = updater(structuredClone(current))
          if (update === undefined) return new NoChange(current)
          const next = structuredClone(update.next)
          await query(`INSERT INTO ${S}.config (name, value, revision) VALUES ('${GLOBAL}', $1, $2)
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, revision = excluded.revision, updated_at = now()`, [JSON.stringify(next), revision])
          const changes: BackendChange[] = [{ type: 'global', global: next }]
          if (update.audit !== undefined && await insertAudit(query, update.audit, auditCount, update.deliveries)) {
            changes.push({ type: 'audit', entry: structuredClone(update.audit) })
          }
          return { result: next, changes }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
        return structuredClone(done.result)
      })
    },

    appendAudit (entry, deliveries) {
      return serial(async () => {
        const copy = structuredClone(entry)
        const done = await transaction<boolean>('append to the audit log', async (query, _revision, auditCount) => {
          if (!await insertAudit(query, copy, auditCount, deliveries)) return new NoChange(false)
          return { result: true, changes: [{ type: 'audit', entry: copy }] }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
        return done.result
      })
    },

    async listAudit (query: AuditQuery = {}) {
      const limit = query.limit ?? DEFAULT_AUDIT_LIMIT
      if (limit <= 0) return []
      const where: string[] = []
      const values: unknown[] = []
      const param = (value: unknown): string => {
        values.push(value)
        return `$${values.length}`
      }
      if (query.key !== undefined) where.push(`key = ${param(sqlText(query.key))}`)
      if (query.service !== undefined) where.push(`service = ${param(sqlText(query.service))}`)
      if (query.action !== undefined) where.push(`action = ${param(sqlText(query.action))}`)
      if (query.actor !== undefined) where.push(`actor = ${param(sqlText(query.actor))}`)
      if (query.since !== undefined) where.push(`ts >= ${param(query.since)}::timestamptz`)
      if (query.until !== undefined) where.push(`ts < ${param(query.until)}::timestamptz`)
      if (query.before !== undefined) where.push(`seq < (SELECT seq FROM ${S}.audit WHERE id = ${param(sqlText(query.before))})`)
      const sql = `SELECT entry FROM ${S}.audit${where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`} ORDER BY seq DESC LIMIT ${param(limit)}`
      const result = await read('read the audit log', sql, values)
      const entries: AuditEntry[] = []
      for (const row of result.rows) {
        const entry = asAuditEntry(row.entry)
        if (entry !== null) entries.push(entry)
      }
      return entries
    },

    async putRecord (namespace, id, value, putOptions) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      checkNoNul(namespace, 'namespace')
      checkNoNul(id, 'id')
      const json = recordJson(value)
      const expiresAt = recordExpiry(putOptions)
      return serial(async () => {
        const at = now()
        const done = await transaction<void>('store a record', async (query, revision) => {
          const found = await query(`SELECT value::text AS json, expires_at FROM ${S}.records WHERE namespace = $1 AND id = $2`, [namespace, id])
          const row = found.rows[0] as { json: string, expires_at: string | null } | undefined
          const current = row === undefined ? null : { json: row.json, expiresAt: row.expires_at === null ? null : Number(row.expires_at) }
          const currentLive = current !== null && isLive(current, at)
          if (!isLive({ expiresAt }, at)) {
            if (current === null) return new NoChange(undefined)
            await query(`DELETE FROM ${S}.records WHERE namespace = $1 AND id = $2`, [namespace, id])
            // an expired leftover is cleaned up without a word: nobody saw it
            if (!currentLive) return new NoChange(undefined)
            return { result: undefined, changes: [{ type: 'record', namespace, id, record: null }] }
          }
          if (currentLive && current.json === json && current.expiresAt === expiresAt) return new NoChange(undefined)
          await query(`INSERT INTO ${S}.records (namespace, id, value, expires_at, revision) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (namespace, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, revision = excluded.revision, updated_at = now()`,
          [namespace, id, json, expiresAt, revision])
          return { result: undefined, changes: [{ type: 'record', namespace, id, record: { id, value: JSON.parse(json), expiresAt } }] }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
      })
    },

    async getRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      if (namespace.includes('\u0000') || id.includes('\u0000')) return null
      const result = await read('read a record', `SELECT id, value, expires_at FROM ${S}.records
        WHERE namespace = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $3)`, [namespace, id, now()])
      const row = result.rows[0]
      return row === undefined ? null : recordOf(row)
    },

    async listRecords (namespace) {
      checkRecordKey(namespace, 'namespace')
      if (namespace.includes('\u0000')) return []
      const result = await read('read records', `SELECT id, value, expires_at FROM ${S}.records
        WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2)`, [namespace, now()])
      // sorted here: Postgres's "C" order is by UTF-8 bytes, the contract's by UTF-16 code units
      return result.rows.map(recordOf).sort(compareIds)
    },

    async deleteRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      if (namespace.includes('\u0000') || id.includes('\u0000')) return false
      return serial(async () => {
        const at = now()
        const done = await transaction<boolean>('delete a record', async query => {
          const result = await query(`DELETE FROM ${S}.records WHERE namespace = $1 AND id = $2 RETURNING expires_at`, [namespace, id])
          const row = result.rows[0] as { expires_at: string | null } | undefined
          if (row === undefined) return new NoChange(false)
          // an expired leftover does not exist: left for the pruner, nothing written or announced
          if (!isLive({ expiresAt: row.expires_at === null ? null : Number(row.expires_at) }, at)) return new NoChange(false)
          return { result: true, changes: [{ type: 'record', namespace, id, record: null }] }
        })
        if (done.revision !== null) announce(done.revision, done.changes)
        return done.result
      })
    },

    subscribe (listener) {
      return emitter.subscribe(listener)
    },

    async health (): Promise<BackendHealth> {
      if (closed) return { ok: false, detail: 'the postgres backend is closed' }
      try {
        await read('ping', 'SELECT 1')
      } catch (err) {
        return { ok: false, detail: errorMessage(err) }
      }
      return { ok: true }
    },

    async close () {
      if (closed) return
      await tail
      closed = true
      if (reconnectTimer !== null) clearTimeout(reconnectTimer)
      if (heartbeat !== null) clearInterval(heartbeat)
      if (pruneTimer !== null) {
        clearTimeout(pruneTimer)
        clearInterval(pruneTimer)
      }
      await connecting?.catch(() => {})
      const client = listener
      listener = null
      listening = false
      if (client !== null) {
        client.removeListener('notification', onNotification)
        client.on('error', () => {})
        try {
          client.release(new Error('closed'))
        } catch {}
      }
      if (owned) {
        await withTimeout(pool.end(), 'end the pool', connectTimeoutMs).catch(() => {})
        pool.off('error', onPoolError)
      }
      emitter.clear()
    }
  }
}
