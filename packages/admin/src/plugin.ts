import './fastify-types.js'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { WG_ERR_BACKEND_UNAVAILABLE, type Platform, type WaygateEngine } from '@waygate/core'
import { safeEqual } from './auth/passwords.js'
import { createLoginThrottle, type ThrottleOptions } from './auth/throttle.js'
import { createTokenSigner, randomSecret } from './auth/tokens.js'
import { authProblems, createCredentialCheck, createCredentialVersions, type AuthOption } from './auth/users.js'
import { registerDashboard } from './dashboard/index.js'
import type { DashboardFleet } from './dashboard/fleet.js'
import { createDashboardSession } from './dashboard/session.js'
import type { AdminContext, AdminExtension } from './context.js'
import { scopeProblem } from './scope.js'
import { crossSiteReason, nonJsonReason } from './cross-site.js'
import {
  WG_ERR_ADMIN_OPTIONS_INVALID, WG_ERR_AUTH_INVALID, WG_ERR_AUTH_REQUIRED, WG_ERR_AUTH_THROTTLED, WG_ERR_CONTENT_TYPE_INVALID,
  WG_ERR_AUTH_SCOPE, WG_ERR_CROSS_SITE_REFUSED, WG_ERR_NOT_FOUND
} from './errors.js'
import { registerApiRoutes } from './routes/api.js'
import { registerDeprecationRoutes } from './routes/deprecation.js'
import { registerAuthRoutes } from './routes/auth.js'
import { registerRateLimitRoutes } from './routes/rate-limits.js'
import { registerTrafficRoutes } from './routes/traffic.js'
import { registerWebhookRoutes } from './routes/webhooks.js'
import { ErrorBody } from './schemas.js'
import { DEFAULT_SSE_MAX_BUFFER_BYTES } from './sse.js'
import { createAdminValidatorCompiler } from './validation.js'

/** Options of the waygate admin plugin. */
export interface WaygateAdminOptions {
  /** The engine to control. Default: `fastify.waygate`, set by the waygate plugin. */
  engine?: WaygateEngine
  /** Where the admin is mounted. Default `/waygate`. Nothing under it is subject to waygate. */
  prefix?: string
  /**
   * Who may log in: `{ username, password }`, an array of them (plain or `hashPassword()` hashes),
   * `{ authenticate(username, password) }`, or `false` for an open admin (development only).
   */
  auth: AuthOption
  /** HMAC key for tokens. Default: `WAYGATE_SECRET_KEY`, else a random key (tokens die on restart). */
  secretKey?: string
  /** Lifetime of CLI, API and dashboard tokens, in seconds. Default 86400 (24 h). */
  tokenExpiry?: number
  /** Lifetime of SDK (service-to-service) tokens, in seconds. Default 2592000 (30 days). */
  sdkTokenExpiry?: number
  /** Failed-login throttle per client and user. Default 5 failures per 300 s. */
  loginThrottle?: ThrottleOptions
  /** Largest request body the admin accepts, in bytes. Default 65536. */
  bodyLimit?: number
  /** Serve the dashboard under the prefix. Default true; false leaves only the REST API. */
  dashboard?: boolean
  /** Always mark the dashboard's session cookie Secure. Default false: Secure when the request came over HTTPS. */
  cookieSecure?: boolean
  /**
   * Bytes an event-stream client may leave unread before it is dropped (it reconnects and resyncs).
   * Default 1048576 (1 MiB).
   */
  sseMaxBufferBytes?: number
  /**
   * Seconds a request to the admin may take to send its body, from the end of its headers; a slower
   * one has its connection closed. Default 10. Set Fastify's `requestTimeout` as well (see docs/auth.md).
   */
  bodyTimeout?: number
  /**
   * Endpoints to add inside the admin's context, with its authentication, error shape and
   * validation (the Waygate Server adds its SDK and services endpoints so).
   */
  extend?: AdminExtension
  /**
   * A Waygate Server's services: with it the dashboard gets a service selector on every page, the
   * service maintenance and rate limit cards, and the services (and tokens) pages.
   */
  fleet?: DashboardFleet
}

export type { AdminContext, AdminPrincipal, AdminExtension, AdminApi } from './context.js'

export const REVOKED_NAMESPACE = 'waygate:revoked-tokens'
const ACTOR_HEADER = 'x-waygate-actor'
const PLATFORMS_FROM_HEADER = new Set(['cli', 'dashboard', 'sdk', 'api'])

function positiveSeconds (value: unknown, name: string, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 366 * 86400) {
    problems.push(`${name}: expected whole seconds between 1 and 31622400`)
    return fallback
  }
  return value
}

function tokenOf (request: FastifyRequest): string | null {
  const header = request.headers['x-waygate-token']
  if (typeof header === 'string' && header.length > 0) return header
  const authorization = request.headers.authorization
  if (typeof authorization === 'string' && /^bearer /i.test(authorization)) return authorization.slice(7).trim()
  return null
}

async function adminPlugin (fastify: FastifyInstance, options: WaygateAdminOptions & { engine: WaygateEngine }): Promise<void> {
  const engine = options.engine
  const log = fastify.log.child({ name: 'waygate-admin' })
  const problems: string[] = authProblems(options.auth)
  const tokenExpiry = positiveSeconds(options.tokenExpiry, 'tokenExpiry', 86_400, problems)
  const sdkTokenExpiry = positiveSeconds(options.sdkTokenExpiry, 'sdkTokenExpiry', 30 * 86_400, problems)
  const bodyTimeoutMs = positiveSeconds(options.bodyTimeout, 'bodyTimeout', 10, problems) * 1000
  if (options.secretKey !== undefined && (typeof options.secretKey !== 'string' || options.secretKey.length < 16)) {
    problems.push('secretKey: expected a string of at least 16 characters')
  }
  for (const name of ['dashboard', 'cookieSecure'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') problems.push(`${name}: expected a boolean`)
  }
  const sseMaxBufferBytes = options.sseMaxBufferBytes ?? DEFAULT_SSE_MAX_BUFFER_BYTES
  if (typeof sseMaxBufferBytes !== 'number' || !Number.isInteger(sseMaxBufferBytes) || sseMaxBufferBytes < 1024 || sseMaxBufferBytes > 1024 ** 3) {
    problems.push('sseMaxBufferBytes: expected whole bytes between 1024 and 1073741824')
  }
  const fleet = options.fleet ?? null
  if (fleet !== null && (typeof fleet !== 'object' || typeof fleet.services !== 'function' || typeof fleet.heartbeatMs !== 'number')) {
    problems.push('fleet: expected the dashboard fleet of a Waygate Server')
  }
  if (problems.length > 0) throw new WG_ERR_ADMIN_OPTIONS_INVALID(problems.join('; '))

  let secret = options.secretKey ?? process.env.WAYGATE_SECRET_KEY
  if (secret === undefined || secret === '') {
    secret = randomSecret()
    log.warn('waygate admin: no secretKey or WAYGATE_SECRET_KEY configured; using a random key, so every token dies on restart')
  } else if (secret.length < 16) {
    throw new WG_ERR_ADMIN_OPTIONS_INVALID('WAYGATE_SECRET_KEY: expected at least 16 characters')
  }
  const signer = createTokenSigner(secret)
  const dashboard = options.dashboard !== false
  const session = createDashboardSession({ secret, prefix: fastify.prefix, cookieSecure: options.cookieSecure === true, enabled: dashboard })
  const checkCredentials = createCredentialCheck(options.auth)
  const credentialVersion = createCredentialVersions(options.auth, secret)
  if (checkCredentials === null) {
    log.warn('waygate admin: auth is false, so anyone who can reach the admin can change routes; never do this in production')
  }

  const ctx: AdminContext = {
    engine,
    bodyLimit: options.bodyLimit ?? 65_536,
    session,
    sseMaxBufferBytes,
    log,
    authEnabled: checkCredentials !== null,
    checkCredentials,
    throttle: createLoginThrottle(options.loginThrottle),
    clientThrottle: createLoginThrottle({
      maxAttempts: (options.loginThrottle?.maxAttempts ?? 5) * 4,
      windowSeconds: options.loginThrottle?.windowSeconds ?? 300
    }),
    replaced: new Set(options.extend?.replaces ?? []),
    fleet,
    issueToken (user, platform, service) {
      const version = credentialVersion(user)
      return signer.sign(user, platform, platform === 'sdk' ? sdkTokenExpiry : tokenExpiry, engine.now(), version ?? undefined, service)
    },
    issueServiceToken (service, ttlSeconds) {
      return signer.sign(`service:${service}`, 'sdk', ttlSeconds, engine.now(), undefined, service, 'service')
    },
    async revoke (claims) {
      await engine.backend.putRecord(REVOKED_NAMESPACE, claims.jti, { user: claims.sub }, { expiresAt: claims.exp * 1000 })
    },
    async authenticate (request) {
      // a header token wins; the dashboard's cookie is the fallback, and must pass the CSRF checks
      const headerToken = tokenOf(request)
      const cookieToken = headerToken === null ? session.tokenFrom(request) : null
      if (checkCredentials === null && cookieToken === null) {
        const actor = request.headers[ACTOR_HEADER]
        const platform = request.headers['x-waygate-platform']
        return {
          user: typeof actor === 'string' && /^[\x20-\x7e]{1,200}$/.test(actor) ? actor : 'anonymous',
          platform: (typeof platform === 'string' && PLATFORMS_FROM_HEADER.has(platform) ? platform : 'api') as Platform,
          claims: null
        }
      }
      const token = headerToken ?? cookieToken
      if (token === null) throw new WG_ERR_AUTH_REQUIRED('send a token in X-Waygate-Token or Authorization: Bearer (run: waygate login)')
      const claims = signer.verify(token, engine.now())
      if (claims === null) throw new WG_ERR_AUTH_REQUIRED('the token is invalid or expired (run: waygate login)')
      // bound to its user as configured now: a removed user, or a changed password, ends the token
      // an operator's service token belongs to no user: its revocation (below) is what ends it
      if (checkCredentials !== null && claims.kind !== 'service') {
        const expected = credentialVersion(claims.sub)
        if (expected !== undefined && (expected === null || claims.cv === undefined || !safeEqual(claims.cv, expected))) {
          throw new WG_ERR_AUTH_REQUIRED('the token\'s user was removed or changed password (run: waygate login)')
        }
      }
      try {
        if (await engine.backend.getRecord(REVOKED_NAMESPACE, claims.jti) !== null) {
          throw new WG_ERR_AUTH_REQUIRED(claims.kind === 'service' ? 'the service token was revoked (issue a new one: waygate token create)' : 'the token was revoked (run: waygate login)')
        }
      } catch (err) {
        if ((err as FastifyError).code === 'WG_ERR_AUTH_REQUIRED') throw err
        // revocations cannot be checked: reads may go on from the snapshot, changes may not
        if (request.method !== 'GET') throw new WG_ERR_BACKEND_UNAVAILABLE('cannot check token revocation', { cause: err })
        log.warn({ err }, 'waygate admin: token revocation check failed; allowing a read')
      }
      if (cookieToken !== null) session.check(request, claims)
      // a service's token may use only its own service's SDK endpoints (and see or end itself)
      if (claims.svc !== undefined) {
        const problem = scopeProblem(request, fastify.prefix, claims.svc)
        if (problem !== null) throw new WG_ERR_AUTH_SCOPE(problem)
      }
      return { user: claims.sub, platform: (claims.plat === 'api' ? 'api' : claims.plat) as Platform, claims }
    }
  }

  fastify.decorateRequest('waygatePrincipal', null)
  fastify.setValidatorCompiler(createAdminValidatorCompiler())

  fastify.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (err.validation !== undefined) {
      reply.code(400).send({ error: { code: 'WG_ERR_REQUEST_INVALID', message: `${err.validationContext ?? 'request'} ${err.message.replace(/^(body|querystring|params|headers)\/?/, '')}`.trim() } })
      return
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (err.code === 'WG_ERR_AUTH_THROTTLED') reply.header('retry-after', String((err as FastifyError & { retryAfter?: number }).retryAfter ?? 60))
    if (status >= 500 && err.code !== 'WG_ERR_BACKEND_UNAVAILABLE') {
      log.error({ err }, 'waygate admin: unexpected error')
      reply.code(500).send({ error: { code: 'WG_ERR_INTERNAL', message: 'Internal error; see the server log' } })
      return
    }
    const body: { code: string, message: string, matches?: string[], current?: unknown } = { code: err.code ?? 'WG_ERR_REQUEST_INVALID', message: err.message }
    const matches = (err as FastifyError & { matches?: unknown }).matches
    if (Array.isArray(matches)) body.matches = matches as string[]
    // a compare-and-set conflict tells what is stored now, so the caller can retry on it
    if (err.code === 'WG_ERR_CONFLICT' && 'current' in err) body.current = (err as FastifyError & { current: unknown }).current
    reply.code(status).send({ error: body })
  })

  // Fastify's requestTimeout is off by default, so a client sending its body a byte at a time would
  // hold a connection (and a login attempt) open for ever: the admin bounds its own bodies.
  const bodyTimers = new WeakMap<FastifyRequest, NodeJS.Timeout>()
  const stopBodyTimer = async (request: FastifyRequest): Promise<void> => {
    const timer = bodyTimers.get(request)
    if (timer !== undefined) clearTimeout(timer)
  }
  fastify.addHook('onRequest', async (request: FastifyRequest) => {
    const length = request.headers['content-length']
    if (request.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return
    const timer = setTimeout(() => {
      // an injected request (light-my-request) has a socket without destroy: nothing to close
      const socket = request.raw.socket as { destroy?: unknown } | null | undefined
      if (request.raw.complete || typeof socket?.destroy !== 'function') return
      log.info({ ip: request.ip, url: request.url.slice(0, 200), bodyTimeoutMs }, 'waygate admin: request body not complete in time; connection closed')
      request.raw.socket.destroy()
    }, bodyTimeoutMs)
    timer.unref()
    bodyTimers.set(request, timer)
  })
  // not on the response: one sent early (a 401, a 415) leaves the rest of the body still to come
  fastify.addHook('preValidation', stopBodyTimer)
  fastify.addHook('onRequestAbort', stopBodyTimer)

  // Whatever the auth mode, a page of another site must not change anything through the API, and
  // neither may a form (which any page can post anywhere): decided before authentication.
  const apiPrefix = `${fastify.prefix}/api/`
  fastify.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') return
    if (request.routeOptions.url?.startsWith(apiPrefix) !== true) return
    const site = crossSiteReason(request)
    if (site !== null) throw new WG_ERR_CROSS_SITE_REFUSED(site)
    const type = nonJsonReason(request)
    if (type !== null) throw new WG_ERR_CONTENT_TYPE_INVALID(type)
  })

  // the session cookie must be parsed before the API's authentication hook runs
  if (dashboard && !fastify.hasRequestDecorator('cookies')) await fastify.register(fastifyCookie)

  // the waygate plugin's metrics endpoint, when asked to, lets in only the callers the admin knows
  const metricsAuth = (fastify as unknown as { waygateMetricsAuth?: { authenticate: unknown } }).waygateMetricsAuth
  if (metricsAuth !== undefined && metricsAuth.authenticate === null) metricsAuth.authenticate = ctx.authenticate

  const api = fastify.withTypeProvider<TypeBoxTypeProvider>()
  registerAuthRoutes(api, ctx)
  // per-route traffic lives in the waygate plugin too
  if (fastify.hasDecorator('waygateTraffic')) registerTrafficRoutes(api, ctx, fastify.waygateTraffic)
  registerApiRoutes(api, ctx)
  registerDeprecationRoutes(api, ctx)
  registerWebhookRoutes(api, ctx)
  // rate limiting lives in the waygate plugin; its endpoints exist when the plugin is registered
  if (fastify.hasDecorator('waygateRateLimits')) registerRateLimitRoutes(api, ctx, fastify.waygateRateLimits)
  if (dashboard) await fastify.register(registerDashboard, { ctx })
  if (options.extend !== undefined) await options.extend.register(api, ctx)

  // Everything under the prefix is the admin's, so global maintenance never answers for it.
  fastify.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/*',
    config: { waygate: false },
    schema: { hide: true, response: { 404: ErrorBody } },
    handler: async (request) => { throw new WG_ERR_NOT_FOUND(request.url.split('?')[0]!) }
  })
}

/**
 * The waygate admin: REST API and dashboard under a prefix, default `/waygate`.
 *
 * @example
 * await app.register(waygate, { engine })
 * await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' } })
 */
export const waygateAdmin = fp(async function waygateAdminMount (fastify: FastifyInstance, options: WaygateAdminOptions) {
  const engine = options.engine ?? (fastify.hasDecorator('waygate') ? fastify.waygate : undefined)
  if (engine === undefined) {
    throw new WG_ERR_ADMIN_OPTIONS_INVALID('engine: pass { engine } or register @waygate/fastify before the admin')
  }
  if (options.auth === undefined) {
    throw new WG_ERR_ADMIN_OPTIONS_INVALID('auth: required ({ username, password }, users, an authenticator, or false for an open admin)')
  }
  const prefix = options.prefix ?? '/waygate'
  // '' mounts the admin at the root: a Waygate Server is nothing but the admin
  if (typeof prefix !== 'string' || (prefix !== '' && (!/^\/[A-Za-z0-9._~\-/]*$/.test(prefix) || prefix.endsWith('/')))) {
    throw new WG_ERR_ADMIN_OPTIONS_INVALID('prefix: expected a path such as /waygate (no trailing slash), or \'\' for the root')
  }
  // the waygate plugin answers 503 for unmatched paths under global maintenance: not under the admin's
  const ignored = (fastify as unknown as { waygateIgnorePrefixes?: unknown }).waygateIgnorePrefixes
  const mount = `${fastify.prefix}${prefix}/`
  if (Array.isArray(ignored) && !ignored.includes(mount)) ignored.push(mount)
  await fastify.register(adminPlugin, { ...options, engine, prefix, bodyLimit: options.bodyLimit ?? 65_536 } as never)
}, { fastify: '5.x', name: '@waygate/admin' })

export { WG_ERR_AUTH_INVALID, WG_ERR_AUTH_THROTTLED }
