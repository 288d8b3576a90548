import { isDeepStrictEqual } from 'node:util'
import {
  defaultGlobalMaintenance,
  type AuditEntry,
  type EngineEvent,
  type GlobalMaintenance,
  type RouteState,
  type WaygateEngine
} from '@waygate/core'
import { conflict } from './errors.js'

// What the server needs of the engine beyond what every engine has: revisions, the raw stored
// snapshot, compare-and-set writes that notify the engine's webhooks, and route registration.
// The engine grows these (issue 12, part A); until an engine has them, the fallbacks below keep
// the server working with what the engine already offers, less precisely (see each one).

/** The raw stored state the server hands to services: windows are evaluated by whoever enforces. */
export interface StoredSnapshot {
  revision: number
  epoch: string | null
  routes: RouteState[]
  global: GlobalMaintenance
}

/** A compare-and-set write: `next` is written only when the stored value deep-equals `base`. */
export interface RemoteUpdate<T> {
  base: T | null
  next: T
  audit?: AuditEntry
}

interface RevisionedEngine {
  readonly revision?: number
  storedSnapshot?(): { revision: number, epoch?: string | null, routes: RouteState[], global: GlobalMaintenance | null }
  applyRemoteUpdate?(key: string, update: RemoteUpdate<RouteState>): Promise<RouteState | null | undefined>
  applyRemoteGlobal?(update: RemoteUpdate<GlobalMaintenance>): Promise<GlobalMaintenance | null | undefined>
  registerRoutes?(states: RouteState[]): Promise<string[]>
}

/** The server's view of an engine. */
export interface ServerEngine {
  readonly engine: WaygateEngine
  /** The revision of the newest change the engine applied. */
  revision(): number
  storedSnapshot(): StoredSnapshot
  /** The revision an event carries, or null when its backend does not number its changes. */
  revisionOf(event: EngineEvent): number | null
  /** The raw stored state of a `route_changed` event. */
  storedOf(event: EngineEvent & { type: 'route_changed' }): RouteState
  applyRemoteUpdate(key: string, update: RemoteUpdate<RouteState>): Promise<RouteState>
  applyRemoteGlobal(update: RemoteUpdate<GlobalMaintenance>): Promise<GlobalMaintenance>
  /** Stores the states whose keys are not stored yet; resolves the keys it added. */
  registerRoutes(states: RouteState[]): Promise<string[]>
}

export function serverEngine (engine: WaygateEngine): ServerEngine {
  const e = engine as WaygateEngine & RevisionedEngine
  return {
    engine,
    revision: () => e.revision ?? engine.version,
    storedSnapshot () {
      if (typeof e.storedSnapshot === 'function') {
        const s = e.storedSnapshot()
        return { revision: s.revision, epoch: s.epoch ?? null, routes: s.routes, global: s.global ?? defaultGlobalMaintenance() }
      }
      // fallback: the engine's views (windows already applied) at its version
      return { revision: engine.version, epoch: null, routes: engine.listRoutes(), global: engine.getGlobal() }
    },
    revisionOf (event) {
      const revision = (event as { revision?: number | null }).revision
      if (typeof revision === 'number') return revision
      return e.revision === undefined ? event.version : null
    },
    storedOf (event) {
      return (event as { stored?: RouteState }).stored ?? event.state
    },
    async applyRemoteUpdate (key, update) {
      if (typeof e.applyRemoteUpdate === 'function') return (await e.applyRemoteUpdate(key, update)) ?? update.next
      // fallback: compare and set inside the backend's atomic update; webhooks hear of it through
      // recordChange, without the state
      let wrote = false
      const stored = await engine.backend.updateRoute(key, current => {
        wrote = false
        if (!isDeepStrictEqual(current, update.base)) conflict(key, current)
        wrote = true
        return { next: update.next }
      })
      if (wrote && update.audit !== undefined) await engine.recordChange(update.audit)
      return stored ?? update.next
    },
    async applyRemoteGlobal (update) {
      if (typeof e.applyRemoteGlobal === 'function') return (await e.applyRemoteGlobal(update)) ?? update.next
      let wrote = false
      const stored = await engine.backend.updateGlobal(current => {
        wrote = false
        if (!isDeepStrictEqual(current, update.base ?? defaultGlobalMaintenance())) conflict('global maintenance', current)
        wrote = true
        return { next: update.next }
      })
      if (wrote && update.audit !== undefined) await engine.recordChange(update.audit)
      return stored
    },
    async registerRoutes (states) {
      if (typeof e.registerRoutes === 'function') return e.registerRoutes(states)
      return engine.backend.registerRoutes(states)
    }
  }
}
