import type { Command } from 'commander'
import { encodeKey } from '../client.js'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { relativeTime, routesTable, table, type RouteState } from '../format.js'
import { parseCount, parseWhen, type RouteArg } from '../parse.js'
import { printable } from '../safe-text.js'
import { notInService, scopedRoute } from '../scope.js'
import { ambiguous, mutate } from './routes.js'

/** What `GET /api/routes/:key/callers` answers. */
export interface CallersReply {
  key: string
  status: string
  sunset: string | null
  afterSunset: 'gone' | null
  gone: 'sunset' | 'brownout' | null
  total: number
  slots: number
  sketches: number
  since: string
  until: string
  callers: Array<{ id: string, count: number, error: number, lastSeen: string }>
}

interface Brownout { id: string, start: string, end: string, reason: string }
interface BrownoutsReply { key: string, status: string, sunset: string | null, brownouts: Brownout[] }

const ALL_HELP = 'when the route matches several (methods of a bare /path): apply to all of them'

async function get<T> (ctx: Context, route: RouteArg, path: string, query?: Record<string, string | number | undefined>): Promise<T> {
  if (route.method === null) throw new UsageError(`${route.key} is a bare path: name one method, e.g. GET:${route.path}`)
  const { service } = await ctx.settings()
  const client = await ctx.client()
  try {
    return (await client.request<T>('GET', `/api/routes/${encodeKey(route.key)}/${path}`, { query })).data
  } catch (err) {
    if (err instanceof CliError && err.code === 'WG_ERR_ROUTE_AMBIGUOUS' && err.matches !== undefined) throw ambiguous(route, err, err.matches)
    throw notInService(err, route, service)
  }
}

/** The callers table of a deprecated route, for people. */
export function callersText (reply: CallersReply, ctx: Context): string {
  const now = ctx.now()
  const style = ctx.style
  const lines: string[] = []
  const sunset = reply.sunset === null ? 'no sunset date' : `sunset ${reply.sunset} (${relativeTime(reply.sunset, now)})`
  const gone = reply.gone === 'sunset' ? style.red(' — answering 410 Gone (past its sunset)') : reply.gone === 'brownout' ? style.yellow(' — in a brownout (410)') : ''
  lines.push(`${printable(reply.key)}  ${reply.status}, ${sunset}${reply.afterSunset === 'gone' ? ', 410 after it' : ''}${gone}`)
  if (reply.status !== 'deprecated' && reply.total === 0) {
    lines.push(style.dim('not deprecated: callers are counted only while a route is deprecated'))
    return lines.join('\n')
  }
  if (reply.callers.length === 0) {
    lines.push(style.dim('no calls in the last 24 h'))
    return lines.join('\n')
  }
  const rows = reply.callers.map(c => [
    printable(c.id),
    String(c.count) + (c.error > 0 ? style.dim(` ±${c.error}`) : ''),
    `${(100 * c.count / Math.max(1, reply.total)).toFixed(1)}%`,
    relativeTime(c.lastSeen, now)
  ])
  lines.push(table(['CALLER', 'REQUESTS', 'SHARE', 'LAST SEEN'], rows, style))
  lines.push(style.dim(`\n${reply.total} request${reply.total === 1 ? '' : 's'} in the last 24 h (${reply.sketches} sketch${reply.sketches === 1 ? '' : 'es'} merged; counts within ±${Math.ceil(reply.total / reply.slots)})`))
  return lines.join('\n')
}

function brownoutsText (reply: BrownoutsReply, ctx: Context): string {
  const now = ctx.now()
  if (reply.brownouts.length === 0) return `${printable(reply.key)}: no brownouts planned`
  return table(['ID', 'START', 'END', 'REASON'], reply.brownouts.map(b => {
    const open = Date.parse(b.start) <= now && now < Date.parse(b.end)
    return [b.id, `${b.start} (${relativeTime(b.start, now)})`, b.end + (open ? ctx.style.yellow(' now') : ''), printable(b.reason)]
  }), ctx.style)
}

/** `waygate callers ROUTE` and `waygate brownout ROUTE`. */
export function registerDeprecationCommands (program: Command, action: Action): void {
  program.command('callers')
    .description('who still calls a deprecated route: its top callers over the last 24 h, every instance merged')
    .argument('<route>', 'METHOD:/path')
    .option('--limit <n>', 'most callers listed (default 50, at most 500)')
    .addHelpText('after', `
Callers are told apart by the route's key (address, API key, user or a custom key; see
deprecated.callers in the route config). Counts come from a top-k sketch: each is within
total / slots of the truth (±0.5 % with the default 200 slots).

Examples:
  waygate callers GET:/v1/users
  waygate callers GET:/v1/users --limit 10 --json | jq -r '.callers[].id'`)
    .action(action(async (ctx, routeText: string, options: { limit?: string }) => {
      const route = await scopedRoute(ctx, routeText)
      const limit = options.limit === undefined ? undefined : parseCount(options.limit, '--limit', 500)
      const reply = await get<CallersReply>(ctx, route, 'callers', { limit })
      if (ctx.json) ctx.printJson(reply)
      else ctx.print(callersText(reply, ctx))
    }))

  program.command('brownout')
    .description('plan a brownout of a deprecated route (410 Gone from --start to --end), list them, or cancel')
    .argument('<route>', 'METHOD:/path, or /path for every method on it')
    .option('--start <when>', 'brownout start: an ISO date-time or a duration from now')
    .option('--end <when>', 'brownout end: an ISO date-time or a duration from now')
    .option('--reason <text>', 'shown to callers in the 410 body and kept in the audit log')
    .option('--list', 'list the planned brownouts')
    .option('--cancel [id]', 'cancel one brownout by id, or all of them')
    .option('--all', ALL_HELP)
    .addHelpText('after', `
A brownout is a planned, short outage of a deprecated route: callers that still use it get
410 Gone (code ROUTE_BROWNOUT, Retry-After to the end) and notice before the sunset.

Examples:
  waygate brownout GET:/v1/users --start 2030-01-05T10:00:00Z --end 2030-01-05T10:15:00Z --reason "v1 retires on 1 March"
  waygate brownout GET:/v1/users --start 1h --end 70m
  waygate brownout GET:/v1/users --list
  waygate brownout GET:/v1/users --cancel 1a2b3c4d`)
    .action(action(async (ctx, routeText: string, options: { start?: string, end?: string, reason?: string, list?: boolean, cancel?: string | boolean, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const planning = options.start !== undefined || options.end !== undefined || options.reason !== undefined
      if ((options.list === true ? 1 : 0) + (options.cancel !== undefined ? 1 : 0) + (planning ? 1 : 0) > 1) {
        throw new UsageError('give --start/--end, --list or --cancel, one at a time')
      }
      if (options.list === true) {
        const reply = await get<BrownoutsReply>(ctx, route, 'brownouts')
        if (ctx.json) ctx.printJson(reply)
        else ctx.print(brownoutsText(reply, ctx))
        return
      }
      const client = await ctx.client()
      let routes: RouteState[]
      if (options.cancel !== undefined) {
        const id = typeof options.cancel === 'string' ? options.cancel : undefined
        routes = await mutate(ctx, route, options.all === true, async all => (await client.request<{ routes: RouteState[] }>('DELETE',
          `/api/routes/${encodeKey(route.key)}/brownouts`, { query: { id, all: all ? true : undefined } })).data.routes)
      } else {
        if (options.start === undefined || options.end === undefined) {
          throw new UsageError('brownout needs --start and --end (or --list, --cancel)', 'e.g. waygate brownout GET:/v1/users --start 1h --end 70m')
        }
        const body: Record<string, unknown> = { start: parseWhen(options.start, '--start'), end: parseWhen(options.end, '--end') }
        if (options.reason !== undefined) body.reason = options.reason
        routes = await mutate(ctx, route, options.all === true, async all => (await client.request<{ routes: RouteState[] }>('POST',
          `/api/routes/${encodeKey(route.key)}/brownouts`, { body: all ? { ...body, all: true } : body })).data.routes)
      }
      if (ctx.json) {
        ctx.printJson({ routes })
        return
      }
      ctx.print(routesTable(routes, ctx.style, ctx.now()))
      for (const r of routes) {
        const list = (r as RouteState & { brownouts?: Brownout[] }).brownouts ?? []
        ctx.print(brownoutsText({ key: r.key, status: r.status, sunset: r.sunset, brownouts: list }, ctx))
      }
    }))
}
