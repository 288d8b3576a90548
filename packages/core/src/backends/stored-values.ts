// Checks of what a shared backend (Redis, PostgreSQL) reads back from its store or receives from
// another instance: enough that a stray value cannot break the engine.
import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { ROUTE_STATUSES } from '../models.js'
import type { BackendChange } from './types.js'

/** A plain object (not null, not an array). */
export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The parsed JSON, or undefined when it does not parse. */
export function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A route state with a known status (and the given key, when one is given), or null. */
export function asRouteState (value: unknown, key?: string): RouteState | null {
  if (!isRecord(value) || typeof value.key !== 'string' || (key !== undefined && value.key !== key)) return null
  if (!ROUTE_STATUSES.includes(value.status as never) || typeof value.path !== 'string') return null
  return value as unknown as RouteState
}

/** A global maintenance state, or null. */
export function asGlobal (value: unknown): GlobalMaintenance | null {
  if (!isRecord(value) || typeof value.enabled !== 'boolean' || !Array.isArray(value.exemptPaths)) return null
  return value as unknown as GlobalMaintenance
}

/** An audit entry with an id and a timestamp, or null. */
export function asAuditEntry (value: unknown): AuditEntry | null {
  if (!isRecord(value) || typeof value.id !== 'string' || typeof value.timestamp !== 'string') return null
  return value as unknown as AuditEntry
}

/**
 * A change received from another instance, checked enough that a stray message cannot break the
 * engine; a change of state carries the sequence number of its message as its revision.
 */
export function remoteChange (value: unknown, revision: number): BackendChange | null {
  if (!isRecord(value)) return null
  switch (value.type) {
    case 'route': {
      const state = asRouteState(value.state)
      return state === null ? null : { type: 'route', state, revision }
    }
    case 'route_deleted':
      return typeof value.key === 'string' ? { type: 'route_deleted', key: value.key, revision } : null
    case 'global': {
      const global = asGlobal(value.global)
      return global === null ? null : { type: 'global', global, revision }
    }
    case 'audit': {
      const entry = asAuditEntry(value.entry)
      return entry === null ? null : { type: 'audit', entry }
    }
    case 'record': {
      const { namespace, id, record } = value
      if (typeof namespace !== 'string' || typeof id !== 'string') return null
      if (record === null) return { type: 'record', namespace, id, record: null, revision }
      if (!isRecord(record) || record.id !== id || !('value' in record)) return null
      const expiresAt = record.expiresAt
      if (expiresAt !== null && typeof expiresAt !== 'number') return null
      return { type: 'record', namespace, id, record: { id, value: record.value, expiresAt }, revision }
    }
    default:
      return null
  }
}

/** The key a change is ordered by: a change older than this instance's own last write of that key is stale. */
export function orderKey (change: BackendChange): string | null {
  switch (change.type) {
    case 'route': return `r:${change.state.key}`
    case 'route_deleted': return `r:${change.key}`
    case 'global': return 'g'
    case 'record': return `x:${change.namespace}\u0000${change.id}`
    default: return null
  }
}

/** The message of an error, or the thrown value as text. */
export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
