import type { Command } from 'commander'
import type { Action } from '../context.js'
import { routesTable, type GlobalMaintenance, type RouteState } from '../format.js'
import { collect, parseStatusList, routeMatches, type RouteArg } from '../parse.js'
import { scopedRoute } from '../scope.js'
import { serviceMaintenance } from './routes.js'

interface CheckOptions { failOn: string, ignore?: string[] }

/** `waygate check`: exit 1 when a route is in a status that should alert. */
export function registerCheckCommand (program: Command, action: Action): void {
  program.command('check')
    .description('for monitoring: exit 1 when any route is in one of the --fail-on statuses')
    .option('--fail-on <statuses>', 'comma-separated: disabled, maintenance, env_gated, deprecated, active, or global (global maintenance on, or the maintenance of the service in scope)', 'disabled')
    .option('--ignore <route>', 'a route not to check (METHOD:/path, or /path); repeatable', collect)
    .addHelpText('after', `
Exit codes: 0 nothing to report, 1 a route is in a --fail-on status (or the check could not run),
2 usage error.

Examples:
  waygate check --fail-on disabled,maintenance
  waygate check --fail-on disabled,global --ignore GET:/old-endpoint
  waygate check --json`)
    .action(action(async (ctx, options: CheckOptions) => {
      const failOn = parseStatusList(options.failOn, '--fail-on')
      const ignored: RouteArg[] = []
      for (const text of options.ignore ?? []) ignored.push(await scopedRoute(ctx, text, '--ignore'))
      const { service } = await ctx.settings()
      const client = await ctx.client()
      const wantsGlobal = failOn.includes('global')
      const [routesRes, globalRes, own] = await Promise.all([
        client.request<RouteState[]>('GET', '/api/routes', { query: { service: service ?? undefined } }),
        wantsGlobal ? client.request<GlobalMaintenance>('GET', '/api/global') : null,
        // in a service's scope, its own maintenance takes it down as global maintenance does
        wantsGlobal && service !== null ? serviceMaintenance(ctx, service) : null
      ])
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
