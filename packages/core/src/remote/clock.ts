/** The clock the remote backend runs its timers on; tests inject one they advance by hand. */
export interface RemoteClock {
  /** Epoch ms. */
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** The real clock; its timers do not keep the process alive. */
export const systemClock: RemoteClock = {
  now: () => Date.now(),
  setTimeout (fn, ms) {
    const timer = setTimeout(fn, ms)
    timer.unref()
    return timer
  },
  clearTimeout (handle) { clearTimeout(handle as NodeJS.Timeout) }
}
