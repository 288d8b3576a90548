import t, { type Test } from 'tap'
import { createEngine, createRemoteBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { EngineEvent } from '@waygate/core'
import { routeState } from '@waygate/core/testing'
import { startFakeServer } from './helpers/fake-server.js'
import { createTimerClock, waitFor } from './helpers/timer-clock.js'

async function setup (t: Test) {
  const fake = await startFakeServer()
  t.teardown(() => fake.close())
  fake.routes.set('GET:/pay', routeState('GET:/pay'))
  fake.routes.set('GET:/refund', routeState('GET:/refund'))
  const clock = createTimerClock()
  const backend = createRemoteBackend({ serverUrl: fake.url, service: 'payments', token: 'tok', clock, random: () => 0 })
  const engine = createEngine({ backend, resyncIntervalMs: 0 })
  t.teardown(() => engine.close())
  const pay = engine.declareRoute('GET', '/pay')
  const refund = engine.declareRoute('GET', '/refund')
  await engine.start()
  const events: EngineEvent[] = []
  engine.subscribe(e => events.push(e))
  return { fake, clock, engine, pay, refund, events }
}

t.test('decide() follows a change event from the server', async t => {
  const { fake, engine, pay } = await setup(t)
  t.equal(engine.decide(pay).action, 'pass')
  fake.change({ type: 'route', state: routeState('GET:/pay', { status: 'maintenance', reason: 'db' }) })
  await waitFor(() => engine.decide(pay).action === 'block')
  t.match(engine.decide(pay), { action: 'block', kind: 'maintenance', reason: 'db' })
  fake.change({ type: 'service', maintenance: { ...defaultGlobalMaintenance(), enabled: true, reason: 'payments down' } })
  await waitFor(() => engine.getGlobal().enabled)
  t.match(engine.decideUnmatched('/nope', 'GET'), { action: 'block', reason: 'payments down' }, 'the service maintenance applies like global maintenance')
})

t.test('a snapshot applies atomically: every route of it at once, in one reload', async t => {
  const { fake, clock, engine, pay, refund, events } = await setup(t)
  fake.dropStreams()
  await waitFor(() => clock.pending().some(d => d < 45_000))
  fake.routes.set('GET:/pay', routeState('GET:/pay', { status: 'disabled' }))
  fake.routes.set('GET:/refund', routeState('GET:/refund', { status: 'maintenance' }))
  fake.revision = 99
  fake.forceSnapshot = true
  const seen: string[] = []
  engine.subscribe(() => { seen.push(`${engine.decide(pay).action}/${engine.decide(refund).action}`) })
  clock.tick(Math.min(...clock.pending()))
  await waitFor(() => events.some(e => e.type === 'resynced'))
  t.notOk(seen.includes('block/pass') || seen.includes('pass/block'), 'never one route without the other')
  t.match(engine.decide(pay), { action: 'block', kind: 'disabled' })
  t.match(engine.decide(refund), { action: 'block', kind: 'maintenance' })
})

t.test('a mutation in the service goes to the server and is enforced at once', async t => {
  const { fake, engine, pay } = await setup(t)
  await engine.disable('GET:/pay', { reason: 'from code', actor: 'payments' })
  t.match(engine.decide(pay), { action: 'block', kind: 'disabled' }, 'enforced when the call resolves')
  t.match(fake.routes.get('GET:/pay'), { status: 'disabled', reason: 'from code' })
  const put = fake.requests.find(q => q.method === 'PUT')!
  t.match(put.body, { base: { status: 'active' }, next: { status: 'disabled' }, audit: { action: 'disable', actor: 'payments' } })
})
