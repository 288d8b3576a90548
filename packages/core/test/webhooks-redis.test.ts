import t from 'tap'
import { createEngine, createRedisBackend } from '@waygate/core'
import type { EngineEvent, WaygateEngine } from '@waygate/core'
import { createClock, HOUR, MINUTE, type FakeClock } from './helpers/clock.js'
import { startRedisServer, type Teardown } from './helpers/redis-server.js'
import { startReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js'

const server = await startRedisServer(t)
let prefixes = 0

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Two engines on one Redis prefix, sharing a clock, each with the same webhook: as two replicas of one app would be. */
async function replicas (t: Teardown, receiver: WebhookReceiver, clock: FakeClock): Promise<Array<{ engine: WaygateEngine, events: EngineEvent[] }>> {
  const prefix = `w${++prefixes}`
  const out = []
  for (let i = 0; i < 2; i++) {
    const engine = createEngine({
      backend: createRedisBackend({ url: server.url }, { keyPrefix: prefix }),
      now: clock.now,
      resyncIntervalMs: 0,
      webhooks: [{ url: receiver.url }]
    })
    t.teardown(() => engine.close())
    engine.declareRoute('GET', '/payments')
    engine.declareRoute('GET', '/orders')
    const events: EngineEvent[] = []
    engine.subscribe(event => { events.push(event) })
    await engine.start()
    await engine.registerDeclaredRoutes()
    out.push({ engine, events })
  }
  return out
}

t.test('a change is delivered once, by the instance that made it, though every instance applies it', async t => {
  const receiver = await startReceiver(t)
  const [a, b] = await replicas(t, receiver, createClock())
  await a!.engine.disable('GET:/payments', { reason: 'from a', actor: 'alice' })
  await b!.engine.enableGlobalMaintenance({ reason: 'from b', actor: 'bob' })
  await receiver.waitFor(2)
  await sleep(150)
  t.ok(a!.events.some(e => e.type === 'global_changed') && b!.events.some(e => e.type === 'route_changed' && e.key === 'GET:/payments'),
    'each instance applied the other\'s change')
  t.same(receiver.received.map(r => r.json && [(r.json as { event: string }).event, (r.json as { actor: string }).actor]),
    [['disable', 'alice'], ['global_maintenance_on', 'bob']], 'one delivery per change')
})

t.test('a window transition is delivered once: by the instance whose audit entry was stored', async t => {
  const receiver = await startReceiver(t)
  const clock = createClock()
  const [a, b] = await replicas(t, receiver, clock)
  const start = clock.now() + HOUR
  await a!.engine.schedule('GET:/orders', { start, end: start + HOUR, reason: 'reindex' })
  await a!.engine.disable('GET:/payments', { until: clock.now() + MINUTE })
  await receiver.waitFor(1)
  await sleep(50)
  receiver.received.length = 0

  clock.advance(MINUTE)
  await Promise.all([a!.engine.runDueTransitions(), b!.engine.runDueTransitions()])
  clock.set(start)
  await Promise.all([a!.engine.runDueTransitions(), b!.engine.runDueTransitions()])
  clock.set(start + HOUR)
  await Promise.all([a!.engine.runDueTransitions(), b!.engine.runDueTransitions()])
  await receiver.waitFor(3)
  await sleep(150)
  t.same(receiver.received.map(r => (r.json as { event: string }).event).sort(), ['enable', 'window_end', 'window_start'],
    'the timed disable\'s end and each window transition, once each')
  t.ok([a, b].every(r => r!.events.some(e => e.type === 'window_started')), 'while both instances announced the window locally')
})
