import t from 'tap'
import { buildAdminApp, enc } from './helpers/app.js'

const ok = async () => ({ ok: true })

t.test('rate limit policies through the REST API: list, set, reset, delete, global, blocked log', async t => {
  const { app, login, engine } = await buildAdminApp(t, {
    routes: app => {
      app.get('/posts', { config: { waygate: { rateLimit: '2/minute' } } }, ok)
      app.get('/search', ok)
      app.post('/search', ok)
      app.get('/health', ok)
    }
  })
  const headers = { 'x-waygate-token': await login('cli') }
  const api = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url: `/waygate/api/rate-limits${url}`, headers, ...(payload === undefined ? {} : { payload }) })

  t.same((await api('GET', '')).json(), [{ key: 'GET:/posts', policy: { key: 'GET:/posts', limits: ['2/minute'] }, source: 'config' }])

  const set = await api('POST', '', { key: 'GET:/search', limits: ['1/minute'], algorithm: 'fixed_window' })
  t.equal(set.statusCode, 200)
  t.match(set.json(), { policies: [{ key: 'GET:/search', limits: ['1/minute'], algorithm: 'fixed_window' }] })
  t.equal((await app.inject('/search')).statusCode, 200)
  t.equal((await app.inject('/search')).statusCode, 429, 'the runtime policy applies at once')

  const ambiguous = await api('POST', '', { key: '/search', limits: ['1/minute'] })
  t.equal(ambiguous.statusCode, 409)
  t.same(ambiguous.json().error.matches, ['GET:/search', 'POST:/search'])
  t.equal((await api('POST', '', { key: '/search', limits: ['5/minute'], all: true })).json().policies.length, 2)

  const bad = await api('POST', '', { key: 'GET:/search', limits: ['many/minute'] })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'WG_ERR_RATE_LIMIT_INVALID')
  t.equal((await api('POST', '', { key: 'GET:/search', limits: ['1/minute'], algoritm: 'x' })).statusCode, 400, 'unknown field refused')

  await app.inject('/posts')
  await app.inject('/posts')
  t.equal((await app.inject('/posts')).statusCode, 429)
  const blocked = await api('GET', '/blocked')
  t.match(blocked.json()[0], { key: 'GET:/posts', path: '/posts', limit: '2/minute' })
  t.equal((await api('POST', `/${enc('GET:/posts')}/reset`)).json().reset, true)
  t.equal((await app.inject('/posts')).statusCode, 200, 'counters reset')

  t.equal((await api('DELETE', `/${enc('GET:/search')}`)).json().deleted, true)
  t.equal((await api('DELETE', `/${enc('GET:/search')}`)).json().deleted, false)
  t.equal((await api('POST', `/${enc('GET:/health')}/reset`)).statusCode, 400, 'no limit to reset')

  t.equal((await api('GET', '/global')).statusCode, 404)
  const global = await api('POST', '/global', { limits: ['100/minute'], exemptRoutes: ['GET:/health'] })
  t.match(global.json(), { policy: { key: '*', limits: ['100/minute'] }, enabled: true, exemptRoutes: ['GET:/health'] })
  t.equal((await api('POST', '/global/disable')).json().enabled, false)
  t.equal((await api('POST', '/global/enable')).json().enabled, true)
  t.equal((await api('POST', '/global/reset')).json().reset, true)
  t.equal((await api('DELETE', '/global')).json().deleted, true)

  const audit = (await engine.listAudit({ actor: 'admin' })).map(e => e.action)
  t.ok(audit.includes('rate_limit_set') && audit.includes('rate_limit_delete') && audit.includes('rate_limit_reset'), 'every change is audited')
  t.equal((await app.inject({ url: '/waygate/api/rate-limits' })).statusCode, 401, 'auth required')
})
