import t from 'tap'
import { buildAdminApp, enc } from './helpers/app.js'

// Bad input must be a 4xx with a code and a message, never a 500, and must change nothing.
t.test('malformed and hostile input: 4xx with a code, state unchanged', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  const before = JSON.stringify({ routes: engine.listRoutes(), global: engine.getGlobal() })
  const auditBefore = (await engine.listAudit()).length
  const key = enc('GET:/users/:id')
  const huge = 'x'.repeat(70_000)
  const cases: Array<{ name: string, method: 'POST' | 'GET' | 'DELETE', url: string, payload?: unknown, raw?: string, contentType?: string }> = [
    { name: 'malformed JSON', method: 'POST', url: `/waygate/api/routes/${key}/disable`, raw: '{"reason": "x",', contentType: 'application/json' },
    { name: 'JSON array body', method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: ['x'] },
    { name: 'wrong type for reason', method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: { reason: 42 } },
    { name: 'unknown field', method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: { reasn: 'typo' } },
    { name: 'reason too long', method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: { reason: 'x'.repeat(2001) } },
    { name: 'body over the limit', method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: { reason: huge } },
    { name: 'invalid date', method: 'POST', url: `/waygate/api/routes/${key}/maintenance`, payload: { end: 'tomorrow-ish' } },
    { name: 'impossible date', method: 'POST', url: `/waygate/api/routes/${key}/maintenance`, payload: { end: '2030-02-31T25:61:00Z' } },
    { name: 'end before start', method: 'POST', url: `/waygate/api/routes/${key}/schedule`, payload: { start: '2h', end: '1h' } },
    { name: 'end in the past', method: 'POST', url: `/waygate/api/routes/${key}/schedule`, payload: { start: '2001-01-01T00:00:00Z', end: '2001-01-02T00:00:00Z' } },
    { name: 'schedule without end', method: 'POST', url: `/waygate/api/routes/${key}/schedule`, payload: { start: '1h' } },
    { name: 'until in the past', method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: { until: '2001-01-01T00:00:00Z' } },
    { name: 'empty env list', method: 'POST', url: `/waygate/api/routes/${key}/env`, payload: { envs: [] } },
    { name: 'bad env name', method: 'POST', url: `/waygate/api/routes/${key}/env`, payload: { envs: ['prod<script>'] } },
    { name: 'bad successor', method: 'POST', url: `/waygate/api/routes/${key}/deprecate`, payload: { successor: '/v2 users' } },
    { name: 'not a key', method: 'POST', url: '/waygate/api/routes/hello/disable', payload: {} },
    { name: 'unknown method in key', method: 'POST', url: `/waygate/api/routes/${enc('FETCH:/users/:id')}/disable`, payload: {} },
    { name: 'unknown route', method: 'POST', url: `/waygate/api/routes/${enc('GET:/nope')}/disable`, payload: {} },
    { name: 'ambiguous bare path', method: 'POST', url: `/waygate/api/routes/${enc('/payments')}/disable`, payload: {} },
    { name: 'very long key', method: 'GET', url: `/waygate/api/routes/${enc('GET:/' + 'a'.repeat(5000))}` },
    { name: 'unknown status filter', method: 'GET', url: '/waygate/api/routes?status=broken' },
    { name: 'page zero', method: 'GET', url: '/waygate/api/routes?page=0' },
    { name: 'perPage huge', method: 'GET', url: '/waygate/api/routes?perPage=100000' },
    { name: 'audit limit not a number', method: 'GET', url: '/waygate/api/audit?limit=lots' },
    { name: 'audit bad since', method: 'GET', url: '/waygate/api/audit?since=yesterday' },
    { name: 'audit until before since', method: 'GET', url: '/waygate/api/audit?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z' },
    { name: 'global exempt not an array', method: 'POST', url: '/waygate/api/global/enable', payload: { exemptPaths: '/health' } },
    { name: 'global exempt bad key', method: 'POST', url: '/waygate/api/global/enable', payload: { exemptPaths: ['health'] } },
    { name: 'includeForceActive not boolean', method: 'POST', url: '/waygate/api/global/enable', payload: { includeForceActive: 'yes' } },
    { name: 'exempt add empty', method: 'POST', url: '/waygate/api/global/exempt/add', payload: { paths: [] } },
    { name: 'login missing password', method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin' } },
    { name: 'login bad platform', method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'admin', password: 'secret', platform: 'root' } },
    { name: 'text/plain body', method: 'POST', url: `/waygate/api/routes/${key}/disable`, raw: 'reason=x', contentType: 'text/plain' }
  ]
  for (const c of cases) {
    const res = await app.inject({
      method: c.method,
      url: c.url,
      headers: { ...headers, ...(c.contentType === undefined ? {} : { 'content-type': c.contentType }) },
      ...(c.raw !== undefined ? { payload: c.raw } : c.payload !== undefined ? { payload: c.payload as object } : {})
    })
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${c.name}: ${res.statusCode} is a 4xx`)
    const body = res.json()
    t.match(body, { error: { code: /^(WG_ERR|FST_ERR)_[A-Z_]+$/, message: String } }, `${c.name}: coded error body`)
  }
  // a URL Fastify cannot decode is refused before routing, in Fastify's own error shape
  const badUrl = await app.inject({ method: 'POST', url: '/waygate/api/routes/GET%3A%2F%E0%A4%A/disable', headers, payload: {} })
  t.equal(badUrl.statusCode, 400)
  t.equal(badUrl.json().code, 'FST_ERR_BAD_URL')
  t.equal(JSON.stringify({ routes: engine.listRoutes(), global: engine.getGlobal() }), before, 'no state changed')
  t.equal((await engine.listAudit()).length, auditBefore, 'no audit entry written')
})

t.test('random junk bodies and keys never produce a 500', async t => {
  const { app, login } = await buildAdminApp(t)
  const headers = { 'x-waygate-token': await login() }
  let seed = 42
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const alphabet = 'aZ09:/%{}[]"\\\u0000\u00e9\ud83d\ude00 <>-_.~*'
  const chars = Array.from(alphabet)
  const junk = (n: number) => Array.from({ length: n }, () => chars[Math.floor(rand() * chars.length)]).join('')
  const actions = ['enable', 'disable', 'maintenance', 'env', 'schedule', 'deprecate']
  for (let i = 0; i < 150; i++) {
    const action = actions[i % actions.length]!
    const key = i % 3 === 0 ? enc(junk(12)) : enc('GET:/users/:id')
    const res = await app.inject({
      method: 'POST',
      url: `/waygate/api/routes/${key}/${action}`,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: i % 2 === 0 ? junk(40) : JSON.stringify({ reason: junk(10), start: junk(8), end: junk(8), envs: [junk(5)], until: junk(4) })
    })
    if (res.statusCode >= 500) t.fail(`${action} ${res.statusCode} ${res.body}`)
  }
  t.pass('150 junk requests, no 5xx')
})
