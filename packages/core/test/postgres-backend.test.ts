// What the Postgres backend does beyond the contract: a pool handed in, schemas, migrations, a change
// too big to notify, the durable webhook outbox, pg loaded only when needed.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import pg from 'pg'
import { createPostgresBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { BackendChange, PostgresBackendOptions, PostgresConnection, WaygateBackend } from '@waygate/core'
import { auditEntry as entry, routeState as state, waitFor } from '@waygate/core/testing'
import { startPostgres, type Teardown } from './helpers/postgres.js'

const server = await startPostgres(t)
let schemas = 0

function freshSchema (): string {
  return `b${++schemas}`
}

async function open (t: Teardown, connection: PostgresConnection, options: PostgresBackendOptions = {}): Promise<WaygateBackend> {
  const backend = createPostgresBackend(connection, options)
  t.teardown(() => backend.close())
  await backend.init?.()
  return backend
}

function record (backend: WaygateBackend): BackendChange[] {
  const changes: BackendChange[] = []
  backend.subscribe(change => { changes.push(change) })
  return changes
}

t.test('a pool handed in is used and never ended; its tables sit in the schema asked for', async t => {
  const pool = new pg.Pool({ connectionString: server.url, max: 4 })
  t.teardown(() => pool.end())
  const schema = freshSchema()
  const backend = createPostgresBackend({ pool }, { schema })
  await backend.init?.()
  await backend.updateRoute('GET:/a', () => ({ next: state('GET:/a', { status: 'disabled' }), audit: entry('k1') }))
  await backend.close()
  t.same((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the pool still answers after close()')
  const tables = (await pool.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema])).rows.map(r => r.table_name)
  t.same(tables, ['audit', 'config', 'meta', 'migrations', 'outbox', 'outbox_dead', 'records', 'routes'])
  t.match((await pool.query(`SELECT state FROM ${schema}.routes WHERE key = 'GET:/a'`)).rows[0].state, { key: 'GET:/a', status: 'disabled' }, 'a route is JSON in a row')
  t.equal(pool.totalCount <= 4, true)
})

t.test('schemas do not see each other', async t => {
  const a = await open(t, { connectionString: server.url }, { schema: freshSchema() })
  const b = await open(t, { connectionString: server.url }, { schema: freshSchema() })
  const seenByB = record(b)
  await a.updateRoute('GET:/a', () => ({ next: state('GET:/a') }))
  await a.updateGlobal(() => ({ next: { ...defaultGlobalMaintenance(), enabled: true } }))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.same(seenByB, [], 'no change crosses over')
  const empty = await b.load()
  t.same(empty, { routes: [], global: null, revision: 0, epoch: empty.epoch })
  t.not(empty.epoch, (await a.load()).epoch, 'each schema has its own epoch')
})

t.test('changes reach the other instance in order with their revisions; a change too big to notify makes it reload', async t => {
  const schema = freshSchema()
  const a = await open(t, { connectionString: server.url }, { schema })
  const b = await open(t, { connectionString: server.url }, { schema })
  const seenByB = record(b)
  const disabled = state('GET:/a', { status: 'disabled', reason: 'incident' })
  await a.updateRoute('GET:/a', () => ({ next: disabled, audit: entry('p1') }))
  await a.putRecord('tokens', 'j1', { by: 'bob' })
  await a.deleteRoute('GET:/a')
  t.ok(await waitFor(() => seenByB.length === 4))
  t.same(seenByB, [
    { type: 'route', state: disabled, revision: 1 },
    { type: 'audit', entry: entry('p1') },
    { type: 'record', namespace: 'tokens', id: 'j1', record: { id: 'j1', value: { by: 'bob' }, expiresAt: null }, revision: 2 },
    { type: 'route_deleted', key: 'GET:/a', revision: 3 }
  ])
  seenByB.length = 0
  await a.registerRoutes(Array.from({ length: 100 }, (_, i) => state(`GET:/many/${i}`, { reason: 'x'.repeat(100) })))
  t.ok(await waitFor(() => seenByB.some(c => c.type === 'resync')), 'B is told to reload')
  t.equal((await b.load()).routes.length, 100, 'and finds every route')
})

t.test('a record id Postgres text cannot hold is refused as input, not a 503', async t => {
  const backend = await open(t, { connectionString: server.url }, { schema: freshSchema() })
  await t.rejects(backend.putRecord('tokens', 'a\u0000b', 1), { code: 'WG_ERR_INPUT_INVALID' })
  t.equal(await backend.getRecord('tokens', 'a\u0000b'), null)
})

t.test('a schema migrated by a newer waygate is refused, not written to', async t => {
  const schema = freshSchema()
  const first = await open(t, { connectionString: server.url }, { schema })
  await first.close()
  await server.query(`INSERT INTO ${schema}.migrations (version) VALUES (999)`)
  const backend = createPostgresBackend({ connectionString: server.url }, { schema, connectTimeoutMs: 300, maxReconnectDelayMs: 100 })
  t.teardown(() => backend.close())
  await backend.init?.()
  t.match(await backend.health(), { ok: false, detail: /version 999, newer than this waygate knows/ })
  await t.rejects(backend.updateRoute('GET:/a', () => ({ next: state('GET:/a') })), { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 })
})

t.test('invalid options are refused at creation, listing the option', async t => {
  const bad: Array<[PostgresConnection, PostgresBackendOptions, RegExp]> = [
    [{ connectionString: '' }, {}, /connectionString/],
    [{ pool: {} as never }, {}, /pool must be a pg Pool/],
    [{ connectionString: server.url }, { schema: 'Bad-Name' }, /schema must be/],
    [{ connectionString: server.url }, { auditRetention: { maxAgeDays: 0 } }, /maxAgeDays/],
    [{ connectionString: server.url }, { commandTimeoutMs: -1 }, /commandTimeoutMs/]
  ]
  for (const [connection, options, message] of bad) {
    t.throws(() => createPostgresBackend(connection, options), { code: 'WG_ERR_OPTIONS_INVALID', message })
  }
})

t.test('the webhook outbox: deliveries stored with their change, claimed exclusively until the lease ends, dead letters retried', async t => {
  const schema = freshSchema()
  const backend = await open(t, { connectionString: server.url }, { schema })
  const other = await open(t, { connectionString: server.url }, { schema })
  const outbox = backend.outbox!
  const audit = entry('e-pg')
  const delivery = { id: 'ab'.repeat(16), eventId: audit.id, event: 'disable', key: 'GET:/x', webhook: 'w1', target: 'http://x', body: '{"a":1}', createdAt: Date.now() }
  t.equal(await backend.appendAudit(audit, [delivery]), true)
  t.equal(await backend.appendAudit(audit, [{ ...delivery, id: 'cd'.repeat(16) }]), false, 'a known audit id stores no deliveries')
  t.equal(await outbox.pendingCount(), 1)
  const now = Date.now()
  t.same((await outbox.claim({ webhooks: ['w2'], now, leaseUntil: now + 1000, limit: 10 })).claims, [], 'only known webhooks are claimed')
  const one = await outbox.claim({ webhooks: ['w1'], now, leaseUntil: now + 1000, limit: 10 })
  t.match(one, { claims: [{ attempts: 1, delivery }], nextDueAt: now + 1000 })
  t.same((await other.outbox!.claim({ webhooks: ['w1'], now, leaseUntil: now + 1000, limit: 10 })).claims, [], 'not twice within the lease, not by another instance')
  const later = await other.outbox!.claim({ webhooks: ['w1'], now: now + 1000, leaseUntil: now + 2000, limit: 10 })
  t.equal(later.claims[0]?.attempts, 2, 'again once the lease ended')
  t.equal(await outbox.complete(one.claims[0]!), false, 'the first claimer lost it')
  t.equal(await other.outbox!.fail(later.claims[0]!, now + 5000, 'answered 500', now), true, 'due again later')
  t.same((await outbox.claim({ webhooks: ['w1'], now: now + 4999, leaseUntil: now + 6000, limit: 10 })).claims, [], 'not before its retry time')
  const third = await outbox.claim({ webhooks: ['w1'], now: now + 5000, leaseUntil: now + 6000, limit: 10 })
  t.equal(await outbox.fail(third.claims[0]!, null, 'answered 410', now), true, 'dead')
  t.equal(await outbox.pendingCount(), 0)
  t.match(await outbox.listDead(), [{ attempts: 3, lastError: 'answered 410', delivery }])
  t.equal(await outbox.retryDead(delivery.id, now), true)
  const again = await outbox.claim({ webhooks: ['w1'], now, leaseUntil: now + 1000, limit: 10 })
  t.equal(again.claims[0]?.attempts, 1, 'retried with its attempts starting over')
  t.equal(await outbox.complete(again.claims[0]!), true)
  t.equal(await outbox.pendingCount(), 0, 'sent')
  t.equal(await outbox.deleteDead(delivery.id), false)

  // a route change and its delivery are one transaction: both or neither
  const d2 = { ...delivery, id: 'ef'.repeat(16), eventId: 'e-route' }
  await backend.updateRoute('GET:/x', () => ({ next: state('GET:/x', { status: 'disabled' }), audit: entry('e-route', { key: 'GET:/x' }), deliveries: [d2] }))
  t.equal(await outbox.pendingCount(), 1, 'stored with the change')
  await t.rejects(backend.updateRoute('GET:/y', () => { throw new Error('refused') }))
  t.equal(await outbox.pendingCount(), 1)
})

// pg is an optional peer: an app on memory, file or Redis state never loads it, and neither does a backend handed a pool
const probe = `
import { createRequire } from 'node:module'
const core = await import(process.argv[1])
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some(f => /[\\\\/]node_modules[\\\\/]pg[\\\\/]/.test(f))
const engine = core.createEngine({ backend: core.createMemoryBackend() })
await engine.start()
await engine.close()
const before = loaded()
core.createPostgresBackend({ pool: { connect: async () => { throw new Error('no') }, query: async () => ({ rows: [] }) } })
const withPool = loaded()
await core.createPostgresBackend({ connectionString: 'postgres://127.0.0.1:1/x' }).close()
console.log(JSON.stringify({ before, withPool, after: loaded() }))
`

t.test('importing @waygate/core and running a memory engine does not load pg; a pool handed in does not either; a connection string does', async t => {
  const childExecArgv = process.execArgv.filter(arg => !arg.includes('@tapjs/mock'))
  const coreEntry = new URL('../src/index.ts', import.meta.url).href
  const { stdout } = await promisify(execFile)(process.execPath, [...childExecArgv, '--input-type=module', '-e', probe, coreEntry], { timeout: 20_000 })
  t.same(JSON.parse(stdout.trim().split('\n').pop() ?? ''), { before: false, withPool: false, after: true })
})
