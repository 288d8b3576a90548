/** A clock tests move by hand, so window and limit tests never sleep. */
export interface FakeClock {
  /** Current time, epoch ms: pass it as the engine's `now`. */
  now: () => number
  /** Moves the clock forward by `ms`. */
  advance: (ms: number) => void
  /** Sets the clock to an ISO date or epoch ms. */
  set: (to: string | number) => void
  /** Current time as an ISO string. */
  iso: () => string
}

export function createClock (start: string | number = '2030-01-01T00:00:00.000Z'): FakeClock {
  let t = typeof start === 'number' ? start : Date.parse(start)
  return {
    now: () => t,
    advance (ms) { t += ms },
    set (to) { t = typeof to === 'number' ? to : Date.parse(to) },
    iso: () => new Date(t).toISOString()
  }
}

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
