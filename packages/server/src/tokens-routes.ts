import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Platform } from '@waygate/core'
import { WG_ERR_TOKEN_NOT_FOUND } from './errors.js'
import { SERVICE_NAME_PATTERN } from './wire.js'
import { parseTokenDuration, TOKEN_DURATION_PATTERN, type ServiceTokens } from './tokens.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) })
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody }

const TokenInfo = Type.Object({
  id: Type.String({ description: 'The token\'s id (its jti): stable, safe to show' }),
  service: Type.String(),
  name: Type.String({ description: 'The operator\'s label, \'\' when none' }),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})
const CreateBody = Type.Object({
  service: Type.String({ pattern: SERVICE_NAME_PATTERN, description: 'The service the token is for' }),
  name: Type.Optional(Type.String({ maxLength: 100, description: 'A label for operators' })),
  expires: Type.Optional(Type.String({ pattern: TOKEN_DURATION_PATTERN, maxLength: 20, description: 'Lifetime: 365d, 12h, 30m, 2y… (default 365d, at most five years)' }))
}, { additionalProperties: false })
const CreateReply = Type.Object({ token: Type.String({ description: 'The token: shown this once, never stored' }), ...TokenInfo.properties })
const ListQuery = Type.Object({
  service: Type.Optional(Type.String({ pattern: SERVICE_NAME_PATTERN, description: 'Only the tokens of this service' }))
}, { additionalProperties: false })
const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$', description: 'The token\'s id' }) })

function who (request: FastifyRequest): { actor: string, platform: Platform } {
  const principal = request.waygatePrincipal
  return { actor: principal?.user ?? 'anonymous', platform: principal?.platform ?? 'api' }
}

/**
 * Service tokens for operators: create (the token is in this one answer), list, revoke. A service
 * token itself is refused here (403 WG_ERR_AUTH_SCOPE, by the admin's scope check).
 */
export function registerTokenRoutes (api: Api, tokens: ServiceTokens): void {
  const base = { config: { waygate: false as const } }
  const tags = ['waygate-tokens']

  api.post('/api/tokens', {
    ...base,
    schema: { tags, summary: 'Create a token for one service (shown once)', body: CreateBody, response: { 201: CreateReply, ...errors } }
  }, async (request, reply) => {
    const { service, name, expires } = request.body
    const { actor, platform } = who(request)
    const expiresIn = expires === undefined ? undefined : parseTokenDuration(expires)
    const { token, info } = await tokens.create({ service, name, expiresIn }, actor, platform)
    reply.code(201)
    reply.header('cache-control', 'no-store')
    return { token, ...info }
  })

  api.get('/api/tokens', {
    ...base,
    schema: { tags, summary: 'Service tokens, newest first (never the tokens themselves)', querystring: ListQuery, response: { 200: Type.Array(TokenInfo), ...errors } }
  }, async (request) => tokens.list(request.query.service === undefined ? {} : { service: request.query.service }))

  api.delete('/api/tokens/:id', {
    ...base,
    schema: { tags, summary: 'Revoke a service token, at once, on every server instance', params: IdParams, response: { 200: TokenInfo, ...errors } }
  }, async (request) => {
    const { actor, platform } = who(request)
    const info = await tokens.revoke(request.params.id, actor, platform)
    if (info === null) throw new WG_ERR_TOKEN_NOT_FOUND(request.params.id)
    return info
  })
}
