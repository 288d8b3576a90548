import { WG_ERR_REQUEST_INVALID } from './errors.js'

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/

/**
 * Turns a `:key` URL parameter into a route key. Fastify has already percent-decoded it; a value
 * without `/` cannot be a key, so it is read as base64url (which never contains `/`).
 */
export function decodeKeyParam (value: string): string {
  if (value.includes('/')) return value
  if (BASE64URL.test(value)) {
    const decoded = Buffer.from(value, 'base64url').toString('utf8')
    if (decoded.includes('/') && !decoded.includes('\uFFFD')) return decoded
  }
  throw new WG_ERR_REQUEST_INVALID(`"${value.slice(0, 100)}" is not a route key: send METHOD:/pattern percent-encoded, or base64url-encoded`)
}

const DURATION = /^(\d{1,9})\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?|w|weeks?)$/i
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Reads an ISO 8601 date-time or a duration from now (`30m`, `2h`, `1d`) as epoch ms. */
export function resolveWhen (value: string, field: string, now: number): number {
  const match = DURATION.exec(value.trim())
  if (match !== null) {
    const unit = match[2]!.toLowerCase()
    const key = unit.startsWith('mi') || unit === 'm' ? 'm' : unit[0]!
    return now + Number(match[1]) * UNIT_MS[key]!
  }
  // a bare date or an ISO string; anything Date.parse would guess at (like "tomorrow") is refused
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    throw new WG_ERR_REQUEST_INVALID(`${field}: expected an ISO 8601 date-time or a duration like 30m, 2h, 1d; got "${value.slice(0, 64)}"`)
  }
  const ms = Date.parse(value.trim())
  if (Number.isNaN(ms)) throw new WG_ERR_REQUEST_INVALID(`${field}: "${value.slice(0, 64)}" is not a valid date`)
  return ms
}
