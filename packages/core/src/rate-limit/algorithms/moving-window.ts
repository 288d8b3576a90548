import type { Algorithm, CounterState } from './types.js'

/**
 * moving_window: an exact log of the requests of the last window. A request made at `t` counts
 * during [t, t + W); one of cost n logs n entries. A request fits when
 * `entries in (now − W, now] + cost ≤ capacity`; when it does not, it fits again once the
 * oldest `entries + cost − capacity` entries have expired. Burst raises the allowance.
 * The memory store keeps the log oldest first, assuming its clock never goes back; Redis keeps a
 * sorted set (score = time, member = `time:n`).
 */
export const movingWindow: Algorithm = {
  init (st) {
    if (st.log === null) st.log = []
    else st.log.length = 0
    st.head = 0
  },
  normalize (st, l, now) {
    const log = st.log as number[]
    const cutoff = now - l.windowMs
    let head = st.head
    while (head < log.length && (log[head] as number) <= cutoff) head++
    if (head === log.length) {
      log.length = 0
      head = 0
    } else if (head > 32 && head * 2 > log.length) {
      log.splice(0, head)
      head = 0
    }
    st.head = head
  },
  retryAfter (st, l, now, cost) {
    const log = st.log as number[]
    const over = log.length - st.head + cost - l.capacity
    if (over <= 0) return 0
    return (log[st.head + over - 1] as number) + l.windowMs - now
  },
  consume (st, l, now, cost) {
    const log = st.log as number[]
    for (let i = 0; i < cost; i++) log.push(now)
  },
  remaining (st, l) {
    const left = l.capacity - count(st)
    return left > 0 ? left : 0
  },
  resetAt (st, l, now) {
    const log = st.log as number[]
    return log.length > st.head ? (log[log.length - 1] as number) + l.windowMs : now
  },
  lua: `
local function load(key, cap, win, lim)
  local floor = '(' .. num(now - win)
  local count = redis.call('ZCOUNT', key, floor, '+inf')
  local newest = nil
  if count > 0 then newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]) end
  return { key = key, cap = cap, win = win, floor = floor, count = count, newest = newest, added = 0 }
end
local function retry(st, cost)
  local over = st.count + cost - st.cap
  if over <= 0 then return 0 end
  local entry = redis.call('ZRANGEBYSCORE', st.key, st.floor, '+inf', 'WITHSCORES', 'LIMIT', over - 1, 1)
  return tonumber(entry[2]) + st.win - now
end
local function consume(st, cost)
  st.count = st.count + cost
  st.added = cost
  if cost > 0 and (st.newest == nil or now > st.newest) then st.newest = now end
end
local function remaining(st)
  if st.count >= st.cap then return 0 end
  return st.cap - st.count
end
local function reset_at(st)
  if st.count > 0 then return st.newest + st.win end
  return now
end
local function save(st)
  local ttl = reset_at(st) - now
  if ttl <= 0 then redis.call('DEL', st.key) return end
  if st.added == 0 then return end
  redis.call('ZREMRANGEBYSCORE', st.key, '-inf', num(now - st.win))
  local at = num(now)
  -- members taken at one time are numbered from how many that time already has: unique,
  -- since entries of one time are only ever removed together
  local n = redis.call('ZCOUNT', st.key, at, at)
  local args = {}
  for i = 1, st.added do
    args[#args + 1] = at
    args[#args + 1] = at .. ':' .. (n + i - 1)
    if #args >= 1000 or i == st.added then
      redis.call('ZADD', st.key, unpack(args))
      args = {}
    end
  end
  redis.call('PEXPIRE', st.key, num(ttl + TTL_MARGIN))
end
`
}

function count (st: CounterState): number {
  return (st.log as number[]).length - st.head
}
