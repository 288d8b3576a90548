import { randomUUID } from 'node:crypto'
import { watch, watchFile, unwatchFile, type FSWatcher, type Stats } from 'node:fs'
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { ROUTE_STATUSES, defaultGlobalMaintenance } from '../models.js'
import { WG_ERR_BACKEND_UNAVAILABLE, WG_ERR_OPTIONS_INVALID } from '../errors.js'
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
  recordJson,
  recordOf,
  type StoredRecord
} from './shared.js'
import type { AuditQuery, BackendHealth, BackendSnapshot, OutboxDelivery, Updater, WaygateBackend, WebhookOutbox } from './types.js'
import {
  addDeliveries,
  claimIn,
  completeIn,
  deleteDeadIn,
  emptyOutbox,
  failIn,
  isEmptyOutbox,
  listDeadIn,
  parseOutbox,
  retryDeadIn,
  type OutboxData
} from './outbox-state.js'

/** Options of {@link createFileBackend}. */
export interface FileBackendOptions {
  /** The JSON file holding routes, global maintenance and the audit trail. Created on first write. */
  path: string
  /** How many audit entries to keep; older ones are dropped. Default 1000. */
  maxAuditEntries?: number
  /** How often the file is polled for changes made by other processes, besides `fs.watch`. Default 1000 ms. */
  pollIntervalMs?: number
  /**
   * A lock older than this is considered abandoned and broken; a write that cannot take the lock
   * within this time fails with `WG_ERR_BACKEND_UNAVAILABLE`. Default 10000 ms.
   */
  lockTimeoutMs?: number
  /** The clock records expire by, epoch ms. Default `Date.now`. Locks always age by real time. */
  now?: () => number
}

/**
 * The file format, version 1. Audit entries are stored newest first. The file is always replaced
 * whole (write to a temporary file, fsync, rename), so readers never see a partial write.
 *
 * ```json
 * {
 *   "version": 1,
 *   "routes": { "GET:/users": { ...RouteState } },
 *   "global": null,
 *   "audit": [ ...AuditEntry ],
 *   "records": { "revoked-tokens": { "jti-1": { "value": { ... }, "expiresAt": 1767225600000 } } },
 *   "revision": 42,
 *   "epoch": "6f1c…"
 * }
 * ```
 *
 * `records` came later within version 1: a file without it holds no records, and every write
 * adds it. Expired records stay until the next write, which drops them.
 *
 * `revision` and `epoch` came later too: every write adds one to `revision` (a file without it
 * is at 0) and keeps `epoch`, which the first write that finds none creates. A file removed or
 * replaced by one with another epoch starts a new history.
 */
interface FileDocumentV1 {
  version: 1
  routes: Record<string, RouteState>
  global: GlobalMaintenance | null
  audit: AuditEntry[]
  records?: Record<string, Record<string, StoredRecord>>
  revision?: number
  epoch?: string
  /** Webhook deliveries not yet taken by their receiver, and the dead letters; absent when there are none. */
  outbox?: OutboxData
}

/** Records by namespace, then id. A namespace is never an empty map. */
type Records = Map<string, Map<string, StoredRecord>>

/** The document as held in memory. */
interface Store {
  routes: Map<string, RouteState>
  global: GlobalMaintenance | null
  audit: AuditEntry[]
  records: Records
  /** The write counter: how many writes made this content (within its epoch). */
  revision: number
  /** The history `revision` counts in; undefined until the first write of a revision-aware process. */
  epoch: string | undefined
  /** The webhook outbox; never modified in place (copied, then written). */
  outbox: OutboxData
}

/** What the lock file holds: who took it, and when. */
interface LockInfo {
  pid: number
  host: string
  token: string
  createdAt: string
}

const FORMAT_VERSION = 1
const DEFAULT_POLL_INTERVAL_MS = 1000
const DEFAULT_LOCK_TIMEOUT_MS = 10_000
/** Watch events arrive in bursts (temp file, rename); one read answers a whole burst. */
const REFRESH_DEBOUNCE_MS = 15
const MAX_LOCK_BACKOFF_MS = 50

/** Tokens of the locks this process holds right now, to tell our live locks from a dead predecessor's with the same pid. */
const heldLockTokens = new Set<string>()

function emptyStore (): Store {
  return { routes: new Map(), global: null, audit: [], records: new Map(), revision: 0, epoch: undefined, outbox: emptyOutbox() }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function errorCode (err: unknown): string | undefined {
  return isRecord(err) && typeof err.code === 'string' ? err.code : undefined
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    return errorCode(err) !== 'ESRCH'
  }
}

function serialize (store: Store): string {
  const doc: FileDocumentV1 = {
    version: FORMAT_VERSION,
    routes: Object.fromEntries(store.routes),
    global: store.global,
    audit: store.audit,
    records: Object.fromEntries([...store.records].map(([namespace, held]) => [namespace, Object.fromEntries(held)])),
    revision: store.revision
  }
  if (store.epoch !== undefined) doc.epoch = store.epoch
  if (!isEmptyOutbox(store.outbox)) doc.outbox = store.outbox
  return JSON.stringify(doc, null, 2) + '\n'
}

/** Parses the file's text; throws a plain message describing what is wrong. */
function parseDocument (raw: string): Store {
  // an empty file holds nothing that could be lost: treat it like a missing one
  if (raw.trim() === '') return emptyStore()
  const data: unknown = JSON.parse(raw)
  if (!isRecord(data)) throw new TypeError('the top level is not a JSON object')
  if (data.version !== FORMAT_VERSION) {
    throw new TypeError(`unsupported format version ${JSON.stringify(data.version) ?? 'undefined'} (expected ${FORMAT_VERSION})`)
  }
  const store = emptyStore()
  const routes = data.routes ?? {}
  if (!isRecord(routes)) throw new TypeError('"routes" is not an object')
  for (const [key, state] of Object.entries(routes)) {
    if (!isRecord(state) || state.key !== key || !ROUTE_STATUSES.includes(state.status as never)) {
      throw new TypeError(`routes[${JSON.stringify(key)}] is not a route state for that key`)
    }
    store.routes.set(key, state as unknown as RouteState)
  }
  const global = data.global ?? null
  if (global !== null && (!isRecord(global) || typeof global.enabled !== 'boolean' || !Array.isArray(global.exemptPaths))) {
    throw new TypeError('"global" is not a global maintenance record')
  }
  store.global = global as GlobalMaintenance | null
  const audit = data.audit ?? []
  if (!Array.isArray(audit)) throw new TypeError('"audit" is not an array')
  for (const [i, entry] of audit.entries()) {
    if (!isRecord(entry) || typeof entry.id !== 'string' || typeof entry.timestamp !== 'string') {
      throw new TypeError(`audit[${i}] is not an audit entry`)
    }
  }
  store.audit = audit as AuditEntry[]
  const records = data.records ?? {}
  if (!isRecord(records)) throw new TypeError('"records" is not an object')
  for (const [namespace, entries] of Object.entries(records)) {
    if (!isRecord(entries)) throw new TypeError(`records[${JSON.stringify(namespace)}] is not an object`)
    const held = new Map<string, StoredRecord>()
    for (const [id, record] of Object.entries(entries)) {
      // a hand-written record may leave out expiresAt: it then never expires
      const expiresAt = isRecord(record) ? record.expiresAt ?? null : undefined
      if (!isRecord(record) || !('value' in record) || !(expiresAt === null || (typeof expiresAt === 'number' && Number.isFinite(expiresAt)))) {
        throw new TypeError(`records[${JSON.stringify(namespace)}][${JSON.stringify(id)}] is not a record ({ value, expiresAt })`)
      }
      held.set(id, { value: record.value, expiresAt })
    }
    if (held.size > 0) store.records.set(namespace, held)
  }
  const revision = data.revision ?? 0
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) throw new TypeError('"revision" is not a non-negative integer')
  store.revision = revision
  const epoch = data.epoch
  if (epoch !== undefined && (typeof epoch !== 'string' || epoch === '')) throw new TypeError('"epoch" is not a non-empty string')
  store.epoch = epoch
  store.outbox = parseOutbox(data.outbox)
  return store
}

/** The records of a namespace that are there at `now`. */
function liveRecords (store: Store, namespace: string, now: number): Map<string, StoredRecord> {
  const live = new Map<string, StoredRecord>()
  for (const [id, record] of store.records.get(namespace) ?? []) {
    if (isLive(record, now)) live.set(id, record)
  }
  return live
}

/** `records` without the expired ones; the same map when none expired. */
function sweepRecords (records: Records, now: number): Records {
  let swept: Records | undefined
  for (const [namespace, held] of records) {
    const live = [...held].filter(([, record]) => isLive(record, now))
    if (live.length === held.size) continue
    swept ??= new Map(records)
    if (live.length === 0) swept.delete(namespace)
    else swept.set(namespace, new Map(live))
  }
  return swept ?? records
}

/** `records` with one record set, or removed when `record` is undefined; `records` itself is left as it is. */
function withRecord (records: Records, namespace: string, id: string, record: StoredRecord | undefined): Records {
  const next = new Map(records)
  const held = new Map(records.get(namespace))
  if (record === undefined) held.delete(id)
  else held.set(id, record)
  if (held.size === 0) next.delete(namespace)
  else next.set(namespace, held)
  return next
}

function sameJson (a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * Keeps routes, global maintenance, the audit trail and records in one JSON file (format
 * version 1: `{ version, routes, global, audit, records, revision, epoch }`). Fits one host:
 * several processes may share the file. Every write is a read-modify-write under an exclusive lock file
 * (`<path>.lock`) and replaces the file atomically, so no update is lost; changes written by
 * other processes are picked up by watching the file (plus polling) and announced through
 * `subscribe`. A file that cannot be parsed is reported as `WG_ERR_BACKEND_UNAVAILABLE` and
 * never overwritten.
 */
export function createFileBackend (options: FileBackendOptions): WaygateBackend {
  let maxAudit: number
  let pollIntervalMs: number
  let lockTimeoutMs: number
  let now: () => number
  if (!isRecord(options) || typeof options.path !== 'string' || options.path.trim() === '') {
    throw new WG_ERR_OPTIONS_INVALID('path must be a non-empty string')
  }
  try {
    maxAudit = positiveInteger(options.maxAuditEntries, 'maxAuditEntries', DEFAULT_MAX_AUDIT_ENTRIES)
    pollIntervalMs = positiveInteger(options.pollIntervalMs, 'pollIntervalMs', DEFAULT_POLL_INTERVAL_MS)
    lockTimeoutMs = positiveInteger(options.lockTimeoutMs, 'lockTimeoutMs', DEFAULT_LOCK_TIMEOUT_MS)
    now = clockOption(options.now)
  } catch (err) {
    throw new WG_ERR_OPTIONS_INVALID((err as Error).message)
  }

  const path = resolve(options.path)
  const dir = dirname(path)
  const base = basename(path)
  const lockPath = `${path}.lock`
  const host = hostname()
  const emitter = new ChangeEmitter()

  // what this instance last read or wrote: the base every diff is computed against
  let known: Store = emptyStore()
  let knownRaw: string | undefined
  let tail: Promise<unknown> = Promise.resolve()
  let closed = false
  let polling = false
  let dirWatcher: FSWatcher | null = null
  let refreshTimer: NodeJS.Timeout | null = null

  /** Runs tasks of this instance one at a time, so reads and diffs never go back in time. */
  function serial<T> (task: () => Promise<T>): Promise<T> {
    const run = tail.then(task, task)
    tail = run.catch(() => {})
    return run
  }

  async function readStore (): Promise<{ raw: string, store: Store }> {
    let raw: string
    try {
      raw = await readFile(path, 'utf8')
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return { raw: '', store: emptyStore() }
      throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot read ${path}`, { cause: err })
    }
    try {
      return { raw, store: parseDocument(raw) }
    } catch (err) {
      throw new WG_ERR_BACKEND_UNAVAILABLE(
        `${path} is corrupt (${(err as Error).message}); fix or remove it, waygate will not overwrite it`, { cause: err })
    }
  }

  /**
   * Announces what differs between two contents of the file, records as they stand at `at`.
   * Changes carry the revision of `after`: several writes read at once are announced as of the
   * last, which is what `after` holds. Content that changed without a new revision (edited by
   * hand) is announced without one, so an engine applies it as it comes. A new history (another
   * epoch, the file removed, or a counter that went back) is announced as a reload: its revisions
   * start again. The first epoch of a file is announced with its changes, then as a reload, so
   * engines learn it.
   */
  function emitDiff (before: Store, after: Store, at: number): void {
    if ((before.epoch !== undefined && after.epoch !== before.epoch) || after.revision < before.revision) {
      emitter.emit({ type: 'resync' })
      return
    }
    const firstEpoch = before.epoch === undefined && after.epoch !== undefined
    const revision = after.revision > before.revision ? { revision: after.revision } : {}
    for (const [key, state] of after.routes) {
      const previous = before.routes.get(key)
      if (previous === undefined || !sameJson(previous, state)) emitter.emit({ type: 'route', state: structuredClone(state), ...revision })
    }
    for (const key of before.routes.keys()) {
      if (!after.routes.has(key)) emitter.emit({ type: 'route_deleted', key, ...revision })
    }
    if (!sameJson(before.global, after.global)) {
      emitter.emit({ type: 'global', global: structuredClone(after.global ?? defaultGlobalMaintenance()), ...revision })
    }
    for (const namespace of new Set([...before.records.keys(), ...after.records.keys()])) {
      // compared as they stand now, so a record that expired and was swept is no deletion
      const was = liveRecords(before, namespace, at)
      const is = liveRecords(after, namespace, at)
      for (const [id, record] of is) {
        const previous = was.get(id)
        if (previous === undefined || !sameJson(previous, record)) {
          emitter.emit({ type: 'record', namespace, id, record: recordOf(id, record), ...revision })
        }
      }
      for (const id of was.keys()) {
        if (!is.has(id)) emitter.emit({ type: 'record', namespace, id, record: null, ...revision })
      }
    }
    const seen = new Set(before.audit.map(e => e.id))
    const added = after.audit.filter(e => !seen.has(e.id))
    for (let i = added.length - 1; i >= 0; i--) emitter.emit({ type: 'audit', entry: structuredClone(added[i]!) })
    if (firstEpoch) emitter.emit({ type: 'resync' })
  }

  /** Makes freshly read or written content the known one, announcing the difference. */
  function absorb (raw: string, store: Store): Store {
    // the first read only sets the baseline: what was there before this instance is not a change
    if (knownRaw !== undefined && raw !== knownRaw) emitDiff(known, store, now())
    known = store
    knownRaw = raw
    return store
  }

  async function refresh (): Promise<Store> {
    const { raw, store } = await readStore()
    return absorb(raw, store)
  }

  // ---- the lock file ----

  async function readLock (): Promise<string | null> {
    try {
      return await readFile(lockPath, 'utf8')
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return null
      throw err
    }
  }

  async function isStale (raw: string): Promise<boolean> {
    let info: Partial<LockInfo> = {}
    try {
      const parsed: unknown = JSON.parse(raw)
      if (isRecord(parsed)) info = parsed as Partial<LockInfo>
    } catch {
      // still being written, or garbage: only its age can tell
    }
    if (typeof info.pid === 'number' && info.host === host) {
      if (info.pid === process.pid) {
        if (typeof info.token === 'string' && !heldLockTokens.has(info.token)) return true
      } else if (!isProcessAlive(info.pid)) {
        return true
      }
    }
    let createdAt = typeof info.createdAt === 'string' ? Date.parse(info.createdAt) : Number.NaN
    if (Number.isNaN(createdAt)) {
      try {
        createdAt = (await stat(lockPath)).mtimeMs
      } catch {
        return true
      }
    }
    return Date.now() - createdAt > lockTimeoutMs
  }

  /** Removes an abandoned lock; `seen` is its content, so a fresh lock taken meanwhile is left alone. */
  async function breakLock (seen: string): Promise<void> {
    // renaming is atomic: of several processes breaking the same lock, one gets it
    const grave = `${lockPath}.${randomUUID()}.stale`
    try {
      await rename(lockPath, grave)
    } catch {
      return
    }
    const taken = await readFile(grave, 'utf8').catch(() => '')
    if (taken !== seen) {
      // a live lock replaced the stale one between our read and our rename: give it back
      await link(grave, lockPath).catch(() => {})
    }
    await unlink(grave).catch(() => {})
  }

  async function acquireLock (): Promise<string> {
    const deadline = Date.now() + lockTimeoutMs
    let backoff = 2
    let holder = ''
    for (;;) {
      const info: LockInfo = { pid: process.pid, host, token: randomUUID(), createdAt: new Date().toISOString() }
      const content = JSON.stringify(info)
      let created = false
      // registered before the lock exists, so another instance of this process never takes it for a dead one's
      heldLockTokens.add(info.token)
      try {
        const handle = await open(lockPath, 'wx')
        created = true
        try {
          await handle.writeFile(content)
        } finally {
          await handle.close()
        }
        return content
      } catch (err) {
        heldLockTokens.delete(info.token)
        const code = errorCode(err)
        if (created) {
          await unlink(lockPath).catch(() => {})
          throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot write lock file ${lockPath}`, { cause: err })
        }
        if (code === 'ENOENT') {
          try {
            await mkdir(dir, { recursive: true })
          } catch (mkdirErr) {
            throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot create directory ${dir}`, { cause: mkdirErr })
          }
          continue
        }
        if (code !== 'EEXIST') throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot create lock file ${lockPath}`, { cause: err })
      }
      let current: string | null | undefined
      try {
        current = await readLock()
      } catch {
        // unreadable (a directory, no permission): wait for it like for a live lock, then fail
        current = undefined
      }
      if (current === null) continue
      if (current !== undefined) {
        holder = current
        if (await isStale(current)) {
          await breakLock(current)
          continue
        }
      }
      if (Date.now() >= deadline) {
        throw new WG_ERR_BACKEND_UNAVAILABLE(`could not lock ${path} within ${lockTimeoutMs} ms; held by ${holder || 'an unknown writer'}`)
      }
      await sleep(backoff + Math.random() * backoff)
      backoff = Math.min(backoff * 2, MAX_LOCK_BACKOFF_MS)
    }
  }

  async function ownsLock (content: string): Promise<boolean> {
    return (await readLock().catch(() => null)) === content
  }

  async function releaseLock (content: string): Promise<void> {
    try {
      if (await ownsLock(content)) await unlink(lockPath)
    } catch {
      // already gone or taken over: nothing of ours to remove
    }
    heldLockTokens.delete((JSON.parse(content) as LockInfo).token)
  }

  // ---- writing ----

  /** Replaces the file atomically; resolves false (nothing written) when the lock was lost. */
  async function writeAtomic (raw: string, lock: string): Promise<boolean> {
    const temp = join(dir, `.${base}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`)
    try {
      // the rename replaces the file: keep the permissions an operator gave it
      const mode = await stat(path).then(s => s.mode & 0o777, () => 0o666)
      const handle = await open(temp, 'wx', mode)
      try {
        await handle.writeFile(raw)
        await handle.sync()
      } finally {
        await handle.close()
      }
      if (!await ownsLock(lock)) {
        await unlink(temp)
        return false
      }
      await rename(temp, path)
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot write ${path}`, { cause: err })
    }
    await syncDirectory()
    return true
  }

  async function syncDirectory (): Promise<void> {
    // makes the rename itself durable; not supported everywhere (Windows), hence best effort
    try {
      const handle = await open(dir, 'r')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    } catch {}
  }

  /**
   * Read-modify-write under the lock. `change` gets the current content and the time records are
   * judged by, and returns the new content (or undefined to write nothing) plus the value to
   * resolve; it must not modify its argument. Every write drops the records expired by then.
   */
  function mutate<T> (change: (store: Store, at: number) => { next?: Store, result: T }): Promise<T> {
    return serial(async () => {
      for (let attempt = 1; ; attempt++) {
        const lock = await acquireLock()
        let outcome: { next?: Store, result: T }
        let raw: string
        let at: number
        try {
          const current = await refresh()
          at = now()
          outcome = change(current, at)
          if (outcome.next === undefined) return outcome.result
          // the counter moves under the lock, so processes sharing the file never reuse a revision
          outcome.next = {
            ...outcome.next,
            records: sweepRecords(outcome.next.records, at),
            revision: current.revision + 1,
            epoch: current.epoch ?? randomUUID()
          }
          raw = serialize(outcome.next)
          if (!await writeAtomic(raw, lock)) {
            // our lock was broken as stale (we were paused too long): redo the whole update
            if (attempt < 3) continue
            throw new WG_ERR_BACKEND_UNAVAILABLE(`lost the lock on ${path} while writing`)
          }
        } finally {
          await releaseLock(lock)
        }
        watchDirectory()
        const before = known
        known = outcome.next
        knownRaw = raw
        // announced now rather than when the watcher fires: the engine reads its snapshot right after a write
        emitDiff(before, outcome.next, at)
        return outcome.result
      }
    })
  }

  /** The outbox with the deliveries of a change added, when its audit entry is new; the same object when nothing is added. */
  function withDeliveries (store: Store, entry: AuditEntry | undefined, deliveries: OutboxDelivery[] | undefined): OutboxData {
    if (entry === undefined || deliveries === undefined || deliveries.length === 0) return store.outbox
    if (store.audit.some(e => e.id === entry.id)) return store.outbox
    const outbox = structuredClone(store.outbox)
    addDeliveries(outbox, deliveries, Date.now())
    return outbox
  }

  /** Read-modify-write of the outbox alone; `change` edits a copy and says whether to write it. */
  function mutateOutbox<T> (change: (outbox: OutboxData) => { write: boolean, result: T }): Promise<T> {
    return mutate(store => {
      const outbox = structuredClone(store.outbox)
      const { write, result } = change(outbox)
      return write ? { next: { ...store, outbox }, result } : { result }
    })
  }

  // the outbox lives in the same file as the state, so a change and its deliveries are one atomic write
  const outbox: WebhookOutbox = {
    async claim (claimOptions) {
      // most looks find nothing due: answer those from a read, without taking the lock
      const seen = (await serial(refresh)).outbox
      const known = new Set(claimOptions.webhooks)
      let nextDueAt: number | null = null
      let due = false
      for (const item of Object.values(seen.pending)) {
        if (nextDueAt === null || item.due < nextDueAt) nextDueAt = item.due
        if (item.due <= claimOptions.now && known.has(item.delivery.webhook)) due = true
      }
      if (!due) return { claims: [], nextDueAt }
      return mutateOutbox(data => {
        const { claims, nextDueAt, changed } = claimIn(data, claimOptions)
        return { write: changed, result: { claims, nextDueAt } }
      })
    },
    complete (claim) {
      return mutateOutbox(data => {
        const done = completeIn(data, claim)
        return { write: done, result: done }
      })
    },
    fail (claim, retryAt, lastError, at) {
      return mutateOutbox(data => {
        const done = failIn(data, claim, retryAt, lastError, at)
        return { write: done, result: done }
      })
    },
    async listDead () {
      return listDeadIn((await serial(refresh)).outbox)
    },
    retryDead (id, at) {
      return mutateOutbox(data => {
        const done = retryDeadIn(data, id, at)
        return { write: done, result: done }
      })
    },
    deleteDead (id) {
      return mutateOutbox(data => {
        const done = deleteDeadIn(data, id)
        return { write: done, result: done }
      })
    },
    async pendingCount () {
      return Object.keys((await serial(refresh)).outbox.pending).length
    }
  }

  function withAudit (audit: AuditEntry[], entry: AuditEntry | undefined): AuditEntry[] {
    if (entry === undefined) return audit
    return [structuredClone(entry), ...audit].slice(0, maxAudit)
  }

  // ---- following other processes ----

  function scheduleRefresh (): void {
    if (closed || refreshTimer !== null) return
    refreshTimer = setTimeout(() => {
      refreshTimer = null
      if (closed) return
      serial(refresh).catch(() => {
        // a corrupt or unreadable file: health() says so, and the next change is tried again
      })
    }, REFRESH_DEBOUNCE_MS)
    refreshTimer.unref()
  }

  function onPoll (currentStats: Stats, previousStats: Stats): void {
    if (currentStats.mtimeMs !== previousStats.mtimeMs || currentStats.ino !== previousStats.ino || currentStats.size !== previousStats.size) {
      scheduleRefresh()
    }
    watchDirectory()
  }

  function watchDirectory (): void {
    if (closed || !polling || dirWatcher !== null) return
    try {
      // the directory, not the file: the file is replaced by a rename at every write
      const watcher = watch(dir, { persistent: false }, (_event, filename) => {
        if (filename === null || filename === base) scheduleRefresh()
      })
      watcher.on('error', () => {
        watcher.close()
        if (dirWatcher === watcher) dirWatcher = null
      })
      dirWatcher = watcher
    } catch {
      // no directory yet: polling notices the file, and the first write starts the watcher
    }
  }

  function startWatching (): void {
    if (closed || polling) return
    polling = true
    watchFile(path, { persistent: false, interval: pollIntervalMs }, onPoll)
    watchDirectory()
    // the content now is the base for what subscribers are told, not whatever the first event finds
    if (knownRaw === undefined) serial(refresh).catch(() => {})
  }

  return {
    kind: 'file',
    outbox,
    async init () {
      startWatching()
      await serial(refresh)
    },
    async load (): Promise<BackendSnapshot> {
      const store = await serial(refresh)
      return {
        routes: [...store.routes.values()].map(s => structuredClone(s)),
        global: store.global === null ? null : structuredClone(store.global),
        revision: store.revision,
        ...(store.epoch === undefined ? {} : { epoch: store.epoch })
      }
    },
    async getRoute (key) {
      const store = await serial(refresh)
      const state = store.routes.get(key)
      return state === undefined ? null : structuredClone(state)
    },
    updateRoute (key, updater: Updater<RouteState, RouteState | null>) {
      return mutate(store => {
        const current = store.routes.get(key) ?? null
        const update = updater(current === null ? null : structuredClone(current))
        if (update === undefined) return { result: current === null ? null : structuredClone(current) }
        const next = structuredClone(update.next)
        const routes = new Map(store.routes)
        routes.set(key, next)
        return {
          next: { ...store, routes, audit: withAudit(store.audit, update.audit), outbox: withDeliveries(store, update.audit, update.deliveries) },
          result: structuredClone(next)
        }
      })
    },
    registerRoutes (states) {
      return mutate(store => {
        const added: string[] = []
        const routes = new Map(store.routes)
        for (const state of states) {
          if (routes.has(state.key)) continue
          routes.set(state.key, structuredClone(state))
          added.push(state.key)
        }
        if (added.length === 0) return { result: added }
        return { next: { ...store, routes }, result: added }
      })
    },
    deleteRoute (key) {
      return mutate(store => {
        if (!store.routes.has(key)) return { result: false }
        const routes = new Map(store.routes)
        routes.delete(key)
        return { next: { ...store, routes }, result: true }
      })
    },
    updateGlobal (updater: Updater<GlobalMaintenance, GlobalMaintenance>) {
      return mutate(store => {
        const current = store.global ?? defaultGlobalMaintenance()
        const update = updater(structuredClone(current))
        if (update === undefined) return { result: structuredClone(current) }
        const next = structuredClone(update.next)
        return {
          next: { ...store, global: next, audit: withAudit(store.audit, update.audit), outbox: withDeliveries(store, update.audit, update.deliveries) },
          result: structuredClone(next)
        }
      })
    },
    appendAudit (entry, deliveries) {
      return mutate(store => {
        if (store.audit.some(e => e.id === entry.id)) return { result: false }
        return { next: { ...store, audit: withAudit(store.audit, entry), outbox: withDeliveries(store, entry, deliveries) }, result: true }
      })
    },
    async listAudit (query?: AuditQuery) {
      const store = await serial(refresh)
      return filterAudit(store.audit, query).map(e => structuredClone(e))
    },
    async putRecord (namespace, id, value, options) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const json = recordJson(value)
      const expiresAt = recordExpiry(options)
      return mutate((store, at) => {
        const current = store.records.get(namespace)?.get(id)
        const next: StoredRecord = { value: JSON.parse(json), expiresAt }
        if (!isLive(next, at)) {
          // already expired: storing it is removing what the id held
          if (current === undefined) return { result: undefined }
          return { next: { ...store, records: withRecord(store.records, namespace, id, undefined) }, result: undefined }
        }
        if (current !== undefined && isLive(current, at) && sameJson(current, next)) return { result: undefined }
        return { next: { ...store, records: withRecord(store.records, namespace, id, next) }, result: undefined }
      })
    },
    async getRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const store = await serial(refresh)
      const record = store.records.get(namespace)?.get(id)
      return record === undefined || !isLive(record, now()) ? null : recordOf(id, record)
    },
    async listRecords (namespace) {
      checkRecordKey(namespace, 'namespace')
      const store = await serial(refresh)
      return [...liveRecords(store, namespace, now())].map(([id, record]) => recordOf(id, record)).sort(compareIds)
    },
    async deleteRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      return mutate((store, at) => {
        const current = store.records.get(namespace)?.get(id)
        // an expired record is already gone; the next write sweeps it
        if (current === undefined || !isLive(current, at)) return { result: false }
        return { next: { ...store, records: withRecord(store.records, namespace, id, undefined) }, result: true }
      })
    },
    subscribe (listener) {
      startWatching()
      return emitter.subscribe(listener)
    },
    async health (): Promise<BackendHealth> {
      try {
        await serial(refresh)
        return { ok: true }
      } catch (err) {
        return { ok: false, detail: (err as Error).message }
      }
    },
    async close () {
      closed = true
      if (refreshTimer !== null) clearTimeout(refreshTimer)
      refreshTimer = null
      if (polling) unwatchFile(path, onPoll)
      dirWatcher?.close()
      dirWatcher = null
      // let writes already queued finish, so close() means the file is settled
      await tail
      emitter.clear()
    }
  }
}
