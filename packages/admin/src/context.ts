import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Platform, WaygateEngine } from '@waygate/core'
import type { createLoginThrottle } from './auth/throttle.js'
import type { TokenClaims, TokenPlatform } from './auth/tokens.js'
import type { DashboardFleet } from './dashboard/fleet.js'
import type { DashboardSession } from './dashboard/session.js'

/** Who is calling, as the admin resolved it. */
export interface AdminPrincipal {
  user: string
  platform: Platform
  /** Null when the admin runs without auth. */
  claims: TokenClaims | null
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the waygate admin on its own routes once the caller is authenticated. */
    waygatePrincipal: AdminPrincipal | null
  }
}

/** The admin's encapsulated Fastify instance, with the TypeBox type provider. */
export type AdminApi = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

/** What route modules share. */
export interface AdminContext {
  engine: WaygateEngine
  authEnabled: boolean
  /** Checks a username and password; null when the admin is open. */
  checkCredentials: ((username: string, password: string) => Promise<string | null>) | null
  /** Issues a token; with `service`, one scoped to that service's SDK endpoints (claim `svc`). */
  issueToken(user: string, platform: TokenPlatform, service?: string): { token: string, claims: TokenClaims }
  /**
   * Issues a service token (claim `kind: 'service'`, platform sdk) for `service`, valid `ttlSeconds`:
   * bound to no user's password, so it lives until it expires or is revoked.
   */
  issueServiceToken(service: string, ttlSeconds: number): { token: string, claims: TokenClaims }
  revoke(claims: TokenClaims): Promise<void>
  /** Failed logins per client and user. */
  throttle: ReturnType<typeof createLoginThrottle>
  /** Failed logins per client, whatever the user (four times the per-user allowance). */
  clientThrottle: ReturnType<typeof createLoginThrottle>
  /** Resolves the caller of a request, or throws a 401 (a 403 for a scoped token out of its scope). */
  authenticate(request: FastifyRequest): Promise<AdminPrincipal>
  /** Largest accepted body, bytes. */
  bodyLimit: number
  /** The dashboard's session cookie and CSRF tokens. */
  session: DashboardSession
  /** Bound on what one event-stream client may leave unread, bytes. */
  sseMaxBufferBytes: number
  log: FastifyBaseLogger
  /** Endpoints of the admin's own API an extension serves instead (`GET /api/services`). */
  replaced: ReadonlySet<string>
  /** A Waygate Server's services, for the dashboard's service pages; null in an app's own admin. */
  fleet: DashboardFleet | null
}

/**
 * Endpoints added inside the admin's context, so they get its authentication (every route with
 * `/api/` in its pattern but login needs a caller, in `request.waygatePrincipal`), its error shape
 * and its strict TypeBox validation. The Waygate Server adds its SDK and services endpoints so.
 */
export interface AdminExtension {
  /** Registers the extension's routes, after the admin's own. */
  register(api: AdminApi, ctx: AdminContext): void | Promise<void>
  /** Endpoints of the admin's own API the extension serves instead, as `METHOD /path`: only `GET /api/services` for now. */
  replaces?: string[]
}
