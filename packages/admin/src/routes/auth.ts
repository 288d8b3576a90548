import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { isServiceName } from '@waygate/core'
import { checkLogin } from '../dashboard/login.js'
import { WG_ERR_REQUEST_INVALID } from '../errors.js'
import type { AdminContext } from '../context.js'
import { ErrorBody, LoginBody, LoginReply, MeReply, NoBody, NoQuery } from '../schemas.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const errors = { 400: ErrorBody, 401: ErrorBody, 429: ErrorBody, 503: ErrorBody }

/** Login, logout and who-am-I. */
export function registerAuthRoutes (api: Api, ctx: AdminContext): void {
  api.post('/api/auth/login', {
    config: { waygate: false },
    bodyLimit: ctx.bodyLimit,
    schema: {
      tags: ['waygate-auth'],
      summary: 'Exchange a username and password for a token',
      querystring: NoQuery,
      body: LoginBody,
      response: { 200: LoginReply, ...errors }
    }
  }, async (request) => {
    const { username, password, platform = 'api', service } = request.body
    if (service !== undefined && (platform !== 'sdk' || !isServiceName(service))) {
      throw new WG_ERR_REQUEST_INVALID(platform !== 'sdk' ? 'service is for platform sdk only' : `service "${service}" is an HTTP method`)
    }
    const user = await checkLogin(ctx, request, username, password, platform)
    const { token, claims } = ctx.issueToken(user, platform, service)
    return { token, user, platform, expiresAt: new Date(claims.exp * 1000).toISOString(), ...(service === undefined ? {} : { service }) }
  })

  api.post('/api/auth/logout', {
    config: { waygate: false },
    bodyLimit: ctx.bodyLimit,
    schema: {
      tags: ['waygate-auth'],
      summary: 'Revoke the token of this request',
      querystring: NoQuery,
      body: NoBody,
      response: { 200: Type.Object({ revoked: Type.Boolean() }), ...errors }
    }
  }, async (request) => {
    const principal = await ctx.authenticate(request)
    if (principal.claims === null) return { revoked: false }
    await ctx.revoke(principal.claims)
    request.log.info({ user: principal.user }, 'waygate admin: logout')
    return { revoked: true }
  })

  api.get('/api/auth/me', {
    config: { waygate: false },
    schema: {
      tags: ['waygate-auth'],
      summary: 'Who the token belongs to',
      querystring: NoQuery,
      response: { 200: MeReply, ...errors }
    }
  }, async (request) => {
    const principal = await ctx.authenticate(request)
    return {
      user: principal.user,
      platform: principal.platform,
      expiresAt: principal.claims === null ? null : new Date(principal.claims.exp * 1000).toISOString(),
      authenticated: principal.claims !== null,
      ...(principal.claims?.svc === undefined ? {} : { service: principal.claims.svc })
    }
  })
}
