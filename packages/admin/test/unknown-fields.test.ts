import t from 'tap'
import type { HTTPMethods, RouteOptions } from 'fastify'
import type { RateLimiter } from '@waygate/core'
import { buildAdminApp, enc } from './helpers/app.js'

const ok = async () => ({ ok: true })

/**
 * A valid body (and query) for every mutating endpoint of the admin API, keyed by the route as
 * Fastify registers it. Sent with one unknown field added, each must be refused. A new endpoint
 * without a line here fails the test, so the class stays covered.
 */
const VALID: Record<string, { body?: object, query?: Record<string, string> }> = {
  'POST /waygate/api/auth/login': { body: { username: 'admin', password: 'secret', platform: 'cli' } },
  'POST /waygate/api/auth/logout': {},
  'POST /waygate/api/routes/:key/enable': { body: { all: false } },
  'POST /waygate/api/routes/:key/disable': { body: { reason: 'r', until: '2h' } },
  'POST /waygate/api/routes/:key/maintenance': { body: { reason: 'r', end: '2h' } },
  'POST /waygate/api/routes/:key/schedule': { body: { start: '1h', end: '2h' } },
  'DELETE /waygate/api/routes/:key/schedule': { query: { all: 'false' } },
  'POST /waygate/api/routes/:key/brownouts': { body: { start: '1h', end: '2h' } },
  'DELETE /waygate/api/routes/:key/brownouts': { query: { all: 'false' } },
  'POST /waygate/api/routes/:key/env': { body: { envs: ['staging'] } },
  'DELETE /waygate/api/routes/:key/env': { query: { all: 'false' } },
  'POST /waygate/api/routes/:key/deprecate': { body: { successor: '/v2/users' } },
  'POST /waygate/api/global/enable': { body: { reason: 'r' } },
  'POST /waygate/api/global/disable': {},
  'POST /waygate/api/global/exempt/add': { body: { paths: ['/health'] } },
  'POST /waygate/api/global/exempt/remove': { body: { paths: ['/health'] } },
  'POST /waygate/api/rate-limits': { body: { key: 'GET:/posts', limits: ['5/minute'] } },
  'POST /waygate/api/rate-limits/global': { body: { limits: ['100/minute'] } },
  'DELETE /waygate/api/rate-limits/global': {},
  'POST /waygate/api/rate-limits/global/enable': {},
  'POST /waygate/api/rate-limits/global/disable': {},
  'POST /waygate/api/rate-limits/global/reset': { query: { client: '127.0.0.1' } },
  'DELETE /waygate/api/rate-limits/:key': {},
  'POST /waygate/api/rate-limits/:key/reset': { query: { client: '127.0.0.1' } },
  'POST /waygate/api/webhooks/dead-letters/:id/retry': {},
  'DELETE /waygate/api/webhooks/dead-letters/:id': {}
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** An app with every admin endpoint, in a state each mutation would visibly change. */
async function setup (t: { teardown: (fn: () => unknown) => void }) {
  const endpoints: string[] = []
  const reads: string[] = []
  const built = await buildAdminApp(t, {
    routes: app => {
      // every route the admin registers, read from the route modules as Fastify sees them
      app.addHook('onRoute', (route: RouteOptions) => {
        const methods = ([] as HTTPMethods[]).concat(route.method)
        for (const method of methods) {
          if (!route.url.startsWith('/waygate/api/')) continue
          if (MUTATING.has(method)) endpoints.push(`${method} ${route.url}`)
          else if (method === 'GET') reads.push(route.url)
        }
      })
      app.get('/posts', { config: { waygate: { rateLimit: '2/minute' } } }, ok)
      app.get('/users', ok)
      app.get('/health', ok)
    }
  })
  const { app, engine } = built
  const limiter = (app as unknown as { waygateRateLimits: RateLimiter }).waygateRateLimits
  await engine.setEnvOnly('GET:/users', ['staging'], { actor: 'setup' })
  await engine.schedule('GET:/users', { actor: 'setup', start: engine.now() + 3_600_000, end: engine.now() + 7_200_000 })
  await engine.enableGlobalMaintenance({ actor: 'setup', reason: 'on', exemptPaths: ['/health'] })
  await limiter.setPolicy({ key: 'GET:/posts', limits: ['9/minute'] }, { actor: 'setup' })
  await limiter.setGlobal({ limits: ['50/minute'] }, { enabled: true }, { actor: 'setup' })
  const snapshot = async () => JSON.stringify({
    routes: engine.listRoutes(),
    global: engine.getGlobal(),
    policies: limiter.list(),
    rateGlobal: limiter.getGlobal(),
    audit: await engine.listAudit({ limit: 500 })
  })
  // logout last: if it is not refused, it ends the token the other requests use
  const order = (e: string) => e.endsWith('/api/auth/logout') ? 1 : 0
  return { ...built, limiter, reads, endpoints: () => [...endpoints].sort((a, b) => order(a) - order(b)), snapshot }
}

function urlOf (pattern: string, query?: Record<string, string>): string {
  const url = pattern.replace(':key', enc('GET:/users')).replace(':id', 'ab'.repeat(16))
  const search = new URLSearchParams(query).toString()
  return search === '' ? url : `${url}?${search}`
}

t.test('every mutating endpoint refuses an unknown body field with 400, changing and auditing nothing', async t => {
  const { app, login, endpoints, snapshot } = await setup(t)
  const token = await login('cli')

  t.same(endpoints().sort(), Object.keys(VALID).sort(), 'the table lists every mutating endpoint of the admin API')
  t.ok(endpoints().length >= 20)

  const before = await snapshot()
  for (const endpoint of endpoints()) {
    const [method, pattern] = endpoint.split(' ') as [HTTPMethods, string]
    const { body, query } = VALID[endpoint] ?? {}
    const res = await app.inject({
      method,
      url: urlOf(pattern, query),
      headers: { 'x-waygate-token': token, 'content-type': 'application/json' },
      payload: JSON.stringify({ ...body, sneaky: 1 })
    })
    t.equal(res.statusCode, 400, `${endpoint}: ${res.body}`)
    t.equal(res.json().error?.code, 'WG_ERR_REQUEST_INVALID', endpoint)
    t.match(res.json().error?.message, /additional properties/, `${endpoint}: refused for the unknown field`)
  }
  t.equal(await snapshot(), before, 'no state, policy or audit entry changed')
  t.equal((await app.inject({ url: '/waygate/api/auth/me', headers: { 'x-waygate-token': token } })).statusCode, 200,
    'logout with an unknown field did not revoke the token')
})

t.test('every mutating endpoint refuses an unknown query parameter with 400, changing and auditing nothing', async t => {
  const { app, login, endpoints, snapshot } = await setup(t)
  const token = await login('cli')
  const before = await snapshot()
  for (const endpoint of endpoints()) {
    const [method, pattern] = endpoint.split(' ') as [HTTPMethods, string]
    const { body, query } = VALID[endpoint] ?? {}
    const res = await app.inject({
      method,
      url: urlOf(pattern, { ...query, sneaky: '1' }),
      headers: { 'x-waygate-token': token, 'content-type': 'application/json' },
      payload: JSON.stringify(body ?? {})
    })
    t.equal(res.statusCode, 400, `${endpoint}: ${res.body}`)
    t.equal(res.json().error?.code, 'WG_ERR_REQUEST_INVALID', endpoint)
  }
  t.equal(await snapshot(), before, 'no state, policy or audit entry changed')
})

t.test('every read of the admin API refuses an unknown query parameter too (the event stream aside)', async t => {
  const { app, login, reads } = await setup(t)
  const token = await login('cli')
  const checked = reads.filter(url => url !== '/waygate/api/events')
  t.ok(checked.length >= 10)
  for (const pattern of checked) {
    const res = await app.inject({ url: urlOf(pattern, { sneaky: '1' }), headers: { 'x-waygate-token': token } })
    t.equal(res.statusCode, 400, `GET ${pattern}: ${res.body}`)
    t.equal(res.json().error?.code, 'WG_ERR_REQUEST_INVALID', pattern)
    const fine = await app.inject({ url: urlOf(pattern), headers: { 'x-waygate-token': token } })
    t.equal(fine.statusCode, 200, `GET ${pattern} without it: ${fine.body.slice(0, 200)}`)
  }
})

t.test('an endpoint that takes no body refuses any non-empty one, and takes none or {}', async t => {
  const { app, login, engine, limiter } = await setup(t)
  const token = await login('cli')
  const send = (method: HTTPMethods, url: string, payload?: string) => app.inject({
    method,
    url,
    headers: { 'x-waygate-token': token, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(payload === undefined ? {} : { payload })
  })

  for (const payload of ['{"x":1}', '{"all":true}', '[]', '[1]', '"x"', '1', 'true']) {
    for (const [method, url] of [
      ['POST', '/waygate/api/global/disable'],
      ['DELETE', `/waygate/api/routes/${enc('GET:/users')}/env`],
      ['DELETE', `/waygate/api/routes/${enc('GET:/users')}/schedule`],
      ['POST', '/waygate/api/rate-limits/global/disable'],
      ['DELETE', `/waygate/api/rate-limits/${enc('GET:/posts')}`]
    ] as const) {
      const res = await send(method, url, payload)
      t.equal(res.statusCode, 400, `${method} ${url} ${payload}`)
      t.equal(res.json().error?.code, 'WG_ERR_REQUEST_INVALID', `${method} ${url} ${payload}`)
    }
  }
  t.equal(engine.getGlobal().enabled, true)
  t.equal(engine.getState('GET:/users')!.status, 'env_gated')

  // the CLI sends {} with a JSON content type on body-less POSTs; DELETEs go without a body
  t.equal((await send('POST', '/waygate/api/global/disable', '{}')).statusCode, 200)
  t.equal(engine.getGlobal().enabled, false)
  t.equal((await send('POST', '/waygate/api/rate-limits/global/disable')).statusCode, 200)
  t.equal(limiter.getGlobal()!.enabled, false)
  t.equal((await send('DELETE', `/waygate/api/routes/${enc('GET:/users')}/schedule`, '{}')).statusCode, 200)
  t.equal(engine.getState('GET:/users')!.window, null)
  t.equal((await send('DELETE', `/waygate/api/routes/${enc('GET:/users')}/env`)).statusCode, 200)
  t.equal(engine.getState('GET:/users')!.status, 'active')
  t.equal((await send('POST', '/waygate/api/auth/logout', '{}')).json().revoked, true)
})
