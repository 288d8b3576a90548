import type { FastifyRequest } from 'fastify'
import { ipKey, keyPart, propertyPath, readPath, type CallerTracker, type RouteCallers, type WaygateLogger } from '@waygate/core'

/**
 * Who a caller of a deprecated route is: its address (`request.ip`, so it follows Fastify's
 * `trustProxy`; IPv6 grouped by /64, as rate limiting does), its API key header, its user id, or a
 * synchronous function of the request. A missing key falls back to the address.
 */
export type CallerKey = 'ip' | 'api_key' | 'user' | ((request: FastifyRequest) => string | number | undefined | null)

/** How a deprecated route's callers are told apart: `deprecated: { callers: { by: 'api_key' } }`. */
export interface CallersConfig {
  /** Default `ip` (or the plugin-wide `callers.by`). */
  by?: CallerKey
  /** With `by: 'user'`: the request property holding the user id. Default `user.id`. */
  userProperty?: string
  /** With `by: 'api_key'`: the header carrying it. Default `x-api-key`. */
  apiKeyHeader?: string
}

/** The plugin's `callers` option: the default key of every route, and the sketches' size and publishing. */
export interface CallersOptions extends CallersConfig {
  /** Slots of each route's hourly sketch. Default 200 (counts within 0.5 % of the requests counted). */
  slots?: number
  /** How often the sketches go to the backend, for the admin and other instances to read, in ms. Default 15000. */
  publishIntervalMs?: number
}

/** What one route's hook uses to count a caller; the counter exists from its first deprecated request. */
export interface CallerSlot {
  readonly key: string
  readonly extract: (request: FastifyRequest) => string | undefined
  counter: RouteCallers | null
}

const CALLER_KEYS = new Set(['ip', 'api_key', 'user'])

/** Lists what is wrong with a callers config (empty when nothing). */
export function callersConfigProblems (config: unknown, where: string): string[] {
  if (config === undefined) return []
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return [`${where}: expected an object`]
  const c = config as Record<string, unknown>
  const problems: string[] = []
  for (const name of Object.keys(c)) {
    if (!['by', 'userProperty', 'apiKeyHeader', 'slots', 'publishIntervalMs'].includes(name)) problems.push(`${where}.${name}: unknown option`)
  }
  if (c.by !== undefined && typeof c.by !== 'function' && !CALLER_KEYS.has(c.by as string)) problems.push(`${where}.by: expected ip, api_key, user or a function`)
  for (const name of ['userProperty', 'apiKeyHeader']) {
    const v = c[name]
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 200)) problems.push(`${where}.${name}: expected a non-empty string`)
  }
  if (c.slots !== undefined && (!Number.isInteger(c.slots) || (c.slots as number) < 1 || (c.slots as number) > 10_000)) problems.push(`${where}.slots: expected an integer from 1 to 10000`)
  if (c.publishIntervalMs !== undefined && (!Number.isInteger(c.publishIntervalMs) || (c.publishIntervalMs as number) < 0)) problems.push(`${where}.publishIntervalMs: expected a non-negative integer`)
  return problems
}

/** Builds a route's caller extractor once, when the route is added. */
export function callerSlot (key: string, config: CallersConfig | undefined, defaults: CallersConfig, log: WaygateLogger): CallerSlot {
  const by = config?.by ?? defaults.by ?? 'ip'
  let extract: CallerSlot['extract']
  if (by === 'ip') {
    extract = request => ipKey(request.ip)
  } else if (by === 'api_key') {
    const header = (config?.apiKeyHeader ?? defaults.apiKeyHeader ?? 'x-api-key').toLowerCase()
    extract = request => keyPart(request.headers[header]) ?? ipKey(request.ip)
  } else if (by === 'user') {
    const path = propertyPath(config?.userProperty ?? defaults.userProperty ?? 'user.id')
    extract = request => keyPart(readPath(request, path)) ?? ipKey(request.ip)
  } else {
    let warned = false
    extract = request => {
      try {
        return keyPart(by(request)) ?? ipKey(request.ip)
      } catch (err) {
        if (!warned) log.warn({ err, key }, 'waygate: the callers key function of a deprecated route threw; counting by address')
        warned = true
        return ipKey(request.ip)
      }
    }
  }
  return { key, extract, counter: null }
}

/** Counts one request of a deprecated route: one sketch update, nothing else kept. */
export function countCaller (tracker: CallerTracker | null, slot: CallerSlot, request: FastifyRequest): void {
  if (tracker === null) return
  const id = slot.extract(request)
  if (id === undefined) return
  let counter = slot.counter
  if (counter === null) {
    counter = tracker.route(slot.key)
    slot.counter = counter
  }
  counter.add(id)
}
