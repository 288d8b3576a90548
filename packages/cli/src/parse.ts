import { METHODS } from 'node:http'
import { UsageError } from './errors.js'

const KNOWN_METHODS = new Set(METHODS)

/** What a service name looks like on a Waygate Server (`payments-service`); an HTTP method is never one. */
const SERVICE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/

/** True when `name` can name a service: lower case letters, digits, `.`, `_`, `-`, and no HTTP method. */
export function isServiceName (name: string): boolean {
  return SERVICE_NAME.test(name) && !KNOWN_METHODS.has(name.toUpperCase())
}

/** Why `name` is no service name, for an error message. */
export function serviceNameProblem (name: string): string {
  return SERVICE_NAME.test(name)
    ? `"${name}" is an HTTP method, not a service name`
    : `"${name}" is not a service name: lower case letters, digits, ".", "_" or "-", up to 100, starting with a letter or digit`
}

/**
 * A route argument: `METHOD:/path` (one method) or `/path` (every method on the pattern),
 * optionally naming a service (`payments-service:GET:/x`, `payments-service:/x`).
 */
export interface RouteArg {
  /** The key sent to the server: `[service:]METHOD:/path` or `[service:]/path`. */
  key: string
  method: string | null
  path: string
  /** The service the key names, or null. */
  service: string | null
}

function unqualified (input: string, value: string, what: string): { key: string, method: string | null, path: string } {
  if (value.startsWith('/')) return { key: value, method: null, path: value }
  const match = /^([A-Za-z-]+)(?::|\s+)(\/.*)$/.exec(value)
  if (match === null) {
    throw new UsageError(`${what} "${input}": expected METHOD:/path or /path`, 'e.g. GET:/payments, or /payments for every method')
  }
  const method = match[1]!.toUpperCase()
  if (!KNOWN_METHODS.has(method)) {
    throw new UsageError(`${what} "${input}": unknown HTTP method "${match[1]}"`, 'use GET, POST, PUT, PATCH, DELETE, …, or a bare /path for every method')
  }
  return { key: `${method}:${match[2]}`, method, path: match[2]! }
}

/**
 * Reads a route argument. `GET:/x`, `get:/x`, `GET /x` and `/x` are accepted, each optionally
 * after `service:` (`payments-service:GET:/x`). As on the server, a word before the path that is an
 * HTTP method is the method, and any other lower-case word a service; a method Node does not know
 * (`FETCH:/x`) or a value without a leading `/` is a usage error.
 */
export function parseRouteArg (input: string, what = 'route'): RouteArg {
  const value = input.trim()
  const colon = value.indexOf(':')
  const head = colon > 0 ? value.slice(0, colon) : ''
  if (head !== '' && !head.includes('/') && !KNOWN_METHODS.has(head.toUpperCase()) && SERVICE_NAME.test(head)) {
    const rest = unqualified(input, value.slice(colon + 1), what)
    return { ...rest, key: `${head}:${rest.key}`, service: head }
  }
  return { ...unqualified(input, value, what), service: null }
}

/** `route` addressed inside `service`: `GET:/x` becomes `service:GET:/x`. A route naming a service is kept. */
export function qualify (route: RouteArg, service: string): RouteArg {
  if (route.service !== null) return route
  return { ...route, key: `${service}:${route.key}`, service }
}

/**
 * The parts of a key the server answered with (`payments-service:GET:/x`, `GET:/x`, `/x`, `*`), or
 * null for what is no route key. Never throws: server text is read, not judged.
 */
export function splitKey (key: string): { service: string | null, method: string | null, path: string } | null {
  const slash = key.indexOf('/')
  if (slash < 0) return null
  const head = key.slice(0, slash)
  const path = key.slice(slash)
  if (head === '') return { service: null, method: null, path }
  const parts = head.split(':')
  if (parts.pop() !== '') return null
  if (parts.length === 1) {
    const word = parts[0]!
    return KNOWN_METHODS.has(word.toUpperCase()) ? { service: null, method: word.toUpperCase(), path } : { service: word, method: null, path }
  }
  if (parts.length === 2) return { service: parts[0]!, method: parts[1]!.toUpperCase(), path }
  return null
}

/** The key without its service (`payments-service:GET:/x` → `GET:/x`), for a table that has a service column. */
export function withoutService (key: string, service: string | null): string {
  return service !== null && key.startsWith(service + ':') ? key.slice(service.length + 1) : key
}

/**
 * True when the route (as the server answered it) is one `arg` names: same pattern, same method
 * unless `arg` is a bare path, same service when `arg` names one.
 */
export function routeMatches (arg: RouteArg, route: { service: string | null, method: string | null, path: string }): boolean {
  return route.path === arg.path && (arg.method === null || route.method === arg.method) &&
    (arg.service === null || route.service === arg.service)
}

const DURATION = /^(\d{1,9})\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?|w|weeks?)$/i
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Milliseconds of a duration such as `30m`, `2h`, `1d`, or null when it is not one. */
export function durationMs (value: string): number | null {
  const match = DURATION.exec(value.trim())
  if (match === null) return null
  const unit = match[2]!.toLowerCase()
  const key = unit === 'm' || unit.startsWith('mi') ? 'm' : unit[0]!
  return Number(match[1]) * UNIT_MS[key]!
}

/**
 * Checks a time flag: an ISO 8601 date-time or a duration from now (`2h`). It is sent as given:
 * the server resolves durations against its own clock.
 */
export function parseWhen (value: string, flag: string): string {
  const trimmed = value.trim()
  if (durationMs(trimmed) !== null) return trimmed
  if (ISO.test(trimmed) && !Number.isNaN(Date.parse(trimmed))) return trimmed
  throw new UsageError(`${flag} "${value}": expected an ISO 8601 date-time or a duration like 30m, 2h, 1d`, `e.g. ${flag} 2h, or ${flag} 2030-01-01T02:00:00Z`)
}

/**
 * The end of `--for DURATION` or `--end WHEN` (one of them), as the API takes it: the server
 * resolves a duration against its own clock.
 */
export function endOption (options: { for?: string, end?: string }): string | undefined {
  if (options.for !== undefined && options.end !== undefined) throw new UsageError('give --for or --end, not both')
  if (options.for !== undefined) {
    if (durationMs(options.for) === null) throw new UsageError(`--for "${options.for}": expected a duration like 15m, 2h, 1d`, 'or --end with a date-time')
    return options.for.trim()
  }
  return options.end === undefined ? undefined : parseWhen(options.end, '--end')
}

/**
 * A point in the past for filters: a duration means that long ago (`--since 1h`), an ISO date is
 * taken as is. Answers an ISO string.
 */
export function parseSince (value: string, flag: string, now: number): string {
  const ms = durationMs(value)
  if (ms !== null) return new Date(now - ms).toISOString()
  const trimmed = value.trim()
  if (ISO.test(trimmed) && !Number.isNaN(Date.parse(trimmed))) return new Date(trimmed).toISOString()
  throw new UsageError(`${flag} "${value}": expected an ISO 8601 date-time or a duration like 30m, 2h, 1d (meaning that long ago)`)
}

/** A whole number within bounds, for --page, --per-page, --limit. */
export function parseCount (value: string, flag: string, max = 1_000_000): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${flag} "${value}": expected a whole number from 1 to ${max}`)
  }
  return n
}

/** An environment name as the API accepts it. */
export function parseEnvName (value: string): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(value)) {
    throw new UsageError(`environment "${value}": expected letters, digits, dots, dashes or underscores`)
  }
  return value
}

/** Route statuses `waygate check --fail-on` understands, plus `global` for global maintenance. */
export const CHECKABLE = ['active', 'maintenance', 'disabled', 'env_gated', 'deprecated', 'global'] as const

/** Reads `disabled,maintenance` (case-insensitive; `env-gated` is `env_gated`). */
export function parseStatusList (value: string, flag: string): string[] {
  const wanted = value.split(',').map(s => s.trim().toLowerCase().replace(/-/g, '_')).filter(Boolean)
  if (wanted.length === 0) throw new UsageError(`${flag}: expected a comma-separated list of statuses`)
  for (const status of wanted) {
    if (!(CHECKABLE as readonly string[]).includes(status)) {
      throw new UsageError(`${flag}: unknown status "${status}"`, `expected some of: ${CHECKABLE.join(', ')}`)
    }
  }
  return [...new Set(wanted)]
}

/** Commander's collector for repeatable flags (`--exempt /a --exempt /b`). */
export function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}
