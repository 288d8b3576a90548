/**
 * A complete custom `WaygateBackend`: SQLite through sql.js (SQLite compiled to WebAssembly, so
 * nothing native to build), persisted to one file.
 *
 * What a backend has to get right, and how this one does it:
 *
 * - Atomic updates. The engine hands `updateRoute` / `updateGlobal` an updater; the read, the
 *   updater and the write (with its audit entry) must behave as one step. sql.js is an in-process
 *   copy of the database, so one queue per backend runs every operation one after the other, and
 *   each write is a SQL transaction: an updater that throws rolls everything back.
 * - Durability. After each committed write the whole database is exported and written to a
 *   temporary file that is then renamed over the real one, so a crash never leaves half a file.
 *   If that write fails, the in-memory copy is dropped and reopened from the file on the next
 *   call: a failed write changes nothing.
 * - A bounded audit log: at most `maxAuditEntries` rows, the oldest dropped first.
 * - Records (`putRecord`…): namespaced JSON values with an optional expiry, checked against the
 *   backend's clock on every read; expired rows are purged on the next write.
 * - A change feed: `subscribe` listeners hear about every change, before the write resolves, so
 *   the engine's snapshot is current as soon as a mutation returns.
 *
 * One process per file: two processes opening the same file would each overwrite the other's
 * writes. For several processes use the file backend (`createFileBackend`) or Redis.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import initSqlJs, { type BindParams, type Database, type SqlJsStatic, type SqlValue } from 'sql.js'
import {
  DEFAULT_MAX_AUDIT_ENTRIES,
  WG_ERR_BACKEND_UNAVAILABLE,
  WG_ERR_INPUT_INVALID,
  WG_ERR_OPTIONS_INVALID,
  defaultGlobalMaintenance,
  type AuditEntry,
  type AuditQuery,
  type BackendChange,
  type BackendHealth,
  type BackendSnapshot,
  type GlobalMaintenance,
  type RouteState,
  type WaygateBackend
} from '@waygate/core'

/** Options of {@link createSqliteBackend}. */
export interface SqliteBackendOptions {
  /** The SQLite database file. Created (with its directory) on the first write. */
  path: string
  /** How many audit entries to keep; older ones are dropped. Default 1000. */
  maxAuditEntries?: number
  /** The clock records expire by, epoch ms. Default `Date.now`. */
  now?: () => number
}

/** A stored record, as `getRecord` resolves it (core does not export the type by name). */
type BackendRecord = NonNullable<Awaited<ReturnType<WaygateBackend['getRecord']>>>

/** Bumped when the tables change, so an old program refuses a newer file instead of damaging it. */
const SCHEMA_VERSION = 1
const DEFAULT_AUDIT_LIMIT = 100

const SCHEMA = `
CREATE TABLE IF NOT EXISTS waygate_routes (
  key   TEXT PRIMARY KEY,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS waygate_global (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS waygate_audit (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  id        TEXT NOT NULL UNIQUE,
  timestamp TEXT NOT NULL,
  key       TEXT NOT NULL,
  service   TEXT,
  action    TEXT NOT NULL,
  actor     TEXT NOT NULL,
  entry     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS waygate_audit_by_key ON waygate_audit (key, seq);
CREATE TABLE IF NOT EXISTS waygate_records (
  namespace  TEXT NOT NULL,
  id         TEXT NOT NULL,
  value      TEXT NOT NULL,
  expires_at REAL,
  PRIMARY KEY (namespace, id)
);
`

// the WebAssembly module is loaded once per process, however many backends there are
let sqlJs: Promise<SqlJsStatic> | undefined

function loadSqlJs (): Promise<SqlJsStatic> {
  sqlJs ??= initSqlJs()
  sqlJs.catch(() => { sqlJs = undefined })
  return sqlJs
}

type Row = Record<string, SqlValue>

/** Runs a query and returns its rows; statements are freed at once (`export()` would free them anyway). */
function select (db: Database, sql: string, params: BindParams = []): Row[] {
  const statement = db.prepare(sql)
  try {
    statement.bind(params)
    const rows: Row[] = []
    while (statement.step()) rows.push(statement.getAsObject())
    return rows
  } finally {
    statement.free()
  }
}

function parseJson<T> (text: SqlValue | undefined, what: string): T {
  if (typeof text !== 'string') throw new WG_ERR_BACKEND_UNAVAILABLE(`${what}: stored value is not text`)
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new WG_ERR_BACKEND_UNAVAILABLE(`${what}: stored value is not JSON`, { cause: err })
  }
}

function errorCode (err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

const MAX_RECORD_KEY_LENGTH = 200

function checkRecordKey (value: unknown, name: 'namespace' | 'id'): string {
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_RECORD_KEY_LENGTH) return value
  throw new WG_ERR_INPUT_INVALID(`record ${name} must be a string of 1 to ${MAX_RECORD_KEY_LENGTH} characters`)
}

/** Why `value` would not come back unchanged from JSON, or null when it would. */
function notPlainJson (value: unknown, seen: Set<object>): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${value} is not a JSON number`
  if (typeof value !== 'object') return `a ${typeof value} is not JSON data`
  if (seen.has(value)) return 'it refers back to itself'
  seen.add(value)
  try {
    if (Array.isArray(value)) {
      for (const item of value) {
        const problem = notPlainJson(item, seen)
        if (problem !== null) return problem
      }
      return null
    }
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return 'only plain objects are JSON data'
    for (const item of Object.values(value)) {
      const problem = notPlainJson(item, seen)
      if (problem !== null) return problem
    }
    return null
  } finally {
    seen.delete(value)
  }
}

/** The JSON text of a record value, refusing anything JSON would change (a Date, undefined, NaN…). */
function recordJson (value: unknown): string {
  let problem: string | null
  try {
    problem = notPlainJson(value, new Set())
  } catch (err) {
    throw new WG_ERR_INPUT_INVALID('record value is nested too deeply', { cause: err })
  }
  if (problem !== null) throw new WG_ERR_INPUT_INVALID(`record value: ${problem}`)
  return JSON.stringify(value)
}

function recordExpiry (options: unknown): number | null {
  if (options === undefined) return null
  if (typeof options !== 'object' || options === null) throw new WG_ERR_INPUT_INVALID('record options must be an object')
  const { expiresAt } = options as { expiresAt?: unknown }
  if (expiresAt === undefined) return null
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new WG_ERR_INPUT_INVALID('record expiresAt must be a finite number of epoch milliseconds')
  }
  return expiresAt
}

/** Orders by id in UTF-16 code unit order, as `sort()` does (SQLite would compare UTF-8 bytes). */
function byId (a: BackendRecord, b: BackendRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** What a write computed: the value to resolve, and the changes to announce once it is stored. */
interface Outcome<T> {
  result: T
  changes: BackendChange[]
}

/**
 * Creates a backend that keeps routes, global maintenance and the audit log in a SQLite file.
 *
 * @example
 * const engine = createEngine({ backend: createSqliteBackend({ path: './waygate.sqlite' }) })
 */
export function createSqliteBackend (options: SqliteBackendOptions): WaygateBackend {
  if (typeof options !== 'object' || options === null || typeof options.path !== 'string' || options.path.trim() === '') {
    throw new WG_ERR_OPTIONS_INVALID('path must be a non-empty string')
  }
  const maxAudit = options.maxAuditEntries ?? DEFAULT_MAX_AUDIT_ENTRIES
  if (!Number.isInteger(maxAudit) || maxAudit < 1) {
    throw new WG_ERR_OPTIONS_INVALID(`maxAuditEntries must be a positive integer, got ${String(options.maxAuditEntries)}`)
  }
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new WG_ERR_OPTIONS_INVALID('now must be a function returning epoch milliseconds')
  const path = resolve(options.path)
  const listeners = new Set<(change: BackendChange) => void>()
  let db: Database | null = null
  let opening: Promise<Database> | null = null
  let queue: Promise<unknown> = Promise.resolve()
  let closing: Promise<void> | null = null

  async function openDatabase (): Promise<Database> {
    const SQL = await loadSqlJs()
    let bytes: Uint8Array | null = null
    try {
      bytes = await readFile(path)
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot read ${path}`, { cause: err })
    }
    const database = new SQL.Database(bytes)
    try {
      const version = Number(database.exec('PRAGMA user_version')[0]?.values[0]?.[0] ?? 0)
      if (version > SCHEMA_VERSION) throw new Error(`schema version ${version} is newer than this program's (${SCHEMA_VERSION})`)
      database.exec(SCHEMA)
      database.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
    } catch (err) {
      database.close()
      throw new WG_ERR_BACKEND_UNAVAILABLE(`${path} is not a usable waygate database (${(err as Error).message})`, { cause: err })
    }
    return database
  }

  function connection (): Promise<Database> {
    if (db !== null) return Promise.resolve(db)
    opening ??= openDatabase().then(database => {
      db = database
      return database
    }, err => {
      opening = null
      throw err
    })
    return opening
  }

  /** Drops the in-memory copy: the next operation reopens the file, the last state known to be stored. */
  function discard (): void {
    db?.close()
    db = null
    opening = null
  }

  /** Runs operations one at a time, in call order. */
  function serial<T> (task: (database: Database) => T | Promise<T>): Promise<T> {
    if (closing !== null) return Promise.reject(new WG_ERR_BACKEND_UNAVAILABLE('the SQLite backend is closed'))
    const run = queue.then(async () => task(await connection()))
    queue = run.catch(() => {})
    return run
  }

  async function persist (database: Database): Promise<void> {
    const bytes = database.export()
    const temp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`
    try {
      await mkdir(dirname(path), { recursive: true })
      const handle = await open(temp, 'wx')
      try {
        await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(temp, path)
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw new WG_ERR_BACKEND_UNAVAILABLE(`cannot write ${path}`, { cause: err })
    }
  }

  function announce (changes: BackendChange[]): void {
    for (const change of changes) {
      for (const listener of listeners) {
        try {
          // a copy each, so no listener can alter what the others (or the store) see
          listener(structuredClone(change))
        } catch {
          // a subscriber's bug must neither fail the write nor starve the other subscribers
        }
      }
    }
  }

  /** One transaction: `change` reads and writes, then the file is replaced and the changes announced. */
  function write<T> (change: (database: Database) => Outcome<T>): Promise<T> {
    return serial(async database => {
      database.exec('BEGIN')
      let outcome: Outcome<T>
      try {
        outcome = change(database)
      } catch (err) {
        database.exec('ROLLBACK')
        throw err
      }
      if (outcome.changes.length === 0) {
        database.exec('ROLLBACK')
        return outcome.result
      }
      database.exec('COMMIT')
      try {
        await persist(database)
      } catch (err) {
        discard()
        throw err
      }
      announce(outcome.changes)
      return outcome.result
    })
  }

  function readRoute (database: Database, key: string): RouteState | null {
    const [row] = select(database, 'SELECT state FROM waygate_routes WHERE key = ?', [key])
    return row === undefined ? null : parseJson<RouteState>(row.state, `route ${key}`)
  }

  function readGlobal (database: Database): GlobalMaintenance | null {
    const [row] = select(database, 'SELECT state FROM waygate_global WHERE id = 1')
    return row === undefined ? null : parseJson<GlobalMaintenance>(row.state, 'global maintenance')
  }

  function putRoute (database: Database, key: string, state: RouteState): void {
    database.run('INSERT INTO waygate_routes (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state',
      [key, JSON.stringify(state)])
  }

  /** Inserts an entry unless its id is stored, then trims the log. Returns whether it was inserted. */
  function insertAudit (database: Database, entry: AuditEntry): boolean {
    database.run(`INSERT OR IGNORE INTO waygate_audit (id, timestamp, key, service, action, actor, entry)
      VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [entry.id, entry.timestamp, entry.key, entry.service, entry.action, entry.actor, JSON.stringify(entry)])
    if (database.getRowsModified() === 0) return false
    database.run('DELETE FROM waygate_audit WHERE seq NOT IN (SELECT seq FROM waygate_audit ORDER BY seq DESC LIMIT ?)', [maxAudit])
    return true
  }

  /** The unexpired record, or null. */
  function readRecord (database: Database, namespace: string, id: string, at: number): BackendRecord | null {
    const [row] = select(database, 'SELECT value, expires_at FROM waygate_records WHERE namespace = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)',
      [namespace, id, at])
    return row === undefined ? null : { id, value: parseJson(row.value, `record ${namespace}/${id}`), expiresAt: row.expires_at as number | null }
  }

  function purgeExpired (database: Database, at: number): void {
    database.run('DELETE FROM waygate_records WHERE expires_at IS NOT NULL AND expires_at <= ?', [at])
  }

  return {
    kind: 'sqlite',

    async init () {
      await serial(() => {})
    },

    load () {
      return serial((database): BackendSnapshot => ({
        routes: select(database, 'SELECT key, state FROM waygate_routes ORDER BY key')
          .map(row => parseJson<RouteState>(row.state, `route ${String(row.key)}`)),
        global: readGlobal(database)
      }))
    },

    getRoute (key) {
      return serial(database => readRoute(database, key))
    },

    updateRoute (key, updater) {
      return write(database => {
        const current = readRoute(database, key)
        const update = updater(current === null ? null : structuredClone(current))
        if (update === undefined) return { result: current, changes: [] }
        const next = structuredClone(update.next)
        putRoute(database, key, next)
        const changes: BackendChange[] = [{ type: 'route', state: next }]
        if (update.audit !== undefined && insertAudit(database, update.audit)) {
          changes.push({ type: 'audit', entry: structuredClone(update.audit) })
        }
        return { result: structuredClone(next), changes }
      })
    },

    registerRoutes (states) {
      return write(database => {
        const added: string[] = []
        const changes: BackendChange[] = []
        for (const state of states) {
          database.run('INSERT OR IGNORE INTO waygate_routes (key, state) VALUES (?, ?)', [state.key, JSON.stringify(state)])
          if (database.getRowsModified() === 0) continue
          added.push(state.key)
          changes.push({ type: 'route', state: structuredClone(state) })
        }
        return { result: added, changes }
      })
    },

    deleteRoute (key) {
      return write(database => {
        database.run('DELETE FROM waygate_routes WHERE key = ?', [key])
        const existed = database.getRowsModified() > 0
        return { result: existed, changes: existed ? [{ type: 'route_deleted', key }] : [] }
      })
    },

    updateGlobal (updater) {
      return write(database => {
        const current = readGlobal(database) ?? defaultGlobalMaintenance()
        const update = updater(structuredClone(current))
        if (update === undefined) return { result: current, changes: [] }
        const next = structuredClone(update.next)
        database.run('INSERT INTO waygate_global (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state',
          [JSON.stringify(next)])
        const changes: BackendChange[] = [{ type: 'global', global: next }]
        if (update.audit !== undefined && insertAudit(database, update.audit)) {
          changes.push({ type: 'audit', entry: structuredClone(update.audit) })
        }
        return { result: structuredClone(next), changes }
      })
    },

    appendAudit (entry) {
      return write(database => {
        const added = insertAudit(database, entry)
        return { result: added, changes: added ? [{ type: 'audit', entry: structuredClone(entry) }] : [] }
      })
    },

    listAudit (query: AuditQuery = {}) {
      return serial(database => {
        const where: string[] = []
        const params: SqlValue[] = []
        const filter = (clause: string, value: string | undefined): void => {
          if (value === undefined) return
          where.push(clause)
          params.push(value)
        }
        filter('key = ?', query.key)
        filter('service = ?', query.service)
        filter('action = ?', query.action)
        filter('actor = ?', query.actor)
        filter('timestamp >= ?', query.since)
        filter('timestamp < ?', query.until)
        // an unknown cursor compares with NULL and matches nothing, like a page past the end
        filter('seq < (SELECT seq FROM waygate_audit WHERE id = ?)', query.before)
        params.push(query.limit ?? DEFAULT_AUDIT_LIMIT)
        const sql = `SELECT entry FROM waygate_audit ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY seq DESC LIMIT ?`
        return select(database, sql, params).map(row => parseJson<AuditEntry>(row.entry, 'audit entry'))
      })
    },

    async putRecord (namespace, id, value, putOptions) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const json = recordJson(value)
      const expiresAt = recordExpiry(putOptions)
      return write(database => {
        const at = now()
        purgeExpired(database, at)
        const current = readRecord(database, namespace, id, at)
        if (expiresAt !== null && expiresAt <= at) {
          // already over: nothing to store, and the record it replaces is gone too
          if (current === null) return { result: undefined, changes: [] }
          database.run('DELETE FROM waygate_records WHERE namespace = ? AND id = ?', [namespace, id])
          return { result: undefined, changes: [{ type: 'record', namespace, id, record: null }] }
        }
        if (current !== null && JSON.stringify(current.value) === json && current.expiresAt === expiresAt) {
          return { result: undefined, changes: [] }
        }
        database.run(`INSERT INTO waygate_records (namespace, id, value, expires_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (namespace, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
        [namespace, id, json, expiresAt])
        const record: BackendRecord = { id, value: JSON.parse(json) as unknown, expiresAt }
        return { result: undefined, changes: [{ type: 'record', namespace, id, record }] }
      })
    },

    async getRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      return serial(database => readRecord(database, namespace, id, now()))
    },

    async listRecords (namespace) {
      checkRecordKey(namespace, 'namespace')
      return serial(database => {
        const rows = select(database, 'SELECT id, value, expires_at FROM waygate_records WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?)',
          [namespace, now()])
        return rows.map((row): BackendRecord => ({
          id: String(row.id),
          value: parseJson(row.value, `record ${namespace}/${String(row.id)}`),
          expiresAt: row.expires_at as number | null
        })).sort(byId)
      })
    },

    async deleteRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      return write(database => {
        const at = now()
        const existed = readRecord(database, namespace, id, at) !== null
        purgeExpired(database, at)
        if (existed) database.run('DELETE FROM waygate_records WHERE namespace = ? AND id = ?', [namespace, id])
        return { result: existed, changes: existed ? [{ type: 'record', namespace, id, record: null }] : [] }
      })
    },

    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },

    async health (): Promise<BackendHealth> {
      try {
        await serial(database => database.exec('SELECT 1'))
        return { ok: true }
      } catch (err) {
        return { ok: false, detail: (err as Error).message }
      }
    },

    close () {
      closing ??= queue.then(() => {
        // every write already reached the file: nothing to flush, only memory to free
        discard()
        listeners.clear()
      })
      return closing
    }
  }
}
