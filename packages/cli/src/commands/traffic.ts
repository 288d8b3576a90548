import type { Command } from 'commander'
import { encodeKey } from '../client.js'
import type { Action } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { table, type Style } from '../format.js'
import { printable } from '../safe-text.js'
import { notInService, scopedRoute } from '../scope.js'
import { ambiguous } from './routes.js'

/** What `GET /api/routes/:key/traffic` answers. */
export interface TrafficReport {
  key: string
  range: 'hour' | 'day'
  bucketSeconds: number
  buckets: Array<{ start: string, requests: number, blocked: number, outcomes: Record<string, number> }>
  totals: { requests: number, blocked: number, outcomes: Record<string, number> }
}

const BARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']

/**
 * One character per bucket, scaled to the busiest: a space for none, ▁ to █ for some (any count
 * above zero gets at least ▁, so a single request shows).
 */
export function sparkline (values: readonly number[], peak = Math.max(0, ...values)): string {
  return values.map(v => v <= 0 || peak <= 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.ceil((v / peak) * BARS.length) - 1)]!).join('')
}

/** The human form: two sparklines on one scale (requests, blocked), the totals and the blocked by kind. */
export function trafficText (report: TrafficReport, style: Style): string {
  const requests = report.buckets.map(b => b.requests)
  const peak = Math.max(0, ...requests)
  const first = report.buckets[0]?.start.slice(11, 16) ?? ''
  const span = report.range === 'hour' ? 'last hour, 1 bucket a minute' : 'last 24 h, 1 bucket per 5 minutes'
  const lines = [
    `${printable(report.key)}  ${style.dim(`(${span}; peak ${peak})`)}`,
    `requests │${sparkline(requests, peak)}│ ${report.totals.requests}`,
    `blocked  │${style.red(sparkline(report.buckets.map(b => b.blocked), peak))}│ ${report.totals.blocked}`,
    style.dim(`          ${first} UTC${' '.repeat(Math.max(1, report.buckets.length - first.length - 7))}now`)
  ]
  const kinds = Object.entries(report.totals.outcomes).filter(([o, n]) => n > 0 && o !== 'passed' && o !== 'deprecated')
  if (kinds.length > 0) {
    lines.push('', table(['blocked by', 'requests'], kinds.map(([o, n]) => [o, String(n)]), style))
  }
  return lines.join('\n')
}

/** `waygate traffic ROUTE`: a route's requests and blocked requests as a terminal sparkline. */
export function registerTrafficCommand (program: Command, action: Action): void {
  program.command('traffic')
    .description('show a route\'s traffic: requests and blocked requests per minute (last hour) or per 5 minutes (last 24 h)')
    .argument('<route>', 'METHOD:/path (a bare /path when it has one method)')
    .option('--day', 'the last 24 hours in 5-minute buckets instead of the last hour')
    .addHelpText('after', `
Counted by the waygate plugin of the app the admin API belongs to (that process only);
on a Waygate Server, the sum of what every instance of the service reported.

Examples:
  waygate traffic GET:/payments
  waygate traffic /v1/users --day
  waygate traffic GET:/api/cart --service orders-service
  waygate traffic GET:/payments --json | jq '.totals'`)
    .action(action(async (ctx, routeText: string, options: { day?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const { service } = await ctx.settings()
      const client = await ctx.client()
      let report: TrafficReport
      try {
        report = (await client.request<TrafficReport>('GET', `/api/routes/${encodeKey(route.key)}/traffic`, { query: { range: options.day === true ? 'day' : 'hour' } })).data
      } catch (err) {
        if (err instanceof CliError && err.code === 'WG_ERR_ROUTE_AMBIGUOUS' && err.matches !== undefined) throw ambiguous(route, err, err.matches)
        if (err instanceof CliError && err.status === 404 && err.code === 'WG_ERR_NOT_FOUND') {
          throw new UsageError('this admin API counts no traffic (the waygate plugin is not registered in its app)')
        }
        throw notInService(err, route, service)
      }
      if (ctx.json) ctx.printJson(report)
      else ctx.print(trafficText(report, ctx.style))
    }))
}
