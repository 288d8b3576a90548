import type { Command } from 'commander'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { relativeTime, table } from '../format.js'
import { isServiceName, serviceNameProblem } from '../parse.js'
import { scopeSource } from '../scope.js'

/** A service token as `GET /api/tokens` lists it: never the token itself. */
interface TokenInfo {
  id: string
  service: string
  name: string
  createdAt: string
  expiresAt: string
  createdBy: string
  revokedAt: string | null
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 365 * 86_400 }
const MAX_SECONDS = 5 * 366 * 86_400
const TOKEN_ID = /^[0-9a-f-]{36}$/

/** Checks `--expires` as the server reads it: a whole number and s, m, h, d, w or y; a minute to five years. */
function checkExpires (value: string): string {
  const match = /^\s*(\d{1,9})\s*([smhdwy])\s*$/.exec(value)
  const seconds = match === null ? Number.NaN : Number(match[1]) * UNIT_SECONDS[match[2]!]!
  if (!(seconds >= 60 && seconds <= MAX_SECONDS)) {
    throw new UsageError(`--expires "${value}": expected a duration from 1m to 5y, such as 365d, 90d, 12h`, 'e.g. --expires 90d')
  }
  return value.trim()
}

/** The service a token command is for: `--service`, else WAYGATE_SERVICE or `.waygate` (said on stderr). */
async function tokenService (ctx: Context, required: boolean): Promise<string | null> {
  const { service } = await ctx.settings()
  if (service === null) {
    if (required) throw new UsageError('--service is required: a token is for one service', 'e.g. waygate token create --service payments-service')
    return null
  }
  if (!isServiceName(service)) throw new UsageError(`--service: ${serviceNameProblem(service)}`)
  const source = await scopeSource(ctx)
  if (required && source !== '--service') ctx.note(`note: for service ${service} (from ${source ?? 'the scope'})`)
  return service
}

function stateOf (info: TokenInfo, now: number): string {
  if (info.revokedAt !== null) return 'revoked'
  return Date.parse(info.expiresAt) <= now ? 'expired' : 'active'
}

/** A server without token endpoints (an app's own admin) is explained. */
function explained (err: unknown): unknown {
  if (!(err instanceof CliError) || err.code !== 'WG_ERR_NOT_FOUND') return err
  return new CliError(err.code, err.message, { hint: 'service tokens are issued by a Waygate Server; is --server-url one?', status: err.status, cause: err })
}

/** `waygate token create | list | revoke`: the credentials services attach with. */
export function registerTokenCommands (program: Command, action: Action): void {
  const token = program.command('token')
    .description('service tokens of a Waygate Server: one credential per service, instead of an operator\'s password')

  token.command('create')
    .description('create a token for one service; it is printed once, on stdout, and never again')
    .option('--expires <duration>', 'lifetime, from 1m to 5y: 365d (default), 90d, 12h …')
    .option('--name <label>', 'a label for operators, e.g. "prod pods"')
    .addHelpText('after', `
The service comes from --service (or WAYGATE_SERVICE, .waygate). The token alone goes to stdout,
the rest to stderr, so it can be captured:

Examples:
  waygate token create --service payments-service --name "prod pods"
  TOKEN=$(waygate token create --service orders-service --expires 90d)
  waygate token create --service payments-service --json | jq -r .token`)
    .action(action(async (ctx, options: { expires?: string, name?: string }) => {
      const service = await tokenService(ctx, true)
      const body: Record<string, string> = { service: service! }
      if (options.expires !== undefined) body.expires = checkExpires(options.expires)
      if (options.name !== undefined) {
        if (options.name.length > 100 || /\p{Cc}/u.test(options.name)) throw new UsageError('--name: up to 100 characters, no control characters')
        body.name = options.name
      }
      const client = await ctx.client()
      let created: TokenInfo & { token: string }
      try {
        created = (await client.request<TokenInfo & { token: string }>('POST', '/api/tokens', { body })).data
      } catch (err) {
        throw explained(err)
      }
      if (ctx.json) {
        ctx.printJson(created)
        return
      }
      ctx.print(created.token)
      ctx.note(`created token ${created.id} for ${created.service}${created.name === '' ? '' : ` ("${created.name}")`}, expires ${created.expiresAt}
it is shown only now: give it to the service as WAYGATE_TOKEN (revoke it with: waygate token revoke ${created.id})`)
    }))

  token.command('list')
    .alias('ls')
    .description('list the service tokens, newest first (never the tokens themselves)')
    .addHelpText('after', `
With --service (or WAYGATE_SERVICE, .waygate), only that service's tokens.

Examples:
  waygate token list
  waygate token list --service payments-service --json`)
    .action(action(async (ctx) => {
      const service = await tokenService(ctx, false)
      const client = await ctx.client()
      let listed: TokenInfo[]
      try {
        listed = (await client.request<TokenInfo[]>('GET', '/api/tokens', { query: { service: service ?? undefined } })).data
      } catch (err) {
        throw explained(err)
      }
      const now = ctx.now()
      if (ctx.json) {
        ctx.printJson(listed.map(info => ({ ...info, state: stateOf(info, now) })))
        return
      }
      if (listed.length === 0) {
        ctx.print(service === null ? 'no service tokens' : `no tokens for service ${service}`)
        return
      }
      ctx.print(table(['ID', 'SERVICE', 'NAME', 'STATE', 'CREATED', 'BY', 'EXPIRES'], listed.map(info => {
        const state = stateOf(info, now)
        return [
          info.id,
          info.service,
          info.name === '' ? '-' : info.name,
          state === 'active' ? ctx.style.green(state) : state === 'revoked' ? ctx.style.red(state) : ctx.style.yellow(state),
          relativeTime(info.createdAt, now),
          info.createdBy,
          info.expiresAt.slice(0, 10)
        ]
      }), ctx.style))
    }))

  token.command('revoke')
    .description('revoke a token: refused at once by every server instance, its service\'s streams closed')
    .argument('<id>', 'the token\'s id, as waygate token list shows it')
    .addHelpText('after', `
The service keeps serving its last snapshot, and follows the server again once it has a new token.

Example:
  waygate token revoke 3f0c6d1e-5b7a-4c39-9e61-0d2b8f4a7c15`)
    .action(action(async (ctx, id: string) => {
      const wanted = id.trim().toLowerCase()
      if (!TOKEN_ID.test(wanted)) throw new UsageError(`ID "${id}": expected a token id such as 3f0c6d1e-5b7a-4c39-9e61-0d2b8f4a7c15`, 'list them with: waygate token list')
      const client = await ctx.client()
      let revoked: TokenInfo
      try {
        revoked = (await client.request<TokenInfo>('DELETE', `/api/tokens/${wanted}`)).data
      } catch (err) {
        if (err instanceof CliError && err.code === 'WG_ERR_TOKEN_NOT_FOUND') {
          throw new CliError(err.code, `no service token ${wanted}`, { hint: 'list them with: waygate token list', status: err.status, cause: err })
        }
        throw explained(err)
      }
      if (ctx.json) ctx.printJson(revoked)
      else ctx.print(`revoked token ${revoked.id} of ${revoked.service}${revoked.name === '' ? '' : ` ("${revoked.name}")`} at ${revoked.revokedAt ?? '?'}`)
    }))
}
