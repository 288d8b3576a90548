import type { CompiledLimit } from '../rule.js'

/**
 * The in-memory state of one limit of one key. One shape for every algorithm, so the memory
 * store's code stays monomorphic: each algorithm documents what `a`, `b` and `c` hold.
 */
export class CounterState {
  a = 0
  b = 0
  c = 0
  /** moving_window only: timestamps, oldest first, live from `head` on. */
  log: number[] | null = null
  head = 0
}

/**
 * One algorithm, twice: in JavaScript for the memory store and in Lua for the Redis store. Both
 * follow the same steps with the same integer arithmetic, so they agree to the millisecond.
 *
 * A check brings every limit's state to `now` (`normalize`, which never changes what the state
 * means), asks each whether `cost` fits (`retryAfter`), and only when all say yes takes `cost`
 * from each (`consume`). `retryAfter` is only asked about a cost no larger than the capacity:
 * a larger one can never fit and the driver answers it as one window.
 */
export interface Algorithm {
  /** A fresh state, as a key never seen (or expired) has. */
  init(state: CounterState, limit: CompiledLimit, now: number): void
  normalize(state: CounterState, limit: CompiledLimit, now: number): void
  /** 0 when `cost` fits now; otherwise ms until it would (at least 1). */
  retryAfter(state: CounterState, limit: CompiledLimit, now: number, cost: number): number
  consume(state: CounterState, limit: CompiledLimit, now: number, cost: number): void
  remaining(state: CounterState, limit: CompiledLimit, now: number): number
  /** When the state is back to fresh if nothing else comes; `now` when it already is. */
  resetAt(state: CounterState, limit: CompiledLimit, now: number): number
  /**
   * The Lua half: defines `load(key, cap, win, lim)` returning a state table, and
   * `retry(st, cost)`, `consume(st, cost)`, `remaining(st)`, `reset_at(st)` and `save(st)`.
   */
  readonly lua: string
  /**
   * Optionally, the same steps for a check with a single limit, written straight through without
   * state tables (the common case, and the hot one): defines `check1(key, cap, win, lim, cost)`
   * returning the five answer numbers. It must answer and write exactly as the general path.
   */
  readonly luaSingle?: string
}

/**
 * floor(a / b) for non-negative safe integers, exact even where the floating-point quotient
 * rounds up to the next integer. The Lua prelude has the same `idiv`.
 */
export function idiv (a: number, b: number): number {
  let q = Math.floor(a / b)
  if (q * b > a) q--
  else if ((q + 1) * b <= a) q++
  return q
}

/** ceil(a / b) for non-negative safe integers. */
export function cdiv (a: number, b: number): number {
  return idiv(a + b - 1, b)
}
