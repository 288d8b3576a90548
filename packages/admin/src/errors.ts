import { createError } from '@fastify/error'

/** No valid credentials: missing, malformed, expired or revoked token. */
export const WG_ERR_AUTH_REQUIRED = createError<[string]>('WG_ERR_AUTH_REQUIRED', 'Authentication required: %s', 401)

/** Wrong username or password. */
export const WG_ERR_AUTH_INVALID = createError('WG_ERR_AUTH_INVALID', 'Invalid username or password', 401)

/** Too many failed logins from this client for this user. */
export const WG_ERR_AUTH_THROTTLED = createError<[number]>('WG_ERR_AUTH_THROTTLED', 'Too many failed logins; retry in %d seconds', 429)

/** The request's input failed validation. */
export const WG_ERR_REQUEST_INVALID = createError<[string]>('WG_ERR_REQUEST_INVALID', 'Invalid request: %s', 400)

/** The admin plugin's options are invalid. */
export const WG_ERR_ADMIN_OPTIONS_INVALID = createError<[string]>('WG_ERR_ADMIN_OPTIONS_INVALID', 'Invalid waygate admin options: %s', 500)

/** Nothing is served at this admin path. */
export const WG_ERR_NOT_FOUND = createError<[string]>('WG_ERR_NOT_FOUND', 'Nothing here: %s', 404)

/** A cookie-authenticated request that may change state came without this session's CSRF token, or from another site. */
export const WG_ERR_CSRF_INVALID = createError<[string]>('WG_ERR_CSRF_INVALID', 'Request refused: %s', 403)

/** A request that may change state came from another site (by its Origin or Sec-Fetch-Site header). */
export const WG_ERR_CROSS_SITE_REFUSED = createError<[string]>('WG_ERR_CROSS_SITE_REFUSED', 'Cross-site request refused: %s', 403)

/** A request that may change state carried a body, or a content type, other than JSON. */
export const WG_ERR_CONTENT_TYPE_INVALID = createError<[string]>('WG_ERR_CONTENT_TYPE_INVALID', 'Unsupported content type: %s', 415)

/** A token scoped to one service (claim `svc`) was used outside that service's SDK endpoints. */
export const WG_ERR_AUTH_SCOPE = createError<[string]>('WG_ERR_AUTH_SCOPE', 'Not allowed for this token: %s', 403)
