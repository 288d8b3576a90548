// Service tokens: what operators create, list and revoke through the REST API, what a service can
// do with one, and what revoking one does to a service that uses it (real processes on loopback).
import t from 'tap'
import { createMemoryBackend, createRedisBackend } from '@waygate/core'
import { startRedisServer } from '../../core/test/helpers/redis-server.js'
import { call, login, openStream, register, startServer } from './helpers/server.js'
import { get, SERVICE_SCRIPT, serverWithToken, startServerProcess, startTsProcess, until } from './helpers/processes.js'

const DAY = 86_400_000

t.test('create answers the token once; list never shows it; filters, bad input and unknown ids', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  const created = await call(url, 'POST', '/api/tokens', { token: admin, body: { service: 'payments-service', name: 'prod pods' } })
  t.equal(created.status, 201)
  t.match(created.body, { service: 'payments-service', name: 'prod pods', createdBy: 'admin', revokedAt: null })
  t.match(created.body.token, /^wg1\./)
  const lifetime = Date.parse(created.body.expiresAt) - Date.parse(created.body.createdAt)
  t.ok(Math.abs(lifetime - 365 * DAY) < 2000, 'lives 365 days by default')

  const short = await call(url, 'POST', '/api/tokens', { token: admin, body: { service: 'orders-service', expires: '12h' } })
  t.equal(short.status, 201)
  t.ok(Math.abs(Date.parse(short.body.expiresAt) - Date.parse(short.body.createdAt) - DAY / 2) < 2000, '12h')
  t.equal(short.body.name, '')

  const listed = await call(url, 'GET', '/api/tokens', { token: admin })
  t.equal(listed.status, 200)
  t.same(listed.body.map((i: { id: string }) => i.id), [short.body.id, created.body.id], 'both, newest first')
  const text = JSON.stringify(listed.body)
  t.notOk(text.includes(created.body.token) || text.includes(short.body.token), 'the list never carries a token')
  t.notOk(listed.body.some((i: Record<string, unknown>) => 'token' in i))
  const only = await call(url, 'GET', '/api/tokens?service=orders-service', { token: admin })
  t.same(only.body.map((i: { id: string }) => i.id), [short.body.id], '?service= filters')

  for (const [body, why] of [
    [{ service: 'GET' }, 'an HTTP method names no service'],
    [{ service: 'Payments' }, 'upper case'],
    [{ service: 'payments-service', expires: 'forever' }, 'not a duration'],
    [{ service: 'payments-service', expires: '6y' }, 'past five years'],
    [{ service: 'payments-service', expires: '10s' }, 'under a minute'],
    [{ service: 'payments-service', token: 'mine' }, 'an unknown field'],
    [{ service: 'payments-service', name: 'a\u0007b' }, 'a control character in the name']
  ] as const) {
    const res = await call(url, 'POST', '/api/tokens', { token: admin, body })
    t.equal(res.status, 400, why)
    t.equal(res.body.error.code, 'WG_ERR_REQUEST_INVALID', why)
  }
  const unknown = await call(url, 'DELETE', '/api/tokens/00000000-0000-4000-8000-000000000000', { token: admin })
  t.equal(unknown.status, 404)
  t.equal(unknown.body.error.code, 'WG_ERR_TOKEN_NOT_FOUND')
  t.equal((await call(url, 'DELETE', '/api/tokens/not-an-id', { token: admin })).status, 400)
  t.equal((await call(url, 'GET', '/api/tokens')).status, 401, 'operators only: a token is needed')
})

t.test('a service token reaches its own service only, and no operator endpoint', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  const { body: a } = await call(url, 'POST', '/api/tokens', { token: admin, body: { service: 'payments-service' } })
  t.equal((await register(url, 'payments-service', a.token, ['GET:/api/payments'])).status, 200, 'registers its own service')
  t.equal((await call(url, 'GET', '/api/sdk/services/payments-service/snapshot', { token: a.token })).status, 200)
  const me = await call(url, 'GET', '/api/auth/me', { token: a.token })
  t.match(me.body, { service: 'payments-service', platform: 'sdk' })

  const other = await register(url, 'orders-service', a.token, ['GET:/api/cart'])
  t.equal(other.status, 403, 'not another service')
  t.equal(other.body.error.code, 'WG_ERR_AUTH_SCOPE')
  t.equal((await call(url, 'GET', '/api/sdk/services/orders-service/snapshot', { token: a.token })).status, 403)
  for (const [method, path, body] of [
    ['GET', '/api/tokens', undefined],
    ['POST', '/api/tokens', { service: 'payments-service' }],
    ['DELETE', `/api/tokens/${a.id as string}`, undefined],
    ['GET', '/api/routes', undefined],
    ['POST', '/api/services/payments-service/maintenance/enable', {}],
    ['GET', '/api/services', undefined]
  ] as const) {
    const res = await call(url, method, path, { token: a.token, body })
    t.equal(res.status, 403, `${method} ${path}`)
    t.equal(res.body.error.code, 'WG_ERR_AUTH_SCOPE', `${method} ${path}`)
  }
  t.equal((await call(url, 'GET', '/api/tokens', { token: admin })).body[0].revokedAt, null, 'the service could not revoke itself through the operators\' endpoint')
})

t.test('a service token outlives its creator\'s password, not its revocation; both are audited', async t => {
  const backend = createMemoryBackend()
  const first = await startServer(t, { backend, auth: { username: 'admin', password: 'secret' } })
  const admin = await login(first.url)
  const { body: created } = await call(first.url, 'POST', '/api/tokens', { token: admin, body: { service: 'payments-service', name: 'pods' } })
  await first.app.close()

  // the same backend and secret, the admin's password changed: operators log in again, the service does not
  const second = await startServer(t, { backend, auth: { username: 'admin', password: 'changed' } })
  t.equal((await call(second.url, 'GET', '/api/auth/me', { token: admin })).status, 401, 'the operator\'s old token died with the password')
  t.equal((await register(second.url, 'payments-service', created.token, ['GET:/x'])).status, 200, 'the service token lives on')

  const admin2 = await login(second.url, { password: 'changed' })
  const revoked = await call(second.url, 'DELETE', `/api/tokens/${created.id as string}`, { token: admin2 })
  t.equal(revoked.status, 200)
  t.match(revoked.body, { id: created.id, service: 'payments-service' })
  t.ok(Date.parse(revoked.body.revokedAt) > 0)
  const refused = await register(second.url, 'payments-service', created.token, ['GET:/x'])
  t.equal(refused.status, 401)
  t.match(refused.body.error.message, /revoked/)
  const again = await call(second.url, 'DELETE', `/api/tokens/${created.id as string}`, { token: admin2 })
  t.equal(again.body.revokedAt, revoked.body.revokedAt, 'revoking twice changes nothing')

  const audit = (await call(second.url, 'GET', '/api/audit?service=payments-service', { token: admin2 })).body as Array<{ action: string, actor: string, service: string, reason: string }>
  const actions = audit.filter(e => e.action.startsWith('token_'))
  t.same(actions.map(e => [e.action, e.actor, e.service]), [['token_revoked', 'admin', 'payments-service'], ['token_created', 'admin', 'payments-service']],
    'created and revoked, once each')
  t.notOk(JSON.stringify(audit).includes(created.token), 'the audit log never holds the token')
  t.match(actions[1]!.reason, new RegExp(`${created.id as string} "pods"`))
})

t.test('revoked on one server instance, refused and its streams closed on the other (one Redis)', async t => {
  const redis = await startRedisServer(t)
  const a = await startServer(t, { backend: createRedisBackend({ url: redis.url }), heartbeatMs: 100 })
  const b = await startServer(t, { backend: createRedisBackend({ url: redis.url }), heartbeatMs: 100 })
  const admin = await login(a.url)
  const { body: created } = await call(a.url, 'POST', '/api/tokens', { token: admin, body: { service: 'payments-service' } })
  t.equal((await register(b.url, 'payments-service', created.token, ['GET:/api/payments'], 'pod-1')).status, 200, 'created through A, works on B')
  const stream = await openStream(t, b.url, '/api/sdk/services/payments-service/events?instance=pod-1', { token: created.token })
  await stream.next(e => e.event === 'snapshot')
  t.same((await call(b.url, 'GET', '/api/tokens', { token: admin })).body.map((i: { id: string }) => i.id), [created.id], 'B lists what A created')

  const started = Date.now()
  t.equal((await call(a.url, 'DELETE', `/api/tokens/${created.id as string}`, { token: admin })).status, 200)
  await stream.closed(3000)
  t.comment(`revoked through A, the stream on B closed ${Date.now() - started} ms after the request was sent`)
  t.equal((await call(b.url, 'GET', '/api/sdk/services/payments-service/snapshot', { token: created.token })).status, 401, 'B refuses it at once')
})

t.test('a real service attached with a token: revoked, its stream closes, it keeps serving its snapshot, and stays out after a server restart', async t => {
  const fleet = await serverWithToken(t, 'alpha', { name: 'alpha pods', expires: '30d' })
  const { url: serverUrl, options: serverProcess, created } = fleet
  let server = fleet.proc
  let admin = fleet.admin

  const service = startTsProcess(t, 'alpha', SERVICE_SCRIPT, [], {
    SERVICE: 'alpha',
    WAYGATE_SERVER_URL: serverUrl,
    WAYGATE_TOKEN: created.token,
    READY_TIMEOUT_MS: '5000',
    BACKOFF_MS: '150',
    PROBE_MS: '500',
    LOG_LEVEL: 'info'
  })
  const [, serviceUrl] = await service.waitFor(/listening (http:\/\/\S+)/, 30_000)
  const sync = async (): Promise<any> => (await get(`${serviceUrl!}/sync`)).body
  await until(async () => (await sync())?.state === 'connected' ? true : undefined, 10_000, () => `alpha did not connect:\n${service.logs()}`)
  const instances = async (): Promise<unknown[]> =>
    ((await call(serverUrl, 'GET', '/api/services', { token: admin })).body as Array<{ name: string, instances: unknown[] }>).find(s => s.name === 'alpha')?.instances ?? []
  t.equal((await instances()).length, 1, 'the server lists the instance that attached with the token')

  // an operator's change reaches it, before the revocation
  t.equal((await call(serverUrl, 'POST', `/api/routes/${encodeURIComponent('alpha:GET:/api/items')}/disable`, { token: admin, body: { reason: 'before' } })).status, 200)
  await until(async () => (await get(`${serviceUrl!}/api/items`)).status === 503 ? true : undefined, 5000, () => 'alpha did not apply the change')

  const revokedAt = Date.now()
  t.equal((await call(serverUrl, 'DELETE', `/api/tokens/${created.id as string}`, { token: admin })).status, 200)
  const refused = await until(async () => {
    const s = await sync()
    return s?.state === 'unauthorized' ? s : undefined
  }, 10_000, () => `alpha's stream did not end with a refusal:\n${service.logs()}`)
  t.comment(`the service reported 'unauthorized' ${Date.now() - revokedAt} ms after the revocation was sent`)
  t.equal(refused.state, 'unauthorized')
  t.match(service.logs(), /refused this service's credentials \(401 WG_ERR_AUTH_REQUIRED: [^)]*the service token was revoked/, 'the service says why it stopped following the server')
  t.equal((await get(`${serviceUrl!}/api/items`)).status, 503, 'it keeps enforcing its last snapshot')
  t.equal((await get(`${serviceUrl!}/health`)).status, 200, 'and keeps serving')
  // its stream is closed: listed as disconnected for a while (not connected)
  let left: unknown[] = []
  await until(async () => (left = await instances()).length === 1 && (left[0] as { state: string }).state === 'disconnected' ? true : undefined, 10_000,
    () => `the revoked instance stayed connected: ${JSON.stringify(left)}\n${service.logs()}\n${server.logs()}`)

  // the revocation is in the file: the restarted server still refuses the token, and the service stays out
  await server.stop('SIGTERM')
  server = await startServerProcess(t, serverProcess)
  admin = await login(serverUrl)
  const afterRestart = await call(serverUrl, 'GET', '/api/sdk/services/alpha/snapshot', { token: created.token })
  t.equal(afterRestart.status, 401, 'still revoked after the restart')
  t.same((await call(serverUrl, 'GET', '/api/tokens', { token: admin })).body.map((i: { id: string, revokedAt: string | null }) => [i.id, i.revokedAt !== null]), [[created.id, true]])
  // the service probes every 500 ms: give it several tries at the restarted server
  await new Promise(resolve => setTimeout(resolve, 2000))
  t.equal((await sync()).state, 'unauthorized', 'it cannot attach again')
  t.equal((await instances()).length, 0)
})
