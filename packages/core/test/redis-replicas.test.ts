import t from 'tap'
import { createRedisBackend } from '@waygate/core'
import { routeState } from '@waygate/core/testing'
import { startRedisServer } from './helpers/redis-server.js'

// minReplicas: a write is acknowledged only once that many replicas hold it (WAIT); the failover
// test (packages/admin/test/sentinel-failover.test.ts) runs it with a replica.

const server = await startRedisServer(t)

t.test('minReplicas: a write no replica confirms is refused quickly, and says it may still be on the master', async t => {
  const backend = createRedisBackend({ url: server.url }, { keyPrefix: 'replicas', minReplicas: 1, replicaTimeoutMs: 100 })
  t.teardown(() => backend.close())
  await backend.init?.()
  const started = performance.now()
  const err = await backend.updateRoute('GET:/x', () => ({ next: routeState('GET:/x', { status: 'disabled' }) })).catch((e: unknown) => e)
  t.match(err, { code: 'WG_ERR_BACKEND_UNAVAILABLE', statusCode: 503, message: /only 0 of 1 replicas confirmed it within 100 ms; a failover may lose it/ })
  t.ok(performance.now() - started < 1000, 'bounded by replicaTimeoutMs, not the command timeout')
  t.match(await backend.getRoute('GET:/x'), { status: 'disabled' }, 'the write is on the master')
})

t.test('minReplicas 0 (the default) acknowledges once the master has it', async t => {
  const backend = createRedisBackend({ url: server.url }, { keyPrefix: 'replicas0' })
  t.teardown(() => backend.close())
  await backend.init?.()
  t.match(await backend.updateRoute('GET:/x', () => ({ next: routeState('GET:/x', { status: 'disabled' }) })), { status: 'disabled' })
})

t.test('rejects bad replica options and connections', async t => {
  t.throws(() => createRedisBackend({ url: server.url }, { minReplicas: -1 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisBackend({ url: server.url }, { minReplicas: 1, replicaTimeoutMs: 1000, commandTimeoutMs: 1000 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisBackend({ cluster: [] }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisBackend({ sentinels: [{ host: '127.0.0.1', port: 1 }], name: '' }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createRedisBackend({ url: server.url, cluster: [{ host: '127.0.0.1', port: 1 }] } as never), { code: 'WG_ERR_OPTIONS_INVALID' })
})
