import type { Context } from './context.js'
import { CliError, UsageError } from './errors.js'
import { parseRouteArg, qualify, type RouteArg } from './parse.js'

/** Where the service in scope came from, as people name it (`--service`, `WAYGATE_SERVICE`, a `.waygate` path). */
export async function scopeSource (ctx: Context): Promise<string | null> {
  const s = await ctx.settings()
  if (s.serviceSource === 'flag') return '--service'
  if (s.serviceSource === 'env') return 'WAYGATE_SERVICE'
  if (s.serviceSource === 'dotfile') return s.dotfile
  return null
}

/**
 * Reads a ROUTE argument in the service scope: with a service in scope (`--service`,
 * WAYGATE_SERVICE, `.waygate`), `GET:/x` and `/x` address that service's route
 * (`service:GET:/x`). A key that names a service is used as given; when it names another service
 * than `--service` on the same command line, that contradiction is a usage error, and when the
 * scope comes from the environment or `.waygate`, a note on stderr says which one is used.
 */
export async function scopedRoute (ctx: Context, text: string, what = 'route'): Promise<RouteArg> {
  const route = parseRouteArg(text, what)
  const { service } = await ctx.settings()
  if (service === null) return route
  if (route.service === null) return qualify(route, service)
  if (route.service !== service) {
    const source = await scopeSource(ctx)
    if (source === '--service') {
      throw new UsageError(`${what} ${route.key} names service ${route.service}, but --service is ${service}`,
        `drop --service, or give the route without its service: ${route.key.slice(route.service.length + 1)}`)
    }
    ctx.note(`note: ${route.key} names service ${route.service}; using it, not ${service} from ${source}`)
  }
  return route
}

/**
 * A server's "no such route" for a key the scope qualified says which service was looked in, and
 * how to list its routes.
 */
export function notInService (err: unknown, route: RouteArg, service: string | null): unknown {
  if (service === null || route.service !== service || !(err instanceof CliError) || err.code !== 'WG_ERR_ROUTE_NOT_FOUND') return err
  const plain = route.key.slice(service.length + 1)
  return new CliError('WG_ERR_CLI_NOT_IN_SERVICE', `${plain} is not a route of service ${service}`, {
    hint: `list its routes: waygate status --service ${service}`,
    status: err.status,
    cause: err
  })
}
