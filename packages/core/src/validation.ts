import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { WG_ERR_INPUT_INVALID } from './errors.js'
import { encodeSuccessor } from './header-value.js'
import { MAX_TIME_MS, MIN_TIME_MS, parseTime } from './time.js'

/** A point in time: a Date, epoch milliseconds or an ISO 8601 string. */
export type TimeInput = Date | string | number

/** Longest reason accepted, in characters. */
export const MAX_REASON_LENGTH = 2000

export const Reason = Type.String({ maxLength: MAX_REASON_LENGTH, description: 'Why, shown to callers and in the audit log' })
export const EnvName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' })
const TimeValue = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Number(), Type.Date()])

/** How a route is declared in code: the initial state it gets when no state is stored. */
export const RouteDeclaration = Type.Object({
  maintenance: Type.Optional(Type.Object({
    reason: Type.Optional(Reason),
    start: Type.Optional(TimeValue),
    end: Type.Optional(TimeValue)
  }, { additionalProperties: false })),
  disabled: Type.Optional(Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false })),
  envOnly: Type.Optional(Type.Array(EnvName, { minItems: 1, maxItems: 50 })),
  deprecated: Type.Optional(Type.Object({
    sunset: Type.Optional(TimeValue),
    successor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    reason: Type.Optional(Reason),
    /** `gone`: answer 410 Gone once the sunset has passed (needs `sunset`). */
    afterSunset: Type.Optional(Type.Literal('gone'))
  }, { additionalProperties: false })),
  forceActive: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
export type RouteDeclaration = Static<typeof RouteDeclaration>

/** Lists every way `value` fails `schema`, as `path: message` strings. */
export function schemaErrors (schema: TSchema, value: unknown): string[] {
  const out: string[] = []
  for (const error of Value.Errors(schema, value)) {
    out.push(`${error.path === '' ? '(root)' : error.path}: ${error.message}`)
    if (out.length >= 20) break
  }
  return out
}

/**
 * Converts a time input to epoch ms, or throws a coded error naming the field. A string must be an
 * ISO 8601 date or date-time, or an HTTP-date, naming a day that exists (see `parseTime`); every
 * input must fall within years 0000 to 9999 in UTC, so that its ISO string reads back as the same
 * instant.
 */
export function toEpochMs (value: TimeInput, field: string): number {
  let ms: number
  if (value instanceof Date) ms = value.getTime()
  else if (typeof value === 'number') ms = Math.trunc(value)
  else if (typeof value === 'string') ms = parseTime(value.trim())
  else ms = Number.NaN
  if (!(ms >= MIN_TIME_MS && ms <= MAX_TIME_MS)) {
    throw new WG_ERR_INPUT_INVALID(`${field} is not a valid date (an ISO 8601 date-time that exists, within years 0000 to 9999 UTC): ${String(value).slice(0, 64)}`)
  }
  return ms
}

/** Converts a time input to an ISO 8601 UTC string. */
export function toIso (value: TimeInput, field: string): string {
  return new Date(toEpochMs(value, field)).toISOString()
}

/** Checks a reason and returns it (empty when absent). */
export function checkReason (reason: unknown, field = 'reason'): string {
  if (reason === undefined || reason === null) return ''
  if (typeof reason !== 'string') throw new WG_ERR_INPUT_INVALID(`${field} must be a string`)
  if (reason.length > MAX_REASON_LENGTH) throw new WG_ERR_INPUT_INVALID(`${field} is longer than ${MAX_REASON_LENGTH} characters`)
  return reason
}

/** Longest successor accepted, in characters, once percent-encoded. */
export const MAX_SUCCESSOR_LENGTH = 2048

/**
 * Checks a successor URL or path and returns the form the `Link` header carries: non-ASCII
 * characters percent-encoded as UTF-8. Control characters (NUL, CR, LF, TAB…), spaces, DEL,
 * angle brackets and unpaired surrogates are refused.
 */
export function checkSuccessor (successor: unknown, field = 'successor'): string {
  if (typeof successor !== 'string' || successor.length === 0) throw new WG_ERR_INPUT_INVALID(`${field} must be a non-empty string`)
  const encoded = encodeSuccessor(successor)
  if (encoded === null) {
    throw new WG_ERR_INPUT_INVALID(`${field} must be a URL or path without spaces, control characters or angle brackets`)
  }
  if (encoded.length > MAX_SUCCESSOR_LENGTH) throw new WG_ERR_INPUT_INVALID(`${field} is longer than ${MAX_SUCCESSOR_LENGTH} characters once percent-encoded`)
  return encoded
}

/** Checks a list of environment names. */
export function checkEnvs (envs: unknown): string[] {
  const errors = schemaErrors(Type.Array(EnvName, { minItems: 1, maxItems: 50 }), envs)
  if (errors.length > 0) throw new WG_ERR_INPUT_INVALID(`envs: ${errors.join('; ')}`)
  return [...new Set(envs as string[])]
}
