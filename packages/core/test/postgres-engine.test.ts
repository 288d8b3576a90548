import t from 'tap'
import pg from 'pg'
import { createEngine, createEngineFromEnv, createPostgresBackend } from '@waygate/core'
import type { EngineEvent, PostgresBackendOptions, RouteHandle, WaygateEngine, WaygateLogger } from '@waygate/core'
import { startPostgres, type PostgresServer, type Teardown } from './helpers/postgres.js'

const server = await startPostgres(t)
let schemas = 0

interface Instance {
  engine: WaygateEngine
  events: EngineEvent[]
  handles: { payments: RouteHandle, orders: RouteHandle }
}

/** A started engine on the shared database, with the same routes as its siblings. */
async function instance (t: Teardown, schema: string, options: { db?: PostgresServer, backend?: PostgresBackendOptions } = {}): Promise<Instance> {
  const engine = createEngine({
    backend: createPostgresBackend({ connectionString: (options.db ?? server).url }, { schema, ...options.backend }),
    resyncIntervalMs: 0
  })
  t.teardown(() => engine.close())
  const handles = {
    payments: engine.declareRoute('GET', '/payments'),
    orders: engine.declareRoute('GET', '/orders')
  }
  const events: EngineEvent[] = []
  engine.subscribe(event => { events.push(event) })
  await engine.start()
  await engine.registerDeclaredRoutes()
  return { engine, events, handles }
}

/** Polls until `check` holds; false after `timeoutMs`. */
async function eventually (check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return true
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function captureLogger (): WaygateLogger & { lines: Array<{ level: string, msg: string }> } {
  const lines: Array<{ level: string, msg: string }> = []
  const log = (level: string) => (_obj: object, msg?: string) => { lines.push({ level, msg: msg ?? '' }) }
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

t.test('a change made through one engine is enforced by the other within a second (50 changes)', async t => {
  const schema = `e${++schemas}`
  const a = await instance(t, schema)
  const b = await instance(t, schema)
  const delays: number[] = []
  for (let i = 0; i < 50; i++) {
    const disable = i % 2 === 0
    const arrived = new Promise<number>(resolve => {
      const stop = b.engine.subscribe(event => {
        if (event.type === 'route_changed' && event.key === 'GET:/payments') {
          stop()
          resolve(performance.now())
        }
      })
    })
    const start = performance.now()
    if (disable) await a.engine.disable('GET:/payments', { reason: `change ${i}` })
    else await a.engine.enable('GET:/payments')
    delays.push(await arrived - start)
    t.equal(b.engine.decide(b.handles.payments).action, disable ? 'block' : 'pass', `change ${i} is enforced on B`)
  }
  const p50 = median(delays)
  const p95 = percentile(delays, 0.95)
  t.comment(`propagation from the call on A to B's snapshot: median ${p50.toFixed(2)} ms, p95 ${p95.toFixed(2)} ms, max ${Math.max(...delays).toFixed(2)} ms`)
  t.ok(p95 < 1000, `within a second (p95 ${p95.toFixed(2)} ms)`)
})

t.test('concurrent updates of one route from both engines leave one state and an audit entry each', async t => {
  const schema = `e${++schemas}`
  const a = await instance(t, schema)
  const b = await instance(t, schema)
  await Promise.all([
    a.engine.disable('GET:/orders', { reason: 'from A', actor: 'alice' }),
    b.engine.setMaintenance('GET:/orders', { reason: 'from B', actor: 'bob' })
  ])
  const trail = await a.engine.listAudit({ key: 'GET:/orders' })
  t.same(trail.map(e => e.actor).sort(), ['alice', 'bob'], 'two audit entries, one per update')
  const last = trail[0]!
  t.equal(last.newStatus, last.actor === 'alice' ? 'disabled' : 'maintenance', 'the newest entry names the state that won')
  t.ok(await eventually(() => a.engine.getState('GET:/orders')?.status === last.newStatus && b.engine.getState('GET:/orders')?.status === last.newStatus, 5000),
    'both engines hold the state that won')
  t.equal(trail[1]!.newStatus === trail[0]!.previousStatus, true, 'the second update saw the first: previous status of the newer entry is the older one\'s new status')
})

t.test('Postgres stopped: both keep serving, changes fail fast with a 503, one warning; started again: both follow', async t => {
  const db = await startPostgres(t)
  const schema = `e${++schemas}`
  const logger = captureLogger()
  const a = await instance(t, schema, { db, backend: { logger, maxReconnectDelayMs: 200 } })
  const b = await instance(t, schema, { db, backend: { maxReconnectDelayMs: 200 } })
  await a.engine.setMaintenance('GET:/payments', { reason: 'before the outage' })
  t.ok(await eventually(() => b.engine.decide(b.handles.payments).action === 'block', 5000))

  function decideMany (engine: WaygateEngine, handle: RouteHandle): number {
    const start = performance.now()
    for (let i = 0; i < 20_000; i++) engine.decide(handle)
    return (performance.now() - start) / 20_000 * 1e6
  }
  decideMany(b.engine, b.handles.orders)
  const before = decideMany(b.engine, b.handles.orders)
  await db.stop()
  a.events.length = 0
  b.events.length = 0
  t.ok(await eventually(async () => !(await a.engine.status()).healthy, 5000), 'A notices the outage')

  const decision = b.engine.decide(b.handles.payments)
  t.notOk(decision instanceof Promise, 'decide() stays synchronous')
  t.match(decision, { action: 'block', kind: 'maintenance', reason: 'before the outage' }, 'the last known state applies')
  t.match(a.engine.decide(a.handles.orders), { action: 'pass' })
  const during = decideMany(b.engine, b.handles.orders)
  t.comment(`decide(): ${before.toFixed(0)} ns before the outage, ${during.toFixed(0)} ns during it`)
  t.ok(during < Math.max(before * 3, 1000), 'no added latency: the request path never waits for Postgres')

  const took: number[] = []
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    const failed = await a.engine.enable('GET:/payments').catch((err: unknown) => err)
    took.push(performance.now() - started)
    t.match(failed, { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 }, `change ${i + 1} is refused with a 503`)
  }
  t.comment(`a change during the outage fails in at most ${Math.max(...took).toFixed(1)} ms`)
  t.ok(Math.max(...took) < 1000, 'each within a second: it does not hang')
  t.equal(logger.lines.filter(l => l.level === 'warn' && /lost the connection/.test(l.msg)).length, 1, 'one warning for the outage')

  await db.start()
  t.ok(await eventually(() => a.events.some(e => e.type === 'resynced') && b.events.some(e => e.type === 'resynced'), 10_000), 'both reload once Postgres is back')
  t.equal(logger.lines.filter(l => l.level === 'warn').length, 1, 'still one warning: reconnection attempts are not logged one by one')
  await a.engine.enable('GET:/payments', { actor: 'after' })
  t.ok(await eventually(() => b.engine.decide(b.handles.payments).action === 'pass', 5000), 'and follow changes again')
  t.match(await b.engine.status(), { healthy: true })
})

t.test('Postgres frozen (nothing answers): requests unaffected, a change fails with a 503 within commandTimeoutMs; thawed: both follow again', async t => {
  const db = await startPostgres(t)
  const schema = `e${++schemas}`
  const options = { commandTimeoutMs: 300, heartbeatMs: 200, maxReconnectDelayMs: 200 }
  const a = await instance(t, schema, { db, backend: options })
  const b = await instance(t, schema, { db, backend: options })
  await a.engine.disable('GET:/orders', { reason: 'before the freeze' })
  t.ok(await eventually(() => b.engine.decide(b.handles.orders).action === 'block', 5000))
  db.freeze()
  t.teardown(() => db.thaw())
  const started = performance.now()
  const failed = await a.engine.enable('GET:/orders').catch((err: unknown) => err)
  const took = performance.now() - started
  t.match(failed, { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 })
  t.comment(`a change against a frozen Postgres fails in ${took.toFixed(0)} ms (commandTimeoutMs 300)`)
  t.ok(took < 2000, 'bounded: it does not hang')
  t.match(b.engine.decide(b.handles.orders), { action: 'block', reason: 'before the freeze' }, 'requests still decided from the snapshot')
  a.events.length = 0
  b.events.length = 0
  // long enough for the heartbeats (every 200 ms, 300 ms to answer) to call it an outage
  await new Promise(resolve => setTimeout(resolve, 1500))
  db.thaw()
  t.ok(await eventually(() => a.events.some(e => e.type === 'resynced') && b.events.some(e => e.type === 'resynced'), 10_000), 'both reload after the thaw')
  await a.engine.enable('GET:/orders', { actor: 'after' })
  t.ok(await eventually(() => b.engine.decide(b.handles.orders).action === 'pass', 5000), 'and follow changes again')
})

t.test('Postgres down when the app starts: start() resolves, routes answer as declared, state arrives when it does', async t => {
  const late = await startPostgres(t, { start: false })
  const schema = `e${++schemas}`
  const engine = createEngineFromEnv({
    configFile: false,
    resyncIntervalMs: 0,
    variables: { WAYGATE_BACKEND: 'postgres', WAYGATE_POSTGRES_URL: late.url },
    postgres: { schema, maxReconnectDelayMs: 200, connectTimeoutMs: 500 }
  })
  t.teardown(() => engine.close())
  t.equal(engine.backend.kind, 'postgres', 'WAYGATE_BACKEND=postgres with WAYGATE_POSTGRES_URL needs no factory')
  const payments = engine.declareRoute('GET', '/payments', { maintenance: { reason: 'declared' } })
  const started = performance.now()
  await engine.start()
  await engine.registerDeclaredRoutes()
  t.ok(performance.now() - started < 3000, 'start() resolves without Postgres')
  t.match(engine.decide(payments), { action: 'block', reason: 'declared' }, 'as declared in code')

  await late.start()
  const other = createEngine({ backend: createPostgresBackend({ connectionString: late.url }, { schema }), resyncIntervalMs: 0 })
  t.teardown(() => other.close())
  other.declareRoute('GET', '/payments')
  await other.start()
  await other.enable('GET:/payments', { actor: 'ops' })
  t.ok(await eventually(() => engine.decide(payments).action === 'pass', 10_000), 'the stored state is applied once Postgres is reachable')
})

t.test('instances migrating an empty database at the same moment all start', async t => {
  const url = await server.createDatabase('migrate_race')
  const engines = Array.from({ length: 4 }, () => {
    const engine = createEngine({ backend: createPostgresBackend({ connectionString: url }), resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    engine.declareRoute('GET', '/payments')
    return engine
  })
  await Promise.all(engines.map(e => e.start()))
  await Promise.all(engines.map(e => e.registerDeclaredRoutes()))
  for (const engine of engines) t.match(await engine.status(), { healthy: true })
  t.same(await server.query('SELECT version FROM waygate.migrations ORDER BY version', [], 'migrate_race'), [{ version: 1 }, { version: 2 }], 'each migration ran once')
  t.same(await server.query('SELECT count(*)::int AS n FROM waygate.routes', [], 'migrate_race'), [{ n: 1 }], 'one route, registered once')
  await engines[0]!.disable('GET:/payments', { reason: 'after the race' })
  t.ok(await eventually(() => engines.every(e => e.getState('GET:/payments')?.status === 'disabled'), 5000), 'and every instance follows the others')
})

t.test('100 000 audit entries: a filtered page by actor answers in milliseconds, as SQL on the indexes', async t => {
  const schema = `e${++schemas}`
  const backend = createPostgresBackend({ connectionString: server.url }, { schema })
  t.teardown(() => backend.close())
  await backend.init?.()
  const client = new pg.Client({ connectionString: server.url })
  await client.connect()
  t.teardown(() => client.end())
  const base = Date.parse('2026-01-01T00:00:00.000Z')
  // one bulk INSERT: 100 000 entries over 100 000 minutes, 50 actors, 200 routes
  await client.query(`INSERT INTO ${schema}.audit (id, ts, key, service, action, actor, platform, entry)
    SELECT 'bulk-' || i, ts, key, NULL, action, actor, 'api',
      json_build_object('id', 'bulk-' || i, 'timestamp', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'key', key, 'service', NULL,
        'action', action, 'actor', actor, 'platform', 'api', 'reason', '', 'previousStatus', 'active', 'newStatus', 'disabled')
    FROM (
      SELECT i, to_timestamp($1::double precision / 1000 + i * 60) AS ts, 'GET:/r' || (i % 200) AS key,
        CASE WHEN i % 2 = 0 THEN 'disable' ELSE 'enable' END AS action, 'user' || (i % 50) AS actor
      FROM generate_series(1, 100000) AS i
    ) AS rows`, [base])
  await client.query(`UPDATE ${schema}.meta SET audit_count = (SELECT count(*) FROM ${schema}.audit)`)
  await client.query(`ANALYZE ${schema}.audit`)

  const timings: number[] = []
  let page = await backend.listAudit({ actor: 'user7', limit: 50 })
  for (let i = 0; i < 20; i++) {
    const start = performance.now()
    page = await backend.listAudit({ actor: 'user7', limit: 50 })
    timings.push(performance.now() - start)
  }
  t.equal(page.length, 50)
  t.ok(page.every(e => e.actor === 'user7'), 'only that actor')
  t.equal(page[0]!.id, 'bulk-99957', 'newest first')
  const next = await backend.listAudit({ actor: 'user7', limit: 50, before: page[49]!.id })
  t.equal(next[0]!.id, `bulk-${99957 - 50 * 50}`, 'the next page starts right after the cursor')
  const cursorTimings: number[] = []
  for (let i = 0; i < 20; i++) {
    const start = performance.now()
    await backend.listAudit({ actor: 'user7', limit: 50, before: page[49]!.id })
    cursorTimings.push(performance.now() - start)
  }
  const ranged = await backend.listAudit({ key: 'GET:/r7', since: new Date(base + 50_000 * 60_000).toISOString(), limit: 10 })
  t.ok(ranged.length === 10 && ranged.every(e => e.key === 'GET:/r7'), 'a key with a time range')
  const plan = (await client.query(`EXPLAIN SELECT entry FROM ${schema}.audit WHERE actor = 'user7' ORDER BY seq DESC LIMIT 51`)).rows.map(r => String(r['QUERY PLAN'])).join('\n')
  t.match(plan, /audit_actor/, 'the actor filter uses its index')
  t.comment(`100 000 entries, page of 50 by actor: median ${median(timings).toFixed(2)} ms, p95 ${percentile(timings, 0.95).toFixed(2)} ms; with a cursor: median ${median(cursorTimings).toFixed(2)} ms`)
  t.ok(median(timings) < 100, `milliseconds, not a scan (median ${median(timings).toFixed(2)} ms)`)
})

t.test('audit retention: entries older than maxAgeDays are pruned in the background', async t => {
  const schema = `e${++schemas}`
  const now = Date.parse('2026-06-01T00:00:00.000Z')
  const backend = createPostgresBackend({ connectionString: server.url }, { schema, now: () => now, auditRetention: { maxAgeDays: 30 }, pruneIntervalMs: 50 })
  t.teardown(() => backend.close())
  await backend.init?.()
  const entry = (id: string, daysAgo: number) => ({
    id,
    timestamp: new Date(now - daysAgo * 86_400_000).toISOString(),
    key: 'GET:/a',
    service: null,
    action: 'disable' as const,
    actor: 'alice',
    platform: 'api' as const,
    reason: '',
    previousStatus: 'active' as const,
    newStatus: 'disabled' as const
  })
  await backend.appendAudit(entry('old', 45))
  await backend.appendAudit(entry('recent', 10))
  await backend.putRecord('tokens', 'expired', 1, { expiresAt: now + 1 })
  t.ok(await eventually(async () => (await backend.listAudit()).length === 1, 5000), 'the old entry is pruned')
  t.same((await backend.listAudit()).map(e => e.id), ['recent'])
})
