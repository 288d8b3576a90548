import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import {
  ipKey,
  keyPart,
  OUTCOME_INDEX,
  readPath,
  type ActiveTierLimit,
  type CompiledRateLimitPolicy,
  type RateLimiter,
  type RateLimitPolicy,
  type RateLimitResult,
  type RateLimitRule,
  type WaygateLogger
} from '@waygate/core'
import type { RouteMeter } from './metrics.js'

const RATE_LIMITED = OUTCOME_INDEX.rate_limited

/** What identifies a client for a route's rate limit: a built-in kind or a function of the request. */
export type RateLimitKey = 'ip' | 'user' | 'api_key' | 'global' | ((request: FastifyRequest) => string | undefined | null | Promise<string | undefined | null>)

/** What a custom 429 response factory is told. */
export interface RateLimitedContext {
  /** The route key, `*` when the global policy refused, `@service` when the service's did. */
  key: string
  path: string
  /** The limit that refused, e.g. `10/minute`. */
  limit: string
  /** Units that limit allows per window (limit + burst). */
  quota: number
  retryAfterSeconds: number
  /** When the limit's full allowance is back (ISO 8601). */
  resetAt: string
  tier: string | null
}

/** Builds the answer to a rate-limited request, like a handler; the status is preset to 429. */
export type RateLimitedResponseFactory = (request: FastifyRequest, reply: FastifyReply, context: RateLimitedContext) => unknown

/** A route's `config.waygate.rateLimit`: a limit string, a list of them, or the full form. */
export type RouteRateLimitConfig = string | string[] | {
  /** `'100/minute'`, or several enforced together: `['10/second', '1000/day']`. */
  limit?: string | string[]
  algorithm?: RateLimitPolicy['algorithm']
  /** Default `ip` (Fastify's `request.ip`, so it follows `trustProxy`; IPv6 grouped by /64). */
  key?: RateLimitKey
  burst?: number
  onMissingKey?: RateLimitPolicy['onMissingKey']
  exemptIps?: string[]
  /** Limits by plan: `{ free: '10/minute', pro: '100/minute', enterprise: 'unlimited' }`. */
  tiers?: Record<string, string | string[]>
  /** Picks the tier of a request. Default: the request property `plan` (see `tierProperty`). */
  tierResolver?: (request: FastifyRequest) => string | undefined | null
  tierProperty?: string
  /** With `key: 'user'`: the request property holding the user id. Default `user.id`. */
  userProperty?: string
  /** With `key: 'api_key'`: the header carrying it. Default `x-api-key`. */
  apiKeyHeader?: string
  /** Units a request costs. Default 1. */
  cost?: number | ((request: FastifyRequest) => number)
  /** Routes with the same group share one counter. */
  group?: string
  /** Refuse requests when the store cannot answer. Default false (fail-open). */
  failClosed?: boolean
  /** This route's 429 answer. */
  response?: RateLimitedResponseFactory
}

/** Which rate limit headers to send. */
export type RateLimitHeaders = 'draft' | 'legacy' | 'both' | false

/** What code adds to a policy: the parts that cannot be stored. */
export interface RateLimitHooks {
  keyFn?: (request: FastifyRequest) => string | undefined | null | Promise<string | undefined | null>
  tierResolver?: (request: FastifyRequest) => string | undefined | null
  cost?: number | ((request: FastifyRequest) => number)
  response?: RateLimitedResponseFactory
}

/** Splits a route's config into a storable policy and the code-only hooks. */
export function splitRateLimitConfig (key: string, config: RouteRateLimitConfig): { policy: RateLimitPolicy, hooks: RateLimitHooks } {
  if (typeof config === 'string' || Array.isArray(config)) {
    return { policy: { key, limits: Array.isArray(config) ? config : [config] }, hooks: {} }
  }
  if (config === null || typeof config !== 'object') throw new TypeError('rateLimit must be a limit string, a list of them, or an object')
  const { limit, key: keyOption, tierResolver, cost, response, ...rest } = config
  if (tierResolver !== undefined && typeof tierResolver !== 'function') throw new TypeError('rateLimit.tierResolver must be a function')
  if (response !== undefined && typeof response !== 'function') throw new TypeError('rateLimit.response must be a function')
  if (cost !== undefined && typeof cost !== 'function' && (!Number.isInteger(cost) || cost < 0)) throw new TypeError('rateLimit.cost must be a non-negative integer or a function')
  const policy: RateLimitPolicy = { key, ...rest }
  if (limit !== undefined) policy.limits = Array.isArray(limit) ? limit : [limit]
  const hooks: RateLimitHooks = { tierResolver, cost, response }
  if (typeof keyOption === 'function') {
    policy.keyBy = 'custom'
    hooks.keyFn = keyOption
  } else if (keyOption !== undefined) {
    policy.keyBy = keyOption
  }
  return { policy, hooks }
}

/** What one check needs: the policy in force and the code hooks of the route. */
export interface ActiveLimit {
  compiled: CompiledRateLimitPolicy
  hooks: RateLimitHooks
  /** `*` for the global policy, the limiter's `serviceId` (`@service`) for the service's, else the route key. */
  key: string
  /** The policy's name in the `RateLimit` headers. */
  name: 'global' | 'service' | 'route'
  /** The last `RateLimit-Policy` value sent, reused while quota and window stay the same. */
  policyHeader?: string
  policyQuota?: number
  policyWindow?: number
}

const MISSING = Symbol('missing')

function isPromise<T> (value: unknown): value is Promise<T> {
  return value !== null && typeof value === 'object' && typeof (value as Promise<T>).then === 'function'
}

/** The client id of a request under a policy; null to skip (exempt), MISSING to refuse. */
function clientOf (request: FastifyRequest, limit: ActiveLimit): string | null | typeof MISSING | Promise<string | null | typeof MISSING> {
  const c = limit.compiled
  if (c.keyBy === 'ip') return ipKey(request.ip)
  if (c.keyBy === 'global') return '*'
  let raw: unknown
  if (c.keyBy === 'user') raw = readPath(request, c.userProperty)
  else if (c.keyBy === 'api_key') raw = request.headers[c.apiKeyHeader]
  else {
    const fn = limit.hooks.keyFn
    if (fn === undefined) {
      // a stored policy saying `custom` on a route without a key function: count by address
      return ipKey(request.ip)
    }
    raw = fn(request)
    if (isPromise(raw)) return (raw as Promise<unknown>).then(v => missingOr(request, c, v))
  }
  return missingOr(request, c, raw)
}

function missingOr (request: FastifyRequest, c: CompiledRateLimitPolicy, raw: unknown): string | null | typeof MISSING {
  const id = keyPart(raw)
  if (id !== undefined) return id
  if (c.onMissingKey === 'exempt') return null
  if (c.onMissingKey === 'fallback_ip') return ipKey(request.ip)
  return MISSING
}

/** The tier of a request under a tiered policy (unknown or missing → the first tier). */
function tierOf (request: FastifyRequest, limit: ActiveLimit): string {
  const c = limit.compiled
  const value = limit.hooks.tierResolver !== undefined ? limit.hooks.tierResolver(request) : readPath(request, c.tierProperty)
  return typeof value === 'string' && c.tiers.has(value) ? value : c.tiers.keys().next().value as string
}

function costOf (request: FastifyRequest, limit: ActiveLimit): number {
  const cost = limit.hooks.cost
  if (cost === undefined) return 1
  if (typeof cost === 'number') return cost
  const value = cost(request)
  return Number.isInteger(value) && value >= 0 ? value : 1
}

/** Everything the hook needs around the limiter. */
export interface RateLimitRuntime {
  limiter: RateLimiter
  headers: RateLimitHeaders
  now: () => number
  log: WaygateLogger
  /** Plugin-wide 429 factory. */
  response: RateLimitedResponseFactory | undefined
  /** Told of degraded answers and failed checks (the metrics, when on). */
  onDegraded?: () => void
  onStoreError?: () => void
}

function requestPath (request: FastifyRequest): string {
  const url = request.url
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function setHeaders (reply: FastifyReply, runtime: RateLimitRuntime, result: RateLimitResult, limit: ActiveLimit, now: number): void {
  if (runtime.headers === false || result.index < 0) return
  const reset = Math.max(0, Math.ceil((result.resetAt - now) / 1000))
  if (runtime.headers === 'draft' || runtime.headers === 'both') {
    // draft-ietf-httpapi-ratelimit-headers: a named policy with its quota and window, and what is left
    if (limit.policyQuota !== result.limit || limit.policyWindow !== result.windowMs) {
      limit.policyQuota = result.limit
      limit.policyWindow = result.windowMs
      limit.policyHeader = `"${limit.name}";q=${result.limit};w=${Math.ceil(result.windowMs / 1000)}`
    }
    reply.header('ratelimit-policy', limit.policyHeader!)
    reply.header('ratelimit', `"${limit.name}";r=${result.remaining};t=${reset}`)
  }
  if (runtime.headers === 'legacy' || runtime.headers === 'both') {
    reply.header('x-ratelimit-limit', String(result.limit))
    reply.header('x-ratelimit-remaining', String(result.remaining))
    reply.header('x-ratelimit-reset', String(Math.ceil(result.resetAt / 1000)))
  }
}

// the ISO text of the last reset time: many refusals of one window share it
let lastResetAt = Number.NaN
let lastResetIso = ''
function isoOf (ms: number): string {
  if (ms !== lastResetAt) {
    lastResetAt = ms
    lastResetIso = new Date(ms).toISOString()
  }
  return lastResetIso
}

/** Sends the built-in 429 body, built as text: a 429 is the hot path of an attack, and only the path needs JSON escaping. */
function send429 (reply: FastifyReply, missingKey: boolean, limitText: string, retryAfterSeconds: number, resetAt: number, path: string): void {
  if (reply.sent) return
  reply.code(429).type('application/json; charset=utf-8').send(
    `{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"${missingKey ? 'A rate limit key is required for this endpoint' : 'Too many requests'}",` +
    `"limit":"${limitText}","retryAfterSeconds":${retryAfterSeconds},"resetAt":"${isoOf(resetAt)}","path":${JSON.stringify(path)}}}`)
}

function refuse (request: FastifyRequest, reply: FastifyReply, runtime: RateLimitRuntime, limit: ActiveLimit,
  result: RateLimitResult | null, rule: RateLimitRule, tier: string | null, client: string, meter: RouteMeter | null): void {
  meter?.record(RATE_LIMITED)
  const now = runtime.now()
  const windowMs = rule.limits[0]?.windowMs ?? 1000
  const retryAfterMs = result === null ? windowMs : result.retryAfterMs
  const compiledLimit = rule.limits[result === null ? 0 : Math.max(0, result.index)]
  const limitText = compiledLimit === undefined ? 'unlimited' : compiledLimit.text
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
  const resetAt = result === null ? now + windowMs : result.resetAt
  const path = requestPath(request)
  runtime.limiter.recordBlocked({
    at: now,
    key: limit.key,
    path,
    client: client.length > 64 ? `${client.slice(0, 61)}...` : client,
    limit: limitText,
    tier,
    retryAfterSeconds
  })
  if (result !== null) setHeaders(reply, runtime, result, limit, now)
  reply.code(429).header('retry-after', String(retryAfterSeconds))
  const factory = limit.hooks.response ?? runtime.response
  if (factory === undefined) {
    send429(reply, result === null, limitText, retryAfterSeconds, resetAt, path)
    return
  }
  const builtIn = (): void => send429(reply, result === null, limitText, retryAfterSeconds, resetAt, path)
  const context: RateLimitedContext = {
    key: limit.key,
    path,
    limit: limitText,
    quota: result?.limit ?? compiledLimit?.capacity ?? 0,
    retryAfterSeconds,
    resetAt: isoOf(resetAt),
    tier
  }
  const fallback = (err: unknown): void => {
    runtime.log.error({ err, key: limit.key }, 'waygate: custom 429 factory failed; sending the built-in response')
    builtIn()
  }
  const finish = (value: unknown): void => {
    if (reply.sent || value === reply) return
    if (value === undefined) fallback(new Error('the 429 factory returned nothing and sent nothing'))
    else reply.send(value)
  }
  try {
    const value = factory(request, reply, context)
    if (isPromise(value) && value !== (reply as unknown)) value.then(finish, fallback)
    else finish(value)
  } catch (err) {
    fallback(err)
  }
}

/** The policies a route checks, in order; computed when policies change, never per request. */
export type LimitChain = readonly ActiveLimit[]

/** The chain of a route no policy applies to. */
export const NO_LIMITS: LimitChain = Object.freeze([])

/** The policies above the routes' own, as the hook checks them. */
export interface UpperLimits {
  global: { limit: ActiveLimit, exempt: ReadonlySet<string> } | null
  service: { limit: ActiveLimit, exempt: ReadonlySet<string> } | null
}

function upper (active: ActiveTierLimit | null, key: string, name: ActiveLimit['name']): UpperLimits['global'] {
  return active === null ? null : { limit: { compiled: active.compiled, hooks: {}, key, name }, exempt: active.exempt }
}

/** The global and service policies in force now (each null while unset or disabled). */
export function upperLimits (limiter: RateLimiter): UpperLimits {
  return {
    global: upper(limiter.activeGlobal(), '*', 'global'),
    service: upper(limiter.activeService(), limiter.serviceId, 'service')
  }
}

/**
 * What a route checks, in order: the global policy, the service's, the route's own; a tier is
 * left out when it exempts the route's key or its pattern.
 */
export function limitChain (tiers: UpperLimits, key: string, path: string, route: ActiveLimit | null): LimitChain {
  const chain: ActiveLimit[] = []
  for (const tier of [tiers.global, tiers.service]) {
    if (tier !== null && !tier.exempt.has(key) && !tier.exempt.has(path)) chain.push(tier.limit)
  }
  if (route !== null) chain.push(route)
  return chain.length === 0 ? NO_LIMITS : chain
}

// what one check tells the chain: go on with the next policy, or stop (refused, or the rest is
// left to a pending promise); numbers, so the synchronous path allocates no continuation
const PASSED = 0
const STOPPED = 1

/**
 * Checks the policies of `chain` from `from` on, then calls `done`; answers 429 at the first that
 * refuses. Synchronous whenever the store and the key functions are: a continuation is made only
 * when a promise is pending. `meter` counts the request once: as `outcome` when it goes on, as
 * rate limited when refused.
 */
export function runLimits (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction,
  runtime: RateLimitRuntime, chain: LimitChain, from = 0, meter: RouteMeter | null = null, outcome = 0): void {
  for (let i = from; i < chain.length; i++) {
    if (checkAt(request, reply, runtime, chain, i, done, meter, outcome) !== PASSED) return
  }
  meter?.record(outcome)
  done()
}

function checkAt (request: FastifyRequest, reply: FastifyReply, runtime: RateLimitRuntime, chain: LimitChain, index: number,
  done: HookHandlerDoneFunction, meter: RouteMeter | null, outcome: number): number {
  const limit = chain[index]!
  if (limit.compiled.isExemptIp(request.ip)) return PASSED
  const client = clientOf(request, limit)
  if (isPromise(client)) {
    client.then(id => {
      if (afterClient(request, reply, runtime, chain, index, id, done, meter, outcome) === PASSED) runLimits(request, reply, done, runtime, chain, index + 1, meter, outcome)
    }, err => {
      runtime.log.error({ err, key: limit.key }, 'waygate: rate limit key function failed; not counting the request')
      runLimits(request, reply, done, runtime, chain, index + 1, meter, outcome)
    })
    return STOPPED
  }
  return afterClient(request, reply, runtime, chain, index, client, done, meter, outcome)
}

function afterClient (request: FastifyRequest, reply: FastifyReply, runtime: RateLimitRuntime, chain: LimitChain, index: number,
  client: string | null | typeof MISSING, done: HookHandlerDoneFunction, meter: RouteMeter | null, outcome: number): number {
  if (client === null) return PASSED
  const limit = chain[index]!
  const c = limit.compiled
  const tier = c.tiers.size === 0 ? null : tierOf(request, limit)
  const rule = tier === null ? c.rule : c.tiers.get(tier)!
  if (client === MISSING) {
    refuse(request, reply, runtime, limit, null, rule, tier, '(missing key)', meter)
    return STOPPED
  }
  const result = runtime.limiter.store.check(c.scope, tier === null ? client : `${tier}:${client}`, rule, costOf(request, limit))
  if (isPromise(result)) {
    result.then(r => {
      if (decide(request, reply, runtime, limit, r, rule, tier, client, meter) === PASSED) runLimits(request, reply, done, runtime, chain, index + 1, meter, outcome)
    }, err => {
      runtime.onStoreError?.()
      runtime.log.error({ err }, 'waygate: rate limit check failed; letting the request through')
      runLimits(request, reply, done, runtime, chain, index + 1, meter, outcome)
    })
    return STOPPED
  }
  return decide(request, reply, runtime, limit, result, rule, tier, client, meter)
}

function decide (request: FastifyRequest, reply: FastifyReply, runtime: RateLimitRuntime, limit: ActiveLimit,
  result: RateLimitResult, rule: RateLimitRule, tier: string | null, client: string, meter: RouteMeter | null): number {
  if (result.degraded) runtime.onDegraded?.()
  if (result.allowed) {
    setHeaders(reply, runtime, result, limit, runtime.now())
    return PASSED
  }
  refuse(request, reply, runtime, limit, result, rule, tier, client, meter)
  return STOPPED
}
