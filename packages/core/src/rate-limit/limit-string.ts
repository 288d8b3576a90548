import { WG_ERR_RATE_LIMIT_INVALID } from './errors.js'

/** A parsed limit: `limit` units of cost per window of `windowMs` milliseconds. */
export interface ParsedLimit {
  readonly limit: number
  readonly windowMs: number
}

/** The limit string `unlimited`: no counter at all. */
export interface UnlimitedLimit {
  readonly unlimited: true
}

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** Largest count a limit may allow per window. */
export const MAX_LIMIT = 1_000_000_000
/** Longest window a limit may have: one year. */
export const MAX_WINDOW_MS = 365 * DAY

const UNITS: ReadonlyMap<string, number> = new Map([
  ['s', SECOND], ['sec', SECOND], ['second', SECOND], ['seconds', SECOND],
  ['m', MINUTE], ['min', MINUTE], ['minute', MINUTE], ['minutes', MINUTE],
  ['h', HOUR], ['hour', HOUR], ['hours', HOUR],
  ['d', DAY], ['day', DAY], ['days', DAY]
])

// `N/unit`, `N/M unit`, `N/Munit`, `N per unit`, `N per M unit`; case and spacing are free
const GRAMMAR = /^(\d+)\s*(?:\/|\s+per\s+)\s*(?:(\d+)\s*)?([a-z]+)$/

const EXPECTED = 'expected "N/unit" or "N per [M] unit" with a unit of second, minute, hour or day (or s, m, h, d), or "unlimited"'

/**
 * Returns why `text` is not a valid limit string, or null when it is one. The message quotes the
 * string, so a caller can prefix it with where the string came from.
 */
export function limitStringError (text: unknown): string | null {
  const parsed = read(text)
  return typeof parsed === 'string' ? parsed : null
}

/**
 * Parses a limit string: `100/minute`, `10/s`, `1000 per day`, `5 per 10 minutes`, `30/5m`, or
 * `unlimited`. Units are second, minute, hour and day, singular or plural, or `s`/`sec`, `m`/`min`,
 * `h`, `d`; case and surrounding spaces do not matter. `N` is 1 to 1e9, the window at most a year.
 * Throws `WG_ERR_RATE_LIMIT_INVALID` quoting the string otherwise.
 */
export function parseLimit (text: unknown): ParsedLimit | UnlimitedLimit {
  const parsed = read(text)
  if (typeof parsed === 'string') throw new WG_ERR_RATE_LIMIT_INVALID(parsed)
  return parsed
}

// The parsed limit, or why the text is not one
function read (text: unknown): ParsedLimit | UnlimitedLimit | string {
  if (typeof text !== 'string') return `${describe(text)} is not a limit string; ${EXPECTED}`
  const s = text.trim().toLowerCase()
  if (s === 'unlimited') return { unlimited: true }
  if (s.length > 64) return `"${text.slice(0, 64)}…" is too long for a limit string; ${EXPECTED}`
  const m = GRAMMAR.exec(s)
  if (m === null) return `"${text}" is not a limit; ${EXPECTED}`
  const unit = UNITS.get(m[3] as string)
  if (unit === undefined) return `"${text}" has an unknown unit "${m[3] as string}"; ${EXPECTED}`
  const limit = Number(m[1])
  const multiple = m[2] === undefined ? 1 : Number(m[2])
  if (limit < 1 || limit > MAX_LIMIT) return `"${text}" must allow between 1 and ${MAX_LIMIT} requests per window`
  if (multiple < 1) return `"${text}" has an empty window`
  const windowMs = multiple * unit
  if (windowMs > MAX_WINDOW_MS) return `"${text}" has a window longer than 365 days`
  return { limit, windowMs }
}

/** Whether a parsed limit is `unlimited`. */
export function isUnlimited (parsed: ParsedLimit | UnlimitedLimit): parsed is UnlimitedLimit {
  return (parsed as UnlimitedLimit).unlimited === true
}

/**
 * Formats a limit back into its canonical string: `10/minute`, `5 per 10 minutes`, or the
 * largest unit that divides the window (`5 per 90 seconds`).
 */
export function formatLimit (parsed: ParsedLimit | UnlimitedLimit): string {
  if (isUnlimited(parsed)) return 'unlimited'
  const { limit, windowMs } = parsed
  for (const [name, ms] of [['day', DAY], ['hour', HOUR], ['minute', MINUTE], ['second', SECOND]] as const) {
    if (windowMs % ms !== 0) continue
    const n = windowMs / ms
    return n === 1 ? `${limit}/${name}` : `${limit} per ${n} ${name}s`
  }
  return `${limit} per ${windowMs} ms`
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value).slice(0, 40)}`
}
