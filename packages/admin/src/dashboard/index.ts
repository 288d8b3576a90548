import { fileURLToPath } from 'node:url'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyView from '@fastify/view'
import { isServiceName, WG_ERR_ROUTE_FORCE_ACTIVE, WG_ERR_ROUTE_NOT_FOUND, type RateLimiter, type TrafficRecorder } from '@waygate/core'
import { Eta } from 'eta'
import type { TokenClaims } from '../auth/tokens.js'
import { WG_ERR_CSRF_INVALID, WG_ERR_NOT_FOUND, WG_ERR_REQUEST_INVALID } from '../errors.js'
import type { AdminContext } from '../context.js'
import { ADMIN_VERSION } from '../version.js'
import { globalAction, readForm, routeAction, type FormValues, type GlobalActionSpec, type RouteActionSpec } from './actions.js'
import { registerAssets, type AssetUrls } from './assets.js'
import { scopeView, serviceCard, servicesPage, servicesVersion, tokenRow } from './fleet-pages.js'
import { checkLogin } from './login.js'
import { auditPage, formFields, globalView, queryString, readAuditFilter, readRoutesFilter, routesPage } from './pages.js'
import { registerDeadLetterPages } from './dead-letters.js'
import { registerRateLimitPages } from './rate-limits.js'
import { registerRoutePage, trafficLive, withTraffic } from './route-page.js'
import { checkService, serviceAction, tokenAction, tokenLifetime, tokensOf, type ServiceActionSpec, type TokenActionSpec } from './service-actions.js'
import { CSRF_FIELD, CSRF_HEADER } from './session.js'

/** The package's `views/` folder, beside `src/` and `dist/`. */
export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url))

/** Sent with every dashboard response: nothing runs or loads unless it comes from this origin. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'"
].join('; ')

const FORM = 'application/x-www-form-urlencoded'

/** Who is using the dashboard, with the CSRF token their forms carry. */
interface Session {
  user: string
  claims: TokenClaims
  csrf: string
}

type Render = (page: string, data: object) => Promise<string>

function wantsJson (request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('application/json')
}

function field (body: unknown, name: string, max: number): string {
  let value = (typeof body === 'object' && body !== null ? body as Record<string, unknown> : {})[name]
  if (Array.isArray(value)) value = value[0]
  return typeof value === 'string' ? value.slice(0, max) : ''
}

/** The service a page of a server's dashboard is scoped to (`?service=`), '' for all of them. */
export function scopeOf (request: FastifyRequest): string {
  const service = field(request.query, 'service', 100).trim()
  return isServiceName(service) ? service : ''
}

/**
 * The dashboard: server-rendered pages under the admin prefix, signed-in through a session cookie
 * that holds a dashboard token, and live through the admin's SSE feed.
 */
export async function registerDashboard (fastify: FastifyInstance, options: { ctx: AdminContext }): Promise<void> {
  const { ctx } = options
  const { engine, fleet } = ctx
  const prefix = fastify.prefix
  const home = `${prefix}/`
  const log = fastify.log.child({ name: 'waygate-dashboard' })

  /**
   * A path under the dashboard to go back to, never anywhere else, and always one a Location header
   * can carry: printable ASCII only (no controls, spaces or other characters; the dashboard's own
   * links percent-encode theirs), no `//host` or backslash (browsers read `\\` as `/`), no dot
   * segments (browsers resolve them). Anything else is the fallback, the home page by default.
   */
  function localPath (value: string, fallback = home): string {
    const under = value === prefix || value.startsWith(`${prefix}/`)
    const safe = /^\/[\x21-\x7e]*$/.test(value) && !value.startsWith('//') && !value.includes('\\') &&
      !/\/(\.|%2e){1,2}(\/|\?|#|$)/i.test(value)
    return under && safe ? value : fallback
  }

  function loginUrl (next?: string): string {
    const target = next === undefined ? home : localPath(next)
    return `${prefix}/login${target === home ? '' : `?next=${encodeURIComponent(target)}`}`
  }

  await fastify.register(fastifyView, {
    engine: { eta: new Eta({ views: VIEWS_DIR, cache: true, autoEscape: true }) },
    root: VIEWS_DIR,
    production: true,
    // a name of our own, so an app that uses @fastify/view itself is not disturbed
    propertyName: 'waygateView'
  })
  const render: Render = (page, data) => (fastify as unknown as { waygateView: Render }).waygateView(page, data)

  if (!fastify.hasContentTypeParser(FORM)) {
    fastify.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: ctx.bodyLimit }, (_request, body, done) => {
      const values: Record<string, string> = Object.create(null)
      for (const [name, value] of new URLSearchParams(body as string)) if (!(name in values)) values[name] = value
      done(null, values)
    })
  }

  fastify.addHook('onSend', async (request, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'same-origin')
    reply.header('x-frame-options', 'DENY')
    reply.header('cross-origin-opener-policy', 'same-origin')
    if (!request.url.startsWith(`${prefix}/assets/`)) reply.header('cache-control', 'no-store')
    return payload
  })

  const assets: AssetUrls = await registerAssets(fastify, prefix)

  async function session (request: FastifyRequest, reply: FastifyReply): Promise<Session> {
    const principal = await ctx.authenticate(request)
    let claims = principal.claims
    if (claims === null) {
      // an open admin (auth: false): this browser gets a session anyway, so its forms carry a CSRF token
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        throw new WG_ERR_CSRF_INVALID('no dashboard session; load the page again before changing anything')
      }
      const issued = ctx.issueToken(principal.user, 'dashboard')
      ctx.session.set(reply, issued.token, issued.claims, engine.now())
      claims = issued.claims
    }
    return { user: principal.user, claims, csrf: ctx.session.csrfToken(claims) }
  }

  async function page (reply: FastifyReply, template: string, data: object, user: Session | null, nav: string | null = null): Promise<FastifyReply> {
    // a server's dashboard: the service selector, on every page, reloads the page it is on
    const scope = fleet === null || user === null ? null : scopeView(fleet, scopeOf(reply.request), reply.request.url.split('?')[0]!)
    const html = await render(template, {
      scope,
      navQuery: scope?.query ?? '',
      fleetPages: fleet === null ? null : { tokens: fleet.tokens !== undefined },
      prefix,
      home,
      nav,
      user: user?.user ?? null,
      authEnabled: ctx.authEnabled,
      csrf: user?.csrf ?? '',
      csrfField: CSRF_FIELD,
      csrfHeader: CSRF_HEADER,
      banner: user === null ? null : globalView(engine.getGlobal(), engine.now(), prefix, home),
      env: engine.env,
      backend: engine.backend.kind,
      version: ADMIN_VERSION,
      assets,
      ...data
    })
    return reply.type('text/html; charset=utf-8').send(html)
  }

  fastify.setErrorHandler(async (err: FastifyError, request, reply) => {
    // scripts get the admin's JSON errors
    if (wantsJson(request)) throw err
    if (err.code === 'WG_ERR_AUTH_REQUIRED') {
      ctx.session.clear(reply)
      return reply.redirect(loginUrl(request.method === 'GET' ? request.url : undefined), 303)
    }
    let status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (err.validation !== undefined) status = 400
    if (status >= 500 && err.code !== 'WG_ERR_BACKEND_UNAVAILABLE') log.error({ err }, 'waygate dashboard: unexpected error')
    const message = status >= 500 && err.code !== 'WG_ERR_BACKEND_UNAVAILABLE' ? 'Internal error; see the server log' : err.message
    reply.code(status)
    return page(reply, 'error', { title: `Error ${status}`, status, code: err.code ?? 'WG_ERR_INTERNAL', message }, null)
  })

  const base = { config: { waygate: false as const }, schema: { hide: true }, bodyLimit: ctx.bodyLimit }

  // ---- sign in and out ----

  fastify.get('/login', base, async (request, reply) => {
    const next = field(request.query, 'next', 2048)
    try {
      await ctx.authenticate(request)
      // already signed in (or an open admin): straight on
      return reply.redirect(localPath(next), 303)
    } catch {
      // not signed in: a stale cookie goes, and an open admin needs no sign-in at all
      if (ctx.session.tokenFrom(request) !== null) ctx.session.clear(reply)
      if (!ctx.authEnabled) return reply.redirect(localPath(next), 303)
    }
    return page(reply, 'login', { title: 'Sign in', next: localPath(next, ''), username: '', error: null }, null)
  })

  fastify.post('/login', base, async (request, reply) => {
    ctx.session.checkOrigin(request)
    const username = field(request.body, 'username', 200).trim()
    const password = field(request.body, 'password', 1000)
    const next = localPath(field(request.body, 'next', 2048))
    if (username === '' || password === '') {
      reply.code(400)
      return page(reply, 'login', { title: 'Sign in', next, username, error: 'Enter a username and a password.' }, null)
    }
    let user: string
    try {
      user = await checkLogin(ctx, request, username, password)
    } catch (err) {
      const e = err as FastifyError & { retryAfter?: number }
      if (e.code === 'WG_ERR_AUTH_THROTTLED') reply.header('retry-after', String(e.retryAfter ?? 60))
      if (e.code !== 'WG_ERR_AUTH_INVALID' && e.code !== 'WG_ERR_AUTH_THROTTLED') throw err
      reply.code(e.statusCode ?? 401)
      const error = e.code === 'WG_ERR_AUTH_THROTTLED' ? `Too many failed sign-ins; try again in ${e.retryAfter ?? 60} seconds.` : 'Wrong username or password.'
      return page(reply, 'login', { title: 'Sign in', next, username, error }, null)
    }
    const { token, claims } = ctx.issueToken(user, 'dashboard')
    ctx.session.set(reply, token, claims, engine.now())
    return reply.redirect(next, 303)
  })

  fastify.post('/logout', base, async (request, reply) => {
    const principal = await ctx.authenticate(request)
    if (principal.claims === null) throw new WG_ERR_CSRF_INVALID('no dashboard session to end')
    await ctx.revoke(principal.claims)
    ctx.session.clear(reply)
    request.log.info({ user: principal.user }, 'waygate admin: dashboard logout')
    return reply.redirect(ctx.authEnabled ? `${prefix}/login` : home, 303)
  })

  // ---- pages ----

  fastify.get('/', base, async (request, reply) => {
    const user = await session(request, reply)
    const filter = readRoutesFilter(request.query)
    if (fleet !== null) filter.service = scopeOf(request)
    const data = routesPage(engine, filter, prefix, fleet !== null)
    return page(reply, 'routes', {
      title: 'Routes',
      ...data,
      rows: withTraffic(data.rows, traffic, prefix),
      trafficLive: trafficLive(traffic, prefix),
      global: globalView(engine.getGlobal(), engine.now(), prefix, data.returnTo),
      serviceCard: fleet === null || filter.service === '' ? null : serviceCard(fleet, filter.service, engine.now(), prefix, data.returnTo)
    }, user, 'routes')
  })

  fastify.get('/audit', base, async (request, reply) => {
    const user = await session(request, reply)
    const data = await auditPage(engine, readAuditFilter(request.query), prefix, fleet === null ? '' : scopeOf(request))
    return page(reply, 'audit', { title: 'Audit log', ...data }, user, 'audit')
  })

  // traffic is counted by the waygate plugin: without it, rows have no chart and the route page says so
  const traffic = fastify.hasDecorator('waygateTraffic') ? (fastify as unknown as { waygateTraffic: TrafficRecorder }).waygateTraffic : null
  registerRoutePage(fastify, { engine, traffic, prefix, routeOptions: base, session, page })

  // rate limiting lives in the waygate plugin: without it in this app, the page says so
  if (fastify.hasDecorator('waygateRateLimits')) {
    const limiter = (fastify as unknown as { waygateRateLimits: RateLimiter }).waygateRateLimits
    registerRateLimitPages(fastify, { engine, limiter, prefix, routeOptions: base, session, page, localPath, fleet, scopeOf })
  } else {
    fastify.get('/rate-limits', base, async (request, reply) => {
      const user = await session(request, reply)
      return page(reply, 'rate-limits', { title: 'Rate limits' }, user, 'rate-limits')
    })
  }

  registerDeadLetterPages(fastify, { engine, prefix, routeOptions: base, session, page })

  // ---- a Waygate Server's services and their tokens ----

  if (fleet !== null) {
    fastify.get('/services', base, async (request, reply) => {
      const user = await session(request, reply)
      const selected = scopeOf(request)
      return page(reply, 'services', {
        title: 'Services',
        selected,
        ...servicesPage(fleet, engine.now(), prefix, selected),
        live: { url: `${prefix}/services/live`, version: servicesVersion(fleet, engine.now()) }
      }, user, 'services')
    })

    // polled by the page's script: an instance turns stale with no event to say so
    fastify.get('/services/live', base, async (request, reply) => {
      await session(request, reply)
      return { version: servicesVersion(fleet, engine.now()) }
    })
  }

  if (fleet?.tokens !== undefined) {
    const tokens = fleet.tokens
    const tokensHome = `${prefix}/tokens`

    async function tokensData (service: string, form: { service: string, name: string, expires: string }, error: string | null) {
      const now = engine.now()
      const returnTo = `${tokensHome}${queryString({ service })}`
      const list = await tokens.list(service === '' ? {} : { service })
      return {
        title: 'Service tokens',
        rows: list.map(info => tokenRow(info, now, prefix, returnTo)),
        form,
        error,
        created: null as null | { token: string, service: string, name: string, expiresAt: string },
        knownServices: fleet!.services().map(s => s.name),
        filtered: service !== ''
      }
    }

    fastify.get('/tokens', base, async (request, reply) => {
      const user = await session(request, reply)
      const service = scopeOf(request)
      return page(reply, 'tokens', await tokensData(service, { service, name: '', expires: '365d' }, null), user, 'tokens')
    })

    // the answer is the only place the token is ever shown: it is not stored, and the page is no-store
    fastify.post('/tokens', base, async (request, reply) => {
      const user = await session(request, reply)
      const scope = scopeOf(request)
      const form = {
        service: field(request.body, 'service', 200).trim(),
        name: field(request.body, 'name', 201).trim(),
        expires: field(request.body, 'expires', 40).trim() || '365d'
      }
      let created: { token: string, info: { service: string, name: string, expiresAt: string } }
      try {
        if (form.service === '') throw new WG_ERR_REQUEST_INVALID('service: which service is the token for?')
        if (form.name.length > 200) throw new WG_ERR_REQUEST_INVALID('name: at most 200 characters')
        created = await tokens.create({ service: checkService(form.service), name: form.name, expiresIn: tokenLifetime(form.expires) }, user.user, 'dashboard')
      } catch (err) {
        const status = (err as FastifyError).statusCode ?? 500
        if (status >= 500) throw err
        reply.code(status)
        return page(reply, 'tokens', await tokensData(scope, form, (err as Error).message), user, 'tokens')
      }
      const data = await tokensData(scope, { service: form.service, name: '', expires: '365d' }, null)
      data.created = { token: created.token, service: created.info.service, name: created.info.name, expiresAt: created.info.expiresAt }
      return page(reply, 'tokens', data, user, 'tokens')
    })
  }

  // ---- actions: a confirmation form (a page, or a dialog the script opens), then a POST ----

  type Target =
    | { kind: 'global', spec: GlobalActionSpec, key: null, prefill: FormValues }
    | { kind: 'route', spec: RouteActionSpec, key: string, prefill: FormValues }
    | { kind: 'service', spec: ServiceActionSpec, key: string, prefill: FormValues }
    | { kind: 'token', spec: TokenActionSpec, key: string, prefill: FormValues }

  async function target (action: string, key: string): Promise<Target> {
    const onService = fleet === null ? undefined : serviceAction(action)
    if (onService !== undefined) {
      const service = checkService(key)
      const known = fleet!.services().find(s => s.name === service)
      if (known === undefined) throw new WG_ERR_NOT_FOUND(`no service named ${service}`)
      return { kind: 'service', spec: onService, key: service, prefill: onService.prefill(known.maintenance) }
    }
    const onToken = fleet === null ? undefined : tokenAction(action)
    if (onToken !== undefined) {
      const info = (await tokensOf(fleet!).list()).find(i => i.id === key)
      if (info === undefined) throw new WG_ERR_NOT_FOUND(`no service token with id ${key.slice(0, 100)}`)
      return { kind: 'token', spec: onToken, key: info.id, prefill: onToken.prefill(info) }
    }
    const global = globalAction(action)
    if (global !== undefined) return { kind: 'global', spec: global, key: null, prefill: global.prefill(engine.getGlobal()) }
    const spec = routeAction(action)
    if (spec === undefined) throw new WG_ERR_REQUEST_INVALID(`unknown action "${action.slice(0, 40)}"`)
    if (key === '') throw new WG_ERR_REQUEST_INVALID('which route? (key is missing)')
    const state = engine.getState(key)
    if (state === null) throw new WG_ERR_ROUTE_NOT_FOUND(key)
    if (state.forceActive) throw new WG_ERR_ROUTE_FORCE_ACTIVE(state.key)
    return { kind: 'route', spec, key: state.key, prefill: spec.prefill(state) }
  }

  function confirmData (t: Target, values: FormValues, returnTo: string, error: string | null): object {
    return {
      title: t.spec.title,
      action: t.spec,
      subject: t.key,
      key: t.key ?? '',
      fields: formFields(t.spec.fields, values),
      returnTo,
      error
    }
  }

  fastify.get('/confirm', base, async (request, reply) => {
    const user = await session(request, reply)
    const t = await target(field(request.query, 'action', 40), field(request.query, 'key', 4096))
    return page(reply, 'confirm', confirmData(t, t.prefill, localPath(field(request.query, 'return', 4096)), null), user)
  })

  fastify.post('/action', base, async (request, reply) => {
    const user = await session(request, reply)
    const t = await target(field(request.body, 'action', 40), field(request.body, 'key', 4096))
    const returnTo = localPath(field(request.body, 'return', 4096))
    const who = { actor: user.user, platform: 'dashboard' as const }
    let values: FormValues = {}
    try {
      values = readForm(request.body, t.spec.fields)
      if (t.kind === 'global') await t.spec.run(engine, values, who)
      else if (t.kind === 'service' || t.kind === 'token') await t.spec.run(fleet!, t.key, values, who)
      else await t.spec.run(engine, t.key, values, who)
    } catch (err) {
      const status = (err as FastifyError).statusCode ?? 500
      if (wantsJson(request) || status >= 500) throw err
      // without a script: the same form again, with what was typed and what went wrong
      reply.code(status)
      return page(reply, 'confirm', confirmData(t, values, returnTo, (err as Error).message), user)
    }
    if (wantsJson(request)) return { ok: true, action: t.spec.id, key: t.key }
    return reply.redirect(returnTo, 303)
  })
}
