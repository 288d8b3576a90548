/** Back-off settings of the remote backend's reconnects. */
export interface BackoffOptions {
  /** First step, ms. Default 1000. */
  initialMs?: number
  /** Largest step, ms. Default 30000. */
  maxMs?: number
  /** A connection that stayed up this long (ms) starts the steps afresh. Default 60000. */
  resetAfterMs?: number
}

/** Exponential back-off with jitter: each delay is 50–100 % of its step, so a fleet spreads out. */
export interface Backoff {
  /** The delay before the next attempt; advances the step. */
  next(): number
  /** The step the next delay is drawn from (before jitter). */
  readonly step: number
  /** Notes that a connection opened at `at`. */
  opened(at: number): void
  /** Notes that the connection opened by `opened()` ended at `at`: a long one resets the steps. */
  ended(at: number): void
  reset(): void
}

/** Creates a back-off; `random` returns [0, 1). */
export function createBackoff (options: Required<BackoffOptions>, random: () => number): Backoff {
  let attempt = 0
  let openedAt: number | null = null
  const stepOf = (n: number): number => Math.min(options.maxMs, options.initialMs * 2 ** Math.min(n, 30))
  return {
    get step () { return stepOf(attempt) },
    next () {
      const step = stepOf(attempt)
      attempt++
      return Math.floor(step * (0.5 + 0.5 * random()))
    },
    opened (at) { openedAt = at },
    ended (at) {
      if (openedAt !== null && at - openedAt >= options.resetAfterMs) attempt = 0
      openedAt = null
    },
    reset () {
      attempt = 0
      openedAt = null
    }
  }
}

/** Longest `Retry-After` honoured, ms: a server asking for more is still retried after an hour. */
export const MAX_RETRY_AFTER_MS = 3_600_000

/**
 * Reads a `Retry-After` header (RFC 9110: delay seconds or an HTTP-date) as a delay in ms from
 * `now`; null when absent or unreadable.
 */
export function parseRetryAfter (value: string | string[] | undefined, now: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value
  if (raw === undefined) return null
  const text = raw.trim()
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS)
  const at = Date.parse(text)
  if (Number.isNaN(at)) return null
  return Math.min(Math.max(at - now, 0), MAX_RETRY_AFTER_MS)
}
