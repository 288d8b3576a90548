import type { AuditEntry, RouteState } from '../models.js'

/** When built records are dated unless told otherwise. */
export const BUILT_AT = '2030-01-01T00:00:00.000Z'

/**
 * A complete route state for tests of backends and engines: active, with every field at its
 * neutral value, `fields` on top. A bare key (`/x`) gets `method: null`.
 */
export function routeState (key: string, fields: Partial<RouteState> = {}): RouteState {
  const colon = key.indexOf(':')
  const bare = key[0] === '/'
  return {
    key,
    path: bare ? key : key.slice(colon + 1),
    method: bare ? null : key.slice(0, colon),
    service: null,
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
