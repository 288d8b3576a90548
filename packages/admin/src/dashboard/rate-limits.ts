import { createHash } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import {
  DEFAULT_ALGORITHM,
  parseRouteKey,
  RATE_LIMIT_DEFAULTS,
  type BlockedRequest,
  type GlobalRateLimit,
  type RateLimiter,
  type RateLimitPolicy,
  type RouteState,
  type WaygateEngine
} from '@waygate/core'
import { WG_ERR_REQUEST_INVALID } from '../errors.js'
import type { FormValues } from './actions.js'
import type { DashboardFleet } from './fleet.js'
import { domId, STATUS_LABELS, timeView, type TimeView } from './format.js'
import { queryString, type ActionLink } from './pages.js'
import {
  ALGORITHM_LABELS,
  fieldViews,
  KEY_BY_LABELS,
  MISSING_KEY_LABELS,
  label,
  RATE_LIMIT_ACTIONS,
  rateLimitAction,
  readRateLimitForm,
  SERVICE_RATE_LIMIT_ACTIONS,
  serviceRateLimitAction,
  type RateLimitActionSpec,
  type RateLimitTarget,
  type ServiceRateLimitActionSpec
} from './rate-limit-actions.js'

// ---- what the pages show ----

/** A policy as a table row or card shows it. */
export interface PolicyView {
  limits: string[]
  tiers: Array<{ name: string, limits: string[] }>
  algorithm: string
  algorithmIsDefault: boolean
  keyBy: string
  keyDetail: string | null
  burst: number
  details: string[]
}

export function policyView (policy: RateLimitPolicy): PolicyView {
  const keyBy = policy.keyBy ?? RATE_LIMIT_DEFAULTS.keyBy
  const details: string[] = []
  if (policy.group !== undefined) details.push(`group ${policy.group}`)
  if (policy.tiers !== undefined) details.push(`tier from request.${policy.tierProperty ?? RATE_LIMIT_DEFAULTS.tierProperty}`)
  if (policy.exemptIps !== undefined && policy.exemptIps.length > 0) {
    details.push(`${policy.exemptIps.length} exempt address${policy.exemptIps.length === 1 ? '' : 'es'}`)
  }
  if (policy.onMissingKey !== undefined) details.push(`no key: ${label(MISSING_KEY_LABELS, policy.onMissingKey)}`)
  if (policy.failClosed === true) details.push('fails closed')
  return {
    limits: policy.limits ?? [],
    tiers: Object.entries(policy.tiers ?? {}).map(([name, limits]) => ({ name, limits: Array.isArray(limits) ? limits : [limits] })),
    algorithm: label(ALGORITHM_LABELS, policy.algorithm ?? DEFAULT_ALGORITHM),
    algorithmIsDefault: policy.algorithm === undefined,
    keyBy: label(KEY_BY_LABELS, keyBy),
    keyDetail: keyBy === 'user'
      ? `request.${policy.userProperty ?? RATE_LIMIT_DEFAULTS.userProperty}`
      : keyBy === 'api_key' ? policy.apiKeyHeader ?? RATE_LIMIT_DEFAULTS.apiKeyHeader : null,
    burst: policy.burst ?? 0,
    details
  }
}

function confirmHref (prefix: string, action: string, key: string | null, returnTo: string, client = ''): string {
  return `${prefix}/rate-limits/confirm${queryString({ action, key: key ?? '', client, return: returnTo })}`
}

function links (target: RateLimitTarget, scope: 'route' | 'global', prefix: string, returnTo: string, focusBase: string): ActionLink[] {
  return RATE_LIMIT_ACTIONS.filter(spec => spec.scope === scope && spec.offer(target)).map(spec => ({
    id: spec.id,
    label: spec.label,
    tone: spec.tone,
    href: confirmHref(prefix, spec.id, target.key, returnTo),
    focusId: `${focusBase}-${spec.id}`
  }))
}

export interface RateLimitGlobalView {
  state: 'none' | 'on' | 'off'
  policy: PolicyView | null
  exemptRoutes: string[]
  actions: ActionLink[]
}

export interface PolicyRow {
  id: string
  key: string
  method: string
  path: string
  service: string | null
  /** False when no route with this key is registered (a stored policy outliving its route). */
  registered: boolean
  source: 'config' | 'runtime'
  policy: PolicyView
  blocked: number
  blockedHref: string
  actions: ActionLink[]
}

export interface UnlimitedRow {
  id: string
  key: string
  method: string
  path: string
  service: string | null
  status: string
  statusLabel: string
  /** Whether the global policy checks this route: `applies`, `exempt`, or `none` (no global policy on). */
  global: 'applies' | 'exempt' | 'none'
  /** The same for the policy of the service the page is scoped to; null when unscoped. */
  serviceLimit: 'applies' | 'exempt' | 'none' | null
  actions: ActionLink[]
}

export interface RateLimitsFilter {
  q: string
  page: number
}

export interface BlockedFilter {
  key: string
  client: string
  limit: number
}

const UNLIMITED_PER_PAGE = 25
export const BLOCKED_SHOWN = [50, 100, 250, 500]

function text (value: unknown, max: number): string {
  if (Array.isArray(value)) value = value[0]
  return typeof value === 'string' ? value.trim().slice(0, max) : ''
}

export function readRateLimitsFilter (query: unknown): RateLimitsFilter {
  const q = (query ?? {}) as Record<string, unknown>
  const page = Number(text(q.page, 12))
  return { q: text(q.q, 200), page: Number.isInteger(page) && page >= 1 ? Math.min(page, 1_000_000) : 1 }
}

export function readBlockedFilter (query: unknown): BlockedFilter {
  const q = (query ?? {}) as Record<string, unknown>
  const limit = Number(text(q.limit, 4))
  return { key: text(q.key, 2048), client: text(q.client, 300), limit: BLOCKED_SHOWN.includes(limit) ? limit : 100 }
}

function splitKey (key: string, state: RouteState | undefined): { method: string, path: string } {
  if (state !== undefined) return { method: state.method ?? 'ANY', path: state.path }
  try {
    const parsed = parseRouteKey(key)
    return { method: parsed.method ?? 'ANY', path: parsed.path }
  } catch {
    return { method: '', path: key }
  }
}

/** Every refused request this instance keeps, newest first. */
function wholeLog (limiter: RateLimiter): BlockedRequest[] {
  return limiter.blocked(Number.MAX_SAFE_INTEGER)
}

/**
 * A token that changes whenever what the rate limit pages show may have: a policy changed (here
 * or on another instance) or this instance refused another request. The pages' script polls it,
 * because the blocked log is per instance and sends no event.
 */
export function liveVersion (limiter: RateLimiter): string {
  const log = wholeLog(limiter)
  const newest = log[0]
  const digest = newest === undefined ? '-' : createHash('sha256').update(JSON.stringify(newest)).digest('base64url').slice(0, 12)
  return `${limiter.version}.${log.length}.${digest}`
}

function tabs (prefix: string, current: 'policies' | 'blocked', blocked: number, service: string) {
  const scope = queryString({ service })
  return [
    { id: 'policies', label: 'Policies', href: `${prefix}/rate-limits${scope}`, current: current === 'policies', count: null },
    { id: 'blocked', label: 'Blocked requests', href: `${prefix}/rate-limits/blocked${scope}`, current: current === 'blocked', count: blocked }
  ]
}

export function rateLimitGlobalView (global: GlobalRateLimit | null, prefix: string, returnTo: string): RateLimitGlobalView {
  const target: RateLimitTarget = { key: null, listed: null, global }
  return {
    state: global === null ? 'none' : global.enabled ? 'on' : 'off',
    policy: global === null ? null : policyView(global.policy),
    exemptRoutes: global?.exemptRoutes ?? [],
    actions: links(target, 'global', prefix, returnTo, 'rl-global')
  }
}

/** The rate limit card of one service of a Waygate Server, beside the global one. */
export function rateLimitServiceView (fleet: DashboardFleet, service: string, prefix: string, returnTo: string): RateLimitGlobalView & { name: string } {
  const policy = fleet.services().find(s => s.name === service)?.rateLimit ?? null
  const target: RateLimitTarget = { key: service, listed: null, global: policy }
  return {
    name: service,
    state: policy === null ? 'none' : policy.enabled ? 'on' : 'off',
    policy: policy === null ? null : policyView(policy.policy),
    exemptRoutes: policy?.exemptRoutes ?? [],
    actions: SERVICE_RATE_LIMIT_ACTIONS.filter(spec => spec.offer(target)).map(spec => ({
      id: spec.id,
      label: spec.label,
      tone: spec.tone,
      href: confirmHref(prefix, spec.id, service, returnTo),
      focusId: `rl-service-${spec.id}`
    }))
  }
}

/** Whether a route key belongs to `service` ('' for all): its state says so, or its `service:` prefix. */
function ofService (key: string, state: RouteState | undefined, service: string): boolean {
  if (service === '') return true
  return state !== undefined ? state.service === service : key.startsWith(`${service}:`)
}

/** Everything the rate limits page shows; `service` scopes it to one service of a Waygate Server. */
export function rateLimitsPage (engine: WaygateEngine, limiter: RateLimiter, filter: RateLimitsFilter, prefix: string, service = '', servicePolicy: GlobalRateLimit | null = null) {
  const returnTo = `${prefix}/rate-limits${queryString({ service, q: filter.q, page: filter.page === 1 ? '' : filter.page })}`
  const log = wholeLog(limiter).filter(e => ofService(e.key, undefined, service))
  const blockedBy = new Map<string, number>()
  for (const entry of log) blockedBy.set(entry.key, (blockedBy.get(entry.key) ?? 0) + 1)
  const global = limiter.getGlobal()
  const active = limiter.activeGlobal()
  const routes = engine.listRoutes().filter(s => ofService(s.key, s, service))
  const states = new Map(engine.listRoutes().map(s => [s.key, s]))
  // the server's own service policies (`@service:…`) have a card of their own
  const listed = limiter.list().filter(p => !p.key.startsWith('@service:') && ofService(p.key, states.get(p.key), service))
  const needle = filter.q.toLowerCase()
  const matches = (...values: Array<string | undefined>): boolean => needle === '' || values.some(v => v !== undefined && v.toLowerCase().includes(needle))

  const policies: PolicyRow[] = listed.filter(p => matches(p.key, p.policy.group)).map(p => {
    const state = states.get(p.key)
    const id = domId('rl', p.key)
    return {
      id,
      key: p.key,
      ...splitKey(p.key, state),
      // scoped to one service, its name on every row says nothing
      service: service === '' ? state?.service ?? null : null,
      registered: state !== undefined,
      source: p.source,
      policy: policyView(p.policy),
      blocked: blockedBy.get(p.key) ?? 0,
      blockedHref: `${prefix}/rate-limits/blocked${queryString({ key: p.key })}`,
      actions: links({ key: p.key, listed: p, global }, 'route', prefix, returnTo, id)
    }
  })

  // a route is limited by a policy for its key or, as the plugin looks them up, for its bare pattern
  const unlimitedAll = routes.filter(s => limiter.policyFor(s.key) === null && limiter.policyFor(s.path) === null)
  const unlimitedMatching = unlimitedAll.filter(s => matches(s.key, s.service ?? undefined))
  const pages = Math.max(1, Math.ceil(unlimitedMatching.length / UNLIMITED_PER_PAGE))
  const page = Math.min(filter.page, pages)
  const first = (page - 1) * UNLIMITED_PER_PAGE
  const unlimited: UnlimitedRow[] = unlimitedMatching.slice(first, first + UNLIMITED_PER_PAGE).map(s => {
    const id = domId('rl-free', s.key)
    return {
      id,
      key: s.key,
      method: s.method ?? 'ANY',
      path: s.path,
      service: service === '' ? s.service : null,
      status: s.status,
      statusLabel: STATUS_LABELS[s.status],
      global: active === null ? 'none' : active.exempt.has(s.key) || active.exempt.has(s.path) ? 'exempt' : 'applies',
      // the service's own policy names its routes by their plain keys
      serviceLimit: service === '' ? null : servicePolicy === null || !servicePolicy.enabled ? 'none' : servicePolicy.exemptRoutes.includes(s.key.slice(service.length + 1)) || servicePolicy.exemptRoutes.includes(s.path) ? 'exempt' : 'applies',
      actions: links({ key: s.key, listed: null, global }, 'route', prefix, returnTo, id)
    }
  })
  const pageHref = (n: number): string => `${prefix}/rate-limits${queryString({ service, q: filter.q, page: n === 1 ? '' : n })}#wg-rl-unlimited`

  return {
    filter,
    filtered: filter.q !== '',
    resetHref: `${prefix}/rate-limits${queryString({ service })}`,
    tabs: tabs(prefix, 'policies', log.length, service),
    rlGlobal: rateLimitGlobalView(global, prefix, returnTo),
    counters: [
      { id: 'policies', label: 'Policies', count: listed.length, href: '#wg-rl-policies' },
      { id: 'runtime', label: 'Set at runtime', count: listed.filter(p => p.source === 'runtime').length, href: '#wg-rl-policies' },
      { id: 'unlimited', label: 'Routes without a limit', count: unlimitedAll.length, href: '#wg-rl-unlimited' },
      { id: 'blocked', label: 'Blocked (this instance)', count: log.length, href: `${prefix}/rate-limits/blocked${queryString({ service })}` }
    ],
    policies,
    policiesTotal: listed.length,
    unlimited,
    unlimitedTotal: unlimitedAll.length,
    unlimitedMatching: unlimitedMatching.length,
    pagination: {
      page,
      pages,
      from: unlimitedMatching.length === 0 ? 0 : first + 1,
      to: first + unlimited.length,
      previous: page > 1 ? pageHref(page - 1) : null,
      next: page < pages ? pageHref(page + 1) : null
    },
    returnTo
  }
}

export interface BlockedRow {
  id: string
  time: TimeView
  key: string
  global: boolean
  path: string
  client: string
  limit: string
  tier: string | null
  retryAfterSeconds: number
  actions: ActionLink[]
}

/** The blocked log gives no ids: one from the entry itself, stable while the entry stays in the log. */
function blockedIds (log: readonly BlockedRequest[]): string[] {
  const seen = new Map<string, number>()
  const ids = new Array<string>(log.length)
  // oldest first, so that an entry keeps its id as newer ones arrive
  for (let i = log.length - 1; i >= 0; i--) {
    const digest = createHash('sha256').update(JSON.stringify(log[i])).digest('base64url').slice(0, 16)
    const n = (seen.get(digest) ?? 0) + 1
    seen.set(digest, n)
    ids[i] = `blocked-${digest}${n === 1 ? '' : `-${n}`}`
  }
  return ids
}

/**
 * The counter id of a blocked entry, when the log holds it whole: not shortened, not a request
 * refused for having no key, and not under a tier (whose counters are kept per plan).
 */
function exactClient (entry: BlockedRequest): string {
  if (entry.tier !== null || entry.client === '(missing key)' || (entry.client.length === 64 && entry.client.endsWith('...'))) return ''
  return entry.client
}

function top (log: readonly BlockedRequest[], pick: (e: BlockedRequest) => string, n: number): Array<{ value: string, count: number }> {
  const counts = new Map<string, number>()
  for (const entry of log) counts.set(pick(entry), (counts.get(pick(entry)) ?? 0) + 1)
  return [...counts].map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count || a.value.localeCompare(b.value)).slice(0, n)
}

/** Everything the blocked-requests page shows. */
export function blockedPage (limiter: RateLimiter, filter: BlockedFilter, now: number, prefix: string, service = '') {
  const log = wholeLog(limiter).filter(e => ofService(e.key, undefined, service))
  const ids = blockedIds(log)
  const base = `${prefix}/rate-limits/blocked`
  const scope = queryString({ service })
  const returnTo = `${base}${queryString({ service, key: filter.key, client: filter.client, limit: filter.limit === 100 ? '' : filter.limit })}`
  const needle = filter.client.toLowerCase()
  const global = limiter.getGlobal()
  const rows: BlockedRow[] = []
  let matching = 0
  log.forEach((entry, i) => {
    if (filter.key !== '' && entry.key !== filter.key) return
    if (needle !== '' && !entry.client.toLowerCase().includes(needle)) return
    matching++
    if (rows.length >= filter.limit) return
    const isGlobal = entry.key === '*'
    const limited = isGlobal ? global !== null : limiter.policyFor(entry.key) !== null
    const id = ids[i]!
    rows.push({
      id,
      time: timeView(entry.timestamp, now),
      key: entry.key,
      global: isGlobal,
      path: entry.path,
      client: entry.client,
      limit: entry.limit,
      tier: entry.tier,
      retryAfterSeconds: entry.retryAfterSeconds,
      actions: limited
        ? [{
            id: 'unblock',
            label: 'Reset…',
            tone: 'warn',
            href: confirmHref(prefix, isGlobal ? 'rl-global-reset' : 'rl-reset', isGlobal ? null : entry.key, returnTo, exactClient(entry)),
            focusId: `${id}-reset`
          }]
        : []
    })
  })
  const keys = [...new Set([...log.map(e => e.key), ...(filter.key === '' ? [] : [filter.key])])].sort()
  return {
    filter,
    filtered: filter.key !== '' || filter.client !== '',
    resetHref: `${base}${scope}`,
    tabs: tabs(prefix, 'blocked', log.length, service),
    keys: keys.map(k => ({ value: k, label: k === '*' ? 'Global limit' : k })),
    shownChoices: BLOCKED_SHOWN,
    rows,
    total: log.length,
    matching,
    byRoute: top(log, e => e.key, 5).map(r => ({ ...r, label: r.value === '*' ? 'Global limit' : r.value, href: `${base}${queryString({ service, key: r.value })}` })),
    byClient: top(log, e => e.client, 5).map(r => ({ ...r, label: r.value, href: `${base}${queryString({ service, client: r.value })}` })),
    returnTo
  }
}

// ---- the routes ----

/** What the dashboard lends the rate limit pages: its session, page rendering and path checks. */
export interface RateLimitPagesOptions<S> {
  engine: WaygateEngine
  limiter: RateLimiter
  prefix: string
  routeOptions: RouteShorthandOptions
  session(request: FastifyRequest, reply: FastifyReply): Promise<S>
  page(reply: FastifyReply, template: string, data: object, user: S | null, nav?: string | null): Promise<FastifyReply>
  localPath(value: string, fallback?: string): string
  /** A Waygate Server's services: the pages follow its service selector and show the service's own policy. */
  fleet?: DashboardFleet | null
  /** The service a request's page is scoped to, '' for all. */
  scopeOf?(request: FastifyRequest): string
}

function wantsJson (request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('application/json')
}

function field (source: unknown, name: string, max: number): string {
  let value = (typeof source === 'object' && source !== null ? source as Record<string, unknown> : {})[name]
  if (Array.isArray(value)) value = value[0]
  return typeof value === 'string' ? value.slice(0, max) : ''
}

/**
 * The rate limit pages: policies (with the routes that have none) and the blocked log, with the
 * confirmation forms of every change. Each change calls the limiter operation the REST API calls.
 */
export function registerRateLimitPages<S extends { user: string }> (fastify: FastifyInstance, options: RateLimitPagesOptions<S>): void {
  const { engine, limiter, prefix, routeOptions: base } = options
  const fleet = options.fleet ?? null
  const home = `${prefix}/rate-limits`
  const scopeOf = (request: FastifyRequest): string => fleet === null ? '' : options.scopeOf?.(request) ?? ''

  type Resolved = { spec: RateLimitActionSpec, target: RateLimitTarget } | { spec: ServiceRateLimitActionSpec, target: RateLimitTarget }

  function resolve (action: string, key: string): Resolved {
    const onService = fleet === null ? undefined : serviceRateLimitAction(action)
    if (onService !== undefined) {
      const service = fleet!.services().find(s => s.name === key)
      if (service === undefined) throw new WG_ERR_REQUEST_INVALID(`no service named "${key.slice(0, 100)}"`)
      return { spec: onService, target: { key: service.name, listed: null, global: service.rateLimit } }
    }
    const spec = rateLimitAction(action)
    if (spec === undefined) throw new WG_ERR_REQUEST_INVALID(`unknown action "${action.slice(0, 40)}"`)
    const global = limiter.getGlobal()
    if (spec.scope === 'global') return { spec, target: { key: null, listed: null, global } }
    if (key === '') throw new WG_ERR_REQUEST_INVALID('which route? (key is missing)')
    const listed = limiter.list()
    // a listed policy is found by its own key; anything else as the REST API resolves keys (404, 409)
    let policy = listed.find(p => p.key === key) ?? null
    const canonical = policy !== null ? key : engine.resolveKeys(key)[0]!
    policy ??= listed.find(p => p.key === canonical) ?? null
    return { spec, target: { key: canonical, listed: policy, global } }
  }

  function confirmData (spec: RateLimitActionSpec | ServiceRateLimitActionSpec, target: RateLimitTarget, values: FormValues, returnTo: string, error: string | null): object {
    const fields = fieldViews(spec.fields(target), values)
    const advanced = fields.filter(f => f.advanced === true)
    return {
      title: spec.title,
      action: { id: spec.id, title: spec.title, description: spec.description(target), submit: spec.submit, tone: spec.tone },
      subject: spec.scope === 'service' ? `Service ${target.key ?? ''}` : target.key ?? 'Global rate limit',
      key: target.key ?? '',
      fields: fields.filter(f => f.advanced !== true),
      advanced,
      advancedOpen: advanced.some(f => f.value !== ''),
      formAction: `${prefix}/rate-limits/action`,
      returnTo,
      error
    }
  }

  function liveData () {
    return { url: `${prefix}/rate-limits/live`, version: liveVersion(limiter) }
  }

  fastify.get('/rate-limits', base, async (request, reply) => {
    const user = await options.session(request, reply)
    const service = scopeOf(request)
    const servicePolicy = fleet === null || service === '' ? null : fleet.services().find(s => s.name === service)?.rateLimit ?? null
    const data = rateLimitsPage(engine, limiter, readRateLimitsFilter(request.query), prefix, service, servicePolicy)
    const rlService = fleet === null || service === '' ? null : rateLimitServiceView(fleet, service, prefix, data.returnTo)
    return options.page(reply, 'rate-limit-policies', { title: 'Rate limits', ...data, rlService, live: liveData() }, user, 'rate-limits')
  })

  fastify.get('/rate-limits/blocked', base, async (request, reply) => {
    const user = await options.session(request, reply)
    const data = blockedPage(limiter, readBlockedFilter(request.query), engine.now(), prefix, scopeOf(request))
    return options.page(reply, 'rate-limit-blocked', { title: 'Blocked requests', ...data, live: liveData() }, user, 'rate-limits')
  })

  // polled by the pages' script: the blocked log changes without any event
  fastify.get('/rate-limits/live', base, async (request, reply) => {
    await options.session(request, reply)
    return { version: liveVersion(limiter) }
  })

  fastify.get('/rate-limits/confirm', base, async (request, reply) => {
    const user = await options.session(request, reply)
    const { spec, target } = resolve(field(request.query, 'action', 40), field(request.query, 'key', 4096))
    const returnTo = options.localPath(field(request.query, 'return', 4096), home)
    const client = field(request.query, 'client', 300)
    const values = { ...spec.prefill(target), ...(client !== '' && spec.fields(target).some(f => f.name === 'client') ? { client } : {}) }
    return options.page(reply, 'rate-limit-confirm', confirmData(spec, target, values, returnTo, null), user, 'rate-limits')
  })

  fastify.post('/rate-limits/action', base, async (request, reply) => {
    const user = await options.session(request, reply)
    const { spec, target } = resolve(field(request.body, 'action', 40), field(request.body, 'key', 4096))
    const returnTo = options.localPath(field(request.body, 'return', 4096), home)
    const who = { actor: user.user, platform: 'dashboard' as const }
    let values: FormValues = {}
    try {
      values = readRateLimitForm(request.body, spec.fields(target))
      if (spec.scope === 'service') await spec.run(fleet!, target.key!, target, values, who)
      else await spec.run(limiter, target, values, who)
    } catch (err) {
      const status = (err as FastifyError).statusCode ?? 500
      if (wantsJson(request) || status >= 500) throw err
      // without a script: the same form again, with what was typed and what went wrong
      reply.code(status)
      return options.page(reply, 'rate-limit-confirm', confirmData(spec, target, values, returnTo, (err as Error).message), user, 'rate-limits')
    }
    if (wantsJson(request)) return { ok: true, action: spec.id, key: target.key }
    return reply.redirect(returnTo, 303)
  })
}
