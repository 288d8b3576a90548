import type { Command } from 'commander'
import { encodeKey } from '../client.js'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { routeDetails, routesTable, type GlobalMaintenance, type RouteState } from '../format.js'
import { endOption, parseCount, parseEnvName, parseWhen, routeMatches, splitKey, type RouteArg } from '../parse.js'
import { confirm } from '../prompt.js'
import { printable } from '../safe-text.js'
import { notInService, scopedRoute } from '../scope.js'

interface RoutesReply { routes: RouteState[] }

/**
 * The error for a key that matches several routes. Matches in several services (a key given
 * without a service to a Waygate Server) say how to pick one; matches in one, how to name a method.
 */
export function ambiguous (route: RouteArg, err: CliError, matches: string[]): CliError {
  const services = [...new Set(matches.map(m => splitKey(m)?.service ?? null))]
  if (services.length > 1) {
    const named = services.filter((s): s is string => s !== null)
    return new CliError(err.code, `${route.key} matches routes of ${services.length} services: ${matches.join(', ')}`, {
      hint: `pick one with --service ${named[0] ?? 'NAME'} (or WAYGATE_SERVICE), or name it in full, e.g. ${matches[0]}; --all changes all ${matches.length}`,
      status: err.status,
      matches
    })
  }
  return new CliError(err.code, `${route.key} matches several routes: ${matches.join(', ')}`, {
    hint: `pass --all to apply it to all of them, or name one, e.g. ${matches[0]}`,
    status: err.status,
    matches
  })
}

/**
 * Sends a change for `route`. A key matching several routes is applied to all of them with
 * `--all`, or after a confirmation on a terminal when they are methods of one service, and
 * otherwise refused with the list of matches. A route the service in scope does not have is
 * reported as such.
 */
export async function mutate<T> (ctx: Context, route: RouteArg, all: boolean,
  send: (all: boolean) => Promise<T>): Promise<T> {
  const { service } = await ctx.settings()
  try {
    return await send(all)
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'WG_ERR_ROUTE_AMBIGUOUS' || err.matches === undefined) throw notInService(err, route, service)
    const matches = err.matches
    const services = new Set(matches.map(m => splitKey(m)?.service ?? null))
    // one service at a time: across services, the operator picks the service instead
    if (ctx.interactive && services.size === 1) {
      ctx.io.stderr.write(`${printable(route.key)} matches ${matches.length} routes:\n${matches.map(m => `  ${printable(m)}\n`).join('')}`)
      if (await confirm(ctx.io, `Apply to all ${matches.length}?`)) return send(true)
      throw new CliError('WG_ERR_CLI_CANCELLED', 'cancelled: nothing changed')
    }
    throw ambiguous(route, err, matches)
  }
}

function printRoutes (ctx: Context, routes: RouteState[]): void {
  if (ctx.json) ctx.printJson({ routes })
  else ctx.print(routes.length === 0 ? 'nothing changed' : routesTable(routes, ctx.style, ctx.now()))
}

async function post (ctx: Context, key: string, action: string, body: Record<string, unknown>): Promise<RouteState[]> {
  const client = await ctx.client()
  return (await client.request<RoutesReply>('POST', `/api/routes/${encodeKey(key)}/${action}`, { body })).data.routes
}

async function remove (ctx: Context, key: string, action: string, all: boolean): Promise<RouteState[]> {
  const client = await ctx.client()
  return (await client.request<RoutesReply>('DELETE', `/api/routes/${encodeKey(key)}/${action}`, { query: all ? { all: true } : undefined })).data.routes
}

/** Drops undefined fields and `all: false`, so the body says only what the operator asked. */
function body (fields: Record<string, unknown>, all: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) out[name] = value
  if (all) out.all = true
  return out
}

const ALL_HELP = 'when the route matches several (methods of a bare /path, or services when none is in scope): apply to all of them'

/** status, enable, disable, maintenance, schedule, env set|clear, deprecate. */
export function registerRouteCommands (program: Command, action: Action): void {
  program.command('status')
    .description('list route states, or show one route')
    .argument('[route]', 'METHOD:/path, or /path for every method on it')
    .option('--page <n>', 'page of the list (with --per-page)')
    .option('--per-page <n>', 'routes per page (at most 500)')
    .addHelpText('after', `
Examples:
  waygate status
  waygate status GET:/payments
  waygate status --page 2 --per-page 20
  waygate status --service payments-service        # one service of a Waygate Server
  waygate status --json | jq -r '.[] | select(.status == "disabled") | .key'`)
    .action(action(async (ctx, routeText: string | undefined, options: { page?: string, perPage?: string }) => {
      const page = options.page === undefined ? undefined : parseCount(options.page, '--page')
      const perPage = options.perPage === undefined ? undefined : parseCount(options.perPage, '--per-page', 500)
      if (routeText !== undefined) {
        if (page !== undefined || perPage !== undefined) throw new UsageError('--page and --per-page list routes; they do not go with a ROUTE')
        return showRoute(ctx, await scopedRoute(ctx, routeText))
      }
      const { service } = await ctx.settings()
      const client = await ctx.client()
      const [list, global, own] = await Promise.all([
        client.request<RouteState[]>('GET', '/api/routes', { query: { service: service ?? undefined, page, perPage } }),
        ctx.json ? null : client.request<GlobalMaintenance>('GET', '/api/global'),
        ctx.json || service === null ? null : serviceMaintenance(ctx, service)
      ])
      if (ctx.json) {
        ctx.printJson(list.data)
        return
      }
      const now = ctx.now()
      if (global?.data.enabled === true) {
        const g = global.data
        ctx.print(ctx.style.yellow(`GLOBAL MAINTENANCE ON${g.reason === '' ? '' : `: ${g.reason}`}`) +
          (g.exemptPaths.length > 0 ? ` (exempt: ${g.exemptPaths.join(', ')})` : '') + '\n')
      }
      if (own?.enabled === true) {
        ctx.print(ctx.style.yellow(`SERVICE MAINTENANCE ON (${service})${own.reason === '' ? '' : `: ${own.reason}`}`) +
          (own.exemptPaths.length > 0 ? ` (exempt: ${own.exemptPaths.join(', ')})` : '') + '\n')
      }
      const total = Number(list.headers.get('x-total-count') ?? list.data.length)
      if (list.data.length === 0) {
        ctx.print(total > 0 ? `no routes on this page (${total} in all)` : service === null ? 'no routes registered' : `no routes for service ${service}`)
        return
      }
      ctx.print(routesTable(list.data, ctx.style, now))
      const pages = list.headers.get('x-total-pages')
      if (pages !== null) {
        const current = Number(list.headers.get('x-page') ?? 1)
        const more = current < Number(pages) ? `; next: waygate status --page ${current + 1}${perPage === undefined ? '' : ` --per-page ${perPage}`}` : ''
        ctx.print(ctx.style.dim(`\npage ${current} of ${pages}, ${total} route${total === 1 ? '' : 's'}${more}`))
      } else {
        ctx.print(ctx.style.dim(`\n${total} route${total === 1 ? '' : 's'}`))
      }
    }))

  program.command('enable')
    .description('make a route active again (ends maintenance, disablement, env gate, deprecation)')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExample:\n  waygate enable GET:/payments')
    .action(action(async (ctx, routeText: string, options: { all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      printRoutes(ctx, await mutate(ctx, route, options.all === true, all => post(ctx, route.key, 'enable', body({}, all))))
    }))

  program.command('disable')
    .description('disable a route: it answers 503 ROUTE_DISABLED, for good or until a time')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--reason <text>', 'why; shown to callers and kept in the audit log')
    .option('--until <when>', 'active again at this time: a duration (2h, 30m, 1d) or an ISO date-time')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExamples:\n  waygate disable GET:/payments --reason hotfix\n  waygate disable GET:/payments --reason "hotfix" --until 2h')
    .action(action(async (ctx, routeText: string, options: { reason?: string, until?: string, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const until = options.until === undefined ? undefined : parseWhen(options.until, '--until')
      printRoutes(ctx, await mutate(ctx, route, options.all === true,
        all => post(ctx, route.key, 'disable', body({ reason: options.reason, until }, all))))
    }))

  program.command('maintenance')
    .description('put a route in maintenance: it answers 503 MAINTENANCE_MODE, now or within a window')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--reason <text>', 'why; shown to callers and kept in the audit log')
    .option('--start <when>', 'window start: an ISO date-time or a duration from now (default: now)')
    .option('--end <when>', 'window end, after which the route is active again (default: until enabled)')
    .option('--for <duration>', 'active again after this long (15m, 2h), from now: --end as a duration')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExamples:\n  waygate maintenance GET:/orders --reason "stock sync"\n  waygate maintenance POST:/orders --reason upgrade --for 10m')
    .action(action(async (ctx, routeText: string, options: { reason?: string, start?: string, end?: string, for?: string, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const start = options.start === undefined ? undefined : parseWhen(options.start, '--start')
      // a duration is counted from now, not from --start
      if (options.for !== undefined && options.start !== undefined) throw new UsageError('--for counts from now: with --start, give --end')
      const end = endOption(options)
      printRoutes(ctx, await mutate(ctx, route, options.all === true,
        all => post(ctx, route.key, 'maintenance', body({ reason: options.reason, start, end }, all))))
    }))

  program.command('schedule')
    .description('schedule a maintenance window (the route stays as it is until the start), or cancel one')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--start <when>', 'window start: an ISO date-time or a duration from now')
    .option('--end <when>', 'window end: an ISO date-time or a duration from now')
    .option('--reason <text>', 'why; shown to callers during the window')
    .option('--cancel', 'cancel the scheduled window instead')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExamples:\n  waygate schedule GET:/reports --start 2030-01-05T02:00:00Z --end 2030-01-05T04:00:00Z --reason "weekly rebuild"\n  waygate schedule GET:/reports --start 1h --end 3h\n  waygate schedule GET:/reports --cancel')
    .action(action(async (ctx, routeText: string, options: { start?: string, end?: string, reason?: string, cancel?: boolean, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      if (options.cancel === true) {
        if (options.start !== undefined || options.end !== undefined || options.reason !== undefined) {
          throw new UsageError('--cancel takes no --start, --end or --reason')
        }
        printRoutes(ctx, await mutate(ctx, route, options.all === true, all => remove(ctx, route.key, 'schedule', all)))
        return
      }
      if (options.start === undefined || options.end === undefined) {
        throw new UsageError('schedule needs --start and --end (or --cancel)', 'e.g. waygate schedule GET:/reports --start 1h --end 3h')
      }
      const start = parseWhen(options.start, '--start')
      const end = parseWhen(options.end, '--end')
      printRoutes(ctx, await mutate(ctx, route, options.all === true,
        all => post(ctx, route.key, 'schedule', body({ start, end, reason: options.reason }, all))))
    }))

  const env = program.command('env').description('gate a route to some environments (404 elsewhere)')

  env.command('set')
    .description('make a route answer only in the given environments')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .argument('<env...>', 'environment names, e.g. dev staging')
    .option('--reason <text>', 'why; kept in the audit log')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExample:\n  waygate env set GET:/debug dev staging')
    .action(action(async (ctx, routeText: string, envs: string[], options: { reason?: string, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const names = envs.map(parseEnvName)
      printRoutes(ctx, await mutate(ctx, route, options.all === true,
        all => post(ctx, route.key, 'env', body({ envs: names, reason: options.reason }, all))))
    }))

  env.command('clear')
    .description('remove the environment gate: the route becomes active')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExample:\n  waygate env clear GET:/debug')
    .action(action(async (ctx, routeText: string, options: { all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      printRoutes(ctx, await mutate(ctx, route, options.all === true, all => remove(ctx, route.key, 'env', all)))
    }))

  program.command('deprecate')
    .description('deprecate a route: it still answers, with Deprecation, Sunset and Link headers')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--sunset <when>', 'when it goes away: an ISO date-time or a duration from now')
    .option('--successor <url>', 'URL or path of the replacement')
    .option('--reason <text>', 'why; kept in the audit log')
    .option('--gone-after-sunset', 'answer 410 Gone (ROUTE_SUNSET) once the sunset has passed (needs --sunset)')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExamples:\n  waygate deprecate GET:/v1/users --sunset 2030-01-01 --successor /v2/users\n  waygate deprecate GET:/v1/users --sunset 2030-01-01 --successor /v2/users --gone-after-sunset')
    .action(action(async (ctx, routeText: string, options: { sunset?: string, successor?: string, reason?: string, goneAfterSunset?: boolean, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const sunset = options.sunset === undefined ? undefined : parseWhen(options.sunset, '--sunset')
      if (options.goneAfterSunset === true && sunset === undefined) throw new UsageError('--gone-after-sunset needs --sunset')
      const afterSunset = options.goneAfterSunset === true ? 'gone' : undefined
      printRoutes(ctx, await mutate(ctx, route, options.all === true,
        all => post(ctx, route.key, 'deprecate', body({ sunset, successor: options.successor, reason: options.reason, afterSunset }, all))))
    }))
}

/**
 * `waygate status ROUTE`: a method key is one route (an object in --json); a bare path, all on it
 * (an array), in the service the key names or the scope gives, else in every service.
 */
async function showRoute (ctx: Context, route: RouteArg): Promise<void> {
  const { service } = await ctx.settings()
  const client = await ctx.client()
  let routes: RouteState[]
  if (route.method !== null) {
    try {
      routes = [(await client.request<RouteState>('GET', `/api/routes/${encodeKey(route.key)}`)).data]
    } catch (err) {
      if (err instanceof CliError && err.code === 'WG_ERR_ROUTE_AMBIGUOUS' && err.matches !== undefined) throw ambiguous(route, err, err.matches)
      throw notInService(err, route, service)
    }
  } else {
    const all = (await client.request<RouteState[]>('GET', '/api/routes', { query: { service: route.service ?? undefined } })).data
    routes = all.filter(r => routeMatches(route, r))
    if (routes.length === 0) {
      if (route.service !== null && route.service === service) throw notInService(new CliError('WG_ERR_ROUTE_NOT_FOUND', ''), route, service)
      throw new CliError('WG_ERR_ROUTE_NOT_FOUND', `no route is registered as ${route.key}`, {
        hint: 'list the routes with: waygate status'
      })
    }
  }
  if (ctx.json) {
    ctx.printJson(route.method === null ? routes : routes[0])
    return
  }
  ctx.print(routes.map(r => routeDetails(r, ctx.style, ctx.now())).join('\n\n'))
}

/** The maintenance of one service on a Waygate Server; null where there is none to read (an embedded admin). */
export async function serviceMaintenance (ctx: Context, service: string): Promise<GlobalMaintenance | null> {
  const client = await ctx.client()
  try {
    return (await client.request<GlobalMaintenance>('GET', `/api/services/${encodeURIComponent(service)}/maintenance`)).data
  } catch (err) {
    if (err instanceof CliError && err.status === 404) return null
    throw err
  }
}
