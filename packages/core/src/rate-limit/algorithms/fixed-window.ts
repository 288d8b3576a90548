import { idiv, type Algorithm } from './types.js'

/**
 * fixed_window: one counter per window aligned on the epoch (window n covers
 * [n × W, (n + 1) × W)). A request fits when `count + cost ≤ capacity`; the counter starts
 * from 0 at the boundary, so a client can spend a whole window's allowance just before it and
 * again just after. Burst simply raises the per-window allowance.
 *
 * State: `a` = window number, `b` = count. A window number ahead of this clock (another
 * instance's clock runs ahead) is kept as the current window.
 */
export const fixedWindow: Algorithm = {
  init (st) {
    st.a = -2
    st.b = 0
  },
  normalize (st, l, now) {
    const w = idiv(now, l.windowMs)
    if (st.a < w) {
      st.a = w
      st.b = 0
    }
  },
  retryAfter (st, l, now, cost) {
    return st.b + cost <= l.capacity ? 0 : (st.a + 1) * l.windowMs - now
  },
  consume (st, l, now, cost) {
    st.b += cost
  },
  remaining (st, l) {
    return st.b >= l.capacity ? 0 : l.capacity - st.b
  },
  resetAt (st, l, now) {
    return st.b > 0 ? (st.a + 1) * l.windowMs : now
  },
  lua: `
local function load(key, cap, win, lim)
  local w = idiv(now, win)
  local v = redis.call('HMGET', key, 'w', 'c')
  local c = 0
  if v[1] then
    local sw = tonumber(v[1])
    if sw >= w then w = sw; c = tonumber(v[2]) end
  end
  return { key = key, cap = cap, win = win, w = w, c = c }
end
local function retry(st, cost)
  if st.c + cost <= st.cap then return 0 end
  return (st.w + 1) * st.win - now
end
local function consume(st, cost) st.c = st.c + cost end
local function remaining(st)
  if st.c >= st.cap then return 0 end
  return st.cap - st.c
end
local function reset_at(st)
  if st.c > 0 then return (st.w + 1) * st.win end
  return now
end
local function save(st)
  local ttl = reset_at(st) - now
  if ttl <= 0 then redis.call('DEL', st.key) return end
  redis.call('HSET', st.key, 'w', num(st.w), 'c', num(st.c))
  redis.call('PEXPIRE', st.key, num(ttl + TTL_MARGIN))
end
`
}
