import type { Command } from 'commander'
import type { Action, Context } from '../context.js'
import { auditTable, type AuditEntry, type RouteState } from '../format.js'
import { parseCount, parseSince, routeMatches } from '../parse.js'
import { scopedRoute } from '../scope.js'

interface LogOptions {
  route?: string
  limit?: string
  before?: string
  action?: string
  actor?: string
  since?: string
  until?: string
}

const PAGE_MAX = 500

/** Follows X-Next-Cursor until `limit` entries are in (the API gives at most 500 a page). */
async function fetchEntries (ctx: Context, query: Record<string, string | undefined>, limit: number): Promise<{ entries: AuditEntry[], next: string | null }> {
  const client = await ctx.client()
  const entries: AuditEntry[] = []
  let before = query.before
  for (;;) {
    const page = Math.min(PAGE_MAX, limit - entries.length)
    const res = await client.request<AuditEntry[]>('GET', '/api/audit', { query: { ...query, before, limit: page } })
    entries.push(...res.data)
    const next = res.headers.get('x-next-cursor')
    if (next === null || res.data.length === 0) return { entries, next: null }
    if (entries.length >= limit) return { entries, next }
    before = next
  }
}

/**
 * The keys whose history `--route` means. The API filters on one exact key, so a bare path (or a
 * key without a service, unscoped, on a Waygate Server) is widened here to every key registered
 * on that pattern.
 */
async function keysOf (ctx: Context, routeText: string): Promise<string[]> {
  const route = await scopedRoute(ctx, routeText, '--route')
  const client = await ctx.client()
  const routes = (await client.request<RouteState[]>('GET', '/api/routes', { query: { service: route.service ?? undefined } })).data
  const keys = routes.filter(r => routeMatches(route, r)).map(r => r.key)
  return keys.includes(route.key) ? keys : [route.key, ...keys]
}

/** `waygate log` (alias `audit`): who changed what, newest first. */
export function registerAuditCommand (program: Command, action: Action): void {
  program.command('log')
    .alias('audit')
    .description('show the audit log, newest first')
    .option('--route <route>', 'only this route (METHOD:/path, or /path for every method on it)')
    .option('--limit <n>', 'how many entries (default 50)')
    .option('--before <cursor>', 'entries older than this cursor (the id of the last entry already seen)')
    .option('--action <action>', 'only this action, e.g. disable, maintenance_on, global_maintenance_on')
    .option('--actor <name>', 'only changes made by this user')
    .option('--since <when>', 'only entries at or after this time: ISO date-time, or a duration ago (1h)')
    .option('--until <when>', 'only entries before this time: ISO date-time, or a duration ago')
    .addHelpText('after', `
Examples:
  waygate log
  waygate log --route GET:/payments --limit 10
  waygate log --service payments-service        # one service of a Waygate Server
  waygate audit --since 15m --json
  waygate log --before 0b6c1c1e-...      # the next page, as printed at the end of the previous one`)
    .action(action(async (ctx, options: LogOptions) => {
      const limit = options.limit === undefined ? 50 : parseCount(options.limit, '--limit')
      const now = ctx.now()
      const since = options.since === undefined ? undefined : parseSince(options.since, '--since', now)
      const until = options.until === undefined ? undefined : parseSince(options.until, '--until', now)
      const { service } = await ctx.settings()
      const base = { service: service ?? undefined, action: options.action, actor: options.actor, since, until, before: options.before }
      const keys = options.route === undefined ? [undefined] : await keysOf(ctx, options.route)

      const pages = await Promise.all(keys.map(key => fetchEntries(ctx, { ...base, key }, limit)))
      let entries: AuditEntry[]
      let next: string | null
      if (pages.length === 1) {
        entries = pages[0]!.entries
        next = pages[0]!.next
      } else {
        // cursors are positions in the whole log, so one cursor serves every key's query
        const merged = pages.flatMap(p => p.entries).sort((a, b) => b.timestamp.localeCompare(a.timestamp))
        entries = merged.slice(0, limit)
        next = merged.length > limit || pages.some(p => p.next !== null) ? entries[entries.length - 1]?.id ?? null : null
      }

      if (ctx.json) {
        ctx.printJson(entries)
        return
      }
      if (entries.length === 0) {
        ctx.print(options.before === undefined ? 'no audit entries' : 'no older audit entries')
        return
      }
      ctx.print(auditTable(entries, ctx.style, now))
      if (next !== null) {
        const again = [
          options.route === undefined ? '' : ` --route ${options.route}`,
          options.limit === undefined ? '' : ` --limit ${limit}`
        ].join('')
        ctx.print(ctx.style.dim(`\nolder entries: waygate log${again} --before ${next}`))
      }
    }))
}
