// The basic example and the Waygate Server example on PostgreSQL, each started with its one command
// plus WAYGATE_BACKEND=postgres and WAYGATE_POSTGRES_URL: two instances of each share one database.
import t from 'tap'
import { startPostgres } from '../../packages/core/test/helpers/postgres.js'
import { runScript, until } from './helpers/processes.js'

const db = await startPostgres(t)
const SECRET = 'postgres-example-secret-key'

async function login (baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret' })
  })
  if (res.status !== 200) throw new Error(`login at ${baseUrl} answered ${res.status}: ${await res.text()}`)
  return ((await res.json()) as { token: string }).token
}

async function post (url: string, token: string, body: unknown = {}): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.body?.cancel()
  return res.status
}

t.test('two basic examples on one database: a change through one is enforced by the other', async t => {
  const env = { PORT: '0', WAYGATE_BACKEND: 'postgres', WAYGATE_POSTGRES_URL: await db.createDatabase('basic'), WAYGATE_SECRET_KEY: SECRET }
  const a = runScript(t, 'basic', env)
  const b = runScript(t, 'basic', env)
  const [, aUrl] = await a.waitFor(/basic example on (http:\/\/\S+)\s+\(env: dev, backend: postgres\)/, 30_000)
  const [, bUrl] = await b.waitFor(/basic example on (http:\/\/\S+)\s+\(env: dev, backend: postgres\)/, 30_000)
  t.equal((await fetch(`${bUrl}/payments`)).status, 503, 'B: /payments is in maintenance, as declared')

  const token = await login(`${aUrl}/waygate`)
  t.equal(await post(`${aUrl}/waygate/api/routes/${encodeURIComponent('GET:/payments')}/enable`, token), 200, 'enabled through A\'s REST API')
  const status = await until(async () => {
    const res = await fetch(`${bUrl}/payments`)
    await res.body?.cancel()
    return res.status === 200 ? res.status : undefined
  }, 10_000, () => `B never enforced the change:\n${b.logs()}`)
  t.equal(status, 200, 'B serves /payments again')
  t.same(await db.query('SELECT state->>\'status\' AS status FROM waygate.routes WHERE key = $1', ['GET:/payments'], 'basic'), [{ status: 'active' }],
    'the state is a row in waygate.routes')
})

t.test('two Waygate Servers on one database are one server: a service attached to one follows a change made through the other', async t => {
  const env = { PORT: '0', WAYGATE_BACKEND: 'postgres', WAYGATE_POSTGRES_URL: await db.createDatabase('server'), WAYGATE_SECRET_KEY: SECRET }
  const a = runScript(t, 'waygate-server', env)
  const b = runScript(t, 'waygate-server', env)
  const [, aUrl] = await a.waitFor(/Waygate Server on (http:\/\/\S+)\s+\(backend: postgres\)/, 30_000)
  const [, bUrl] = await b.waitFor(/Waygate Server on (http:\/\/\S+)\s+\(backend: postgres\)/, 30_000)
  const payments = runScript(t, 'payments-service', { PORT: '0', WAYGATE_SERVER_URL: bUrl! })
  const [, paymentsUrl] = await payments.waitFor(/payments-service on (http:\/\/\S+)/, 30_000)
  await until(async () => {
    const res = await fetch(`${paymentsUrl}/health`)
    await res.body?.cancel()
    return res.status === 200 ? true : undefined
  }, 10_000, () => `payments-service /health never answered 200:\n${payments.logs()}`)
  const refunds = await fetch(`${paymentsUrl}/api/refunds`)
  await refunds.body?.cancel()
  t.equal(refunds.status, 200, 'before: /api/refunds answers')

  const token = await login(aUrl!)
  t.equal(await post(`${aUrl}/api/services/payments-service/maintenance/enable`, token, { reason: 'db upgrade' }), 200,
    'service maintenance turned on through server A')
  const status = await until(async () => {
    const res = await fetch(`${paymentsUrl}/api/refunds`)
    await res.body?.cancel()
    return res.status === 503 ? res.status : undefined
  }, 10_000, () => `the service attached to B never followed:\n${payments.logs()}\n${b.logs()}`)
  t.equal(status, 503, 'the service attached to server B answers 503')
})
