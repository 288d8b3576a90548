import { createHash } from 'node:crypto'
import type { RateLimitAlgorithm } from '../rule.js'
import { fixedWindow } from './fixed-window.js'
import { movingWindow } from './moving-window.js'
import { slidingWindow } from './sliding-window.js'
import { tokenBucket } from './token-bucket.js'
import type { Algorithm } from './types.js'

export { CounterState, idiv, cdiv } from './types.js'
export type { Algorithm } from './types.js'

/** Every algorithm's two halves, by name. */
export const ALGORITHMS: Readonly<Record<RateLimitAlgorithm, Algorithm>> = {
  fixed_window: fixedWindow,
  sliding_window: slidingWindow,
  moving_window: movingWindow,
  token_bucket: tokenBucket
}

/**
 * Extra ms a Redis key lives past the moment its state is back to fresh. Expiry only collects
 * state that no longer matters, so the margin changes no answer; it covers instances whose
 * clocks run a little behind Redis'.
 */
export const TTL_MARGIN_MS = 1000

const PRELUDE = `
local now = tonumber(ARGV[1])
local TTL_MARGIN = ${TTL_MARGIN_MS}
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function num(x) return string.format('%.0f', x) end
`

// The same steps as the memory store's check: see memory-store.ts
const DRIVER = `
local cost = tonumber(ARGV[2])
local states = {}
local worst, worst_retry = 0, 0
for i = 1, #KEYS do
  local o = 3 * i
  local st = load(KEYS[i], tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]))
  states[i] = st
  local r
  if cost > st.cap then r = st.win else r = retry(st, cost) end
  if r > worst_retry then worst = i; worst_retry = r end
end
if worst > 0 then
  local st = states[worst]
  return { 0, worst - 1, remaining(st), reset_at(st), worst_retry }
end
local best, best_remaining, best_reset = 0, 0, 0
for i = 1, #KEYS do
  local st = states[i]
  consume(st, cost)
  save(st)
  local left = remaining(st)
  if best == 0 or left < best_remaining then best = i; best_remaining = left; best_reset = reset_at(st) end
end
return { 1, best - 1, best_remaining, best_reset, 0 }
`

/** A Lua script and its SHA-1, for EVALSHA. */
export interface LuaScript {
  readonly source: string
  readonly sha: string
}

/**
 * The Redis script of each algorithm. KEYS: one counter key per limit. ARGV: now (epoch ms),
 * cost, then capacity, window ms and limit of each limit in KEYS order. Reply:
 * `{ allowed (1|0), index (0-based), remaining, resetAt, retryAfterMs }`.
 */
export const LUA_SCRIPTS: Readonly<Record<RateLimitAlgorithm, LuaScript>> = Object.fromEntries(
  Object.entries(ALGORITHMS).map(([name, algorithm]) => {
    const source = `-- waygate rate limit: ${name}\n${PRELUDE}${algorithm.lua}${DRIVER}`
    return [name, { source, sha: createHash('sha1').update(source).digest('hex') }]
  })
) as Record<RateLimitAlgorithm, LuaScript>
