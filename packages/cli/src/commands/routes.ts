import type { Command } from 'commander'
import { encodeKey } from '../client.js'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { routeDetails, routesTable, type GlobalMaintenance, type RouteState } from '../format.js'
import { parseCount, parseEnvName, parseRouteArg, parseWhen, type RouteArg } from '../parse.js'
import { confirm } from '../prompt.js'
import { printable } from '../safe-text.js'

interface RoutesReply { routes: RouteState[] }

/**
 * With a service in scope (`--service`, WAYGATE_SERVICE), a change only goes ahead for a route of
 * that service. The API's mutations take no service, so the CLI checks first.
 */
async function ensureInService (ctx: Context, route: RouteArg): Promise<void> {
  const { service } = await ctx.settings()
  if (service === null) return
  const client = await ctx.client()
  const { data } = await client.request<RouteState[]>('GET', '/api/routes', { query: { service } })
  const found = route.method === null ? data.some(r => r.path === route.path) : data.some(r => r.key === route.key)
  if (!found) {
    throw new CliError('WG_ERR_CLI_NOT_IN_SERVICE', `${route.key} is not a route of service ${service}`, {
      hint: `list its routes: waygate status --service ${service}`
    })
  }
}

/**
 * Sends a change for `route`. A bare path matching several methods is applied to all of them with
 * `--all`, after a confirmation on a terminal, and otherwise refused with the list of matches.
 */
export async function mutate<T> (ctx: Context, route: RouteArg, all: boolean,
  send: (all: boolean) => Promise<T>): Promise<T> {
  await ensureInService(ctx, route)
  try {
    return await send(all)
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'WG_ERR_ROUTE_AMBIGUOUS' || err.matches === undefined) throw err
    const matches = err.matches
    if (ctx.interactive) {
      ctx.io.stderr.write(`${route.key} matches ${matches.length} routes:\n${matches.map(m => `  ${printable(m)}\n`).join('')}`)
      if (await confirm(ctx.io, `Apply to all ${matches.length}?`)) return send(true)
      throw new CliError('WG_ERR_CLI_CANCELLED', 'cancelled: nothing changed')
    }
    throw new CliError(err.code, `${route.key} matches several routes: ${matches.join(', ')}`, {
      hint: `pass --all to apply it to all of them, or name one, e.g. ${matches[0]}`,
      status: err.status,
      matches
    })
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

const ALL_HELP = 'with a bare /path matching several methods: apply to all of them'

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
  waygate status --json | jq -r '.[] | select(.status == "disabled") | .key'`)
    .action(action(async (ctx, routeText: string | undefined, options: { page?: string, perPage?: string }) => {
      const page = options.page === undefined ? undefined : parseCount(options.page, '--page')
      const perPage = options.perPage === undefined ? undefined : parseCount(options.perPage, '--per-page', 500)
      if (routeText !== undefined) {
        if (page !== undefined || perPage !== undefined) throw new UsageError('--page and --per-page list routes; they do not go with a ROUTE')
        return showRoute(ctx, parseRouteArg(routeText))
      }
      const { service } = await ctx.settings()
      const client = await ctx.client()
      const [list, global] = await Promise.all([
        client.request<RouteState[]>('GET', '/api/routes', { query: { service: service ?? undefined, page, perPage } }),
        ctx.json ? null : client.request<GlobalMaintenance>('GET', '/api/global')
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
      const route = parseRouteArg(routeText)
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
      const route = parseRouteArg(routeText)
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
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExamples:\n  waygate maintenance GET:/orders --reason "stock sync"\n  waygate maintenance POST:/orders --reason upgrade --end 10m')
    .action(action(async (ctx, routeText: string, options: { reason?: string, start?: string, end?: string, all?: boolean }) => {
      const route = parseRouteArg(routeText)
      const start = options.start === undefined ? undefined : parseWhen(options.start, '--start')
      const end = options.end === undefined ? undefined : parseWhen(options.end, '--end')
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
      const route = parseRouteArg(routeText)
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
      const route = parseRouteArg(routeText)
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
      const route = parseRouteArg(routeText)
      printRoutes(ctx, await mutate(ctx, route, options.all === true, all => remove(ctx, route.key, 'env', all)))
    }))

  program.command('deprecate')
    .description('deprecate a route: it still answers, with Deprecation, Sunset and Link headers')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--sunset <when>', 'when it goes away: an ISO date-time or a duration from now')
    .option('--successor <url>', 'URL or path of the replacement')
    .option('--reason <text>', 'why; kept in the audit log')
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExample:\n  waygate deprecate GET:/v1/users --sunset 2030-01-01 --successor /v2/users')
    .action(action(async (ctx, routeText: string, options: { sunset?: string, successor?: string, reason?: string, all?: boolean }) => {
      const route = parseRouteArg(routeText)
      const sunset = options.sunset === undefined ? undefined : parseWhen(options.sunset, '--sunset')
      printRoutes(ctx, await mutate(ctx, route, options.all === true,
        all => post(ctx, route.key, 'deprecate', body({ sunset, successor: options.successor, reason: options.reason }, all))))
    }))
}

/** `waygate status ROUTE`: a method key is one route (an object in --json); a bare path, all on it (an array). */
async function showRoute (ctx: Context, route: RouteArg): Promise<void> {
  const { service } = await ctx.settings()
  const client = await ctx.client()
  let routes: RouteState[]
  if (route.method !== null) {
    routes = [(await client.request<RouteState>('GET', `/api/routes/${encodeKey(route.key)}`)).data]
  } else {
    const all = (await client.request<RouteState[]>('GET', '/api/routes', { query: { service: service ?? undefined } })).data
    routes = all.filter(r => r.path === route.path)
    if (routes.length === 0) {
      throw new CliError('WG_ERR_ROUTE_NOT_FOUND', `no route is registered as ${route.key}${service === null ? '' : ` in service ${service}`}`, {
        hint: 'list the routes with: waygate status'
      })
    }
  }
  if (service !== null && routes.some(r => r.service !== service)) {
    throw new CliError('WG_ERR_CLI_NOT_IN_SERVICE', `${route.key} is not a route of service ${service}`, { hint: `list its routes: waygate status --service ${service}` })
  }
  if (ctx.json) {
    ctx.printJson(route.method === null ? routes : routes[0])
    return
  }
  ctx.print(routes.map(r => routeDetails(r, ctx.style, ctx.now())).join('\n\n'))
}
