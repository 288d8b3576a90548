import { createHash } from 'node:crypto'

/**
 * The Lua scripts of the Redis backend. Each write is one script: it checks what it must (the
 * value the updater saw, an audit id, a record's expiry against the caller's clock), writes,
 * appends the audit entry, bumps the change sequence and publishes the change, all atomically.
 * Every key a script touches shares the backend's hash tag, so the scripts also run on Cluster.
 *
 * Values travel as the JSON text JavaScript produced and are never decoded and re-encoded here
 * (cjson would turn `[]` into `{}`); change messages are assembled by concatenation.
 */

/** A script and its SHA1, for EVALSHA with an EVAL fallback. */
export interface LuaScript {
  readonly name: string
  readonly source: string
  readonly sha: string
}

function script (name: string, body: string): LuaScript {
  const source = HELPERS + body
  return { name, source, sha: createHash('sha1').update(source).digest('hex') }
}

const HELPERS = `
local function push_audit(list, ids, id, json, max)
  if redis.call('SADD', ids, id) == 0 then return false end
  redis.call('LPUSH', list, json)
  if redis.call('LLEN', list) > max then
    local dropped = redis.call('LRANGE', list, max, -1)
    for _, text in ipairs(dropped) do
      local ok, entry = pcall(cjson.decode, text)
      if ok and type(entry) == 'table' and type(entry.id) == 'string' then redis.call('SREM', ids, entry.id) end
    end
    redis.call('LTRIM', list, 0, max - 1)
  end
  return true
end

local function publish(seq_key, channel, instance, changes)
  local seq = redis.call('INCR', seq_key)
  redis.call('PUBLISH', channel, '{"i":"' .. instance .. '","s":' .. string.format('%d', seq) .. ',"c":[' .. table.concat(changes, ',') .. ']}')
  return seq
end

local function add_deliveries(outbox, due, dead, at, first)
  for i = first, #ARGV - 1, 2 do
    if redis.call('HEXISTS', dead, ARGV[i]) == 0 and redis.call('HSETNX', outbox, ARGV[i], ARGV[i + 1]) == 1 then
      redis.call('ZADD', due, at, ARGV[i])
    end
  end
end

local function sweep_records(hash, expiry, now)
  local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  if #dead > 0 then
    for _, id in ipairs(dead) do redis.call('HDEL', hash, id) end
    redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
  end
end
`

/**
 * Compare-and-set of one field of a hash (a route state), with its audit entry and, when the
 * entry is stored, the webhook deliveries of the change (the outbox).
 * KEYS: hash, audit list, audit ids, sequence, outbox hash, outbox due set, dead letters hash.
 * ARGV: field, '1' if a current value is expected else '0', expected value, next value,
 * audit id ('' for none), audit JSON, max audit entries, channel, instance, route change,
 * audit change, now (epoch ms), then (delivery id, delivery JSON) pairs.
 * Returns {0} when the value moved, else {1, seq, audited}.
 */
export const CAS_FIELD = script('cas-field', `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '0' then
  if current then return {0} end
elseif current ~= ARGV[3] then
  return {0}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
local changes = { ARGV[10] }
local audited = 0
if ARGV[5] ~= '' and push_audit(KEYS[2], KEYS[3], ARGV[5], ARGV[6], tonumber(ARGV[7])) then
  audited = 1
  changes[2] = ARGV[11]
  add_deliveries(KEYS[5], KEYS[6], KEYS[7], ARGV[12], 13)
end
return {1, publish(KEYS[4], ARGV[8], ARGV[9], changes), audited}
`)

/** As {@link CAS_FIELD} for a plain key (global maintenance); ARGV[1] is unused. */
export const CAS_KEY = script('cas-key', `
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if current then return {0} end
elseif current ~= ARGV[3] then
  return {0}
end
redis.call('SET', KEYS[1], ARGV[4])
local changes = { ARGV[10] }
local audited = 0
if ARGV[5] ~= '' and push_audit(KEYS[2], KEYS[3], ARGV[5], ARGV[6], tonumber(ARGV[7])) then
  audited = 1
  changes[2] = ARGV[11]
  add_deliveries(KEYS[5], KEYS[6], KEYS[7], ARGV[12], 13)
end
return {1, publish(KEYS[4], ARGV[8], ARGV[9], changes), audited}
`)

/**
 * Appends an audit entry unless its id is known, with the webhook deliveries of the change.
 * KEYS: audit list, audit ids, sequence, outbox hash, outbox due set, dead letters hash.
 * ARGV: id, JSON, max, channel, instance, change, now, then (delivery id, delivery JSON) pairs.
 * Returns the sequence number, or 0 for a known id.
 */
export const APPEND_AUDIT = script('append-audit', `
if not push_audit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3])) then return 0 end
add_deliveries(KEYS[4], KEYS[5], KEYS[6], ARGV[7], 8)
return publish(KEYS[3], ARGV[4], ARGV[5], { ARGV[6] })
`)

/**
 * Stores the route states whose keys are absent.
 * KEYS: routes hash, sequence. ARGV: channel, instance, then (key, state JSON, change) triples.
 * Returns the sequence number (0 when nothing was added) followed by the keys added.
 */
export const REGISTER_ROUTES = script('register-routes', `
local reply = { 0 }
local changes = {}
for i = 3, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    reply[#reply + 1] = ARGV[i]
    changes[#changes + 1] = ARGV[i + 2]
  end
end
if #changes > 0 then reply[1] = publish(KEYS[2], ARGV[1], ARGV[2], changes) end
return reply
`)

/**
 * Removes a route state. KEYS: routes hash, sequence. ARGV: key, channel, instance, change.
 * Returns the sequence number, or 0 when the key was absent.
 */
export const DELETE_ROUTE = script('delete-route', `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
return publish(KEYS[2], ARGV[2], ARGV[3], { ARGV[4] })
`)

/**
 * Stores or removes a record; expiry is judged by the caller's clock (`now`), never Redis's.
 * KEYS: the namespace's hash, its expiry sorted set, sequence.
 * ARGV: id, stored text, expiresAt ('' for never), now, '1' if the record is live at now,
 * channel, instance, change when stored, change when removed.
 * Returns the sequence number, or 0 when nothing changed.
 */
export const PUT_RECORD = script('put-record', `
sweep_records(KEYS[1], KEYS[2], ARGV[4])
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[5] == '1' then
  if current == ARGV[2] then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if ARGV[3] == '' then
    redis.call('ZREM', KEYS[2], ARGV[1])
  else
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  end
  return publish(KEYS[3], ARGV[6], ARGV[7], { ARGV[8] })
end
if not current then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return publish(KEYS[3], ARGV[6], ARGV[7], { ARGV[9] })
`)

/**
 * Reads every route state, global maintenance, the change sequence and the epoch at one instant,
 * so a snapshot holds exactly the changes up to the sequence it reports. The epoch names the
 * history the sequence counts in; the first read that finds none (new or wiped storage) stores
 * the one it was given. KEYS: routes hash, global, sequence, epoch. ARGV: a new epoch.
 * Returns {routes as field/value pairs, global or nil, sequence, epoch}.
 */
export const LOAD_STATE = script('load-state', `
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[4], epoch)
end
return { redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]), tonumber(redis.call('GET', KEYS[3]) or '0'), epoch }
`)

/**
 * Removes a record that is live at `now`.
 * KEYS: the namespace's hash, its expiry sorted set, sequence. ARGV: id, now, channel, instance, change.
 * Returns the sequence number, or 0 when there was no live record.
 */
export const DELETE_RECORD = script('delete-record', `
sweep_records(KEYS[1], KEYS[2], ARGV[2])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return publish(KEYS[3], ARGV[3], ARGV[4], { ARGV[5] })
`)

// ---- the webhook outbox: pending deliveries (hash id → JSON) ordered by when each is due (sorted
// set), attempts and the claim holding one (hashes), dead letters (hash id → JSON). Lease ends
// are due times: a delivery whose claimer died is due again when its lease ends.

/**
 * Claims due deliveries of known webhooks. KEYS: outbox, due, attempts, leases.
 * ARGV: now, lease end, limit, token, then the webhook ids this caller can send to.
 * Returns {{id, JSON, attempts, …}, earliest due time or false}.
 */
export const OUTBOX_CLAIM = script('outbox-claim', `
local known = {}
for i = 5, #ARGV do known[ARGV[i]] = true end
local limit = tonumber(ARGV[3])
local out = {}
local taken = 0
if limit > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 500)) do
    local json = redis.call('HGET', KEYS[1], id)
    if not json then
      redis.call('ZREM', KEYS[2], id)
    else
      local ok, delivery = pcall(cjson.decode, json)
      if ok and type(delivery) == 'table' and known[delivery.webhook] then
        redis.call('ZADD', KEYS[2], ARGV[2], id)
        redis.call('HSET', KEYS[4], id, ARGV[4])
        out[#out + 1] = id
        out[#out + 1] = json
        out[#out + 1] = redis.call('HINCRBY', KEYS[3], id, 1)
        taken = taken + 1
        if taken >= limit then break end
      end
    end
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { out, first[2] or false }
`)

/**
 * Removes a delivery its claimer sent. KEYS: outbox, due, attempts, leases. ARGV: id, token.
 * Returns 1, or 0 when the claim was lost.
 */
export const OUTBOX_COMPLETE = script('outbox-complete', `
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
`)

/**
 * A failed attempt: due again at a time, or moved to the dead letters.
 * KEYS: outbox, due, attempts, leases, dead letters. ARGV: id, token, retry time ('' for dead), dead letter JSON.
 * Returns 1, or 0 when the claim was lost.
 */
export const OUTBOX_FAIL = script('outbox-fail', `
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[4])
return 1
`)

/**
 * Moves a dead letter back to the pending deliveries, unless it changed since it was read.
 * KEYS: outbox, due, attempts, leases, dead letters. ARGV: id, dead letter JSON as read, delivery JSON, now.
 * Returns 1, or 0 when there was no such dead letter.
 */
export const OUTBOX_RETRY_DEAD = script('outbox-retry-dead', `
if redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
`)
