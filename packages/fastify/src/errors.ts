import { createError } from '@fastify/error'

/** One or more routes carry an invalid `config.waygate`; `ready()` fails with every problem listed. */
export const WG_ERR_ROUTE_CONFIG_INVALID = createError<[string]>(
  'WG_ERR_ROUTE_CONFIG_INVALID', 'Invalid waygate route config: %s', 500)

/** The plugin options are invalid. */
export const WG_ERR_PLUGIN_OPTIONS_INVALID = createError<[string]>(
  'WG_ERR_PLUGIN_OPTIONS_INVALID', 'Invalid waygate plugin options: %s', 500)

/** Routes were declared before the plugin was registered (with `unmanagedRoutes: 'error'`). */
export const WG_ERR_ROUTES_BEFORE_PLUGIN = createError<[string]>(
  'WG_ERR_ROUTES_BEFORE_PLUGIN', 'Routes were declared before waygate was registered and are not managed: %s', 500)
