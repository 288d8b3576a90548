import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import { RouteTraffic, TRAFFIC_OUTCOMES, type TrafficRange, type TrafficRecorder, type TrafficReport } from '@waygate/core'
import type { AdminContext } from '../context.js'
import { decodeKeyParam } from '../params.js'
import { ErrorBody, KeyParams, NoQuery } from '../schemas.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

const Outcomes = Type.Object(Object.fromEntries(TRAFFIC_OUTCOMES.map(o => [o, Type.Optional(Type.Integer({ minimum: 0 }))])))

export const TrafficQuery = Type.Object({
  range: Type.Optional(Type.Union([Type.Literal('hour'), Type.Literal('day')], {
    description: '`hour`: 60 one-minute buckets (default); `day`: 288 five-minute buckets'
  }))
}, { additionalProperties: false })

export const TrafficReply = Type.Object({
  key: Type.String(),
  range: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
  bucketSeconds: Type.Integer(),
  buckets: Type.Array(Type.Object({
    start: Type.String({ format: 'date-time' }),
    requests: Type.Integer(),
    blocked: Type.Integer(),
    outcomes: Outcomes
  })),
  totals: Type.Object({ requests: Type.Integer(), blocked: Type.Integer(), outcomes: Outcomes })
})

export const TrafficSummaryReply = Type.Object({
  /** Changes when a request is counted or the minute turns. */
  version: Type.String(),
  routes: Type.Array(Type.Object({ key: Type.String(), requests: Type.Integer(), blocked: Type.Integer() }))
})
export type TrafficSummaryReply = Static<typeof TrafficSummaryReply>

/** A route's traffic report, all zeros when it has had no request. */
export function trafficOf (traffic: TrafficRecorder, key: string, range: TrafficRange): TrafficReport {
  return (traffic.get(key) ?? new RouteTraffic(key, traffic.now)).report(range)
}

/** Per-route traffic of this process (present when the waygate plugin is registered). */
export function registerTrafficRoutes (api: Api, ctx: AdminContext, traffic: TrafficRecorder): void {
  const { engine } = ctx
  const base = { config: { waygate: false as const }, bodyLimit: ctx.bodyLimit }
  const tags = ['waygate-routes']

  api.get('/api/routes/:key/traffic', {
    ...base,
    schema: {
      tags,
      summary: 'Requests and blocked requests of a route, per minute (last hour) or per five minutes (last 24 h)',
      params: KeyParams,
      querystring: TrafficQuery,
      response: { 200: TrafficReply, ...errors }
    }
  }, async (request) => {
    const [key] = engine.resolveKeys(decodeKeyParam(request.params.key))
    return trafficOf(traffic, key!, request.query.range ?? 'hour')
  })

  api.get('/api/traffic', {
    ...base,
    schema: {
      tags,
      summary: 'Requests and blocked requests of every route over the last hour, with a version that changes as they do',
      querystring: NoQuery,
      response: { 200: TrafficSummaryReply, ...errors }
    }
  }, async () => {
    const routes = engine.listRoutes().map(state => {
      const totals = traffic.get(state.key)?.totals('hour') ?? { requests: 0, blocked: 0 }
      return { key: state.key, ...totals }
    })
    return { version: traffic.version(), routes }
  })
}
