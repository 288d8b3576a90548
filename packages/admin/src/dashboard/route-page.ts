import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  BLOCKED_OUTCOMES,
  effectiveStatus,
  WG_ERR_ROUTE_NOT_FOUND,
  type TrafficBucket,
  type TrafficOutcome,
  type TrafficRecorder,
  type WaygateEngine
} from '@waygate/core'
import { trafficOf } from '../routes/traffic.js'
import { decodeKeyParam } from '../params.js'
import { STATUS_LABELS } from './format.js'
import { routeRow, type RouteRow } from './pages.js'
import { callersView } from './callers.js'

/**
 * A bar chart drawn on the server: numbers only (coordinates and counts), so nothing in it can
 * carry markup, and the strict CSP holds (no script draws it, no inline style colours it).
 */
export interface SparkView {
  width: number
  height: number
  /** Requests per bucket, then the blocked part of each, as bars. */
  bars: Array<{ x: number, w: number, y: number, h: number, by: number, bh: number, title: string }>
  requests: number
  blocked: number
  /** What the chart says, for screen readers and the tooltip. */
  label: string
  /** The largest bucket, the top of the scale. */
  peak: number
}

/** Draws requests and blocked requests per bucket as bars, scaled to the busiest bucket. */
export function sparkline (buckets: readonly TrafficBucket[], width: number, height: number, span: string): SparkView {
  const peak = Math.max(1, ...buckets.map(b => b.requests))
  const w = width / buckets.length
  let requests = 0
  let blocked = 0
  const bars = buckets.map((b, i) => {
    requests += b.requests
    blocked += b.blocked
    const h = b.requests === 0 ? 0 : Math.max(1, (b.requests / peak) * height)
    const bh = b.blocked === 0 ? 0 : Math.max(1, (b.blocked / peak) * height)
    const round = (n: number): number => Math.round(n * 100) / 100
    return {
      x: round(i * w),
      w: round(Math.max(0.5, w - (w > 2 ? 0.5 : 0))),
      y: round(height - h),
      h: round(h),
      by: round(height - bh),
      bh: round(bh),
      title: `${b.start.slice(11, 16)} UTC: ${b.requests} requests, ${b.blocked} blocked`
    }
  })
  return { width, height, bars, requests, blocked, peak, label: `${span}: ${requests} requests, ${blocked} blocked` }
}

const OUTCOME_LABELS: Record<TrafficOutcome, string> = {
  passed: 'Passed',
  deprecated: 'Served deprecated',
  maintenance: 'Maintenance (503)',
  disabled: 'Disabled (503)',
  env_gated: 'Hidden in this environment (404)',
  sunset: 'Past its sunset (410)',
  brownout: 'Brownout (410)',
  rate_limited: 'Rate limited (429)',
  global_maintenance: 'Global maintenance (503)'
}

/** A route row with its last hour of traffic. */
export type TrafficRow = RouteRow & { traffic: SparkView | null, page: string }

/** Adds each row's last hour (60 one-minute bars) and the link to its page. */
export function withTraffic (rows: RouteRow[], traffic: TrafficRecorder | null, prefix: string): TrafficRow[] {
  return rows.map(row => Object.assign(row, {
    traffic: traffic === null ? null : sparkline(trafficOf(traffic, row.key, 'hour').buckets, 120, 24, 'Last hour'),
    page: `${prefix}/routes/${encodeURIComponent(row.key)}`
  }))
}

/** The marker the dashboard script polls: its version changes as traffic does. */
export function trafficLive (traffic: TrafficRecorder | null, prefix: string): { url: string, version: string } | null {
  return traffic === null ? null : { url: `${prefix}/api/traffic`, version: traffic.version() }
}

/** Everything a route's page shows: its state, its last 24 h and last hour, the blocked requests by kind. */
export function routePageData (engine: WaygateEngine, traffic: TrafficRecorder | null, key: string, prefix: string) {
  const state = engine.getState(key)
  if (state === null) throw new WG_ERR_ROUTE_NOT_FOUND(key)
  const now = engine.now()
  const self = `${prefix}/routes/${encodeURIComponent(state.key)}`
  const day = traffic === null ? null : trafficOf(traffic, state.key, 'day')
  const hour = traffic === null ? null : trafficOf(traffic, state.key, 'hour')
  const current = effectiveStatus(state, now)
  return {
    route: routeRow(state, now, prefix, self),
    effective: { status: current, label: STATUS_LABELS[current] },
    day: day === null ? null : sparkline(day.buckets, 864, 120, 'Last 24 hours'),
    hour: hour === null ? null : sparkline(hour.buckets, 600, 80, 'Last hour'),
    dayStart: day?.buckets[0]?.start ?? null,
    blockedByKind: day === null
      ? []
      : BLOCKED_OUTCOMES.map(o => ({ outcome: o, label: OUTCOME_LABELS[o], day: day.totals.outcomes[o], hour: hour!.totals.outcomes[o] })),
    totals: day === null ? null : { day: day.totals, hour: hour!.totals },
    trafficScope: traffic?.scope ?? 'this process',
    live: trafficLive(traffic, prefix),
    returnTo: self
  }
}

/** What the route page needs from the dashboard. */
export interface RoutePageOptions<S> {
  engine: WaygateEngine
  traffic: TrafficRecorder | null
  prefix: string
  routeOptions: object
  session: (request: FastifyRequest, reply: FastifyReply) => Promise<S>
  page: (reply: FastifyReply, template: string, data: object, user: S, nav?: string | null) => Promise<FastifyReply>
}

/** `GET /routes/:key`: one route, its traffic over 24 h in 5-minute buckets and what was blocked. */
export function registerRoutePage<S> (fastify: FastifyInstance, options: RoutePageOptions<S>): void {
  const { engine, traffic, prefix } = options
  fastify.get<{ Params: { key: string } }>('/routes/:key', options.routeOptions, async (request, reply) => {
    const user = await options.session(request, reply)
    const [key] = engine.resolveKeys(decodeKeyParam(request.params.key))
    const data = routePageData(engine, traffic, key!, prefix)
    // who still calls it (deprecated routes), next to its sunset: see callers.ts
    const callers = await callersView(engine, engine.getState(key!)!)
    return options.page(reply, 'route', { title: data.route.key, ...data, callers }, user, 'routes')
  })
}
