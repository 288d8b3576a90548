import {
  GLOBAL_KEY,
  parseRouteKey,
  qualifyKey,
  ROUTE_STATUSES,
  type AuditAction,
  type AuditEntry,
  type AuditQuery,
  type GlobalMaintenance,
  type RouteState,
  type RouteStatus,
  type WaygateEngine
} from '@waygate/core'
import { GLOBAL_ACTIONS, ROUTE_ACTIONS, type ActionSpec, type FieldSpec, type FormValues } from './actions.js'
import { AUDIT_ACTION_LABELS, domId, keyLabel, maybeTime, STATUS_LABELS, timeView, type TimeView } from './format.js'

/** A button that opens an action's confirmation. */
export interface ActionLink {
  id: string
  label: string
  tone: string
  href: string
  /** Stable across re-renders, so focus survives a live update. */
  focusId: string
}

export interface GlobalView {
  enabled: boolean
  reason: string
  exemptPaths: string[]
  includeForceActive: boolean
  since: TimeView | null
  /** When it turns itself off, if it does. */
  end: TimeView | null
  actions: ActionLink[]
}

export interface RouteRow {
  id: string
  key: string
  method: string
  path: string
  service: string | null
  status: RouteStatus
  statusLabel: string
  protected: boolean
  reason: string
  envs: string[]
  window: { start: TimeView, end: TimeView | null, reason: string, open: boolean } | null
  sunset: TimeView | null
  successor: string | null
  disabledUntil: TimeView | null
  updatedBy: string
  updatedAt: TimeView
  actions: ActionLink[]
}

export interface Counter {
  id: string
  label: string
  count: number
  href: string
  current: boolean
}

export interface PageLink {
  label: string
  href: string | null
}

export interface RoutesFilter {
  status: RouteStatus | 'protected' | ''
  q: string
  service: string
  page: number
  perPage: number
}

export interface AuditFilter {
  key: string
  actor: string
  action: AuditAction | ''
  since: string
  until: string
  before: string
}

const PER_PAGE = [10, 25, 50, 100]
/** The value of the service filter that selects this process's own routes (service null). */
export const LOCAL_SERVICE = '-'

function text (value: unknown, max: number): string {
  if (Array.isArray(value)) value = value[0]
  return typeof value === 'string' ? value.trim().slice(0, max) : ''
}

function positive (value: unknown, fallback: number, max: number): number {
  const n = Number(text(value, 12))
  return Number.isInteger(n) && n >= 1 ? Math.min(n, max) : fallback
}

/** Reads the routes page query leniently: whatever is not understood falls back to its default. */
export function readRoutesFilter (query: unknown): RoutesFilter {
  const q = (query ?? {}) as Record<string, unknown>
  const status = text(q.status, 20)
  const perPage = positive(q.perPage, 25, 100)
  return {
    status: status === 'protected' || (ROUTE_STATUSES as readonly string[]).includes(status) ? status as RoutesFilter['status'] : '',
    q: text(q.q, 200),
    service: text(q.service, 200),
    page: positive(q.page, 1, 1_000_000),
    perPage: PER_PAGE.includes(perPage) ? perPage : 25
  }
}

const DAY = /^\d{4}-\d{2}-\d{2}$/

export function readAuditFilter (query: unknown): AuditFilter {
  const q = (query ?? {}) as Record<string, unknown>
  const action = text(q.action, 40)
  const since = text(q.since, 10)
  const until = text(q.until, 10)
  return {
    key: text(q.key, 2048),
    actor: text(q.actor, 200),
    action: action in AUDIT_ACTION_LABELS ? action as AuditAction : '',
    since: DAY.test(since) && !Number.isNaN(Date.parse(since)) ? since : '',
    until: DAY.test(until) && !Number.isNaN(Date.parse(until)) ? until : '',
    before: text(q.before, 300)
  }
}

/** `?a=1&b=2` of the non-empty values, or `` when there are none. */
export function queryString (values: Record<string, string | number>): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(values)) if (value !== '' && value !== undefined) params.set(name, String(value))
  const s = params.toString()
  return s === '' ? '' : `?${s}`
}

function routesQuery (filter: RoutesFilter, changes: Partial<RoutesFilter> = {}): string {
  const f = { ...filter, ...changes }
  return queryString({ status: f.status, q: f.q, service: f.service, page: f.page === 1 ? '' : f.page, perPage: f.perPage === 25 ? '' : f.perPage })
}

function confirmHref (prefix: string, action: string, key: string | null, returnTo: string): string {
  return `${prefix}/confirm${queryString({ action, key: key ?? '', return: returnTo })}`
}

function links<T> (specs: readonly ActionSpec<T>[], target: T, prefix: string, key: string | null, returnTo: string, focusBase: string): ActionLink[] {
  return specs.filter(spec => spec.offer(target)).map(spec => ({
    id: spec.id,
    label: spec.label,
    tone: spec.tone,
    href: confirmHref(prefix, spec.id, key, returnTo),
    focusId: `${focusBase}-${spec.id}`
  }))
}

export function globalView (global: GlobalMaintenance, now: number, prefix: string, returnTo: string): GlobalView {
  return {
    enabled: global.enabled,
    reason: global.reason,
    exemptPaths: global.exemptPaths,
    includeForceActive: global.includeForceActive,
    since: maybeTime(global.since, now),
    end: global.enabled ? maybeTime(global.end ?? null, now) : null,
    actions: links(GLOBAL_ACTIONS, global, prefix, null, returnTo, 'global')
  }
}

export function routeRow (state: RouteState, now: number, prefix: string, returnTo: string): RouteRow {
  const id = domId('route', state.key)
  const window = state.window
  return {
    id,
    key: state.key,
    method: state.method ?? 'ANY',
    path: state.path,
    service: state.service,
    status: state.status,
    statusLabel: STATUS_LABELS[state.status],
    protected: state.forceActive,
    reason: state.reason,
    envs: state.allowedEnvs,
    window: window === null
      ? null
      : {
          start: timeView(window.start, now),
          end: maybeTime(window.end, now),
          reason: window.reason,
          open: Date.parse(window.start) <= now
        },
    sunset: maybeTime(state.sunset, now),
    successor: state.successor,
    disabledUntil: maybeTime(state.disabledUntil, now),
    updatedBy: state.updatedBy,
    updatedAt: timeView(state.updatedAt, now),
    actions: state.forceActive ? [] : links(ROUTE_ACTIONS, state, prefix, state.key, returnTo, id)
  }
}

function matches (state: RouteState, filter: RoutesFilter): boolean {
  if (filter.status === 'protected' ? !state.forceActive : filter.status !== '' && state.status !== filter.status) return false
  if (filter.service === LOCAL_SERVICE ? state.service !== null : filter.service !== '' && state.service !== filter.service) return false
  if (filter.q !== '') {
    const needle = filter.q.toLowerCase()
    if (!state.key.toLowerCase().includes(needle) && !state.reason.toLowerCase().includes(needle)) return false
  }
  return true
}

/**
 * Everything the routes page shows. `scoped`: a Waygate Server's dashboard, whose service selector
 * sets `filter.service`: the counters count that service's routes, and rows name no service.
 */
export function routesPage (engine: WaygateEngine, filter: RoutesFilter, prefix: string, scoped = false) {
  const now = engine.now()
  const inScope = scoped && filter.service !== ''
  const all = inScope ? engine.listRoutes().filter(s => s.service === filter.service) : engine.listRoutes()
  const returnTo = `${prefix}/${routesQuery(filter)}`
  const count = (pick: (s: RouteState) => boolean): number => all.filter(pick).length
  const counters: Counter[] = [
    { id: 'all', label: 'All routes', count: all.length, href: `${prefix}/${routesQuery(filter, { status: '', page: 1 })}`, current: filter.status === '' },
    ...ROUTE_STATUSES.map(status => ({
      id: status,
      label: STATUS_LABELS[status],
      count: count(s => s.status === status),
      href: `${prefix}/${routesQuery(filter, { status, page: 1 })}`,
      current: filter.status === status
    })),
    { id: 'protected', label: 'Force-active', count: count(s => s.forceActive), href: `${prefix}/${routesQuery(filter, { status: 'protected', page: 1 })}`, current: filter.status === 'protected' }
  ]
  const services = [...new Set(all.map(s => s.service).filter((s): s is string => s !== null))].sort()
  const selected = all.filter(s => matches(s, filter))
  const pages = Math.max(1, Math.ceil(selected.length / filter.perPage))
  const page = Math.min(filter.page, pages)
  const first = (page - 1) * filter.perPage
  // scoped to one service, its name on every row says nothing
  const rows = selected.slice(first, first + filter.perPage).map(s => routeRow(s, now, prefix, returnTo)).map(r => inScope ? { ...r, service: null } : r)
  return {
    filter,
    counters,
    statuses: ROUTE_STATUSES.map(status => ({ value: status, label: STATUS_LABELS[status] })),
    services: services.length === 0 || scoped ? [] : [{ value: LOCAL_SERVICE, label: 'this app' }, ...services.map(s => ({ value: s, label: s }))],
    showService: !inScope,
    perPageChoices: PER_PAGE,
    rows,
    total: all.length,
    matching: selected.length,
    filtered: filter.status !== '' || filter.q !== '' || (!scoped && filter.service !== ''),
    resetHref: `${prefix}/${scoped ? queryString({ service: filter.service }) : ''}`,
    pagination: {
      page,
      pages,
      from: selected.length === 0 ? 0 : first + 1,
      to: first + rows.length,
      previous: page > 1 ? `${prefix}/${routesQuery(filter, { page: page - 1 })}` : null,
      next: page < pages ? `${prefix}/${routesQuery(filter, { page: page + 1 })}` : null
    },
    returnTo
  }
}

export interface AuditRow {
  id: string
  time: TimeView
  key: string
  keyLabel: string
  global: boolean
  service: string | null
  action: string
  actor: string
  platform: string
  reason: string
  from: { status: string, label: string } | null
  to: { status: string, label: string } | null
}

function statusCell (status: RouteStatus | null): { status: string, label: string } | null {
  return status === null ? null : { status, label: STATUS_LABELS[status] }
}

export function auditRow (entry: AuditEntry, now: number): AuditRow {
  return {
    id: `audit-${entry.id}`,
    time: timeView(entry.timestamp, now),
    key: entry.key,
    keyLabel: keyLabel(entry.key),
    global: entry.key === GLOBAL_KEY,
    service: entry.service,
    action: AUDIT_ACTION_LABELS[entry.action] ?? entry.action,
    actor: entry.actor,
    platform: entry.platform,
    reason: entry.reason,
    from: statusCell(entry.previousStatus),
    to: statusCell(entry.newStatus)
  }
}

const AUDIT_PAGE = 25

/**
 * Everything the audit page shows; `problem` explains a filter that could not be used. `service`:
 * the service a server's dashboard is scoped to ('' for all), whose plain keys the key filter takes.
 */
export async function auditPage (engine: WaygateEngine, filter: AuditFilter, prefix: string, service = '') {
  const now = engine.now()
  let problem: string | null = null
  let key: string | undefined
  if (filter.key === GLOBAL_KEY) {
    key = GLOBAL_KEY
  } else if (filter.key !== '') {
    try {
      const parsed = parseRouteKey(filter.key)
      key = parsed.service === null && service !== '' ? qualifyKey(service, parsed.key) : parsed.key
    } catch (err) {
      problem = (err as Error).message
    }
  }
  const query: AuditQuery = {
    key,
    service: service === '' ? undefined : service,
    actor: filter.actor === '' ? undefined : filter.actor,
    action: filter.action === '' ? undefined : filter.action,
    since: filter.since === '' ? undefined : new Date(`${filter.since}T00:00:00Z`).toISOString(),
    // the until day is included
    until: filter.until === '' ? undefined : new Date(Date.parse(`${filter.until}T00:00:00Z`) + 86_400_000).toISOString(),
    before: filter.before === '' ? undefined : filter.before,
    limit: AUDIT_PAGE + 1
  }
  const entries = problem === null ? await engine.listAudit(query) : []
  const more = entries.length > AUDIT_PAGE
  const shown = entries.slice(0, AUDIT_PAGE)
  const base = { service, key: filter.key, actor: filter.actor, action: filter.action, since: filter.since, until: filter.until }
  return {
    filter,
    problem,
    actions: Object.entries(AUDIT_ACTION_LABELS).map(([value, label]) => ({ value, label })),
    rows: shown.map(e => auditRow(e, now)),
    filtered: filter.key !== '' || filter.actor !== '' || filter.action !== '' || filter.since !== '' || filter.until !== '',
    resetHref: `${prefix}/audit${queryString({ service })}`,
    newest: filter.before === '' ? null : `${prefix}/audit${queryString(base)}`,
    older: more ? `${prefix}/audit${queryString({ ...base, before: shown[shown.length - 1]!.id })}` : null,
    firstPage: filter.before === ''
  }
}

/** A field of a confirmation form with its current value. */
export interface FormField extends FieldSpec {
  id: string
  value: string
  checked: boolean
}

export function formFields (fields: readonly FieldSpec[], values: FormValues): FormField[] {
  return fields.map(field => ({
    ...field,
    id: `field-${field.name}`,
    value: values[field.name] ?? '',
    checked: field.kind === 'checkbox' && (values[field.name] ?? '') !== ''
  }))
}
