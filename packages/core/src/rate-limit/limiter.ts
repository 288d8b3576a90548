import { randomUUID } from 'node:crypto'
import type { WaygateEngine } from '../engine.js'
import { WG_ERR_INPUT_INVALID } from '../errors.js'
import type { AuditAction, Platform } from '../models.js'
import { isServiceName, parseRouteKey } from '../route-key.js'
import { createMemoryRateLimitStore } from './memory-store.js'
import { checkRateLimitPolicy, compileRateLimitPolicy, type CompiledRateLimitPolicy, type RateLimitPolicy } from './policy.js'
import type { RateLimitStore } from './types.js'

/** Namespace of the backend records that hold runtime rate limit policies. */
export const RATE_LIMIT_NAMESPACE = 'waygate:rate-limits'
/** Record id of the global policy. */
const GLOBAL_ID = '*'
/**
 * Record id of the policy of the service a limiter runs in (a service attached to a Waygate
 * Server); the server keeps each service's as `@service:<name>`.
 */
export const SERVICE_RATE_LIMIT_ID = '@service'
/** Record ids announcing a counter reset to other instances. */
const RESET_PREFIX = 'reset:'

/** The policy checked on every route before the route's own. */
export interface GlobalRateLimit {
  /** The policy; its `key` is `*`. */
  policy: RateLimitPolicy
  enabled: boolean
  /** Route keys (`METHOD:/pattern`) or bare patterns the global policy skips. */
  exemptRoutes: string[]
}

/**
 * The policy of a whole service, checked on each of its routes after the global policy and before
 * the route's own: same shape as {@link GlobalRateLimit}, its `policy.key` is the limiter's
 * `serviceId`, and its `exemptRoutes` are keys of the service's routes (unqualified).
 */
export type ServiceRateLimit = GlobalRateLimit

/** A policy above the routes' own (global or service) while it is enabled, with the keys it skips. */
export interface ActiveTierLimit {
  compiled: CompiledRateLimitPolicy
  exempt: ReadonlySet<string>
}

/** One refused request, as the blocked-requests log keeps it. */
export interface BlockedRequest {
  timestamp: string
  /** Route key, `*` when the global policy refused, the service id (`@service`) when the service's did. */
  key: string
  /** The concrete request path. */
  path: string
  /** What the counter was kept for: an address, a user, an API key (shortened), or `*`. */
  client: string
  /** The limit that refused, e.g. `10/minute`. */
  limit: string
  tier: string | null
  retryAfterSeconds: number
}

/** A policy as the limiter lists it. */
export interface ListedPolicy {
  key: string
  policy: RateLimitPolicy
  /** `config` when declared in code, `runtime` when set through the API (a runtime policy wins). */
  source: 'config' | 'runtime'
}

/** Who changes a policy, for the audit log. */
export interface PolicyChangeOptions {
  actor?: string
  platform?: Platform
}

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** Counters. Default: a memory store on the engine's clock. */
  store?: RateLimitStore
  /** How many refused requests the blocked log keeps. Default 500. */
  blockedLogSize?: number
  /**
   * The record id of the service policy this limiter follows and sets: `@service` (default, what
   * a service attached to a Waygate Server is sent) or `@service:<name>` (how the server stores
   * the policy of service `<name>`). Other `@...` records are ignored.
   */
  serviceId?: string
}

/**
 * Runtime rate limit policies: declared in code, overridden, reset and deleted at runtime through
 * backend records (so they survive restarts and reach every instance), plus the blocked log.
 */
export interface RateLimiter {
  readonly store: RateLimitStore
  /** Incremented whenever the effective policies change. */
  readonly version: number
  /** The record id of the service policy it follows (`@service` unless told otherwise). */
  readonly serviceId: string
  /** Loads runtime policies and follows changes. */
  start(): Promise<void>
  close(): Promise<void>
  /** Declares a route's policy from code; a runtime policy for the key wins over it. */
  declare(key: string, policy: RateLimitPolicy): CompiledRateLimitPolicy
  /** The policy in force for a route key, or null. */
  policyFor(key: string): CompiledRateLimitPolicy | null
  /** The global policy and its exemptions while it is enabled, else null. */
  activeGlobal(): ActiveTierLimit | null
  /** The service policy and its exemptions while it is enabled, else null. */
  activeService(): ActiveTierLimit | null
  list(): ListedPolicy[]
  getGlobal(): GlobalRateLimit | null
  /** The service policy as stored, enabled or not, or null. */
  getService(): ServiceRateLimit | null
  setPolicy(policy: RateLimitPolicy, options?: PolicyChangeOptions): Promise<RateLimitPolicy>
  /** Removes a runtime policy (the code's declaration, if any, applies again). Resolves whether one existed. */
  deletePolicy(key: string, options?: PolicyChangeOptions): Promise<boolean>
  /** Forgets counters of a route (one client id, or all). */
  reset(key: string, id?: string, options?: PolicyChangeOptions): Promise<void>
  setGlobal(policy: Omit<RateLimitPolicy, 'key'>, settings?: { exemptRoutes?: string[], enabled?: boolean }, options?: PolicyChangeOptions): Promise<GlobalRateLimit>
  setGlobalEnabled(enabled: boolean, options?: PolicyChangeOptions): Promise<GlobalRateLimit>
  deleteGlobal(options?: PolicyChangeOptions): Promise<boolean>
  resetGlobal(id?: string, options?: PolicyChangeOptions): Promise<void>
  /**
   * Sets the service policy (record `serviceId`); `exemptRoutes` and `enabled` default to the ones
   * held (as loaded by `start()`), else none and true.
   */
  setService(policy: Omit<RateLimitPolicy, 'key'>, settings?: { exemptRoutes?: string[], enabled?: boolean }, options?: PolicyChangeOptions): Promise<ServiceRateLimit>
  setServiceEnabled(enabled: boolean, options?: PolicyChangeOptions): Promise<ServiceRateLimit>
  /** Removes the service policy. Resolves whether one existed. */
  deleteService(options?: PolicyChangeOptions): Promise<boolean>
  /** Forgets counters of the service policy (one client id, or all). */
  resetService(id?: string, options?: PolicyChangeOptions): Promise<void>
  /** Logs one refusal; `at` is epoch ms (turned into `timestamp` when the log is read). */
  recordBlocked(entry: Omit<BlockedRequest, 'timestamp'> & { at: number }): void
  /** The newest refused requests first. */
  blocked(limit?: number): BlockedRequest[]
  /** Called after every change of the effective policies. */
  onChange(listener: () => void): () => void
}

function isGlobalRecord (value: unknown): value is GlobalRateLimit {
  return typeof value === 'object' && value !== null && 'policy' in value && 'enabled' in value
}

const SERVICE_ID_PREFIX = `${SERVICE_RATE_LIMIT_ID}:`

/** The service a `serviceId` names (`@service:payments` → `payments`), null for `@service`; throws when it is no service id. */
function serviceOfId (id: unknown): string | null {
  if (id === SERVICE_RATE_LIMIT_ID) return null
  if (typeof id === 'string' && id.startsWith(SERVICE_ID_PREFIX) && isServiceName(id.slice(SERVICE_ID_PREFIX.length))) {
    return id.slice(SERVICE_ID_PREFIX.length)
  }
  throw new WG_ERR_INPUT_INVALID(`serviceId must be ${SERVICE_RATE_LIMIT_ID} or ${SERVICE_ID_PREFIX}<service name>`)
}

function activate (record: GlobalRateLimit | null, id: string, label: string): ActiveTierLimit | null {
  return record !== null && record.enabled
    ? { compiled: compileRateLimitPolicy({ ...record.policy, key: id }, label), exempt: new Set(record.exemptRoutes) }
    : null
}

function limitsText (policy: RateLimitPolicy): string {
  return (policy.limits ?? Object.keys(policy.tiers ?? {})).join(', ')
}

/** Creates the rate limiter of an engine. */
export function createRateLimiter (engine: WaygateEngine, options: RateLimiterOptions = {}): RateLimiter {
  const store = options.store ?? createMemoryRateLimitStore({ now: engine.now })
  const blockedSize = options.blockedLogSize ?? 500
  if (!Number.isInteger(blockedSize) || blockedSize < 1) throw new WG_ERR_INPUT_INVALID('blockedLogSize must be a positive integer')
  const serviceId = options.serviceId ?? SERVICE_RATE_LIMIT_ID
  const serviceName = serviceOfId(serviceId)
  const backend = engine.backend
  const declared = new Map<string, CompiledRateLimitPolicy>()
  const runtime = new Map<string, CompiledRateLimitPolicy>()
  let global: GlobalRateLimit | null = null
  let active: ActiveTierLimit | null = null
  let service: ServiceRateLimit | null = null
  let activeSvc: ActiveTierLimit | null = null
  // a ring of the newest refusals; entries keep their time as a number and the ISO text is made
  // only when the log is read, so a 429 costs no date formatting and no array shifting
  type Blocked = Omit<BlockedRequest, 'timestamp'> & { at: number }
  const blockedLog: Array<Blocked | undefined> = new Array(blockedSize)
  let blockedNext = 0
  let blockedCount = 0
  const listeners = new Set<() => void>()
  let version = 0
  let unsubscribe: (() => void) | null = null

  function changed (): void {
    version++
    active = activate(global, GLOBAL_ID, 'global rate limit')
    activeSvc = activate(service, serviceId, 'service rate limit')
    for (const listener of listeners) {
      try {
        listener()
      } catch (err) {
        engine.logger.error({ err }, 'waygate: a rate limit listener threw')
      }
    }
  }

  function applyRecord (id: string, value: unknown): void {
    if (id.startsWith(RESET_PREFIX)) {
      const reset = value as { scope?: string, id?: string } | null
      if (reset === null) return
      if (backend.kind === 'remote' && typeof reset.scope === 'string') {
        // on a service, the counters are here, not on the Waygate Server that announced the reset
        resetHere(reset.scope, typeof reset.id === 'string' ? reset.id : undefined)
        return
      }
      // another instance reset counters: forget what this one caches about them
      store.invalidateLocal(reset.scope, reset.id)
      return
    }
    try {
      if (id === GLOBAL_ID) {
        global = value === null ? null : isGlobalRecord(value) ? value : null
      } else if (id === serviceId) {
        // checked here, so a bad record is logged and ignored instead of failing every refresh
        if (value !== null && isGlobalRecord(value)) compileRateLimitPolicy({ ...value.policy, key: serviceId }, 'stored service rate limit')
        service = value === null ? null : isGlobalRecord(value) ? value : null
      } else if (id[0] === '@') {
        // another service's policy (on the server) or a tier this version does not know
        return
      } else if (value === null) {
        runtime.delete(id)
      } else {
        runtime.set(id, compileRateLimitPolicy(value, `stored rate limit ${id}`))
      }
    } catch (err) {
      engine.logger.error({ err, id }, 'waygate: ignoring an invalid stored rate limit policy')
      return
    }
    changed()
  }

  // the service tier is audited under the global key `*` with `service` set (as service maintenance
  // is): readers of the audit log take every key but `*` for a route key
  async function audit (key: string, action: AuditAction, reason: string, who: PolicyChangeOptions | undefined,
    svc: string | null = null): Promise<void> {
    await engine.recordChange({
      id: randomUUID(),
      timestamp: new Date(engine.now()).toISOString(),
      key,
      service: svc,
      action,
      actor: who?.actor ?? 'system',
      platform: who?.platform ?? 'system',
      reason,
      previousStatus: null,
      newStatus: null
    })
  }

  function scopeOf (key: string): string {
    return (runtime.get(key) ?? declared.get(key))?.scope ?? key
  }

  /** Resets counters of a scope as a reset record names it: the service tier's, the global one's or a route's. */
  function resetHere (scope: string, id: string | undefined): void {
    const target = scope === serviceId ? activeSvc?.compiled.scope ?? serviceId : scope === GLOBAL_ID ? GLOBAL_ID : scopeOf(scope)
    const done = id === undefined ? store.resetAll(target) : store.reset(target, id)
    done.catch(err => engine.logger.warn({ err, scope }, 'waygate: rate limit reset failed'))
  }

  async function announceReset (scope: string, id: string | undefined): Promise<void> {
    await backend.putRecord(RATE_LIMIT_NAMESPACE, `${RESET_PREFIX}${scope}`, id === undefined ? { scope } : { scope, id },
      { expiresAt: engine.now() + 60_000 })
  }

  /** The service policy's exempt keys: unqualified, since they name routes of this one service. */
  function serviceExempt (keys: string[]): string[] {
    return [...new Set(keys.map(k => {
      const parsed = parseRouteKey(k)
      if (parsed.service === null) return parsed.key
      if (serviceName !== null && parsed.service !== serviceName) {
        throw new WG_ERR_INPUT_INVALID(`exemptRoutes: ${k} is a route of service ${parsed.service}, not of ${serviceName}`)
      }
      return parsed.key.slice(parsed.service.length + 1)
    }))]
  }

  const limiter: RateLimiter = {
    store,
    serviceId,
    get version () { return version },

    async start () {
      try {
        for (const record of await backend.listRecords(RATE_LIMIT_NAMESPACE)) {
          if (!record.id.startsWith(RESET_PREFIX)) applyRecord(record.id, record.value)
        }
      } catch (err) {
        engine.logger.warn({ err }, 'waygate: could not load runtime rate limit policies; using the declared ones')
      }
      unsubscribe = engine.subscribe(event => {
        if (event.type === 'record_changed' && event.namespace === RATE_LIMIT_NAMESPACE) {
          applyRecord(event.id, event.record === null ? null : event.record.value)
        } else if (event.type === 'route_changed' && event.state.status === 'active' &&
            event.previous !== null && event.previous.status !== 'active') {
          // enabling a route starts its clients afresh
          store.resetAll(scopeOf(event.key)).catch(err => engine.logger.warn({ err }, 'waygate: rate limit reset failed'))
        }
      })
    },

    async close () {
      unsubscribe?.()
      listeners.clear()
      await store.close()
    },

    declare (key, policy) {
      const compiled = compileRateLimitPolicy({ ...policy, key }, `rate limit of ${key}`)
      declared.set(key, compiled)
      changed()
      return compiled
    },

    policyFor (key) {
      return runtime.get(key) ?? declared.get(key) ?? null
    },

    activeGlobal () {
      return active
    },

    activeService () {
      return activeSvc
    },

    list () {
      const out = new Map<string, ListedPolicy>()
      for (const [key, c] of declared) out.set(key, { key, policy: c.policy, source: 'config' })
      for (const [key, c] of runtime) out.set(key, { key, policy: c.policy, source: 'runtime' })
      return [...out.values()].sort((a, b) => a.key.localeCompare(b.key))
    },

    getGlobal () {
      return global === null ? null : structuredClone(global)
    },

    getService () {
      return service === null ? null : structuredClone(service)
    },

    async setPolicy (policy, who) {
      const parsed = parseRouteKey(policy.key)
      const key = parsed.key
      const checked = checkRateLimitPolicy({ ...policy, key }, `rate limit of ${key}`)
      await backend.putRecord(RATE_LIMIT_NAMESPACE, key, checked)
      await audit(key, 'rate_limit_set', limitsText(checked), who, parsed.service)
      return checked
    },

    async deletePolicy (key, who) {
      const parsed = parseRouteKey(key)
      const canonical = parsed.key
      const existed = await backend.deleteRecord(RATE_LIMIT_NAMESPACE, canonical)
      if (existed) await audit(canonical, 'rate_limit_delete', '', who, parsed.service)
      return existed
    },

    async reset (key, id, who) {
      const parsed = parseRouteKey(key)
      const canonical = parsed.key
      const scope = scopeOf(canonical)
      if (id === undefined) {
        await store.resetAll(scope)
      } else {
        // a tiered policy counts a client per tier (`<tier>:<client>`): reset it under every tier
        const tiers = (runtime.get(canonical) ?? declared.get(canonical))?.tiers ?? new Map()
        await store.reset(scope, id)
        for (const tier of tiers.keys()) await store.reset(scope, `${tier}:${id}`)
      }
      await announceReset(scope, id)
      await audit(canonical, 'rate_limit_reset', id === undefined ? 'all clients' : `client ${id}`, who, parsed.service)
    },

    async setGlobal (policy, settings = {}, who) {
      const checked = checkRateLimitPolicy({ ...policy, key: GLOBAL_ID }, 'global rate limit')
      const exemptRoutes = [...new Set((settings.exemptRoutes ?? global?.exemptRoutes ?? []).map(k => parseRouteKey(k).key))]
      const next: GlobalRateLimit = { policy: checked, enabled: settings.enabled ?? global?.enabled ?? true, exemptRoutes }
      await backend.putRecord(RATE_LIMIT_NAMESPACE, GLOBAL_ID, next)
      await audit(GLOBAL_ID, 'rate_limit_set', `global: ${limitsText(checked)}`, who)
      return structuredClone(next)
    },

    async setGlobalEnabled (enabled, who) {
      if (global === null) throw new WG_ERR_INPUT_INVALID('no global rate limit is set')
      const next = { ...global, enabled }
      await backend.putRecord(RATE_LIMIT_NAMESPACE, GLOBAL_ID, next)
      await audit(GLOBAL_ID, 'rate_limit_set', enabled ? 'global: enabled' : 'global: disabled', who)
      return structuredClone(next)
    },

    async deleteGlobal (who) {
      const existed = await backend.deleteRecord(RATE_LIMIT_NAMESPACE, GLOBAL_ID)
      if (existed) await audit(GLOBAL_ID, 'rate_limit_delete', 'global', who)
      return existed
    },

    async resetGlobal (id, who) {
      if (id === undefined) await store.resetAll(GLOBAL_ID)
      else await store.reset(GLOBAL_ID, id)
      await announceReset(GLOBAL_ID, id)
      await audit(GLOBAL_ID, 'rate_limit_reset', id === undefined ? 'global: all clients' : `global: client ${id}`, who)
    },

    async setService (policy, settings = {}, who) {
      const checked = checkRateLimitPolicy({ ...policy, key: serviceId }, 'service rate limit')
      const exemptRoutes = serviceExempt(settings.exemptRoutes ?? service?.exemptRoutes ?? [])
      const next: ServiceRateLimit = { policy: checked, enabled: settings.enabled ?? service?.enabled ?? true, exemptRoutes }
      await backend.putRecord(RATE_LIMIT_NAMESPACE, serviceId, next)
      await audit(GLOBAL_ID, 'rate_limit_set', `service: ${limitsText(checked)}`, who, serviceName)
      return structuredClone(next)
    },

    async setServiceEnabled (enabled, who) {
      if (service === null) throw new WG_ERR_INPUT_INVALID('no service rate limit is set')
      const next = { ...service, enabled }
      await backend.putRecord(RATE_LIMIT_NAMESPACE, serviceId, next)
      await audit(GLOBAL_ID, 'rate_limit_set', enabled ? 'service: enabled' : 'service: disabled', who, serviceName)
      return structuredClone(next)
    },

    async deleteService (who) {
      const existed = await backend.deleteRecord(RATE_LIMIT_NAMESPACE, serviceId)
      if (existed) await audit(GLOBAL_ID, 'rate_limit_delete', 'service', who, serviceName)
      return existed
    },

    async resetService (id, who) {
      const scope = activeSvc?.compiled.scope ?? serviceId
      if (id === undefined) await store.resetAll(scope)
      else await store.reset(scope, id)
      await announceReset(scope, id)
      await audit(GLOBAL_ID, 'rate_limit_reset', id === undefined ? 'service: all clients' : `service: client ${id}`, who, serviceName)
    },

    recordBlocked (entry) {
      blockedLog[blockedNext] = entry
      blockedNext = (blockedNext + 1) % blockedSize
      if (blockedCount < blockedSize) blockedCount++
    },

    blocked (limit = 100) {
      const out: BlockedRequest[] = []
      for (let i = 1; i <= Math.min(limit, blockedCount); i++) {
        const { at, ...entry } = blockedLog[(blockedNext - i + blockedSize) % blockedSize]!
        out.push({ timestamp: new Date(at).toISOString(), ...entry })
      }
      return out
    },

    onChange (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    }
  }
  return limiter
}
