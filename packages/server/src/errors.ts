import createError from '@fastify/error'

/** `createWaygateServer()` was given options it cannot use. */
export const WG_ERR_SERVER_OPTIONS_INVALID = createError<[string]>('WG_ERR_SERVER_OPTIONS_INVALID', 'Invalid waygate server options: %s', 500)

/** A compare-and-set write was made on a value that changed since: the answer carries `current`. */
export const WG_ERR_CONFLICT = createError<[string]>('WG_ERR_CONFLICT', 'Conflict: %s', 409)

/** A service name in a path or body is not a valid one. */
export const WG_ERR_SERVICE_INVALID = createError<[string]>('WG_ERR_SERVICE_INVALID', 'Invalid service: %s', 400)

/** Throws a conflict carrying what is stored now. */
export function conflict (what: string, current: unknown): never {
  throw Object.assign(new WG_ERR_CONFLICT(`${what} changed since it was read; retry on the current value`), { current })
}
