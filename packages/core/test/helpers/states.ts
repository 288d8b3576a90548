import type { GlobalMaintenance, RouteState } from '@waygate/core'
import { defaultGlobalMaintenance } from '@waygate/core'

/** A stored route state with sensible defaults; `key` decides method and path. */
export function routeState (key: string, fields: Partial<RouteState> = {}): RouteState {
  const colon = key.indexOf(':/')
  const method = key[0] === '/' ? null : key.slice(0, colon)
  const path = key[0] === '/' ? key : key.slice(colon + 1)
  return {
    key,
    path,
    method,
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
    updatedAt: '2030-01-01T00:00:00.000Z',
    updatedBy: 'test',
    ...fields
  }
}

export function globalOn (fields: Partial<GlobalMaintenance> = {}): GlobalMaintenance {
  return { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade', since: '2030-01-01T00:00:00.000Z', ...fields }
}
