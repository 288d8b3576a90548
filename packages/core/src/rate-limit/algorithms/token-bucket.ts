import { cdiv, idiv, type Algorithm, type CounterState } from './types.js'
import type { CompiledLimit } from '../rule.js'

/**
 * token_bucket: a bucket of `capacity = limit + burst` tokens, full at first, refilled
 * continuously at `limit` tokens per window; a request takes `cost` tokens and fits when the
 * bucket holds at least that many. Burst is the only way to let a client spend more than
 * `limit` at once while keeping the long-run rate at `limit` per window.
 *
 * The state is the deficit (tokens taken and not refilled yet), kept exactly as an integer
 * scaled by the window (`deficit × W`, refilled by `limit` per elapsed ms), with the time it was
 * last taken from and the time it is refilled completely. From that time on the bucket is full,
 * whatever rule reads it next, so expiring it (a Redis TTL, a memory sweep) never changes an
 * answer. A rule with another capacity or rate reads the same deficit: a smaller capacity sees
 * at most an empty bucket. `remaining` is the whole tokens left; the retry time is the first
 * millisecond the bucket holds `cost` tokens. Nothing is written on a refusal.
 *
 * State: `a` = scaled deficit, `b` = time of the last take (never moves back), `c` = time it is full again.
 */
export const tokenBucket: Algorithm = {
  init (st, l, now) {
    st.a = 0
    st.b = now
    st.c = now
  },
  normalize (st, l, now) {
    if (now >= st.c) {
      st.a = 0
      st.b = now
      st.c = now
    }
  },
  retryAfter (st, l, now, cost) {
    const tokens = l.capacity * l.windowMs - deficit(st, l, now)
    const need = cost * l.windowMs
    if (tokens >= need) return 0
    return (st.b > now ? st.b : now) + cdiv(need - tokens, l.limit) - now
  },
  consume (st, l, now, cost) {
    st.a = deficit(st, l, now) + cost * l.windowMs
    if (now > st.b) st.b = now
    st.c = st.b + cdiv(st.a, l.limit)
  },
  remaining (st, l, now) {
    return idiv(l.capacity * l.windowMs - deficit(st, l, now), l.windowMs)
  },
  resetAt (st, l, now) {
    const d = deficit(st, l, now)
    return d === 0 ? now : (st.b > now ? st.b : now) + cdiv(d, l.limit)
  },
  lua: `
local function load(key, cap, win, lim)
  local st = { key = key, cap = cap, win = win, lim = lim, full = cap * win, d = 0, at = now }
  local v = redis.call('HMGET', key, 'd', 'ts', 'u')
  if v[1] and now < tonumber(v[3]) then
    st.d = tonumber(v[1])
    st.at = tonumber(v[2])
  end
  return st
end
local function deficit(st)
  local d = st.d
  if d > st.full then d = st.full end
  if now > st.at then
    local elapsed = now - st.at
    if elapsed >= idiv(d + st.lim - 1, st.lim) then d = 0 else d = d - elapsed * st.lim end
  end
  return d
end
local function since(st)
  if st.at > now then return st.at end
  return now
end
local function retry(st, cost)
  local tokens = st.full - deficit(st)
  local need = cost * st.win
  if tokens >= need then return 0 end
  return since(st) + idiv(need - tokens + st.lim - 1, st.lim) - now
end
local function consume(st, cost)
  st.d = deficit(st) + cost * st.win
  st.at = since(st)
end
local function remaining(st) return idiv(st.full - deficit(st), st.win) end
local function reset_at(st)
  local d = deficit(st)
  if d == 0 then return now end
  return since(st) + idiv(d + st.lim - 1, st.lim)
end
local function save(st)
  local until_at = reset_at(st)
  local ttl = until_at - now
  if ttl <= 0 then redis.call('DEL', st.key) return end
  redis.call('HSET', st.key, 'd', num(st.d), 'ts', num(st.at), 'u', num(until_at))
  redis.call('PEXPIRE', st.key, num(ttl + TTL_MARGIN))
end
`
}

// The deficit at `now`: the stored one, at most a full bucket, less what has refilled since
function deficit (st: CounterState, l: CompiledLimit, now: number): number {
  const full = l.capacity * l.windowMs
  let d = st.a > full ? full : st.a
  if (now > st.b) {
    const elapsed = now - st.b
    d = elapsed >= cdiv(d, l.limit) ? 0 : d - elapsed * l.limit
  }
  return d
}
