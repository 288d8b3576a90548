import { Redis } from 'ioredis'
import t from 'tap'
import { routeState as state, auditEntry as entry, waitFor } from '@waygate/core/testing'
import { createRedisBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { BackendChange, RedisBackendOptions, RedisConnection, RouteState, WaygateBackend, WaygateLogger } from '@waygate/core'
import { createClock, SECOND } from './helpers/clock.js'
import { startRedisServer, startSocketProxy, type Teardown } from './helpers/redis-server.js'

const server = await startRedisServer(t)
let prefixes = 0

/** A fresh key prefix, so tests sharing the server never see each other's keys. */
function freshPrefix (): string {
  return `t${++prefixes}`
}

async function open (t: Teardown, connection: RedisConnection, options: RedisBackendOptions = {}): Promise<WaygateBackend> {
  const backend = createRedisBackend(connection, options)
  t.teardown(() => backend.close())
  await backend.init?.()
  return backend
}

function client (t: Teardown, path = server.socket): Redis {
  const redis = new Redis({ path, lazyConnect: false, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

function record (backend: WaygateBackend): BackendChange[] {
  const changes: BackendChange[] = []
  backend.subscribe(change => { changes.push(change) })
  return changes
}

/** How long a promise takes to settle, and how. */
async function timed (op: () => Promise<unknown>): Promise<{ ms: number, error: unknown }> {
  const start = performance.now()
  let error: unknown
  try {
    await op()
  } catch (err) {
    error = err
  }
  return { ms: performance.now() - start, error }
}

function captureLogger (): WaygateLogger & { lines: Array<{ level: string, msg: string }> } {
  const lines: Array<{ level: string, msg: string }> = []
  const log = (level: string) => (_obj: object, msg?: string) => { lines.push({ level, msg: msg ?? '' }) }
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

t.test('every key sits under the prefix\'s hash tag; prefixes do not see each other', async t => {
  const prefix = freshPrefix()
  const a = await open(t, { url: server.url }, { keyPrefix: prefix })
  const other = await open(t, { url: server.url }, { keyPrefix: freshPrefix() })
  await a.updateRoute('GET:/a', () => ({ next: state('GET:/a', { status: 'disabled' }), audit: entry('k1') }))
  await a.updateGlobal(() => ({ next: { ...defaultGlobalMaintenance(), enabled: true } }))
  await a.putRecord('tokens', 'j1', { by: 'alice' }, { expiresAt: Date.now() + 60_000 })
  const redis = client(t)
  const keys = (await redis.keys(`{${prefix}}*`)).sort()
  t.same(keys, [`{${prefix}}:audit`, `{${prefix}}:audit-ids`, `{${prefix}}:global`, `{${prefix}}:rec-exp:tokens`, `{${prefix}}:rec:tokens`, `{${prefix}}:routes`, `{${prefix}}:seq`])
  t.match(JSON.parse((await redis.hget(`{${prefix}}:routes`, 'GET:/a'))!), { key: 'GET:/a', status: 'disabled' }, 'a route is JSON in a hash field')
  const empty = await other.load()
  t.same(empty, { routes: [], global: null, revision: 0, epoch: empty.epoch }, 'another prefix is another store, at revision 0')
  t.not(empty.epoch, (await a.load()).epoch, 'with its own epoch')
  t.same(await other.listAudit(), [])
})

t.test('a backend handed a client uses it and leaves it open at close', async t => {
  const prefix = freshPrefix()
  const own = client(t)
  await new Promise(resolve => own.once('ready', resolve))
  const backend = createRedisBackend({ client: own }, { keyPrefix: prefix })
  await backend.init?.()
  await backend.updateRoute('GET:/a', () => ({ next: state('GET:/a') }))
  t.equal(Number(await own.call('PUBSUB', 'NUMSUB', `{${prefix}}:changes`).then(r => (r as unknown[])[1])), 1, 'its own subscriber connection follows the channel')
  await backend.close()
  t.equal(own.status, 'ready', 'the client is not quit')
  t.equal(await own.ping(), 'PONG')
  t.equal(Number(await own.call('PUBSUB', 'NUMSUB', `{${prefix}}:changes`).then(r => (r as unknown[])[1])), 0, 'the subscriber it created is gone')
  t.match(await own.hget(`{${prefix}}:routes`, 'GET:/a'), /"GET:\/a"/)
})

t.test('changes reach the other instances; an instance never hears its own twice', async t => {
  const prefix = freshPrefix()
  const a = await open(t, { url: server.url }, { keyPrefix: prefix })
  const b = await open(t, { url: server.url }, { keyPrefix: prefix })
  const seenByA = record(a)
  const seenByB = record(b)
  const disabled = state('GET:/a', { status: 'disabled', reason: 'incident' })
  await a.updateRoute('GET:/a', () => ({ next: disabled, audit: entry('p1') }))
  t.same(seenByA, [{ type: 'route', state: disabled, revision: 1 }, { type: 'audit', entry: entry('p1') }], 'announced locally before the write resolved, with its revision')
  t.ok(await waitFor(() => seenByB.length === 2), 'the other instance gets route and audit')
  t.same(seenByB, seenByA)

  const on = { ...defaultGlobalMaintenance(), enabled: true, reason: 'deploy' }
  await b.updateGlobal(() => ({ next: on }))
  await b.registerRoutes([state('GET:/b'), state('GET:/a')])
  await b.deleteRoute('GET:/b')
  await b.putRecord('tokens', 'j1', { by: 'bob' })
  await b.deleteRecord('tokens', 'j1')
  t.ok(await waitFor(() => seenByA.length === 7))
  t.same(seenByA.slice(2), [
    { type: 'global', global: on, revision: 2 },
    { type: 'route', state: state('GET:/b'), revision: 3 },
    { type: 'route_deleted', key: 'GET:/b', revision: 4 },
    { type: 'record', namespace: 'tokens', id: 'j1', record: { id: 'j1', value: { by: 'bob' }, expiresAt: null }, revision: 5 },
    { type: 'record', namespace: 'tokens', id: 'j1', record: null, revision: 6 }
  ], 'in the order they were made, each with the revision of its write')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(seenByA.length, 7, 'no echo of A\'s own writes')
  t.equal(seenByB.length, 7, 'no echo of B\'s own writes')
})

t.test('two instances updating one key concurrently: every update kept, one audit entry each, one final view', async t => {
  const prefix = freshPrefix()
  const a = await open(t, { url: server.url }, { keyPrefix: prefix })
  const b = await open(t, { url: server.url }, { keyPrefix: prefix })
  const seenByA = record(a)
  const seenByB = record(b)
  const key = 'GET:/counter'
  const increment = (who: string, i: number) => (current: RouteState | null) => {
    const count = Number(current?.reason ?? '0') + 1
    return { next: state(key, { reason: String(count), updatedBy: who }), audit: entry(`${who}-${i}`, { key, reason: String(count), actor: who }) }
  }
  await Promise.all([
    ...Array.from({ length: 25 }, (_, i) => a.updateRoute(key, increment('a', i))),
    ...Array.from({ length: 25 }, (_, i) => b.updateRoute(key, increment('b', i)))
  ])
  t.equal((await a.getRoute(key))?.reason, '50', 'no update lost')
  const trail = await a.listAudit({ key, limit: 100 })
  t.equal(trail.length, 50, 'one audit entry per update')
  t.same(trail.map(e => e.reason), Array.from({ length: 50 }, (_, i) => String(50 - i)), 'each entry with its own update, newest first')
  const last = (changes: BackendChange[]) => changes.filter(c => c.type === 'route').at(-1)
  t.ok(await waitFor(() => (last(seenByA) as { state?: RouteState })?.state?.reason === '50' && (last(seenByB) as { state?: RouteState })?.state?.reason === '50'),
    'both instances end on the stored value, though their own writes and the other\'s arrive by different connections')
})

t.test('an audit entry id is stored once across instances', async t => {
  const prefix = freshPrefix()
  const a = await open(t, { url: server.url }, { keyPrefix: prefix })
  const b = await open(t, { url: server.url }, { keyPrefix: prefix })
  const transition = entry('window_start:GET:/a:2030-01-01T00:00:00.000Z', { action: 'window_start', actor: 'scheduler', platform: 'scheduler' })
  const results = await Promise.all([a.appendAudit(transition), b.appendAudit(transition), a.appendAudit(transition), b.appendAudit(transition)])
  t.same(results.filter(Boolean).length, 1, 'exactly one instance wins')
  t.same(await b.listAudit(), [transition])
})

t.test('the audit list is capped and forgets the ids it dropped', async t => {
  const prefix = freshPrefix()
  const backend = await open(t, { url: server.url }, { keyPrefix: prefix, maxAuditEntries: 3 })
  for (let i = 1; i <= 5; i++) await backend.appendAudit(entry(`c${i}`))
  t.same((await backend.listAudit()).map(e => e.id), ['c5', 'c4', 'c3'])
  t.equal(await client(t).scard(`{${prefix}}:audit-ids`), 3, 'the id set follows the list')
})

t.test('expired records are swept from Redis by the next write to their namespace, by the injected clock', async t => {
  const prefix = freshPrefix()
  const clock = createClock()
  const backend = await open(t, { url: server.url }, { keyPrefix: prefix, now: clock.now })
  for (let i = 0; i < 10; i++) await backend.putRecord('tokens', `j${i}`, i, { expiresAt: clock.now() + SECOND })
  await backend.putRecord('tokens', 'kept', true)
  const redis = client(t)
  t.equal(await redis.hlen(`{${prefix}}:rec:tokens`), 11)
  clock.advance(SECOND)
  t.same((await backend.listRecords('tokens')).map(r => r.id), ['kept'], 'expired by the backend\'s clock, not Redis\'s')
  await backend.putRecord('tokens', 'new', 1)
  t.equal(await redis.hlen(`{${prefix}}:rec:tokens`), 2, 'the write swept the expired ones')
  t.equal(await redis.zcard(`{${prefix}}:rec-exp:tokens`), 0)
})

t.test('record ids that are special words in JavaScript are kept as they are', async t => {
  const backend = await open(t, { url: server.url }, { keyPrefix: freshPrefix() })
  for (const id of ['__proto__', 'constructor', 'toString']) await backend.putRecord('odd', id, id)
  t.same(await backend.listRecords('odd'), [
    { id: '__proto__', value: '__proto__', expiresAt: null },
    { id: 'constructor', value: 'constructor', expiresAt: null },
    { id: 'toString', value: 'toString', expiresAt: null }
  ])
  t.same(await backend.getRecord('odd', '__proto__'), { id: '__proto__', value: '__proto__', expiresAt: null })
})

t.test('Redis killed: calls fail fast and health says so; restarted: every instance reloads and follows again', async t => {
  const local = await startRedisServer(t)
  const prefix = freshPrefix()
  const a = await open(t, { url: local.url }, { keyPrefix: prefix })
  const b = await open(t, { url: local.url }, { keyPrefix: prefix })
  const seenByA = record(a)
  const seenByB = record(b)
  await a.updateRoute('GET:/a', () => ({ next: state('GET:/a', { status: 'disabled' }) }))
  t.ok(await waitFor(() => seenByB.length === 1))

  await local.kill({ save: true })
  await waitFor(() => false, 30)
  const write = await timed(() => a.updateRoute('GET:/a', () => ({ next: state('GET:/a') })))
  t.match(write.error, { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 })
  t.ok(write.ms < 500, `a write fails at once, not after the 1 s command timeout (${write.ms.toFixed(1)} ms)`)
  const read = await timed(() => b.load())
  t.match(read.error, { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
  t.ok(read.ms < 500, `so does a read (${read.ms.toFixed(1)} ms)`)
  t.match(await a.health(), { ok: false, detail: /not connected/ })

  await local.start()
  t.ok(await waitFor(() => seenByA.some(c => c.type === 'resync') && seenByB.some(c => c.type === 'resync'), 5000),
    'both instances are told to reload once Redis is back')
  t.same(await a.health(), { ok: true })
  t.match((await b.load()).routes, [{ key: 'GET:/a', status: 'disabled' }], 'the saved state is back')
  await a.updateRoute('GET:/a', () => ({ next: state('GET:/a', { reason: 'after' }) }))
  t.ok(await waitFor(() => seenByB.some(c => c.type === 'route' && c.state.reason === 'after')), 'and changes flow again')
})

t.test('an instance cut off from Redis reloads when it is back, so it learns what it missed', async t => {
  const prefix = freshPrefix()
  const proxy = await startSocketProxy(t, server.socket)
  const a = await open(t, { url: server.url }, { keyPrefix: prefix })
  const b = await open(t, { url: proxy.url }, { keyPrefix: prefix })
  const seenByB = record(b)
  await proxy.cut()
  await a.updateRoute('GET:/missed', () => ({ next: state('GET:/missed', { status: 'maintenance' }) }))
  await waitFor(() => false, 100)
  t.same(seenByB, [], 'nothing reaches a cut-off instance')
  await proxy.restore()
  t.ok(await waitFor(() => seenByB.some(c => c.type === 'resync'), 5000), 'told to reload on reconnection')
  t.match((await b.load()).routes, [{ key: 'GET:/missed', status: 'maintenance' }])
})

t.test('a command Redis does not answer fails after commandTimeoutMs; a write that may have happened asks for a reload', async t => {
  const local = await startRedisServer(t)
  const backend = await open(t, { url: local.url }, { keyPrefix: freshPrefix(), commandTimeoutMs: 200 })
  const changes = record(backend)
  t.teardown(() => local.thaw())

  local.freeze()
  const read = await timed(() => backend.getRoute('GET:/a'))
  t.match(read.error, { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /timed out|no answer/ })
  t.ok(read.ms >= 190 && read.ms < 1000, `a read is bounded (${read.ms.toFixed(0)} ms)`)
  local.thaw()
  await waitFor(() => false, 50)
  t.same(changes, [], 'a failed read changes nothing')

  const write = await timed(() => backend.updateRoute('GET:/a', () => {
    // Redis stops answering between the read and the write
    local.freeze()
    return { next: state('GET:/a') }
  }))
  t.match(write.error, { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
  t.ok(write.ms >= 190 && write.ms < 1000, `a write is bounded (${write.ms.toFixed(0)} ms)`)
  local.thaw()
  t.ok(await waitFor(() => changes.some(c => c.type === 'resync')), 'the outcome is unknown, so whoever holds a snapshot reloads it')
})

t.test('Redis down at startup: init resolves, one warning; when Redis appears the backend connects and asks for a reload', async t => {
  const late = await startRedisServer(t, { start: false })
  const logger = captureLogger()
  const backend = createRedisBackend({ url: late.url }, { keyPrefix: freshPrefix(), logger })
  t.teardown(() => backend.close())
  const init = await timed(() => backend.init!())
  t.equal(init.error, undefined, 'init does not reject')
  t.ok(init.ms < 1000, `and does not wait long (${init.ms.toFixed(0)} ms)`)
  const changes = record(backend)
  t.match(await timed(() => backend.load()), { error: { code: 'WG_ERR_BACKEND_UNAVAILABLE' } })
  await waitFor(() => false, 500)
  t.same(logger.lines.filter(l => l.level === 'warn').length, 1, 'one warning, not one per reconnection attempt')
  t.match(logger.lines[0], { level: 'warn', msg: /redis is unreachable/ })

  await late.start()
  t.ok(await waitFor(() => changes.some(c => c.type === 'resync'), 5000))
  t.same(await backend.health(), { ok: true })
  t.match(await backend.load(), { routes: [], global: null, revision: 0, epoch: String })
  t.match(logger.lines.filter(l => l.level !== 'debug'), [{ level: 'warn' }, { level: 'info', msg: /reachable again/ }])
})

t.test('invalid options are refused at creation', async t => {
  const bad: Array<[RedisConnection, RedisBackendOptions, RegExp]> = [
    [{ url: 'http://localhost:6379' }, {}, /redis:\/\/, rediss:\/\/ or unix:\/\//],
    [{ url: 'nope' }, {}, /url must be/],
    [{ url: 'unix://' }, {}, /socket path/],
    [{ url: server.url, client: {} } as unknown as RedisConnection, {}, /one of \{ url \}, \{ cluster \}, \{ sentinels, name \} or \{ client \}/],
    [{ client: {} } as unknown as RedisConnection, {}, /ioredis/],
    [{ url: server.url }, { keyPrefix: 'a{b}' }, /keyPrefix/],
    [{ url: server.url }, { keyPrefix: '' }, /keyPrefix/],
    [{ url: server.url }, { commandTimeoutMs: 0 }, /commandTimeoutMs/],
    [{ url: server.url }, { maxAuditEntries: 1.5 }, /maxAuditEntries/]
  ]
  for (const [connection, options, message] of bad) {
    t.throws(() => createRedisBackend(connection, options), { code: 'WG_ERR_OPTIONS_INVALID', message })
  }
})

t.test('a unix:// URL may carry the database', async t => {
  const prefix = freshPrefix()
  const backend = await open(t, { url: `${server.url}?db=3` }, { keyPrefix: prefix })
  await backend.updateRoute('GET:/db', () => ({ next: state('GET:/db') }))
  const redis = client(t)
  t.equal(await redis.exists(`{${prefix}}:routes`), 0, 'not in db 0')
  await redis.select(3)
  t.equal(await redis.exists(`{${prefix}}:routes`), 1, 'in db 3')
})
