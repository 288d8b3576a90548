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

/** Longest silence before an instance is stale: two heartbeats, at most a minute. */
export function staleAfterMs (heartbeatMs: number): number {
  return Math.min(2 * heartbeatMs, 60_000)
}

/** An instance is stale when its last heartbeat is older than {@link staleAfterMs}. */
export function isStale (instance: Pick<FleetInstance, 'lastHeartbeat'>, now: number, heartbeatMs: number): boolean {
  const at = Date.parse(instance.lastHeartbeat)
  return Number.isNaN(at) || now - at > staleAfterMs(heartbeatMs)
}
