import { createError } from '@fastify/error'
import type { CauseOption } from '../errors.js'

/**
 * A rate limit declaration is invalid: a limit string that does not parse, a policy field out of
 * range, an exempt IP that is neither an address nor a CIDR. Thrown at startup for route config
 * and answered as 400 for API input; the message names every bad value.
 */
export const WG_ERR_RATE_LIMIT_INVALID = createError<[string, CauseOption?]>(
  'WG_ERR_RATE_LIMIT_INVALID', 'Invalid rate limit: %s', 400)
