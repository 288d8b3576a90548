import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createFileBackend, createMemoryBackend, PASS } from '@waygate/core'
import type { AuditEntry, WaygateEngine } from '@waygate/core'
import { createClock, MINUTE } from './helpers/clock.js'
import { setup } from './helpers/engine.js'

const T0 = Date.parse('2030-01-01T00:00:00Z')
const END = T0 + 15 * MINUTE
const iso = (ms: number) => new Date(ms).toISOString()

async function offEntries (engine: WaygateEngine): Promise<AuditEntry[]> {
  return (await engine.listAudit({ key: '*' })).filter(e => e.action === 'global_maintenance_off')
}

t.test('global maintenance with an end blocks until the end, then turns itself off, audited once', async t => {
  const { engine, clock, events } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()

  const on = await engine.enableGlobalMaintenance({ reason: 'deploying', end: iso(END), actor: 'deploy.sh', platform: 'cli' })
  t.match(on, { enabled: true, reason: 'deploying', end: iso(END) })
  t.same(engine.decide(h), { action: 'block', kind: 'maintenance', key: 'GET:/payments', reason: 'deploying', global: true, retryAt: END },
    'the end is the retry time')
  t.match(engine.decideUnmatched('/nowhere', 'GET'), { action: 'block', global: true, retryAt: END })

  clock.set(END - 1)
  t.match(engine.decide(h), { action: 'block', global: true }, 'not a millisecond early')
  await engine.runDueTransitions()
  t.same(await offEntries(engine), [], 'nothing is stored before the end')

  clock.set(END)
  await engine.runDueTransitions()
  t.equal(engine.decide(h), PASS, 'off at the end')
  t.equal(engine.decideUnmatched('/nowhere', 'GET'), PASS)
  const off = engine.getGlobal()
  t.match(off, { enabled: false, reason: '', since: null })
  t.notOk('end' in off, 'an ended maintenance keeps no end')
  t.same(engine.storedSnapshot().global.enabled, false, 'stored as off')

  await engine.runDueTransitions()
  await Promise.all([engine.runDueTransitions(), engine.runDueTransitions()])
  const entries = await offEntries(engine)
  t.equal(entries.length, 1, 'one audit entry, however often the scheduler runs')
  t.match(entries[0], {
    id: `global_maintenance_off:*:${iso(END)}`,
    timestamp: iso(END),
    key: '*',
    actor: 'scheduler',
    platform: 'scheduler',
    reason: 'deploying',
    previousStatus: 'maintenance',
    newStatus: 'active'
  })
  t.ok(events.some(e => e.type === 'global_changed' && !e.global.enabled), 'subscribers hear it')
})

t.test('past its end it is off even when the scheduler cannot store that', async t => {
  const backend = createMemoryBackend()
  const { engine, clock } = await setup(t, { backend })
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.enableGlobalMaintenance({ end: iso(END) })
  const realUpdate = backend.updateGlobal.bind(backend)
  backend.updateGlobal = async () => { throw new Error('backend down') }

  clock.set(END)
  t.equal(engine.decide(h), PASS, 'the clock alone ends it for requests')
  t.match(engine.getGlobal(), { enabled: false })
  await engine.runDueTransitions()
  t.equal(engine.decide(h), PASS)
  t.equal((await engine.status()).healthy, false, 'the failed write is reported')

  backend.updateGlobal = realUpdate
  await engine.runDueTransitions()
  t.equal((await offEntries(engine)).length, 1, 'stored and audited once the backend is back')
})

t.test('an operator who changes it first keeps it: the old end does nothing', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.enableGlobalMaintenance({ reason: 'timed', end: iso(END) })
  const again = await engine.enableGlobalMaintenance({ reason: 'until I say so' })
  t.notOk('end' in again, 'enabling again without an end removes it')

  clock.set(END + MINUTE)
  await engine.runDueTransitions()
  t.match(engine.decide(h), { action: 'block', global: true, retryAt: null })
  t.same(await offEntries(engine), [])

  await engine.enableGlobalMaintenance({ end: '2030-01-01T02:00:00+01:00' })
  t.equal(engine.getGlobal().end, '2030-01-01T01:00:00.000Z', 'an end with an offset is stored in UTC')
})

t.test('an end that is not in the future is refused, and turning it off drops the end', async t => {
  const { engine, clock } = await setup(t)
  await t.rejects(engine.enableGlobalMaintenance({ end: iso(T0) }), { code: 'WG_ERR_INPUT_INVALID', message: /end is in the past/ })
  await t.rejects(engine.enableGlobalMaintenance({ end: 'soon' }), { code: 'WG_ERR_INPUT_INVALID' })
  t.match(engine.getGlobal(), { enabled: false }, 'nothing changed')

  clock.set(T0)
  await engine.enableGlobalMaintenance({ end: END })
  t.equal(engine.getGlobal().end, iso(END), 'epoch ms is accepted too')
  const off = await engine.disableGlobalMaintenance()
  t.notOk('end' in off)
  await engine.addGlobalExempt(['/health'])
  t.notOk('end' in engine.getGlobal())
})

t.test('two engines sharing a memory backend end it once', async t => {
  const backend = createMemoryBackend()
  const clock = createClock()
  const a = await setup(t, { backend, clock })
  const b = await setup(t, { backend, clock })
  const hb = b.engine.declareRoute('GET', '/payments')
  await a.engine.enableGlobalMaintenance({ reason: 'shared', end: iso(END) })
  t.match(b.engine.decide(hb), { action: 'block', retryAt: END }, 'the other engine enforces it with its end')

  clock.set(END)
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  await b.engine.runDueTransitions()
  t.equal(b.engine.decide(hb), PASS)
  t.equal((await offEntries(a.engine)).length, 1)
})

t.test('two engines on one state file end it once', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-global-end-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'state.json')
  const clock = createClock()
  const a = await setup(t, { backend: createFileBackend({ path, pollIntervalMs: 20 }), clock })
  const b = await setup(t, { backend: createFileBackend({ path, pollIntervalMs: 20 }), clock })
  await a.engine.enableGlobalMaintenance({ reason: 'file', end: iso(END) })
  await b.engine.resync()
  t.match(b.engine.getGlobal(), { enabled: true, end: iso(END) }, 'the other process reads the end')

  clock.set(END)
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  t.equal((await offEntries(a.engine)).length, 1, 'one entry in the shared audit log')
  await b.engine.resync()
  t.match(b.engine.storedSnapshot().global, { enabled: false })
})

t.test('a stored record without an end, or with an unreadable one, is on until turned off', async t => {
  const backend = createMemoryBackend()
  await backend.updateGlobal(() => ({ next: { enabled: true, reason: 'old', exemptPaths: [], includeForceActive: false, since: iso(T0) } }))
  const { engine, clock } = await setup(t, { backend })
  const h = engine.declareRoute('GET', '/payments')
  clock.set(END * 2)
  await engine.runDueTransitions()
  t.match(engine.decide(h), { action: 'block', retryAt: null })

  await backend.updateGlobal(current => ({ next: { ...current, end: 'tomorrow-ish' } }))
  await engine.resync()
  await engine.runDueTransitions()
  t.match(engine.decide(h), { action: 'block', retryAt: null })
  t.notOk('end' in engine.getGlobal(), 'the unreadable end counts as absent')
})
