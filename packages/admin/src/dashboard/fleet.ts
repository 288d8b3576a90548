import type { GlobalMaintenance, GlobalRateLimit, Platform, RateLimitPolicy } from '@waygate/core'

// What the dashboard needs of a Waygate Server to show and run its services. Declared here, by
// shape, so the admin imports nothing from the server: the server hands an object of this shape to
// `waygateAdmin({ fleet })`, and the embedded single-app dashboard runs without one.

/** Who changes something, as the audit log records it. */
export interface FleetActor {
  actor: string
  platform: Platform
}

/** One connected (or just registered) instance of a service. */
export interface FleetInstance {
  id: string
  service: string
  host: string | null
  version: string | null
  pid: number | null
  /** When its current stream opened (ISO), or null while it only registered. */
  connectedSince: string | null
  /** Its stream's last heartbeat, or its registration (ISO). */
  lastHeartbeat: string
  /** The revision its stream was last sent, or null. */
  revision: number | null
  /**
   * When its stream closed (ISO), or null while it is open or only registered. A closed instance
   * stays listed for {@link disconnectedKeepMs}, then goes. Absent from servers that predate it.
   */
  disconnectedAt?: string | null
}

/** A service as the server knows it. */
export interface FleetService {
  name: string
  /** Routes it registered. */
  routes: number
  maintenance: GlobalMaintenance
  rateLimit: GlobalRateLimit | null
  instances: FleetInstance[]
}

/** A service token's metadata: never the token itself. */
export interface ServiceTokenInfo {
  /** The token's id (its jti): stable, safe to show. */
  id: string
  service: string
  /** The operator's label, '' when none. */
  name: string
  createdAt: string
  expiresAt: string
  createdBy: string
  revokedAt: string | null
}

/** The server's service tokens (see the server's `tokens.ts`); each call audits itself. */
export interface DashboardServiceTokens {
  create(input: { service: string, name?: string, expiresIn?: number }, actor: string, platform?: Platform): Promise<{ token: string, info: ServiceTokenInfo }>
  /** Newest first; never the tokens themselves. */
  list(filter?: { service?: string }): Promise<ServiceTokenInfo[]>
  /** Revokes at once on every server instance; null for an unknown id. */
  revoke(id: string, actor: string, platform?: Platform): Promise<ServiceTokenInfo | null>
}

/** A service rate limit as the server's REST API takes it (`POST /api/services/:service/rate-limit`). */
export interface ServiceRateLimitInput {
  policy: Omit<RateLimitPolicy, 'key'>
  exemptRoutes?: string[]
  enabled?: boolean
}

/**
 * The fleet a Waygate Server lends its dashboard: every call is the one its REST API makes for
 * `/api/services/...`, so a change from the dashboard is stored, audited and sent to the services
 * exactly as one from the CLI.
 */
export interface DashboardFleet {
  /** Interval of the heartbeats on services' streams, ms: it sets when an instance counts as stale. */
  heartbeatMs: number
  /** Every service with its instances, as `GET /api/services` lists them. */
  services(): FleetService[]
  enableMaintenance(service: string, input: { reason?: string, exemptPaths?: string[], includeForceActive?: boolean }, who: FleetActor): Promise<GlobalMaintenance>
  disableMaintenance(service: string, who: FleetActor): Promise<GlobalMaintenance>
  setRateLimit(service: string, input: ServiceRateLimitInput, who: FleetActor): Promise<GlobalRateLimit>
  /** False when the service had none. */
  deleteRateLimit(service: string, who: FleetActor): Promise<boolean>
  /** The server's service tokens; without them the dashboard has no tokens page. */
  tokens?: DashboardServiceTokens
}

/** How long an instance whose stream closed stays listed as disconnected: 60 s or three heartbeats, the larger, at most 10 min. */
export function disconnectedKeepMs (heartbeatMs: number): number {
  return Math.min(Math.max(60_000, 3 * heartbeatMs), 600_000)
}

/** What an instance is, as the services page and `GET /api/services` (`state`) name it. */
export type FleetInstanceState = 'connected' | 'registered' | 'stale' | 'disconnected'

/**
 * Disconnected once its stream closed; stale when it is silent past {@link staleAfterMs}; else
 * connected, or registered while it has not opened a stream.
 */
export function instanceState (instance: Pick<FleetInstance, 'lastHeartbeat' | 'connectedSince' | 'disconnectedAt'>, now: number, heartbeatMs: number): FleetInstanceState {
  if (instance.disconnectedAt != null) return 'disconnected'
  if (isStale(instance, now, heartbeatMs)) return 'stale'
  return instance.connectedSince === null ? 'registered' : 'connected'
}

/** Longest silence before an instance is stale: two heartbeats, at most a minute. */
export function staleAfterMs (heartbeatMs: number): number {
  return Math.min(2 * heartbeatMs, 60_000)
}

/** An instance is stale when its last heartbeat is older than {@link staleAfterMs}, or its stream closed. */
export function isStale (instance: Pick<FleetInstance, 'lastHeartbeat' | 'disconnectedAt'>, now: number, heartbeatMs: number): boolean {
  if (instance.disconnectedAt != null) return true
  const at = Date.parse(instance.lastHeartbeat)
  return Number.isNaN(at) || now - at > staleAfterMs(heartbeatMs)
}
