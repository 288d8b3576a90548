import type { FastifyRequest } from 'fastify'
import { WG_ERR_AUTH_INVALID, WG_ERR_AUTH_THROTTLED } from '../errors.js'
import type { AdminContext } from '../context.js'
import type { TokenPlatform } from '../auth/tokens.js'

/**
 * Checks a username and password, for the login form and `POST /api/auth/login` alike (they share
 * the throttle counters), and returns the user to issue a token for.
 */
export async function checkLogin (ctx: AdminContext, request: FastifyRequest, username: string, password: string,
  platform: TokenPlatform = 'dashboard'): Promise<string> {
  if (ctx.checkCredentials === null) return username
  const now = ctx.engine.now()
  const userKey = `${request.ip}|${username}`
  const clientKey = `${request.ip}|*`
  const wait = Math.max(ctx.throttle.blockedFor(userKey, now), ctx.clientThrottle.blockedFor(clientKey, now))
  if (wait > 0) throw Object.assign(new WG_ERR_AUTH_THROTTLED(wait), { retryAfter: wait })
  const user = await ctx.checkCredentials(username, password)
  if (user === null) {
    ctx.throttle.fail(userKey, now)
    ctx.clientThrottle.fail(clientKey, now)
    request.log.info({ user: username, ip: request.ip, platform }, 'waygate admin: failed login')
    throw new WG_ERR_AUTH_INVALID()
  }
  ctx.throttle.reset(userKey)
  request.log.info({ user, platform }, 'waygate admin: login')
  return user
}
