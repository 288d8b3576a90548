import { encodeSuccessor } from './header-value.js'
import type { GlobalMaintenance, RouteState } from './models.js'
import { readTime } from './time.js'

/** The request may go on. */
export interface PassDecision {
  readonly action: 'pass'
}

/** The request may go on, and the response carries deprecation headers (RFC 9745, RFC 8594). */
export interface DeprecatedDecision {
  readonly action: 'deprecated'
  /** `Deprecation` header value: `@<epoch seconds>`. */
  readonly deprecation: string
  /** `Sunset` header value (an HTTP-date), or null. */
  readonly sunset: string | null
  /** `Link` header value pointing at the successor, or null. */
  readonly link: string | null
}

/**
 * What blocked a request. `sunset`: a deprecated route past its sunset with `afterSunset: 'gone'`;
 * `brownout`: a deprecated route inside a planned brownout. Both answer 410 Gone.
 */
export type BlockKind = 'maintenance' | 'disabled' | 'env_gated' | 'sunset' | 'brownout'

/** The request is refused. */
export interface BlockDecision {
  readonly action: 'block'
  readonly kind: BlockKind
  /** The route key that decided, or `*` for global maintenance of an unmatched path. */
  readonly key: string
  readonly reason: string
  /** True when global maintenance blocked the request. */
  readonly global: boolean
  /** When the maintenance is expected to end (epoch ms), or null when unknown. */
  readonly retryAt: number | null
  /** For `sunset` and `brownout`: the route's deprecation headers, sent with the 410 too. */
  readonly deprecation?: DeprecatedDecision
}

/** The outcome of the per-request check. Decision objects are built ahead and shared. */
export type Decision = PassDecision | DeprecatedDecision | BlockDecision

/** The shared pass decision. */
export const PASS: PassDecision = Object.freeze({ action: 'pass' })

/** What a route is, as its plan needs it. */
export interface PlanTarget {
  key: string
  path: string
  forceActive: boolean
}

/**
 * The precomputed decisions of one route: `outside` applies except between `windowStart`
 * (inclusive) and `windowEnd` (exclusive), where `inside` applies. Without a window both bounds are
 * Infinity, so the check is one comparison.
 */
export interface RoutePlan {
  outside: Decision
  inside: Decision
  windowStart: number
  windowEnd: number
  /** A deprecated route's 410s (after its sunset, in its brownouts); absent for every other route. */
  gone?: GonePlan
}

/**
 * When a deprecated route answers 410 instead of serving: from `sunsetAt` on (Infinity unless
 * `afterSunset: 'gone'`), and inside each brownout (`starts[i]` inclusive to `ends[i]` exclusive).
 * Epochs and decisions are computed at each state change, so the request path only compares numbers.
 */
export interface GonePlan {
  sunsetAt: number
  sunset: BlockDecision
  starts: readonly number[]
  ends: readonly number[]
  brownouts: readonly BlockDecision[]
}

/** The 410 decision of a gone plan at `t`, else `otherwise`. */
export function goneAt (gone: GonePlan, t: number, otherwise: Decision): Decision {
  if (t >= gone.sunsetAt) return gone.sunset
  const starts = gone.starts
  for (let i = 0; i < starts.length; i++) {
    if (t >= starts[i]! && t < gone.ends[i]!) return gone.brownouts[i]!
  }
  return otherwise
}

/** Whether an exempt list names a route: its own key or its bare pattern. */
export function isExempt (exemptPaths: readonly string[], key: string, path: string): boolean {
  for (const exempt of exemptPaths) {
    if (exempt === key || exempt === path) return true
  }
  return false
}

/** Told about a stored value a plan leaves out because no header may carry it. */
export type DroppedHeader = (field: 'successor', value: string) => void

function httpDate (value: string): string | null {
  const ms = readTime(value)
  return Number.isNaN(ms) ? null : new Date(ms).toUTCString()
}

function deprecatedDecision (state: RouteState, dropped: DroppedHeader | undefined): DeprecatedDecision {
  let since = readTime(state.deprecatedAt)
  if (Number.isNaN(since)) since = readTime(state.updatedAt)
  let link: string | null = null
  if (state.successor !== null) {
    // encoded here, once per state change: a value no header may carry is left out, not sent
    const target = typeof state.successor === 'string' ? encodeSuccessor(state.successor) : null
    if (target === null) dropped?.('successor', String(state.successor))
    else link = `<${target}>; rel="successor-version"`
  }
  return Object.freeze({
    action: 'deprecated' as const,
    deprecation: `@${Math.floor((Number.isNaN(since) ? 0 : since) / 1000)}`,
    sunset: state.sunset === null ? null : httpDate(state.sunset),
    link
  })
}

function block (kind: BlockKind, key: string, reason: string, global: boolean, retryAt: number | null): BlockDecision {
  return Object.freeze({ action: 'block' as const, kind, key, reason, global, retryAt })
}

/** The gone plan of a deprecated state, or undefined when it never answers 410. */
function gonePlan (state: RouteState, deprecation: Decision, now: number | undefined): GonePlan | undefined {
  if (deprecation.action !== 'deprecated') return undefined
  const sunsetAt = state.afterSunset === 'gone' ? readTime(state.sunset) : Number.NaN
  const starts: number[] = []
  const ends: number[] = []
  const brownouts: BlockDecision[] = []
  const list = Array.isArray(state.brownouts) ? [...state.brownouts] : []
  list.sort((a, b) => readTime(a.start) - readTime(b.start))
  for (const b of list) {
    const start = readTime(b?.start)
    const end = readTime(b?.end)
    // unreadable or empty windows never open; ended ones are left out when the time is known
    if (!(end > start) || (now !== undefined && end <= now)) continue
    starts.push(start)
    ends.push(end)
    brownouts.push(Object.freeze({
      action: 'block' as const, kind: 'brownout' as const, key: state.key, reason: typeof b.reason === 'string' ? b.reason : '', global: false, retryAt: end, deprecation
    }))
  }
  if (Number.isNaN(sunsetAt) && starts.length === 0) return undefined
  return {
    sunsetAt: Number.isNaN(sunsetAt) ? Infinity : sunsetAt,
    sunset: Object.freeze({ action: 'block' as const, kind: 'sunset' as const, key: state.key, reason: state.reason, global: false, retryAt: null, deprecation }),
    starts,
    ends,
    brownouts
  }
}

/**
 * Compiles the decisions of one route from its state, global maintenance and the current
 * environment. Runs when state changes, never per request. A stored time that cannot be read
 * counts as absent, and a successor no header can carry is left out (and told to `dropped`):
 * whatever is stored, the plan holds only values that can be sent.
 */
export function compilePlan (target: PlanTarget, state: RouteState | undefined, global: GlobalMaintenance, env: string,
  dropped?: DroppedHeader): RoutePlan {
  const forceActive = target.forceActive || state?.forceActive === true
  if (global.enabled && (!forceActive || global.includeForceActive) && !isExempt(global.exemptPaths, target.key, target.path)) {
    const end = globalEnd(global)
    const d = block('maintenance', target.key, global.reason, true, Number.isNaN(end) ? null : end)
    if (!Number.isNaN(end)) {
      // with an end, the route's own plan takes over at the end, by the clock alone, as a window
      // ends; a route with a window of its own waits for the scheduler to store the end instead
      const own = compilePlan(target, state, { ...global, enabled: false }, env, dropped)
      if (own.windowStart === Infinity) return withGone({ outside: own.outside, inside: d, windowStart: -Infinity, windowEnd: end }, own.gone)
    }
    return { outside: d, inside: d, windowStart: Infinity, windowEnd: Infinity }
  }
  if (forceActive || state === undefined) {
    return { outside: PASS, inside: PASS, windowStart: Infinity, windowEnd: Infinity }
  }
  let outside: Decision
  let gone: GonePlan | undefined
  switch (state.status) {
    case 'maintenance':
      outside = block('maintenance', state.key, state.reason, false, null)
      break
    case 'disabled':
      outside = block('disabled', state.key, state.reason, false, null)
      break
    case 'env_gated':
      outside = state.allowedEnvs.includes(env) ? PASS : block('env_gated', state.key, state.reason, false, null)
      break
    case 'deprecated':
      outside = deprecatedDecision(state, dropped)
      gone = gonePlan(state, outside, undefined)
      break
    default:
      outside = PASS
  }
  const until = state.status === 'disabled' ? readTime(state.disabledUntil) : Number.NaN
  if (!Number.isNaN(until)) {
    // disabled until a time: the block applies from always to then, with that time as Retry-After
    const inside = block('disabled', state.key, state.reason, false, until)
    return { outside: PASS, inside, windowStart: -Infinity, windowEnd: until }
  }
  const window = readableWindow(state.window)
  // a disabled route stays disabled, and a route hidden from this env stays hidden, in a window
  if (window === null || state.status === 'disabled' || (outside.action === 'block' && outside.kind === 'env_gated')) {
    return withGone({ outside, inside: outside, windowStart: Infinity, windowEnd: Infinity }, gone)
  }
  const { start, end } = window
  const inside = block('maintenance', state.key, window.reason || state.reason, false, end === Infinity ? null : end)
  // inside a maintenance window the window answers; outside it the sunset and brownouts apply
  return withGone({ outside, inside, windowStart: start, windowEnd: end }, gone)
}

function withGone (plan: RoutePlan, gone: GonePlan | undefined): RoutePlan {
  if (gone !== undefined) plan.gone = gone
  return plan
}

/**
 * A window's bounds as epoch ms: an unreadable start means no window (it never opens), an
 * unreadable end an open-ended one, as `end: null` is.
 */
function readableWindow (window: RouteState['window']): { start: number, end: number, reason: string } | null {
  if (window === null || window === undefined) return null
  const start = readTime(window.start)
  if (Number.isNaN(start)) return null
  const end = readTime(window.end)
  return { start, end: Number.isNaN(end) ? Infinity : end, reason: window.reason }
}

/** When global maintenance turns itself off (epoch ms), or NaN when it has no readable end. */
export function globalEnd (global: GlobalMaintenance): number {
  return readTime(global.end)
}

/**
 * Global maintenance as it applies at `now`: past its end it is off (as the scheduler stores it),
 * even before the scheduler has stored that, or when it cannot. Returns `global` itself when
 * nothing changes.
 */
export function globalAt (global: GlobalMaintenance, now: number): GlobalMaintenance {
  if (!global.enabled || !(now >= globalEnd(global))) return global
  const off = { ...global, enabled: false, reason: '', since: null }
  delete off.end
  return off
}

/** The status a state has at `now`, with its maintenance window applied. */
export function effectiveStatus (state: RouteState, now: number): RouteState['status'] {
  if (state.status === 'disabled' && now >= readTime(state.disabledUntil)) return 'active'
  const window = readableWindow(state.window)
  if (window === null || state.status === 'disabled') return state.status
  return now >= window.start && now < window.end ? 'maintenance' : state.status
}

/**
 * Whether a deprecated state answers 410 at `now`, and why: `sunset` (past its sunset with
 * `afterSunset: 'gone'`), `brownout` (inside a planned brownout), else null. For views; the request
 * path uses the compiled plan.
 */
export function goneReason (state: RouteState, now: number): 'sunset' | 'brownout' | null {
  if (state.status !== 'deprecated') return null
  if (state.afterSunset === 'gone' && now >= readTime(state.sunset)) return 'sunset'
  for (const b of state.brownouts ?? []) if (now >= readTime(b.start) && now < readTime(b.end)) return 'brownout'
  return null
}

/** The longest `Retry-After` sent, in seconds: the largest signed 32-bit integer, which clients parse safely. */
export const MAX_RETRY_AFTER_SECONDS = 2_147_483_647

/**
 * Formats seconds until `retryAt` for `Retry-After` (RFC 9110 delay-seconds): whole seconds, at
 * least 1, at most {@link MAX_RETRY_AFTER_SECONDS}.
 */
export function retryAfterSeconds (retryAt: number, now: number): number {
  const seconds = Math.ceil((retryAt - now) / 1000)
  if (!(seconds >= 1)) return 1
  return seconds > MAX_RETRY_AFTER_SECONDS ? MAX_RETRY_AFTER_SECONDS : seconds
}
