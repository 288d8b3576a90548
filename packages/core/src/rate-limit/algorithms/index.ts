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

/** The Lua every script starts with: the `now` of the check, `idiv` and `num`. */
export const LUA_PRELUDE = `
-- the time of the check being evaluated (a call may carry several checks)
local now = 0
local TTL_MARGIN = ${TTL_MARGIN_MS}
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function num(x) return string.format('%.0f', x) end
`

// The same steps as the memory store's check (see memory-store.ts), once per check of the call,
// in order: a check sees what the checks before it in the same call consumed
const DRIVER = `
local A = cjson.decode(ARGV[1])
local checks = A[1]
local out = {}
local k, a = 0, 1
for c = 1, checks do
  now = A[a + 1]
  local cost = A[a + 2]
  local n = A[a + 3]
  a = a + 3
  local base = 5 * (c - 1)
  if n == 1 and check1 then
    local ok, left, reset, retry_ms = check1(KEYS[k + 1], A[a + 1], A[a + 2], A[a + 3], cost)
    out[base + 1] = ok; out[base + 2] = 0; out[base + 3] = left; out[base + 4] = reset; out[base + 5] = retry_ms
  else
    local states = {}
    local worst, worst_retry = 0, 0
    for i = 1, n do
      local o = a + 3 * i
      local st = load(KEYS[k + i], A[o - 2], A[o - 1], A[o])
      states[i] = st
      local r
      if cost > st.cap then r = st.win else r = retry(st, cost) end
      if r > worst_retry then worst = i; worst_retry = r end
    end
    if worst > 0 then
      local st = states[worst]
      out[base + 1] = 0; out[base + 2] = worst - 1; out[base + 3] = remaining(st)
      out[base + 4] = reset_at(st); out[base + 5] = worst_retry
    else
      local best, best_remaining, best_reset = 0, 0, 0
      for i = 1, n do
        local st = states[i]
        consume(st, cost)
        save(st)
        local left = remaining(st)
        if best == 0 or left < best_remaining then best = i; best_remaining = left; best_reset = reset_at(st) end
      end
      out[base + 1] = 1; out[base + 2] = best - 1; out[base + 3] = best_remaining
      out[base + 4] = best_reset; out[base + 5] = 0
    end
  end
  k = k + n
  a = a + 3 * n
end
return out
`

/** A Lua script and its SHA-1, for EVALSHA. */
export interface LuaScript {
  readonly source: string
  readonly sha: string
}

/**
 * The Redis script of each algorithm; one call evaluates one or more checks in order. KEYS: the
 * counter keys of every check, one per limit, check after check. ARGV[1]: a JSON array of numbers,
 * the number of checks, then for each check its time (epoch ms), cost and number of limits,
 * followed by capacity, window ms and limit of each of its limits in KEYS order. Reply: five
 * numbers per check,
 * `allowed (1|0), index (0-based), remaining, resetAt, retryAfterMs`.
 */
export const LUA_SCRIPTS: Readonly<Record<RateLimitAlgorithm, LuaScript>> = Object.fromEntries(
  Object.entries(ALGORITHMS).map(([name, algorithm]) => {
    const single = algorithm.luaSingle ?? '\nlocal check1 = nil\n'
    const source = `-- waygate rate limit: ${name}\n${LUA_PRELUDE}${algorithm.lua}${single}${DRIVER}`
    return [name, { source, sha: createHash('sha1').update(source).digest('hex') }]
  })
) as Record<RateLimitAlgorithm, LuaScript>
