import type { RemoteClock } from '@waygate/core'

/** A clock with timers that fire only when the test moves it: back-off and watchdog without sleeping. */
export interface TimerClock extends RemoteClock {
  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  tick(ms: number): void
  /** Delays (from now) of the pending timers, soonest first. */
  pending(): number[]
}

export function createTimerClock (start = Date.parse('2030-01-01T00:00:00.000Z')): TimerClock {
  let t = start
  let seq = 0
  const timers = new Map<number, { at: number, fn: () => void }>()
  return {
    now: () => t,
    setTimeout (fn, ms) {
      const id = ++seq
      timers.set(id, { at: t + Math.max(0, ms), fn })
      return id
    },
    clearTimeout (handle) { timers.delete(handle as number) },
    tick (ms) {
      const target = t + ms
      for (;;) {
        let next: [number, { at: number, fn: () => void }] | null = null
        for (const entry of timers) if (entry[1].at <= target && (next === null || entry[1].at < next[1].at)) next = entry
        if (next === null) break
        timers.delete(next[0])
        t = next[1].at
        next[1].fn()
      }
      t = target
    },
    pending () {
      return [...timers.values()].map(x => x.at - t).sort((a, b) => a - b)
    }
  }
}

/** Waits (real time) until `check` holds; fails after `ms`. */
export async function waitFor (check: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** Lets pending I/O callbacks run (a few real event loop turns). */
export async function settle (ms = 30): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
