import t from 'tap'
import { createMemoryBackend } from '@waygate/core'
import { build } from '../basic.js'

t.test('the basic example serves Prometheus metrics at /metrics and counts each route\'s traffic', async t => {
  const app = await build({ env: 'dev', backend: createMemoryBackend() })
  t.teardown(() => app.close())
  await app.ready()
  for (let i = 0; i < 3; i++) await app.inject('/payments')
  await app.inject('/v1/users')
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /waygate_requests_total\{route="GET:\/payments",outcome="maintenance"\} 3/)
  t.match(res.body, /waygate_requests_total\{route="GET:\/v1\/users",outcome="deprecated"\} 1/)
  t.match(res.body, /waygate_route_status\{route="GET:\/old-endpoint",service="",status="disabled"\} 1/)
  t.same(app.waygateTraffic.get('GET:/payments')!.totals('hour'), { requests: 3, blocked: 3 })
  await app.waygate.enableGlobalMaintenance({ reason: 'deploy' })
  t.equal((await app.inject('/metrics')).statusCode, 200, 'outside waygate: up under global maintenance')
})
