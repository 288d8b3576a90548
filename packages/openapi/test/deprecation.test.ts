import t from 'tap'
import { applyWaygateToSpec, snapshotOf } from '../src/index.js'
import { buildDocsApp, deepFreeze, fakeClock } from './helpers/app.js'

type Doc = Record<string, any>

t.test('a deprecated route with afterSunset and brownouts documents its 410; the live view follows the clock', async t => {
  const clock = fakeClock(Date.parse('2026-06-01T12:00:00.000Z'))
  const { app, engine } = await buildDocsApp(t, { openapi: false, ui: false, engine: { now: clock.now } })
  const source = deepFreeze(app.swagger() as Doc)
  const apply = (): Doc => applyWaygateToSpec(source, deepFreeze(snapshotOf(engine)))
  await engine.deprecate('GET:/users', { sunset: '2026-09-01T00:00:00Z', successor: '/v2/users', afterSunset: 'gone' })
  await engine.scheduleBrownout('GET:/users', { start: '2026-06-02T10:00:00Z', end: '2026-06-02T10:30:00Z', reason: 'flush' })

  const before = apply().paths['/users'].get
  t.equal(before.deprecated, true)
  t.equal(before['x-waygate-after-sunset'], 'gone')
  t.same(before['x-waygate-brownouts'], [{ start: '2026-06-02T10:00:00.000Z', end: '2026-06-02T10:30:00.000Z', reason: 'flush' }])
  t.notOk(before['x-waygate-gone'])
  t.match(before.responses['410'].description, /ROUTE_SUNSET[\s\S]*ROUTE_BROWNOUT/)
  t.ok(before.responses['410'].headers.Sunset && before.responses['410'].headers.Link)
  t.ok(before.responses['200'] ?? before.responses.default, 'the route\'s own responses stay')
  t.match(before.description, /will answer 410 Gone after the sunset\. Planned brownouts \(410\): 2026-06-02T10:00:00\.000Z to 2026-06-02T10:30:00\.000Z/)

  clock.set(Date.parse('2026-06-02T10:05:00.000Z'))
  const inside = apply().paths['/users'].get
  t.equal(inside['x-waygate-gone'], 'brownout', 'the live view shows the brownout')
  t.match(inside.description, /In a planned brownout: requests answer 410 Gone until 2026-06-02T10:30:00\.000Z/)

  clock.set(Date.parse('2026-09-01T00:00:00.000Z'))
  const after = apply().paths['/users'].get
  t.equal(after['x-waygate-gone'], 'sunset')
  t.ok(after, 'a retired route stays documented, as deprecated with its 410')

  // idempotent: applied to its own output, the same document
  const twice = applyWaygateToSpec(deepFreeze(apply()), deepFreeze(snapshotOf(engine)))
  t.same(twice, apply())
  // a route that is deprecated without either has no 410
  await engine.deprecate('GET:/users', { sunset: '2027-01-01T00:00:00Z' })
  await engine.cancelBrownouts('GET:/users')
  t.notOk(apply().paths['/users'].get.responses['410'])
})
