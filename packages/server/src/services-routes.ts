import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import {
  GlobalMaintenance,
  MAX_REASON_LENGTH,
  RateLimitPolicy,
  type Platform,
  type WaygateEngine
} from '@waygate/core'
import { instanceState, isStale, WG_ERR_NOT_FOUND } from '@waygate/admin'
import type { Fleet } from './fleet.js'
import type { InstanceRegistry } from './instances.js'
import type { ServiceOps } from './service-ops.js'
import { serviceParam, ServiceParams } from './sdk-routes.js'
import { serviceOfKey } from './wire.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) })
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

const ServiceRateLimit = Type.Object({
  policy: RateLimitPolicy,
  enabled: Type.Boolean(),
  exemptRoutes: Type.Array(Type.String())
})
const InstanceView = Type.Object({
  id: Type.String(),
  host: Type.Union([Type.String(), Type.Null()]),
  version: Type.Union([Type.String(), Type.Null()]),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  connectedSince: Type.Union([Type.String(), Type.Null()]),
  lastHeartbeat: Type.String(),
  revision: Type.Union([Type.Integer(), Type.Null()]),
  stale: Type.Boolean({ description: 'No heartbeat for more than two heartbeat intervals (at most 60 s), or its stream closed' }),
  state: Type.Union([Type.Literal('connected'), Type.Literal('registered'), Type.Literal('stale'), Type.Literal('disconnected')], {
    description: 'connected; registered (no stream yet); stale (stream open, heartbeats missing); disconnected (stream closed, listed for 60 s or three heartbeats, the larger, at most 10 min)'
  }),
  disconnectedAt: Type.Union([Type.String(), Type.Null()], { description: 'When its stream closed; null unless disconnected' })
})
const ServiceView = Type.Object({
  name: Type.String(),
  /** The name again, as the embedded admin's `GET /api/services` has it (the CLI reads it). */
  service: Type.String(),
  routes: Type.Integer(),
  maintenance: GlobalMaintenance,
  rateLimit: Type.Union([ServiceRateLimit, Type.Null()]),
  instances: Type.Array(InstanceView)
})
const EnableBody = Type.Object({
  reason: Type.Optional(Type.String({ maxLength: MAX_REASON_LENGTH })),
  exemptPaths: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { maxItems: 500, description: 'Keys of the service that stay reachable' })),
  includeForceActive: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
const { key: _key, ...policyFields } = RateLimitPolicy.properties
const RateLimitBody = Type.Object({
  ...policyFields,
  exemptRoutes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { maxItems: 500, description: 'Keys of the service the policy skips' })),
  enabled: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

/** What the operators' service endpoints work on. */
export interface ServicesRoutesDeps {
  engine: WaygateEngine
  fleet: Fleet
  instances: InstanceRegistry
  /** The changes themselves, shared with the dashboard. */
  ops: ServiceOps
  /** Interval of the streams' heartbeats, ms: an instance silent for two of them (at most 60 s) is stale. */
  heartbeatMs: number
}

/** The fleet view for operators: services, their maintenance and rate limit, their instances. */
export function registerServicesRoutes (api: Api, deps: ServicesRoutesDeps): void {
  const { engine, fleet, instances, ops } = deps
  const base = { config: { waygate: false as const } }
  const tags = ['waygate-services']

  function who (request: FastifyRequest): { actor: string, platform: Platform } {
    const principal = request.waygatePrincipal
    return { actor: principal?.user ?? 'anonymous', platform: principal?.platform ?? 'api' }
  }

  api.get('/api/services', {
    ...base,
    schema: { tags, summary: 'Every service: routes, maintenance, rate limit and connected instances', response: { 200: Type.Array(ServiceView), ...errors } }
  }, async () => {
    const counts = new Map<string, number>()
    for (const state of engine.storedSnapshot().routes) {
      const service = serviceOfKey(state.key)
      if (service !== null) counts.set(service, (counts.get(service) ?? 0) + 1)
    }
    // every server process's instances, this one's as they are now (not as last written)
    const listed = instances.list()
    const names = new Set([...counts.keys(), ...fleet.services(), ...listed.map(i => i.service)])
    return [...names].sort().map(name => ({
      name,
      service: name,
      routes: counts.get(name) ?? 0,
      maintenance: fleet.maintenanceOf(name),
      rateLimit: fleet.servicePolicy(name),
      instances: listed.filter(i => i.service === name).map(i => ({ ...i, stale: isStale(i, engine.now(), deps.heartbeatMs), state: instanceState(i, engine.now(), deps.heartbeatMs) }))
    }))
  })

  api.get('/api/services/:service/maintenance', {
    ...base,
    schema: { tags, summary: 'The maintenance of one service', params: ServiceParams, response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => fleet.maintenanceOf(serviceParam(request.params.service)))

  api.post('/api/services/:service/maintenance/enable', {
    ...base,
    schema: { tags, summary: 'Put one service in maintenance (the others stay up)', params: ServiceParams, body: Type.Optional(EnableBody), response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => ops.enableMaintenance(serviceParam(request.params.service), request.body ?? {}, who(request)))

  api.post('/api/services/:service/maintenance/disable', {
    ...base,
    schema: { tags, summary: 'Take one service out of maintenance', params: ServiceParams, response: { 200: GlobalMaintenance, ...errors } }
  }, async (request) => ops.disableMaintenance(serviceParam(request.params.service), who(request)))

  api.get('/api/services/:service/rate-limit', {
    ...base,
    schema: { tags, summary: 'The rate limit every route of one service shares', params: ServiceParams, response: { 200: ServiceRateLimit, ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const policy = fleet.servicePolicy(service)
    if (policy === null) throw new WG_ERR_NOT_FOUND(`no rate limit is set for service ${service}`)
    return policy
  })

  api.post('/api/services/:service/rate-limit', {
    ...base,
    schema: { tags, summary: 'Set the rate limit of one service (checked on each of its routes)', params: ServiceParams, body: RateLimitBody, response: { 200: ServiceRateLimit, ...errors } }
  }, async (request) => {
    const { exemptRoutes, enabled, ...policy } = request.body
    return ops.setRateLimit(serviceParam(request.params.service), { policy, exemptRoutes, enabled }, who(request))
  })

  api.delete('/api/services/:service/rate-limit', {
    ...base,
    schema: { tags, summary: 'Delete the rate limit of one service', params: ServiceParams, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } }
  }, async (request) => ({ deleted: await ops.deleteRateLimit(serviceParam(request.params.service), who(request)) }))
}
