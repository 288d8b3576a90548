import { createError } from '@fastify/error'
import type { CauseOption } from '../errors.js'

/** The Waygate Server refused the service's credentials (401) or their scope (403). */
export const WG_ERR_REMOTE_UNAUTHORIZED = createError<[string, CauseOption?]>(
  'WG_ERR_REMOTE_UNAUTHORIZED', 'The Waygate Server refused the service: %s', 401)

/** The Waygate Server answered a write with an error that retrying will not cure. */
export const WG_ERR_REMOTE_REJECTED = createError<[string, CauseOption?]>(
  'WG_ERR_REMOTE_REJECTED', 'The Waygate Server rejected the request: %s', 502)

/** The operation has no SDK endpoint: it is done on the server. */
export const WG_ERR_REMOTE_UNSUPPORTED = createError<[string]>(
  'WG_ERR_REMOTE_UNSUPPORTED', 'Not available through the Waygate Server SDK: %s', 501)
