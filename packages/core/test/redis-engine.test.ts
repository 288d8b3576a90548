import t from 'tap'
import { createEngine, createEngineFromEnv, createRedisBackend } from '@waygate/core'
import type { EngineEvent, RouteHandle, WaygateEngine } from '@waygate/core'
import { createClock, HOUR, type FakeClock } from './helpers/clock.js'
import { startRedisServer, type RedisServer, type Teardown } from './helpers/redis-server.js'

const server = await startRedisServer(t)
let prefixes = 0

interface Instance {
  engine: WaygateEngine
  events: EngineEvent[]
  handles: { payments: RouteHandle, orders: RouteHandle }
}

/** A started engine on the shared Redis, with the same routes as its siblings. */
async function instance (t: Teardown, prefix: string, options: { clock?: FakeClock, redis?: RedisServer } = {}): Promise<Instance> {
  const engine = createEngine({
    backend: createRedisBackend({ url: (options.redis ?? server).url }, { keyPrefix: prefix }),
    resyncIntervalMs: 0,
    ...(options.clock === undefined ? {} : { now: options.clock.now })
  })
  t.teardown(() => engine.close())
  const handles = {
    payments: engine.declareRoute('GET', '/payments'),
    orders: engine.declareRoute('GET', '/orders')
  }
  const events: EngineEvent[] = []
  engine.subscribe(event => { events.push(event) })
  await engine.start()
  await engine.registerDeclaredRoutes()
  return { engine, events, handles }
}

async function waitFor (condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 2))
  }
  return true
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

t.test('a change made on one instance is enforced by the other within milliseconds (median of 50)', async t => {
  const prefix = `e${++prefixes}`
  const a = await instance(t, prefix)
  const b = await instance(t, prefix)
  const delays: number[] = []
  for (let i = 0; i < 50; i++) {
    const disable = i % 2 === 0
    const arrived = new Promise<number>(resolve => {
      const stop = b.engine.subscribe(event => {
        if (event.type === 'route_changed' && event.key === 'GET:/payments') {
          stop()
          resolve(performance.now())
        }
      })
    })
    const start = performance.now()
    if (disable) await a.engine.disable('GET:/payments', { reason: `change ${i}` })
    else await a.engine.enable('GET:/payments')
    delays.push(await arrived - start)
    t.equal(b.engine.decide(b.handles.payments).action, disable ? 'block' : 'pass')
  }
  const p50 = median(delays)
  const p95 = [...delays].sort((x, y) => x - y)[Math.floor(delays.length * 0.95)]!
  t.comment(`propagation from the call on A to B's snapshot: median ${p50.toFixed(2)} ms, p95 ${p95.toFixed(2)} ms, max ${Math.max(...delays).toFixed(2)} ms`)
  t.ok(p50 < 50, `tens of milliseconds at most (median ${p50.toFixed(2)} ms)`)
})

t.test('Redis killed: both keep deciding from the snapshot, synchronously; changes fail fast with a 503; after a restart both follow again', async t => {
  const redis = await startRedisServer(t)
  const prefix = `e${++prefixes}`
  const a = await instance(t, prefix, { redis })
  const b = await instance(t, prefix, { redis })
  await a.engine.setMaintenance('GET:/payments', { reason: 'before the outage' })
  t.ok(await waitFor(() => b.engine.decide(b.handles.payments).action === 'block'))

  function decideMany (engine: WaygateEngine, handle: RouteHandle): number {
    const start = performance.now()
    for (let i = 0; i < 20_000; i++) engine.decide(handle)
    return (performance.now() - start) / 20_000 * 1e6
  }
  decideMany(b.engine, b.handles.orders) // warm up
  const before = decideMany(b.engine, b.handles.orders)
  await redis.kill({ save: true })
  a.events.length = 0
  b.events.length = 0
  await new Promise(resolve => setTimeout(resolve, 20))

  const decision = b.engine.decide(b.handles.payments)
  t.notOk(decision instanceof Promise, 'decide() stays synchronous')
  t.match(decision, { action: 'block', kind: 'maintenance', reason: 'before the outage' }, 'the last known state applies')
  t.match(a.engine.decide(a.handles.orders), { action: 'pass' })
  const during = decideMany(b.engine, b.handles.orders)
  t.comment(`decide(): ${before.toFixed(0)} ns before the outage, ${during.toFixed(0)} ns during it`)
  t.ok(during < Math.max(before * 3, 1000), 'no added latency: the request path never waits for Redis')

  const started = performance.now()
  const failed = await a.engine.enable('GET:/payments').catch((err: unknown) => err)
  const took = performance.now() - started
  t.match(failed, { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503 })
  t.ok(took < 1000, `a change fails in ${took.toFixed(1)} ms, it does not hang`)
  t.match(await a.engine.status(), { healthy: false, lastError: /not connected/ })

  await redis.start()
  t.ok(await waitFor(() => a.events.some(e => e.type === 'resynced') && b.events.some(e => e.type === 'resynced'), 5000), 'both reload once Redis is back')
  await a.engine.enable('GET:/payments', { actor: 'after' })
  t.ok(await waitFor(() => b.engine.decide(b.handles.payments).action === 'pass'), 'and follow changes again')
  t.match(await b.engine.status(), { healthy: true })
})

t.test('Redis down when the app starts: start() resolves, routes answer as declared, state arrives when Redis does', async t => {
  const late = await startRedisServer(t, { start: false })
  const prefix = `e${++prefixes}`
  const engine = createEngineFromEnv({
    configFile: false,
    resyncIntervalMs: 0,
    variables: { WAYGATE_BACKEND: 'redis', WAYGATE_REDIS_URL: late.url },
    redis: { keyPrefix: prefix }
  })
  t.teardown(() => engine.close())
  t.equal(engine.backend.kind, 'redis', 'WAYGATE_BACKEND=redis with WAYGATE_REDIS_URL needs no factory')
  const payments = engine.declareRoute('GET', '/payments', { maintenance: { reason: 'declared' } })
  const started = performance.now()
  await engine.start()
  await engine.registerDeclaredRoutes()
  t.ok(performance.now() - started < 1500, 'start() resolves without Redis')
  t.match(engine.decide(payments), { action: 'block', reason: 'declared' }, 'as declared in code')

  await late.start()
  const other = createEngine({ backend: createRedisBackend({ url: late.url }, { keyPrefix: prefix }), resyncIntervalMs: 0 })
  t.teardown(() => other.close())
  other.declareRoute('GET', '/payments')
  await other.start()
  await other.enable('GET:/payments', { actor: 'ops' })
  t.ok(await waitFor(() => engine.decide(payments).action === 'pass', 5000), 'the stored state is applied once Redis is reachable')
})

t.test('a window opens and closes on every instance, audited once', async t => {
  const prefix = `e${++prefixes}`
  const clock = createClock()
  const a = await instance(t, prefix, { clock })
  const b = await instance(t, prefix, { clock })
  const start = clock.now() + HOUR
  await a.engine.schedule('GET:/orders', { start, end: start + HOUR, reason: 'reindex' })
  t.ok(await waitFor(() => b.engine.getState('GET:/orders')?.window !== null))
  clock.set(start)
  t.match(b.engine.decide(b.handles.orders), { action: 'block', reason: 'reindex' }, 'enforced by the clock, not by a timer')
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  clock.set(start + HOUR)
  await Promise.all([a.engine.runDueTransitions(), b.engine.runDueTransitions()])
  t.match(a.engine.decide(a.handles.orders), { action: 'pass' })
  const trail = await a.engine.listAudit({ key: 'GET:/orders' })
  t.same(trail.map(e => e.action), ['window_end', 'window_start', 'schedule'], 'one entry per transition, not one per instance')
  t.ok(a.events.some(e => e.type === 'window_started') && b.events.some(e => e.type === 'window_started'), 'each instance announces it locally')
})
