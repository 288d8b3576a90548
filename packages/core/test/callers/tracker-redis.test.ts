import t from 'tap'
import { createCallerTracker, createEngine, createRedisBackend, readCallers } from '@waygate/core'
import { createClock, HOUR, MINUTE } from '../helpers/clock.js'
import { startRedisServer, type Teardown } from '../helpers/redis-server.js'

const server = await startRedisServer(t)

async function backend (t: Teardown, prefix: string) {
  const b = createRedisBackend({ url: server.url }, { keyPrefix: prefix })
  await b.init?.()
  t.teardown(() => b.close())
  return b
}

t.test('two instances on one Redis: each publishes its sketch, a read merges both', async t => {
  const clock = createClock('2030-01-01T10:05:00.000Z')
  const a = createCallerTracker({ backend: await backend(t, 'merge:'), now: clock.now, publishIntervalMs: 0, instanceId: 'a' })
  const b = createCallerTracker({ backend: await backend(t, 'merge:'), now: clock.now, publishIntervalMs: 0, instanceId: 'b' })
  const ra = a.route('GET:/v1/users')
  const rb = b.route('GET:/v1/users')
  for (let i = 0; i < 30; i++) ra.add('key-alpha')
  for (let i = 0; i < 20; i++) rb.add('key-alpha')
  for (let i = 0; i < 25; i++) rb.add('key-beta')
  clock.advance(MINUTE)
  ra.add('10.0.0.9')
  await a.publish()
  await b.publish()
  // a third process, only reading (an admin elsewhere on the same Redis)
  const reader = await backend(t, 'merge:')
  const report = await readCallers(reader, 'GET:/v1/users', clock.now())
  t.equal(report.total, 76)
  t.equal(report.sketches, 2)
  t.same(report.callers.map(c => [c.id, c.count, c.error]), [['key-alpha', 50, 0], ['key-beta', 25, 0], ['10.0.0.9', 1, 0]])
  t.equal(report.callers[2]!.lastSeen, '2030-01-01T10:06:00.000Z')
  t.same((await b.read('GET:/v1/other')).callers, [], 'another route has nothing')
})

t.test('the window slides: hours older than 24 h drop out, the current hour is republished as it grows', async t => {
  const clock = createClock('2030-01-01T00:30:00.000Z')
  const store = await backend(t, 'slide:')
  const tracker = createCallerTracker({ backend: store, now: clock.now, publishIntervalMs: 0, instanceId: 'x' })
  t.teardown(() => tracker.close())
  const r = tracker.route('GET:/old')
  r.add('early')
  await tracker.publish()
  clock.advance(HOUR)
  r.add('later')
  r.add('later')
  await tracker.publish()
  t.same((await tracker.read('GET:/old')).callers.map(c => [c.id, c.count]), [['later', 2], ['early', 1]])
  r.add('later')
  await tracker.publish()
  t.equal((await tracker.read('GET:/old')).callers[0]!.count, 3, 'the current hour record is replaced, not added twice')
  clock.advance(23 * HOUR)
  const report = await tracker.read('GET:/old')
  t.same(report.callers.map(c => c.id), ['later'], 'the first hour left the window')
  t.equal(report.since, '2030-01-01T01:00:00.000Z')
  const records = await store.listRecords('callers:GET:/old')
  t.equal(records.length, 2)
  t.ok(records.every(rec => rec.expiresAt !== null), 'every record expires')
})

t.test('a backend failure keeps the sketch for the next publish and never rejects', async t => {
  const clock = createClock('2030-01-01T00:00:00.000Z')
  const store = await backend(t, 'fail:')
  let fail = true
  const flaky = { ...store, putRecord: async (...args: Parameters<typeof store.putRecord>) => { if (fail) throw new Error('down'); return store.putRecord(...args) } }
  const tracker = createCallerTracker({ backend: flaky, now: clock.now, publishIntervalMs: 0, instanceId: 'f' })
  tracker.route('GET:/x').add('someone')
  await tracker.publish()
  t.same((await tracker.read('GET:/x')).callers, [])
  fail = false
  await tracker.publish()
  t.same((await tracker.read('GET:/x')).callers.map(c => c.id), ['someone'])
})

t.test('brownouts and afterSunset are route state: a change on one instance reaches the other over Redis', async t => {
  const clock = createClock('2030-01-01T09:00:00.000Z')
  const engines = [0, 1].map(() => createEngine({ backend: createRedisBackend({ url: server.url }, { keyPrefix: 'sync:' }), now: clock.now, resyncIntervalMs: 0 }))
  for (const engine of engines) t.teardown(() => engine.close())
  const handles = engines.map(engine => engine.declareRoute('GET', '/v1/users', { deprecated: { sunset: '2030-06-01T00:00:00Z' } }))
  const a = handles[0]!
  const b = handles[1]!
  for (const engine of engines) {
    await engine.start()
    await engine.registerDeclaredRoutes()
  }
  await engines[0]!.scheduleBrownout('GET:/v1/users', { start: '2030-01-01T10:00:00Z', end: '2030-01-01T10:30:00Z', actor: 'ops' })
  await engines[0]!.deprecate('GET:/v1/users', { sunset: '2030-06-01T00:00:00Z', afterSunset: 'gone', actor: 'ops' })
  const deadline = Date.now() + 5000
  while (engines[1]!.getState('GET:/v1/users')?.afterSunset !== 'gone' && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(engines[1]!.decide(b).action, 'deprecated', 'before the brownout')
  clock.set('2030-01-01T10:10:00.000Z')
  t.match(engines[1]!.decide(b), { action: 'block', kind: 'brownout' }, 'the other instance applies the brownout')
  clock.set('2030-06-01T00:00:00.000Z')
  t.match(engines[1]!.decide(b), { action: 'block', kind: 'sunset' })
  t.match(engines[0]!.decide(a), { action: 'block', kind: 'sunset' })
})
