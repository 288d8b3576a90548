import { cdiv, idiv, type Algorithm } from './types.js'

/**
 * sliding_window (the default): a weighted two-bucket counter. Windows are aligned on the epoch
 * as in fixed_window; with `prev` the count of the previous window, `cur` that of the current one
 * and `e` the ms elapsed in the current window, the estimate is
 *
 *     estimate = prev × (W − e) / W + cur
 *
 * evaluated exactly, with no rounding: a request fits when
 * `prev × (W − e) + (cur + cost) × W ≤ capacity × W` (integers). `remaining` is
 * `capacity − cur − ceil(prev × (W − e) / W)`, the number of 1-unit requests that would fit.
 * The retry time is the first millisecond at which the request fits, found in closed form.
 * Burst raises the allowance the estimate is compared with.
 *
 * State: `a` = window number, `b` = cur, `c` = prev.
 */
export const slidingWindow: Algorithm = {
  init (st) {
    st.a = -2
    st.b = 0
    st.c = 0
  },
  normalize (st, l, now) {
    const w = idiv(now, l.windowMs)
    if (st.a >= w) return
    st.c = st.a === w - 1 ? st.b : 0
    st.b = 0
    st.a = w
  },
  retryAfter (st, l, now, cost) {
    const W = l.windowMs
    const cap = l.capacity
    const start = st.a * W
    const e = now > start ? now - start : 0
    if (st.c * (W - e) + (st.b + cost) * W <= cap * W) return 0
    const room = cap - st.b - cost
    // Fits later in this window, once the previous count has faded enough (prev > 0 here)
    if (room >= 0) return start + W - idiv(room * W, st.c) - now
    // Only in the next window, once this window's count (now the previous one) fades enough
    return start + 2 * W - idiv((cap - cost) * W, st.b) - now
  },
  consume (st, l, now, cost) {
    st.b += cost
  },
  remaining (st, l, now) {
    const W = l.windowMs
    const start = st.a * W
    const e = now > start ? now - start : 0
    const left = l.capacity - st.b - cdiv(st.c * (W - e), W)
    return left > 0 ? left : 0
  },
  resetAt (st, l, now) {
    if (st.b > 0) return (st.a + 2) * l.windowMs
    if (st.c > 0) return (st.a + 1) * l.windowMs
    return now
  },
  lua: `
-- the stored window brought to now: window number, cur, prev, whether it is the stored window,
-- its start and the ms elapsed in it
local function read(key, win)
  local w = idiv(now, win)
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
  local cur, prev, same = 0, 0, false
  if v[1] then
    local sw = tonumber(v[1])
    if sw >= w then w = sw; cur = tonumber(v[2]); prev = tonumber(v[3]); same = true
    elseif sw == w - 1 then prev = tonumber(v[2]) end
  end
  local start = w * win
  local e = 0
  if now > start then e = now - start end
  return w, cur, prev, same, start, e
end
local function load(key, cap, win, lim)
  local w, cur, prev, same, start, e = read(key, win)
  return { key = key, cap = cap, win = win, w = w, cur = cur, prev = prev, start = start, e = e, same = same, was = cur }
end
local function retry(st, cost)
  local W = st.win
  if st.prev * (W - st.e) + (st.cur + cost) * W <= st.cap * W then return 0 end
  local room = st.cap - st.cur - cost
  if room >= 0 then return st.start + W - idiv(room * W, st.prev) - now end
  return st.start + 2 * W - idiv((st.cap - cost) * W, st.cur) - now
end
local function consume(st, cost) st.cur = st.cur + cost end
local function remaining(st)
  local left = st.cap - st.cur - idiv(st.prev * (st.win - st.e) + st.win - 1, st.win)
  if left > 0 then return left end
  return 0
end
local function reset_at(st)
  if st.cur > 0 then return (st.w + 2) * st.win end
  if st.prev > 0 then return (st.w + 1) * st.win end
  return now
end
local function save(st)
  -- same window, already counting: only the count moves; the window, the previous count and the
  -- expiry (the end of the next window) are already stored
  if st.same and st.was > 0 and st.cur > 0 then
    redis.call('HSET', st.key, 'c', num(st.cur))
    return
  end
  local ttl = reset_at(st) - now
  if ttl <= 0 then redis.call('DEL', st.key) return end
  redis.call('HSET', st.key, 'w', num(st.w), 'c', num(st.cur), 'p', num(st.prev))
  redis.call('PEXPIRE', st.key, num(ttl + TTL_MARGIN))
end
`,
  luaSingle: `
local function check1(key, cap, win, lim, cost)
  local w, cur, prev, same, start, e = read(key, win)
  local r = 0
  if cost > cap then r = win
  elseif prev * (win - e) + (cur + cost) * win > cap * win then
    local room = cap - cur - cost
    if room >= 0 then r = start + win - idiv(room * win, prev) - now
    else r = start + 2 * win - idiv((cap - cost) * win, cur) - now end
  end
  local was = cur
  if r <= 0 then cur = cur + cost end
  local left = cap - cur - idiv(prev * (win - e) + win - 1, win)
  if left < 0 then left = 0 end
  local reset = now
  if cur > 0 then reset = (w + 2) * win elseif prev > 0 then reset = (w + 1) * win end
  if r > 0 then return 0, left, reset, r end
  if same and was > 0 and cur > 0 then
    redis.call('HSET', key, 'c', num(cur))
  elseif reset - now <= 0 then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'w', num(w), 'c', num(cur), 'p', num(prev))
    redis.call('PEXPIRE', key, num(reset - now + TTL_MARGIN))
  end
  return 1, left, reset, 0
end
`
}
