import {
  GLOBAL_KEY,
  isServiceName,
  qualifyKey,
  RATE_LIMIT_NAMESPACE,
  SERVICE_NAME,
  unqualifyKey,
  type AuditEntry,
  type BackendRecord,
  type RouteState
} from '@waygate/core'

// The server stores every route under `<service>:<key>`; a service speaks of its own routes by
// their plain keys. These helpers are the only place where one becomes the other.

/** What a service name looks like, as a schema pattern (an HTTP method is refused on top, by isServiceName). */
export const SERVICE_NAME_PATTERN = SERVICE_NAME.source

export { isServiceName }

/** Namespaces of the server's own records. */
export const SERVICE_MAINTENANCE_NAMESPACE = 'waygate:service-maintenance'
export const SERVICE_INSTANCES_NAMESPACE = 'waygate:service-instances'
export const SERVICE_MANIFESTS_NAMESPACE = 'waygate:service-manifests'
export const SERVICES_KNOWN_NAMESPACE = 'waygate:services-known'
export const SERVER_NAMESPACE = 'waygate:server'

/** Record id, in the rate limit namespace, of a service's policy. */
export function servicePolicyId (service: string): string {
  return `@service:${service}`
}

/** `payments-service` + `GET:/api/payments` → `payments-service:GET:/api/payments` (canonical). */
export function qualify (service: string, key: string): string {
  return qualifyKey(service, key)
}

/** The plain key of a key of `service`, or null when the key belongs to no service or another one. */
export function unqualify (service: string, key: string): string | null {
  const split = serviceAndKey(key)
  return split !== null && split.service === service ? split.key : null
}

/** The service a stored key belongs to (null for a plain key) and its plain key; null when it is no key. */
export function serviceAndKey (key: string): { service: string | null, key: string } | null {
  try {
    return unqualifyKey(key)
  } catch {
    return null
  }
}

/** The service a stored key belongs to, or null for a plain key. */
export function serviceOfKey (key: string): string | null {
  return serviceAndKey(key)?.service ?? null
}

/** A state as a service sent it, stored under its qualified key. */
export function qualifyState (service: string, state: RouteState): RouteState {
  return { ...state, key: qualify(service, state.key), service }
}

/** A stored state as its service sees it. */
export function unqualifyState (service: string, state: RouteState): RouteState {
  return { ...state, key: unqualify(service, state.key) ?? state.key, service }
}

/** An audit entry as a service reads it: its own keys plain. */
export function unqualifyAudit (service: string, entry: AuditEntry): AuditEntry {
  return entry.key === GLOBAL_KEY ? entry : { ...entry, key: unqualify(service, entry.key) ?? entry.key }
}

/**
 * The id a service knows a stored rate limit record by, or null when the record is not one of
 * its own: route policies by their plain key, the global policy `*`, its service policy
 * `@service`, and counter resets (`reset:<scope>`) of those.
 */
export function recordIdForService (service: string, id: string): string | null {
  if (id === GLOBAL_KEY) return GLOBAL_KEY
  if (id === servicePolicyId(service)) return '@service'
  if (id.startsWith('reset:')) {
    const inner = recordIdForService(service, id.slice(6))
    return inner === null ? null : `reset:${inner}`
  }
  return unqualify(service, id)
}

/** The stored id of a rate limit record a service names (the inverse of {@link recordIdForService}), or null. */
export function recordIdFromService (service: string, id: string): string | null {
  if (id === GLOBAL_KEY) return GLOBAL_KEY
  if (id === '@service') return servicePolicyId(service)
  if (id.startsWith('reset:')) {
    const inner = recordIdFromService(service, id.slice(6))
    return inner === null ? null : `reset:${inner}`
  }
  try {
    return qualify(service, id)
  } catch {
    return null
  }
}

/** A stored rate limit record's value as the service gets it: a route policy's `key`, a reset's `scope`, made plain. */
export function recordValueForService (service: string, value: unknown, toService: boolean): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const translate = (k: string): string => toService
    ? recordIdForService(service, k) ?? k
    : recordIdFromService(service, k) ?? k
  const out: Record<string, unknown> = { ...value as Record<string, unknown> }
  if (typeof out.key === 'string') out.key = translate(out.key)
  if (typeof out.scope === 'string') out.scope = translate(out.scope)
  return out
}

/** A stored rate limit record as a service gets it, or null when it is not one of its own. */
export function recordForService (service: string, record: BackendRecord): BackendRecord | null {
  const id = recordIdForService(service, record.id)
  if (id === null) return null
  return { id, value: recordValueForService(service, record.value, true), expiresAt: record.expiresAt }
}

export { RATE_LIMIT_NAMESPACE }
