import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createMemoryBackend } from '@waygate/core'
// the CLI depends on no server package; like the other tests, this one borrows the workspace's sources
import { createWaygateServer } from '@waygate/server'
import { json, loggedIn, sandbox, startServer } from './helpers/server.js'

// `waygate token …` details the end-to-end workflow (waygate-server.test.ts) does not go through:
// where the service comes from, human output, and an admin that issues no tokens.

t.test('token create takes the scope from WAYGATE_SERVICE (and says so); list and revoke in text', async t => {
  const app = await createWaygateServer({ backend: createMemoryBackend(), auth: { username: 'admin', password: 'secret' }, secretKey: 'cli-test-secret-key-0123456789', dashboard: false })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: 'secret', platform: 'cli' } })
  const box = await sandbox(t, { WAYGATE_SERVER_URL: url, WAYGATE_TOKEN: login.json().token })

  const created = await box.run(['token', 'create', '--name', 'blue pods'], { env: { WAYGATE_SERVICE: 'payments-service' } })
  t.equal(created.code, 0, created.stderr)
  t.match(created.stderr, /^note: for service payments-service \(from WAYGATE_SERVICE\)\ncreated token ([0-9a-f-]{36}) for payments-service \("blue pods"\), expires /)
  t.match(created.stderr, /it is shown only now/)
  const token = created.stdout.trim()
  const me = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.match(me.json(), { service: 'payments-service', platform: 'sdk' }, 'the printed token is a token of that service')

  const other = await box.run(['token', 'create', '--service', 'orders-service', '--json'])
  t.equal(other.code, 0, other.stderr)
  t.equal(other.stderr, '', 'nothing but JSON with --json')
  t.match(json(other), { service: 'orders-service', name: '', revokedAt: null, token: /^wg1\./ })

  const listed = await box.run(['token', 'list'])
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /^ID\s+SERVICE\s+NAME\s+STATE\s+CREATED\s+BY\s+EXPIRES\n/)
  t.match(listed.stdout, /payments-service\s+blue pods\s+active\s+(just now|\S+ ago)\s+admin\s+\d{4}-\d{2}-\d{2}/)
  t.notOk(listed.stdout.includes(token), 'never the token')
  const scoped = await box.run(['token', 'ls', '--service', 'orders-service', '--json'])
  t.same(json(scoped).map((i: { service: string }) => i.service), ['orders-service'])

  const id = json(other).id as string
  const revoked = await box.run(['token', 'revoke', id.toUpperCase()])
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, new RegExp(`^revoked token ${id} of orders-service at \\d{4}-\\d{2}-\\d{2}T`))
  const after = await box.run(['token', 'list', '--service', 'orders-service'])
  t.match(after.stdout, /orders-service\s+-\s+revoked/)
  const none = await box.run(['token', 'list', '--service', 'nobody'])
  t.equal(none.stdout, 'no tokens for service nobody\n')
})

t.test('an app\'s own admin issues no service tokens: exit 1 with a hint', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const res = await box.run(['token', 'list'])
  t.equal(res.code, 1)
  t.match(res.stderr, /hint: service tokens are issued by a Waygate Server/)
  const reset = await box.run(['srl', 'reset', 'payments-service'])
  t.equal(reset.code, 1)
  t.match(reset.stderr, /hint: service maintenance and service rate limits are served by a Waygate Server/)
})
