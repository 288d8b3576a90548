import type { WaygateRouteConfig } from './plugin.js'

/**
 * Returns its argument unchanged, so that TypeScript checks a route's `config.waygate` exactly:
 * a misspelt option (`forceActiv`, `maintenance: { reasn }`) is a compile error.
 *
 * Written inline, `config: { waygate: { … } }` is not checked that strictly: Fastify infers each
 * route's config type from the object itself (its `ContextConfig` generic) and merges it with
 * `WaygateRouteConfig`, so an unknown key is accepted by `tsc` and only `app.ready()` rejects it
 * (`WG_ERR_ROUTE_CONFIG_INVALID`). The parameter here is not generic, so excess-property checks
 * apply. `{ … } satisfies WaygateRouteConfig` does the same without a function call.
 *
 * @example
 * app.get('/payments', { config: { waygate: waygateConfig({ maintenance: { reason: 'DB migration' } }) } }, handler)
 */
export function waygateConfig (config: WaygateRouteConfig): WaygateRouteConfig {
  return config
}
