import type { Command } from 'commander'
import type { Action, Context } from '../context.js'
import { globalDetails, type GlobalMaintenance } from '../format.js'
import { collect, endOption, parseRouteArg } from '../parse.js'

function printGlobal (ctx: Context, global: GlobalMaintenance): void {
  if (ctx.json) ctx.printJson(global)
  else ctx.print(globalDetails(global, ctx.style, ctx.now()))
}

async function send (ctx: Context, method: string, path: string, body?: unknown): Promise<GlobalMaintenance> {
  const client = await ctx.client()
  return (await client.request<GlobalMaintenance>(method, path, { body })).data
}

/** Exempt paths are route keys: `/health` or `GET:/readiness`; a bad method is a usage error. */
function exemptKeys (paths: string[], flag: string): string[] {
  return paths.map(p => parseRouteArg(p, flag).key)
}

/** `waygate global status | enable | disable | exempt-add | exempt-remove\`. */
export function registerGlobalCommands (program: Command, action: Action): void {
  const global = program.command('global').description('site-wide maintenance: every route answers 503, except exempt paths')

  global.command('status', { isDefault: true })
    .description('show global maintenance')
    .action(action(async (ctx) => {
      printGlobal(ctx, await send(ctx, 'GET', '/api/global'))
    }))

  global.command('enable')
    .description('turn global maintenance on')
    .option('--reason <text>', 'why; shown to callers and kept in the audit log')
    .option('--exempt <route>', 'a route that keeps answering (/path or METHOD:/path); repeatable', collect)
    .option('--include-force-active', 'block force-active routes too')
    .option('--for <duration>', 'turn itself off after this long (15m, 2h): a deploy that dies never leaves it on')
    .option('--end <when>', 'turn itself off at this time: an ISO date-time or a duration from now')
    .addHelpText('after', `
Without --for or --end it stays on until \`waygate global disable\` (enabling again without one
removes an end set before).

Examples:
  waygate global enable --reason "Deploying v1.4, back in 5 minutes" --exempt /health --exempt GET:/readiness
  waygate global enable --reason "deploying" --for 15m`)
    .action(action(async (ctx, options: { reason?: string, exempt?: string[], includeForceActive?: boolean, for?: string, end?: string }) => {
      const body: Record<string, unknown> = {}
      const end = endOption(options)
      if (end !== undefined) body.end = end
      if (options.reason !== undefined) body.reason = options.reason
      if (options.exempt !== undefined) body.exemptPaths = exemptKeys(options.exempt, '--exempt')
      if (options.includeForceActive === true) body.includeForceActive = true
      printGlobal(ctx, await send(ctx, 'POST', '/api/global/enable', body))
    }))

  global.command('disable')
    .description('turn global maintenance off')
    .addHelpText('after', '\nExample:\n  waygate global disable')
    .action(action(async (ctx) => {
      printGlobal(ctx, await send(ctx, 'POST', '/api/global/disable'))
    }))

  global.command('exempt-add')
    .description('add exempt routes (global maintenance stays as it is)')
    .argument('<route...>', '/path or METHOD:/path')
    .addHelpText('after', '\nExample:\n  waygate global exempt-add /status GET:/readiness')
    .action(action(async (ctx, paths: string[]) => {
      printGlobal(ctx, await send(ctx, 'POST', '/api/global/exempt/add', { paths: exemptKeys(paths, 'exempt route') }))
    }))

  global.command('exempt-remove')
    .description('remove exempt routes (global maintenance stays as it is)')
    .argument('<route...>', '/path or METHOD:/path')
    .addHelpText('after', '\nExample:\n  waygate global exempt-remove /status')
    .action(action(async (ctx, paths: string[]) => {
      printGlobal(ctx, await send(ctx, 'POST', '/api/global/exempt/remove', { paths: exemptKeys(paths, 'exempt route') }))
    }))
}
