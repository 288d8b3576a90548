import { callerTrackerOf, goneReason, readCallers, type RouteState, type WaygateEngine } from '@waygate/core'
import { timeView, type TimeView } from './format.js'

/** The "who still calls" section of a route's page: its top callers and its planned 410s. */
export interface CallersView {
  status: RouteState['status']
  deprecated: boolean
  sunset: TimeView | null
  successor: string | null
  afterSunset: boolean
  /** Why it answers 410 right now, for people, or null. */
  goneNow: string | null
  total: number
  /** Each count is within this of the truth (total / slots, rounded up). */
  bound: number
  sketches: number
  since: TimeView
  callers: Array<{ id: string, count: number, error: number, share: string, shareWidth: number, lastSeen: TimeView }>
  brownouts: Array<{ id: string, start: TimeView, end: TimeView, reason: string, open: boolean }>
}

/**
 * Reads the merged callers of a route (publishing this process's first, when the plugin counts
 * here) for the route page. Values are plain strings and numbers: the template escapes them.
 */
export async function callersView (engine: WaygateEngine, state: RouteState, limit = 20): Promise<CallersView> {
  const now = engine.now()
  const tracker = callerTrackerOf(engine)
  if (tracker !== undefined) await tracker.publish()
  const report = tracker === undefined ? await readCallers(engine.backend, state.key, now, limit) : await tracker.read(state.key, { limit })
  const top = report.callers[0]?.count ?? 1
  const gone = goneReason(state, now)
  return {
    status: state.status,
    deprecated: state.status === 'deprecated',
    sunset: state.sunset === null ? null : timeView(state.sunset, now),
    successor: state.successor,
    afterSunset: state.afterSunset === 'gone',
    goneNow: gone === 'sunset' ? 'Answering 410 Gone: past its sunset' : gone === 'brownout' ? 'Answering 410 Gone: in a planned brownout' : null,
    total: report.total,
    bound: Math.ceil(report.total / Math.max(1, report.slots)),
    sketches: report.sketches,
    since: timeView(report.since, now),
    callers: report.callers.map(c => ({
      id: c.id,
      count: c.count,
      error: c.error,
      share: `${(100 * c.count / Math.max(1, report.total)).toFixed(1)}%`,
      // a bar in steps of 5 %, drawn by a class: the strict CSP allows no inline style
      shareWidth: Math.max(1, Math.round(20 * c.count / top)) * 5,
      lastSeen: timeView(c.lastSeen, now)
    })),
    brownouts: (state.brownouts ?? [])
      .filter(b => Date.parse(b.end) > now)
      .map(b => ({ id: b.id, start: timeView(b.start, now), end: timeView(b.end, now), reason: b.reason, open: Date.parse(b.start) <= now }))
  }
}
