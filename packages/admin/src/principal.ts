import type { FastifyRequest } from 'fastify'
import { WG_ERR_AUTH_REQUIRED } from './errors.js'
import type { AdminPrincipal } from './context.js'

/** The authenticated caller of an API request; a 401, never a crash, when there is none. */
export function principalOf (request: FastifyRequest): AdminPrincipal {
  const principal = request.waygatePrincipal
  if (principal === null) throw new WG_ERR_AUTH_REQUIRED('no credentials were checked for this request')
  return principal
}
