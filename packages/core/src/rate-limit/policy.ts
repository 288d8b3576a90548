import { Type, type Static } from '@sinclair/typebox'
import { schemaErrors } from '../validation.js'
import { WG_ERR_RATE_LIMIT_INVALID } from './errors.js'
import { createIpMatcher, ipRuleError, type IpMatcher } from './ip.js'
import { propertyPath } from './keys.js'
import { MAX_LIMIT } from './limit-string.js'
import { createRateLimitRule, DEFAULT_ALGORITHM, RateLimitAlgorithm, rateLimitRuleErrors, type RateLimitRule } from './rule.js'

/** What identifies a client: its address, a user, an API key, nobody (one shared counter), or a function. */
export const RateLimitKeyBy = Type.Union([
  Type.Literal('ip'),
  Type.Literal('user'),
  Type.Literal('api_key'),
  Type.Literal('global'),
  Type.Literal('custom')
], { description: 'What one counter is kept for; default ip' })
export type RateLimitKeyBy = Static<typeof RateLimitKeyBy>

/** What happens to a request whose key is missing (no user, no API key header). */
export const RateLimitMissingKey = Type.Union([
  Type.Literal('exempt'),
  Type.Literal('fallback_ip'),
  Type.Literal('block')
], { description: 'A request without a key passes uncounted (exempt), is counted by address (fallback_ip) or is refused (block)' })
export type RateLimitMissingKey = Static<typeof RateLimitMissingKey>

const LimitString = Type.String({ minLength: 1, maxLength: 64, description: '`N/unit`, `N per [M] unit` (second, minute, hour, day) or `unlimited`' })
const LimitList = Type.Array(LimitString, { minItems: 1, maxItems: 8 })
const TierName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$' })
const PropertyPath = Type.String({
  pattern: '^[A-Za-z_$][A-Za-z0-9_$]*(\\.[A-Za-z_$][A-Za-z0-9_$]*)*$',
  maxLength: 200,
  description: 'A property of the request, dotted for nested ones (`user.id`)'
})

/**
 * A rate limit policy as declared on a route, set through the API or stored: plain JSON, so it
 * can be persisted and sent to other instances. Defaults are applied by
 * {@link compileRateLimitPolicy}.
 */
export const RateLimitPolicy = Type.Object({
  key: Type.String({ minLength: 1, maxLength: 1024, description: 'The route key (METHOD:/pattern or /pattern) or the name of the policy' }),
  limits: Type.Optional(LimitList),
  algorithm: Type.Optional(RateLimitAlgorithm),
  keyBy: Type.Optional(RateLimitKeyBy),
  burst: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LIMIT, description: 'Extra requests on top of every limit; default 0' })),
  onMissingKey: Type.Optional(RateLimitMissingKey),
  exemptIps: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 1000, description: 'Addresses and CIDRs (IPv4, IPv6) never limited' })),
  tiers: Type.Optional(Type.Record(TierName, Type.Union([LimitString, LimitList]), {
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 50,
    description: 'Limits by plan: `{ free: "10/minute", pro: "100/minute", enterprise: "unlimited" }`; an unknown plan gets the first'
  })),
  tierProperty: Type.Optional(PropertyPath),
  userProperty: Type.Optional(PropertyPath),
  apiKeyHeader: Type.Optional(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]{1,100}$', description: 'Header carrying the API key; default x-api-key' })),
  group: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Routes with the same group share one counter' })),
  failClosed: Type.Optional(Type.Boolean({ description: 'Refuse requests when the store cannot answer; default false (fail-open)' }))
}, { additionalProperties: false })
export type RateLimitPolicy = Static<typeof RateLimitPolicy>

/** Defaults of the optional fields of a policy. */
export const RATE_LIMIT_DEFAULTS = Object.freeze({
  algorithm: DEFAULT_ALGORITHM,
  keyBy: 'ip' as RateLimitKeyBy,
  burst: 0,
  userProperty: 'user.id',
  tierProperty: 'plan',
  apiKeyHeader: 'x-api-key',
  failClosed: false
})

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor'])

/**
 * Lists every way `value` fails to be a valid policy, as `path: message` strings: the schema,
 * then every limit string (of `limits` and of each tier), every exempt IP, and the rules the
 * schema cannot say (limits or tiers, not both; no two limits with one window). Empty when valid.
 */
export function rateLimitPolicyErrors (value: unknown): string[] {
  const errors = schemaErrors(RateLimitPolicy, value)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return errors
  const policy = value as Record<string, unknown>
  const failed = (field: string) => errors.some(e => e.startsWith(`/${field}`))
  const burst = typeof policy.burst === 'number' && !failed('burst') ? policy.burst : 0
  const algorithm = failed('algorithm') ? undefined : policy.algorithm as RateLimitAlgorithm | undefined

  if (policy.limits === undefined && policy.tiers === undefined) errors.push('/limits: give limits or tiers')
  if (policy.limits !== undefined && policy.tiers !== undefined) errors.push('/tiers: give limits or tiers, not both')
  if (Array.isArray(policy.limits) && policy.limits.every(l => typeof l === 'string')) {
    errors.push(...rateLimitRuleErrors({ limits: policy.limits as string[], algorithm, burst }, '/limits').filter(e => !e.startsWith('/burst')))
  }
  if (policy.tiers !== null && typeof policy.tiers === 'object' && !Array.isArray(policy.tiers)) {
    for (const [name, limits] of Object.entries(policy.tiers)) {
      if (typeof limits === 'string' || (Array.isArray(limits) && limits.every(l => typeof l === 'string'))) {
        errors.push(...rateLimitRuleErrors({ limits: limits as string | string[], algorithm, burst }, `/tiers/${name}`).filter(e => !e.startsWith('/burst')))
      }
    }
  }
  if (Array.isArray(policy.exemptIps)) {
    policy.exemptIps.forEach((ip, i) => {
      if (typeof ip !== 'string') return
      const error = ipRuleError(ip)
      if (error !== null) errors.push(`/exemptIps/${i}: ${error}`)
    })
  }
  for (const field of ['userProperty', 'tierProperty']) {
    const path = policy[field]
    if (typeof path === 'string' && path.split('.').some(s => FORBIDDEN_SEGMENTS.has(s))) errors.push(`/${field}: may not use __proto__, prototype or constructor`)
  }
  return [...new Set(errors)]
}

/**
 * Checks a policy and returns it typed. Throws `WG_ERR_RATE_LIMIT_INVALID` listing every failing
 * field; `label` (a route key, "route config of GET:/x") starts the message.
 */
export function checkRateLimitPolicy (value: unknown, label?: string): RateLimitPolicy {
  const errors = rateLimitPolicyErrors(value)
  if (errors.length > 0) throw new WG_ERR_RATE_LIMIT_INVALID(`${label === undefined ? '' : `${label}: `}${errors.join('; ')}`)
  return value as RateLimitPolicy
}

/** A checked policy with its defaults applied and its limits compiled: built once, used per request. */
export interface CompiledRateLimitPolicy {
  /** The policy as given. */
  readonly policy: RateLimitPolicy
  readonly key: string
  /** Where its counters live: `group:<group>` for a group, else the key. */
  readonly scope: string
  readonly algorithm: RateLimitAlgorithm
  readonly keyBy: RateLimitKeyBy
  readonly burst: number
  /** Default: `fallback_ip` for api_key, `exempt` otherwise. */
  readonly onMissingKey: RateLimitMissingKey
  readonly userProperty: readonly string[]
  readonly tierProperty: readonly string[]
  /** Lowercase. */
  readonly apiKeyHeader: string
  readonly failClosed: boolean
  /** The rule without tiers; with tiers, the first tier's. */
  readonly rule: RateLimitRule
  /** Tier names in declaration order with their rules; empty without tiers. */
  readonly tiers: ReadonlyMap<string, RateLimitRule>
  /** Whether an address is in `exemptIps`. */
  readonly isExemptIp: IpMatcher
  /** The rule of a tier: the named tier, or the first one for an unknown or missing name. */
  ruleFor(tier: unknown): RateLimitRule
}

/**
 * Checks and compiles a policy. Throws `WG_ERR_RATE_LIMIT_INVALID` listing every failing field,
 * after `label` when given.
 */
export function compileRateLimitPolicy (value: unknown, label?: string): CompiledRateLimitPolicy {
  const policy = checkRateLimitPolicy(value, label)
  const algorithm = policy.algorithm ?? RATE_LIMIT_DEFAULTS.algorithm
  const burst = policy.burst ?? RATE_LIMIT_DEFAULTS.burst
  const failClosed = policy.failClosed ?? RATE_LIMIT_DEFAULTS.failClosed
  const keyBy = policy.keyBy ?? RATE_LIMIT_DEFAULTS.keyBy
  const tiers = new Map<string, RateLimitRule>()
  for (const [name, limits] of Object.entries(policy.tiers ?? {})) {
    tiers.set(name, createRateLimitRule({ limits, algorithm, burst, failClosed }))
  }
  const rule = policy.limits !== undefined
    ? createRateLimitRule({ limits: policy.limits, algorithm, burst, failClosed })
    : tiers.values().next().value as RateLimitRule
  const compiled: CompiledRateLimitPolicy = {
    policy,
    key: policy.key,
    scope: policy.group === undefined ? policy.key : `group:${policy.group}`,
    algorithm,
    keyBy,
    burst,
    onMissingKey: policy.onMissingKey ?? (keyBy === 'api_key' ? 'fallback_ip' : 'exempt'),
    userProperty: propertyPath(policy.userProperty ?? RATE_LIMIT_DEFAULTS.userProperty),
    tierProperty: propertyPath(policy.tierProperty ?? RATE_LIMIT_DEFAULTS.tierProperty),
    apiKeyHeader: (policy.apiKeyHeader ?? RATE_LIMIT_DEFAULTS.apiKeyHeader).toLowerCase(),
    failClosed,
    rule,
    tiers,
    isExemptIp: createIpMatcher(policy.exemptIps ?? []),
    ruleFor (tier: unknown): RateLimitRule {
      if (tiers.size === 0) return rule
      return (typeof tier === 'string' ? tiers.get(tier) : undefined) ?? rule
    }
  }
  return Object.freeze(compiled)
}

/** The tier a value names among `tiers`: itself when it is one, else the first tier (undefined without tiers). */
export function resolveTier (tiers: ReadonlyMap<string, unknown> | readonly string[], value: unknown): string | undefined {
  const names = Array.isArray(tiers) ? tiers as readonly string[] : [...(tiers as ReadonlyMap<string, unknown>).keys()]
  if (typeof value === 'string' && names.includes(value)) return value
  return names[0]
}
