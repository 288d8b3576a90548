import type { Command } from 'commander'
import type { Action } from '../context.js'
import { CliError } from '../errors.js'
import { keyValues } from '../format.js'
import { CLI_VERSION } from '../version.js'

interface ServerStatus {
  version: string
  backend: string
  healthy: boolean
  lastError: string | null
  env: string
  routes: number
  stateVersion: number
  testBypass: boolean
  auth: boolean
}

/** `waygate current-service`, `waygate version`. */
export function registerInfoCommands (program: Command, action: Action): void {
  program.command('current-service')
    .description('show the service commands are scoped to (--service, WAYGATE_SERVICE or .waygate)')
    .action(action(async (ctx) => {
      const s = await ctx.settings()
      const source = s.serviceSource === 'flag' ? '--service' : s.serviceSource === 'env' ? 'WAYGATE_SERVICE' : s.serviceSource === 'dotfile' ? s.dotfile : null
      if (ctx.json) {
        ctx.printJson({ service: s.service, source })
        return
      }
      ctx.print(s.service === null
        ? 'none: commands cover every service (scope them with --service NAME or WAYGATE_SERVICE)'
        : `${s.service} (from ${source})`)
    }))

  program.command('version')
    .description('show the versions of the CLI and of the server')
    .action(action(async (ctx) => {
      const { serverUrl } = await ctx.settings()
      const client = await ctx.client()
      let server: ServerStatus | null = null
      let failure: CliError | null = null
      try {
        server = (await client.request<ServerStatus>('GET', '/api/status')).data
      } catch (err) {
        if (!(err instanceof CliError)) throw err
        failure = err
      }
      if (ctx.json) {
        ctx.printJson({
          cli: CLI_VERSION,
          node: process.version,
          serverUrl,
          server,
          serverError: failure === null ? null : { code: failure.code, message: failure.message, hint: failure.hint ?? null }
        })
        return
      }
      const pairs: Array<[string, string]> = [['waygate CLI', `${CLI_VERSION} (node ${process.version})`]]
      if (server !== null) {
        pairs.push(['server', `${serverUrl}: @waygate/admin ${server.version}`])
        pairs.push(['backend', `${server.backend}, ${server.healthy ? ctx.style.green('healthy') : ctx.style.red(`unhealthy: ${server.lastError ?? 'unknown error'}`)}`])
        pairs.push(['environment', server.env])
        pairs.push(['routes', String(server.routes)])
        pairs.push(['auth', server.auth ? 'required' : ctx.style.yellow('off (open admin)')])
      } else {
        pairs.push(['server', `${serverUrl}: ${failure!.message}${failure!.hint === undefined ? '' : ` (${failure!.hint})`}`])
      }
      ctx.print(keyValues(pairs, ctx.style))
    }))
}
