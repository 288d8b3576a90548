import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { parseRouteKey, RateLimitPolicy, SERVICE_NAME, type RateLimiter } from '@waygate/core'
import { WG_ERR_NOT_FOUND, WG_ERR_REQUEST_INVALID } from '../errors.js'
import { decodeKeyParam } from '../params.js'
import type { AdminContext } from '../context.js'
import { principalOf } from '../principal.js'
import { ErrorBody, KeyParams, NoBody, NoQuery } from '../schemas.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

const ListedPolicy = Type.Object({
  key: Type.String(),
  policy: RateLimitPolicy,
  source: Type.Union([Type.Literal('config'), Type.Literal('runtime')])
})
const { key: _key, ...policyFields } = RateLimitPolicy.properties
const SetPolicyBody = Type.Object({
  ...policyFields,
  key: Type.String({ minLength: 1, maxLength: 2048, description: 'Route key; a bare path with all: true sets every method' }),
  all: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
const GlobalReply = Type.Object({
  policy: RateLimitPolicy,
  enabled: Type.Boolean(),
  exemptRoutes: Type.Array(Type.String())
})
const GlobalBody = Type.Object({
  ...policyFields,
  exemptRoutes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { maxItems: 500, description: 'Route keys the global policy skips' })),
  enabled: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
const ResetQuery = Type.Object({ client: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Reset one client id only' })) }, { additionalProperties: false })
const ServiceFilter = Type.String({ pattern: SERVICE_NAME.source, description: 'Only the routes of this service (a Waygate Server)' })
const ListQuery = Type.Object({ service: Type.Optional(ServiceFilter) }, { additionalProperties: false })
const BlockedQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  service: Type.Optional(ServiceFilter)
}, { additionalProperties: false })

/** The service a listed key belongs to (null for a plain key or `*`). */
function serviceOf (key: string): string | null {
  try {
    return parseRouteKey(key).service
  } catch {
    return null
  }
}
const BlockedReply = Type.Array(Type.Object({
  timestamp: Type.String(),
  key: Type.String(),
  path: Type.String(),
  client: Type.String(),
  limit: Type.String(),
  tier: Type.Union([Type.String(), Type.Null()]),
  retryAfterSeconds: Type.Integer()
}))

/** Rate limit policies, counters and the blocked log (present when the waygate plugin is registered). */
export function registerRateLimitRoutes (api: Api, ctx: AdminContext, limiter: RateLimiter): void {
  const base = { config: { waygate: false as const }, bodyLimit: ctx.bodyLimit }
  const who = (request: FastifyRequest) => {
    const principal = principalOf(request)
    return { actor: principal.user, platform: principal.platform }
  }
  const tags = ['waygate-rate-limits']

  api.get('/api/rate-limits', {
    ...base,
    schema: { tags, summary: 'Every rate limit policy (declared in code or set at runtime)', querystring: ListQuery, response: { 200: Type.Array(ListedPolicy), ...errors } }
  }, async (request) => {
    const { service } = request.query
    const listed = limiter.list()
    return service === undefined ? listed : listed.filter(p => serviceOf(p.key) === service)
  })

  api.post('/api/rate-limits', {
    ...base,
    schema: { tags, summary: 'Set a runtime policy for a route (overrides its config until deleted)', querystring: NoQuery, body: SetPolicyBody, response: { 200: Type.Object({ policies: Type.Array(RateLimitPolicy) }), ...errors } }
  }, async (request) => {
    const { key, all, ...policy } = request.body
    const keys = ctx.engine.resolveKeys(decodeKeyParam(key), all === true)
    const policies = []
    for (const k of keys) policies.push(await limiter.setPolicy({ ...policy, key: k }, who(request)))
    return { policies }
  })

  api.get('/api/rate-limits/blocked', {
    ...base,
    schema: { tags, summary: 'Recently refused requests, newest first (this instance)', querystring: BlockedQuery, response: { 200: BlockedReply, ...errors } }
  }, async (request) => {
    const { service, limit = 100 } = request.query
    if (service === undefined) return limiter.blocked(limit)
    // filtered from the whole log, so a busy service does not hide a quiet one's refusals
    return limiter.blocked(Number.MAX_SAFE_INTEGER).filter(b => serviceOf(b.key) === service).slice(0, limit)
  })

  api.get('/api/rate-limits/global', {
    ...base,
    schema: { tags, summary: 'The global policy', querystring: NoQuery, response: { 200: GlobalReply, ...errors } }
  }, async () => {
    const global = limiter.getGlobal()
    if (global === null) throw new WG_ERR_NOT_FOUND('no global rate limit is set')
    return global
  })

  api.post('/api/rate-limits/global', {
    ...base,
    schema: { tags, summary: 'Set the global policy, checked on every route before its own', querystring: NoQuery, body: GlobalBody, response: { 200: GlobalReply, ...errors } }
  }, async (request) => {
    const { exemptRoutes, enabled, ...policy } = request.body
    return limiter.setGlobal(policy, { exemptRoutes, enabled }, who(request))
  })

  api.delete('/api/rate-limits/global', {
    ...base,
    schema: { tags, summary: 'Delete the global policy', querystring: NoQuery, body: NoBody, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } }
  }, async (request) => ({ deleted: await limiter.deleteGlobal(who(request)) }))

  for (const [action, enabled] of [['enable', true], ['disable', false]] as const) {
    api.post(`/api/rate-limits/global/${action}`, {
      ...base,
      schema: { tags, summary: `${action === 'enable' ? 'Enable' : 'Disable'} the global policy`, querystring: NoQuery, body: NoBody, response: { 200: GlobalReply, ...errors } }
    }, async (request) => {
      if (limiter.getGlobal() === null) throw new WG_ERR_NOT_FOUND('no global rate limit is set')
      return limiter.setGlobalEnabled(enabled, who(request))
    })
  }

  api.post('/api/rate-limits/global/reset', {
    ...base,
    schema: { tags, summary: 'Reset the global counters (all clients, or one)', querystring: ResetQuery, body: NoBody, response: { 200: Type.Object({ reset: Type.Boolean() }), ...errors } }
  }, async (request) => {
    await limiter.resetGlobal(request.query.client, who(request))
    return { reset: true }
  })

  api.delete('/api/rate-limits/:key', {
    ...base,
    schema: { tags, summary: 'Delete a runtime policy (the route\'s config applies again)', params: KeyParams, querystring: NoQuery, body: NoBody, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } }
  }, async (request) => {
    const [key] = ctx.engine.resolveKeys(decodeKeyParam(request.params.key))
    return { deleted: await limiter.deletePolicy(key!, who(request)) }
  })

  api.post('/api/rate-limits/:key/reset', {
    ...base,
    schema: { tags, summary: 'Reset a route\'s counters (all clients, or one)', params: KeyParams, querystring: ResetQuery, body: NoBody, response: { 200: Type.Object({ reset: Type.Boolean() }), ...errors } }
  }, async (request) => {
    const [key] = ctx.engine.resolveKeys(decodeKeyParam(request.params.key))
    if (limiter.policyFor(key!) === null) throw new WG_ERR_REQUEST_INVALID(`${key!} has no rate limit`)
    await limiter.reset(key!, request.query.client, who(request))
    return { reset: true }
  })
}
