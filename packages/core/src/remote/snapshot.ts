import type { BackendRecord } from '../backends/types.js'
import type { GlobalMaintenance, RouteState } from '../models.js'

/** A service's snapshot as the Waygate Server sends it (keys unqualified). */
export interface RemoteSnapshot {
  epoch: string
  revision: number
  service: string
  routes: RouteState[]
  global: GlobalMaintenance
  serviceMaintenance: GlobalMaintenance
  rateLimits: BackendRecord[]
  manifest: string | null
}

/** One change as the stream's `change` event carries it. */
export type RemoteChange =
  | { type: 'route', state: RouteState }
  | { type: 'route_deleted', key: string }
  | { type: 'global', global: GlobalMaintenance }
  | { type: 'service', maintenance: GlobalMaintenance }
  | { type: 'record', namespace: string, id: string, record: BackendRecord | null }

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value)

/** Whether a value has the shape of a GlobalMaintenance (the fields the engine reads). */
export function isMaintenance (value: unknown): value is GlobalMaintenance {
  return isObject(value) && typeof value.enabled === 'boolean' && typeof value.reason === 'string' &&
    Array.isArray(value.exemptPaths) && typeof value.includeForceActive === 'boolean'
}

/** Whether a value has the shape of a route state (the fields the engine reads). */
export function isRouteState (value: unknown): value is RouteState {
  return isObject(value) && typeof value.key === 'string' && typeof value.path === 'string' && typeof value.status === 'string'
}

function isRecord (value: unknown): value is BackendRecord {
  return isObject(value) && typeof value.id === 'string' && 'value' in value &&
    (value.expiresAt === null || typeof value.expiresAt === 'number')
}

/** Describes what is wrong with a snapshot, or null when it is one. */
export function checkSnapshot (value: unknown): string | null {
  if (!isObject(value)) return 'not an object'
  if (typeof value.epoch !== 'string' || value.epoch === '') return 'epoch is not a string'
  if (typeof value.revision !== 'number' || !Number.isInteger(value.revision) || value.revision < 0) return 'revision is not a non-negative integer'
  if (typeof value.service !== 'string') return 'service is not a string'
  if (!Array.isArray(value.routes) || !value.routes.every(isRouteState)) return 'routes is not a list of route states'
  if (!isMaintenance(value.global)) return 'global is not a maintenance record'
  if (!isMaintenance(value.serviceMaintenance)) return 'serviceMaintenance is not a maintenance record'
  if (!Array.isArray(value.rateLimits) || !value.rateLimits.every(isRecord)) return 'rateLimits is not a list of records'
  if (value.manifest !== null && typeof value.manifest !== 'string') return 'manifest is not a string or null'
  return null
}

/** Describes what is wrong with a change, or null when it is one. */
export function checkChange (value: unknown): string | null {
  if (!isObject(value)) return 'not an object'
  switch (value.type) {
    case 'route': return isRouteState(value.state) ? null : 'state is not a route state'
    case 'route_deleted': return typeof value.key === 'string' ? null : 'key is not a string'
    case 'global': return isMaintenance(value.global) ? null : 'global is not a maintenance record'
    case 'service': return isMaintenance(value.maintenance) ? null : 'maintenance is not a maintenance record'
    case 'record':
      return typeof value.namespace === 'string' && typeof value.id === 'string' && (value.record === null || isRecord(value.record))
        ? null
        : 'not a record change'
    default: return `unknown type ${JSON.stringify(value.type)}`
  }
}
