import { createError } from '@fastify/error'
import { WG_ERR_CONFLICT } from '@waygate/core'

/** `createWaygateServer()` was given options it cannot use. */
export const WG_ERR_SERVER_OPTIONS_INVALID = createError<[string]>('WG_ERR_SERVER_OPTIONS_INVALID', 'Invalid waygate server options: %s', 500)

/** Throws core's WG_ERR_CONFLICT (409) carrying what is stored now, as the engine's compare-and-set does. */
export function conflict (what: string, current: unknown): never {
  throw Object.assign(new WG_ERR_CONFLICT(what), { current })
}

/** No service token has this id (it never existed, or its record expired long after the token). */
export const WG_ERR_TOKEN_NOT_FOUND = createError<[string]>('WG_ERR_TOKEN_NOT_FOUND', 'No service token %s', 404)
