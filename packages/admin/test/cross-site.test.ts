import t from 'tap'
import { buildAdminApp, enc, USER } from './helpers/app.js'

const key = enc('GET:/users/:id')

// every kind of mutation the API has: with a body, without one, DELETE, login and logout
const MUTATIONS: Array<{ method: 'POST' | 'DELETE', url: string, payload?: object }> = [
  { method: 'POST', url: '/waygate/api/global/enable' },
  { method: 'POST', url: '/waygate/api/global/disable' },
  { method: 'POST', url: '/waygate/api/global/exempt/add', payload: { paths: ['/health'] } },
  { method: 'POST', url: `/waygate/api/routes/${key}/disable`, payload: { reason: 'x' } },
  { method: 'POST', url: `/waygate/api/routes/${key}/disable` },
  { method: 'POST', url: `/waygate/api/routes/${key}/env`, payload: { envs: ['staging'] } },
  { method: 'DELETE', url: `/waygate/api/routes/${key}/env` },
  { method: 'DELETE', url: `/waygate/api/routes/${key}/schedule` },
  { method: 'POST', url: '/waygate/api/auth/login', payload: USER },
  { method: 'POST', url: '/waygate/api/auth/logout' }
]

// what a browser sends from another site, in every combination a browser may produce
const CROSS_SITE: Array<Record<string, string>> = [
  { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
  { 'sec-fetch-site': 'cross-site' },
  { 'sec-fetch-site': 'same-site' },
  { origin: 'https://evil.example' },
  { origin: 'null' },
  { origin: 'http://localhost:8080' },
  { origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' },
  { origin: 'https://evil.example', 'sec-fetch-site': 'none' }
]

for (const auth of ['open', 'token'] as const) {
  t.test(`cross-site mutations are refused with a 403 (${auth} admin)`, async t => {
    const built = await buildAdminApp(t, auth === 'open' ? { admin: { auth: false } } : {})
    const { app, engine } = built
    const token = auth === 'token' ? { 'x-waygate-token': await built.login() } : {}
    const before = JSON.stringify({ routes: engine.listRoutes(), global: engine.getGlobal() })
    const auditBefore = (await engine.listAudit()).length
    for (const m of MUTATIONS) {
      for (const site of CROSS_SITE) {
        const res = await app.inject({ method: m.method, url: m.url, headers: { ...token, ...site }, ...(m.payload === undefined ? {} : { payload: m.payload }) })
        t.equal(res.statusCode, 403, `${m.method} ${m.url} ${JSON.stringify(site)}`)
        t.equal(res.json().error.code, 'WG_ERR_CROSS_SITE_REFUSED')
      }
    }
    t.equal(JSON.stringify({ routes: engine.listRoutes(), global: engine.getGlobal() }), before, 'nothing changed')
    t.equal((await engine.listAudit()).length, auditBefore, 'nothing audited')

    // reads stay open to any caller that may read
    const read = await app.inject({ url: '/waygate/api/routes', headers: { ...token, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })
    t.equal(read.statusCode, 200)
  })
}

t.test('same-origin browsers and clients without browser headers keep working', async t => {
  const { app, login } = await buildAdminApp(t)
  const token = await login()
  const allowed: Array<Record<string, string>> = [
    {},
    { 'sec-fetch-site': 'same-origin', origin: 'http://localhost:80' },
    { 'sec-fetch-site': 'none' },
    { origin: 'http://localhost:80' }
  ]
  for (const site of allowed) {
    const headers = { 'x-waygate-token': token, ...site }
    t.equal((await app.inject({ method: 'POST', url: '/waygate/api/global/disable', headers })).statusCode, 200, `bodiless POST ${JSON.stringify(site)}`)
    t.equal((await app.inject({ method: 'POST', url: `/waygate/api/routes/${key}/disable`, headers, payload: { reason: 'r' } })).statusCode, 200)
    t.equal((await app.inject({ method: 'POST', url: `/waygate/api/routes/${key}/enable`, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' }, payload: '{}' })).statusCode, 200)
    t.equal((await app.inject({ method: 'DELETE', url: `/waygate/api/routes/${key}/env`, headers })).statusCode, 200)
  }
  const login2 = await app.inject({ method: 'POST', url: '/waygate/api/auth/login', headers: { 'sec-fetch-site': 'same-origin' }, payload: USER })
  t.equal(login2.statusCode, 200)
})

t.test('mutations must be JSON: form, text and multipart bodies are refused, empty ones too', async t => {
  for (const auth of ['open', 'token'] as const) {
    const built = await buildAdminApp(t, auth === 'open' ? { admin: { auth: false } } : {})
    const { app, engine } = built
    const token = auth === 'token' ? { 'x-waygate-token': await built.login() } : {}
    const types = ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'text/plain; charset=utf-8', 'application/jsonx', 'application/json-patch+json', 'application/csp-report']
    for (const type of types) {
      for (const payload of ['', 'reason=x', '{"reason":"x"}']) {
        for (const url of ['/waygate/api/global/enable', `/waygate/api/routes/${key}/disable`]) {
          const res = await app.inject({ method: 'POST', url, headers: { ...token, 'content-type': type }, payload })
          t.equal(res.statusCode, 415, `${auth} ${url} ${type} ${JSON.stringify(payload)}`)
          t.equal(res.json().error.code, 'WG_ERR_CONTENT_TYPE_INVALID')
        }
      }
    }
    t.equal(engine.getGlobal().enabled, false)
    t.equal(engine.getState('GET:/users/:id')!.status, 'active')
  }
})
