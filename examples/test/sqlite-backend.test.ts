import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createEngine, defaultGlobalMaintenance, type AuditEntry } from '@waygate/core'
import { auditEntry as buildAuditEntry, backendContract, routeState } from '@waygate/core/testing'
import { createSqliteBackend } from '../sqlite-backend.js'

const contractDir = t.testdir()
let files = 0

// the same suite the built-in backends pass: what the engine relies on
await backendContract(t, {
  name: 'sqlite backend contract',
  create: options => createSqliteBackend({ path: join(contractDir, `contract-${++files}.sqlite`), ...options })
})

// a `platform: 'api'` entry, as the REST API would write it
const auditEntry = (id: string, fields: Partial<AuditEntry> = {}): AuditEntry => buildAuditEntry(id, { platform: 'api', ...fields })

t.test('state, global maintenance, audit and records survive closing and reopening the file', async t => {
  const path = join(t.testdir(), 'nested', 'dir', 'waygate.sqlite')
  const first = createSqliteBackend({ path })
  await first.init?.()
  const disabled = routeState('GET:/a', { status: 'disabled', reason: 'hotfix' })
  await first.updateRoute('GET:/a', () => ({ next: disabled, audit: auditEntry('one') }))
  const on = { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade', exemptPaths: ['/health'] }
  await first.updateGlobal(() => ({ next: on, audit: auditEntry('two', { key: '*', action: 'global_maintenance_on' }) }))
  await first.putRecord('tokens', 'revoked-1', { by: 'alice' }, { expiresAt: Date.parse('2099-01-01T00:00:00Z') })
  await first.close()

  const second = createSqliteBackend({ path })
  t.teardown(() => second.close())
  await second.init?.()
  t.same(await second.load(), { routes: [disabled], global: on })
  t.same((await second.listAudit()).map(e => e.id), ['two', 'one'])
  t.same(await second.listRecords('tokens'), [{ id: 'revoked-1', value: { by: 'alice' }, expiresAt: Date.parse('2099-01-01T00:00:00Z') }])
})

t.test('the file is a real SQLite database with one table per record kind', async t => {
  const path = join(t.testdir(), 'waygate.sqlite')
  const backend = createSqliteBackend({ path })
  t.teardown(() => backend.close())
  await backend.registerRoutes([routeState('GET:/a')])
  const bytes = await readFile(path)
  t.equal(bytes.subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
  for (const table of ['waygate_routes', 'waygate_global', 'waygate_audit', 'waygate_records']) {
    t.ok(bytes.includes(Buffer.from(`CREATE TABLE ${table}`)), `has ${table}`)
  }
})

t.test('a file that is not a SQLite database is reported, not overwritten', async t => {
  const path = join(t.testdir(), 'waygate.sqlite')
  await writeFile(path, 'this is not a database, and it is not ours to replace')
  const backend = createSqliteBackend({ path })
  t.teardown(() => backend.close())
  await t.rejects(backend.load(), { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /not a usable waygate database/ })
  await t.rejects(backend.updateRoute('GET:/a', () => ({ next: routeState('GET:/a') })), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
  t.match(await backend.health(), { ok: false, detail: /not a usable waygate database/ })
  t.equal(await readFile(path, 'utf8'), 'this is not a database, and it is not ours to replace')
})

t.test('a write that cannot reach the file changes nothing and announces nothing', async t => {
  const path = join(t.testdir(), 'waygate.sqlite')
  const backend = createSqliteBackend({ path })
  t.teardown(() => backend.close())
  const kept = routeState('GET:/a', { reason: 'stored' })
  await backend.updateRoute('GET:/a', () => ({ next: kept }))
  const changes: unknown[] = []
  backend.subscribe(change => { changes.push(change) })

  // a non-empty directory where the file was: the rename over it fails, even for root
  const bytes = await readFile(path)
  await rm(path)
  await mkdir(path)
  await writeFile(join(path, 'occupied'), '')
  await t.rejects(backend.updateRoute('GET:/a', () => ({ next: routeState('GET:/a', { reason: 'lost' }) })),
    { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /cannot write/ })
  t.same(changes, [], 'nothing announced')

  await rm(path, { recursive: true })
  await writeFile(path, bytes)
  t.same(await backend.getRoute('GET:/a'), kept, 'the state is the one in the file, not the failed write')
  await backend.updateRoute('GET:/a', () => ({ next: routeState('GET:/a', { reason: 'written' }) }))
  t.equal((await backend.getRoute('GET:/a'))?.reason, 'written', 'writes work again once the file is reachable')
})

t.test('a closed backend refuses further calls', async t => {
  const backend = createSqliteBackend({ path: join(t.testdir(), 'waygate.sqlite') })
  await backend.init?.()
  await backend.close()
  await backend.close()
  await t.rejects(backend.load(), { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /closed/ })
})

t.test('invalid options are refused at creation', async t => {
  t.throws(() => createSqliteBackend({ path: '' }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createSqliteBackend({ path: 'x.sqlite', maxAuditEntries: 0 }), { code: 'WG_ERR_OPTIONS_INVALID' })
})

t.test('the engine runs on it: mutations, audit and restart', async t => {
  const path = join(t.testdir(), 'waygate.sqlite')
  const engine = createEngine({ backend: createSqliteBackend({ path }), resyncIntervalMs: 0 })
  engine.declareRoute('GET', '/orders')
  await engine.start()
  await engine.registerDeclaredRoutes()
  await engine.disable('GET:/orders', { reason: 'hotfix', actor: 'alice' })
  t.equal(engine.getState('GET:/orders')?.status, 'disabled', 'the snapshot follows the write at once')
  await engine.close()

  const again = createEngine({ backend: createSqliteBackend({ path }), resyncIntervalMs: 0 })
  t.teardown(() => again.close())
  again.declareRoute('GET', '/orders')
  await again.start()
  t.match(again.getState('GET:/orders'), { status: 'disabled', reason: 'hotfix', updatedBy: 'alice' })
  t.match(await again.listAudit(), [{ action: 'disable', actor: 'alice', previousStatus: 'active', newStatus: 'disabled' }])
  t.equal((await again.status()).backend, 'sqlite')
})
