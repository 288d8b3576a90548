import { randomUUID } from 'node:crypto'
import type { WaygateEngine } from '../engine.js'
import { WG_ERR_INPUT_INVALID } from '../errors.js'
import type { AuditAction, Platform } from '../models.js'
import { parseRouteKey } from '../route-key.js'
import { createMemoryRateLimitStore } from './memory-store.js'
import { checkRateLimitPolicy, compileRateLimitPolicy, type CompiledRateLimitPolicy, type RateLimitPolicy } from './policy.js'
import type { RateLimitStore } from './types.js'

/** Namespace of the backend records that hold runtime rate limit policies. */
export const RATE_LIMIT_NAMESPACE = 'waygate:rate-limits'
/** Record id of the global policy. */
const GLOBAL_ID = '*'
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

/** One refused request, as the blocked-requests log keeps it. */
export interface BlockedRequest {
  timestamp: string
  /** Route key, or `*` when the global policy refused. */
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
}

/**
 * Runtime rate limit policies: declared in code, overridden, reset and deleted at runtime through
 * backend records (so they survive restarts and reach every instance), plus the blocked log.
 */
export interface RateLimiter {
  readonly store: RateLimitStore
  /** Incremented whenever the effective policies change. */
  readonly version: number
  /** Loads runtime policies and follows changes. */
  start(): Promise<void>
  close(): Promise<void>
  /** Declares a route's policy from code; a runtime policy for the key wins over it. */
  declare(key: string, policy: RateLimitPolicy): CompiledRateLimitPolicy
  /** The policy in force for a route key, or null. */
  policyFor(key: string): CompiledRateLimitPolicy | null
  /** The global policy and its exemptions while it is enabled, else null. */
  activeGlobal(): { compiled: CompiledRateLimitPolicy, exempt: ReadonlySet<string> } | null
  list(): ListedPolicy[]
  getGlobal(): GlobalRateLimit | null
  setPolicy(policy: RateLimitPolicy, options?: PolicyChangeOptions): Promise<RateLimitPolicy>
  /** Removes a runtime policy (the code's declaration, if any, applies again). Resolves whether one existed. */
  deletePolicy(key: string, options?: PolicyChangeOptions): Promise<boolean>
  /** Forgets counters of a route (one client id, or all). */
  reset(key: string, id?: string, options?: PolicyChangeOptions): Promise<void>
  setGlobal(policy: Omit<RateLimitPolicy, 'key'>, settings?: { exemptRoutes?: string[], enabled?: boolean }, options?: PolicyChangeOptions): Promise<GlobalRateLimit>
  setGlobalEnabled(enabled: boolean, options?: PolicyChangeOptions): Promise<GlobalRateLimit>
  deleteGlobal(options?: PolicyChangeOptions): Promise<boolean>
  resetGlobal(id?: string, options?: PolicyChangeOptions): Promise<void>
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

/** Creates the rate limiter of an engine. */
export function createRateLimiter (engine: WaygateEngine, options: RateLimiterOptions = {}): RateLimiter {
  const store = options.store ?? createMemoryRateLimitStore({ now: engine.now })
  const blockedSize = options.blockedLogSize ?? 500
  if (!Number.isInteger(blockedSize) || blockedSize < 1) throw new WG_ERR_INPUT_INVALID('blockedLogSize must be a positive integer')
  const backend = engine.backend
  const declared = new Map<string, CompiledRateLimitPolicy>()
  const runtime = new Map<string, CompiledRateLimitPolicy>()
  let global: GlobalRateLimit | null = null
  let active: { compiled: CompiledRateLimitPolicy, exempt: ReadonlySet<string> } | null = null
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
    active = global !== null && global.enabled
      ? { compiled: compileRateLimitPolicy({ ...global.policy, key: GLOBAL_ID }, 'global rate limit'), exempt: new Set(global.exemptRoutes) }
      : null
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
      // another instance reset counters: forget what this one caches about them
      const reset = value as { scope?: string, id?: string } | null
      if (reset !== null) store.invalidateLocal(reset.scope, reset.id)
      return
    }
    try {
      if (id === GLOBAL_ID) {
        global = value === null ? null : isGlobalRecord(value) ? value : null
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

  async function audit (key: string, action: AuditAction, reason: string, who: PolicyChangeOptions | undefined): Promise<void> {
    await engine.recordChange({
      id: randomUUID(),
      timestamp: new Date(engine.now()).toISOString(),
      key,
      service: null,
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

  async function announceReset (scope: string, id: string | undefined): Promise<void> {
    await backend.putRecord(RATE_LIMIT_NAMESPACE, `${RESET_PREFIX}${scope}`, id === undefined ? { scope } : { scope, id },
      { expiresAt: engine.now() + 60_000 })
  }

  const limiter: RateLimiter = {
    store,
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

    list () {
      const out = new Map<string, ListedPolicy>()
      for (const [key, c] of declared) out.set(key, { key, policy: c.policy, source: 'config' })
      for (const [key, c] of runtime) out.set(key, { key, policy: c.policy, source: 'runtime' })
      return [...out.values()].sort((a, b) => a.key.localeCompare(b.key))
    },

    getGlobal () {
      return global === null ? null : structuredClone(global)
    },

    async setPolicy (policy, who) {
      const key = parseRouteKey(policy.key).key
      const checked = checkRateLimitPolicy({ ...policy, key }, `rate limit of ${key}`)
      await backend.putRecord(RATE_LIMIT_NAMESPACE, key, checked)
      await audit(key, 'rate_limit_set', (checked.limits ?? Object.keys(checked.tiers ?? {})).join(', '), who)
      return checked
    },

    async deletePolicy (key, who) {
      const canonical = parseRouteKey(key).key
      const existed = await backend.deleteRecord(RATE_LIMIT_NAMESPACE, canonical)
      if (existed) await audit(canonical, 'rate_limit_delete', '', who)
      return existed
    },

    async reset (key, id, who) {
      const canonical = parseRouteKey(key).key
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
      await audit(canonical, 'rate_limit_reset', id === undefined ? 'all clients' : `client ${id}`, who)
    },

    async setGlobal (policy, settings = {}, who) {
      const checked = checkRateLimitPolicy({ ...policy, key: GLOBAL_ID }, 'global rate limit')
      const exemptRoutes = [...new Set((settings.exemptRoutes ?? global?.exemptRoutes ?? []).map(k => parseRouteKey(k).key))]
      const next: GlobalRateLimit = { policy: checked, enabled: settings.enabled ?? global?.enabled ?? true, exemptRoutes }
      await backend.putRecord(RATE_LIMIT_NAMESPACE, GLOBAL_ID, next)
      await audit(GLOBAL_ID, 'rate_limit_set', `global: ${(checked.limits ?? Object.keys(checked.tiers ?? {})).join(', ')}`, who)
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
