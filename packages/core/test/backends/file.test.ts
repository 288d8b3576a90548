import { spawn } from 'node:child_process'
import { existsSync, unlinkSync } from 'node:fs'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createFileBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { BackendChange, FileBackendOptions, WaygateBackend } from '@waygate/core'
import { auditEntry as entry, backendContract, routeState as state, waitFor } from '@waygate/core/testing'
import { createClock, HOUR, MINUTE, SECOND } from '../helpers/clock.js'

const childScript = fileURLToPath(new URL('../helpers/file-backend-child.ts', import.meta.url))
// the same TypeScript loader and source condition as this process; tap's mock loader is not needed there
const childExecArgv = process.execArgv.filter(arg => !arg.includes('@tapjs/mock'))

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-file-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function open (t: Test, options: FileBackendOptions): WaygateBackend {
  const backend = createFileBackend(options)
  t.teardown(() => backend.close())
  return backend
}

/** A change without its revision, for tests of what was announced. */
function withoutRevision (change: BackendChange): BackendChange {
  if (!('revision' in change)) return change
  const { revision: _revision, ...rest } = change
  return rest as BackendChange
}

/** The pid of a process that has exited. */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise(resolve => child.once('exit', resolve))
  return child.pid!
}

let files = 0
const contractDir = await mkdtemp(join(tmpdir(), 'waygate-file-contract-'))
t.teardown(() => rm(contractDir, { recursive: true, force: true }))

backendContract(t, {
  name: 'file backend',
  create: options => createFileBackend({ path: join(contractDir, `store-${++files}.json`), pollIntervalMs: 100, ...options }),
  revisions: true
})

t.test('state and audit survive a restart', async t => {
  const path = join(await tempDir(t), 'state.json')
  const first = createFileBackend({ path })
  await first.updateRoute('GET:/a', () => ({ next: state('GET:/a', { status: 'disabled', reason: 'down' }), audit: entry('r1') }))
  await first.updateGlobal(() => ({ next: { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade' } }))
  await first.close()

  const second = open(t, { path })
  const snapshot = await second.load()
  t.same(snapshot.routes, [state('GET:/a', { status: 'disabled', reason: 'down' })])
  t.match(snapshot.global, { enabled: true, reason: 'upgrade' })
  t.same(await second.listAudit(), [entry('r1')])
  t.equal(await second.appendAudit(entry('r1')), false, 'ids seen before the restart are still refused')
})

t.test('records survive a restart; those expired meanwhile do not', async t => {
  const path = join(await tempDir(t), 'state.json')
  const clock = createClock('2030-01-01T00:00:00.000Z')
  const first = createFileBackend({ path, now: clock.now })
  await first.putRecord('tokens', 'long', { by: 'alice' }, { expiresAt: clock.now() + HOUR })
  await first.putRecord('tokens', 'short', { by: 'bob' }, { expiresAt: clock.now() + MINUTE })
  await first.putRecord('policies', 'p1', { limit: 10 })
  await first.close()

  clock.advance(MINUTE)
  const second = open(t, { path, now: clock.now })
  t.same(await second.listRecords('tokens'), [{ id: 'long', value: { by: 'alice' }, expiresAt: clock.now() - MINUTE + HOUR }])
  t.equal(await second.getRecord('tokens', 'short'), null)
  t.same(await second.getRecord('policies', 'p1'), { id: 'p1', value: { limit: 10 }, expiresAt: null })
})

t.test('a file written before records existed has none, and keeps everything else on a record write', async t => {
  const path = join(await tempDir(t), 'state.json')
  const before = { version: 1, routes: { 'GET:/a': state('GET:/a', { status: 'disabled' }) }, global: null, audit: [entry('old')] }
  await writeFile(path, JSON.stringify(before))
  const backend = open(t, { path })
  t.same(await backend.listRecords('tokens'), [])
  await backend.putRecord('tokens', 'a', true)
  const doc = JSON.parse(await readFile(path, 'utf8'))
  t.same(doc, { ...before, records: { tokens: { a: { value: true, expiresAt: null } } }, revision: 1, epoch: doc.epoch },
    'the write adds the revision counter and an epoch')
  t.match(doc.epoch, /^[0-9a-f-]{36}$/)
  t.same(await backend.getRoute('GET:/a'), state('GET:/a', { status: 'disabled' }))
})

t.test('a write drops the expired records, so the file does not grow without bound', async t => {
  const path = join(await tempDir(t), 'state.json')
  const clock = createClock()
  const backend = open(t, { path, now: clock.now })
  for (let i = 0; i < 20; i++) await backend.putRecord('tokens', `t${i}`, i, { expiresAt: clock.now() + SECOND })
  await backend.putRecord('other', 'o1', 'expires too', { expiresAt: clock.now() + SECOND })
  await backend.putRecord('other', 'o2', 'kept')
  clock.advance(SECOND)
  t.equal(Object.keys(JSON.parse(await readFile(path, 'utf8')).records.tokens).length, 20, 'reads leave the file alone')
  t.same(await backend.listRecords('tokens'), [])
  await backend.putRecord('tokens', 'fresh', 'new')
  t.same(JSON.parse(await readFile(path, 'utf8')).records, {
    tokens: { fresh: { value: 'new', expiresAt: null } },
    other: { o2: { value: 'kept', expiresAt: null } }
  }, 'the write swept expired records of its namespace and of the others')
})

t.test('writes the documented format atomically and leaves no temporary or lock file', async t => {
  const dir = await tempDir(t)
  const path = join(dir, 'state.json')
  const backend = open(t, { path })
  await Promise.all(Array.from({ length: 10 }, (_, i) =>
    backend.updateRoute(`GET:/r${i}`, () => ({ next: state(`GET:/r${i}`), audit: entry(`w${i}`, { key: `GET:/r${i}` }) }))))
  t.same(await readdir(dir), ['state.json'])
  const doc = JSON.parse(await readFile(path, 'utf8'))
  t.equal(doc.version, 1)
  t.same(Object.keys(doc.routes).sort(), Array.from({ length: 10 }, (_, i) => `GET:/r${i}`).sort())
  t.equal(doc.global, null)
  t.equal(doc.audit.length, 10)
  t.same(doc.records, {}, 'an empty records section')
  await backend.putRecord('tokens', 'jti-1', { by: 'alice' }, { expiresAt: 4102444800000 })
  await backend.putRecord('tokens', 'jti-2', 'forever')
  t.same(JSON.parse(await readFile(path, 'utf8')).records, {
    tokens: {
      'jti-1': { value: { by: 'alice' }, expiresAt: 4102444800000 },
      'jti-2': { value: 'forever', expiresAt: null }
    }
  }, 'records by namespace, then id')
  await backend.deleteRecord('tokens', 'jti-1')
  await backend.deleteRecord('tokens', 'jti-2')
  t.same(JSON.parse(await readFile(path, 'utf8')).records, {}, 'a namespace without records is not kept')
})

t.test('a missing file is an empty store, created with its directory on first write', async t => {
  const dir = await tempDir(t)
  const path = join(dir, 'nested', 'deeper', 'state.json')
  const backend = open(t, { path })
  await backend.init?.()
  t.same(await backend.load(), { routes: [], global: null, revision: 0 }, 'at revision 0, with no epoch yet')
  t.same(await backend.listRecords('tokens'), [])
  t.equal(await backend.getRecord('tokens', 'a'), null)
  t.equal(await backend.deleteRecord('tokens', 'a'), false)
  t.notOk(existsSync(path), 'reading does not create the file')
  await backend.registerRoutes([state('GET:/a')])
  t.ok(existsSync(path))
  t.same(await open(t, { path }).getRoute('GET:/a'), state('GET:/a'))
})

t.test('keeps the permissions of an existing file', { skip: process.platform === 'win32' && 'no POSIX modes' }, async t => {
  const path = join(await tempDir(t), 'state.json')
  await writeFile(path, '')
  await chmod(path, 0o600)
  const backend = open(t, { path })
  await backend.registerRoutes([state('GET:/a')])
  t.equal((await stat(path)).mode & 0o777, 0o600)
})

t.test('an empty file is an empty store', async t => {
  const path = join(await tempDir(t), 'state.json')
  await writeFile(path, '')
  const backend = open(t, { path })
  t.same(await backend.load(), { routes: [], global: null, revision: 0 })
  t.same(await backend.registerRoutes([state('GET:/a')]), ['GET:/a'])
})

t.test('a corrupt file is an error, never overwritten', async t => {
  const path = join(await tempDir(t), 'state.json')
  for (const content of [
    '{"version":1,"routes":{',
    '{"version":2,"routes":{},"audit":[]}',
    '[1,2]',
    '{"version":1,"routes":{"GET:/a":{"key":"GET:/b"}}}',
    '{"version":1,"records":[]}',
    '{"version":1,"records":{"tokens":[]}}',
    '{"version":1,"records":{"tokens":{"a":{"expiresAt":null}}}}',
    '{"version":1,"records":{"tokens":{"a":{"value":1,"expiresAt":"soon"}}}}'
  ]) {
    await writeFile(path, content)
    const backend = open(t, { path })
    await t.rejects(backend.load(), { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /corrupt/ }, `load() of ${content}`)
    await t.rejects(backend.updateRoute('GET:/a', () => ({ next: state('GET:/a') })), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
    await t.rejects(backend.registerRoutes([state('GET:/a')]), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
    await t.rejects(backend.putRecord('tokens', 'a', 1), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
    await t.rejects(backend.listRecords('tokens'), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
    t.match(await backend.health(), { ok: false, detail: /corrupt/ })
    t.equal(await readFile(path, 'utf8'), content, 'the file is left as it was')
  }
  const backend = open(t, { path })
  await writeFile(path, 'nope')
  const error = await backend.load().catch((err: Error) => err)
  t.ok(error instanceof Error && error.cause instanceof SyntaxError, 'the parse error is the cause')
})

t.test('a lock left by a dead process is broken at once', async t => {
  const path = join(await tempDir(t), 'state.json')
  await writeFile(`${path}.lock`, JSON.stringify({ pid: await deadPid(), host: hostname(), token: 'gone', createdAt: new Date().toISOString() }))
  const backend = open(t, { path })
  const started = Date.now()
  await backend.registerRoutes([state('GET:/a')])
  t.ok(Date.now() - started < 1000, 'did not wait for the lock to age')
  t.same(await backend.getRoute('GET:/a'), state('GET:/a'))
  t.notOk(existsSync(`${path}.lock`), 'the lock is released')
})

t.test('a lock older than lockTimeoutMs is broken even if its process lives', async t => {
  const path = join(await tempDir(t), 'state.json')
  const old = new Date(Date.now() - 60_000).toISOString()
  await writeFile(`${path}.lock`, JSON.stringify({ pid: process.ppid, host: hostname(), token: 'old', createdAt: old }))
  const backend = open(t, { path, lockTimeoutMs: 500 })
  t.same(await backend.registerRoutes([state('GET:/a')]), ['GET:/a'])
  t.notOk(existsSync(`${path}.lock`))
})

t.test('a lock held by a live writer longer than lockTimeoutMs fails the write with a coded error', async t => {
  const path = join(await tempDir(t), 'state.json')
  const lock = `${path}.lock`
  const hold = (): Promise<void> => writeFile(lock, JSON.stringify({ pid: process.ppid, host: hostname(), token: 'busy', createdAt: new Date().toISOString() }))
  await hold()
  // a busy writer that keeps its lock fresh
  const timer = setInterval(() => { hold().catch(() => {}) }, 50)
  t.teardown(() => clearInterval(timer))
  const backend = open(t, { path, lockTimeoutMs: 300 })
  const started = Date.now()
  await t.rejects(backend.registerRoutes([state('GET:/a')]), { code: 'WG_ERR_BACKEND_UNAVAILABLE', message: /could not lock/ })
  t.ok(Date.now() - started >= 300, 'waited lockTimeoutMs')
  clearInterval(timer)
  await rm(lock, { force: true })
  t.same(await backend.registerRoutes([state('GET:/a')]), ['GET:/a'], 'works again once the lock is free')
})

t.test('an update whose lock was taken away mid-write is redone, not written blind', async t => {
  const dir = await tempDir(t)
  const path = join(dir, 'state.json')
  const backend = open(t, { path })
  await backend.registerRoutes([state('GET:/a', { reason: '0' })])
  let calls = 0
  const stored = await backend.updateRoute('GET:/a', current => {
    calls++
    // as if another process had judged our lock stale and broken it while we computed
    if (calls === 1) unlinkSync(`${path}.lock`)
    return { next: { ...current!, reason: String(Number(current!.reason) + 1) }, audit: entry(`l${calls}`) }
  })
  t.equal(calls, 2, 'the updater ran again under a new lock')
  t.equal(stored?.reason, '1')
  t.same((await backend.listAudit()).map(e => e.id), ['l2'], 'only the redone update was written')
  t.same(await readdir(dir), ['state.json'], 'the abandoned temporary file was removed')
})

t.test('changes written by another instance arrive through subscribe, without duplicates', async t => {
  const path = join(await tempDir(t), 'state.json')
  const reader = open(t, { path, pollIntervalMs: 100 })
  const writer = open(t, { path, pollIntervalMs: 100 })
  await writer.registerRoutes([state('GET:/gone')])
  await reader.init?.()
  const changes: BackendChange[] = []
  const revisions: number[] = []
  reader.subscribe(change => {
    if (change.type === 'resync') return
    if ('revision' in change && change.revision !== undefined) revisions.push(change.revision)
    changes.push(withoutRevision(change))
  })

  const disabled = state('GET:/a', { status: 'disabled', reason: 'from elsewhere' })
  const global = { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade' }
  await writer.updateRoute('GET:/a', () => ({ next: disabled, audit: entry('x1') }))
  await writer.updateGlobal(() => ({ next: global }))
  await writer.deleteRoute('GET:/gone')
  const expected: BackendChange[] = [
    { type: 'route', state: disabled },
    { type: 'global', global },
    { type: 'audit', entry: entry('x1') },
    { type: 'route_deleted', key: 'GET:/gone' }
  ]
  const has = (wanted: BackendChange): boolean => changes.some(c => JSON.stringify(c) === JSON.stringify(wanted))
  t.ok(await waitFor(() => expected.every(has), 2000), 'every change arrived within 2 s')
  t.same(await reader.getRoute('GET:/a'), disabled)
  t.ok(revisions.every((r, i) => r >= (revisions[i - 1] ?? 2) && r <= 4), `revisions of the writes, as of the read that saw them: ${revisions.join(', ')}`)
  t.equal(revisions.at(-1), 4, 'the last at the writer\'s last revision')

  // the reader's own write is announced once: immediately, not again when the watcher fires
  changes.length = 0
  await reader.updateRoute('GET:/b', () => ({ next: state('GET:/b'), audit: entry('x2') }))
  t.equal(changes.length, 2)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.same(changes, [{ type: 'route', state: state('GET:/b') }, { type: 'audit', entry: entry('x2') }])
  t.equal(revisions.at(-1), 5, 'the next revision of the shared file')
})

t.test('records changed by another instance arrive through subscribe; a swept expired one is no deletion', async t => {
  const path = join(await tempDir(t), 'state.json')
  const clock = createClock()
  const reader = open(t, { path, pollIntervalMs: 100, now: clock.now })
  const writer = open(t, { path, pollIntervalMs: 100, now: clock.now })
  await writer.putRecord('tokens', 'gone', 'to be deleted')
  await writer.putRecord('tokens', 'changed', 'before')
  await writer.putRecord('tokens', 'expiring', 'soon', { expiresAt: clock.now() + SECOND })
  await reader.init?.()
  const changes: BackendChange[] = []
  reader.subscribe(change => { if (change.type !== 'resync') changes.push(withoutRevision(change)) })

  clock.advance(SECOND)
  await writer.putRecord('tokens', 'new', { by: 'alice' }, { expiresAt: clock.now() + HOUR })
  await writer.putRecord('tokens', 'changed', 'after')
  await writer.deleteRecord('tokens', 'gone')
  await writer.putRecord('policies', 'p1', 1)
  const expected: BackendChange[] = [
    { type: 'record', namespace: 'tokens', id: 'new', record: { id: 'new', value: { by: 'alice' }, expiresAt: clock.now() + HOUR } },
    { type: 'record', namespace: 'tokens', id: 'changed', record: { id: 'changed', value: 'after', expiresAt: null } },
    { type: 'record', namespace: 'tokens', id: 'gone', record: null },
    { type: 'record', namespace: 'policies', id: 'p1', record: { id: 'p1', value: 1, expiresAt: null } }
  ]
  const has = (wanted: BackendChange): boolean => changes.some(c => JSON.stringify(c) === JSON.stringify(wanted))
  t.ok(await waitFor(() => expected.every(has), 2000), 'every change arrived within 2 s')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(changes.length, expected.length, 'nothing else: the expired record the writer swept is not announced')
  t.same(await reader.getRecord('tokens', 'changed'), { id: 'changed', value: 'after', expiresAt: null })

  // the reader's own record write is announced once: immediately, not again when the watcher fires
  changes.length = 0
  await reader.putRecord('tokens', 'mine', 1)
  t.equal(changes.length, 1)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.same(changes, [{ type: 'record', namespace: 'tokens', id: 'mine', record: { id: 'mine', value: 1, expiresAt: null } }])
})

t.test('a subscriber that never called init() is told about the first change made elsewhere', async t => {
  const path = join(await tempDir(t), 'state.json')
  const writer = open(t, { path })
  await writer.registerRoutes([state('GET:/a')])
  const reader = open(t, { path, pollIntervalMs: 100 })
  const changes: BackendChange[] = []
  reader.subscribe(change => { changes.push(change) })
  await reader.health()
  await writer.updateRoute('GET:/a', () => ({ next: state('GET:/a', { status: 'maintenance' }) }))
  t.ok(await waitFor(() => changes.length > 0), 'a change arrived')
  t.same(changes, [{ type: 'route', state: state('GET:/a', { status: 'maintenance' }), revision: 2 }], 'only the change, not the whole store, at its revision')
})

t.test('a file that turns corrupt is reported by health() and followed again once fixed', async t => {
  const path = join(await tempDir(t), 'state.json')
  const writer = open(t, { path })
  await writer.registerRoutes([state('GET:/a')])
  const reader = open(t, { path, pollIntervalMs: 100 })
  await reader.init?.()
  const changes: BackendChange[] = []
  reader.subscribe(change => { changes.push(change) })
  const good = await readFile(path, 'utf8')
  await writeFile(path, good.slice(0, 20))
  t.match(await reader.health(), { ok: false, detail: /corrupt/ })
  await writeFile(path, good.replace('"status": "active"', '"status": "disabled"'))
  t.ok(await waitFor(() => changes.length > 0), 'the fixed file is read again')
  t.same(changes, [{ type: 'route', state: state('GET:/a', { status: 'disabled' }) }])
  t.match(await reader.health(), { ok: true })
})

t.test('two processes incrementing the same counter lose no update', async t => {
  const path = join(await tempDir(t), 'shared.json')
  const children = ['p1', 'p2'].map(prefix => {
    const child = spawn(process.execPath, [...childExecArgv, childScript, path, '25', prefix], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString() })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
    t.teardown(() => { child.kill() })
    return { child, exited, out: () => out, err: () => err }
  })
  t.ok(await waitFor(() => children.every(c => c.out().includes('ready')), 30_000), 'both children started')
  for (const c of children) c.child.stdin.write('go\n')
  for (const c of children) {
    t.equal(await c.exited, 0, `child exits cleanly ${c.err()}`)
  }
  const backend = open(t, { path })
  t.equal((await backend.getRoute('GET:/counter'))?.reason, '50')
  const trail = await backend.listAudit({ limit: 1000 })
  t.equal(trail.length, 50)
  t.same(trail.map(e => e.reason), Array.from({ length: 50 }, (_, i) => String(50 - i)), 'each increment saw the one before')
  t.same(new Set(trail.map(e => e.actor)), new Set(['p1', 'p2']))
  t.equal((await backend.load()).revision, 50, 'the revision counter lost no write either: one revision per write, whichever process made it')
})

t.test('rejects invalid options', async t => {
  t.throws(() => createFileBackend({ path: '' }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createFileBackend(undefined as unknown as FileBackendOptions), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createFileBackend({ path: 'x.json', lockTimeoutMs: 0 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createFileBackend({ path: 'x.json', pollIntervalMs: 1.5 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createFileBackend({ path: 'x.json', maxAuditEntries: -1 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createFileBackend({ path: 'x.json', now: 'today' as unknown as () => number }), { code: 'WG_ERR_OPTIONS_INVALID', message: /now must be a function/ })
})
