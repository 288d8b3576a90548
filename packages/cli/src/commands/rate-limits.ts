import type { Command } from 'commander'
import { encodeKey } from '../client.js'
import type { Action, Context } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { compactDuration, keyValues, relativeTime, table, type RouteState, type Style } from '../format.js'
import { collect, parseCount, parseRouteArg, routeMatches, splitKey, type RouteArg } from '../parse.js'
import { scopedRoute } from '../scope.js'
import { mutate } from './routes.js'

/** A rate limit policy as the admin API answers it (see RateLimitPolicy in @waygate/core). */
export interface RateLimitPolicy {
  key: string
  limits?: string[]
  algorithm?: string
  keyBy?: string
  burst?: number
  onMissingKey?: string
  exemptIps?: string[]
  tiers?: Record<string, string | string[]>
  tierProperty?: string
  userProperty?: string
  apiKeyHeader?: string
  group?: string
  failClosed?: boolean
}

/** One entry of `GET /api/rate-limits`. */
interface ListedPolicy {
  key: string
  policy: RateLimitPolicy
  source: 'config' | 'runtime'
}

/** The global policy as the admin API answers it; `policy` null when none is set (the CLI's own). */
export interface GlobalRateLimit {
  policy: RateLimitPolicy | null
  enabled: boolean
  exemptRoutes: string[]
}

/** One refused request of `GET /api/rate-limits/blocked`. */
interface BlockedRequest {
  timestamp: string
  key: string
  path: string
  client: string
  limit: string
  tier: string | null
  retryAfterSeconds: number
}

// What the server applies when a policy names none (RATE_LIMIT_DEFAULTS of @waygate/core).
export const DEFAULT_ALGORITHM = 'sliding_window'
export const DEFAULT_KEY = 'ip'
export const ALGORITHMS = ['sliding_window', 'fixed_window', 'moving_window', 'token_bucket']
export const KEY_STRATEGIES = ['ip', 'user', 'api_key', 'global']
const KEY_WORDS: Record<string, string> = {
  ip: 'per client address',
  user: 'per user',
  api_key: 'per API key',
  global: 'shared by every client',
  custom: 'per key of a function'
}
const MAX_BURST = 1_000_000_000
const BLOCKED_MAX = 500

export const LIMIT_HINT = 'a limit is N/unit or "N per [M] unit" with second, minute, hour or day, or unlimited; e.g. 100/minute or 10/second,1000/day'
const NO_GLOBAL = 'no global rate limit is set'
const SET_GLOBAL_HINT = 'set one with: waygate rl global set 1000/minute'

// ---- reading arguments ----

/** `10/second,1000/day 5/minute` → three limits; the server judges each one. */
export function parseLimits (values: string[]): string[] {
  const limits = values.flatMap(v => v.split(/[,;]/)).map(s => s.trim()).filter(Boolean)
  if (limits.length === 0) throw new UsageError('expected at least one LIMIT', 'e.g. 100/minute, or 10/second,1000/day')
  return limits
}

/** A choice among `allowed`, case-insensitive, `-` for `_` (`fixed-window`, `API_KEY`). */
export function parseChoice (value: string, flag: string, allowed: string[]): string {
  const choice = value.trim().toLowerCase().replace(/-/g, '_')
  if (!allowed.includes(choice)) throw new UsageError(`${flag} "${value}": expected one of ${allowed.join(', ')}`)
  return choice
}

export function parseBurst (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n > MAX_BURST) {
    throw new UsageError(`--burst "${value}": expected a whole number from 0 to ${MAX_BURST}`)
  }
  return n
}

export interface PolicyOptions { algorithm?: string, key?: string, burst?: string }

/** What `set` changes: the limits, and each option given. */
export interface PolicyChange {
  limits: string[]
  algorithm?: string
  keyBy?: string
  burst?: number
}

export function policyChange (limitArgs: string[], options: PolicyOptions): PolicyChange {
  const change: PolicyChange = { limits: parseLimits(limitArgs) }
  if (options.algorithm !== undefined) change.algorithm = parseChoice(options.algorithm, '--algorithm', ALGORITHMS)
  if (options.key !== undefined) change.keyBy = parseChoice(options.key, '--key', KEY_STRATEGIES)
  if (options.burst !== undefined) change.burst = parseBurst(options.burst)
  return change
}

/**
 * The policy to send: the one in force with the change applied, so raising a limit keeps the key
 * strategy, algorithm, burst, exempt addresses and group. New limits replace tiers.
 */
export function applyChange (current: RateLimitPolicy | null | undefined, change: PolicyChange): Omit<RateLimitPolicy, 'key'> {
  const { key: _key, limits: _limits, tiers: _tiers, ...kept } = current ?? { key: '' }
  const policy: Omit<RateLimitPolicy, 'key'> = { ...kept, limits: change.limits }
  if (change.algorithm !== undefined) policy.algorithm = change.algorithm
  if (change.keyBy !== undefined) policy.keyBy = change.keyBy
  if (change.burst !== undefined) policy.burst = change.burst
  return policy
}

// ---- showing policies ----

export function limitsText (policy: RateLimitPolicy): string {
  if (policy.limits !== undefined) return policy.limits.join(', ')
  return Object.entries(policy.tiers ?? {})
    .map(([tier, limits]) => `${tier}: ${Array.isArray(limits) ? limits.join(', ') : limits}`)
    .join('; ')
}

/** Settings beyond limits, algorithm, key and burst. */
export function policyNotes (policy: RateLimitPolicy): string {
  const notes: string[] = []
  if (policy.group !== undefined) notes.push(`group ${policy.group}`)
  if (policy.tiers !== undefined && policy.tierProperty !== undefined) notes.push(`plan from ${policy.tierProperty}`)
  if (policy.userProperty !== undefined) notes.push(`user from ${policy.userProperty}`)
  if (policy.apiKeyHeader !== undefined) notes.push(`header ${policy.apiKeyHeader}`)
  if (policy.onMissingKey !== undefined) notes.push(`no key: ${policy.onMissingKey}`)
  const ips = policy.exemptIps ?? []
  if (ips.length > 0) notes.push(ips.length <= 2 ? `exempt ${ips.join(', ')}` : `${ips.length} exempt addresses`)
  if (policy.failClosed === true) notes.push('fail-closed')
  return notes.join('; ')
}

function sourceWord (source: ListedPolicy['source'], style: Style): string {
  return source === 'runtime' ? style.cyan('RUNTIME') : 'CONFIG'
}

/** The table of `rl list` and `rl set`. */
function policiesTable (entries: ListedPolicy[], style: Style): string {
  return table(['ROUTE', 'LIMITS', 'ALGORITHM', 'KEY', 'BURST', 'SOURCE', 'NOTES'], entries.map(({ key, policy, source }) => [
    key,
    limitsText(policy),
    policy.algorithm ?? DEFAULT_ALGORITHM,
    policy.keyBy ?? DEFAULT_KEY,
    String(policy.burst ?? 0),
    sourceWord(source, style),
    policyNotes(policy)
  ]), style)
}

/** A global (or, with `label`, a service's) rate limit in full. */
export function globalDetails (global: GlobalRateLimit, style: Style, label = 'global rate limit'): string {
  const { policy } = global
  if (policy === null) return keyValues([[label, 'none']], style)
  const pairs: Array<[string, string]> = [
    [label, global.enabled ? style.green('ON') : `${style.yellow('OFF')} (set, not enforced)`],
    ['limits', limitsText(policy)],
    ['algorithm', policy.algorithm ?? DEFAULT_ALGORITHM],
    ['key', policy.keyBy ?? DEFAULT_KEY],
    ['burst', String(policy.burst ?? 0)]
  ]
  const notes = policyNotes(policy)
  if (notes !== '') pairs.push(['notes', notes])
  pairs.push(['exempt', global.exemptRoutes.length > 0 ? global.exemptRoutes.join(', ') : '-'])
  return keyValues(pairs, style)
}

function blockedTable (entries: BlockedRequest[], style: Style, now: number): string {
  const withTier = entries.some(e => e.tier !== null)
  const header = ['WHEN', 'ROUTE', 'PATH', 'CLIENT', 'LIMIT', ...(withTier ? ['TIER'] : []), 'RETRY']
  return table(header, entries.map(e => [
    relativeTime(e.timestamp, now),
    e.key === '*' ? '(global)' : e.key,
    e.path,
    e.client,
    e.limit,
    ...(withTier ? [e.tier ?? '-'] : []),
    // seconds while they are few enough to count, as Retry-After gives them
    e.retryAfterSeconds < 600 ? `${e.retryAfterSeconds}s` : compactDuration(e.retryAfterSeconds * 1000)
  ]), style)
}

// ---- talking to the API ----

async function listPolicies (ctx: Context): Promise<ListedPolicy[]> {
  const client = await ctx.client()
  return (await client.request<ListedPolicy[]>('GET', '/api/rate-limits')).data
}

const isNoGlobal = (err: unknown): boolean =>
  err instanceof CliError && err.code === 'WG_ERR_NOT_FOUND' && err.message.includes(NO_GLOBAL)

/** The global policy; `policy: null` when none is set (the API answers 404). */
async function getGlobal (ctx: Context): Promise<GlobalRateLimit> {
  const client = await ctx.client()
  try {
    return (await client.request<GlobalRateLimit>('GET', '/api/rate-limits/global')).data
  } catch (err) {
    if (isNoGlobal(err)) return { policy: null, enabled: false, exemptRoutes: [] }
    throw err
  }
}

/** Better hints than the generic ones for what these endpoints refuse. */
function explained (err: unknown): unknown {
  if (!(err instanceof CliError)) return err
  const redo = (hint: string): CliError => new CliError(err.code, err.message, { hint, status: err.status, matches: err.matches, cause: err.cause })
  if (err.code === 'WG_ERR_RATE_LIMIT_INVALID') return redo(LIMIT_HINT)
  if (isNoGlobal(err)) return redo(SET_GLOBAL_HINT)
  if (err.code === 'WG_ERR_REQUEST_INVALID' && /has no rate limit/.test(err.message)) return redo('see the routes with a rate limit: waygate rl list')
  return err
}

async function request<T> (ctx: Context, method: string, path: string, options: { body?: unknown, query?: Record<string, string | undefined> } = {}): Promise<T> {
  const client = await ctx.client()
  try {
    return (await client.request<T>(method, path, options)).data
  } catch (err) {
    throw explained(err)
  }
}

/**
 * The route keys a ROUTE argument stands for, resolved as the API resolves them: a registered key
 * is itself; a bare path stands for every method on it, and for several only with `all`. An
 * unknown route is left for the server to report.
 */
async function targetKeys (ctx: Context, route: RouteArg, all: boolean): Promise<string[]> {
  if (route.method !== null) return [route.key]
  const client = await ctx.client()
  const routes = (await client.request<RouteState[]>('GET', '/api/routes', { query: { service: route.service ?? undefined } })).data
  if (routes.some(r => r.key === route.key)) return [route.key]
  const matches = routes.filter(r => r.method !== null && routeMatches(route, r)).map(r => r.key).sort()
  if (matches.length === 0) return [route.key]
  if (matches.length > 1 && !all) {
    throw new CliError('WG_ERR_ROUTE_AMBIGUOUS', `${route.key} matches several routes`, { matches })
  }
  return matches
}

/** With a service in scope, only the keys of its routes; null when every key is in scope. */
async function serviceKeys (ctx: Context): Promise<{ service: string, keys: Set<string> } | null> {
  const { service } = await ctx.settings()
  if (service === null) return null
  const client = await ctx.client()
  const routes = (await client.request<RouteState[]>('GET', '/api/routes', { query: { service } })).data
  return { service, keys: new Set(routes.map(r => r.key)) }
}

function printGlobal (ctx: Context, global: GlobalRateLimit): void {
  if (ctx.json) {
    ctx.printJson(global)
    return
  }
  ctx.print(globalDetails(global, ctx.style))
  if (global.policy === null) ctx.note(`hint: ${SET_GLOBAL_HINT}`)
}

const ALL_HELP = 'with a bare /path matching several methods: apply to all of them'
const ROUTE_HELP = 'METHOD:/path, or /path for every method on it'

/** `waygate rl` (alias `rate-limits`): list | set | reset | delete | hits, and `rl global …`. */
export function registerRateLimitCommands (program: Command, action: Action): void {
  const rl = program.command('rl')
    .alias('rate-limits')
    .description('rate limits: list, set, reset and delete policies, see blocked requests, the global policy')

  rl.command('list', { isDefault: true })
    .description('list rate limit policies: declared in code (CONFIG) or set at runtime (RUNTIME, which wins)')
    .addHelpText('after', `
Examples:
  waygate rl list
  waygate rl list --json | jq -r '.[] | select(.source == "runtime") | .key'`)
    .action(action(async (ctx) => {
      const scope = await serviceKeys(ctx)
      const [listed, global] = await Promise.all([listPolicies(ctx), ctx.json ? null : getGlobal(ctx)])
      const entries = scope === null ? listed : listed.filter(p => scope.keys.has(p.key))
      if (ctx.json) {
        ctx.printJson(entries)
        return
      }
      if (global !== null && global.policy !== null && global.enabled) {
        const exempt = global.exemptRoutes.length > 0 ? ` (exempt: ${global.exemptRoutes.join(', ')})` : ''
        ctx.print(ctx.style.yellow(`GLOBAL RATE LIMIT ON: ${limitsText(global.policy)} ${KEY_WORDS[global.policy.keyBy ?? DEFAULT_KEY] ?? 'per key'}, before each route's own`) + exempt + '\n\n')
      }
      if (entries.length === 0) {
        ctx.print(scope === null ? 'no rate limits: none declared in code, none set at runtime' : `no rate limits for service ${scope.service}`)
        ctx.note('hint: set one with: waygate rl set ROUTE LIMIT, e.g. waygate rl set GET:/search 10/minute')
        return
      }
      ctx.print(policiesTable(entries, ctx.style))
      const runtime = entries.filter(p => p.source === 'runtime').length
      ctx.print(ctx.style.dim(`\n${entries.length} ${entries.length === 1 ? 'policy' : 'policies'}${runtime > 0 ? `, ${runtime} set at runtime` : ''}`))
    }))

  rl.command('set')
    .description('set a runtime policy for a route: stored, it overrides the route\'s config until deleted')
    .argument('<route>', ROUTE_HELP)
    .argument('<limit...>', 'N/unit or "N per [M] unit" (second, minute, hour, day), or unlimited; several, or comma-separated, are all enforced')
    .option('--algorithm <name>', `how requests are counted: ${ALGORITHMS.join(', ')}`)
    .option('--key <strategy>', `what one counter is kept for: ${KEY_STRATEGIES.join(', ')}`)
    .option('--burst <n>', 'extra requests allowed on top of every limit')
    .option('--all', ALL_HELP)
    .addHelpText('after', `
Settings not given (key strategy, algorithm, burst, exempt addresses, group...) are kept from the
policy in force; new limits replace tiers.

Examples:
  waygate rl set GET:/public/posts 20/minute
  waygate rl set POST:/data 10/second --algorithm fixed_window
  waygate rl set GET:/search 10/second,1000/day --key global
  waygate rl set GET:/export "5 per 10 minutes" --key user --burst 2`)
    .action(action(async (ctx, routeText: string, limitArgs: string[], options: PolicyOptions & { all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const change = policyChange(limitArgs, options)
      const listed = await listPolicies(ctx)
      const policies = await mutate(ctx, route, options.all === true, async all => {
        const set: RateLimitPolicy[] = []
        for (const key of await targetKeys(ctx, route, all)) {
          const body = { ...applyChange(listed.find(p => p.key === key)?.policy, change), key }
          set.push(...(await request<{ policies: RateLimitPolicy[] }>(ctx, 'POST', '/api/rate-limits', { body })).policies)
        }
        return set
      })
      if (ctx.json) ctx.printJson({ policies })
      else ctx.print(policiesTable(policies.map(policy => ({ key: policy.key, policy, source: 'runtime' as const })), ctx.style))
    }))

  rl.command('reset')
    .description('forget a route\'s counters: every client starts afresh (or one client, with --key)')
    .argument('<route>', ROUTE_HELP)
    .option('--key <client>', 'only this client: an address, user id or API key, as `waygate rl hits` shows it')
    .option('--all', ALL_HELP)
    .addHelpText('after', `
Examples:
  waygate rl reset GET:/public/posts
  waygate rl reset GET:/public/posts --key 203.0.113.7`)
    .action(action(async (ctx, routeText: string, options: { key?: string, all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const client = options.key
      if (client !== undefined && client.trim() === '') throw new UsageError('--key: expected a client id')
      const done = await mutate(ctx, route, options.all === true, async all => {
        let keys = await targetKeys(ctx, route, all)
        if (keys.length > 1) {
          // a route without a rate limit has no counters to forget
          const limited = new Set((await listPolicies(ctx)).map(p => p.key))
          if (keys.some(k => limited.has(k))) keys = keys.filter(k => limited.has(k))
        }
        for (const key of keys) {
          await request(ctx, 'POST', `/api/rate-limits/${encodeKey(key)}/reset`, { query: { client } })
        }
        return keys
      })
      if (ctx.json) {
        ctx.printJson({ routes: done.map(key => ({ key, reset: true, client: client ?? null })) })
        return
      }
      const whom = client === undefined ? 'every client' : `client ${client}`
      ctx.print(done.map(key => `reset the rate limit counters of ${key} for ${whom}`).join('\n'))
    }))

  rl.command('delete')
    .description('delete a route\'s runtime policy: the limit declared in its config, if any, applies again')
    .argument('<route>', ROUTE_HELP)
    .option('--all', ALL_HELP)
    .addHelpText('after', '\nExample:\n  waygate rl delete GET:/public/posts')
    .action(action(async (ctx, routeText: string, options: { all?: boolean }) => {
      const route = await scopedRoute(ctx, routeText)
      const results = await mutate(ctx, route, options.all === true, async all => {
        const out: Array<{ key: string, deleted: boolean }> = []
        for (const key of await targetKeys(ctx, route, all)) {
          const { deleted } = await request<{ deleted: boolean }>(ctx, 'DELETE', `/api/rate-limits/${encodeKey(key)}`)
          out.push({ key, deleted })
        }
        return out
      })
      if (ctx.json) {
        ctx.printJson({ routes: results })
        return
      }
      ctx.print(results.map(r => r.deleted
        ? `deleted the runtime rate limit of ${r.key}; the limit in its config, if any, applies again`
        : `${r.key} has no runtime rate limit: nothing deleted`).join('\n'))
      if (results.some(r => !r.deleted)) {
        ctx.note('hint: a limit declared in code stays; lift it at runtime with: waygate rl set ROUTE unlimited')
      }
    }))

  rl.command('hits')
    .alias('blocked')
    .description('recently refused (429) requests, newest first, as this server instance recorded them')
    .option('--route <route>', 'only this route (METHOD:/path, or /path for every method on it)')
    .option('--limit <n>', `how many (default 50, at most ${BLOCKED_MAX})`)
    .addHelpText('after', `
Examples:
  waygate rl hits
  waygate rl hits --route GET:/public/posts --limit 10 --json`)
    .action(action(async (ctx, options: { route?: string, limit?: string }) => {
      const limit = options.limit === undefined ? 50 : parseCount(options.limit, '--limit', BLOCKED_MAX)
      const route = options.route === undefined ? null : await scopedRoute(ctx, options.route, '--route')
      const scope = await serviceKeys(ctx)
      const filtered = route !== null || scope !== null
      let entries = await request<BlockedRequest[]>(ctx, 'GET', '/api/rate-limits/blocked', { query: { limit: String(filtered ? BLOCKED_MAX : limit) } })
      if (route !== null) {
        entries = entries.filter(e => {
          const parts = splitKey(e.key)
          return parts !== null && routeMatches(route, parts)
        })
      }
      if (scope !== null) entries = entries.filter(e => scope.keys.has(e.key))
      entries = entries.slice(0, limit)
      if (ctx.json) {
        ctx.printJson(entries)
        return
      }
      if (entries.length === 0) {
        ctx.print(route === null ? 'no blocked requests' : `no blocked requests for ${route.key}`)
        return
      }
      ctx.print(blockedTable(entries, ctx.style, ctx.now()))
      const more = entries.length === limit && limit < BLOCKED_MAX ? `; older ones: --limit ${BLOCKED_MAX}` : ''
      ctx.print(ctx.style.dim(`\n${entries.length} blocked request${entries.length === 1 ? '' : 's'}, newest first${more}`))
    }))

  registerGlobalRateLimitCommands(rl, action)
}

/** `waygate rl global get | set | delete | reset | enable | disable`. */
function registerGlobalRateLimitCommands (rl: Command, action: Action): void {
  const global = rl.command('global').description('the global rate limit: checked on every route before the route\'s own')

  global.command('get', { isDefault: true })
    .description('show the global rate limit')
    .action(action(async (ctx) => {
      printGlobal(ctx, await getGlobal(ctx))
    }))

  global.command('set')
    .description('set the global rate limit (enforced at once, unless it was set and disabled)')
    .argument('<limit...>', 'N/unit or "N per [M] unit" (second, minute, hour, day); several, or comma-separated, are all enforced')
    .option('--algorithm <name>', `how requests are counted: ${ALGORITHMS.join(', ')}`)
    .option('--key <strategy>', `what one counter is kept for: ${KEY_STRATEGIES.join(', ')}`)
    .option('--burst <n>', 'extra requests allowed on top of every limit')
    .option('--exempt <route>', 'a route the global limit skips (/path or METHOD:/path); repeatable; given, it replaces the list', collect)
    .addHelpText('after', `
Settings not given are kept from the global policy in force, and so is the exempt list unless
--exempt is given.

Examples:
  waygate rl global set 1000/minute --exempt /health
  waygate rl global set 100/second,10000/hour --key ip --burst 20`)
    .action(action(async (ctx, limitArgs: string[], options: PolicyOptions & { exempt?: string[] }) => {
      const change = policyChange(limitArgs, options)
      const exemptRoutes = options.exempt?.map(r => parseRouteArg(r, '--exempt').key)
      const current = await getGlobal(ctx)
      const body: Record<string, unknown> = { ...applyChange(current.policy, change) }
      if (exemptRoutes !== undefined) body.exemptRoutes = exemptRoutes
      printGlobal(ctx, await request<GlobalRateLimit>(ctx, 'POST', '/api/rate-limits/global', { body }))
    }))

  for (const [name, enabled] of [['enable', true], ['disable', false]] as const) {
    global.command(name)
      .description(enabled ? 'enforce the global rate limit again' : 'stop enforcing the global rate limit (it stays set)')
      .addHelpText('after', `\nExample:\n  waygate rl global ${name}`)
      .action(action(async (ctx) => {
        printGlobal(ctx, await request<GlobalRateLimit>(ctx, 'POST', `/api/rate-limits/global/${name}`))
      }))
  }

  global.command('reset')
    .description('forget the global counters: every client starts afresh (or one client, with --key)')
    .option('--key <client>', 'only this client: an address, user id or API key')
    .addHelpText('after', '\nExamples:\n  waygate rl global reset\n  waygate rl global reset --key 203.0.113.7')
    .action(action(async (ctx, options: { key?: string }) => {
      const client = options.key
      if (client !== undefined && client.trim() === '') throw new UsageError('--key: expected a client id')
      await request(ctx, 'POST', '/api/rate-limits/global/reset', { query: { client } })
      if (ctx.json) ctx.printJson({ reset: true, client: client ?? null })
      else ctx.print(`reset the global rate limit counters for ${client === undefined ? 'every client' : `client ${client}`}`)
    }))

  global.command('delete')
    .description('delete the global rate limit')
    .addHelpText('after', '\nExample:\n  waygate rl global delete')
    .action(action(async (ctx) => {
      const { deleted } = await request<{ deleted: boolean }>(ctx, 'DELETE', '/api/rate-limits/global')
      if (ctx.json) ctx.printJson({ deleted })
      else ctx.print(deleted ? 'deleted the global rate limit' : `${NO_GLOBAL}: nothing deleted`)
    }))
}
