import { createError } from '@fastify/error'

/** Pass `{ cause }` as the last argument to wrap an underlying error. */
export interface CauseOption { cause: unknown }

/** A route key is not `METHOD:/pattern` or `/pattern`. */
export const WG_ERR_ROUTE_KEY_INVALID = createError<[string, string, CauseOption?]>(
  'WG_ERR_ROUTE_KEY_INVALID', 'Invalid route key "%s": %s', 400)

/** No registered route matches the key. */
export const WG_ERR_ROUTE_NOT_FOUND = createError<[string, CauseOption?]>(
  'WG_ERR_ROUTE_NOT_FOUND', 'No route is registered as "%s"', 404)

/** A key matches several routes (methods of a bare path, or services) and the caller did not ask for all of them. */
export const WG_ERR_ROUTE_AMBIGUOUS = createError<[string, string, CauseOption?]>(
  'WG_ERR_ROUTE_AMBIGUOUS', 'Route "%s" matches several routes (%s); name one or pass all: true', 409)

/** The route is force-active: its state cannot be changed at runtime. */
export const WG_ERR_ROUTE_FORCE_ACTIVE = createError<[string, CauseOption?]>(
  'WG_ERR_ROUTE_FORCE_ACTIVE', 'Route "%s" is force-active and cannot be changed', 409)

/** A mutation was called with invalid input. */
export const WG_ERR_INPUT_INVALID = createError<[string, CauseOption?]>(
  'WG_ERR_INPUT_INVALID', 'Invalid input: %s', 400)

/** Options given to a factory are invalid. */
export const WG_ERR_OPTIONS_INVALID = createError<[string, CauseOption?]>(
  'WG_ERR_OPTIONS_INVALID', 'Invalid waygate options: %s', 500)

/** Configuration read from the environment or a .waygate file is invalid. */
export const WG_ERR_CONFIG_INVALID = createError<[string, CauseOption?]>(
  'WG_ERR_CONFIG_INVALID', 'Invalid waygate configuration: %s', 500)

/** The backend could not complete a read or write. */
export const WG_ERR_BACKEND_UNAVAILABLE = createError<[string, CauseOption?]>(
  'WG_ERR_BACKEND_UNAVAILABLE', 'Waygate backend unavailable: %s', 503)

/** The engine was used after close(). */
export const WG_ERR_ENGINE_CLOSED = createError(
  'WG_ERR_ENGINE_CLOSED', 'The waygate engine is closed', 500)

/**
 * A compare-and-set write found the stored value changed since its caller read it. The error's
 * `current` property holds the stored value (null when absent), so the caller can retry on it.
 */
export const WG_ERR_CONFLICT = createError<[string, CauseOption?]>(
  'WG_ERR_CONFLICT', 'Conflict: %s changed since it was read; retry on the current value', 409)
