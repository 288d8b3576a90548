import { createHash } from 'node:crypto'
import { domId, maybeTime, timeView, type TimeView } from './format.js'
import { disconnectedKeepMs, instanceState, isStale, staleAfterMs, type DashboardFleet, type FleetInstanceState, type FleetService, type ServiceTokenInfo } from './fleet.js'
import { queryString, type ActionLink } from './pages.js'
import { SERVICE_ACTIONS, TOKEN_ACTIONS } from './service-actions.js'

// What the Waygate Server's pages show: the service selector, the service maintenance card, the
// services page and the tokens page.

/** The service selector every page of a server's dashboard shows. */
export interface ScopeView {
  /** The selected service, '' for all. */
  service: string
  services: string[]
  /** The page the selector reloads (its path, without a query). */
  action: string
  /** `?service=…` for links to the other pages, '' when unscoped. */
  query: string
  /** Whether the selected service is one the server knows. */
  known: boolean
}

export function scopeView (fleet: DashboardFleet, service: string, action: string): ScopeView {
  const services = fleet.services().map(s => s.name)
  return { service, services, action, query: queryString({ service }), known: service === '' || services.includes(service) }
}

function confirmHref (prefix: string, action: string, key: string, returnTo: string): string {
  return `${prefix}/confirm${queryString({ action, key, return: returnTo })}`
}

export interface ServiceCardView {
  name: string
  enabled: boolean
  reason: string
  exemptPaths: string[]
  includeForceActive: boolean
  since: TimeView | null
  actions: ActionLink[]
}

/** The maintenance card of one service, beside the global one. */
export function serviceCard (fleet: DashboardFleet, name: string, now: number, prefix: string, returnTo: string): ServiceCardView {
  const service = fleet.services().find(s => s.name === name)
  const maintenance = service?.maintenance ?? { enabled: false, reason: '', exemptPaths: [], includeForceActive: false, since: null }
  return {
    name,
    enabled: maintenance.enabled,
    reason: maintenance.reason,
    exemptPaths: maintenance.exemptPaths,
    includeForceActive: maintenance.includeForceActive,
    since: maintenance.enabled ? maybeTime(maintenance.since, now) : null,
    actions: SERVICE_ACTIONS.filter(spec => spec.offer(maintenance)).map(spec => ({
      id: spec.id,
      label: spec.label,
      tone: spec.tone,
      href: confirmHref(prefix, spec.id, name, returnTo),
      focusId: `service-card-${spec.id}`
    }))
  }
}

export type InstanceState = FleetInstanceState
export type ServiceHealth = 'healthy' | 'degraded' | 'stale' | 'none'

export interface InstanceRow {
  id: string
  instance: string
  host: string | null
  version: string | null
  pid: number | null
  connectedSince: TimeView | null
  lastHeartbeat: TimeView
  revision: number | null
  /** When its stream closed, for a disconnected one. */
  disconnectedAt: TimeView | null
  state: InstanceState
  stateLabel: string
}

export interface ServiceRow {
  id: string
  name: string
  routesHref: string
  routes: number
  maintenance: { enabled: boolean, reason: string, since: TimeView | null }
  rateLimit: 'on' | 'off' | 'none'
  rateLimitHref: string
  instances: InstanceRow[]
  stale: number
  health: ServiceHealth
  healthLabel: string
}

const STATE_LABELS: Record<InstanceState, string> = { connected: 'Connected', registered: 'Registered', stale: 'Stale', disconnected: 'Disconnected' }
const HEALTH_LABELS: Record<ServiceHealth, string> = { healthy: 'Healthy', degraded: 'Degraded', stale: 'Stale', none: 'No instances' }

/** A heartbeat's time: to the second while recent, since "just now" would hide a 4 s silence. */
function heartbeatView (iso: string, now: number): TimeView {
  const view = timeView(iso, now)
  const seconds = Math.floor((now - Date.parse(iso)) / 1000)
  return seconds >= 1 && seconds < 60 ? { ...view, relative: `${seconds} s ago` } : view
}

function serviceRow (service: FleetService, now: number, heartbeatMs: number, prefix: string): ServiceRow {
  const instances = service.instances.map((i): InstanceRow => {
    const state = instanceState(i, now, heartbeatMs)
    return {
      id: domId('instance', `${service.name}/${i.id}`),
      instance: i.id,
      host: i.host,
      version: i.version,
      pid: i.pid,
      connectedSince: maybeTime(i.connectedSince, now),
      lastHeartbeat: heartbeatView(i.lastHeartbeat, now),
      revision: i.revision,
      disconnectedAt: i.disconnectedAt == null ? null : heartbeatView(i.disconnectedAt, now),
      state,
      stateLabel: STATE_LABELS[state]
    }
  })
  // a disconnected instance counts as stale too (as `stale` in GET /api/services)
  const stale = instances.filter(i => i.state === 'stale' || i.state === 'disconnected').length
  const health: ServiceHealth = instances.length === 0 ? 'none' : stale === instances.length ? 'stale' : stale > 0 ? 'degraded' : 'healthy'
  const scope = queryString({ service: service.name })
  return {
    id: domId('service', service.name),
    name: service.name,
    routesHref: `${prefix}/${scope}`,
    routes: service.routes,
    maintenance: {
      enabled: service.maintenance.enabled,
      reason: service.maintenance.reason,
      since: service.maintenance.enabled ? maybeTime(service.maintenance.since, now) : null
    },
    rateLimit: service.rateLimit === null ? 'none' : service.rateLimit.enabled ? 'on' : 'off',
    rateLimitHref: `${prefix}/rate-limits${scope}`,
    instances,
    stale,
    health,
    healthLabel: HEALTH_LABELS[health]
  }
}

/** Everything the services page shows; `selected` narrows it to one service. */
export function servicesPage (fleet: DashboardFleet, now: number, prefix: string, selected: string) {
  const all = fleet.services()
  const rows = all.filter(s => selected === '' || s.name === selected).map(s => serviceRow(s, now, fleet.heartbeatMs, prefix))
  const instances = rows.reduce((n, r) => n + r.instances.length, 0)
  const stale = rows.reduce((n, r) => n + r.stale, 0)
  return {
    rows,
    counters: [
      { id: 'services', label: selected === '' ? 'Services' : 'Service', count: rows.length },
      { id: 'instances', label: 'Instances', count: instances },
      { id: 'stale', label: 'Stale instances', count: stale },
      { id: 'maintenance', label: 'In maintenance', count: rows.filter(r => r.maintenance.enabled).length }
    ],
    staleAfterSeconds: Math.round(staleAfterMs(fleet.heartbeatMs) / 1000),
    disconnectedKeepSeconds: Math.round(disconnectedKeepMs(fleet.heartbeatMs) / 1000),
    heartbeatSeconds: Math.round(fleet.heartbeatMs / 100) / 10
  }
}

/**
 * A token that changes whenever the services page would: a service, an instance, a heartbeat, or
 * an instance turning stale as time passes. The page's script polls it (no event announces staleness).
 */
export function servicesVersion (fleet: DashboardFleet, now: number): string {
  const view = fleet.services().map(s => [s.name, s.routes, s.maintenance.enabled, s.maintenance.reason, s.rateLimit?.enabled ?? null,
    s.instances.map(i => [i.id, i.connectedSince, i.lastHeartbeat, i.revision, i.disconnectedAt ?? null, isStale(i, now, fleet.heartbeatMs)])])
  return createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 16)
}

export interface TokenRow {
  id: string
  tokenId: string
  service: string
  name: string
  createdAt: TimeView
  createdBy: string
  expiresAt: TimeView
  revokedAt: TimeView | null
  state: 'active' | 'expired' | 'revoked'
  actions: ActionLink[]
}

export function tokenRow (info: ServiceTokenInfo, now: number, prefix: string, returnTo: string): TokenRow {
  const expired = Date.parse(info.expiresAt) <= now
  const id = domId('token', info.id)
  return {
    id,
    tokenId: info.id,
    service: info.service,
    name: info.name,
    createdAt: timeView(info.createdAt, now),
    createdBy: info.createdBy,
    expiresAt: timeView(info.expiresAt, now),
    revokedAt: maybeTime(info.revokedAt, now),
    state: info.revokedAt !== null ? 'revoked' : expired ? 'expired' : 'active',
    actions: info.revokedAt !== null || expired
      ? []
      : TOKEN_ACTIONS.filter(spec => spec.offer(info)).map(spec => ({
        id: spec.id,
        label: spec.label,
        tone: spec.tone,
        href: confirmHref(prefix, spec.id, info.id, returnTo),
        focusId: `${id}-${spec.id}`
      }))
  }
}
