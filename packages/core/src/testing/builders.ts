import type { AuditEntry, RouteState } from '../models.js'

/** When built records are dated unless told otherwise. */
export const BUILT_AT = '2030-01-01T00:00:00.000Z'

/**
 * A complete route state for tests of backends and engines: active, with every field at its
 * neutral value, `fields` on top. A bare key (`/x`) gets `method: null`;
 * a service-qualified one (`svc:GET:/x`) gets its `service`.
 */
export function routeState (key: string, fields: Partial<RouteState> = {}): RouteState {
  // the pattern starts at the first slash; before it come `service:`, `METHOD:`, both or neither
  const slash = key.indexOf('/')
  const words = slash <= 0 ? [] : key.slice(0, slash - 1).split(':')
  const last = words[words.length - 1]
  const method = last !== undefined && last === last.toUpperCase() ? last : null
  const service = words.length === 2 || (words.length === 1 && method === null) ? words[0]! : null
  return {
    key,
    path: slash === -1 ? key : key.slice(slash),
    method,
    service,
    status: 'active',
    reason: '',
    allowedEnvs: [],
    window: null,
    sunset: null,
    successor: null,
    deprecatedAt: null,
    disabledUntil: null,
    forceActive: false,
    updatedAt: BUILT_AT,
    updatedBy: 'test',
    ...fields
  }
}

/** A complete audit entry for tests: `alice` disabling `GET:/a` from the CLI, `fields` on top. */
export function auditEntry (id: string, fields: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id,
    timestamp: BUILT_AT,
    key: 'GET:/a',
    service: null,
    action: 'disable',
    actor: 'alice',
    platform: 'cli',
    reason: '',
    previousStatus: 'active',
    newStatus: 'disabled',
    ...fields
  }
}

/** Polls `condition` every 5 ms until it holds (true) or `timeoutMs` passes (false). */
export async function waitFor (condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return true
}
