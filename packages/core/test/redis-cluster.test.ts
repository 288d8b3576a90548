import t from 'tap'
import { createEngine, createMemoryRateLimitStore, createRateLimitRule, createRedisBackend, createRedisRateLimitStore } from '@waygate/core'
import type { RouteHandle, WaygateEngine } from '@waygate/core'
import { backendContract, routeState, until } from '@waygate/core/testing'
import { createClock } from './helpers/clock.js'
import { startRedisCluster } from './helpers/redis-topology.js'
import { randomTrafficAgrees } from './rate-limit/helpers/differential.js'
import { rateLimitStoreContract, T0 } from './rate-limit/helpers/store-contract.js'

// A real 3-master Redis Cluster on loopback: the backend contract, two engines following each
// other, and the rate limit store agreeing with the memory store, all through an ioredis Cluster.

const cluster = await startRedisCluster(t)
const client = cluster.client()
await until(async () => client.status === 'ready' ? true : undefined, 10_000, () => `cluster client ${client.status}`)
let prefixes = 0

t.test('the prefixes the tests use land on different masters, so changes cross nodes', async t => {
  const owners = new Set<number>()
  for (let i = 1; i <= 12; i++) owners.add(await cluster.masterOf(`{cl-${i}}:routes`))
  t.ok(owners.size >= 2, `12 prefixes over ${owners.size} masters`)
})

await backendContract(t, {
  name: 'redis backend on a Cluster',
  create: options => createRedisBackend({ client }, { keyPrefix: `cl-${++prefixes}`, ...options }),
  revisions: true,
  changeTimeoutMs: 5000
})

t.test('a backend given cluster nodes opens its own Cluster connections and closes them', async t => {
  const backend = createRedisBackend({ cluster: cluster.nodes }, { keyPrefix: `cl-${++prefixes}` })
  await backend.init?.()
  t.same(await backend.health(), { ok: true })
  await backend.updateRoute('GET:/own', () => ({ next: routeState('GET:/own', { status: 'disabled', reason: 'own' }) }))
  t.match(await backend.getRoute('GET:/own'), { status: 'disabled' })
  await backend.close()
  t.match(await backend.health(), { ok: false })
})

async function engineOn (t: { teardown: (fn: () => unknown) => void }, prefix: string): Promise<{ engine: WaygateEngine, payments: RouteHandle }> {
  // each engine has its own Cluster client, as two app instances would
  const engine = createEngine({ backend: createRedisBackend({ client: cluster.client() }, { keyPrefix: prefix }), resyncIntervalMs: 0 })
  t.teardown(() => engine.close())
  const payments = engine.declareRoute('GET', '/payments')
  await engine.start()
  await engine.registerDeclaredRoutes()
  return { engine, payments }
}

t.test('propagation: a change made on one engine is enforced by the other, 30 times in a row', async t => {
  const prefix = `cl-${++prefixes}`
  const a = await engineOn(t, prefix)
  const b = await engineOn(t, prefix)
  const delays: number[] = []
  for (let i = 0; i < 30; i++) {
    const disable = i % 2 === 0
    const start = performance.now()
    if (disable) await a.engine.disable('GET:/payments', { reason: `change ${i}` })
    else await a.engine.enable('GET:/payments')
    await until(async () => b.engine.decide(b.payments).action === (disable ? 'block' : 'pass') ? true : undefined, 5000, () => `change ${i} did not reach B`, 1)
    delays.push(performance.now() - start)
  }
  delays.sort((x, y) => x - y)
  t.comment(`Cluster propagation A → B: median ${delays[15]!.toFixed(2)} ms, max ${delays[29]!.toFixed(2)} ms`)
  const audit = await b.engine.listAudit({ key: 'GET:/payments', limit: 100 })
  t.equal(audit.length, 30, 'every change audited once, readable from the other engine')
  await b.engine.setMaintenance('GET:/payments', { reason: 'from B' })
  await until(async () => a.engine.decide(a.payments).action === 'block' ? true : undefined, 5000, () => 'B → A')
  t.match(a.engine.decide(a.payments), { kind: 'maintenance', reason: 'from B' }, 'and the other way round')
})

// the rate limit store: the pinned tables, then the memory store on random traffic
let stores = 0
rateLimitStoreContract(t, 'redis on a Cluster', async clock => {
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: `rlc${++stores}:`, timeoutMs: 5000 })
  await store.init()
  return store
})

t.test('rate limits on a Cluster agree with the memory store on random traffic, every algorithm', async t => {
  const clock = createClock(T0 + 12_345)
  const redis = createRedisRateLimitStore({ client, now: clock.now, prefix: 'rlc-random:', timeoutMs: 5000 })
  const memory = createMemoryRateLimitStore({ now: clock.now, sweepIntervalMs: 0 })
  await redis.init()
  t.teardown(() => redis.close())
  t.teardown(() => memory.close())
  await randomTrafficAgrees(t, clock, memory, redis)
})

t.test('rate limit keys spread over the masters, and resetAll clears every one of them', async t => {
  const clock = createClock(T0)
  const store = createRedisRateLimitStore({ client, now: clock.now, prefix: 'rlc-spread:', timeoutMs: 5000 })
  await store.init()
  t.teardown(() => store.close())
  const rule = createRateLimitRule({ limits: '1/minute' })
  const owners = new Set<number>()
  for (let i = 0; i < 20; i++) {
    await store.check('GET:/x', `client-${i}`, rule)
    owners.add(await cluster.masterOf(store.keyFor('GET:/x', `client-${i}`, rule.limits[0]!.slot)))
  }
  t.equal(owners.size, 3, 'counters of 20 clients on all 3 masters')
  t.match(await store.check('GET:/x', 'client-7', rule), { allowed: false })
  await store.resetAll('GET:/x')
  for (let i = 0; i < 20; i++) t.match(await store.check('GET:/x', `client-${i}`, rule), { allowed: true }, `client-${i} starts afresh`)
  t.same(await store.health(), { ok: true })
})

t.test('a rate limit store given cluster nodes opens and closes its own Cluster', async t => {
  const store = createRedisRateLimitStore({ cluster: cluster.nodes, prefix: 'rlc-own:', timeoutMs: 5000 })
  await store.init()
  t.match(await store.check('s', 'a', createRateLimitRule({ limits: '1/minute' })), { allowed: true, degraded: false })
  await store.close()
  t.match(store.check('s', 'a', createRateLimitRule({ limits: '1/minute' })), { degraded: true })
})
