import t from 'tap'
import { createEngine, createMemoryBackend, parseTime, retryAfterSeconds, toEpochMs, toIso } from '@waygate/core'
import type { WaygateLogger } from '@waygate/core'
import { HOUR } from './helpers/clock.js'
import { setup } from './helpers/engine.js'
import { routeState } from './helpers/states.js'

// each of these reads as a date today, and none can be stored so that it reads back as written
const IMPOSSIBLE = [
  '9999-12-31T23:59:59-23:59', // year 10000 in UTC
  '+010000-01-01T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '2030-02-30',
  '2030-02-30T10:00:00Z',
  '2030-02-29T10:00:00Z', // 2030 is not a leap year
  '2030-04-31T10:00:00Z',
  '2030-13-01T10:00:00Z',
  '2030-06-01T24:00:00Z',
  '2030-06-01T24:00',
  '2030-06-01T10:60:00Z',
  '2016-12-31T23:59:60Z', // a leap second: epoch ms cannot represent it
  '2030-06-01T10:00:00+24:00',
  'next year',
  'Wed, 31 Feb 2031 00:00:00 GMT',
  'Wed, 01 Jan 2031 24:00:00 GMT'
]

t.test('parseTime reads ISO 8601 and HTTP dates that exist, and nothing that rolls over', async t => {
  for (const text of IMPOSSIBLE) t.ok(Number.isNaN(parseTime(text)), `${text} is refused`)
  t.equal(parseTime('2032-02-29T00:00:00Z'), Date.UTC(2032, 1, 29), 'a real 29 February')
  t.equal(parseTime('2030-06-01T10:00:00+05:30'), Date.UTC(2030, 5, 1, 4, 30), 'an offset is applied')
  t.equal(parseTime('2030-06-01T10:00:00.123456-0200'), Date.UTC(2030, 5, 1, 12, 0, 0, 123), 'digits past the millisecond are dropped')
  t.equal(parseTime('2030-06-01'), Date.UTC(2030, 5, 1), 'a bare date is midnight UTC')
  t.equal(parseTime('9999-12-31T23:59:59.999Z'), Date.UTC(9999, 11, 31, 23, 59, 59, 999), 'the last representable instant')
  t.equal(parseTime('Wed, 01 Jan 2031 00:00:00 GMT'), Date.UTC(2031, 0, 1), 'an HTTP-date')
  t.equal(parseTime('Sat, 01 Jan 2031 00:00:00 GMT'), Date.UTC(2031, 0, 1), 'whose weekday is redundant')
  t.equal(parseTime('2030-06-01t10:00:00z'), Date.UTC(2030, 5, 1, 10), 'lower-case t and z')
})

t.test('toEpochMs and toIso refuse every time that would not read back, by code', async t => {
  for (const text of IMPOSSIBLE) t.throws(() => toEpochMs(text, 'end'), { code: 'WG_ERR_INPUT_INVALID', statusCode: 400, message: /end/ }, text)
  for (const value of [253402300800000, -62167219200001, 8.64e15, Number.NaN, new Date(253402300800000)]) {
    t.throws(() => toIso(value, 'end'), { code: 'WG_ERR_INPUT_INVALID' }, `${String(value)} is out of range`)
  }
  for (const text of ['2030-06-01T10:00:00Z', '2030-06-01T10:00:00-23:59', '9999-12-31T00:00:00+23:59']) {
    const iso = toIso(text, 'end')
    t.equal(Date.parse(iso), toEpochMs(text, 'end'), `${text} round-trips`)
    t.equal(toIso(iso, 'end'), iso)
  }
})

t.test('a mutation with an impossible time is refused before anything is written', async t => {
  const { engine } = await setup(t)
  const h = engine.declareRoute('GET', '/users')
  await engine.registerDeclaredRoutes()
  const before = engine.getState('GET:/users')
  const attempts: Record<string, (when: string) => Promise<unknown>> = {
    'disable until': until => engine.disable('GET:/users', { until }),
    'maintenance end': end => engine.setMaintenance('GET:/users', { end }),
    'maintenance start': start => engine.setMaintenance('GET:/users', { start, end: '2031-01-01T00:00:00Z' }),
    'schedule end': end => engine.schedule('GET:/users', { start: '2030-06-01T00:00:00Z', end }),
    'deprecate sunset': sunset => engine.deprecate('GET:/users', { sunset })
  }
  for (const [what, attempt] of Object.entries(attempts)) {
    for (const text of IMPOSSIBLE) await t.rejects(attempt(text), { code: 'WG_ERR_INPUT_INVALID' }, `${what}: ${text}`)
  }
  await t.rejects(engine.disable('GET:/users', { until: 253402300800000 }), { code: 'WG_ERR_INPUT_INVALID' }, 'epoch ms past 9999')
  t.same(await engine.listAudit(), [], 'nothing was audited')
  t.same(engine.getState('GET:/users'), before, 'nothing was written')
  t.equal(engine.decide(h).action, 'pass')
  for (const text of IMPOSSIBLE) {
    t.throws(() => engine.declareRoute('GET', `/d${IMPOSSIBLE.indexOf(text)}`, { deprecated: { sunset: text } }), { code: 'WG_ERR_INPUT_INVALID' }, `declared sunset ${text}`)
  }
})

t.test('a time with an offset is stored in UTC and reads back as the same instant', async t => {
  const { engine } = await setup(t)
  engine.declareRoute('GET', '/users')
  await engine.registerDeclaredRoutes()
  const [state] = await engine.setMaintenance('GET:/users', { end: '2030-06-01T10:00:00+05:30' })
  t.equal(state!.window!.end, '2030-06-01T04:30:00.000Z')
  const [late] = await engine.disable('GET:/users', { until: '9999-12-31T00:00:00+23:59' })
  t.equal(late!.disabledUntil, '9999-12-30T00:01:00.000Z')
})

t.test('a stored time the model cannot read is absent in every view, and never makes a read fail', async t => {
  const backend = createMemoryBackend()
  const warnings: unknown[] = []
  const logger = { ...console, debug () {}, info () {}, error () {}, warn (obj: unknown) { warnings.push(obj) }, child () { return logger } } as unknown as WaygateLogger
  // states as an older version (or a hand-edited file) could have stored them
  await backend.registerRoutes([
    routeState('GET:/a', { status: 'disabled', disabledUntil: '+010000-01-01T23:58:59.000Z' }),
    routeState('GET:/b', { window: { start: '2029-01-01T00:00:00.000Z', end: '+010000-01-01T23:58:59.000Z', reason: 'long' } }),
    routeState('GET:/c', { window: { start: '2030-02-30T00:00:00.000Z', end: null, reason: 'never' } }),
    routeState('GET:/d', { status: 'deprecated', sunset: 'garbage', deprecatedAt: '+275760-09-13T00:00:00.000Z', updatedAt: '2030-02-30T00:00:00.000Z' })
  ])
  const { engine } = await setup(t, { backend, logger })
  const a = engine.declareRoute('GET', '/a')
  const b = engine.declareRoute('GET', '/b')
  const c = engine.declareRoute('GET', '/c')
  const d = engine.declareRoute('GET', '/d')

  t.match(engine.getState('GET:/a'), { status: 'disabled', disabledUntil: null })
  t.match(engine.getState('GET:/b'), { status: 'maintenance', window: { start: '2029-01-01T00:00:00.000Z', end: null } })
  t.match(engine.getState('GET:/c'), { status: 'active', window: null })
  const dv = engine.getState('GET:/d')!
  t.match(dv, { status: 'deprecated', sunset: null, deprecatedAt: null })
  t.ok(Number.isFinite(Date.parse(dv.updatedAt)), 'updatedAt is a readable time')
  for (const state of engine.listRoutes()) {
    for (const time of [state.sunset, state.deprecatedAt, state.disabledUntil, state.updatedAt, state.window?.start, state.window?.end]) {
      if (typeof time === 'string') t.equal(new Date(time).toISOString(), time, `${state.key}: ${time} reads back`)
    }
  }
  t.match(engine.decide(a), { action: 'block', kind: 'disabled', retryAt: null })
  t.match(engine.decide(b), { action: 'block', kind: 'maintenance', retryAt: null })
  t.equal(engine.decide(c).action, 'pass')
  t.match(engine.decide(d), { action: 'deprecated', sunset: null })
  t.ok(warnings.length > 0, 'what was unreadable is logged')
  await engine.runDueTransitions()

  // a mutation on top of a bad stored state writes a readable one
  const [next] = await engine.deprecate('GET:/d', { successor: '/v2/d' })
  t.match(next, { sunset: null, successor: '/v2/d' })
})

t.test('Retry-After is whole seconds, at least 1, and bounded', async t => {
  t.equal(retryAfterSeconds(Date.UTC(2030, 0, 1, 0, 0, 1, 500), Date.UTC(2030, 0, 1)), 2)
  t.equal(retryAfterSeconds(0, Date.UTC(2030, 0, 1)), 1)
  t.equal(retryAfterSeconds(Number.NaN, 0), 1)
  t.equal(retryAfterSeconds(Date.UTC(9999, 11, 31), 0), 2_147_483_647)
  const engine = createEngine({ resyncIntervalMs: 0, now: () => Date.UTC(2030, 0, 1) })
  t.teardown(() => engine.close())
  engine.declareRoute('GET', '/x')
  await engine.start()
  await engine.setMaintenance('GET:/x', { end: '9999-12-31T00:00:00Z' })
  t.match(engine.getState('GET:/x'), { status: 'maintenance', window: { end: '9999-12-31T00:00:00.000Z' } })
  t.equal(HOUR, 3_600_000)
})

t.test('audit since and until: offsets are read as instants, leap seconds and impossible dates refused', async t => {
  const { engine, clock } = await setup(t)
  engine.declareRoute('GET', '/a')
  await engine.registerDeclaredRoutes()
  await engine.disable('GET:/a')
  clock.advance(2 * HOUR)
  await engine.enable('GET:/a')
  t.same((await engine.listAudit({ since: '2030-01-01T01:00:00+01:00' })).map(e => e.action), ['enable', 'disable'], 'since midnight UTC')
  t.same((await engine.listAudit({ since: '2030-01-01T02:00:00+01:00' })).map(e => e.action), ['enable'])
  t.same((await engine.listAudit({ until: '2030-01-01T00:00:01-00:00' })).map(e => e.action), ['disable'])
  for (const text of ['2016-12-31T23:59:60Z', '9999-12-31T23:59:59-23:59', '2030-02-30T00:00:00Z', '2030-01-01T24:00:00Z', 'yesterday']) {
    await t.rejects(engine.listAudit({ since: text }), { code: 'WG_ERR_INPUT_INVALID', message: /since/ }, `since ${text}`)
    await t.rejects(engine.listAudit({ until: text }), { code: 'WG_ERR_INPUT_INVALID', message: /until/ }, `until ${text}`)
  }
})
