import type { GlobalMaintenance } from '@waygate/core'
import { defaultGlobalMaintenance } from '@waygate/core'
import { routeState } from '@waygate/core/testing'

/** A stored route state with neutral defaults; `key` decides method and path. */
export { routeState }

export function globalOn (fields: Partial<GlobalMaintenance> = {}): GlobalMaintenance {
  return { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade', since: '2030-01-01T00:00:00.000Z', ...fields }
}
