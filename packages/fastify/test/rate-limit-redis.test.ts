import t from 'tap'
import { createRedisRateLimitStore } from '@waygate/core'
import { evalshaCalls, startRedisServer } from '../../core/test/rate-limit/helpers/redis-server.js'
import { buildApp } from './helpers/app.js'

const ok = async () => ({ ok: true })

// Through the plugin, with the Redis store and many requests at once: the store batches their
// checks, and what clients see must be exactly what one check after another would give
t.test('concurrent requests on the Redis store: exactly the limit passes, each with its own count', async t => {
  const server = await startRedisServer(t)
  const client = server.client()
  const store = createRedisRateLimitStore({ client, timeoutMs: 1000 })
  t.teardown(() => store.close())
  const { app } = await buildApp(t, app => {
    app.get('/search', { config: { waygate: { rateLimit: '10/minute' } } }, ok)
    app.get('/strict', { config: { waygate: { rateLimit: { limit: '3/minute', key: 'global', failClosed: true } } } }, ok)
  }, { plugin: { rateLimit: { store } } })
  await store.init()
  const before = await evalshaCalls(client)

  const answers = await Promise.all(Array.from({ length: 40 }, () => app.inject({ url: '/search', remoteAddress: '10.1.2.3' })))
  const passed = answers.filter(a => a.statusCode === 200)
  const refused = answers.filter(a => a.statusCode === 429)
  t.equal(passed.length, 10, '10 of 40 pass')
  t.equal(refused.length, 30, 'the other 30 are refused')
  t.same(passed.map(a => Number(/;r=(\d+);/.exec(String(a.headers.ratelimit))?.[1])).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    'each passing request saw its own remaining count, 9 down to 0')
  t.ok(refused.every(a => Number(a.headers['retry-after']) > 0 && a.json().error.code === 'RATE_LIMIT_EXCEEDED'))
  const calls = await evalshaCalls(client) - before
  t.ok(calls < 40, `40 requests made ${calls} script calls`)
  t.equal((await app.inject({ url: '/search', remoteAddress: '10.9.9.9' })).statusCode, 200, 'another client has its own counter')

  // Redis frozen: a fail-open route lets requests through once the store gives up, a failClosed one refuses
  const strict = await Promise.all([1, 2, 3].map(() => app.inject('/strict')))
  t.same(strict.map(a => a.statusCode), [200, 200, 200])
  server.pause()
  t.teardown(() => server.resume())
  const [open, closed] = await Promise.all([
    app.inject({ url: '/search', remoteAddress: '10.7.7.7' }),
    app.inject('/strict')
  ])
  t.equal(open.statusCode, 200, 'fail-open while Redis does not answer')
  t.equal(closed.statusCode, 429, 'failClosed refuses while Redis does not answer')
  server.resume()
  t.equal((await app.inject('/strict')).statusCode, 429, 'Redis answers again: the global limit of 3 is spent')
})
