import { METHODS } from 'node:http'
import { UsageError } from './errors.js'

const KNOWN_METHODS = new Set(METHODS)

/** A route argument: `METHOD:/path` (one method) or `/path` (every method on the pattern). */
export interface RouteArg {
  key: string
  method: string | null
  path: string
}

/**
 * Reads a route argument. `GET:/x`, `get:/x`, `GET /x` and `/x` are accepted; a method Node does
 * not know (`FETCH:/x`) or a value without a leading `/` is a usage error.
 */
export function parseRouteArg (input: string, what = 'route'): RouteArg {
  const value = input.trim()
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
