// Property-based fuzzing of the admin REST API with fast-check: arbitrary bodies, path parameters
// and query strings for every endpoint the admin registers (found through an onRoute hook, so an
// endpoint added later is fuzzed too). For every request: no 5xx; every 4xx carries the
// `{ error: { code, message } }` envelope; and a rejected request changes neither the state nor the
// audit log. The seed is fixed so a failure replays; FUZZ_RUNS raises the number of runs.
import fc from 'fast-check'
import t from 'tap'
import type { RouteOptions } from 'fastify'
import { buildAdminApp } from './helpers/app.js'

const SEED = 20261202
const RUNS = Number(process.env.FUZZ_RUNS ?? 120)

/** Endpoints not fuzzed, with why. */
const SKIPPED: Record<string, string> = {
  'GET /waygate/api/events': 'an event stream: it never ends, so inject would wait forever',
  'POST /waygate/api/auth/logout': 'revokes the token the fuzzer itself uses'
}

// values that real clients send by mistake, plus anything fast-check invents
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', 'null', '0', '-1', '1e309', '2030-01-01T00:00:00Z', '2001-01-01T00:00:00Z', '1h', '-5m', '10/minute',
    'GET:/payments', 'GET:/users/:id', '/payments', '*', '%', '%00', '<script>alert(1)</script>', 'x'.repeat(3000), '__proto__', 'constructor')
)
const routeKey = fc.oneof(text, fc.constantFrom('GET:/payments', 'POST:/payments', 'GET:/users/:id', 'GET:/v1/users', 'GET:/posts', 'GET:/health', '/payments', 'GET:/nope'))
const FIELDS = ['reason', 'start', 'end', 'until', 'envs', 'successor', 'sunset', 'exemptPaths', 'paths', 'includeForceActive', 'limits',
  'limit', 'algorithm', 'keyStrategy', 'key', 'enabled', 'exemptRoutes', 'username', 'password', 'platform', 'service', 'name', 'expires',
  'for', 'notify', 'status', 'onMissingKey', 'burst', 'tier']
const value: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(text, { maxLength: 4 }),
  fc.dictionary(fc.constantFrom(...FIELDS), text, { maxKeys: 3 })
)
/** Objects built from the real field names (to get past the first checks), or anything JSON. */
const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 6 }),
  fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 12 })), value, { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant(undefined)
)
/** A raw payload that is not JSON at all, sent as JSON. */
const rawBody = fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('{"reason": "x",', '[', '{"__proto__": {"admin": true}}', '\u0000'))
const QUERY_NAMES = ['page', 'perPage', 'status', 'limit', 'since', 'until', 'key', 'actor', 'action', 'service', 'cursor', 'platform', 'q']
const query = fc.dictionary(fc.oneof(fc.constantFrom(...QUERY_NAMES), fc.string({ maxLength: 8 })), text, { maxKeys: 4 })

t.test('every admin endpoint, arbitrary input: no 5xx, a coded error envelope on 4xx, nothing changed by a rejected request', async t => {
  const endpoints: Array<{ method: string, url: string }> = []
  const ok = async () => ({ ok: true })
  const { app, engine, login } = await buildAdminApp(t, {
    routes: app => {
      app.addHook('onRoute', (route: RouteOptions) => {
        const methods = Array.isArray(route.method) ? route.method : [route.method]
        for (const method of methods) {
          if (route.url.startsWith('/waygate/api/') && method !== 'HEAD' && method !== 'OPTIONS') endpoints.push({ method, url: route.url })
        }
      })
      app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
      app.get('/payments', { config: { waygate: { maintenance: { reason: 'DB migration' } } } }, ok)
      app.post('/payments', ok)
      app.get('/users/:id', ok)
      app.get('/v1/users', { config: { waygate: { deprecated: { successor: '/v2/users' } } } }, ok)
      app.get('/posts', { config: { waygate: { rateLimit: '5/minute' } } }, ok)
    }
  })
  let token = await login()
  const fuzzed = endpoints.filter(e => SKIPPED[`${e.method} ${e.url}`] === undefined)
  t.ok(fuzzed.length >= 25, `${fuzzed.length} endpoints to fuzz (${endpoints.length - fuzzed.length} skipped)`)

  /** Everything a request could change that an operator would see. */
  const observe = async (): Promise<string> => {
    const limits = await app.inject({ method: 'GET', url: '/waygate/api/rate-limits', headers: { 'x-waygate-token': token } })
    const audit = await engine.listAudit({ limit: 100_000 })
    return JSON.stringify({ routes: engine.listRoutes(), global: engine.getGlobal(), limits: limits.body, audit: audit.map(entry => entry.id) })
  }

  let requests = 0
  /** Status classes seen, so the run shows it reached past validation too. */
  const seen = new Map<string, number>()
  for (const endpoint of fuzzed) {
    const params = [...endpoint.url.matchAll(/:([A-Za-z]+)/g)].map(m => m[1]!)
    const input = fc.record({
      params: fc.tuple(...params.map(name => name === 'key' ? routeKey : text)),
      query,
      body,
      raw: fc.option(rawBody, { freq: 4 })
    })
    await fc.assert(fc.asyncProperty(input, async ({ params: values, query: q, body: payload, raw }) => {
      let url = endpoint.url
      params.forEach((name, i) => { url = url.replace(`:${name}`, encodeURIComponent(String(values[i]))) })
      const search = new URLSearchParams(q).toString()
      if (search !== '') url += `?${search}`
      const before = await observe()
      const hasBody = endpoint.method !== 'GET' && endpoint.method !== 'DELETE'
      const res = await app.inject({
        method: endpoint.method as 'GET',
        url,
        headers: { 'x-waygate-token': token, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
        ...(hasBody && raw !== null ? { payload: raw } : hasBody && payload !== undefined ? { payload: JSON.stringify(payload) } : {})
      })
      requests++
      const cls = `${Math.floor(res.statusCode / 100)}xx`
      seen.set(cls, (seen.get(cls) ?? 0) + 1)
      const where = `${endpoint.method} ${url} ${raw ?? JSON.stringify(payload) ?? ''}`.slice(0, 300)
      if (res.statusCode >= 500) throw new Error(`${res.statusCode} from ${where}: ${res.body.slice(0, 300)}`)
      if (res.statusCode >= 400) {
        const envelope = res.json() as { error?: { code?: unknown, message?: unknown } }
        if (typeof envelope.error?.code !== 'string' || !/^(WG_ERR|FST_ERR)_[A-Z0-9_]+$/.test(envelope.error.code) ||
          typeof envelope.error.message !== 'string' || envelope.error.message === '') {
          throw new Error(`${res.statusCode} without the error envelope from ${where}: ${res.body.slice(0, 300)}`)
        }
        const after = await observe()
        if (after !== before) throw new Error(`rejected ${where} (${res.statusCode} ${envelope.error.code}) changed the state or the audit log`)
      }
      // a login may have succeeded with the fuzzed credentials; keep using a token that works
      if (res.statusCode === 401) token = await login()
    }), { seed: SEED, numRuns: RUNS, endOnFailure: true })
  }
  t.comment(`answers: ${[...seen].map(([cls, n]) => `${cls} ${n}`).join(', ')}`)
  t.ok((seen.get('2xx') ?? 0) > 100, 'some fuzzed requests were valid and accepted: the generators reach past validation')
  t.ok(requests >= fuzzed.length * RUNS, `${requests} fuzzed requests over ${fuzzed.length} endpoints, seed ${SEED}: no 5xx, every 4xx coded, nothing changed by one`)
})
