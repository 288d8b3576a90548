/** Counts failed logins per key in a sliding window and locks a key out after too many. */
export interface LoginThrottle {
  /** Seconds until `key` may try again, or 0 when it may try now. */
  blockedFor(key: string, now: number): number
  fail(key: string, now: number): void
  reset(key: string): void
}

/** Options of the failed-login throttle. */
export interface ThrottleOptions {
  /** Failures allowed within the window before a lockout. Default 5. */
  maxAttempts?: number
  /** Window and lockout length, in seconds. Default 300. */
  windowSeconds?: number
}

const MAX_KEYS = 10_000

export function createLoginThrottle (options: ThrottleOptions = {}): LoginThrottle {
  const max = options.maxAttempts ?? 5
  const windowMs = (options.windowSeconds ?? 300) * 1000
  const failures = new Map<string, number[]>()

  function recent (key: string, now: number): number[] {
    const list = (failures.get(key) ?? []).filter(t => now - t < windowMs)
    if (list.length === 0) failures.delete(key)
    else failures.set(key, list)
    return list
  }

  return {
    blockedFor (key, now) {
      const list = recent(key, now)
      if (list.length < max) return 0
      return Math.max(1, Math.ceil((list[list.length - max]! + windowMs - now) / 1000))
    },
    fail (key, now) {
      const list = recent(key, now)
      list.push(now)
      failures.set(key, list)
      if (failures.size > MAX_KEYS) {
        // bounded memory under a spray of usernames: forget the oldest keys
        const drop = failures.size - MAX_KEYS
        let i = 0
        for (const k of failures.keys()) {
          if (i++ >= drop) break
          failures.delete(k)
        }
      }
    },
    reset (key) {
      failures.delete(key)
    }
  }
}
