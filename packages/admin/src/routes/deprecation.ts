import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { Brownout, callerTrackerOf, goneReason, MAX_REASON_LENGTH, readCallers, type CallersReport, type MutationOptions, type RouteState } from '@waygate/core'
import type { AdminContext } from '../context.js'
import { decodeKeyParam, resolveWhen } from '../params.js'
import { principalOf } from '../principal.js'
import { ErrorBody, KeyParams, NoBody, NoQuery, RoutesReply } from '../schemas.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

const IsoDate = Type.String({ format: 'date-time' })

/** What `GET /api/routes/:key/callers` answers. */
export const CallersReply = Type.Object({
  key: Type.String(),
  status: Type.String({ description: 'The route\'s status now' }),
  sunset: Type.Union([Type.String(), Type.Null()]),
  afterSunset: Type.Union([Type.Literal('gone'), Type.Null()]),
  gone: Type.Union([Type.Literal('sunset'), Type.Literal('brownout'), Type.Null()], { description: 'Why the route answers 410 right now, or null' }),
  total: Type.Integer({ description: 'Requests counted over the window, every instance together' }),
  slots: Type.Integer({ description: 'Slots per sketch: each count is within total / slots of the truth' }),
  sketches: Type.Integer({ description: 'Hourly sketches merged (instances × hours)' }),
  since: IsoDate,
  until: IsoDate,
  callers: Type.Array(Type.Object({
    id: Type.String({ description: 'Address, API key, user id or custom key' }),
    count: Type.Integer(),
    error: Type.Integer({ description: 'How far count may be from the true count' }),
    lastSeen: IsoDate
  }))
})

const CallersQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, description: 'Most callers listed (default 50)' }))
}, { additionalProperties: false })

const When = Type.String({ minLength: 1, maxLength: 64, description: 'ISO 8601 date-time, or a duration from now such as 30m, 2h, 1d' })

const BrownoutBody = Type.Object({
  start: When,
  end: When,
  reason: Type.Optional(Type.String({ maxLength: MAX_REASON_LENGTH })),
  all: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const BrownoutDeleteQuery = Type.Object({
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'One brownout; without it, every one' })),
  all: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const BrownoutsReply = Type.Object({
  key: Type.String(),
  status: Type.String(),
  sunset: Type.Union([Type.String(), Type.Null()]),
  brownouts: Type.Array(Brownout)
})

function when (value: string, field: string, now: number): string | number {
  const text = value.trim()
  return /^\d{4}-/.test(text) ? text : resolveWhen(value, field, now)
}

/**
 * Who still calls a deprecated route and its brownouts: `GET /api/routes/:key/callers`,
 * `GET|POST|DELETE /api/routes/:key/brownouts`.
 */
export function registerDeprecationRoutes (api: Api, ctx: AdminContext): void {
  const { engine } = ctx
  const base = { config: { waygate: false as const }, bodyLimit: ctx.bodyLimit }

  function who (request: FastifyRequest, all?: boolean): MutationOptions {
    const principal = principalOf(request)
    return { actor: principal.user, platform: principal.platform, all: all === true }
  }

  /** The state of the one key `param` names (ambiguous: 409, unknown: 404, as the other route endpoints). */
  function oneState (param: string): RouteState {
    const [key] = engine.resolveKeys(decodeKeyParam(param))
    return engine.getState(key!)!
  }

  api.get('/api/routes/:key/callers', {
    ...base,
    schema: {
      tags: ['waygate-routes'],
      summary: 'Top callers of a deprecated route over the last 24 h, merged across instances',
      params: KeyParams,
      querystring: CallersQuery,
      response: { 200: CallersReply, ...errors }
    }
  }, async (request) => {
    const state = oneState(request.params.key)
    const limit = request.query.limit ?? 50
    const tracker = callerTrackerOf(engine)
    let report: CallersReport
    if (tracker === undefined) {
      report = await readCallers(engine.backend, state.key, engine.now(), limit)
    } else {
      // what this process counted since its last publish is in the answer too
      await tracker.publish()
      report = await tracker.read(state.key, { limit })
    }
    return {
      ...report,
      status: state.status,
      sunset: state.sunset,
      afterSunset: state.afterSunset ?? null,
      gone: goneReason(state, engine.now())
    }
  })

  api.get('/api/routes/:key/brownouts', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'The planned brownouts of a deprecated route', params: KeyParams, querystring: NoQuery, response: { 200: BrownoutsReply, ...errors } }
  }, async (request) => {
    const state = oneState(request.params.key)
    const t = engine.now()
    return { key: state.key, status: state.status, sunset: state.sunset, brownouts: (state.brownouts ?? []).filter(b => Date.parse(b.end) > t) }
  })

  api.post('/api/routes/:key/brownouts', {
    ...base,
    schema: {
      tags: ['waygate-routes'],
      summary: 'Plan a brownout: the deprecated route answers 410 Gone (ROUTE_BROWNOUT) from start to end',
      params: KeyParams,
      querystring: NoQuery,
      body: BrownoutBody,
      response: { 200: RoutesReply, ...errors }
    }
  }, async (request) => {
    const { start, end, reason, all } = request.body
    const now = engine.now()
    return {
      routes: await engine.scheduleBrownout(decodeKeyParam(request.params.key), {
        ...who(request, all),
        reason,
        start: when(start, 'start', now),
        end: when(end, 'end', now)
      })
    }
  })

  api.delete('/api/routes/:key/brownouts', {
    ...base,
    schema: { tags: ['waygate-routes'], summary: 'Cancel one brownout (id) or all of them', params: KeyParams, querystring: BrownoutDeleteQuery, body: NoBody, response: { 200: RoutesReply, ...errors } }
  }, async (request) => {
    const { id, all } = request.query
    return { routes: await engine.cancelBrownouts(decodeKeyParam(request.params.key), { ...who(request, all), id }) }
  })
}
