import {
  DEFAULT_ALGORITHM,
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_DEFAULTS,
  type GlobalRateLimit,
  type ListedPolicy,
  type PolicyChangeOptions,
  type RateLimitAlgorithm,
  type RateLimiter,
  type RateLimitKeyBy,
  type RateLimitMissingKey,
  type RateLimitPolicy
} from '@waygate/core'
import { WG_ERR_NOT_FOUND, WG_ERR_REQUEST_INVALID } from '../errors.js'
import { readForm, type FieldSpec, type FormValues } from './actions.js'
import type { DashboardFleet, FleetActor } from './fleet.js'

// ---- labels ----

export const ALGORITHM_LABELS: Record<RateLimitAlgorithm, string> = {
  sliding_window: 'Sliding window',
  fixed_window: 'Fixed window',
  moving_window: 'Moving window',
  token_bucket: 'Token bucket'
}

export const KEY_BY_LABELS: Record<RateLimitKeyBy, string> = {
  ip: 'Client address',
  user: 'User',
  api_key: 'API key',
  global: 'Everyone together',
  custom: 'Key function (code)'
}

export const MISSING_KEY_LABELS: Record<RateLimitMissingKey, string> = {
  exempt: 'let through uncounted',
  fallback_ip: 'counted by address',
  block: 'refused'
}

export const label = <T extends string>(labels: Record<T, string>, value: string): string => labels[value as T] ?? value

// ---- the forms ----

/** One input of a rate limit form; like the route actions' fields, with choices. */
export interface RateLimitField {
  name: string
  label: string
  kind: 'text' | 'textarea' | 'checkbox' | 'select'
  maxLength: number
  hint?: string
  placeholder?: string
  options?: ReadonlyArray<{ value: string, label: string }>
  /** Folded under "More settings" unless it has a value. */
  advanced?: boolean
  numeric?: boolean
}

const LIMITS_HINT = 'N/unit or N per [M] unit, with second, minute, hour or day (10/second, 1000 per day, 5 per 10 minutes), ' +
  'or unlimited; several separated by commas, all enforced. Leave empty when you give tiers.'

function policyFields (keyBy: string): RateLimitField[] {
  return [
    { name: 'limits', label: 'Limits', kind: 'text', maxLength: 600, placeholder: '100/minute, 1000/day', hint: LIMITS_HINT },
    {
      name: 'algorithm',
      label: 'Algorithm',
      kind: 'select',
      maxLength: 40,
      options: [
        { value: '', label: `Default (${ALGORITHM_LABELS[DEFAULT_ALGORITHM].toLowerCase()})` },
        ...RATE_LIMIT_ALGORITHMS.map(a => ({ value: a, label: ALGORITHM_LABELS[a] }))
      ]
    },
    {
      name: 'keyBy',
      label: 'Count requests by',
      kind: 'select',
      maxLength: 40,
      hint: 'One counter per client address (IPv6 by /64), per user, per API key, or one for everyone.',
      options: [
        { value: '', label: 'Default (client address)' },
        ...(['ip', 'user', 'api_key', 'global'] as const).map(k => ({ value: k, label: KEY_BY_LABELS[k] })),
        // a key function lives in code: offered only to keep a policy that already uses it
        ...(keyBy === 'custom' ? [{ value: 'custom', label: KEY_BY_LABELS.custom }] : [])
      ]
    },
    { name: 'burst', label: 'Burst', kind: 'text', maxLength: 12, numeric: true, placeholder: '0', hint: 'Extra requests allowed on top of every limit.' },
    {
      name: 'tiers',
      label: 'Tiers',
      kind: 'textarea',
      maxLength: 5000,
      advanced: true,
      placeholder: 'free: 10/minute\npro: 100/minute, 5000/day\nenterprise: unlimited',
      hint: 'Instead of limits: one plan per line, name: limits. An unknown plan gets the first line\'s.'
    },
    { name: 'tierProperty', label: 'Plan property', kind: 'text', maxLength: 200, advanced: true, placeholder: RATE_LIMIT_DEFAULTS.tierProperty, hint: 'The request property naming the plan, dotted for nested ones.' },
    { name: 'userProperty', label: 'User property', kind: 'text', maxLength: 200, advanced: true, placeholder: RATE_LIMIT_DEFAULTS.userProperty, hint: 'With "User": the request property holding the user id.' },
    { name: 'apiKeyHeader', label: 'API key header', kind: 'text', maxLength: 100, advanced: true, placeholder: RATE_LIMIT_DEFAULTS.apiKeyHeader, hint: 'With "API key": the header carrying it.' },
    {
      name: 'onMissingKey',
      label: 'Request without a key',
      kind: 'select',
      maxLength: 40,
      advanced: true,
      options: [
        { value: '', label: 'Default (by address for API keys, else let through)' },
        { value: 'exempt', label: 'Let it through, uncounted' },
        { value: 'fallback_ip', label: 'Count it by client address' },
        { value: 'block', label: 'Refuse it (429)' }
      ]
    },
    { name: 'exemptIps', label: 'Exempt addresses', kind: 'textarea', maxLength: 65_000, advanced: true, placeholder: '10.0.0.0/8\n2001:db8::/32', hint: 'Addresses and CIDRs never limited, separated by spaces, commas or lines.' },
    { name: 'group', label: 'Group', kind: 'text', maxLength: 200, advanced: true, hint: 'Routes with the same group share one counter.' },
    { name: 'failClosed', label: 'Refuse requests when the counter store cannot answer (fail closed)', kind: 'checkbox', maxLength: 5, advanced: true }
  ]
}

const globalFields = (): RateLimitField[] => [
  ...policyFields(''),
  { name: 'exemptRoutes', label: 'Exempt routes', kind: 'textarea', maxLength: 60_000, placeholder: '/health\nGET:/status', hint: 'One route key per line (METHOD:/pattern, or /pattern for every method); the global policy skips them.' },
  { name: 'enabled', label: 'Enforce it now', kind: 'checkbox', maxLength: 5 }
]

const clientField: RateLimitField = {
  name: 'client',
  label: 'Client (optional)',
  kind: 'text',
  maxLength: 300,
  placeholder: 'every client',
  hint: 'One client only: an address, user id or API key as the blocked-requests page lists it. Empty: every client.'
}

function split (value: string | undefined, separator: RegExp): string[] {
  return (value ?? '').split(separator).map(s => s.trim()).filter(Boolean)
}

const checked = (value: string | undefined): boolean => value !== undefined && value !== ''

/**
 * Turns a form into a policy without judging it: the limiter checks it exactly as it checks the
 * REST API's JSON, so the dashboard refuses what the API refuses, with the same message.
 */
export function policyFromForm (values: FormValues): Omit<RateLimitPolicy, 'key'> {
  const policy: Record<string, unknown> = {}
  // limits keep their inner spaces (`5 per 10 minutes`): commas, semicolons and lines separate them
  const limits = split(values.limits, /[,;\n]/)
  if (limits.length > 0) policy.limits = limits
  for (const name of ['algorithm', 'keyBy'] as const) if (checked(values[name])) policy[name] = values[name]
  if (checked(values.burst)) {
    if (!/^\d{1,12}$/.test(values.burst!)) throw new WG_ERR_REQUEST_INVALID(`burst: expected a whole number of requests, got "${values.burst!.slice(0, 20)}"`)
    policy.burst = Number(values.burst)
  }
  if (checked(values.onMissingKey)) policy.onMissingKey = values.onMissingKey
  const exemptIps = split(values.exemptIps, /[\s,]+/)
  if (exemptIps.length > 0) policy.exemptIps = exemptIps
  const tiers = split(values.tiers, /\n/)
  if (tiers.length > 0) {
    const seen = new Set<string>()
    policy.tiers = Object.fromEntries(tiers.map((line, i) => {
      const match = /^([^:=]+)[:=](.*)$/.exec(line)
      if (match === null) throw new WG_ERR_REQUEST_INVALID(`tiers: line ${i + 1}: expected "name: limits", got "${line.slice(0, 64)}"`)
      const name = match[1]!.trim()
      if (seen.has(name)) throw new WG_ERR_REQUEST_INVALID(`tiers: "${name.slice(0, 64)}" is given twice`)
      seen.add(name)
      const list = split(match[2], /[,;]/)
      return [name, list.length === 1 ? list[0]! : list]
    }))
  }
  for (const name of ['tierProperty', 'userProperty', 'apiKeyHeader', 'group'] as const) if (checked(values[name])) policy[name] = values[name]
  if (checked(values.failClosed)) policy.failClosed = true
  return policy as Omit<RateLimitPolicy, 'key'>
}

/** A policy as its form shows it: the inverse of {@link policyFromForm}. */
export function policyToForm (policy: RateLimitPolicy | null | undefined): FormValues {
  if (policy === null || policy === undefined) return {}
  const tiers = Object.entries(policy.tiers ?? {}).map(([name, limits]) => `${name}: ${Array.isArray(limits) ? limits.join(', ') : limits}`)
  return {
    limits: (policy.limits ?? []).join(', '),
    algorithm: policy.algorithm ?? '',
    keyBy: policy.keyBy ?? '',
    burst: policy.burst === undefined ? '' : String(policy.burst),
    tiers: tiers.join('\n'),
    tierProperty: policy.tierProperty ?? '',
    userProperty: policy.userProperty ?? '',
    apiKeyHeader: policy.apiKeyHeader ?? '',
    onMissingKey: policy.onMissingKey ?? '',
    exemptIps: (policy.exemptIps ?? []).join('\n'),
    group: policy.group ?? '',
    failClosed: policy.failClosed === true ? 'on' : ''
  }
}

// ---- the actions ----

/** What a rate limit action acts on: a route's policy (key) or the global policy (key null). */
export interface RateLimitTarget {
  key: string | null
  /** The route's policy in force (declared in code or set at runtime), or null. */
  listed: ListedPolicy | null
  global: GlobalRateLimit | null
}

type Who = PolicyChangeOptions

export interface RateLimitActionSpec {
  id: string
  scope: 'route' | 'global'
  label: string
  title: string
  submit: string
  tone: 'ok' | 'warn' | 'danger' | 'info' | 'neutral'
  description(target: RateLimitTarget): string
  fields(target: RateLimitTarget): RateLimitField[]
  offer(target: RateLimitTarget): boolean
  prefill(target: RateLimitTarget): FormValues
  /** Calls the limiter: the same operation the REST API calls. */
  run(limiter: RateLimiter, target: RateLimitTarget, values: FormValues, who: Who): Promise<unknown>
}

const optional = (value: string | undefined): string | undefined => value === undefined || value === '' ? undefined : value
const none = (): FormValues => ({})
const noGlobal = (): Error => new WG_ERR_NOT_FOUND('no global rate limit is set')

function routeKey (target: RateLimitTarget): string {
  if (target.key === null) throw new WG_ERR_REQUEST_INVALID('which route? (key is missing)')
  return target.key
}

function setPolicy (limiter: RateLimiter, target: RateLimitTarget, values: FormValues, who: Who) {
  return limiter.setPolicy({ ...policyFromForm(values), key: routeKey(target) }, who)
}

function setGlobal (limiter: RateLimiter, _target: RateLimitTarget, values: FormValues, who: Who) {
  return limiter.setGlobal(policyFromForm(values), { exemptRoutes: split(values.exemptRoutes, /[\s,]+/), enabled: checked(values.enabled) }, who)
}

export const RATE_LIMIT_ACTIONS: readonly RateLimitActionSpec[] = [
  {
    id: 'rl-add',
    scope: 'route',
    label: 'Add limit…',
    title: 'Add a rate limit',
    submit: 'Add limit',
    tone: 'info',
    description: () => 'Callers over the limit get 429 with Retry-After, on every instance, from now until the policy is deleted.',
    fields: () => policyFields(''),
    offer: target => target.listed === null,
    prefill: none,
    run: setPolicy
  },
  {
    id: 'rl-edit',
    scope: 'route',
    label: 'Edit…',
    title: 'Edit rate limit',
    submit: 'Save',
    tone: 'neutral',
    description: target => target.listed?.source === 'config'
      ? 'Saving sets a runtime policy: it overrides the limit declared in the route\'s code, on every instance, until you delete it.'
      : 'Saving replaces this route\'s runtime policy, on every instance, at once.',
    fields: target => policyFields(target.listed?.policy.keyBy ?? ''),
    offer: target => target.listed !== null,
    prefill: target => policyToForm(target.listed?.policy),
    run: setPolicy
  },
  {
    id: 'rl-reset',
    scope: 'route',
    label: 'Reset…',
    title: 'Reset rate limit counters',
    submit: 'Reset counters',
    tone: 'warn',
    description: target => 'Forgets what clients have used on this route, so they get their full allowance again' +
      (target.listed?.policy.group === undefined ? '.' : `; every route of the group "${target.listed.policy.group}" shares these counters.`),
    fields: () => [clientField],
    offer: target => target.listed !== null,
    prefill: none,
    run: async (limiter, target, values, who) => {
      const key = routeKey(target)
      if (limiter.policyFor(key) === null) throw new WG_ERR_REQUEST_INVALID(`${key} has no rate limit`)
      await limiter.reset(key, optional(values.client), who)
    }
  },
  {
    id: 'rl-delete',
    scope: 'route',
    label: 'Delete…',
    title: 'Delete the runtime rate limit',
    submit: 'Delete',
    tone: 'danger',
    description: () => 'The runtime policy goes, on every instance; a limit declared in the route\'s code, if any, applies again.',
    fields: () => [],
    offer: target => target.listed?.source === 'runtime',
    prefill: none,
    run: async (limiter, target, _values, who) => {
      const key = routeKey(target)
      if (!await limiter.deletePolicy(key, who)) throw new WG_ERR_NOT_FOUND(`${key} has no runtime rate limit to delete`)
    }
  },
  {
    id: 'rl-global-set',
    scope: 'global',
    label: 'Set…',
    title: 'Set the global rate limit',
    submit: 'Set global limit',
    tone: 'info',
    description: () => 'Every route except the exempt ones is checked against this policy first, then against its own.',
    fields: globalFields,
    offer: target => target.global === null,
    prefill: () => ({ enabled: 'on' }),
    run: setGlobal
  },
  {
    id: 'rl-global-edit',
    scope: 'global',
    label: 'Edit…',
    title: 'Edit the global rate limit',
    submit: 'Save',
    tone: 'neutral',
    description: () => 'Saving replaces the global policy and its exempt routes, on every instance, at once.',
    fields: globalFields,
    offer: target => target.global !== null,
    prefill: target => target.global === null
      ? {}
      : { ...policyToForm(target.global.policy), exemptRoutes: target.global.exemptRoutes.join('\n'), enabled: target.global.enabled ? 'on' : '' },
    run: setGlobal
  },
  {
    id: 'rl-global-enable',
    scope: 'global',
    label: 'Turn on…',
    title: 'Turn the global rate limit on',
    submit: 'Turn on',
    tone: 'ok',
    description: () => 'Every route except the exempt ones is checked against the global policy again.',
    fields: () => [],
    offer: target => target.global !== null && !target.global.enabled,
    prefill: none,
    run: async (limiter, _target, _values, who) => {
      if (limiter.getGlobal() === null) throw noGlobal()
      return limiter.setGlobalEnabled(true, who)
    }
  },
  {
    id: 'rl-global-disable',
    scope: 'global',
    label: 'Turn off…',
    title: 'Turn the global rate limit off',
    submit: 'Turn off',
    tone: 'warn',
    description: () => 'The global policy stays stored but is not enforced until it is turned on again. Routes keep their own limits.',
    fields: () => [],
    offer: target => target.global?.enabled === true,
    prefill: none,
    run: async (limiter, _target, _values, who) => {
      if (limiter.getGlobal() === null) throw noGlobal()
      return limiter.setGlobalEnabled(false, who)
    }
  },
  {
    id: 'rl-global-reset',
    scope: 'global',
    label: 'Reset…',
    title: 'Reset the global counters',
    submit: 'Reset counters',
    tone: 'warn',
    description: () => 'Forgets what clients have used under the global policy, so they get their full allowance again.',
    fields: () => [clientField],
    offer: target => target.global !== null,
    prefill: none,
    run: (limiter, _target, values, who) => limiter.resetGlobal(optional(values.client), who)
  },
  {
    id: 'rl-global-delete',
    scope: 'global',
    label: 'Delete…',
    title: 'Delete the global rate limit',
    submit: 'Delete',
    tone: 'danger',
    description: () => 'The global policy goes, on every instance. Routes keep their own limits.',
    fields: () => [],
    offer: target => target.global !== null,
    prefill: none,
    run: async (limiter, _target, _values, who) => {
      if (!await limiter.deleteGlobal(who)) throw noGlobal()
    }
  }
]

export function rateLimitAction (id: string): RateLimitActionSpec | undefined {
  return RATE_LIMIT_ACTIONS.find(a => a.id === id)
}

/** A field of a rate limit form with its current value. */
export interface RateLimitFieldView extends RateLimitField {
  id: string
  value: string
  checked: boolean
}

export function fieldViews (fields: readonly RateLimitField[], values: FormValues): RateLimitFieldView[] {
  return fields.map(f => ({ ...f, id: `field-${f.name}`, value: values[f.name] ?? '', checked: f.kind === 'checkbox' && checked(values[f.name]) }))
}

/** Reads a form body: trimmed strings of the fields the action knows, as the route actions read theirs. */
export function readRateLimitForm (body: unknown, fields: readonly RateLimitField[]): FormValues {
  return readForm(body, fields.map((f): FieldSpec => ({ name: f.name, label: f.label, kind: f.kind === 'checkbox' ? 'checkbox' : 'text', maxLength: f.maxLength })))
}

// ---- a Waygate Server's service policies ----

/** An action on the rate limit a service's routes share (target.key: the service, target.global: its policy). */
export interface ServiceRateLimitActionSpec extends Omit<RateLimitActionSpec, 'scope' | 'run'> {
  scope: 'service'
  /** Calls the server's fleet: the same operation as `POST|DELETE /api/services/:service/rate-limit`. */
  run(fleet: DashboardFleet, service: string, target: RateLimitTarget, values: FormValues, who: FleetActor): Promise<unknown>
}

const serviceFields = (): RateLimitField[] => [
  ...policyFields(''),
  { name: 'exemptRoutes', label: 'Exempt routes', kind: 'textarea', maxLength: 60_000, placeholder: '/health\nGET:/status', hint: 'Route keys of this service, one per line (METHOD:/pattern, or /pattern for every method); the service policy skips them.' },
  { name: 'enabled', label: 'Enforce it now', kind: 'checkbox', maxLength: 5 }
]

function setService (fleet: DashboardFleet, service: string, _target: RateLimitTarget, values: FormValues, who: FleetActor) {
  return fleet.setRateLimit(service, { policy: policyFromForm(values), exemptRoutes: split(values.exemptRoutes, /[\s,]+/), enabled: checked(values.enabled) }, who)
}

function toggleService (enabled: boolean) {
  return (fleet: DashboardFleet, service: string, target: RateLimitTarget, _values: FormValues, who: FleetActor) => {
    if (target.global === null) throw new WG_ERR_NOT_FOUND(`no rate limit is set for service ${service}`)
    const { key: _key, ...policy } = target.global.policy
    return fleet.setRateLimit(service, { policy, exemptRoutes: target.global.exemptRoutes, enabled }, who)
  }
}

export const SERVICE_RATE_LIMIT_ACTIONS: readonly ServiceRateLimitActionSpec[] = [
  {
    id: 'rl-service-set',
    scope: 'service',
    label: 'Set…',
    title: 'Set the service rate limit',
    submit: 'Set service limit',
    tone: 'info',
    description: () => 'Every route of this service except the exempt ones is checked against this policy, on every instance of the service; the other services are not affected.',
    fields: serviceFields,
    offer: target => target.global === null,
    prefill: () => ({ enabled: 'on' }),
    run: setService
  },
  {
    id: 'rl-service-edit',
    scope: 'service',
    label: 'Edit…',
    title: 'Edit the service rate limit',
    submit: 'Save',
    tone: 'neutral',
    description: () => 'Saving replaces the service policy and its exempt routes, on every instance of the service, at once.',
    fields: serviceFields,
    offer: target => target.global !== null,
    prefill: target => target.global === null
      ? {}
      : { ...policyToForm(target.global.policy), exemptRoutes: target.global.exemptRoutes.join('\n'), enabled: target.global.enabled ? 'on' : '' },
    run: setService
  },
  {
    id: 'rl-service-enable',
    scope: 'service',
    label: 'Turn on…',
    title: 'Turn the service rate limit on',
    submit: 'Turn on',
    tone: 'ok',
    description: () => 'The routes of this service are checked against its policy again.',
    fields: () => [],
    offer: target => target.global !== null && !target.global.enabled,
    prefill: none,
    run: toggleService(true)
  },
  {
    id: 'rl-service-disable',
    scope: 'service',
    label: 'Turn off…',
    title: 'Turn the service rate limit off',
    submit: 'Turn off',
    tone: 'warn',
    description: () => 'The service policy stays stored but is not enforced until turned on again. Routes keep their own limits.',
    fields: () => [],
    offer: target => target.global?.enabled === true,
    prefill: none,
    run: toggleService(false)
  },
  {
    id: 'rl-service-delete',
    scope: 'service',
    label: 'Delete…',
    title: 'Delete the service rate limit',
    submit: 'Delete',
    tone: 'danger',
    description: () => 'The service policy goes, on every instance of the service. Routes keep their own limits.',
    fields: () => [],
    offer: target => target.global !== null,
    prefill: none,
    run: async (fleet, service, _target, _values, who) => {
      if (!await fleet.deleteRateLimit(service, who)) throw new WG_ERR_NOT_FOUND(`no rate limit is set for service ${service}`)
    }
  }
]

export function serviceRateLimitAction (id: string): ServiceRateLimitActionSpec | undefined {
  return SERVICE_RATE_LIMIT_ACTIONS.find(a => a.id === id)
}
