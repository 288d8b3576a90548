import {
  compilePlan,
  goneAt,
  isExempt,
  type Brownout,
  type Decision,
  type GlobalMaintenance,
  type RouteState,
  type WaygateEngine
} from '@waygate/core'
import {
  deprecationNotice,
  maintenanceNotice,
  stripNotices,
  stripSummaryMark,
  withNotices,
  withSummaryMark
} from './notices.js'
import { isObject, isOperationField, put, type Json } from './operations.js'
import { documentBase, isUnderPrefix, PatternIndex, type DocumentBase } from './path-mapping.js'

/** What the transformer needs to know of waygate's state: a plain value, easy to build in tests. */
export interface WaygateSnapshot {
  /** Every known route state (`engine.listRoutes()`). */
  routes: readonly RouteState[]
  /** Site-wide maintenance (`engine.getGlobal()`). */
  global: GlobalMaintenance
  /** The environment this process runs in, for env-gated routes. */
  env: string
  /** The time the states are judged at (epoch ms), for maintenance windows. */
  now: number
}

/** Options of {@link applyWaygateToSpec}. */
export interface ApplyWaygateOptions {
  /**
   * Paths whose operations never appear in the document, such as the admin API's own routes.
   * A prefix covers itself and what lies below it. Default `['/waygate']`.
   */
  excludePrefixes?: readonly string[]
}

/** The prefixes excluded by default: where `@waygate/admin` mounts its API and dashboard. */
export const DEFAULT_EXCLUDE_PREFIXES: readonly string[] = Object.freeze(['/waygate'])

/** Reads a snapshot of the engine's current state for {@link applyWaygateToSpec}. */
export function snapshotOf (engine: WaygateEngine): WaygateSnapshot {
  return { routes: engine.listRoutes(), global: engine.getGlobal(), env: engine.env, now: engine.now() }
}

/** What waygate says about one operation. */
type Verdict =
  | { action: 'keep' }
  | { action: 'remove' }
  | {
    action: 'annotate'
    maintenance: { reason: string, global: boolean, retryAt: number | null } | null
    deprecated: DeprecatedVerdict | null
  }

/** A deprecated route as the document shows it: with its planned 410s (after the sunset, brownouts). */
interface DeprecatedVerdict {
  reason: string
  sunset: string | null
  successor: string | null
  afterSunset: boolean
  /** Brownouts not ended yet. */
  brownouts: Brownout[]
  /** Why it answers 410 right now, or null. */
  gone: 'sunset' | 'brownout' | null
  /** The end of the brownout it is in (ISO), or null. */
  goneUntil: string | null
}

const KEEP: Verdict = { action: 'keep' }
const REMOVE: Verdict = { action: 'remove' }
const GLOBAL_OFF: GlobalMaintenance = { enabled: false, reason: '', exemptPaths: [], includeForceActive: false, since: null }

interface Context {
  states: Map<string, RouteState>
  index: PatternIndex
  base: DocumentBase
  snapshot: WaygateSnapshot
  exclude: readonly string[]
}

/**
 * The next time (epoch ms) after `now` at which one of these routes changes by itself (a
 * maintenance window opens or closes, a timed disablement ends), or Infinity. A document built
 * from a snapshot stays true until then or until the state changes.
 */
export function nextWindowChange (routes: readonly RouteState[], now: number, env = 'dev'): number {
  let next = Infinity
  for (const state of routes) {
    const plan = compilePlan({ key: state.key, path: state.path, forceActive: state.forceActive }, state, GLOBAL_OFF, env)
    if (plan.windowStart > now && plan.windowStart < next) next = plan.windowStart
    if (plan.windowEnd > now && plan.windowEnd < next) next = plan.windowEnd
    // a deprecated route's sunset and brownouts change what it answers too
    const gone = plan.gone
    if (gone !== undefined) {
      for (const t of [gone.sunsetAt, ...gone.starts, ...gone.ends]) if (t > now && t < next) next = t
    }
  }
  return next
}

function decideAt (state: RouteState, key: string, path: string, env: string, now: number): Decision {
  // the route's own state, judged exactly as enforcement does; global maintenance comes after
  const plan = compilePlan({ key, path, forceActive: state.forceActive }, state, GLOBAL_OFF, env)
  if (now >= plan.windowStart && now < plan.windowEnd) return plan.inside
  return plan.gone === undefined ? plan.outside : goneAt(plan.gone, now, plan.outside)
}

function deprecatedVerdict (state: RouteState, now: number, decision: Decision): DeprecatedVerdict {
  const gone = decision.action === 'block' && (decision.kind === 'sunset' || decision.kind === 'brownout') ? decision.kind : null
  return {
    reason: state.reason,
    sunset: state.sunset,
    successor: state.successor,
    afterSunset: state.afterSunset === 'gone',
    brownouts: (state.brownouts ?? []).filter(b => Date.parse(b.end) > now),
    gone,
    goneUntil: gone === 'brownout' && decision.action === 'block' && decision.retryAt !== null ? new Date(decision.retryAt).toISOString() : null
  }
}

function verdictFor (state: RouteState, key: string, path: string, ctx: Context): Verdict {
  const { env, now, global } = ctx.snapshot
  const decision = decideAt(state, key, path, env, now)
  let maintenance: Extract<Verdict, { action: 'annotate' }>['maintenance'] = null
  let deprecated: Extract<Verdict, { action: 'annotate' }>['deprecated'] = null
  if (decision.action === 'block' && decision.deprecation !== undefined) {
    // past its sunset or in a brownout: still documented, as deprecated, with its 410
    deprecated = deprecatedVerdict(state, now, decision)
  } else if (decision.action === 'block') {
    // a disabled route, or one hidden from this env, is gone from the document as from the API
    if (decision.kind !== 'maintenance') return REMOVE
    maintenance = { reason: decision.reason, global: false, retryAt: decision.retryAt }
  } else if (decision.action === 'deprecated') {
    deprecated = deprecatedVerdict(state, now, decision)
  }
  if (global.enabled && (!state.forceActive || global.includeForceActive) && !isExempt(global.exemptPaths, key, path)) {
    maintenance = { reason: global.reason, global: true, retryAt: null }
  }
  return maintenance === null && deprecated === null ? KEEP : { action: 'annotate', maintenance, deprecated }
}

function judge (method: string, patterns: readonly string[], ctx: Context): Verdict {
  // HEAD follows the GET route of its pattern; a HEAD-only route has its own key
  const methods = method === 'HEAD' ? ['GET', 'HEAD'] : [method]
  for (const path of patterns) {
    for (const m of methods) {
      const key = `${m}:${path}`
      const state = ctx.states.get(key) ?? ctx.states.get(path)
      if (state !== undefined) return verdictFor(state, key, path, ctx)
    }
  }
  // no state: the route is not managed by waygate (or `config.waygate === false`)
  return KEEP
}

function hasWaygateMarks (op: Json): boolean {
  for (const key of Object.keys(op)) if (key.startsWith('x-waygate-')) return true
  return false
}

/** The 410 response waygate documents for a deprecated route that answers or will answer it. */
function goneResponse (deprecated: DeprecatedVerdict): Json {
  const parts: string[] = []
  if (deprecated.afterSunset) parts.push(`after its sunset${deprecated.sunset === null ? '' : ` (${deprecated.sunset})`}: code ROUTE_SUNSET`)
  if (deprecated.brownouts.length > 0) {
    parts.push(`during planned brownouts (${deprecated.brownouts.map(b => `${b.start} to ${b.end}`).join(', ')}): code ROUTE_BROWNOUT, with Retry-After`)
  }
  const example = {
    error: {
      code: deprecated.gone === 'brownout' || (!deprecated.afterSunset && deprecated.brownouts.length > 0) ? 'ROUTE_BROWNOUT' : 'ROUTE_SUNSET',
      message: 'This endpoint has been retired',
      reason: deprecated.reason,
      path: '/…',
      sunset: deprecated.sunset,
      successor: deprecated.successor
    }
  }
  return {
    description: `Gone: this deprecated endpoint answers 410 ${parts.join('; and ')}. The Deprecation, Sunset and Link (successor-version) headers come with it.`,
    headers: {
      Deprecation: { schema: { type: 'string' }, description: 'RFC 9745: @<epoch seconds> of the deprecation' },
      Sunset: { schema: { type: 'string' }, description: 'RFC 8594: the HTTP-date of the sunset' },
      Link: { schema: { type: 'string' }, description: '<successor>; rel="successor-version"' },
      'Retry-After': { schema: { type: 'integer' }, description: 'In a brownout: seconds until it ends' }
    },
    content: { 'application/json': { example } },
    'x-waygate': true
  }
}

/** The responses of an operation without the 410 an earlier pass of waygate added. */
function unmarkedResponses (op: Json): Json | undefined {
  const responses = op.responses
  if (!isObject(responses) || !isObject(responses['410']) || responses['410']['x-waygate'] !== true) return undefined
  const rest: Json = {}
  for (const [code, value] of Object.entries(responses)) if (code !== '410') put(rest, code, value)
  return rest
}

/** The operation without what an earlier pass of waygate added. */
function unmarked (op: Json): Json {
  if (!hasWaygateMarks(op)) return op
  const out: Json = {}
  for (const [key, value] of Object.entries(op)) if (!key.startsWith('x-waygate-')) put(out, key, value)
  const responses = unmarkedResponses(out)
  if (responses !== undefined) {
    if (Object.keys(responses).length === 0) delete out.responses
    else out.responses = responses
  }
  if (typeof out.description === 'string') {
    const rest = stripNotices(out.description)
    if (rest === '') delete out.description
    else out.description = rest
  }
  if (typeof out.summary === 'string') {
    const rest = stripSummaryMark(out.summary)
    if (rest === undefined) delete out.summary
    else out.summary = rest
  }
  return out
}

function annotate (original: Json, verdict: Verdict): Json {
  const base = unmarked(original)
  if (verdict.action !== 'annotate') return base
  const op: Json = { ...base }
  const notices: string[] = []
  const { maintenance, deprecated } = verdict
  if (maintenance !== null) {
    const until = maintenance.retryAt === null ? null : new Date(maintenance.retryAt).toISOString()
    op['x-waygate-status'] = 'maintenance'
    op['x-waygate-reason'] = maintenance.reason
    if (maintenance.global) op['x-waygate-global'] = true
    if (until !== null) op['x-waygate-retry-after'] = until
    notices.push(maintenanceNotice({ reason: maintenance.reason, global: maintenance.global, until }))
    op.summary = withSummaryMark(typeof base.summary === 'string' ? base.summary : undefined)
  }
  if (deprecated !== null) {
    op.deprecated = true
    if (maintenance === null) {
      op['x-waygate-status'] = 'deprecated'
      if (deprecated.reason !== '') op['x-waygate-reason'] = deprecated.reason
    }
    if (deprecated.sunset !== null) op['x-waygate-sunset'] = deprecated.sunset
    if (deprecated.successor !== null) op['x-waygate-successor'] = deprecated.successor
    if (deprecated.afterSunset) op['x-waygate-after-sunset'] = 'gone'
    if (deprecated.brownouts.length > 0) op['x-waygate-brownouts'] = deprecated.brownouts.map(b => ({ start: b.start, end: b.end, reason: b.reason }))
    if (deprecated.gone !== null) op['x-waygate-gone'] = deprecated.gone
    if (deprecated.afterSunset || deprecated.brownouts.length > 0) {
      const responses = isObject(base.responses) ? base.responses : {}
      // an app that documents its own 410 keeps it
      if (!isObject(responses['410'])) {
        const withGone: Json = { ...responses }
        put(withGone, '410', goneResponse(deprecated))
        op.responses = withGone
      }
    }
    notices.push(deprecationNotice(deprecated))
  }
  op.description = withNotices(notices, typeof base.description === 'string' ? base.description : undefined)
  return op
}

/** The path item with waygate applied, or null when waygate removed every operation it had. */
function applyToPathItem (docPath: string, item: Json, ctx: Context): Json | null {
  const patterns = ctx.index.patternsOf(docPath)
  if (patterns.length === 0) return item
  let out: Json | null = null
  let operations = 0
  let kept = 0
  const replace = (field: string, value: unknown): void => {
    out ??= { ...item }
    if (value === undefined) delete out[field]
    else put(out, field, value)
  }
  for (const [field, value] of Object.entries(item)) {
    if (field === 'additionalOperations' && isObject(value)) {
      // OpenAPI 3.2: operations of other HTTP methods, keyed by the method as sent
      let extra: Json | null = null
      let extraKept = 0
      for (const [method, op] of Object.entries(value)) {
        if (!isObject(op)) continue
        operations++
        const verdict = judge(method.toUpperCase(), patterns, ctx)
        if (verdict.action === 'remove') {
          extra ??= { ...value }
          delete extra[method]
          continue
        }
        extraKept++
        const next = annotate(op, verdict)
        if (next !== op) {
          extra ??= { ...value }
          put(extra, method, next)
        }
      }
      kept += extraKept
      if (extra !== null) replace(field, extraKept === 0 ? undefined : extra)
      continue
    }
    if (!isOperationField(field) || !isObject(value)) continue
    operations++
    const verdict = judge(field.toUpperCase(), patterns, ctx)
    if (verdict.action === 'remove') {
      replace(field, undefined)
      continue
    }
    kept++
    const next = annotate(value, verdict)
    if (next !== value) replace(field, next)
  }
  if (operations > 0 && kept === 0) return null
  return out ?? item
}

function isExcluded (docPath: string, ctx: Context): boolean {
  if (ctx.exclude.length === 0) return false
  const candidates = [docPath, ...ctx.base.basePaths.map(b => b + docPath), ...ctx.index.patternsOf(docPath)]
  return candidates.some(path => ctx.exclude.some(prefix => isUnderPrefix(path, prefix)))
}

/**
 * Applies waygate's state to an OpenAPI 3 or Swagger 2 document, such as the one
 * `@fastify/swagger` builds. Returns a new document and never mutates its input; parts it does not
 * change are shared with the input, so treat the result as read-only.
 *
 * - operations of disabled routes, and of env-gated routes outside their environments, are
 *   removed, and so are path items left without operations;
 * - deprecated routes get `deprecated: true`, `x-waygate-sunset`, `x-waygate-successor` and a
 *   notice with both in the description;
 * - routes in maintenance get `x-waygate-status: 'maintenance'`, `x-waygate-reason`,
 *   `x-waygate-retry-after` (ISO 8601, when the end is known) and a notice in front of the
 *   description and summary;
 * - under global maintenance every managed, non-exempt operation is annotated as in maintenance
 *   (with `x-waygate-global: true`) and `info['x-waygate-global-maintenance']` holds the reason and
 *   the exempt paths;
 * - paths under `excludePrefixes` (default `/waygate`, the admin API) are removed.
 *
 * Operations of routes waygate does not manage are left as they are. Applying the function to its
 * own output with the same snapshot gives the same document.
 *
 * @example
 * const live = applyWaygateToSpec(app.swagger(), snapshotOf(app.waygate))
 */
export function applyWaygateToSpec<T extends object> (spec: T, snapshot: WaygateSnapshot, options: ApplyWaygateOptions = {}): T {
  if (!isObject(spec)) throw new TypeError('applyWaygateToSpec: the document must be an object')
  const doc: Json = spec
  const states = new Map<string, RouteState>()
  for (const state of snapshot.routes) states.set(state.key, state)
  const base = documentBase(doc)
  const ctx: Context = {
    states,
    index: new PatternIndex(snapshot.routes.map(s => s.path), base),
    base,
    snapshot,
    exclude: options.excludePrefixes ?? DEFAULT_EXCLUDE_PREFIXES
  }
  const out: Json = { ...doc }
  if (isObject(doc.paths)) {
    const paths: Json = {}
    for (const [docPath, item] of Object.entries(doc.paths)) {
      if (isExcluded(docPath, ctx)) continue
      if (!isObject(item)) {
        put(paths, docPath, item)
        continue
      }
      const next = applyToPathItem(docPath, item, ctx)
      if (next !== null) put(paths, docPath, next)
    }
    out.paths = paths
  }
  const info = isObject(doc.info) ? doc.info : undefined
  const global = snapshot.global
  if (global.enabled) {
    out.info = {
      ...info,
      'x-waygate-global-maintenance': {
        enabled: true,
        reason: global.reason,
        exemptPaths: [...global.exemptPaths],
        since: global.since
      }
    }
  } else if (info !== undefined && 'x-waygate-global-maintenance' in info) {
    const { 'x-waygate-global-maintenance': _, ...rest } = info
    out.info = rest
  }
  return out as T
}
