import type { Command } from 'commander'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { globalDetails as maintenanceDetails, relativeTime, table, type GlobalMaintenance } from '../format.js'
import { collect, isServiceName, parseRouteArg, serviceNameProblem } from '../parse.js'
import { scopeSource } from '../scope.js'
import {
  ALGORITHMS,
  applyChange,
  globalDetails as rateLimitDetails,
  KEY_STRATEGIES,
  LIMIT_HINT,
  limitsText,
  policyChange,
  type GlobalRateLimit,
  type PolicyOptions
} from './rate-limits.js'

/** An instance of a service connected to a Waygate Server, as `GET /api/services` lists it. */
interface Instance {
  id: string
  host: string | null
  version: string | null
  pid?: number | null
  connectedSince: string | null
  lastHeartbeat: string | null
  revision: number | null
  /** The server's verdict (no heartbeat for two heartbeat intervals, at most 60 s, or its stream closed); older servers send none. */
  stale?: boolean
  /** connected, registered, stale or disconnected (its stream closed; listed for a while); older servers send none. */
  state?: string
  /** When its stream closed, for a disconnected one. */
  disconnectedAt?: string | null
}

/**
 * One entry of `GET /api/services`: a Waygate Server answers `name`, `maintenance`, `rateLimit`
 * and `instances`; an embedded admin only `service` (null for the app itself) and `routes`.
 */
interface ListedService {
  name?: string | null
  service?: string | null
  routes: number
  maintenance?: GlobalMaintenance | null
  rateLimit?: GlobalRateLimit | null
  instances?: Instance[]
}

/** Without the server's `stale`, an instance whose last heartbeat is older than this is flagged stale. */
export const STALE_AFTER_MS = 60_000

function isDisconnected (instance: Instance): boolean {
  return instance.state === 'disconnected' || (typeof instance.disconnectedAt === 'string' && instance.disconnectedAt !== '')
}

function isStale (instance: Instance, now: number): boolean {
  if (typeof instance.stale === 'boolean') return instance.stale
  const beat = instance.lastHeartbeat === null ? Number.NaN : Date.parse(instance.lastHeartbeat)
  return Number.isNaN(beat) || now - beat > STALE_AFTER_MS
}

const path = (service: string, rest: string): string => `/api/services/${encodeURIComponent(service)}/${rest}`

/**
 * The SERVICE argument of `service …` commands. A service is named on the command line, never
 * taken from the scope: a whole service goes down only when the operator names it. `--service`
 * naming another one is a contradiction (exit 2); a scope from WAYGATE_SERVICE or `.waygate` that
 * differs is noted on stderr.
 */
async function serviceArg (ctx: Context, name: string): Promise<string> {
  const service = name.trim()
  if (!isServiceName(service)) throw new UsageError(`SERVICE: ${serviceNameProblem(service)}`, 'list them with: waygate services')
  const { service: scope } = await ctx.settings()
  if (scope !== null && scope !== service) {
    const source = await scopeSource(ctx)
    if (source === '--service') throw new UsageError(`SERVICE is ${service}, but --service is ${scope}`, 'give one of them')
    ctx.note(`note: acting on ${service}, not ${scope} from ${source}`)
  }
  return service
}

/** Route keys of `service` for exempt lists, sent without the service (as the server stores them). */
function ownKeys (service: string, values: string[], flag: string): string[] {
  return values.map(value => {
    const route = parseRouteArg(value, flag)
    if (route.service === null) return route.key
    if (route.service !== service) throw new UsageError(`${flag} ${route.key} is a route of service ${route.service}, not ${service}`)
    return route.key.slice(service.length + 1)
  })
}

/** What a server without service endpoints (an embedded admin) answers is explained. */
function explained (err: unknown, service: string): unknown {
  if (!(err instanceof CliError) || err.status !== 404 || /no rate limit is set/.test(err.message)) return err
  return new CliError(err.code, err.message, {
    hint: `service maintenance and service rate limits are served by a Waygate Server; is ${service} one of: waygate services?`,
    status: err.status,
    cause: err
  })
}

async function call<T> (ctx: Context, service: string, method: string, url: string, body?: unknown): Promise<T> {
  const client = await ctx.client()
  try {
    return (await client.request<T>(method, url, { body })).data
  } catch (err) {
    throw explained(err, service)
  }
}

/** The service's rate limit; `policy: null` when none is set (the server answers 404). */
async function getServiceRateLimit (ctx: Context, service: string): Promise<GlobalRateLimit> {
  try {
    return await call<GlobalRateLimit>(ctx, service, 'GET', path(service, 'rate-limit'))
  } catch (err) {
    if (err instanceof CliError && err.status === 404 && /no rate limit is set/.test(err.message)) return { policy: null, enabled: false, exemptRoutes: [] }
    throw err
  }
}

function noRateLimit (service: string): CliError {
  return new CliError('WG_ERR_NOT_FOUND', `no rate limit is set for service ${service}`, { hint: `set one with: waygate service rl set ${service} 1000/minute`, status: 404 })
}

/** `waygate services`, `waygate service maintenance …` (alias `sm`), `waygate service rl …` (alias `srl`). */
export function registerServiceCommands (program: Command, action: Action): void {
  program.command('services')
    .description('list the services: routes, maintenance and, on a Waygate Server, their connected instances')
    .addHelpText('after', `
An instance that missed two heartbeats (at most ${STALE_AFTER_MS / 1000} s without one) is flagged STALE;
one whose stream closed (crashed, killed or stopped) is flagged DISCONNECTED, for 60 s or three
heartbeats (the larger) after it went, then no longer listed.

Examples:
  waygate services
  waygate services --json | jq -r '.[] | select(.maintenance.enabled) | .name'`)
    .action(action(async (ctx) => {
      const { service: current } = await ctx.settings()
      const client = await ctx.client()
      const { data } = await client.request<ListedService[]>('GET', '/api/services')
      const now = ctx.now()
      const services = data.map(s => {
        const entry: ListedService & { name: string | null } = { ...s, name: s.name ?? s.service ?? null }
        if (Array.isArray(s.instances)) entry.instances = s.instances.map(i => ({ ...i, stale: isStale(i, now) }))
        return entry
      })
      if (ctx.json) {
        ctx.printJson(services)
        return
      }
      if (services.length === 0) {
        ctx.print('no services: no routes are registered')
        return
      }
      const fleet = services.some(s => Array.isArray(s.instances) || s.maintenance !== undefined)
      if (!fleet) {
        ctx.print(table(['SERVICE', 'ROUTES', ''], services.map(s => [
          s.name ?? '(this app)',
          String(s.routes),
          s.name !== null && s.name === current ? '← current' : ''
        ]), ctx.style))
        return
      }
      const rows: string[][] = []
      let instances = 0
      let stale = 0
      let disconnected = 0
      for (const s of services) {
        const notes: string[] = []
        if (s.name !== null && s.name === current) notes.push('← current')
        if (s.rateLimit?.policy !== null && s.rateLimit?.policy !== undefined) {
          notes.push(`rate limit ${limitsText(s.rateLimit.policy)}${s.rateLimit.enabled ? '' : ' (off)'}`)
        }
        const m = s.maintenance
        const head = [
          s.name ?? '(this app)',
          String(s.routes),
          m?.enabled === true ? ctx.style.yellow(`ON${m.reason === '' ? '' : `: ${m.reason}`}`) : m === undefined || m === null ? '-' : 'off'
        ]
        const list = s.instances ?? []
        if (list.length === 0) {
          rows.push([...head, '-', '-', '-', '-', '-', '-', ['no instance connected', ...notes].join('; ')])
          continue
        }
        list.forEach((i, n) => {
          const gone = isDisconnected(i)
          const late = !gone && isStale(i, now)
          if (gone) disconnected++
          else instances++
          if (late) stale++
          const health = gone
            ? ctx.style.red(`DISCONNECTED ${typeof i.disconnectedAt === 'string' ? relativeTime(i.disconnectedAt, now) : ''}`.trim())
            : late ? ctx.style.red(`STALE: no heartbeat for ${relativeTime(i.lastHeartbeat, now).replace(/ ago$/, '')}`) : ''
          rows.push([
            ...(n === 0 ? head : ['', '', '']),
            i.id,
            i.host ?? '-',
            i.version ?? '-',
            relativeTime(i.connectedSince, now),
            relativeTime(i.lastHeartbeat, now),
            i.revision === null ? '-' : String(i.revision),
            [health, ...(n === 0 ? notes : [])].filter(Boolean).join('; ')
          ])
        })
      }
      ctx.print(table(['SERVICE', 'ROUTES', 'MAINTENANCE', 'INSTANCE', 'HOST', 'VERSION', 'CONNECTED', 'HEARTBEAT', 'REVISION', 'NOTES'], rows, ctx.style))
      const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
      ctx.print(ctx.style.dim(`\n${plural(services.length, 'service')}, ${plural(instances, 'instance')} connected${stale > 0 ? `, ${stale} stale` : ''}${disconnected > 0 ? `, ${disconnected} disconnected` : ''}`))
    }))

  const service = program.command('service')
    .description('one service of a Waygate Server as a whole: its maintenance and its rate limit')
  registerServiceMaintenance(service.command('maintenance').description('the maintenance of one service (its routes answer 503, the other services stay up)'), 'waygate service maintenance', action)
  registerServiceRateLimit(service.command('rl').alias('rate-limit').description('the rate limit every route of one service shares (checked after the global one, before the route\'s)'), 'waygate service rl', action)
  registerServiceMaintenance(program.command('sm').description('short for: waygate service maintenance'), 'waygate sm', action)
  registerServiceRateLimit(program.command('srl').description('short for: waygate service rl'), 'waygate srl', action)
}

function registerServiceMaintenance (group: Command, name: string, action: Action): void {
  const print = (ctx: Context, service: string, state: GlobalMaintenance): void => {
    if (ctx.json) ctx.printJson({ service, ...state })
    else ctx.print(maintenanceDetails(state, ctx.style, ctx.now(), `maintenance of ${service}`))
  }

  group.command('status', { isDefault: true })
    .description('show the maintenance of a service')
    .argument('<service>', 'the service, e.g. payments-service')
    .addHelpText('after', `\nExample:\n  ${name} status payments-service`)
    .action(action(async (ctx, serviceText: string) => {
      const service = await serviceArg(ctx, serviceText)
      print(ctx, service, await call<GlobalMaintenance>(ctx, service, 'GET', path(service, 'maintenance')))
    }))

  group.command('enable')
    .description('put a service in maintenance: its routes answer 503 MAINTENANCE_MODE, except exempt ones')
    .argument('<service>', 'the service, e.g. payments-service')
    .option('--reason <text>', 'why; shown to callers and kept in the audit log')
    .option('--exempt <route>', 'a route of the service that keeps answering (/path or METHOD:/path); repeatable; given, it replaces the list', collect)
    .option('--include-force-active', 'block the service\'s force-active routes too')
    .addHelpText('after', `\nExample:\n  ${name} enable payments-service --reason "database failover" --exempt GET:/health`)
    .action(action(async (ctx, serviceText: string, options: { reason?: string, exempt?: string[], includeForceActive?: boolean }) => {
      const service = await serviceArg(ctx, serviceText)
      const body: Record<string, unknown> = {}
      if (options.reason !== undefined) body.reason = options.reason
      if (options.exempt !== undefined) body.exemptPaths = ownKeys(service, options.exempt, '--exempt')
      if (options.includeForceActive === true) body.includeForceActive = true
      print(ctx, service, await call<GlobalMaintenance>(ctx, service, 'POST', path(service, 'maintenance/enable'), body))
    }))

  group.command('disable')
    .description('take a service out of maintenance')
    .argument('<service>', 'the service, e.g. payments-service')
    .addHelpText('after', `\nExample:\n  ${name} disable payments-service`)
    .action(action(async (ctx, serviceText: string) => {
      const service = await serviceArg(ctx, serviceText)
      print(ctx, service, await call<GlobalMaintenance>(ctx, service, 'POST', path(service, 'maintenance/disable')))
    }))
}

function registerServiceRateLimit (group: Command, name: string, action: Action): void {
  const print = (ctx: Context, service: string, state: GlobalRateLimit): void => {
    if (ctx.json) {
      ctx.printJson({ service, ...state })
      return
    }
    ctx.print(rateLimitDetails(state, ctx.style, `rate limit of ${service}`))
    if (state.policy === null) ctx.note(`hint: set one with: ${name} set ${service} 1000/minute`)
  }

  group.command('get', { isDefault: true })
    .description('show the rate limit of a service')
    .argument('<service>', 'the service, e.g. payments-service')
    .addHelpText('after', `\nExample:\n  ${name} get payments-service`)
    .action(action(async (ctx, serviceText: string) => {
      const service = await serviceArg(ctx, serviceText)
      print(ctx, service, await getServiceRateLimit(ctx, service))
    }))

  group.command('set')
    .description('set the rate limit of a service: checked on each of its routes')
    .argument('<service>', 'the service, e.g. payments-service')
    .argument('<limit...>', 'N/unit or "N per [M] unit" (second, minute, hour, day); several, or comma-separated, are all enforced')
    .option('--algorithm <name>', `how requests are counted: ${ALGORITHMS.join(', ')}`)
    .option('--key <strategy>', `what one counter is kept for: ${KEY_STRATEGIES.join(', ')}`)
    .option('--burst <n>', 'extra requests allowed on top of every limit')
    .option('--exempt <route>', 'a route of the service the limit skips (/path or METHOD:/path); repeatable; given, it replaces the list', collect)
    .addHelpText('after', `
Settings not given are kept from the service's policy in force, and so is the exempt list unless
--exempt is given.

Examples:
  ${name} set payments-service 1000/minute --exempt GET:/health
  ${name} set orders-service 50/second --key ip --burst 10`)
    .action(action(async (ctx, serviceText: string, limitArgs: string[], options: PolicyOptions & { exempt?: string[] }) => {
      const service = await serviceArg(ctx, serviceText)
      const change = policyChange(limitArgs, options)
      const exemptRoutes = options.exempt === undefined ? undefined : ownKeys(service, options.exempt, '--exempt')
      const current = await getServiceRateLimit(ctx, service)
      const body: Record<string, unknown> = { ...applyChange(current.policy, change) }
      if (exemptRoutes !== undefined) body.exemptRoutes = exemptRoutes
      try {
        print(ctx, service, await call<GlobalRateLimit>(ctx, service, 'POST', path(service, 'rate-limit'), body))
      } catch (err) {
        if (err instanceof CliError && err.status === 400 && /limit/i.test(err.message)) {
          throw new CliError(err.code, err.message, { hint: LIMIT_HINT, status: err.status, cause: err })
        }
        throw err
      }
    }))

  for (const [command, enabled] of [['enable', true], ['disable', false]] as const) {
    group.command(command)
      .description(enabled ? 'enforce the service\'s rate limit again' : 'stop enforcing the service\'s rate limit (it stays set)')
      .argument('<service>', 'the service, e.g. payments-service')
      .addHelpText('after', `\nExample:\n  ${name} ${command} payments-service`)
      .action(action(async (ctx, serviceText: string) => {
        const service = await serviceArg(ctx, serviceText)
        const current = await getServiceRateLimit(ctx, service)
        if (current.policy === null) throw noRateLimit(service)
        // the server takes the whole policy: the one in force is sent back with the switch changed
        const { key: _key, ...policy } = current.policy
        const body = { ...policy, exemptRoutes: current.exemptRoutes, enabled }
        print(ctx, service, await call<GlobalRateLimit>(ctx, service, 'POST', path(service, 'rate-limit'), body))
      }))
  }

  group.command('reset')
    .description('reset the counters of a service\'s rate limit, in every instance of it (all clients, or one)')
    .argument('<service>', 'the service, e.g. payments-service')
    .option('--client <id>', 'only this client (an IP address, a user id… as the policy keys them)')
    .addHelpText('after', `\nExamples:\n  ${name} reset payments-service\n  ${name} reset payments-service --client 203.0.113.7`)
    .action(action(async (ctx, serviceText: string, options: { client?: string }) => {
      const service = await serviceArg(ctx, serviceText)
      if (options.client !== undefined && (options.client.trim() === '' || options.client.length > 300)) {
        throw new UsageError('--client: a client id of 1 to 300 characters')
      }
      const client = await ctx.client()
      try {
        await client.request<{ reset: boolean }>('POST', path(service, 'rate-limit/reset'), { query: { client: options.client } })
      } catch (err) {
        if (err instanceof CliError && err.status === 400 && /has no rate limit/.test(err.message)) throw noRateLimit(service)
        throw explained(err, service)
      }
      if (ctx.json) ctx.printJson({ service, reset: true, client: options.client ?? null })
      else ctx.print(`reset the rate limit counters of ${service}${options.client === undefined ? ' (all clients)' : ` for client ${options.client}`}`)
    }))

  group.command('delete')
    .description('delete the rate limit of a service')
    .argument('<service>', 'the service, e.g. payments-service')
    .addHelpText('after', `\nExample:\n  ${name} delete payments-service`)
    .action(action(async (ctx, serviceText: string) => {
      const service = await serviceArg(ctx, serviceText)
      const { deleted } = await call<{ deleted: boolean }>(ctx, service, 'DELETE', path(service, 'rate-limit'))
      if (ctx.json) ctx.printJson({ service, deleted })
      else ctx.print(deleted ? `deleted the rate limit of ${service}` : `no rate limit is set for service ${service}: nothing deleted`)
    }))
}
