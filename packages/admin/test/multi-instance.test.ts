import t from 'tap'
import { createRedisBackend } from '@waygate/core'
import { startRedisServer, startSocketProxy, type RedisServer, type SocketProxy } from '../../core/test/helpers/redis-server.js'
import { buildAdminApp, enc, type AdminApp } from './helpers/app.js'

// Two instances of one app (waygate + admin) sharing one Redis, as behind a load balancer.

const server = await startRedisServer(t)
let prefixes = 0

async function instance (t: { teardown: (fn: () => unknown) => void }, prefix: string, via: RedisServer | SocketProxy = server): Promise<AdminApp> {
  return buildAdminApp(t, {
    engine: { backend: createRedisBackend({ url: via.url }, { keyPrefix: prefix }), resyncIntervalMs: 0 }
  })
}

/** Polls until `check` holds; resolves how long it took, or -1 after `timeoutMs`. */
async function within (timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now()
  while (!await check()) {
    if (performance.now() - start > timeoutMs) return -1
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return performance.now() - start
}

t.test('a change through the admin API of one instance is enforced by the other within a second', async t => {
  const prefix = `m${++prefixes}`
  const a = await instance(t, prefix)
  const b = await instance(t, prefix)
  const token = await a.login()
  const headers = { 'x-waygate-token': token }
  t.equal((await b.app.inject('/users/1')).statusCode, 200)

  const res = await a.app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/disable`, headers, payload: { reason: 'incident 42' } })
  t.equal(res.statusCode, 200)
  const took = await within(1000, async () => (await b.app.inject('/users/1')).statusCode === 503)
  t.ok(took >= 0, `instance B answers 503 after ${took.toFixed(1)} ms`)
  t.match((await b.app.inject('/users/1')).json(), { error: { code: 'ROUTE_DISABLED', reason: 'incident 42' } })

  const onB = await b.app.inject({ url: `/waygate/api/routes/${enc('GET:/users/:id')}`, headers: { 'x-waygate-token': token } })
  t.match(onB.json(), { status: 'disabled', reason: 'incident 42', updatedBy: 'admin' }, 'B\'s admin shows it, and accepts A\'s token (same secret)')
  const audit = await b.app.inject({ url: '/waygate/api/audit', headers })
  t.match(audit.json(), [{ action: 'disable', key: 'GET:/users/:id', actor: 'admin', platform: 'cli' }], 'the audit log is shared')

  await a.app.inject({ method: 'POST', url: '/waygate/api/global/enable', headers, payload: { reason: 'deploy', exemptPaths: ['/health'] } })
  t.ok(await within(1000, async () => (await b.app.inject('/users/2')).json().error?.code === 'MAINTENANCE_MODE') >= 0, 'global maintenance too')
})

t.test('a token revoked on one instance is refused by the other', async t => {
  const prefix = `m${++prefixes}`
  const a = await instance(t, prefix)
  const b = await instance(t, prefix)
  const token = await a.login()
  const headers = { 'x-waygate-token': token }
  t.equal((await b.app.inject({ url: '/waygate/api/routes', headers })).statusCode, 200)
  t.same((await a.app.inject({ method: 'POST', url: '/waygate/api/auth/logout', headers })).json(), { revoked: true })
  t.equal((await b.app.inject({ url: '/waygate/api/routes', headers })).statusCode, 401)
})

t.test('Redis killed: both keep answering with the last states, changes get a quick 503; restarted: both follow again', async t => {
  const redis = await startRedisServer(t)
  const prefix = `m${++prefixes}`
  const a = await instance(t, prefix, redis)
  const b = await instance(t, prefix, redis)
  const token = await a.login()
  const headers = { 'x-waygate-token': token }
  await a.app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/maintenance`, headers, payload: { reason: 'before' } })
  t.ok(await within(1000, async () => (await b.app.inject('/users/1')).statusCode === 503) >= 0)

  await redis.kill({ save: true })
  for (const [name, app] of [['A', a.app], ['B', b.app]] as const) {
    t.match((await app.inject('/users/1')).json(), { error: { code: 'MAINTENANCE_MODE', reason: 'before' } }, `${name} still enforces the last state`)
    t.equal((await app.inject('/payments')).statusCode, 503, `${name} keeps the declared maintenance`)
    t.equal((await app.inject('/health')).statusCode, 200, `${name} keeps serving`)
  }
  const started = performance.now()
  const failed = await a.app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/enable`, headers })
  const took = performance.now() - started
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().error.code, 'WG_ERR_BACKEND_UNAVAILABLE')
  t.ok(took < 1000, `the change fails in ${took.toFixed(1)} ms`)
  const status = await b.app.inject({ url: '/waygate/api/status', headers })
  t.match(status.json(), { backend: 'redis', healthy: false }, 'the status endpoint reports it')

  await redis.start()
  const healthy = async (app: AdminApp['app']): Promise<boolean> => (await app.inject({ url: '/waygate/api/status', headers })).json().healthy === true
  const back = await within(5000, async () => await healthy(a.app) && await healthy(b.app))
  t.ok(back >= 0, `both reconnect and reload, ${back.toFixed(0)} ms after the restart`)
  const res = await b.app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('GET:/users/:id')}/enable`, headers })
  t.equal(res.statusCode, 200, 'changes work again')
  t.ok(await within(1000, async () => (await a.app.inject('/users/1')).statusCode === 200) >= 0, 'and the other instance follows')
})

t.test('a change made while one instance was cut off is applied when it reconnects', async t => {
  const prefix = `m${++prefixes}`
  const proxy = await startSocketProxy(t, server.socket)
  const a = await instance(t, prefix)
  const b = await instance(t, prefix, proxy)
  const token = await a.login()
  await proxy.cut()
  await a.app.inject({ method: 'POST', url: `/waygate/api/routes/${enc('POST:/payments')}/disable`, headers: { 'x-waygate-token': token }, payload: { reason: 'while B was away' } })
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal((await b.app.inject({ method: 'POST', url: '/payments' })).statusCode, 200, 'B cannot know yet')
  await proxy.restore()
  const took = await within(5000, async () => (await b.app.inject({ method: 'POST', url: '/payments' })).statusCode === 503)
  t.ok(took >= 0, `B applies it ${took.toFixed(0)} ms after the link is back`)
})
