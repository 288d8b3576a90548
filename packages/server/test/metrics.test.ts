import t from 'tap'
import { createMemoryBackend } from '@waygate/core'
import { call, login, openStream, register, startServer } from './helpers/server.js'

function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

t.test('the Waygate Server exports its services\' route status and its connected instances', async t => {
  const { url } = await startServer(t, { backend: createMemoryBackend(), heartbeatMs: 60_000, metrics: true })
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  t.equal((await register(url, 'payments', token, ['GET:/a', 'GET:/b'], 'pod-1')).status, 200)
  const one = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await one.next()
  const two = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-2', { token })
  await two.next()
  t.equal((await call(url, 'POST', '/api/routes/payments%3AGET%3A%2Fa/maintenance', { token: admin, body: { reason: 'x' } })).status, 200)

  const res = await fetch(`${url}/metrics`)
  t.equal(res.status, 200, 'open by default, outside the admin auth')
  const text = await res.text()
  t.equal(sample(text, 'waygate_server_service_instances', { service: 'payments' }), 2)
  t.equal(sample(text, 'waygate_route_status', { route: 'payments:GET:/a', status: 'maintenance' }), 1)
  t.equal(sample(text, 'waygate_route_status', { route: 'payments:GET:/b', status: 'active' }), 1)
  t.equal(sample(text, 'waygate_route_status', { service: 'payments', status: 'maintenance', route: 'payments:GET:/a' }), 1, 'the service label')
  const age = sample(text, 'waygate_server_instance_heartbeat_age_seconds', { service: 'payments', instance: 'pod-1' })
  t.ok(age !== undefined && age >= 0 && age < 60, `heartbeat age ${age}`)
  t.type(sample(text, 'waygate_server_instance_revision_lag', { instance: 'pod-2' }), 'number')
  t.equal(sample(text, 'waygate_backend_up', { backend: 'memory' }), 1)
})

t.test('metrics.auth: the admin\'s tokens guard the endpoint', async t => {
  const { url } = await startServer(t, { backend: createMemoryBackend(), metrics: { auth: true, path: '/internal/metrics' } })
  t.equal((await fetch(`${url}/internal/metrics`)).status, 401)
  const admin = await login(url)
  const res = await fetch(`${url}/internal/metrics`, { headers: { authorization: `Bearer ${admin}` } })
  t.equal(res.status, 200)
  t.match(await res.text(), /waygate_global_maintenance 0/)
  t.equal((await fetch(`${url}/metrics`)).status, 404)
})

t.test('bad metrics options are refused', async t => {
  await t.rejects(startServer(t, { backend: createMemoryBackend(), metrics: { path: 'x' } }), { code: 'WG_ERR_SERVER_OPTIONS_INVALID', message: /metrics\.path/ })
})
