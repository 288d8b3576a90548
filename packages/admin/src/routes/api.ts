import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { GLOBAL_KEY, parseRouteKey, ROUTE_STATUSES, type AuditEntry, type MutationOptions, type RouteState, type TimeInput } from '@waygate/core'
import { WG_ERR_REQUEST_INVALID } from '../errors.js'
import type { AdminContext } from '../context.js'
import { decodeKeyParam, resolveWhen } from '../params.js'
import { principalOf } from '../principal.js'
import { createSseStream, type SseStream } from '../sse.js'
import {
  AllBody,
  AuditQuery,
  AuditReplyEntry,
  DeprecateBody,
  DisableBody,
  EnvBody,
  ErrorBody,
  ExemptBody,
  GlobalEnableBody,
  GlobalMaintenance,
  KeyParams,
  MaintenanceBody,
  NoBody,
  NoQuery,
  RoutesQuery,
  RoutesReply,
  RouteState as RouteStateSchema,
  ScheduleBody,
  StatusReply
} from '../schemas.js'
import { ADMIN_VERSION } from '../version.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

function auditView (entry: AuditEntry): AuditEntry & { path: string } {
  const path = entry.key === GLOBAL_KEY ? GLOBAL_KEY : parseRouteKey(entry.key).path
  return { ...entry, path }
}

/**
 * A duration is resolved against `now`; a date-time goes to the engine as sent, which refuses one
 * that would not read back as written (2030-02-30, 24:00, past year 9999 in UTC).
 */
function when (value: string, field: string, now: number): TimeInput {
  const text = value.trim()
  return /^\d{4}-/.test(text) ? text : resolveWhen(value, field, now)
}

/** The routes, audit, global maintenance, status and event-stream endpoints. */
export function registerApiRoutes (api: Api, ctx: AdminContext): void {
  const { engine } = ctx

  // every route here needs a caller; the principal is resolved once, before validation
  // Every API route needs a caller but login. Decided on the route's pattern, never on the URL
  // (a query string could say anything); the principal is resolved once, before validation.
  api.addHook('onRequest', async (request: FastifyRequest) => {
    const route = request.routeOptions.url
    if (route === undefined) return
    const at = route.indexOf('/api/')
    if (at === -1 || route.slice(at) === '/api/auth/login') return
    request.waygatePrincipal = await ctx.authenticate(request)
  })

  // an action without options may be sent with no body at all
  api.addHook('preValidation', async (request: FastifyRequest) => {
    if (request.body === undefined || request.body === null) request.body = {}
  })

  function who (request: FastifyRequest, all?: boolean): MutationOptions {
    const principal = principalOf(request)
    return { actor: principal.user, platform: principal.platform, all: all === true }
  }

  const base = { config: { waygate: false as const }, bodyLimit: ctx.bodyLimit }

  api.get('/api/routes', {
    ...base,
    schema: {
      tags: ['waygate-routes'],
      summary: 'List route states (an array; paginated when page or perPage is given)',
      querystring: RoutesQuery,
      response: { 200: Type.Array(RouteStateSchema), ...errors }
    }
  }, async (request, reply) => {
    const { status, service, method, q, page, perPage } = request.query
    let routes = engine.listRoutes()
    if (status !== undefined) {
      const wanted = new Set(status.split(',').map(s => s.trim().toLowerCase()).filter(Boolean))
      for (const s of wanted) {
        if (!ROUTE_STATUSES.includes(s as RouteState['status'])) throw new WG_ERR_REQUEST_INVALID(`unknown status "${s}" (expected ${ROUTE_STATUSES.join(', ')})`)
      }
      routes = routes.filter(r => wanted.has(r.status))
    }
    if (service !== undefined) routes = routes.filter(r => r.service === service)
    if (method !== undefined) routes = routes.filter(r => r.method === method.toUpperCase())
    if (q !== undefined && q !== '') {
      const needle = q.toLowerCase()
      routes = routes.filter(r => r.key.toLowerCase().includes(needle) || r.reason.toLowerCase().includes(needle))
    }
    reply.header('x-total-count', String(routes.length))
    if (page !== undefined || perPage !== undefined) {
      const size = perPage ?? 50
      const current = page ?? 1
      reply.header('x-page', String(current))
      reply.header('x-per-page', String(size))
      reply.header('x-total-pages', String(Math.max(1, Math.ceil(routes.length / size))))
      routes = routes.slice((current - 1) * size, current * size)
    }
    return routes
  })

  api.get('/api/routes/:key', {
    ...base,
    schema: {
      tags: ['waygate-routes'],
      summary: 'One route state',
      params: KeyParams,
      querystring: NoQuery,
      response: { 200: RouteStateSchema, ...errors }
    }
  }, async (request) => {
    const key = decodeKeyParam(request.params.key)
    const [resolved] = engine.resolveKeys(key)
    return engine.getState(resolved!)!
  })

  api.post('/api/routes/:key/enable', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Make a route active again', params: KeyParams, querystring: NoQuery, body: Type.Optional(AllBody), response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    return { routes: await engine.enable(decodeKeyParam(request.params.key), who(request, request.body?.all)) }
  })

  api.post('/api/routes/:key/disable', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Disable a route (503), optionally until a time', params: KeyParams, querystring: NoQuery, body: Type.Optional(DisableBody), response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const body = request.body ?? {}
    const until = body.until === undefined ? undefined : when(body.until, 'until', engine.now())
    return { routes: await engine.disable(decodeKeyParam(request.params.key), { ...who(request, body.all), reason: body.reason, until }) }
  })

  api.post('/api/routes/:key/maintenance', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Put a route in maintenance (503), optionally within a window', params: KeyParams, querystring: NoQuery, body: Type.Optional(MaintenanceBody), response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const body = request.body ?? {}
    const now = engine.now()
    return {
      routes: await engine.setMaintenance(decodeKeyParam(request.params.key), {
        ...who(request, body.all),
        reason: body.reason,
        start: body.start === undefined ? undefined : when(body.start, 'start', now),
        end: body.end === undefined ? undefined : when(body.end, 'end', now)
      })
    }
  })

  api.post('/api/routes/:key/env', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Make a route reachable only in some environments', params: KeyParams, querystring: NoQuery, body: EnvBody, response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const { envs, reason, all } = request.body
    return { routes: await engine.setEnvOnly(decodeKeyParam(request.params.key), envs, { ...who(request, all), reason }) }
  })

  api.delete('/api/routes/:key/env', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Remove an environment gate (the route becomes active)', params: KeyParams, querystring: AllBody, body: NoBody, response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const key = decodeKeyParam(request.params.key)
    const options = who(request, request.query.all)
    const states = engine.resolveKeys(key, options.all).map(k => engine.getState(k)!)
    const gated = states.filter(s => s.status === 'env_gated')
    if (gated.length === 0) return { routes: states }
    const routes: RouteState[] = []
    for (const state of gated) routes.push(...await engine.enable(state.key, { ...options, all: false }))
    return { routes }
  })

  api.post('/api/routes/:key/deprecate', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Deprecate a route (Deprecation, Sunset and Link headers)', params: KeyParams, querystring: NoQuery, body: Type.Optional(DeprecateBody), response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const body = request.body ?? {}
    return {
      routes: await engine.deprecate(decodeKeyParam(request.params.key), {
        ...who(request, body.all),
        reason: body.reason,
        successor: body.successor,
        afterSunset: body.afterSunset,
        sunset: body.sunset === undefined ? undefined : when(body.sunset, 'sunset', engine.now())
      })
    }
  })

  api.post('/api/routes/:key/schedule', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Schedule a maintenance window', params: KeyParams, querystring: NoQuery, body: ScheduleBody, response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const { start, end, reason, all } = request.body
    const now = engine.now()
    return {
      routes: await engine.schedule(decodeKeyParam(request.params.key), {
        ...who(request, all),
        reason,
        start: when(start, 'start', now),
        end: when(end, 'end', now)
      })
    }
  })

  api.delete('/api/routes/:key/schedule', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Cancel a maintenance window', params: KeyParams, querystring: AllBody, body: NoBody, response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    return { routes: await engine.cancelSchedule(decodeKeyParam(request.params.key), who(request, request.query.all)) }
  })

  api.get('/api/audit', {
    ...base,
    schema: {
      tags: ['waygate-audit'],
      summary: 'Audit entries, newest first (an array; X-Next-Cursor gives the next page)',
      querystring: AuditQuery,
      response: { 200: Type.Array(AuditReplyEntry), ...errors }
    }
  }, async (request, reply) => {
    const query = request.query
    const limit = query.limit ?? 50
    let key = query.key
    if (key !== undefined && key !== GLOBAL_KEY) key = parseRouteKey(decodeKeyParam(key)).key
    if (query.since !== undefined && query.until !== undefined && Date.parse(query.until) <= Date.parse(query.since)) {
      throw new WG_ERR_REQUEST_INVALID('until must be after since')
    }
    const entries = await engine.listAudit({
      key,
      service: query.service,
      action: query.action,
      actor: query.actor,
      // the engine reads them (offsets included) and refuses a leap second or an impossible date
      since: query.since,
      until: query.until,
      before: query.before,
      // one more than asked tells whether another page exists
      limit: limit + 1
    })
    if (entries.length > limit) {
      entries.length = limit
      reply.header('x-next-cursor', entries[limit - 1]!.id)
    }
    return entries.map(auditView)
  })

  api.get('/api/global', {
    ...base,
    schema: { tags: ['waygate-global'], summary: 'Global maintenance', querystring: NoQuery, response: { 200: GlobalMaintenance, ...errors } }
  }, async () => engine.getGlobal())

  api.post('/api/global/enable', {
    ...base,
    schema: { tags: ['waygate-global'], summary: 'Turn global maintenance on', querystring: NoQuery, body: Type.Optional(GlobalEnableBody), response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => {
    const body = request.body ?? {}
    const { all, ...options } = who(request)
    const end = body.end === undefined ? undefined : when(body.end, 'end', engine.now())
    return engine.enableGlobalMaintenance({ ...options, reason: body.reason, exemptPaths: body.exemptPaths, includeForceActive: body.includeForceActive, end })
  })

  api.post('/api/global/disable', {
    ...base,
    schema: { tags: ['waygate-global'], summary: 'Turn global maintenance off', querystring: NoQuery, body: NoBody, response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => {
    const { all, ...options } = who(request)
    return engine.disableGlobalMaintenance(options)
  })

  api.post('/api/global/exempt/add', {
    ...base,
    schema: { tags: ['waygate-global'], summary: 'Add exempt paths (does not turn maintenance on or off)', querystring: NoQuery, body: ExemptBody, response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => {
    const { all, ...options } = who(request)
    return engine.addGlobalExempt(request.body.paths, options)
  })

  api.post('/api/global/exempt/remove', {
    ...base,
    schema: { tags: ['waygate-global'], summary: 'Remove exempt paths (does not turn maintenance on or off)', querystring: NoQuery, body: ExemptBody, response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => {
    const { all, ...options } = who(request)
    return engine.removeGlobalExempt(request.body.paths, options)
  })

  // a Waygate Server answers this itself, with each service's maintenance and instances
  if (!ctx.replaced.has('GET /api/services')) {
    api.get('/api/services', {
      ...base,
      schema: { tags: ['waygate-routes'], summary: 'Services that registered routes (null is this process)', querystring: NoQuery, response: { 200: Type.Array(Type.Object({ service: Type.Union([Type.String(), Type.Null()]), routes: Type.Integer() })), ...errors } }
    }, async () => {
      const counts = new Map<string | null, number>()
      for (const route of engine.listRoutes()) counts.set(route.service, (counts.get(route.service) ?? 0) + 1)
      return [...counts].map(([service, routes]) => ({ service, routes }))
    })
  }

  api.get('/api/status', {
    ...base,
    schema: { tags: ['waygate-status'], summary: 'Version, backend health and counts', querystring: NoQuery, response: { 200: StatusReply, ...errors } }
  }, async () => {
    const status = await engine.status()
    return {
      version: ADMIN_VERSION,
      backend: status.backend,
      healthy: status.healthy,
      lastError: status.lastError,
      env: status.env,
      routes: status.routes,
      stateVersion: status.version,
      testBypass: status.testBypass,
      auth: ctx.authEnabled,
      revision: engine.revision,
      ...(status.sync === undefined ? {} : { sync: status.sync })
    }
  })

  // open event streams, ended when the server closes so that close() does not wait on them
  const streams = new Set<SseStream>()
  api.addHook('preClose', async () => {
    for (const stream of streams) stream.close()
    streams.clear()
  })

  // Server-sent events: every change the engine applies, for dashboards and scripts
  api.get('/api/events', base, (_request, reply) => {
    const stream = createSseStream(reply, { maxBufferBytes: ctx.sseMaxBufferBytes, heartbeatMs: 15_000, retryMs: 3000, log: ctx.log })
    stream.send('hello', { version: engine.version })
    const unsubscribe = engine.subscribe(event => { stream.send(event.type, event, event.version) })
    streams.add(stream)
    stream.onClose(() => {
      unsubscribe()
      streams.delete(stream)
    })
  })
}
