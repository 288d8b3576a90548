import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { GLOBAL_KEY, RATE_LIMIT_NAMESPACE, type WaygateEngine } from '@waygate/core'
import { WG_ERR_REQUEST_INVALID } from '@waygate/admin'
import type { Fleet } from './fleet.js'
import { serviceParam, ServiceParams } from './sdk-routes.js'
import { servicePolicyId } from './wire.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) })
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody }
const ResetQuery = Type.Object({
  client: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Reset one client id only' }))
}, { additionalProperties: false })

/**
 * `POST /api/services/:service/rate-limit/reset`: the counters of a service's rate limit live in
 * its instances (or their shared store), not on the server, so the server announces the reset
 * (a short-lived `reset:@service:<name>` record on the service's stream) and each instance resets
 * its own counters when it gets it.
 */
export function registerServiceResetRoute (api: Api, deps: { engine: WaygateEngine, fleet: Fleet }): void {
  const { engine, fleet } = deps
  api.post('/api/services/:service/rate-limit/reset', {
    config: { waygate: false },
    schema: {
      tags: ['waygate-services'],
      summary: 'Reset the counters of a service\'s rate limit (all clients, or one), in every instance',
      params: ServiceParams,
      querystring: ResetQuery,
      response: { 200: Type.Object({ reset: Type.Boolean() }), ...errors }
    }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    if (fleet.servicePolicy(service) === null) throw new WG_ERR_REQUEST_INVALID(`service ${service} has no rate limit`)
    const scope = servicePolicyId(service)
    const client = request.query.client
    await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, `reset:${scope}`, client === undefined ? { scope } : { scope, id: client },
      { expiresAt: engine.now() + 60_000 })
    const principal = request.waygatePrincipal
    await engine.recordChange({
      id: randomUUID(),
      timestamp: new Date(engine.now()).toISOString(),
      key: GLOBAL_KEY,
      service,
      action: 'rate_limit_reset',
      actor: principal?.user ?? 'anonymous',
      platform: principal?.platform ?? 'api',
      reason: client === undefined ? `service ${service}: all clients` : `service ${service}: client ${client}`,
      previousStatus: null,
      newStatus: null
    })
    return { reset: true }
  })
}
