import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { createRateLimitRule, createRedisRateLimitStore, FAIL_CLOSED_RETRY_MS } from '@waygate/core'
import type { RateLimitResult, WaygateLogger } from '@waygate/core'
import type { Redis } from 'ioredis'
import { createClock } from '../helpers/clock.js'
import { startRedisServer } from './helpers/redis-server.js'
import { T0 } from './helpers/store-contract.js'

const open = createRateLimitRule({ limits: '5/minute' })
const closed = createRateLimitRule({ limits: '5/minute', failClosed: true })

function recordingLogger () {
  const warnings: string[] = []
  const logger: WaygateLogger = { debug () {}, info () {}, warn (obj, msg) { warnings.push(msg ?? '') }, error () {} }
  return { logger, warnings }
}

async function timed (answer: RateLimitResult | Promise<RateLimitResult>) {
  const start = performance.now()
  const result = await answer
  return { result, ms: performance.now() - start }
}

async function ready (client: Redis): Promise<void> {
  if (client.status !== 'ready') await once(client, 'ready')
}

t.test('a killed Redis fails open, or closed for a failClosed rule, quickly and without queueing', async t => {
  const server = await startRedisServer(t)
  const client = server.client()
  const clock = createClock(T0)
  const { logger, warnings } = recordingLogger()
  const store = createRedisRateLimitStore({ client, now: clock.now, logger, timeoutMs: 50 })
  t.teardown(() => store.close())
  await store.init()
  t.match(await store.check('s', 'a', open), { allowed: true, remaining: 4, degraded: false })

  await server.kill()
  // the first checks may be sent before the client notices: the timeout bounds them
  const first = await timed(store.check('s', 'a', open))
  t.match(first.result, { allowed: true, degraded: true })
  t.ok(first.ms < 500, `answered in ${first.ms.toFixed(0)} ms`)

  if (client.status === 'ready') await once(client, 'close')
  const fast = store.check('s', 'a', open)
  t.notOk(fast instanceof Promise, 'once the connection is known down, answered synchronously')
  t.match(fast, { allowed: true, degraded: true, limit: 5 })
  t.same(store.check('s', 'a', closed), {
    allowed: false, limit: 5, remaining: 0, resetAt: T0 + FAIL_CLOSED_RETRY_MS, retryAfterMs: FAIL_CLOSED_RETRY_MS, windowMs: 60_000, index: 0, degraded: true
  }, 'a failClosed rule refuses')
  for (let i = 0; i < 1000; i++) store.check('s', `k${i}`, open)
  t.equal(warnings.length, 1, `failures are logged once per 30 s: ${warnings.join(' | ')}`)
  t.match(await store.health(), { ok: false })

  await server.restart()
  await ready(client)
  t.match(await store.check('s', 'a', open), { allowed: true, remaining: 4, degraded: false }, 'a restarted (empty) Redis is used again')
  t.same(await store.health(), { ok: true })
})

t.test('a Redis that stops answering is given up on after timeoutMs', async t => {
  const server = await startRedisServer(t)
  const client = server.client()
  const store = createRedisRateLimitStore({ client, timeoutMs: 50 })
  t.teardown(() => store.close())
  await store.init()
  t.match(await store.check('s', 'a', open), { allowed: true, degraded: false })

  server.pause()
  t.teardown(() => server.resume())
  const answers = await Promise.all([
    timed(store.check('s', 'a', open)),
    timed(store.check('s', 'b', closed)),
    timed(store.check('s', 'c', open))
  ])
  t.match(answers.map(a => a.result), [{ allowed: true, degraded: true }, { allowed: false, degraded: true }, { allowed: true, degraded: true }])
  for (const { ms } of answers) t.ok(ms >= 45 && ms < 250, `gave up after ${ms.toFixed(0)} ms`)

  // the batch Redis never answered does not hold back the next checks: they time out too
  const later = await timed(store.check('s', 'd', open))
  t.match(later.result, { allowed: true, degraded: true })
  t.ok(later.ms >= 45 && later.ms < 250, `the next check gave up after ${later.ms.toFixed(0)} ms as well`)

  server.resume()
  t.match(await store.check('s', 'z', open), { allowed: true, remaining: 4, degraded: false }, 'answers again once Redis does')
})

t.test('a failing script call is answered as degraded', async t => {
  const server = await startRedisServer(t)
  const client = server.client()
  const store = createRedisRateLimitStore({ client, timeoutMs: 5000 })
  t.teardown(() => store.close())
  await store.init()
  // a key of the wrong type makes the script fail
  await client.set(store.keyFor('s', 'a', 'sw:60000'), 'not a hash')
  t.match(await store.check('s', 'a', open), { allowed: true, degraded: true })
  t.match(await store.check('s', 'a', closed), { allowed: false, degraded: true })
})

t.test('a store opened on an unreachable URL starts degraded and does not throw', async t => {
  const server = await startRedisServer(t)
  await server.kill()
  const { logger, warnings } = recordingLogger()
  const store = createRedisRateLimitStore({ url: server.socket, logger })
  t.teardown(() => store.close())
  const start = performance.now()
  await store.init()
  t.ok(performance.now() - start < 3000, 'init gives up within its bound')
  t.ok(warnings.length >= 1)
  const answer = store.check('s', 'a', open)
  t.notOk(answer instanceof Promise)
  t.match(answer, { allowed: true, degraded: true })
})
