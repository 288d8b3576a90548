/** The first instant the model stores: 0000-01-01T00:00:00.000Z. */
export const MIN_TIME_MS = -62_167_219_200_000
/** The last instant the model stores: 9999-12-31T23:59:59.999Z (a later one has no 4-digit ISO year). */
export const MAX_TIME_MS = 253_402_300_799_999

// YYYY-MM-DD, optionally with a time (seconds and fraction optional) and a Z or ±HH[:]MM offset
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/
// an IMF-fixdate (RFC 9110 HTTP-date), as a Sunset header carries it
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

function daysInMonth (year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Epoch ms of a UTC calendar time, or NaN when a field is out of its range (nothing rolls over). */
function utcMs (year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): number {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return Number.NaN
  // 24:00 and leap seconds (:60) are valid ISO 8601 but name no epoch millisecond of their own
  if (hour > 23 || minute > 59 || second > 59) return Number.NaN
  const date = new Date(0)
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, ms)
  return date.getTime()
}

function inRange (ms: number): number {
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS ? ms : Number.NaN
}

/**
 * Reads an ISO 8601 date or date-time (`2030-06-01`, `2030-06-01T10:00:00+05:30`; without an
 * offset, local time as `Date.parse` reads it) or an HTTP-date, as epoch ms. NaN for anything
 * else, for dates that do not exist (2030-02-30, 24:00, leap seconds: `Date.parse` would roll
 * them over) and for instants outside years 0000 to 9999 in UTC, which an ISO string cannot
 * carry with a 4-digit year.
 */
export function parseTime (text: string): number {
  const iso = ISO.exec(text)
  if (iso !== null) {
    const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', offset] = iso
    const ms = Number(frac.slice(0, 3).padEnd(3, '0'))
    let t = utcMs(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s), ms)
    if (Number.isNaN(t)) return t
    if (offset !== undefined && offset !== 'Z' && offset !== 'z') {
      const oh = Number(offset.slice(1, 3))
      const om = offset.length > 3 ? Number(offset.slice(-2)) : 0
      if (oh > 23 || om > 59) return Number.NaN
      t -= (offset[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000
    } else if (offset === undefined && iso[4] !== undefined) {
      // a date-time without an offset is local time; the fields were checked above
      const local = new Date(0)
      local.setFullYear(Number(y), Number(mo) - 1, Number(d))
      local.setHours(Number(h), Number(mi), Number(s), ms)
      t = local.getTime()
    }
    return inRange(t)
  }
  const http = HTTP_DATE.exec(text)
  if (http !== null) {
    const [, , d, mon, y, h, mi, s] = http
    // the weekday is redundant: a wrong one is ignored, as Date.parse does, not a reason to refuse
    return inRange(utcMs(Number(y), MONTHS.indexOf(mon!) + 1, Number(d), Number(h), Number(mi), Number(s), 0))
  }
  return Number.NaN
}

/**
 * Reads a time stored in a route state, global maintenance or audit query: epoch ms, or NaN
 * when it is missing or unreadable. Stored data may predate a check, or be edited by hand.
 */
export function readTime (value: unknown): number {
  return typeof value === 'string' ? parseTime(value) : Number.NaN
}
