import { randomUUID } from 'node:crypto'
import { createMemoryBackend } from './backends/memory.js'
import type { BackendRecord, AuditQuery, BackendChange, BackendSnapshot, DeadLetter, SyncStatus, Update, WaygateBackend } from './backends/types.js'
import { compilePlan, effectiveStatus, globalAt, globalEnd, goneAt, isExempt, PASS, type BlockDecision, type Decision, type RoutePlan } from './decision.js'
import {
  WG_ERR_BACKEND_UNAVAILABLE,
  WG_ERR_CONFLICT,
  WG_ERR_ENGINE_CLOSED,
  WG_ERR_INPUT_INVALID,
  WG_ERR_OPTIONS_INVALID,
  WG_ERR_ROUTE_FORCE_ACTIVE,
  WG_ERR_ROUTE_NOT_FOUND
} from './errors.js'
import { createThrottledWarn, silentLogger, type WaygateLogger } from './logger.js'
import { createWebhookDispatcher, type WebhookConfig, type WebhookDeliveryOutcome, type WebhookOptions } from './webhooks.js'
import {
  defaultGlobalMaintenance,
  GLOBAL_KEY,
  MAX_BROWNOUTS,
  type Brownout,
  type AuditAction,
  type AuditEntry,
  type GlobalMaintenance,
  type Platform,
  type RouteState,
  type RouteStatus
} from './models.js'
import { parseRouteKey, resolveRouteKeys, routeKey } from './route-key.js'
import { readableGlobal, readableState } from './stored-state.js'
import { readTime } from './time.js'
import { checkEnvs, checkReason, checkSuccessor, RouteDeclaration, schemaErrors, toEpochMs, toIso, type TimeInput } from './validation.js'

/** Who makes a change, recorded in the audit log. */
export interface MutationOptions {
  /** Who made the change. Default `system`. */
  actor?: string
  /** Where the change came from. Default `system`. */
  platform?: Platform
  /** With a bare path matching several methods: apply to all of them instead of failing. */
  all?: boolean
}

export interface DisableOptions extends MutationOptions {
  reason?: string
  /** Disabled until then, active again afterwards. */
  until?: TimeInput
}
export interface MaintenanceOptions extends MutationOptions {
  reason?: string
  /** Start of the maintenance window; default now when `end` is given. */
  start?: TimeInput
  /** End of the window: the route answers normally again from then on. */
  end?: TimeInput
}
export interface ScheduleOptions extends MutationOptions { start: TimeInput, end: TimeInput, reason?: string }
export interface EnvOnlyOptions extends MutationOptions { reason?: string }
export interface DeprecateOptions extends MutationOptions {
  sunset?: TimeInput
  successor?: string
  reason?: string
  /** `gone`: answer 410 Gone (`ROUTE_SUNSET`) once the sunset has passed; needs `sunset`. Default: keep serving. */
  afterSunset?: 'gone' | null
}
/** A planned brownout: a deprecated route answers 410 Gone from `start` to `end`. */
export interface BrownoutOptions extends MutationOptions { start: TimeInput, end: TimeInput, reason?: string }
export interface GlobalEnableOptions extends Omit<MutationOptions, 'all'> {
  reason?: string
  /** Keys that stay reachable: bare `/pattern` or `METHOD:/pattern`. Replaces the current list when given. */
  exemptPaths?: string[]
  /** Also block force-active routes. Default false. */
  includeForceActive?: boolean
  /**
   * When it turns itself off (a dead-man's switch for deploys): the scheduler turns it off then,
   * audited once as `global_maintenance_off`. Without it, on until turned off (enabling again
   * without an end removes an end set before).
   */
  end?: TimeInput
}

/**
 * A change the engine announces to its subscribers (SSE, webhooks, caches). `revision` is the
 * backend's revision of the change, null when the backend keeps none; `state` is the view (the
 * window evaluated now), `stored` the state as stored, for whoever enforces it elsewhere.
 */
export type EngineEvent =
  | { type: 'route_changed', version: number, revision: number | null, key: string, state: RouteState, stored: RouteState, previous: RouteState | null }
  | { type: 'route_removed', version: number, revision: number | null, key: string }
  | { type: 'global_changed', version: number, revision: number | null, global: GlobalMaintenance, previous: GlobalMaintenance }
  | { type: 'audit', version: number, entry: AuditEntry }
  | { type: 'window_started' | 'window_ended', version: number, key: string, state: RouteState }
  | { type: 'resynced', version: number }
  /** A stored record changed (`record: null` when removed), here or on another instance. */
  | { type: 'record_changed', version: number, revision: number | null, namespace: string, id: string, record: BackendRecord | null }

/** The stored state the engine holds, as {@link WaygateEngine.storedSnapshot} gives it. */
export interface StoredSnapshot {
  /** The highest backend revision applied (0 when the backend keeps none). */
  revision: number
  /** The backend history the revision counts in, or null. */
  epoch: string | null
  /** Every stored route state, as stored (no window evaluated), sorted by key. */
  routes: RouteState[]
  global: GlobalMaintenance
}

/**
 * A compare-and-set write (see {@link WaygateEngine.applyRemoteUpdate}): `next` is stored only
 * while the stored value is still `base`.
 */
export interface RemoteUpdate<T> {
  /** The stored value the writer started from; null when none was stored. */
  base: T | null
  next: T
  /** Stored with the change and sent to the engine's webhooks. */
  audit?: AuditEntry
}

/** How the engine and its backend are doing, for status endpoints. */
export interface EngineStatus {
  backend: string
  healthy: boolean
  lastError: string | null
  /** Incremented on every applied state change: a cache key for derived views. */
  version: number
  env: string
  routes: number
  testBypass: boolean
  /** How a backend that mirrors a remote source keeps up with it (`backend.syncStatus()`); absent on storage backends. */
  sync?: SyncStatus
}

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** Where state lives. Default: a new memory backend. */
  backend?: WaygateBackend
  /** The environment this process runs in, for env-gated routes. Default `dev`. */
  env?: string
  /** The clock, epoch milliseconds. Default `Date.now`. */
  now?: () => number
  /** A pino-compatible logger. Default silent. */
  logger?: WaygateLogger
  /** Turns every lifecycle check off (for test suites of the app). Default false. */
  testBypass?: boolean
  /** How often the whole snapshot is reloaded from the backend, in ms; 0 turns it off. Default 60000. */
  resyncIntervalMs?: number
  /** Webhooks told about the changes this engine makes (see `addWebhook`). Default none. */
  webhooks?: WebhookConfig[]
}

/** What the engine knows of one route served by this process. */
export interface RouteHandle {
  readonly key: string
  readonly method: string
  readonly path: string
  readonly forceActive: boolean
  /** The state the route gets when none is stored. */
  readonly initial: RouteState
  /** Precomputed decisions; the engine replaces it when state changes. */
  plan: RoutePlan
}

/** The waygate engine: owns the snapshot, applies mutations, answers the per-request check. */
export interface WaygateEngine {
  readonly env: string
  readonly backend: WaygateBackend
  readonly logger: WaygateLogger
  readonly testBypass: boolean
  /** Current time of the engine's clock (epoch ms). */
  now(): number
  /** Loads the snapshot and subscribes to the backend. Idempotent; never rejects for a backend failure. */
  start(): Promise<void>
  /** Stops timers and subscriptions and closes the backend. */
  close(): Promise<void>

  /** Declares a route served by this process; validates its declaration. Same key → same handle. */
  declareRoute(method: string, path: string, declaration?: RouteDeclaration): RouteHandle
  /** Stores the initial state of every declared route that has none stored. */
  registerDeclaredRoutes(): Promise<void>
  /** The per-request check: synchronous, no I/O. */
  decide(handle: RouteHandle): Decision
  /**
   * The check for a request that matched no route (global maintenance still applies). `url` may
   * carry a query; `preflight` marks a CORS preflight (OPTIONS with Access-Control-Request-Method),
   * which is never blocked.
   */
  decideUnmatched(url: string, method: string, preflight?: boolean): Decision

  /** The state of one key with its window applied at the current time, or null. */
  getState(key: string): RouteState | null
  /** Every known route state, sorted by path then method. */
  listRoutes(): RouteState[]
  getGlobal(): GlobalMaintenance
  listAudit(query?: AuditQuery): Promise<AuditEntry[]>
  /** Resolves an operator's input to registered keys (see DESIGN: bare paths and `all`). */
  resolveKeys(input: string, all?: boolean): string[]
  status(): Promise<EngineStatus>
  readonly version: number
  /** The highest backend revision applied (0 while none, or with a backend that keeps none). */
  readonly revision: number
  /**
   * The stored state as the engine holds it, synchronously and as copies: the raw stored route
   * states (windows not evaluated, declared-only routes left out) with the revision and epoch
   * they are at. What the Waygate Server sends services as a snapshot.
   */
  storedSnapshot(): StoredSnapshot

  enable(key: string, options?: MutationOptions): Promise<RouteState[]>
  disable(key: string, options?: DisableOptions): Promise<RouteState[]>
  setMaintenance(key: string, options?: MaintenanceOptions): Promise<RouteState[]>
  schedule(key: string, options: ScheduleOptions): Promise<RouteState[]>
  cancelSchedule(key: string, options?: MutationOptions): Promise<RouteState[]>
  setEnvOnly(key: string, envs: string[], options?: EnvOnlyOptions): Promise<RouteState[]>
  deprecate(key: string, options?: DeprecateOptions): Promise<RouteState[]>
  /** Plans a brownout of a deprecated route (audited `brownout_schedule`); ended brownouts are dropped. */
  scheduleBrownout(key: string, options: BrownoutOptions): Promise<RouteState[]>
  /** Cancels one brownout by id, or every one without `id` (audited `brownout_cancel`). */
  cancelBrownouts(key: string, options?: MutationOptions & { id?: string }): Promise<RouteState[]>
  enableGlobalMaintenance(options?: GlobalEnableOptions): Promise<GlobalMaintenance>
  disableGlobalMaintenance(options?: Omit<MutationOptions, 'all'>): Promise<GlobalMaintenance>
  addGlobalExempt(paths: string[], options?: Omit<MutationOptions, 'all'>): Promise<GlobalMaintenance>
  removeGlobalExempt(paths: string[], options?: Omit<MutationOptions, 'all'>): Promise<GlobalMaintenance>

  /** Runs announcements of window starts and ends that are due. Timers call it; tests may too. */
  runDueTransitions(): Promise<void>
  /** Reloads the snapshot from the backend. */
  resync(): Promise<void>
  /** Follows every change. Returns the unsubscribe function. */
  subscribe(listener: (event: EngineEvent) => void): () => void
  /**
   * Writes an audit entry for a change made outside route state (a rate limit policy, say) and
   * sends it to this engine's webhooks, once: nothing is sent when an entry with its id exists.
   */
  recordChange(entry: AuditEntry): Promise<boolean>
  /**
   * Posts the changes this engine makes to `url`, in the background: a delivery never delays or
   * fails a change. Changes other instances make reach their own webhooks, not this one's, so with
   * a shared backend each change is delivered once. Returns the function that removes the webhook.
   */
  addWebhook(url: string, options?: WebhookOptions): () => void
  /**
   * Whether webhook deliveries wait in the backend's outbox (written with each change, retried
   * across restarts, dead letters kept) rather than in this process's memory.
   */
  readonly webhooksDurable: boolean
  /** This process's webhook deliveries by outcome since it started (delivered, retried, failed, dead, dropped). */
  readonly webhookDeliveries: Readonly<Record<WebhookDeliveryOutcome, number>>
  /** The webhook deliveries given up on, newest first; none without a durable outbox. */
  listDeadLetters(): Promise<DeadLetter[]>
  /**
   * Sends a dead letter again, its attempts starting over, audited as `webhook_retry` (by
   * `options.actor`). Resolves false when there is none with that id.
   */
  retryDeadLetter(id: string, options?: Omit<MutationOptions, 'all'>): Promise<boolean>
  /** Removes a dead letter, audited as `webhook_delete`. Resolves whether it existed. */
  deleteDeadLetter(id: string, options?: Omit<MutationOptions, 'all'>): Promise<boolean>

  /**
   * Stores the states whose keys are not stored yet, as given, and never overwrites one (the
   * stored state wins). Resolves the keys it added. For states of routes this process does not
   * serve (the Waygate Server registers its services' routes); declared routes use
   * `registerDeclaredRoutes()`.
   */
  registerRoutes(states: RouteState[]): Promise<string[]>
  /**
   * Compare-and-set of one stored route state: writes `next` (with `audit`) only if the stored
   * state, or null when none is stored, equals `base` (as canonical JSON); else rejects with
   * `WG_ERR_CONFLICT`, whose `current` property holds the stored state or null. The key is used
   * exactly as given (no bare paths), and `next.key` must be it. When written, the webhooks are
   * told once with `audit`. Resolves the stored state. For the Waygate Server, which applies
   * changes its services computed on what they held.
   */
  applyRemoteUpdate(key: string, update: RemoteUpdate<RouteState>): Promise<RouteState>
  /** As {@link WaygateEngine.applyRemoteUpdate} for global maintenance; a `base` of null stands for the default (none stored). */
  applyRemoteGlobal(update: RemoteUpdate<GlobalMaintenance>): Promise<GlobalMaintenance>
}

/** JSON with object keys sorted at every level: equal data gives equal text, whatever the key order. */
function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value).filter(([, item]) => item !== undefined).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`
}

/** A conflict error carrying the stored value, for the caller to retry on. */
function conflict<T> (what: string, current: T | null): Error & { current: T | null } {
  return Object.assign(new WG_ERR_CONFLICT(what), { current })
}

const MAX_TIMER_MS = 2_147_000_000
const PLATFORMS = new Set(['dashboard', 'cli', 'api', 'sdk', 'system', 'scheduler'])

type WindowPhase = 'pending' | 'open' | 'closed'

function windowPhase (state: RouteState, now: number): WindowPhase | null {
  const window = state.window
  if (window === null) return null
  const start = readTime(window.start)
  // a window whose start cannot be read never opens (see readableState)
  if (Number.isNaN(start)) return null
  if (now < start) return 'pending'
  if (window.end !== null && now >= readTime(window.end)) return 'closed'
  return 'open'
}

/** Builds the initial state a declaration gives a route. */
function initialState (key: string, method: string | null, path: string, decl: RouteDeclaration, nowIso: string): RouteState {
  const state: RouteState = {
    key,
    path,
    method,
    service: null,
    status: 'active',
    reason: '',
    allowedEnvs: [],
    window: null,
    sunset: null,
    successor: null,
    deprecatedAt: null,
    disabledUntil: null,
    forceActive: decl.forceActive === true,
    updatedAt: nowIso,
    updatedBy: 'config'
  }
  if (decl.forceActive === true) return state
  if (decl.disabled !== undefined) {
    state.status = 'disabled'
    state.reason = decl.disabled.reason ?? ''
    return state
  }
  if (decl.deprecated !== undefined) {
    state.status = 'deprecated'
    state.reason = decl.deprecated.reason ?? ''
    state.sunset = decl.deprecated.sunset === undefined ? null : toIso(decl.deprecated.sunset, 'deprecated.sunset')
    state.successor = decl.deprecated.successor === undefined ? null : checkSuccessor(decl.deprecated.successor, 'deprecated.successor')
    state.deprecatedAt = nowIso
    if (decl.deprecated.afterSunset === 'gone') {
      if (state.sunset === null) throw new WG_ERR_INPUT_INVALID('deprecated.afterSunset needs deprecated.sunset')
      state.afterSunset = 'gone'
    }
  }
  if (decl.envOnly !== undefined) {
    state.status = 'env_gated'
    state.allowedEnvs = [...new Set(decl.envOnly)]
  }
  if (decl.maintenance !== undefined) {
    const { reason = '', start, end } = decl.maintenance
    if (start === undefined && end === undefined) {
      state.status = 'maintenance'
      state.reason = reason
    } else {
      const startIso = start === undefined ? nowIso : toIso(start, 'maintenance.start')
      const endIso = end === undefined ? null : toIso(end, 'maintenance.end')
      if (endIso !== null && Date.parse(endIso) <= Date.parse(startIso)) {
        throw new WG_ERR_INPUT_INVALID('maintenance.end must be after maintenance.start')
      }
      state.window = { start: startIso, end: endIso, reason }
    }
  }
  return state
}

/**
 * Checks a route declaration the way `declareRoute` will, without declaring anything: throws
 * WG_ERR_INPUT_INVALID naming `where` and every problem. Lets route guards fail at startup.
 */
export function checkRouteDeclaration (declaration: unknown, where: string): void {
  const errors = schemaErrors(RouteDeclaration, declaration)
  if (errors.length > 0) throw new WG_ERR_INPUT_INVALID(`${where}: ${errors.join('; ')}`)
  try {
    initialState('GET:/', 'GET', '/', declaration as RouteDeclaration, new Date().toISOString())
  } catch (err) {
    throw new WG_ERR_INPUT_INVALID(`${where}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Creates an engine. Call `start()` (the Fastify plugin does) before relying on stored state.
 *
 * @example
 * const engine = createEngine({ backend: createFileBackend({ path: 'waygate.json' }), env: 'production' })
 * await engine.start()
 * await engine.setMaintenance('GET:/payments', { reason: 'DB migration', actor: 'alice' })
 */
export function createEngine (options: EngineOptions = {}): WaygateEngine {
  const backend = options.backend ?? createMemoryBackend()
  const env = options.env ?? 'dev'
  if (typeof env !== 'string' || env === '') throw new WG_ERR_OPTIONS_INVALID('env must be a non-empty string')
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new WG_ERR_OPTIONS_INVALID('now must be a function returning epoch milliseconds')
  const logger = options.logger ?? silentLogger
  const testBypass = options.testBypass === true
  const resyncIntervalMs = options.resyncIntervalMs ?? 60_000
  if (!Number.isInteger(resyncIntervalMs) || resyncIntervalMs < 0) {
    throw new WG_ERR_OPTIONS_INVALID('resyncIntervalMs must be a non-negative integer')
  }
  const warnOnce = createThrottledWarn(logger, now)
  // with an outbox on the backend, a change and its deliveries are one write (see withDeliveries)
  const webhooks = createWebhookDispatcher(backend.outbox === undefined ? { logger, now } : { logger, now, outbox: backend.outbox })
  if (options.webhooks !== undefined) {
    if (!Array.isArray(options.webhooks)) throw new WG_ERR_OPTIONS_INVALID('webhooks must be an array of { url, ...options }')
    for (const webhook of options.webhooks) webhooks.add(webhook?.url, webhook)
  }

  const routes = new Map<string, RouteState>()
  let global: GlobalMaintenance = defaultGlobalMaintenance()
  const handles = new Map<string, RouteHandle>()
  const listeners = new Set<(event: EngineEvent) => void>()
  const phases = new Map<string, WindowPhase>()
  let version = 0
  // ---- ordering: the backend revision held per key, so a stale change or an older read never rolls back a newer one ----
  /** The highest revision applied. */
  let revision = 0
  /** The history revisions count in, as the last snapshot that named one said. */
  let epoch: string | null = null
  /** The revision of the last snapshot merged: a key with no revision of its own is held as of it. */
  let floor = 0
  /** Revisions above `floor` of route keys (deleted ones too: a late change must not revive them) and of global (GLOBAL_KEY). */
  const held = new Map<string, number>()
  /** Revisions of records, by namespace and id; snapshots do not hold records. */
  const heldRecords = new Map<string, number>()
  let started: Promise<void> | null = null
  let closed = false
  let healthy = true
  let lastError: string | null = null
  let unsubscribe: (() => void) | null = null
  let transitionTimer: NodeJS.Timeout | null = null
  let resyncTimer: NodeJS.Timeout | null = null
  let retryTimer: NodeJS.Timeout | null = null
  let retryDelay = 500
  let unmatchedBlock: BlockDecision | null = null
  /** When unmatchedBlock stops applying (the end of global maintenance), else Infinity. */
  let unmatchedUntil = Infinity

  /**
   * An update with the webhook deliveries of its change, when the backend keeps an outbox: the
   * backend stores them with the change, in the same atomic step, so a crash right after the
   * change cannot lose its notification. `state` is what the webhooks are told the state became.
   */
  function withDeliveries<T> (update: Update<T>, state: RouteState | GlobalMaintenance | null): Update<T> {
    if (update.audit === undefined) return update
    const deliveries = webhooks.prepare(update.audit, state === null ? null : structuredClone(state))
    return deliveries === undefined ? update : { ...update, deliveries }
  }

  function emit (event: EngineEvent): void {
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (err) {
        logger.error({ err }, 'waygate: an engine subscriber threw')
      }
    }
  }

  /** Global maintenance compiled into the plans: off past its end. */
  let enforced: GlobalMaintenance = global

  function compileHandle (handle: RouteHandle, current = globalAt(global, now())): void {
    const state = routes.get(handle.key) ?? routes.get(handle.path) ?? handle.initial
    handle.plan = compilePlan(handle, state, current, env, (field, value) => {
      warnOnce(`header:${handle.key}`, { key: handle.key, field, value: value.slice(0, 200) },
        `waygate: the stored ${field} cannot go in a response header; the route is served without it`)
    })
  }

  /** Recompiles the handles a stored key affects (all of them when key is undefined). */
  function recompile (key?: string): void {
    version++
    enforced = globalAt(global, now())
    if (key === undefined) {
      for (const handle of handles.values()) compileHandle(handle, enforced)
    } else if (key[0] === '/') {
      for (const handle of handles.values()) if (handle.path === key) compileHandle(handle, enforced)
    } else {
      const handle = handles.get(key)
      if (handle !== undefined) compileHandle(handle, enforced)
    }
    const end = globalEnd(enforced)
    unmatchedBlock = enforced.enabled
      ? Object.freeze({ action: 'block' as const, kind: 'maintenance' as const, key: GLOBAL_KEY, reason: enforced.reason, global: true, retryAt: Number.isNaN(end) ? null : end })
      : null
    unmatchedUntil = Number.isNaN(end) ? Infinity : end
    scheduleTransitions()
  }

  function markHealthy (): void {
    if (!healthy) logger.info({ backend: backend.kind }, 'waygate: backend reachable again')
    healthy = true
    lastError = null
  }

  function markFailure (err: unknown, what: string): void {
    healthy = false
    lastError = err instanceof Error ? err.message : String(err)
    warnOnce(what, { err, backend: backend.kind }, `waygate: backend ${what} failed; serving the last known state`)
  }

  /** A stored state as the snapshot holds it: with what cannot be read made absent, and logged. */
  function readable (state: RouteState): RouteState {
    const fields: string[] = []
    const out = readableState(state, fields)
    if (fields.length > 0) {
      warnOnce(`unreadable:${state.key}`, { key: state.key, fields },
        'waygate: a stored route state has times that cannot be read; they count as absent')
    }
    return out
  }

  /**
   * Whether a change of `key` at `rev` is newer than what is held (`base` for a key without a
   * revision of its own), noting it when it is. A change without a revision always is.
   */
  function admit (revisions: Map<string, number>, key: string, rev: number | undefined, base: number): boolean {
    if (rev === undefined) return true
    if (rev <= (revisions.get(key) ?? base)) return false
    revisions.set(key, rev)
    if (rev > revision) revision = rev
    return true
  }

  function applyChange (change: BackendChange): void {
    switch (change.type) {
      case 'route': {
        // stale or repeated: what is held already includes it
        if (!admit(held, change.state.key, change.revision, floor)) break
        const previous = routes.get(change.state.key) ?? null
        const state = readable(change.state)
        routes.set(state.key, state)
        recompile(state.key)
        emit({
          type: 'route_changed',
          version,
          revision: change.revision ?? null,
          key: state.key,
          state: view(state),
          stored: structuredClone(state),
          previous: previous === null ? null : view(previous)
        })
        break
      }
      case 'route_deleted':
        if (!admit(held, change.key, change.revision, floor)) break
        if (routes.delete(change.key)) {
          recompile(change.key)
          emit({ type: 'route_removed', version, revision: change.revision ?? null, key: change.key })
        }
        break
      case 'global': {
        if (!admit(held, GLOBAL_KEY, change.revision, floor)) break
        const previous = global
        global = readableGlobal(change.global)
        recompile()
        emit({ type: 'global_changed', version, revision: change.revision ?? null, global: structuredClone(global), previous })
        break
      }
      case 'audit':
        emit({ type: 'audit', version, entry: change.entry })
        break
      case 'record':
        if (!admit(heldRecords, `${change.namespace}\u0000${change.id}`, change.revision, 0)) break
        // records (revocations, rate limit policies…) do not touch route state: no new version
        emit({ type: 'record_changed', version, revision: change.revision ?? null, namespace: change.namespace, id: change.id, record: change.record })
        break
      case 'resync':
        resync().catch(() => scheduleRetry())
        break
    }
  }

  async function resync (): Promise<void> {
    if (closed) return
    try {
      const snapshot = await backend.load()
      applySnapshot(snapshot)
      markHealthy()
      recompile()
      emit({ type: 'resynced', version })
    } catch (err) {
      markFailure(err, 'load')
      if ((err as { code?: unknown } | null)?.code === 'WG_ERR_BACKEND_UNAVAILABLE') throw err
      throw new WG_ERR_BACKEND_UNAVAILABLE('load failed', { cause: err })
    }
  }

  /**
   * Makes a loaded snapshot the held state, in one synchronous step (no request sees half of it).
   * Merged by revision: a key held at a revision above the snapshot's was changed after the read
   * and keeps its value, or its absence; every other key takes the snapshot's. A snapshot without
   * a revision, or of another history (epoch), replaces everything.
   */
  function applySnapshot (snapshot: BackendSnapshot): void {
    const at = snapshot.revision
    const snapshotEpoch = snapshot.epoch ?? null
    if (at === undefined || (epoch !== null && snapshotEpoch !== epoch)) {
      routes.clear()
      for (const state of snapshot.routes) routes.set(state.key, readable(state))
      global = readableGlobal(snapshot.global ?? defaultGlobalMaintenance())
      held.clear()
      heldRecords.clear()
      floor = at ?? 0
      if (at !== undefined) revision = at
      epoch = snapshotEpoch
      return
    }
    epoch ??= snapshotEpoch
    // read before the last snapshot merged: everything held is newer
    if (at < floor) return
    const incoming = new Map(snapshot.routes.map(state => [state.key, state]))
    for (const key of [...routes.keys()]) {
      if (!incoming.has(key) && (held.get(key) ?? floor) <= at) routes.delete(key)
    }
    for (const [key, state] of incoming) {
      if ((held.get(key) ?? floor) <= at) routes.set(key, readable(state))
    }
    if ((held.get(GLOBAL_KEY) ?? floor) <= at) global = readableGlobal(snapshot.global ?? defaultGlobalMaintenance())
    floor = at
    for (const [key, rev] of held) if (rev <= at) held.delete(key)
    for (const [key, rev] of heldRecords) if (rev <= at) heldRecords.delete(key)
    if (at > revision) revision = at
  }

  function scheduleRetry (): void {
    if (closed || retryTimer !== null) return
    retryTimer = setTimeout(() => {
      retryTimer = null
      resync().then(() => { retryDelay = 500 }, () => {
        retryDelay = Math.min(retryDelay * 2, 30_000)
        scheduleRetry()
      })
    }, retryDelay)
    retryTimer.unref()
  }

  async function doStart (): Promise<void> {
    try {
      await backend.init?.()
    } catch (err) {
      markFailure(err, 'start')
    }
    // follow changes even when the first connection failed: the retries below only reload
    unsubscribe = backend.subscribe(applyChange)
    try {
      await resync()
    } catch {
      scheduleRetry()
    }
    if (resyncIntervalMs > 0) {
      resyncTimer = setInterval(() => {
        resync().catch(() => scheduleRetry())
      }, resyncIntervalMs)
      resyncTimer.unref()
    }
    // what a predecessor (or another instance) left in the outbox goes out now
    webhooks.start()
    await runDueTransitions()
  }

  // ---- scheduled windows: state is evaluated against the clock; timers only announce ----

  function scheduleTransitions (): void {
    if (closed || started === null) return
    const t = now()
    let next = Infinity
    const globalOff = global.enabled ? globalEnd(global) : Number.NaN
    if (globalOff > t) next = globalOff
    for (const state of routes.values()) {
      if (state.status === 'disabled' && state.disabledUntil !== null) {
        const until = readTime(state.disabledUntil)
        if (until > t && until < next) next = until
        continue
      }
      const window = state.window
      if (window === null) continue
      const start = readTime(window.start)
      const end = window.end === null ? Infinity : readTime(window.end)
      if (start > t && start < next) next = start
      else if (end > t && end < next) next = end
    }
    if (transitionTimer !== null) clearTimeout(transitionTimer)
    transitionTimer = null
    if (next === Infinity) return
    transitionTimer = setTimeout(() => {
      transitionTimer = null
      runDueTransitions().catch(err => logger.error({ err }, 'waygate: window transition failed'))
    }, Math.min(Math.max(next - t, 0), MAX_TIMER_MS))
    transitionTimer.unref()
  }

  async function announceTransition (state: RouteState, phase: 'open' | 'closed'): Promise<void> {
    const window = state.window!
    const at = phase === 'open' ? window.start : window.end!
    const action: AuditAction = phase === 'open' ? 'window_start' : 'window_end'
    const entry: AuditEntry = {
      // one id per window transition, so processes sharing a backend write it once
      id: `${action}:${state.key}:${at}`,
      timestamp: at,
      key: state.key,
      service: state.service,
      action,
      actor: 'scheduler',
      platform: 'scheduler',
      reason: window.reason,
      previousStatus: phase === 'open' ? state.status : 'maintenance',
      newStatus: phase === 'open' ? 'maintenance' : state.status
    }
    // only the instance whose entry was stored sends the webhook: once, however many share the backend
    let written = false
    try {
      written = await backend.appendAudit(entry, webhooks.prepare(entry, view(state)))
    } catch (err) {
      markFailure(err, 'audit')
    }
    emit({ type: phase === 'open' ? 'window_started' : 'window_ended', version, key: state.key, state: view(state) })
    if (written) webhooks.notify(entry, view(state))
    if (phase === 'closed') {
      // tidy the stored state; enforcement already ignores an ended window
      await backend.updateRoute(state.key, current => {
        if (current === null || current.window === null || current.window.end !== window.end || current.window.start !== window.start) return undefined
        return { next: { ...current, window: null } }
      }).catch(err => markFailure(err, 'window cleanup'))
    }
  }

  /** Ends a timed disablement: the stored state becomes active, audited once by the scheduler. */
  async function endDisable (state: RouteState): Promise<void> {
    const until = state.disabledUntil!
    // the updater may run more than once: what counts is what its last run wrote
    let made: AuditEntry | undefined
    const stored = await backend.updateRoute(state.key, current => {
      made = undefined
      if (current === null || current.status !== 'disabled' || current.disabledUntil !== until) return undefined
      made = {
        id: `disable_end:${state.key}:${until}`,
        timestamp: until,
        key: state.key,
        service: state.service,
        action: 'disable_end',
        actor: 'scheduler',
        platform: 'scheduler',
        reason: current.reason,
        previousStatus: 'disabled',
        newStatus: 'active'
      }
      const next: RouteState = { ...current, status: 'active', reason: '', disabledUntil: null, updatedAt: until, updatedBy: 'scheduler' }
      return withDeliveries({ next, audit: made }, view(next))
    }).catch(err => markFailure(err, 'disable end'))
    if (made !== undefined && stored) webhooks.notify(made, view(stored))
  }

  /**
   * Ends a timed global maintenance: stored as off, audited once by the scheduler (one id per
   * end, and only while the stored one is still the one that ends then).
   */
  async function endGlobal (end: string): Promise<void> {
    let made: AuditEntry | undefined
    const stored = await backend.updateGlobal(current => {
      made = undefined
      if (!current.enabled || current.end !== end) return undefined
      made = {
        id: `global_maintenance_off:${GLOBAL_KEY}:${end}`,
        timestamp: end,
        key: GLOBAL_KEY,
        service: null,
        action: 'global_maintenance_off',
        actor: 'scheduler',
        platform: 'scheduler',
        reason: current.reason,
        previousStatus: 'maintenance',
        newStatus: 'active'
      }
      const next: GlobalMaintenance = { ...current, enabled: false, reason: '', since: null }
      delete next.end
      return withDeliveries({ next, audit: made }, next)
    }).catch(err => markFailure(err, 'global maintenance end'))
    if (made !== undefined && stored) webhooks.notify(made, structuredClone(stored))
  }

  async function runDueTransitions (): Promise<void> {
    if (closed) return
    const t = now()
    const work: Array<Promise<void>> = []
    if (global.enabled && typeof global.end === 'string' && t >= globalEnd(global)) {
      // enforced here at once, whoever stores the end (this process, another, the Waygate Server)
      if (enforced.enabled) recompile()
      work.push(endGlobal(global.end))
    }
    for (const state of routes.values()) {
      if (state.status === 'disabled' && state.disabledUntil !== null && t >= readTime(state.disabledUntil)) {
        work.push(endDisable(state))
        continue
      }
      const phase = windowPhase(state, t)
      const id = `${state.key}|${state.window?.start ?? ''}|${state.window?.end ?? ''}`
      const before = phases.get(id) ?? 'pending'
      if (phase === null || phase === before) continue
      phases.set(id, phase)
      if (before === 'pending') work.push(announceTransition(state, 'open'))
      if (phase === 'closed') work.push(announceTransition(state, 'closed'))
    }
    await Promise.all(work)
    scheduleTransitions()
  }

  // ---- views ----

  function view (state: RouteState): RouteState {
    const copy = structuredClone(readableState(state))
    const t = now()
    copy.status = effectiveStatus(state, t)
    if (copy.window !== null && windowPhase(copy, t) === 'closed') copy.window = null
    const handle = handles.get(state.key)
    if (handle?.forceActive === true) copy.forceActive = true
    return copy
  }

  function knownKeys (): Set<string> {
    const keys = new Set(routes.keys())
    for (const key of handles.keys()) keys.add(key)
    return keys
  }

  function resolveKeys (input: string, all = false): string[] {
    return resolveRouteKeys(knownKeys(), input, all)
  }

  // ---- mutations ----

  function checkMutation (options: MutationOptions | undefined): { actor: string, platform: Platform } {
    if (closed) throw new WG_ERR_ENGINE_CLOSED()
    const actor = options?.actor ?? 'system'
    const platform = options?.platform ?? 'system'
    if (typeof actor !== 'string' || actor.length === 0 || actor.length > 200) {
      throw new WG_ERR_INPUT_INVALID('actor must be a string of 1 to 200 characters')
    }
    if (!PLATFORMS.has(platform)) throw new WG_ERR_INPUT_INVALID(`unknown platform "${String(platform)}"`)
    return { actor, platform }
  }

  function audit (key: string, service: string | null, action: AuditAction, who: { actor: string, platform: Platform },
    reason: string, previousStatus: RouteStatus | null, newStatus: RouteStatus | null): AuditEntry {
    return {
      id: randomUUID(),
      timestamp: new Date(now()).toISOString(),
      key,
      service,
      action,
      actor: who.actor,
      platform: who.platform,
      reason,
      previousStatus,
      newStatus
    }
  }

  async function write<T> (what: string, op: () => Promise<T>): Promise<T> {
    try {
      const result = await op()
      markHealthy()
      return result
    } catch (err) {
      if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string' && err.code.startsWith('WG_ERR_')) {
        // a backend may report its own failure already coded (the file backend does)
        if (err.code === 'WG_ERR_BACKEND_UNAVAILABLE') markFailure(err, what)
        throw err
      }
      markFailure(err, what)
      throw new WG_ERR_BACKEND_UNAVAILABLE(`${what} failed`, { cause: err })
    }
  }

  /**
   * Applies `change` to every key `input` resolves to. `change` receives the current state (the
   * stored one, else the declared initial one) and returns the fields to set, or undefined for
   * no change.
   */
  async function mutateRoutes (input: string, options: MutationOptions | undefined, action: AuditAction, reason: string,
    change: (current: RouteState) => Partial<RouteState> | undefined): Promise<RouteState[]> {
    const who = checkMutation(options)
    const keys = resolveKeys(input, options?.all === true)
    for (const key of keys) {
      if (handles.get(key)?.forceActive === true) throw new WG_ERR_ROUTE_FORCE_ACTIVE(key)
    }
    const results: RouteState[] = []
    for (const key of keys) {
      const fallback = handles.get(key)?.initial ?? null
      // the updater may run more than once: the webhook reports what its last run wrote
      let made: AuditEntry | undefined
      const stored = await write('write', () => backend.updateRoute(key, (current): Update<RouteState> | undefined => {
        made = undefined
        // a change on top of an unreadable stored time writes a readable state
        const base = current === null ? fallback : readable(current)
        if (base === null) throw new WG_ERR_ROUTE_NOT_FOUND(key)
        if (base.forceActive) throw new WG_ERR_ROUTE_FORCE_ACTIVE(key)
        const fields = change(base)
        if (fields === undefined) return current === null ? { next: base } : undefined
        const t = now()
        const next: RouteState = { ...base, ...fields, updatedAt: new Date(t).toISOString(), updatedBy: who.actor }
        made = audit(key, base.service, action, who, reason, effectiveStatus(base, t), effectiveStatus(next, t))
        return withDeliveries({ next, audit: made }, view(next))
      }))
      if (stored !== null) {
        const shown = view(stored)
        results.push(shown)
        if (made !== undefined) webhooks.notify(made, shown)
      }
    }
    return results
  }

  function windowFields (current: RouteState, start: string, end: string | null, reason: string): Partial<RouteState> {
    // The window overlays the route's lasting status, which it returns to when the window ends.
    // A window scheduled for later leaves the current status alone until then; one starting now
    // replaces an open-ended maintenance or a disablement, so that it really ends at its end.
    const keep = Date.parse(start) > now() ||
      current.status === 'deprecated' || current.status === 'env_gated' || current.status === 'active'
    return keep
      ? { status: current.status, window: { start, end, reason } }
      : { status: 'active', window: { start, end, reason }, disabledUntil: null }
  }

  async function mutateGlobal (options: Omit<MutationOptions, 'all'> | undefined, action: AuditAction, reason: string,
    change: (current: GlobalMaintenance) => GlobalMaintenance | undefined): Promise<GlobalMaintenance> {
    const who = checkMutation(options)
    let made: AuditEntry | undefined
    const stored = await write('write', () => backend.updateGlobal(current => {
      made = undefined
      const next = change(readableGlobal(current))
      if (next === undefined) return undefined
      made = audit(GLOBAL_KEY, null, action, who, reason, current.enabled ? 'maintenance' : 'active', next.enabled ? 'maintenance' : 'active')
      return withDeliveries({ next, audit: made }, next)
    }))
    if (made !== undefined) webhooks.notify(made, structuredClone(stored))
    return stored
  }

  /** Retries or deletes a dead letter, then audits it (what was sent where) when there was one. */
  async function deadLetterAction (id: string, options: Omit<MutationOptions, 'all'> | undefined, action: 'webhook_retry' | 'webhook_delete',
    op: () => Promise<boolean>): Promise<boolean> {
    const who = checkMutation(options)
    const letter = (await write('read dead letters', () => webhooks.deadLetters())).find(d => d.delivery.id === id)
    if (letter === undefined) return false
    if (!await write(action === 'webhook_retry' ? 'retry a dead letter' : 'delete a dead letter', op)) return false
    const d = letter.delivery
    await write('audit', () => backend.appendAudit(audit(d.key, null, action, who, `${d.event} to ${d.target} (delivery ${d.eventId})`, null, null)))
    return true
  }

  function checkExemptPaths (paths: unknown): string[] {
    if (!Array.isArray(paths) || paths.length > 500) throw new WG_ERR_INPUT_INVALID('exemptPaths must be an array of at most 500 route keys')
    return [...new Set(paths.map(p => {
      if (typeof p !== 'string') throw new WG_ERR_INPUT_INVALID('exemptPaths must contain strings')
      return parseRouteKey(p).key
    }))]
  }

  const engine: WaygateEngine = {
    env,
    backend,
    logger,
    testBypass,
    now,
    get version () { return version },
    get revision () { return revision },

    storedSnapshot () {
      return {
        revision,
        epoch,
        routes: [...routes.values()].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0).map(state => structuredClone(state)),
        global: structuredClone(global)
      }
    },

    async start () {
      if (closed) throw new WG_ERR_ENGINE_CLOSED()
      started ??= doStart()
      return started
    },

    async close () {
      if (closed) return
      closed = true
      for (const timer of [transitionTimer, retryTimer]) if (timer !== null) clearTimeout(timer)
      if (resyncTimer !== null) clearInterval(resyncTimer)
      unsubscribe?.()
      listeners.clear()
      await webhooks.close()
      await backend.close()
    },

    declareRoute (method, path, declaration = {}) {
      const m = method.toUpperCase()
      const key = routeKey(m, path)
      const existing = handles.get(key)
      if (existing !== undefined) return existing
      const errors = schemaErrors(RouteDeclaration, declaration)
      if (errors.length > 0) throw new WG_ERR_INPUT_INVALID(`route ${key}: ${errors.join('; ')}`)
      let initial: RouteState
      try {
        initial = initialState(key, m, path, declaration, new Date(now()).toISOString())
      } catch (err) {
        throw new WG_ERR_INPUT_INVALID(`route ${key}: ${(err as Error).message}`, { cause: err })
      }
      const handle: RouteHandle = {
        key,
        method: m,
        path,
        forceActive: initial.forceActive,
        initial,
        plan: { outside: PASS, inside: PASS, windowStart: Infinity, windowEnd: Infinity }
      }
      handles.set(key, handle)
      compileHandle(handle)
      return handle
    },

    async registerDeclaredRoutes () {
      const states = [...handles.values()].map(h => h.initial)
      if (states.length === 0) return
      try {
        await backend.registerRoutes(states)
        // force-active is declared in code: keep the stored flag in line with it
        for (const handle of handles.values()) {
          const stored = routes.get(handle.key)
          if (stored !== undefined && stored.forceActive !== handle.forceActive) {
            await backend.updateRoute(handle.key, current => current === null || current.forceActive === handle.forceActive
              ? undefined
              : { next: { ...current, forceActive: handle.forceActive } })
          }
        }
        markHealthy()
      } catch (err) {
        markFailure(err, 'register')
        scheduleRetry()
      }
    },

    decide (handle) {
      if (testBypass) return PASS
      const plan = handle.plan
      if (plan.windowStart !== Infinity) {
        const t = now()
        if (t >= plan.windowStart && t < plan.windowEnd) return plan.inside
      }
      // only a deprecated route with a sunset to enforce or brownouts has one
      if (plan.gone !== undefined) return goneAt(plan.gone, now(), plan.outside)
      return plan.outside
    },

    decideUnmatched (url, method, preflight = false) {
      if (testBypass || unmatchedBlock === null) return PASS
      // CORS preflights must keep working for browsers that will show the maintenance answer
      if (preflight && method === 'OPTIONS') return PASS
      if (unmatchedUntil !== Infinity && now() >= unmatchedUntil) return PASS
      const q = url.indexOf('?')
      const path = q === -1 ? url : url.slice(0, q)
      if (isExempt(global.exemptPaths, `${method}:${path}`, path)) return PASS
      return unmatchedBlock
    },

    getState (key) {
      const parsed = parseRouteKey(key)
      const state = routes.get(parsed.key) ?? handles.get(parsed.key)?.initial
      return state === undefined ? null : view(state)
    },

    listRoutes () {
      const all = new Map<string, RouteState>()
      for (const handle of handles.values()) all.set(handle.key, handle.initial)
      for (const [key, state] of routes) all.set(key, state)
      return [...all.values()].map(view).sort((a, b) =>
        a.path === b.path ? (a.method ?? '').localeCompare(b.method ?? '') : a.path.localeCompare(b.path))
    },

    getGlobal () {
      return structuredClone(globalAt(global, now()))
    },

    async listAudit (query) {
      // entries compare as ISO strings: a bound must be one, in UTC, naming an instant that exists
      const bounds: AuditQuery = { ...query }
      if (query?.since !== undefined) bounds.since = toIso(query.since, 'since')
      if (query?.until !== undefined) bounds.until = toIso(query.until, 'until')
      return write('audit read', () => backend.listAudit(query === undefined ? undefined : bounds))
    },

    resolveKeys,

    async status () {
      let backendHealth: { ok: boolean, detail?: string }
      try {
        backendHealth = await backend.health()
      } catch (err) {
        backendHealth = { ok: false, detail: (err as Error).message }
      }
      return {
        backend: backend.kind,
        healthy: backendHealth.ok && healthy,
        lastError: lastError ?? (backendHealth.ok ? null : backendHealth.detail ?? 'unhealthy'),
        version,
        env,
        routes: knownKeys().size,
        testBypass,
        ...(backend.syncStatus === undefined ? {} : { sync: backend.syncStatus() })
      }
    },

    async enable (key, options) {
      return mutateRoutes(key, options, 'enable', '', current => {
        if (current.status === 'active' && current.window === null && current.reason === '') return undefined
        return { status: 'active', reason: '', allowedEnvs: [], window: null, sunset: null, successor: null, deprecatedAt: null, disabledUntil: null }
      })
    },

    async disable (key, options) {
      const reason = checkReason(options?.reason)
      let disabledUntil: string | null = null
      if (options?.until !== undefined) {
        const until = toEpochMs(options.until, 'until')
        if (until <= now()) throw new WG_ERR_INPUT_INVALID('until is in the past')
        disabledUntil = new Date(until).toISOString()
      }
      return mutateRoutes(key, options, 'disable', reason, () => ({ status: 'disabled', reason, window: null, disabledUntil }))
    },

    async setMaintenance (key, options) {
      const reason = checkReason(options?.reason)
      if (options?.start === undefined && options?.end === undefined) {
        return mutateRoutes(key, options, 'maintenance_on', reason, () => ({ status: 'maintenance', reason, window: null, disabledUntil: null }))
      }
      const t = now()
      const start = options.start === undefined ? t : toEpochMs(options.start, 'start')
      const end = options.end === undefined ? null : toEpochMs(options.end, 'end')
      if (end !== null && end <= start) throw new WG_ERR_INPUT_INVALID('end must be after start')
      if (end !== null && end <= t) throw new WG_ERR_INPUT_INVALID('end is in the past')
      const startIso = new Date(start).toISOString()
      const endIso = end === null ? null : new Date(end).toISOString()
      return mutateRoutes(key, options, start > t ? 'schedule' : 'maintenance_on', reason,
        current => windowFields(current, startIso, endIso, reason))
    },

    async schedule (key, options) {
      if (options === undefined || options.start === undefined || options.end === undefined) {
        throw new WG_ERR_INPUT_INVALID('a schedule needs start and end')
      }
      const reason = checkReason(options.reason)
      const start = toEpochMs(options.start, 'start')
      const end = toEpochMs(options.end, 'end')
      if (end <= start) throw new WG_ERR_INPUT_INVALID('end must be after start')
      if (end <= now()) throw new WG_ERR_INPUT_INVALID('end is in the past')
      const startIso = new Date(start).toISOString()
      const endIso = new Date(end).toISOString()
      return mutateRoutes(key, options, 'schedule', reason, current => windowFields(current, startIso, endIso, reason))
    },

    async cancelSchedule (key, options) {
      return mutateRoutes(key, options, 'schedule_cancel', '', current => current.window === null ? undefined : { window: null })
    },

    async setEnvOnly (key, envs, options) {
      const allowed = checkEnvs(envs)
      const reason = checkReason(options?.reason)
      return mutateRoutes(key, options, 'env_gate', reason || `only in ${allowed.join(', ')}`,
        () => ({ status: 'env_gated', allowedEnvs: allowed, reason, window: null, disabledUntil: null }))
    },

    async deprecate (key, options) {
      const reason = checkReason(options?.reason)
      const sunset = options?.sunset === undefined ? null : toIso(options.sunset, 'sunset')
      const successor = options?.successor === undefined || options.successor === null ? null : checkSuccessor(options.successor)
      const afterSunset = options?.afterSunset
      if (afterSunset !== undefined && afterSunset !== null && afterSunset !== 'gone') throw new WG_ERR_INPUT_INVALID('afterSunset must be "gone" or null')
      if (afterSunset === 'gone' && sunset === null) throw new WG_ERR_INPUT_INVALID('afterSunset "gone" needs a sunset')
      return mutateRoutes(key, options, 'deprecate', reason, current => ({
        status: 'deprecated',
        disabledUntil: null,
        reason,
        sunset,
        successor,
        // deprecating again (to add a sunset, say) keeps the original Deprecation date
        deprecatedAt: current.status === 'deprecated' && current.deprecatedAt !== null ? current.deprecatedAt : new Date(now()).toISOString(),
        // set when asked, cleared when not; left out of states that never had it
        ...(afterSunset === 'gone' ? { afterSunset } : current.afterSunset !== undefined && current.afterSunset !== null ? { afterSunset: null } : {})
      }))
    },

    async scheduleBrownout (key, options) {
      if (options === undefined || options.start === undefined || options.end === undefined) {
        throw new WG_ERR_INPUT_INVALID('a brownout needs start and end')
      }
      const reason = checkReason(options.reason)
      const start = toEpochMs(options.start, 'start')
      const end = toEpochMs(options.end, 'end')
      if (end <= start) throw new WG_ERR_INPUT_INVALID('end must be after start')
      if (end <= now()) throw new WG_ERR_INPUT_INVALID('end is in the past')
      const brownout: Brownout = { id: randomUUID().slice(0, 8), start: new Date(start).toISOString(), end: new Date(end).toISOString(), reason }
      return mutateRoutes(key, options, 'brownout_schedule', `${brownout.start} – ${brownout.end}${reason === '' ? '' : `: ${reason}`}`, current => {
        if (current.status !== 'deprecated') throw new WG_ERR_INPUT_INVALID(`${current.key} is not deprecated: only a deprecated route has brownouts`)
        const t = now()
        const kept = (current.brownouts ?? []).filter(b => Date.parse(b.end) > t)
        if (kept.length >= MAX_BROWNOUTS) throw new WG_ERR_INPUT_INVALID(`${current.key} already has ${MAX_BROWNOUTS} planned brownouts`)
        return { brownouts: [...kept, brownout].sort((a, b) => Date.parse(a.start) - Date.parse(b.start)) }
      })
    },

    async cancelBrownouts (key, options) {
      const id = options?.id
      if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 64)) throw new WG_ERR_INPUT_INVALID('id must be a brownout id')
      return mutateRoutes(key, options, 'brownout_cancel', id === undefined ? 'all brownouts' : `brownout ${id}`, current => {
        const list = current.brownouts ?? []
        const t = now()
        const kept = list.filter(b => (id !== undefined && b.id !== id) && Date.parse(b.end) > t)
        if (id !== undefined && !list.some(b => b.id === id)) throw new WG_ERR_INPUT_INVALID(`${current.key} has no brownout ${id}`)
        return list.length === 0 ? undefined : { brownouts: kept }
      })
    },

    async enableGlobalMaintenance (options) {
      const reason = checkReason(options?.reason)
      const exempt = options?.exemptPaths === undefined ? undefined : checkExemptPaths(options.exemptPaths)
      const include = options?.includeForceActive
      if (include !== undefined && typeof include !== 'boolean') throw new WG_ERR_INPUT_INVALID('includeForceActive must be a boolean')
      let end: string | undefined
      if (options?.end !== undefined && options.end !== null) {
        const at = toEpochMs(options.end, 'end')
        if (at <= now()) throw new WG_ERR_INPUT_INVALID('end is in the past')
        end = new Date(at).toISOString()
      }
      return mutateGlobal(options, 'global_maintenance_on', reason, current => {
        const t = now()
        // one whose end has passed is off, even when the scheduler has not stored it yet
        const on = globalAt(current, t).enabled
        return {
          enabled: true,
          reason,
          exemptPaths: exempt ?? current.exemptPaths,
          includeForceActive: include ?? current.includeForceActive,
          since: on && current.since !== null ? current.since : new Date(t).toISOString(),
          ...(end === undefined ? {} : { end })
        }
      })
    },

    async disableGlobalMaintenance (options) {
      return mutateGlobal(options, 'global_maintenance_off', '', current => {
        if (!current.enabled) return undefined
        const next: GlobalMaintenance = { ...current, enabled: false, reason: '', since: null }
        delete next.end
        return next
      })
    },

    async addGlobalExempt (paths, options) {
      const add = checkExemptPaths(paths)
      return mutateGlobal(options, 'global_exempt_add', add.join(', '), current => {
        const merged = [...new Set([...current.exemptPaths, ...add])]
        return merged.length === current.exemptPaths.length ? undefined : { ...current, exemptPaths: merged }
      })
    },

    async removeGlobalExempt (paths, options) {
      const remove = new Set(checkExemptPaths(paths))
      return mutateGlobal(options, 'global_exempt_remove', [...remove].join(', '), current => {
        const kept = current.exemptPaths.filter(p => !remove.has(p))
        return kept.length === current.exemptPaths.length ? undefined : { ...current, exemptPaths: kept }
      })
    },

    runDueTransitions,

    resync,

    async recordChange (entry) {
      const written = await write('audit', () => backend.appendAudit(entry, webhooks.prepare(entry, null)))
      if (written) webhooks.notify(entry, null)
      return written
    },

    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },

    addWebhook (url, webhookOptions) {
      if (closed) throw new WG_ERR_ENGINE_CLOSED()
      return webhooks.add(url, webhookOptions)
    },

    get webhooksDurable () {
      return webhooks.durable
    },

    get webhookDeliveries () {
      return webhooks.deliveries
    },

    async listDeadLetters () {
      return write('read dead letters', () => webhooks.deadLetters())
    },

    async retryDeadLetter (id, options) {
      return deadLetterAction(id, options, 'webhook_retry', () => webhooks.retryDeadLetter(id))
    },

    async deleteDeadLetter (id, options) {
      return deadLetterAction(id, options, 'webhook_delete', () => webhooks.deleteDeadLetter(id))
    },

    async registerRoutes (states) {
      if (closed) throw new WG_ERR_ENGINE_CLOSED()
      if (!Array.isArray(states)) throw new WG_ERR_INPUT_INVALID('registerRoutes takes an array of route states')
      if (states.length === 0) return []
      return write('register', () => backend.registerRoutes(states))
    },

    async applyRemoteUpdate (key, update) {
      if (closed) throw new WG_ERR_ENGINE_CLOSED()
      if (update?.next?.key !== key) throw new WG_ERR_INPUT_INVALID(`the next state's key must be ${JSON.stringify(key)}`)
      const base = canonicalJson(update.base ?? null)
      // the updater may run more than once: what counts is what its last run saw
      let found: { current: RouteState | null } | undefined
      const stored = await write('write', () => backend.updateRoute(key, current => {
        found = undefined
        if (canonicalJson(current) !== base) {
          found = { current }
          return undefined
        }
        return update.audit === undefined ? { next: update.next } : withDeliveries({ next: update.next, audit: update.audit }, view(update.next))
      }))
      if (found !== undefined || stored === null) throw conflict(`route ${key}`, found?.current ?? null)
      if (update.audit !== undefined) webhooks.notify(update.audit, view(stored))
      return stored
    },

    async applyRemoteGlobal (update) {
      if (closed) throw new WG_ERR_ENGINE_CLOSED()
      if (update?.next === undefined || update.next === null) throw new WG_ERR_INPUT_INVALID('applyRemoteGlobal needs the next global maintenance')
      const base = canonicalJson(update.base ?? defaultGlobalMaintenance())
      let found: { current: GlobalMaintenance } | undefined
      const stored = await write('write', () => backend.updateGlobal(current => {
        found = undefined
        if (canonicalJson(current) !== base) {
          found = { current }
          return undefined
        }
        return update.audit === undefined ? { next: update.next } : withDeliveries({ next: update.next, audit: update.audit }, update.next)
      }))
      if (found !== undefined) throw conflict('global maintenance', found.current)
      if (update.audit !== undefined) webhooks.notify(update.audit, structuredClone(stored))
      return stored
    }
  }
  return engine
}
