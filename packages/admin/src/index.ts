export { waygateAdmin, REVOKED_NAMESPACE } from './plugin.js'
export type { WaygateAdminOptions } from './plugin.js'
export type { AdminPrincipal, AdminContext, AdminExtension, AdminApi } from './context.js'
export { disconnectedKeepMs, instanceState, isStale, staleAfterMs } from './dashboard/fleet.js'
export type { DashboardFleet, DashboardServiceTokens, FleetActor, FleetInstance, FleetInstanceState, FleetService, ServiceRateLimitInput, ServiceTokenInfo } from './dashboard/fleet.js'
export { hashPassword, verifyPassword } from './auth/passwords.js'
export type { AdminUser, Authenticator, AuthOption } from './auth/users.js'
export type { TokenPlatform, TokenClaims } from './auth/tokens.js'
export type { ThrottleOptions } from './auth/throttle.js'
export { decodeKeyParam, resolveWhen } from './params.js'
export { ADMIN_VERSION } from './version.js'
export { createSseStream, DEFAULT_SSE_MAX_BUFFER_BYTES } from './sse.js'
export type { SseStream, SseStreamOptions } from './sse.js'
export {
  WG_ERR_AUTH_REQUIRED,
  WG_ERR_AUTH_INVALID,
  WG_ERR_AUTH_THROTTLED,
  WG_ERR_REQUEST_INVALID,
  WG_ERR_ADMIN_OPTIONS_INVALID,
  WG_ERR_NOT_FOUND,
  WG_ERR_CSRF_INVALID,
  WG_ERR_AUTH_SCOPE
} from './errors.js'
