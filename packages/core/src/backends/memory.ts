import { randomUUID } from 'node:crypto'
import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { defaultGlobalMaintenance } from '../models.js'
import { WG_ERR_OPTIONS_INVALID } from '../errors.js'
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
import type { AuditQuery, BackendChange, BackendHealth, BackendRecord, BackendSnapshot, Updater, WaygateBackend, WebhookOutbox } from './types.js'
import { addDeliveries, claimIn, completeIn, deleteDeadIn, emptyOutbox, failIn, listDeadIn, retryDeadIn } from './outbox-state.js'

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** How many audit entries to keep; older ones are dropped. Default 1000. */
  maxAuditEntries?: number
  /** The clock records expire by, epoch ms. Default `Date.now`. */
  now?: () => number
  /**
   * Keep webhook deliveries in an outbox beside the state (retries, dead letters), as the file
   * and Redis backends do; it ends with the process like everything else here. Default false:
   * the engine's plain in-process queue.
   */
  webhookOutbox?: boolean
}

/** A record held as its JSON text, which makes copies in and out and comparisons cheap. */
interface HeldRecord {
  json: string
  expiresAt: number | null
}

/**
 * Keeps state in this process only: for a single instance, tests and demos. Values are copied
 * in and out, so callers never share objects with the store. Every stored change of a route,
 * global maintenance or a record takes the next revision of a counter; the epoch is new with
 * each backend, since its history ends with the process.
 */
export function createMemoryBackend (options: MemoryBackendOptions = {}): WaygateBackend {
  let maxAudit: number
  let now: () => number
  try {
    maxAudit = positiveInteger(options.maxAuditEntries, 'maxAuditEntries', DEFAULT_MAX_AUDIT_ENTRIES)
    now = clockOption(options.now)
  } catch (err) {
    throw new WG_ERR_OPTIONS_INVALID((err as Error).message)
  }
  const routes = new Map<string, RouteState>()
  let global: GlobalMaintenance | null = null
  let audit: AuditEntry[] = []
  const auditIds = new Set<string>()
  const records = new Map<string, Map<string, HeldRecord>>()
  const emitter = new ChangeEmitter()
  const epoch = randomUUID()
  let revision = 0
  const pendingOutbox = emptyOutbox()
  const outbox: WebhookOutbox | undefined = options.webhookOutbox === true
    ? {
        async claim (claimOptions) {
          const { claims, nextDueAt } = claimIn(pendingOutbox, claimOptions)
          return { claims, nextDueAt }
        },
        async complete (claim) { return completeIn(pendingOutbox, claim) },
        async fail (claim, retryAt, lastError, at) { return failIn(pendingOutbox, claim, retryAt, lastError, at) },
        async listDead () { return listDeadIn(pendingOutbox) },
        async retryDead (id, at) { return retryDeadIn(pendingOutbox, id, at) },
        async deleteDead (id) { return deleteDeadIn(pendingOutbox, id) },
        async pendingCount () { return Object.keys(pendingOutbox.pending).length }
      }
    : undefined

  function pushAudit (entry: AuditEntry): void {
    audit.unshift(structuredClone(entry))
    auditIds.add(entry.id)
    if (audit.length > maxAudit) {
      for (const dropped of audit.slice(maxAudit)) auditIds.delete(dropped.id)
      audit = audit.slice(0, maxAudit)
    }
  }

  /** Announces a change; one of state (not an audit entry) takes the next revision. */
  function announce (change: BackendChange): void {
    if (change.type === 'audit' || change.type === 'resync') emitter.emit(change)
    else emitter.emit({ ...change, revision: ++revision })
  }

  function recordOf (id: string, held: HeldRecord): BackendRecord {
    return { id, value: JSON.parse(held.json), expiresAt: held.expiresAt }
  }

  function deleteHeld (namespace: string, id: string): void {
    const held = records.get(namespace)
    held?.delete(id)
    if (held?.size === 0) records.delete(namespace)
  }

  /** The unexpired records of a namespace; expired ones are dropped on the way. */
  function liveRecords (namespace: string, at: number): Map<string, HeldRecord> | undefined {
    const held = records.get(namespace)
    if (held === undefined) return undefined
    for (const [id, record] of held) {
      if (!isLive(record, at)) held.delete(id)
    }
    if (held.size === 0) {
      records.delete(namespace)
      return undefined
    }
    return held
  }

  return {
    kind: 'memory',
    ...(outbox === undefined ? {} : { outbox }),
    async load (): Promise<BackendSnapshot> {
      return {
        routes: [...routes.values()].map(s => structuredClone(s)),
        global: global === null ? null : structuredClone(global),
        revision,
        epoch
      }
    },
    async getRoute (key) {
      const state = routes.get(key)
      return state === undefined ? null : structuredClone(state)
    },
    async updateRoute (key, updater: Updater<RouteState, RouteState | null>) {
      const current = routes.get(key) ?? null
      const result = updater(current === null ? null : structuredClone(current))
      if (result === undefined) return current === null ? null : structuredClone(current)
      const next = structuredClone(result.next)
      routes.set(key, next)
      if (result.audit !== undefined) {
        if (!auditIds.has(result.audit.id)) addDeliveries(pendingOutbox, result.deliveries, Date.now())
        pushAudit(result.audit)
      }
      announce({ type: 'route', state: structuredClone(next) })
      if (result.audit !== undefined) announce({ type: 'audit', entry: structuredClone(result.audit) })
      return structuredClone(next)
    },
    async registerRoutes (states) {
      const added: string[] = []
      for (const state of states) {
        if (routes.has(state.key)) continue
        routes.set(state.key, structuredClone(state))
        added.push(state.key)
        announce({ type: 'route', state: structuredClone(state) })
      }
      return added
    },
    async deleteRoute (key) {
      const existed = routes.delete(key)
      if (existed) announce({ type: 'route_deleted', key })
      return existed
    },
    async updateGlobal (updater: Updater<GlobalMaintenance, GlobalMaintenance>) {
      const current = global ?? defaultGlobalMaintenance()
      const result = updater(structuredClone(current))
      if (result === undefined) return structuredClone(current)
      global = structuredClone(result.next)
      if (result.audit !== undefined) {
        if (!auditIds.has(result.audit.id)) addDeliveries(pendingOutbox, result.deliveries, Date.now())
        pushAudit(result.audit)
      }
      announce({ type: 'global', global: structuredClone(global) })
      if (result.audit !== undefined) announce({ type: 'audit', entry: structuredClone(result.audit) })
      return structuredClone(global)
    },
    async appendAudit (entry, deliveries) {
      if (auditIds.has(entry.id)) return false
      addDeliveries(pendingOutbox, deliveries, Date.now())
      pushAudit(entry)
      announce({ type: 'audit', entry: structuredClone(entry) })
      return true
    },
    async listAudit (query?: AuditQuery) {
      return filterAudit(audit, query).map(e => structuredClone(e))
    },
    async putRecord (namespace, id, value, options) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const next: HeldRecord = { json: recordJson(value), expiresAt: recordExpiry(options) }
      const at = now()
      const current = liveRecords(namespace, at)?.get(id)
      if (!isLive(next, at)) {
        if (current === undefined) return
        deleteHeld(namespace, id)
        announce({ type: 'record', namespace, id, record: null })
        return
      }
      if (current !== undefined && current.json === next.json && current.expiresAt === next.expiresAt) return
      let held = records.get(namespace)
      if (held === undefined) {
        held = new Map()
        records.set(namespace, held)
      }
      held.set(id, next)
      announce({ type: 'record', namespace, id, record: recordOf(id, next) })
    },
    async getRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      const held = liveRecords(namespace, now())?.get(id)
      return held === undefined ? null : recordOf(id, held)
    },
    async listRecords (namespace) {
      checkRecordKey(namespace, 'namespace')
      const held = liveRecords(namespace, now())
      if (held === undefined) return []
      return [...held].map(([id, record]) => recordOf(id, record)).sort(compareIds)
    },
    async deleteRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      if (liveRecords(namespace, now())?.has(id) !== true) return false
      deleteHeld(namespace, id)
      announce({ type: 'record', namespace, id, record: null })
      return true
    },
    subscribe (listener) {
      return emitter.subscribe(listener)
    },
    async health (): Promise<BackendHealth> {
      return { ok: true }
    },
    async close () {
      emitter.clear()
    }
  }
}
