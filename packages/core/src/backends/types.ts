import type { AuditAction, AuditEntry, GlobalMaintenance, RouteState } from '../models.js'

/** The result of an update function: the new state and the audit entry that records it. */
export interface Update<T> {
  next: T
  audit?: AuditEntry
  /** Webhook deliveries of the change: a backend with an `outbox` stores them with it, atomically, when `audit` is stored. */
  deliveries?: OutboxDelivery[]
}

/**
 * Computes a new value from the current one inside the backend's atomic section. Return
 * `undefined` to leave the value as it is. It may run more than once (optimistic retries), so it
 * must not have side effects; throwing aborts the update and rejects with the thrown error.
 */
export type Updater<T, C> = (current: C) => Update<T> | undefined

/** Filters for reading the audit trail. Entries come newest first. */
export interface AuditQuery {
  key?: string
  service?: string
  action?: AuditAction
  actor?: string
  /** ISO timestamp: only entries at or after it. */
  since?: string
  /** ISO timestamp: only entries before it. */
  until?: string
  /** Only entries older than the entry with this id (cursor pagination). */
  before?: string
  /** At most this many entries (default 100). */
  limit?: number
}

/**
 * A stored record of a namespace: data kept beside route state (token revocations, policies…)
 * that every instance shares and that survives restarts.
 */
export interface BackendRecord {
  /** Unique within its namespace. */
  id: string
  /** The stored value, as a JSON round trip gives it back. */
  value: unknown
  /** Epoch ms from which the record is gone, or null when it never expires. */
  expiresAt: number | null
}

/** A change a backend announces, made by this process or another one. */
export type BackendChange =
  | { type: 'route', state: RouteState, revision?: number }
  | { type: 'route_deleted', key: string, revision?: number }
  | { type: 'global', global: GlobalMaintenance, revision?: number }
  | { type: 'audit', entry: AuditEntry }
  /**
   * A record was stored, replaced or removed (`record: null`). A record that merely expires is
   * not announced: whoever holds it can tell from its `expiresAt`.
   */
  | { type: 'record', namespace: string, id: string, record: BackendRecord | null, revision?: number }
  /** Anything may have changed (a reconnect, a file replaced): reload everything. */
  | { type: 'resync' }

/** Everything a backend holds about routes, loaded at start and on resync. */
export interface BackendSnapshot {
  routes: RouteState[]
  global: GlobalMaintenance | null
  /** The backend revision the snapshot was read at, when the backend counts revisions. */
  revision?: number
  /** Identifies the backend's history: a different epoch means revisions restarted. */
  epoch?: string
}

/** How a backend that mirrors a remote source is keeping up with it (the service SDK's remote backend). */
export interface SyncStatus {
  /** `connecting` before the first answer, `connected` while the stream is open, `reconnecting` between attempts, `unauthorized` when the server refuses the credentials, `offline` after the first attempt failed. */
  state: 'connecting' | 'connected' | 'reconnecting' | 'unauthorized' | 'offline'
  /** Where the state being enforced came from: the server, the cache file, or the routes' declared states. */
  source: 'server' | 'cache' | 'declared'
  /** The revision of the held state, or null when nothing came from the server (or its cache). */
  revision: number | null
  /** The server's history the revision belongs to, or null. */
  epoch: string | null
  /** When the held state was last known to be in sync with the server (ISO), or null. */
  lastSync: string | null
  /** Seconds since `lastSync` while not connected; 0 while connected; null before any sync. */
  staleSeconds: number | null
  /** Connection attempts made after the first one. */
  reconnects: number
  serverUrl: string
  service: string
}

/** Health as the backend sees it. */
export interface BackendHealth {
  ok: boolean
  detail?: string
}

/**
 * Storage behind the engine. The engine never calls a backend on the request path: it reads
 * everything once, keeps a snapshot and follows `subscribe`. Each update runs its updater and
 * writes the new value with its audit entry atomically, so two writers never lose an update.
 * Beside routes it keeps records, keyed by namespace and id, for features that need shared,
 * durable data (revoked tokens, policies); those are read on demand, not part of the snapshot.
 */
export interface WaygateBackend {
  /** Short name shown in status output: `memory`, `file`, `redis`… */
  readonly kind: string
  /** Connects or opens storage. Called once by the engine before anything else. */
  init?(): Promise<void>
  /** Reads every route state and the global maintenance record. */
  load(): Promise<BackendSnapshot>
  /** Reads one route state. */
  getRoute(key: string): Promise<RouteState | null>
  /**
   * Atomically updates one route state and appends its audit entry. Resolves the stored value.
   * The updater's `next.key` is always `key` (the engine guarantees it).
   */
  updateRoute(key: string, updater: Updater<RouteState, RouteState | null>): Promise<RouteState | null>
  /** Writes the states whose keys are not stored yet; never overwrites. Resolves the keys it added. */
  registerRoutes(states: RouteState[]): Promise<string[]>
  /** Removes a route state. Resolves whether it existed. */
  deleteRoute(key: string): Promise<boolean>
  /** Atomically updates global maintenance and appends its audit entry. */
  updateGlobal(updater: Updater<GlobalMaintenance, GlobalMaintenance>): Promise<GlobalMaintenance>
  /**
   * Appends an audit entry on its own. Resolves false when an entry with the same id exists. A
   * backend with an `outbox` stores `deliveries` with the entry, atomically, only when it stores the entry.
   */
  appendAudit(entry: AuditEntry, deliveries?: OutboxDelivery[]): Promise<boolean>
  /** Reads audit entries, newest first. */
  listAudit(query?: AuditQuery): Promise<AuditEntry[]>
  /**
   * Stores a record, replacing the one with the same id. `value` must be plain JSON data (no
   * functions, `undefined`, BigInt, non-finite numbers or class instances such as `Date`), else
   * the call rejects with `WG_ERR_INPUT_INVALID`; so do a namespace or id that is not a string of
   * 1 to 200 characters and an `expiresAt` (epoch ms) that is not a finite number. From
   * `expiresAt` on, by the backend's clock, the record is gone: an `expiresAt` already past
   * stores nothing and removes the record with the same id.
   */
  putRecord(namespace: string, id: string, value: unknown, options?: { expiresAt?: number }): Promise<void>
  /** Reads one record; null when it is absent or expired. */
  getRecord(namespace: string, id: string): Promise<BackendRecord | null>
  /** Reads the unexpired records of a namespace, sorted by id (code unit order, as `sort()` sorts strings). */
  listRecords(namespace: string): Promise<BackendRecord[]>
  /** Removes a record. Resolves whether an unexpired one existed. */
  deleteRecord(namespace: string, id: string): Promise<boolean>
  /**
   * Follows changes, including this process's own, which must be delivered before the write that
   * made them resolves (the engine reads its snapshot right after awaiting a write). Returns the
   * unsubscribe function.
   */
  subscribe(listener: (change: BackendChange) => void): () => void
  /** Reports whether storage answers. */
  health(): Promise<BackendHealth>
  /** Releases timers, watchers and connections the backend owns. */
  close(): Promise<void>
  /** How a backend that mirrors a remote source keeps up with it; absent on storage backends. */
  syncStatus?(): SyncStatus
  /** The durable webhook outbox; absent: webhooks are delivered from process memory (lost in a crash). */
  readonly outbox?: WebhookOutbox
}

/**
 * One webhook delivery waiting in a backend's outbox: written with the change it reports, in the
 * same atomic step, and removed once the receiver took it.
 */
export interface OutboxDelivery {
  /** Unique per change and webhook, the same on every attempt (a hash of both). */
  id: string
  /** The change's id (its audit entry's): what the `X-Waygate-Delivery` header carries. */
  eventId: string
  /** The event name (`disable`, `window_start`…). */
  event: string
  /** The route key, or `*` for global maintenance. */
  key: string
  /** Which webhook: the dispatcher's id of it (a hash of its URL), never the URL itself. */
  webhook: string
  /** The webhook's URL as logs show it: origin and a hint of the path. */
  target: string
  /** The JSON body, as formatted when the change was made. */
  body: string
  /** When the change was made, epoch ms. */
  createdAt: number
}

/** A delivery one caller of `claim` may send until its lease ends. */
export interface OutboxClaim {
  delivery: OutboxDelivery
  /** Attempts so far, this one included. */
  attempts: number
  /** Proves the claim: `complete` and `fail` do nothing once another caller holds the delivery. */
  token: string
}

/** A delivery given up on: kept until an operator retries or deletes it. */
export interface DeadLetter {
  delivery: OutboxDelivery
  attempts: number
  /** The last status or error, e.g. `answered 500` or `connect ECONNREFUSED`. */
  lastError: string
  /** When it was given up on, epoch ms. */
  failedAt: number
}

/** What `claim` hands out, and when the next pending delivery (of any webhook) is due. */
export interface OutboxBatch {
  claims: OutboxClaim[]
  /** Epoch ms of the earliest due time or lease end still pending, or null when nothing is pending. */
  nextDueAt: number | null
}

/**
 * The durable webhook outbox of a backend (optional: without it the engine delivers from process
 * memory, as before). A backend that has one writes the `deliveries` of an update (and the second
 * argument of `appendAudit`) in the same atomic step as the change, and only when its audit entry
 * is stored. Times are given by the caller (epoch ms), never read from the backend's clock.
 */
export interface WebhookOutbox {
  /**
   * Takes up to `limit` deliveries due at `now` whose webhook is one of `webhooks`: each is held
   * until `leaseUntil` (then it is due again, for whoever claims next) and its attempts go up by one.
   */
  claim(options: { webhooks: readonly string[], now: number, leaseUntil: number, limit: number }): Promise<OutboxBatch>
  /** Removes a delivery the receiver took. Resolves false when the claim was lost (the lease ran out). */
  complete(claim: OutboxClaim): Promise<boolean>
  /** Due again at `retryAt`, or (`retryAt` null) moved to the dead letters with `lastError`. Resolves false when the claim was lost. */
  fail(claim: OutboxClaim, retryAt: number | null, lastError: string, now: number): Promise<boolean>
  /** The dead letters, newest first. */
  listDead(): Promise<DeadLetter[]>
  /** Moves a dead letter back to the pending deliveries, due at `now` with no attempts. Resolves false when there is none with that id. */
  retryDead(id: string, now: number): Promise<boolean>
  /** Removes a dead letter. Resolves whether it existed. */
  deleteDead(id: string): Promise<boolean>
  /** How many deliveries are pending (claimed ones included). */
  pendingCount(): Promise<number>
}
