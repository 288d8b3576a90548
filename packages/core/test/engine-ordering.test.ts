import { mkdtemp, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createEngine, createFileBackend, createMemoryBackend, createRedisBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { BackendChange, BackendSnapshot, EngineEvent, WaygateBackend, WaygateEngine } from '@waygate/core'
import { routeState, waitFor } from '@waygate/core/testing'
import { startRedisServer } from './helpers/redis-server.js'

const server = await startRedisServer(t)
let prefixes = 0

async function tempFile (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-ordering-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'state.json')
}

/**
 * A backend whose `load()` reads, then, while armed, waits on a gate before resolving: the
 * window in which a change can arrive after the read and before the snapshot is applied.
 */
interface Gated {
  backend: WaygateBackend
  /** The next load waits after reading; resolves once that read is done. */
  arm (): Promise<void>
  /** Lets the waiting load resolve. */
  open (): void
}

function gated (inner: WaygateBackend): Gated {
  let armed: { read: () => void, gate: Promise<void> } | null = null
  let release: () => void = () => {}
  let readDone: Promise<void> = Promise.resolve()
  const backend: WaygateBackend = {
    ...inner,
    async load (): Promise<BackendSnapshot> {
      // taken when the load starts: a reload the backend asked for earlier is not held
      const waiting = armed
      armed = null
      const snapshot = await inner.load()
      if (waiting !== null) {
        waiting.read()
        await waiting.gate
      }
      return snapshot
    }
  }
  return {
    backend,
    arm () {
      let read: () => void = () => {}
      readDone = new Promise(resolve => { read = resolve })
      const gate = new Promise<void>(resolve => { release = resolve })
      armed = { read, gate }
      return readDone
    },
    open () { release() }
  }
}

async function engineOn (t: Test, backend: WaygateBackend): Promise<WaygateEngine> {
  const engine = createEngine({ backend, resyncIntervalMs: 0 })
  t.teardown(() => engine.close())
  engine.declareRoute('GET', '/payments')
  engine.declareRoute('GET', '/orders')
  await engine.start()
  await engine.registerDeclaredRoutes()
  return engine
}

/**
 * The interleaving: a reload reads, a change is applied while the read is on its way,
 * then the reload lands. `change` makes the change (through `engine` or another writer) and
 * resolves once `engine` shows it.
 */
async function changeDuringLoad (t: Test, g: Gated, engine: WaygateEngine, change: () => Promise<void>): Promise<void> {
  const read = g.arm()
  const reload = engine.resync()
  await read
  await change()
  t.equal(engine.getState('GET:/payments')?.status, 'disabled', 'the change is applied while the load is in flight')
  t.equal(engine.getGlobal().enabled, true, 'global maintenance too')
  g.open()
  await reload
  t.equal(engine.getState('GET:/payments')?.status, 'disabled', 'the reload that read before the change does not roll it back')
  t.equal(engine.getGlobal().enabled, true, 'nor global maintenance')
  t.equal(engine.getState('GET:/orders')?.status, 'active', 'the other route is as stored')
  await engine.resync()
  t.equal(engine.getState('GET:/payments')?.status, 'disabled', 'and a later reload agrees')
  t.equal(engine.getGlobal().enabled, true)
}

async function throughEngine (engine: WaygateEngine): Promise<void> {
  await engine.disable('GET:/payments', { reason: 'fraud' })
  await engine.enableGlobalMaintenance({ reason: 'upgrade' })
}

async function throughOther (watcher: WaygateEngine, writer: WaygateEngine): Promise<void> {
  await throughEngine(writer)
  t.ok(await waitFor(() => watcher.getState('GET:/payments')?.status === 'disabled' && watcher.getGlobal().enabled, 5000),
    'the change reached the watching engine')
}

t.test('a change delivered while a slow load() is in flight is not rolled back', async t => {
  t.test('memory backend', async t => {
    const g = gated(createMemoryBackend())
    const engine = await engineOn(t, g.backend)
    await changeDuringLoad(t, g, engine, () => throughEngine(engine))
  })

  t.test('file backend, change made by the same engine', async t => {
    const g = gated(createFileBackend({ path: await tempFile(t), pollIntervalMs: 50 }))
    const engine = await engineOn(t, g.backend)
    await changeDuringLoad(t, g, engine, () => throughEngine(engine))
  })

  t.test('file backend, change made by another engine on the same file', async t => {
    const path = await tempFile(t)
    const g = gated(createFileBackend({ path, pollIntervalMs: 50 }))
    const engine = await engineOn(t, g.backend)
    const other = await engineOn(t, createFileBackend({ path, pollIntervalMs: 50 }))
    await changeDuringLoad(t, g, engine, () => throughOther(engine, other))
  })

  t.test('redis backend, change made by the same engine', async t => {
    const g = gated(createRedisBackend({ url: server.url }, { keyPrefix: `o${++prefixes}` }))
    const engine = await engineOn(t, g.backend)
    await changeDuringLoad(t, g, engine, () => throughEngine(engine))
  })

  t.test('redis backend, change made by another engine on the same redis', async t => {
    const prefix = `o${++prefixes}`
    const g = gated(createRedisBackend({ url: server.url }, { keyPrefix: prefix }))
    const engine = await engineOn(t, g.backend)
    const other = await engineOn(t, createRedisBackend({ url: server.url }, { keyPrefix: prefix }))
    await changeDuringLoad(t, g, engine, () => throughOther(engine, other))
  })
})

t.test('a route deleted while a load is in flight stays deleted; one re-added stays', async t => {
  const g = gated(createMemoryBackend())
  const engine = await engineOn(t, g.backend)
  await g.backend.updateRoute('GET:/extra', () => ({ next: routeState('GET:/extra') }))
  t.ok(engine.getState('GET:/extra'))
  const read = g.arm()
  const reload = engine.resync()
  await read
  await g.backend.deleteRoute('GET:/extra')
  await g.backend.updateRoute('GET:/late', () => ({ next: routeState('GET:/late', { status: 'maintenance' }) }))
  g.open()
  await reload
  t.equal(engine.getState('GET:/extra'), null, 'the deletion made after the read holds')
  t.equal(engine.getState('GET:/late')?.status, 'maintenance', 'a route added after the read is kept')

  const read2 = g.arm()
  const reload2 = engine.resync()
  await read2
  await g.backend.updateRoute('GET:/extra', () => ({ next: routeState('GET:/extra', { status: 'disabled' }) }))
  g.open()
  await reload2
  t.equal(engine.getState('GET:/extra')?.status, 'disabled', 'a route re-added after the read is kept')
})

/** A backend the test feeds by hand: changes and snapshots with whatever revisions it likes. */
function scripted (): { backend: WaygateBackend, push: (change: BackendChange) => void, next: (snapshot: BackendSnapshot) => void } {
  const inner = createMemoryBackend()
  const listeners = new Set<(change: BackendChange) => void>()
  let snapshot: BackendSnapshot = { routes: [], global: null, revision: 0, epoch: 'one' }
  return {
    backend: {
      ...inner,
      kind: 'scripted',
      async load () { return structuredClone(snapshot) },
      subscribe (listener) {
        listeners.add(listener)
        return () => { listeners.delete(listener) }
      }
    },
    push (change) { for (const listener of listeners) listener(change) },
    next (s) { snapshot = s }
  }
}

t.test('a stale or repeated change is dropped', async t => {
  const s = scripted()
  const engine = await engineOn(t, s.backend)
  const events: EngineEvent[] = []
  engine.subscribe(e => { events.push(e) })

  s.push({ type: 'route', state: routeState('GET:/payments', { status: 'disabled' }), revision: 10 })
  t.equal(engine.getState('GET:/payments')?.status, 'disabled')
  t.equal(engine.revision, 10)
  s.push({ type: 'route', state: routeState('GET:/payments', { status: 'maintenance' }), revision: 9 })
  t.equal(engine.getState('GET:/payments')?.status, 'disabled', 'an older revision of the key is dropped')
  s.push({ type: 'route', state: routeState('GET:/payments', { status: 'maintenance' }), revision: 10 })
  t.equal(engine.getState('GET:/payments')?.status, 'disabled', 'a repeated revision is dropped')
  s.push({ type: 'route_deleted', key: 'GET:/payments', revision: 8 })
  t.equal(engine.getState('GET:/payments')?.status, 'disabled', 'an older deletion is dropped')
  t.equal(events.length, 1, 'only the first change was announced')
  t.match(events[0], { type: 'route_changed', revision: 10, stored: { status: 'disabled' } })

  s.push({ type: 'route', state: routeState('GET:/orders', { status: 'maintenance' }), revision: 9 })
  t.equal(engine.getState('GET:/orders')?.status, 'maintenance', 'revisions are held per key: another key at 9 applies')
  t.equal(engine.revision, 10, 'the engine revision is the highest applied')

  s.push({ type: 'global', global: { ...defaultGlobalMaintenance(), enabled: true }, revision: 11 })
  s.push({ type: 'global', global: defaultGlobalMaintenance(), revision: 11 })
  t.equal(engine.getGlobal().enabled, true, 'global maintenance is ordered the same way')

  s.push({ type: 'record', namespace: 'ns', id: 'a', record: { id: 'a', value: 2, expiresAt: null }, revision: 12 })
  s.push({ type: 'record', namespace: 'ns', id: 'a', record: { id: 'a', value: 1, expiresAt: null }, revision: 12 })
  t.same(events.filter(e => e.type === 'record_changed').map(e => e.type === 'record_changed' && e.revision), [12], 'a repeated record change is dropped')

  s.push({ type: 'route', state: routeState('GET:/payments', { status: 'active' }) })
  t.equal(engine.getState('GET:/payments')?.status, 'active', 'a change without a revision applies as it always did')

  t.test('a snapshot older than what the engine holds changes nothing it holds', async t => {
    s.next({ routes: [routeState('GET:/orders')], global: null, revision: 5, epoch: 'one' })
    await engine.resync()
    t.equal(engine.getState('GET:/orders')?.status, 'maintenance')
    t.equal(engine.getGlobal().enabled, true)
  })
})

t.test('a snapshot with another epoch replaces everything', async t => {
  const s = scripted()
  s.next({ routes: [routeState('GET:/payments', { status: 'disabled' })], global: null, revision: 50, epoch: 'one' })
  const engine = await engineOn(t, s.backend)
  t.equal(engine.getState('GET:/payments')?.status, 'disabled')
  s.push({ type: 'route', state: routeState('GET:/orders', { status: 'maintenance' }), revision: 60 })
  t.equal(engine.revision, 60)
  t.same(engine.storedSnapshot(), {
    revision: 60,
    epoch: 'one',
    routes: [routeState('GET:/orders', { status: 'maintenance' }), routeState('GET:/payments', { status: 'disabled' })],
    global: defaultGlobalMaintenance()
  }, 'storedSnapshot() is the raw stored state, sorted by key')

  s.next({ routes: [routeState('GET:/payments')], global: null, revision: 3, epoch: 'two' })
  await engine.resync()
  t.equal(engine.getState('GET:/payments')?.status, 'active', 'the new history replaces an older revision')
  t.equal(engine.getState('GET:/orders')?.status, 'active', 'and a key held at a higher revision: back to its declared state')
  t.equal(engine.revision, 3)
  t.equal(engine.storedSnapshot().epoch, 'two')
  s.push({ type: 'route', state: routeState('GET:/orders', { status: 'disabled' }), revision: 4 })
  t.equal(engine.getState('GET:/orders')?.status, 'disabled', 'changes of the new history apply')
})

t.test('a redis pub/sub gap makes the engine reload', async t => {
  const prefix = `o${++prefixes}`
  const engine = await engineOn(t, createRedisBackend({ url: server.url }, { keyPrefix: prefix }))
  const other = await engineOn(t, createRedisBackend({ url: server.url }, { keyPrefix: prefix }))
  const events: EngineEvent[] = []
  engine.subscribe(e => { events.push(e) })
  // a change whose message never arrives: stored and counted, not published
  await server.command('HSET', `{${prefix}}:routes`, 'GET:/orders', JSON.stringify(routeState('GET:/orders', { status: 'maintenance' })))
  await server.command('INCR', `{${prefix}}:seq`)
  t.equal(engine.getState('GET:/orders')?.status, 'active', 'the lost change is not known yet')
  await other.disable('GET:/payments')
  t.ok(await waitFor(() => engine.getState('GET:/orders')?.status === 'maintenance'), 'the next message shows a gap: the engine reloads')
  t.equal(engine.getState('GET:/payments')?.status, 'disabled')
  t.ok(events.some(e => e.type === 'resynced'), 'a reload took place')
})

t.test('revisions only grow across two engines sharing storage', async t => {
  async function alternate (t: Test, a: WaygateEngine, b: WaygateEngine): Promise<void> {
    const seen: number[] = []
    a.subscribe(e => { if (e.type === 'route_changed' && e.revision !== null) seen.push(e.revision) })
    const writes: number[] = []
    for (let i = 0; i < 6; i++) {
      const writer = i % 2 === 0 ? a : b
      await (i % 3 < 2 ? writer.disable('GET:/payments', { reason: `r${i}` }) : writer.enable('GET:/payments'))
      writes.push(writer.revision)
      t.ok(await waitFor(() => a.revision >= writer.revision && b.revision >= writer.revision, 5000), `write ${i} reached both engines`)
    }
    t.ok(writes.every((r, i) => i === 0 || r > writes[i - 1]!), `each write has a higher revision than the one before: ${writes.join(', ')}`)
    t.ok(seen.every((r, i) => i === 0 || r > seen[i - 1]!), `an engine sees revisions grow: ${seen.join(', ')}`)
    t.equal(a.revision, b.revision, 'both engines end at the same revision')
    const reloaded = a.revision
    await a.resync()
    t.equal(a.revision, reloaded, 'a reload reads the same revision')
  }

  t.test('file', async t => {
    const path = await tempFile(t)
    const a = await engineOn(t, createFileBackend({ path, pollIntervalMs: 50 }))
    const b = await engineOn(t, createFileBackend({ path, pollIntervalMs: 50 }))
    await alternate(t, a, b)
  })

  t.test('redis', async t => {
    const prefix = `o${++prefixes}`
    const a = await engineOn(t, createRedisBackend({ url: server.url }, { keyPrefix: prefix }))
    const b = await engineOn(t, createRedisBackend({ url: server.url }, { keyPrefix: prefix }))
    await alternate(t, a, b)
  })
})

t.test('a file replaced by a new history replaces what engines hold', async t => {
  const path = await tempFile(t)
  const engine = await engineOn(t, createFileBackend({ path, pollIntervalMs: 50 }))
  for (let i = 0; i < 5; i++) await engine.disable('GET:/payments', { reason: `r${i}` })
  t.equal(engine.getState('GET:/payments')?.status, 'disabled')
  await unlink(path)
  const fresh = createFileBackend({ path })
  await fresh.updateRoute('GET:/orders', () => ({ next: routeState('GET:/orders', { status: 'maintenance' }) }))
  await fresh.close()
  t.ok(await waitFor(() => engine.getState('GET:/orders')?.status === 'maintenance', 5000), 'the new file is followed though its revisions start again')
  t.equal(engine.getState('GET:/payments')?.status, 'active', 'what the old file held is gone')
})
