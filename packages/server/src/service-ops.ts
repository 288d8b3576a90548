import { randomUUID } from 'node:crypto'
import {
  checkRateLimitPolicy,
  GLOBAL_KEY,
  isServiceName,
  RATE_LIMIT_NAMESPACE,
  type AuditAction,
  type GlobalMaintenance,
  type GlobalRateLimit,
  type Platform,
  type RateLimitPolicy,
  type RouteStatus,
  type WaygateEngine
} from '@waygate/core'
import { WG_ERR_REQUEST_INVALID, type FleetService } from '@waygate/admin'
import type { Fleet } from './fleet.js'
import type { InstanceRegistry } from './instances.js'
import { SERVICE_MAINTENANCE_NAMESPACE, serviceAndKey, serviceOfKey, servicePolicyId } from './wire.js'

/** Who changes a service, as the audit log records it. */
export interface ServiceActor {
  actor: string
  platform: Platform
}

/** What the operators' service operations work on. */
export interface ServiceOpsDeps {
  engine: WaygateEngine
  fleet: Fleet
  instances: InstanceRegistry
}

/**
 * The operators' changes to a service as a whole (its maintenance, its rate limit) and the list of
 * services: one implementation behind the REST API (`/api/services/...`) and the dashboard, so
 * both store, audit and reach the services alike.
 */
export interface ServiceOps {
  list(): FleetService[]
  enableMaintenance(service: string, input: { reason?: string, exemptPaths?: string[], includeForceActive?: boolean }, who: ServiceActor): Promise<GlobalMaintenance>
  disableMaintenance(service: string, who: ServiceActor): Promise<GlobalMaintenance>
  setRateLimit(service: string, input: { policy: Omit<RateLimitPolicy, 'key'>, exemptRoutes?: string[], enabled?: boolean }, who: ServiceActor): Promise<GlobalRateLimit>
  /** False when the service had none. */
  deleteRateLimit(service: string, who: ServiceActor): Promise<boolean>
}

/** A service name from the outside: one that cannot name a service is a 400. */
export function checkedService (name: string): string {
  if (!isServiceName(name)) throw new WG_ERR_REQUEST_INVALID(`"${String(name).slice(0, 100)}" cannot name a service (lowercase letters, digits, . _ -; no HTTP method)`)
  return name
}

/** A key of the service, plain (`GET:/x`); one naming another service is refused. */
function ownKey (service: string, input: string, field: string): string {
  const split = serviceAndKey(input)
  if (split === null) throw new WG_ERR_REQUEST_INVALID(`${field}: "${input.slice(0, 200)}" is not a route key`)
  if (split.service !== null && split.service !== service) {
    throw new WG_ERR_REQUEST_INVALID(`${field}: ${input.slice(0, 200)} belongs to service "${split.service}", not "${service}"`)
  }
  return split.key
}

export function createServiceOps (deps: ServiceOpsDeps): ServiceOps {
  const { engine, fleet, instances } = deps

  async function audit (who: ServiceActor, service: string, action: AuditAction, reason: string,
    previousStatus: RouteStatus | null, newStatus: RouteStatus | null): Promise<void> {
    await engine.recordChange({
      id: randomUUID(),
      timestamp: new Date(engine.now()).toISOString(),
      key: GLOBAL_KEY,
      service,
      action,
      actor: who.actor,
      platform: who.platform,
      reason,
      previousStatus,
      newStatus
    })
  }

  return {
    list () {
      const counts = new Map<string, number>()
      for (const state of engine.storedSnapshot().routes) {
        const service = serviceOfKey(state.key)
        if (service !== null) counts.set(service, (counts.get(service) ?? 0) + 1)
      }
      // every server process's instances, this one's as they are now (not as last written)
      const listed = instances.list()
      const names = new Set([...counts.keys(), ...fleet.services(), ...listed.map(i => i.service)])
      return [...names].sort().map(name => ({
        name,
        routes: counts.get(name) ?? 0,
        maintenance: fleet.maintenanceOf(name),
        rateLimit: fleet.servicePolicy(name),
        instances: listed.filter(i => i.service === name)
      }))
    },

    async enableMaintenance (name, input, who) {
      const service = checkedService(name)
      const current = fleet.maintenanceOf(service)
      const next = {
        enabled: true,
        reason: input.reason ?? '',
        exemptPaths: input.exemptPaths === undefined ? current.exemptPaths : [...new Set(input.exemptPaths.map(p => ownKey(service, p, 'exemptPaths')))],
        includeForceActive: input.includeForceActive ?? current.includeForceActive,
        since: current.enabled && current.since !== null ? current.since : new Date(engine.now()).toISOString()
      }
      await engine.backend.putRecord(SERVICE_MAINTENANCE_NAMESPACE, service, next)
      await audit(who, service, 'global_maintenance_on', next.reason, current.enabled ? 'maintenance' : 'active', 'maintenance')
      return next
    },

    async disableMaintenance (name, who) {
      const service = checkedService(name)
      const current = fleet.maintenanceOf(service)
      if (!current.enabled) return current
      const next = { ...current, enabled: false, reason: '', since: null }
      await engine.backend.putRecord(SERVICE_MAINTENANCE_NAMESPACE, service, next)
      await audit(who, service, 'global_maintenance_off', '', 'maintenance', 'active')
      return next
    },

    async setRateLimit (name, input, who) {
      const service = checkedService(name)
      const id = servicePolicyId(service)
      const checked = checkRateLimitPolicy({ ...input.policy, key: id }, `rate limit of service ${service}`)
      const current = fleet.servicePolicy(service)
      const next: GlobalRateLimit = {
        policy: checked,
        enabled: input.enabled ?? current?.enabled ?? true,
        exemptRoutes: [...new Set((input.exemptRoutes ?? current?.exemptRoutes ?? []).map(k => ownKey(service, k, 'exemptRoutes')))]
      }
      await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, id, next)
      await audit(who, service, 'rate_limit_set', `service ${service}: ${(checked.limits ?? Object.keys(checked.tiers ?? {})).join(', ')}`, null, null)
      return next
    },

    async deleteRateLimit (name, who) {
      const service = checkedService(name)
      const deleted = await engine.backend.deleteRecord(RATE_LIMIT_NAMESPACE, servicePolicyId(service))
      if (deleted) await audit(who, service, 'rate_limit_delete', `service ${service}`, null, null)
      return deleted
    }
  }
}
