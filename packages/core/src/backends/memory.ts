import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { defaultGlobalMaintenance } from '../models.js'
import { WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { ChangeEmitter, DEFAULT_MAX_AUDIT_ENTRIES, filterAudit, positiveInteger } from './shared.js'
import type { AuditQuery, BackendChange, BackendHealth, BackendSnapshot, Updater, WaygateBackend } from './types.js'

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** How many audit entries to keep; older ones are dropped. Default 1000. */
  maxAuditEntries?: number
}

/**
 * Keeps state in this process only: for a single instance, tests and demos. Values are copied
 * in and out, so callers never share objects with the store.
 */
export function createMemoryBackend (options: MemoryBackendOptions = {}): WaygateBackend {
  let maxAudit: number
  try {
    maxAudit = positiveInteger(options.maxAuditEntries, 'maxAuditEntries', DEFAULT_MAX_AUDIT_ENTRIES)
  } catch (err) {
    throw new WG_ERR_OPTIONS_INVALID((err as Error).message)
  }
  const routes = new Map<string, RouteState>()
  let global: GlobalMaintenance | null = null
  let audit: AuditEntry[] = []
  const auditIds = new Set<string>()
  const emitter = new ChangeEmitter()

  function pushAudit (entry: AuditEntry): void {
    audit.unshift(structuredClone(entry))
    auditIds.add(entry.id)
    if (audit.length > maxAudit) {
      for (const dropped of audit.slice(maxAudit)) auditIds.delete(dropped.id)
      audit = audit.slice(0, maxAudit)
    }
  }

  function announce (change: BackendChange): void {
    emitter.emit(change)
  }

  return {
    kind: 'memory',
    async load (): Promise<BackendSnapshot> {
      return {
        routes: [...routes.values()].map(s => structuredClone(s)),
        global: global === null ? null : structuredClone(global)
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
      if (result.audit !== undefined) pushAudit(result.audit)
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
      if (result.audit !== undefined) pushAudit(result.audit)
      announce({ type: 'global', global: structuredClone(global) })
      if (result.audit !== undefined) announce({ type: 'audit', entry: structuredClone(result.audit) })
      return structuredClone(global)
    },
    async appendAudit (entry) {
      if (auditIds.has(entry.id)) return false
      pushAudit(entry)
      announce({ type: 'audit', entry: structuredClone(entry) })
      return true
    },
    async listAudit (query?: AuditQuery) {
      return filterAudit(audit, query).map(e => structuredClone(e))
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
