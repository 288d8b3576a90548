import t from 'tap'
import { createEngine, createMemoryBackend, MAX_REASON_LENGTH, PASS } from '@waygate/core'
import type { AuditEntry, WaygateEngine } from '@waygate/core'
import { createClock, HOUR, MINUTE } from './helpers/clock.js'
import { setup } from './helpers/engine.js'

const T0 = Date.parse('2030-01-01T00:00:00Z')
const START = T0 + HOUR
const END = T0 + 3 * HOUR
const iso = (ms: number) => new Date(ms).toISOString()

async function windowAudit (engine: WaygateEngine, key = 'GET:/payments'): Promise<AuditEntry[]> {
  return (await engine.listAudit({ key })).filter(e => e.action === 'window_start' || e.action === 'window_end')
}

t.test('a scheduled window starts exactly at start and ends by itself at end', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()

  const [scheduled] = await engine.schedule('GET:/payments', { start: iso(START), end: new Date(END), reason: 'DB upgrade', actor: 'alice' })
  t.match(scheduled, { status: 'active', window: { start: iso(START), end: iso(END), reason: 'DB upgrade' } })
  const [entry] = await engine.listAudit({ key: 'GET:/payments' })
  t.match(entry, { action: 'schedule', actor: 'alice', reason: 'DB upgrade', previousStatus: 'active', newStatus: 'active' })

  t.equal(engine.decide(h), PASS)
  clock.set(START - 1)
  t.equal(engine.decide(h), PASS, 'not a millisecond early')
  t.equal(engine.getState('GET:/payments')?.status, 'active')

  clock.set(START)
  t.same(engine.decide(h), { action: 'block', kind: 'maintenance', key: 'GET:/payments', reason: 'DB upgrade', global: false, retryAt: END },
    'on at start, with the end as retry time')
  t.equal(engine.getState('GET:/payments')?.status, 'maintenance')

  clock.set(END - 1)
  t.match(engine.decide(h), { action: 'block' })

  clock.set(END)
  t.equal(engine.decide(h), PASS, 'off at end, with nothing but the clock moving')
  t.match(engine.getState('GET:/payments'), { status: 'active', window: null })
})

t.test('window transitions are audited once, by the scheduler', async t => {
  const { engine, clock, backend, events } = await setup(t)
  engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/payments', { start: START, end: END, reason: 'DB upgrade' })

  clock.set(START - 1)
  await engine.runDueTransitions()
  t.same(await windowAudit(engine), [], 'nothing before the start')

  clock.set(START)
  await engine.runDueTransitions()
  await engine.runDueTransitions()
  await Promise.all([engine.runDueTransitions(), engine.runDueTransitions()])
  const started = await windowAudit(engine)
  t.equal(started.length, 1)
  t.match(started[0], {
    key: 'GET:/payments',
    action: 'window_start',
    actor: 'scheduler',
    platform: 'scheduler',
    reason: 'DB upgrade',
    previousStatus: 'active',
    newStatus: 'maintenance',
    timestamp: iso(START)
  })
  t.equal(events.filter(e => e.type === 'window_started').length, 1)
  t.match(events.find(e => e.type === 'window_started'), { key: 'GET:/payments', state: { status: 'maintenance' } })

  clock.set(END + MINUTE)
  await engine.runDueTransitions()
  await engine.runDueTransitions()
  const all = await windowAudit(engine)
  t.same(all.map(e => e.action), ['window_end', 'window_start'], 'newest first')
  t.match(all[0], { action: 'window_end', actor: 'scheduler', previousStatus: 'maintenance', newStatus: 'active', timestamp: iso(END) })
  t.equal(events.filter(e => e.type === 'window_ended').length, 1)
  t.match(await backend.getRoute('GET:/payments'), { window: null }, 'the ended window is tidied from storage')
})

t.test('a clock that jumps over a whole window still records both ends', async t => {
  const { engine, clock } = await setup(t)
  engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/payments', { start: START, end: END })
  clock.set(END + HOUR)
  await engine.runDueTransitions()
  t.same((await windowAudit(engine)).map(e => [e.action, e.timestamp]), [['window_end', iso(END)], ['window_start', iso(START)]])
})

t.test('two engines sharing a backend write each transition once', async t => {
  const backend = createMemoryBackend()
  const clock = createClock()
  const a = await setup(t, { backend, clock })
  const b = await setup(t, { backend, clock })
  const ha = a.engine.declareRoute('GET', '/payments')
  const hb = b.engine.declareRoute('GET', '/payments')
  await a.engine.registerDeclaredRoutes()
  await b.engine.registerDeclaredRoutes()
  await a.engine.schedule('GET:/payments', { start: START, end: END, reason: 'shared' })

  clock.set(START)
  t.match(b.engine.decide(hb), { kind: 'maintenance' }, 'the other engine enforces the window too')
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  await b.engine.runDueTransitions()
  clock.set(END)
  t.equal(a.engine.decide(ha), PASS)
  t.equal(b.engine.decide(hb), PASS)
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  await a.engine.runDueTransitions()
  t.same((await windowAudit(a.engine)).map(e => e.action), ['window_end', 'window_start'])
})

t.test('a window survives a restart', async t => {
  const backend = createMemoryBackend()
  const clock = createClock()
  const first = createEngine({ backend, now: clock.now, resyncIntervalMs: 0 })
  first.declareRoute('GET', '/payments')
  await first.start()
  await first.registerDeclaredRoutes()
  await first.schedule('GET:/payments', { start: START, end: END, reason: 'survives' })
  await first.close()

  const { engine } = await setup(t, { backend, clock })
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  t.equal(engine.decide(h), PASS)
  t.match(engine.getState('GET:/payments'), { window: { start: iso(START), end: iso(END), reason: 'survives' } })
  clock.set(START)
  t.match(engine.decide(h), { action: 'block', kind: 'maintenance', reason: 'survives', retryAt: END })
  clock.set(END)
  t.equal(engine.decide(h), PASS)
})

t.test('a restart in the middle of a window neither lifts it nor audits its start twice', async t => {
  const backend = createMemoryBackend()
  const clock = createClock()
  const first = createEngine({ backend, now: clock.now, resyncIntervalMs: 0 })
  first.declareRoute('GET', '/payments')
  await first.start()
  await first.registerDeclaredRoutes()
  await first.schedule('GET:/payments', { start: START, end: END })
  clock.set(START + MINUTE)
  await first.runDueTransitions()
  await first.close()

  const { engine } = await setup(t, { backend, clock })
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  t.match(engine.decide(h), { kind: 'maintenance', retryAt: END })
  await engine.runDueTransitions()
  t.same((await windowAudit(engine)).map(e => e.action), ['window_start'])
  clock.set(END)
  await engine.runDueTransitions()
  t.same((await windowAudit(engine)).map(e => e.action), ['window_end', 'window_start'])
})

t.test('cancelling a window is durable', async t => {
  const backend = createMemoryBackend()
  const clock = createClock()
  const first = createEngine({ backend, now: clock.now, resyncIntervalMs: 0 })
  first.declareRoute('GET', '/payments')
  await first.start()
  await first.registerDeclaredRoutes()
  await first.schedule('GET:/payments', { start: START, end: END })
  const [cancelled] = await first.cancelSchedule('GET:/payments', { actor: 'bob', platform: 'cli' })
  t.match(cancelled, { status: 'active', window: null })
  const [entry] = await first.listAudit({ limit: 1 })
  t.match(entry, { action: 'schedule_cancel', actor: 'bob', platform: 'cli', key: 'GET:/payments' })
  await first.close()

  const { engine } = await setup(t, { backend, clock })
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  clock.set(START)
  t.equal(engine.decide(h), PASS)
  await engine.runDueTransitions()
  t.same(await windowAudit(engine), [], 'no window start is recorded')
})

t.test('cancelling an open window lifts it at once', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/payments', { start: START, end: END })
  clock.set(START)
  t.match(engine.decide(h), { kind: 'maintenance' })
  await engine.cancelSchedule('GET:/payments')
  t.equal(engine.decide(h), PASS)
})

t.test('enabling a route ends its window', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/payments', { start: START, end: END })
  clock.set(START)
  const [state] = await engine.enable('GET:/payments', { actor: 'alice' })
  t.match(state, { status: 'active', window: null })
  t.equal(engine.decide(h), PASS)
  const [entry] = await engine.listAudit({ limit: 1 })
  t.match(entry, { action: 'enable', previousStatus: 'maintenance', newStatus: 'active' })
})

t.test('a new schedule replaces the previous window', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/payments', { start: START, end: END, reason: 'first' })
  await engine.schedule('GET:/payments', { start: END + HOUR, end: END + 2 * HOUR, reason: 'second' })
  clock.set(START)
  t.equal(engine.decide(h), PASS)
  clock.set(END + HOUR)
  t.match(engine.decide(h), { kind: 'maintenance', reason: 'second' })
})

t.test('setMaintenance with an end only starts now and says when it ends', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.setMaintenance('GET:/payments', { end: T0 + 30 * MINUTE, reason: 'quick fix' })
  t.match(engine.decide(h), { action: 'block', kind: 'maintenance', reason: 'quick fix', retryAt: T0 + 30 * MINUTE })
  const [entry] = await engine.listAudit({ limit: 1 })
  t.match(entry, { action: 'maintenance_on', newStatus: 'maintenance' })
  clock.advance(30 * MINUTE)
  t.equal(engine.decide(h), PASS)
})

t.test('setMaintenance with a future start only lasts until the route is enabled', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.setMaintenance('GET:/payments', { start: START })
  const [entry] = await engine.listAudit({ limit: 1 })
  t.match(entry, { action: 'schedule', newStatus: 'active' })
  t.equal(engine.decide(h), PASS)
  clock.set(START)
  t.match(engine.decide(h), { kind: 'maintenance', retryAt: null })
  clock.advance(365 * 24 * HOUR)
  t.match(engine.decide(h), { kind: 'maintenance' })
  await engine.enable('GET:/payments')
  t.equal(engine.decide(h), PASS)
})

t.test('a deprecated route is deprecated again after its window', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/v1', { deprecated: { successor: '/v2' } })
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/v1', { start: START, end: END })
  t.match(engine.decide(h), { action: 'deprecated', link: '</v2>; rel="successor-version"' })
  clock.set(START)
  t.match(engine.decide(h), { action: 'block', kind: 'maintenance' })
  clock.set(END)
  t.match(engine.decide(h), { action: 'deprecated', link: '</v2>; rel="successor-version"' })
  t.equal(engine.getState('GET:/v1')?.status, 'deprecated')
})

t.test('a declared window applies from the declaration', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments', { maintenance: { start: new Date(START), end: END, reason: 'declared' } })
  await engine.registerDeclaredRoutes()
  t.equal(engine.decide(h), PASS)
  clock.set(START)
  t.match(engine.decide(h), { kind: 'maintenance', reason: 'declared', retryAt: END })
  await engine.runDueTransitions()
  t.same((await windowAudit(engine)).map(e => e.action), ['window_start'])
  clock.set(END)
  t.equal(engine.decide(h), PASS)
})

t.test('invalid windows are rejected with no state change', async t => {
  const { engine, backend } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  const before = engine.getState('GET:/payments')

  const attempts: Record<string, () => Promise<unknown>> = {
    'end before start': () => engine.schedule('GET:/payments', { start: END, end: START }),
    'end equal to start': () => engine.schedule('GET:/payments', { start: START, end: START }),
    'end in the past': () => engine.schedule('GET:/payments', { start: T0 - 2 * HOUR, end: T0 - HOUR }),
    'end right now': () => engine.schedule('GET:/payments', { start: T0 - HOUR, end: T0 }),
    'unparseable start': () => engine.schedule('GET:/payments', { start: 'tomorrow', end: END }),
    'unparseable end': () => engine.schedule('GET:/payments', { start: START, end: '2030-13-45T99:00:00Z' }),
    'empty end': () => engine.schedule('GET:/payments', { start: START, end: '' }),
    'NaN start': () => engine.schedule('GET:/payments', { start: Number.NaN, end: END }),
    'infinite end': () => engine.schedule('GET:/payments', { start: START, end: Infinity }),
    'invalid Date': () => engine.schedule('GET:/payments', { start: new Date('nope'), end: END }),
    'no end': () => engine.schedule('GET:/payments', { start: START } as never),
    'no options': () => engine.schedule('GET:/payments', undefined as never),
    'reason too long': () => engine.schedule('GET:/payments', { start: START, end: END, reason: 'x'.repeat(MAX_REASON_LENGTH + 1) }),
    'maintenance ending before it starts': () => engine.setMaintenance('GET:/payments', { start: END, end: START }),
    'maintenance ending in the past': () => engine.setMaintenance('GET:/payments', { end: T0 - 1 }),
    'maintenance with a bad start': () => engine.setMaintenance('GET:/payments', { start: 'noon' })
  }
  for (const [name, attempt] of Object.entries(attempts)) {
    await t.rejects(attempt(), { code: 'WG_ERR_INPUT_INVALID', statusCode: 400 }, name)
  }
  t.same(engine.getState('GET:/payments'), before)
  t.equal(engine.decide(h), PASS)
  t.same(await backend.listAudit(), [])
})

t.test('a window that started in the past and ends later applies at once', async t => {
  const { engine } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.schedule('GET:/payments', { start: T0 - HOUR, end: END })
  t.match(engine.decide(h), { kind: 'maintenance', retryAt: END })
})

t.test('a window scheduled for later leaves the current status alone until it starts', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.setMaintenance('GET:/payments', { reason: 'open-ended' })
  await engine.schedule('GET:/payments', { start: iso(START), end: iso(END), reason: 'planned' })
  t.match(engine.decide(h), { action: 'block', kind: 'maintenance', reason: 'open-ended' }, 'still in the open-ended maintenance')
  clock.set(START)
  t.match(engine.decide(h), { action: 'block', reason: 'planned', retryAt: END }, 'the window takes over at its start')
  clock.set(END)
  t.match(engine.decide(h), { action: 'block', reason: 'open-ended' }, 'and gives the route back as it was')
})

t.test('a window starting now ends an open-ended maintenance at its end', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.setMaintenance('GET:/payments', { reason: 'open-ended' })
  await engine.setMaintenance('GET:/payments', { reason: 'until 01:00', end: iso(START) })
  t.match(engine.decide(h), { action: 'block', reason: 'until 01:00', retryAt: START })
  clock.set(START)
  t.equal(engine.decide(h), PASS)
})

t.test('disable until a time: Retry-After meanwhile, active again by itself, audited once', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await t.rejects(engine.disable('GET:/payments', { until: iso(T0 - 1) }), { code: 'WG_ERR_INPUT_INVALID' })
  await engine.disable('GET:/payments', { reason: 'hotfix', until: iso(START), actor: 'alice' })
  t.match(engine.decide(h), { action: 'block', kind: 'disabled', reason: 'hotfix', retryAt: START })
  t.match(engine.getState('GET:/payments'), { status: 'disabled', disabledUntil: iso(START) })
  clock.set(START - 1)
  t.equal(engine.decide(h).action, 'block')
  clock.set(START)
  t.equal(engine.decide(h), PASS, 'active at the end, before any timer ran')
  t.equal(engine.getState('GET:/payments')?.status, 'active', 'and shown as active')
  await engine.runDueTransitions()
  await engine.runDueTransitions()
  const ends = (await engine.listAudit({ key: 'GET:/payments' })).filter(e => e.action === 'disable_end')
  t.equal(ends.length, 1)
  t.match(ends[0], { actor: 'scheduler', platform: 'scheduler', previousStatus: 'disabled', newStatus: 'active', timestamp: iso(START) })
  t.match(engine.getState('GET:/payments'), { status: 'active', disabledUntil: null })
})

t.test('another change before the end cancels the timed re-enable', async t => {
  const { engine, clock } = await setup(t)
  const h = engine.declareRoute('GET', '/payments')
  await engine.registerDeclaredRoutes()
  await engine.disable('GET:/payments', { until: iso(START) })
  await engine.disable('GET:/payments', { reason: 'for good' })
  clock.set(END)
  await engine.runDueTransitions()
  t.match(engine.decide(h), { action: 'block', kind: 'disabled', reason: 'for good', retryAt: null })
})
