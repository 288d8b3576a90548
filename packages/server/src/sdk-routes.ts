import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import {
  AuditAction,
  AuditEntry,
  callerSketchExpiry,
  callersNamespace,
  checkRateLimitPolicy,
  defaultGlobalMaintenance,
  GLOBAL_KEY,
  GlobalMaintenance,
  parseRouteKey,
  RATE_LIMIT_NAMESPACE,
  RouteState,
  type AuditQuery,
  type WaygateEngine
} from '@waygate/core'
import { createSseStream, decodeKeyParam, WG_ERR_AUTH_SCOPE, WG_ERR_REQUEST_INVALID } from '@waygate/admin'
import { conflict } from './errors.js'
import type { Fleet } from './fleet.js'
import type { InstanceRegistry } from './instances.js'
import type { FleetTraffic } from './traffic.js'
import type { StreamHub } from './streams.js'
import {
  isServiceName,
  qualify,
  qualifyState,
  recordIdFromService,
  recordValueForService,
  SERVICE_MAINTENANCE_NAMESPACE,
  SERVICE_MANIFESTS_NAMESPACE,
  SERVICE_NAME_PATTERN,
  serviceAndKey,
  SERVICES_KNOWN_NAMESPACE,
  servicePolicyId,
  unqualifyAudit,
  unqualifyState
} from './wire.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

/** What the SDK endpoints need of the admin they are mounted in. */
export interface SdkRoutesContext {
  log: { warn(obj: object, msg: string): void }
  sseMaxBufferBytes: number
}

/** What the SDK endpoints work on. */
export interface SdkRoutesDeps {
  engine: WaygateEngine
  fleet: Fleet
  hub: StreamHub
  instances: InstanceRegistry
  traffic: FleetTraffic
}

const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    matches: Type.Optional(Type.Array(Type.String())),
    current: Type.Optional(Type.Unknown({ description: 'What is stored now (a conflict)' }))
  })
})
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

export const ServiceParams = Type.Object({
  service: Type.String({ pattern: SERVICE_NAME_PATTERN, description: 'The service name' })
})
const KeyParams = Type.Object({
  service: ServiceParams.properties.service,
  key: Type.String({ minLength: 1, maxLength: 4096, description: 'Plain route key (METHOD:/pattern), percent-encoded' })
})
const RecordParams = Type.Object({
  service: ServiceParams.properties.service,
  namespace: Type.String({ minLength: 1, maxLength: 200 }),
  id: Type.String({ minLength: 1, maxLength: 2048 })
})
const Instance = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,100}$' }),
  host: Type.Optional(Type.String({ maxLength: 255 })),
  version: Type.Optional(Type.String({ maxLength: 100 })),
  pid: Type.Optional(Type.Integer({ minimum: 0 }))
}, { additionalProperties: false })
const RegisterBody = Type.Object({
  manifest: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 (hex) of the canonical JSON of the routes' }),
  instance: Instance,
  routes: Type.Array(RouteState, { maxItems: 10_000 })
}, { additionalProperties: false })
const RegisterReply = Type.Object({ manifest: Type.String(), added: Type.Array(Type.String()), revision: Type.Integer() })
const RouteUpdateBody = Type.Object({
  base: Type.Union([RouteState, Type.Null()]),
  next: RouteState,
  audit: Type.Optional(AuditEntry)
}, { additionalProperties: false })
const MaintenanceUpdateBody = Type.Object({
  base: Type.Union([GlobalMaintenance, Type.Null()]),
  next: GlobalMaintenance,
  audit: Type.Optional(AuditEntry)
}, { additionalProperties: false })
const RecordBody = Type.Object({
  value: Type.Unknown(),
  expiresAt: Type.Optional(Type.Union([Type.Number(), Type.Null()]))
}, { additionalProperties: false })
const CallersParams = Type.Object({
  service: ServiceParams.properties.service,
  id: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,200}$', description: 'The sketch: the publishing process and the hour' })
})
const CallersBody = Type.Object({
  value: Type.Object({
    key: Type.String({ minLength: 1, maxLength: 4096, description: 'Plain route key of the deprecated route (METHOD:/pattern)' }),
    hour: Type.Integer({ minimum: 0, description: 'Start of the sketch\'s hour, ms since the epoch' }),
    total: Type.Integer({ minimum: 0 }),
    capacity: Type.Integer({ minimum: 1, maximum: 10_000 }),
    entries: Type.Array(Type.Object({
      id: Type.String({ maxLength: 1024 }),
      count: Type.Integer({ minimum: 0 }),
      error: Type.Integer({ minimum: 0 }),
      lastSeen: Type.Number({ minimum: 0 })
    }, { additionalProperties: false }), { maxItems: 10_000 })
  }, { additionalProperties: false }),
  expiresAt: Type.Optional(Type.Union([Type.Number(), Type.Null()]))
}, { additionalProperties: false })
// a bucket: [period, ...counts by outcome]; at most the day ring's 288 buckets of 16 outcomes
const TrafficBuckets = (maxItems: number) => Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 2, maxItems: 17 }), { maxItems })
const TrafficParams = Type.Object({
  service: ServiceParams.properties.service,
  instance: Instance.properties.id
})
const TrafficBody = Type.Object({
  outcomes: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 16, description: 'What each count of a bucket is, in order (passed, deprecated, maintenance, ...)' }),
  routes: Type.Array(Type.Object({
    key: Type.String({ minLength: 1, maxLength: 4096, description: 'Plain route key (METHOD:/pattern)' }),
    hour: TrafficBuckets(60),
    day: TrafficBuckets(288)
  }, { additionalProperties: false }), { maxItems: 10_000 })
}, { additionalProperties: false })
const RecordSchema = Type.Object({ id: Type.String(), value: Type.Unknown(), expiresAt: Type.Union([Type.Number(), Type.Null()]) })
const Snapshot = Type.Object({
  epoch: Type.String(),
  revision: Type.Integer(),
  service: Type.String(),
  routes: Type.Array(RouteState),
  global: GlobalMaintenance,
  serviceMaintenance: GlobalMaintenance,
  rateLimits: Type.Array(RecordSchema),
  manifest: Type.Union([Type.String(), Type.Null()])
})
const EventsQuery = Type.Object({
  instance: Type.Optional(Instance.properties.id),
  // the instance's details, so every instance is listed with them even when its registration was
  // skipped (the server already held its manifest)
  host: Instance.properties.host,
  version: Instance.properties.version,
  pid: Instance.properties.pid,
  lastEventId: Type.Optional(Type.String({ maxLength: 200 }))
}, { additionalProperties: false })
const AuditListQuery = Type.Object({
  key: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  action: Type.Optional(AuditAction),
  actor: Type.Optional(Type.String({ maxLength: 200 })),
  since: Type.Optional(Type.String({ maxLength: 64 })),
  until: Type.Optional(Type.String({ maxLength: 64 })),
  before: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 }))
}, { additionalProperties: false })

/** The service of a `:service` parameter, refused when it is an HTTP method (the pattern let it through). */
export function serviceParam (name: string): string {
  if (!isServiceName(name)) throw new WG_ERR_REQUEST_INVALID(`service "${name}" is an HTTP method, which cannot name a service`)
  return name
}

/** The server key of a route key a service reports about (callers, traffic): 403 for another service's, 400 for no key. */
function reportedKey (service: string, input: string): string {
  try {
    return qualify(service, plainKey(service, input))
  } catch (err) {
    if (err instanceof WG_ERR_AUTH_SCOPE) throw err
    throw new WG_ERR_REQUEST_INVALID(`"${input.slice(0, 200)}" is not a route key of ${service}: ${(err as Error).message}`)
  }
}

/** A plain route key of the service's own, canonical; a key naming a service is refused. */
function plainKey (service: string, input: string): string {
  const split = serviceAndKey(input)
  if (split === null) parseRouteKey(input) // throws the precise key error
  if (split!.service !== null && split!.service !== service) {
    throw new WG_ERR_AUTH_SCOPE(`the key ${input.slice(0, 200)} belongs to service "${split!.service}", not "${service}"`)
  }
  return split!.key
}

function principalOf (request: FastifyRequest): { user: string, service: string | null } {
  const principal = request.waygatePrincipal
  return { user: principal?.user ?? 'anonymous', service: principal?.claims?.svc ?? null }
}

/** An audit entry a service sent, as the server stores it: platform sdk, this service, its key qualified. */
function serviceAudit (service: string, entry: AuditEntry): AuditEntry {
  const key = entry.key === GLOBAL_KEY ? GLOBAL_KEY : qualify(service, plainKey(service, entry.key))
  let id = entry.id
  // the ids the scheduler derives from a key (`window_start:<key>:<at>`) are made from the server's
  // key, so the server's own scheduler and the service's write the same entry once
  const derived = `${entry.action}:${entry.key}:`
  if (key !== entry.key && id.startsWith(derived)) id = `${entry.action}:${key}:${id.slice(derived.length)}`
  return { ...entry, id, key, service, platform: 'sdk' }
}

/** The endpoints services sync from: register, snapshot, events, compare-and-set writes, records, audit. */
export function registerSdkRoutes (api: Api, ctx: SdkRoutesContext, deps: SdkRoutesDeps): void {
  const { engine, fleet, hub, instances, traffic } = deps
  const base = { config: { waygate: false as const } }
  const tags = ['waygate-sdk']
  const at = '/api/sdk/services/:service'

  // every instance registers at every start, with what its service's other instances already
  // registered: a record is written only when it changes, and once for registrations at the same
  // time (each write is a whole-file rewrite on the file backend)
  const writing = new Map<string, { value: string, done: Promise<void> }>()
  function writeOnce (id: string, value: string, stored: string | null, write: () => Promise<void>): Promise<void> {
    if (stored === value) return Promise.resolve()
    const pending = writing.get(id)
    if (pending?.value === value) return pending.done
    const done = write().finally(() => {
      if (writing.get(id)?.done === done) writing.delete(id)
    })
    writing.set(id, { value, done })
    return done
  }

  api.post(`${at}/register`, {
    ...base,
    bodyLimit: 16 * 1024 * 1024,
    schema: { tags, summary: 'Register a service\'s routes (idempotent: stored states win)', params: ServiceParams, body: RegisterBody, response: { 200: RegisterReply, ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const { manifest, instance, routes } = request.body
    const states = routes.map(state => {
      if (state.service !== null && state.service !== service) {
        throw new WG_ERR_AUTH_SCOPE(`route ${state.key.slice(0, 200)} names service "${state.service}"; register it as that service`)
      }
      const key = plainKey(service, state.key)
      return qualifyState(service, { ...state, key })
    })
    const added = await engine.registerRoutes(states)
    const iso = new Date(engine.now()).toISOString()
    await writeOnce(`manifest:${service}`, manifest, fleet.manifestOf(service), () =>
      engine.backend.putRecord(SERVICE_MANIFESTS_NAMESPACE, service, { manifest, registeredAt: iso }))
    await writeOnce(`known:${service}`, 'known', fleet.isKnown(service) ? 'known' : null, async () => {
      if (await engine.backend.getRecord(SERVICES_KNOWN_NAMESPACE, service) === null) {
        await engine.backend.putRecord(SERVICES_KNOWN_NAMESPACE, service, { firstSeen: iso })
      }
    })
    instances.registered(service, { id: instance.id, host: instance.host ?? null, version: instance.version ?? null, pid: instance.pid ?? null })
    request.log.info({ service, instance: instance.id, routes: routes.length, added: added.length }, 'waygate server: service registered')
    return { manifest, added: added.map(k => serviceAndKey(k)?.key ?? k), revision: engine.revision }
  })

  api.get(`${at}/snapshot`, {
    ...base,
    schema: { tags, summary: 'Everything that applies to the service, at one revision', params: ServiceParams, response: { 200: Snapshot, ...errors } }
  }, async (request) => hub.snapshotFor(serviceParam(request.params.service)))

  api.get(`${at}/events`, {
    ...base,
    schema: { tags, summary: 'Server-sent events: a snapshot or the missed changes, then every change of the service and the global ones', params: ServiceParams, querystring: EventsQuery }
  }, (request, reply) => {
    const service = serviceParam(request.params.service)
    const header = request.headers['last-event-id']
    const resumeFrom = typeof header === 'string' && header !== '' ? header : request.query.lastEventId ?? null
    const sse = createSseStream(reply, { maxBufferBytes: ctx.sseMaxBufferBytes, heartbeatMs: 0, log: ctx.log })
    hub.serve(sse, {
      service,
      tokenId: request.waygatePrincipal?.claims?.jti ?? null,
      instanceId: request.query.instance ?? null,
      instanceDetails: request.query.instance === undefined || request.query.host === undefined
        ? null
        : { id: request.query.instance, host: request.query.host, version: request.query.version ?? null, pid: request.query.pid ?? null },
      resumeFrom
    })
  })

  api.put(`${at}/routes/:key`, {
    ...base,
    bodyLimit: 256 * 1024,
    schema: { tags, summary: 'Compare-and-set one route state of the service', params: KeyParams, body: RouteUpdateBody, response: { 200: Type.Object({ state: RouteState }), ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const key = plainKey(service, decodeKeyParam(request.params.key))
    const { base: given, next, audit } = request.body
    for (const [what, state] of [['next', next], ['base', given]] as const) {
      if (state !== null && plainKey(service, state.key) !== key) throw new WG_ERR_REQUEST_INVALID(`${what}.key must be ${key}`)
    }
    const qualified = qualify(service, key)
    try {
      const stored = await engine.applyRemoteUpdate(qualified, {
        base: given === null ? null : qualifyState(service, { ...given, key }),
        next: qualifyState(service, { ...next, key }),
        audit: audit === undefined ? undefined : serviceAudit(service, audit)
      })
      return { state: unqualifyState(service, stored) }
    } catch (err) {
      const current = (err as { code?: string, current?: unknown }).current
      if ((err as { code?: string }).code === 'WG_ERR_CONFLICT' && current !== undefined) {
        conflict(key, current === null ? null : unqualifyState(service, current as RouteState))
      }
      throw err
    }
  })

  api.put(`${at}/maintenance`, {
    ...base,
    schema: { tags, summary: 'Compare-and-set the service\'s maintenance', params: ServiceParams, body: MaintenanceUpdateBody, response: { 200: Type.Object({ maintenance: GlobalMaintenance }), ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const { base: given, next, audit } = request.body
    const stored = await engine.backend.getRecord(SERVICE_MAINTENANCE_NAMESPACE, service)
    const current = (stored?.value as Static<typeof GlobalMaintenance> | undefined) ?? defaultGlobalMaintenance()
    if (!isDeepStrictEqual(current, given ?? defaultGlobalMaintenance())) conflict(`maintenance of ${service}`, current)
    await engine.backend.putRecord(SERVICE_MAINTENANCE_NAMESPACE, service, next)
    const who = principalOf(request)
    await engine.recordChange(serviceAudit(service, audit ?? {
      id: randomUUID(),
      timestamp: new Date(engine.now()).toISOString(),
      key: GLOBAL_KEY,
      service,
      action: next.enabled ? 'global_maintenance_on' : 'global_maintenance_off',
      actor: who.service ?? who.user,
      platform: 'sdk',
      reason: next.reason,
      previousStatus: current.enabled ? 'maintenance' : 'active',
      newStatus: next.enabled ? 'maintenance' : 'active'
    }))
    return { maintenance: next }
  })

  function recordTarget (request: FastifyRequest<{ Params: Static<typeof RecordParams> }>): { service: string, id: string } {
    const service = serviceParam(request.params.service)
    if (request.params.namespace !== RATE_LIMIT_NAMESPACE) {
      throw new WG_ERR_REQUEST_INVALID(`only ${RATE_LIMIT_NAMESPACE} records are kept for services, not ${request.params.namespace.slice(0, 200)}`)
    }
    const id = recordIdFromService(service, request.params.id)
    if (id === null) throw new WG_ERR_REQUEST_INVALID(`"${request.params.id.slice(0, 200)}" is not a rate limit record id (a route key, @service, * or reset:…)`)
    if ((id === GLOBAL_KEY || id === `reset:${GLOBAL_KEY}`) && principalOf(request).service !== null) {
      throw new WG_ERR_AUTH_SCOPE('a service token cannot change the global rate limit')
    }
    return { service, id }
  }

  api.put(`${at}/records/:namespace/:id`, {
    ...base,
    schema: { tags, summary: 'Store a rate limit record of the service', params: RecordParams, body: RecordBody, response: { 200: Type.Object({ written: Type.Boolean() }), ...errors } }
  }, async (request) => {
    const { service, id } = recordTarget(request)
    let value = recordValueForService(service, request.body.value, false)
    if (!id.startsWith('reset:') && id !== servicePolicyId(service) && id !== GLOBAL_KEY) {
      value = checkRateLimitPolicy({ ...(value as object), key: id } as never, `rate limit of ${id}`)
    } else if (!id.startsWith('reset:')) {
      const v = value as { policy?: unknown, enabled?: unknown, exemptRoutes?: unknown } | null
      if (v === null || typeof v !== 'object' || typeof v.enabled !== 'boolean' || !Array.isArray(v.exemptRoutes)) {
        throw new WG_ERR_REQUEST_INVALID('a service or global policy record is { policy, enabled, exemptRoutes }')
      }
      value = { ...v, policy: checkRateLimitPolicy({ ...(v.policy as object), key: id } as never, `rate limit ${id}`) }
    }
    const expiresAt = request.body.expiresAt
    await engine.backend.putRecord(RATE_LIMIT_NAMESPACE, id, value, typeof expiresAt === 'number' ? { expiresAt } : undefined)
    return { written: true }
  })

  api.delete(`${at}/records/:namespace/:id`, {
    ...base,
    schema: { tags, summary: 'Remove a rate limit record of the service', params: RecordParams, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } }
  }, async (request) => {
    const { id } = recordTarget(request)
    return { deleted: await engine.backend.deleteRecord(RATE_LIMIT_NAMESPACE, id) }
  })

  // the hourly callers sketches of a service's deprecated routes, one per instance and hour: kept
  // under the route's server key, so the server's callers report merges every instance's
  api.put(`${at}/callers/:id`, {
    ...base,
    bodyLimit: 4 * 1024 * 1024,
    schema: { tags, summary: 'Store one instance\'s hourly callers sketch of a deprecated route of the service', params: CallersParams, body: CallersBody, response: { 200: Type.Object({ written: Type.Boolean() }), ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const { value } = request.body
    if (value.entries.length > value.capacity) throw new WG_ERR_REQUEST_INVALID(`a sketch of ${value.capacity} slots holds at most ${value.capacity} entries, not ${value.entries.length}`)
    const key = reportedKey(service, value.key)
    // kept for the report's 24 hours and one more at most, whatever the instance asked for
    const latest = callerSketchExpiry(value.hour)
    const expiresAt = typeof request.body.expiresAt === 'number' ? Math.min(request.body.expiresAt, latest) : latest
    await engine.backend.putRecord(callersNamespace(key), `${service}|${request.params.id}`, { ...value, key }, { expiresAt })
    return { written: true }
  })

  // each instance's traffic rings, whole: the server's charts of the service's routes sum them
  api.put(`${at}/traffic/:instance`, {
    ...base,
    bodyLimit: 16 * 1024 * 1024,
    schema: { tags, summary: 'Report one instance\'s per-route traffic (its last hour and day, replacing its previous report)', params: TrafficParams, body: TrafficBody, response: { 200: Type.Object({ routes: Type.Integer() }), ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const routes: Array<{ key: string, hour: number[][], day: number[][] }> = []
    for (const route of request.body.routes) {
      const key = reportedKey(service, route.key)
      // only routes the service registered: what a report can make the server keep is bounded
      if (engine.getState(key) !== null) routes.push({ key, hour: route.hour, day: route.day })
    }
    traffic.put(service, request.params.instance, request.body.outcomes, routes)
    return { routes: routes.length }
  })

  api.post(`${at}/audit`, {
    ...base,
    schema: { tags, summary: 'Append an audit entry of the service (once per id)', params: ServiceParams, body: AuditEntry, response: { 200: Type.Object({ written: Type.Boolean() }), ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    return { written: await engine.recordChange(serviceAudit(service, request.body)) }
  })

  api.get(`${at}/audit`, {
    ...base,
    schema: { tags, summary: 'Audit entries of the service, newest first', params: ServiceParams, querystring: AuditListQuery, response: { 200: Type.Array(AuditEntry), ...errors } }
  }, async (request) => {
    const service = serviceParam(request.params.service)
    const { key, ...rest } = request.query
    const query: AuditQuery = { ...rest, service }
    if (key !== undefined) query.key = key === GLOBAL_KEY ? GLOBAL_KEY : qualify(service, plainKey(service, decodeKeyParam(key)))
    const entries = await engine.listAudit(query)
    return entries.map(entry => unqualifyAudit(service, entry))
  })
}
