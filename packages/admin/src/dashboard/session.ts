import { createHmac, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { WG_ERR_CSRF_INVALID } from '../errors.js'
import type { TokenClaims } from '../auth/tokens.js'
import { crossSiteReason } from '../cross-site.js'

/** Name of the cookie that carries a dashboard token. */
export const SESSION_COOKIE = 'waygate_session'
/** Header the dashboard's scripts send the CSRF token in. */
export const CSRF_HEADER = 'x-waygate-csrf'
/** Form field the dashboard's forms send the CSRF token in. */
export const CSRF_FIELD = '_csrf'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The dashboard session: a token in a cookie, and the CSRF token derived from it. */
export interface DashboardSession {
  /** Where the cookie is scoped: the admin prefix. */
  readonly path: string
  /** The token in the session cookie, or null. */
  tokenFrom(request: FastifyRequest): string | null
  /** The CSRF token of a session: an HMAC of the token id, so it dies with the token. */
  csrfToken(claims: TokenClaims): string
  /**
   * Checks a request authenticated by the cookie: the token must be a dashboard one, and a
   * request that may change something must come from the dashboard's own pages (a CSRF token,
   * and no cross-site Origin or Sec-Fetch-Site). Throws WG_ERR_CSRF_INVALID otherwise.
   */
  check(request: FastifyRequest, claims: TokenClaims): void
  /** Refuses a request a browser marks as coming from another site (login form). */
  checkOrigin(request: FastifyRequest): void
  /** Sets the session cookie, expiring with the token. */
  set(reply: FastifyReply, token: string, claims: TokenClaims, now: number): void
  clear(reply: FastifyReply): void
}

export interface SessionOptions {
  secret: string
  /** The admin prefix; the cookie is sent only below it. */
  prefix: string
  /** Always mark the cookie Secure; it is also Secure whenever the request came over HTTPS. */
  cookieSecure: boolean
  /** False when the dashboard is off: cookies then authenticate nothing. */
  enabled: boolean
}

function sameToken (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

export function createDashboardSession (options: SessionOptions): DashboardSession {
  const path = options.prefix === '' ? '/' : options.prefix
  const csrfToken = (claims: TokenClaims): string =>
    createHmac('sha256', options.secret).update(`waygate-csrf:${claims.jti}`).digest('base64url')

  function checkOrigin (request: FastifyRequest): void {
    const why = crossSiteReason(request)
    if (why !== null) throw new WG_ERR_CSRF_INVALID(`cross-site request refused (${why})`)
  }

  function secure (request: FastifyRequest): boolean {
    return options.cookieSecure || request.protocol === 'https'
  }

  return {
    path,
    tokenFrom (request) {
      if (!options.enabled) return null
      const value = request.cookies?.[SESSION_COOKIE]
      return typeof value === 'string' && value.length > 0 ? value : null
    },
    csrfToken,
    check (request, claims) {
      if (claims.plat !== 'dashboard') throw new WG_ERR_CSRF_INVALID('the session cookie does not hold a dashboard token')
      if (SAFE_METHODS.has(request.method)) return
      const header = request.headers[CSRF_HEADER]
      const field = (request.body as Record<string, unknown> | undefined | null)?.[CSRF_FIELD]
      const given = typeof header === 'string' ? header : typeof field === 'string' ? field : null
      if (given === null) throw new WG_ERR_CSRF_INVALID(`send the page's CSRF token in ${CSRF_HEADER} or the ${CSRF_FIELD} field`)
      if (!sameToken(given, csrfToken(claims))) throw new WG_ERR_CSRF_INVALID('the CSRF token does not match this session; reload the page')
      checkOrigin(request)
    },
    checkOrigin,
    set (reply, token, claims, now) {
      reply.setCookie(SESSION_COOKIE, token, {
        path,
        httpOnly: true,
        sameSite: 'strict',
        secure: secure(reply.request),
        maxAge: Math.max(0, claims.exp - Math.floor(now / 1000))
      })
    },
    clear (reply) {
      reply.setCookie(SESSION_COOKIE, '', { path, httpOnly: true, sameSite: 'strict', secure: secure(reply.request), maxAge: 0 })
    }
  }
}
