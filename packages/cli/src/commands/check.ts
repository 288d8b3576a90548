import type { Command } from 'commander'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { routesTable, type GlobalMaintenance, type RouteState } from '../format.js'
import { collect, parseStatusList, routeMatches, type RouteArg } from '../parse.js'
import { scopedRoute } from '../scope.js'
import { serviceMaintenance } from './routes.js'

interface CheckOptions { failOn: string, ignore?: string[] }

/** The exit code of a check that could not tell (the monitoring-plugins UNKNOWN). */
export const CHECK_UNKNOWN = 3

/**
 * A failure to find out (server unreachable, auth refused, an answer that cannot be read) as
 * UNKNOWN: exit 3, so a monitor tells "cannot tell" from "a route is failing" (1). Usage errors
 * stay 2.
 */
function unknown (ctx: Context, err: unknown): CliError {
  if (err instanceof UsageError) return err
  const cli = err instanceof CliError ? err : new CliError('WG_ERR_CLI_INTERNAL', (err as Error)?.message ?? String(err), { hint: 'rerun with --debug for details', cause: err })
  if (!ctx.json) ctx.print(`UNKNOWN: cannot tell: ${cli.message}`)
  return new CliError(cli.code, cli.message, {
    exitCode: CHECK_UNKNOWN,
    ...(cli.hint === undefined ? {} : { hint: cli.hint }),
    ...(cli.status === undefined ? {} : { status: cli.status }),
    ...(cli.matches === undefined ? {} : { matches: cli.matches }),
    cause: cli.cause ?? (cli === err ? undefined : err)
  })
}

/** `waygate check`: exit 1 when a route is in a status that should alert, 3 when it cannot tell. */
export function registerCheckCommand (program: Command, action: Action): void {
  program.command('check')
    .description('for monitoring: exit 1 when any route is in one of the --fail-on statuses')
    .option('--fail-on <statuses>', 'comma-separated: disabled, maintenance, env_gated, deprecated, active, or global (global maintenance on, or the maintenance of the service in scope)', 'disabled')
    .option('--ignore <route>', 'a route not to check (METHOD:/path, or /path); repeatable', collect)
    .addHelpText('after', `
Exit codes (the monitoring-plugins convention):
  0  OK: nothing to report
  1  a route is in a --fail-on status (or global maintenance is on, with --fail-on global)
  2  usage error
  3  UNKNOWN: cannot tell (server unreachable, token refused, an answer that is not the admin API's)

Examples:
  waygate check --fail-on disabled,maintenance
  waygate check --fail-on disabled,global --ignore GET:/old-endpoint
  waygate check --json`)
    .action(action(async (ctx, options: CheckOptions) => {
      const failOn = parseStatusList(options.failOn, '--fail-on')
      const ignored: RouteArg[] = []
      let service: string | null
      let answers: [{ data: RouteState[] }, { data: GlobalMaintenance } | null, GlobalMaintenance | null]
      try {
        for (const text of options.ignore ?? []) ignored.push(await scopedRoute(ctx, text, '--ignore'))
        service = (await ctx.settings()).service
        const client = await ctx.client()
        const wantsGlobal = failOn.includes('global')
        answers = await Promise.all([
          client.request<RouteState[]>('GET', '/api/routes', { query: { service: service ?? undefined } }),
          wantsGlobal ? client.request<GlobalMaintenance>('GET', '/api/global') : null,
          // in a service's scope, its own maintenance takes it down as global maintenance does
          wantsGlobal && service !== null ? serviceMaintenance(ctx, service) : null
        ])
        if (!Array.isArray(answers[0].data)) throw new CliError('WG_ERR_CLI_BAD_RESPONSE', 'unexpected answer: the route list is not a list')
      } catch (err) {
        throw unknown(ctx, err)
      }
      const [routesRes, globalRes, own] = answers
      const checked = routesRes.data.filter(r => !ignored.some(i => routeMatches(i, r)))
      const failing = checked.filter(r => failOn.includes(r.status))
      const global = globalRes?.data ?? null
      const globalFails = global?.enabled === true
      const serviceFails = own?.enabled === true
      const ok = failing.length === 0 && !globalFails && !serviceFails

      if (ctx.json) {
        ctx.printJson({ ok, failOn, checked: checked.length, failing, global, ...(service === null ? {} : { service, serviceMaintenance: own }) })
        return ok ? 0 : 1
      }
      const statuses = failOn.filter(s => s !== 'global').map(s => s.toUpperCase()).join(' or ')
      if (ok) {
        const parts: string[] = []
        if (statuses !== '') parts.push(`${checked.length} route${checked.length === 1 ? '' : 's'} checked, none ${statuses}`)
        if (global !== null) parts.push('global maintenance off')
        if (own !== null) parts.push(`maintenance of ${service!} off`)
        ctx.print(`OK: ${parts.join('; ')}`)
        return 0
      }
      if (globalFails) ctx.print(`FAIL: global maintenance is ON${global.reason === '' ? '' : `: ${global.reason}`}`)
      if (serviceFails) ctx.print(`FAIL: maintenance of ${service!} is ON${own.reason === '' ? '' : `: ${own.reason}`}`)
      if (failing.length > 0) {
        ctx.print(`FAIL: ${failing.length} of ${checked.length} route${checked.length === 1 ? '' : 's'} ${failing.length === 1 ? 'is' : 'are'} ${statuses}`)
        ctx.print(routesTable(failing, ctx.style, ctx.now()))
      }
      return 1
    }))
}
