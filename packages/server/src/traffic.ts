import { OUTCOME_INDEX, RouteTraffic, TRAFFIC_RINGS, type TrafficOutcome, type TrafficRecorder } from '@waygate/core'

/** One instance's rings of one route, as it last sent them. */
interface Reported {
  hour: number[][]
  day: number[][]
  columns: number[]
}

/**
 * The services' traffic as their instances report it (`PUT /api/sdk/services/:service/traffic/:instance`),
 * behind the same interface as one process's recorder, so the admin's charts, route page and
 * `GET /api/routes/:key/traffic` work for service routes. Each report replaces that instance's
 * previous one (whole rings, not increments): a report sent twice counts once, and a server that
 * restarts has the whole last day back with each instance's next report. In memory: at most
 * `maxInstances` per service (the longest silent go first), a report dropped a day after the last.
 */
export interface FleetTraffic extends TrafficRecorder {
  /** Takes an instance's report; `keys` are the routes' server keys (`service:METHOD:/path`). */
  put(service: string, instance: string, columns: readonly string[], routes: ReadonlyArray<{ key: string, hour: number[][], day: number[][] }>): void
}

const DAY_MS = TRAFFIC_RINGS.day.size * TRAFFIC_RINGS.day.length

export function createFleetTraffic (options: { now: () => number, maxInstances?: number }): FleetTraffic {
  const { now } = options
  const maxInstances = options.maxInstances ?? 256
  // server key → instance (service|instance) → its rings
  const reports = new Map<string, Map<string, Reported>>()
  // service → instance → last report time, for the bound
  const seen = new Map<string, Map<string, number>>()
  const merged = new Map<string, RouteTraffic>()
  let changes = 0

  function forget (service: string, instance: string): void {
    seen.get(service)?.delete(instance)
    const id = `${service}|${instance}`
    for (const [key, byInstance] of reports) {
      if (byInstance.delete(id)) merged.delete(key)
      if (byInstance.size === 0) reports.delete(key)
    }
  }

  function expire (t: number): void {
    for (const [service, instances] of seen) {
      for (const [instance, at] of instances) if (t - at > DAY_MS) forget(service, instance)
      if (instances.size === 0) seen.delete(service)
    }
  }

  function build (key: string): RouteTraffic | undefined {
    const byInstance = reports.get(key)
    if (byInstance === undefined) return undefined
    let traffic = merged.get(key)
    if (traffic === undefined) {
      traffic = new RouteTraffic(key, now)
      for (const report of byInstance.values()) {
        traffic.absorb('hour', report.hour, report.columns)
        traffic.absorb('day', report.day, report.columns)
      }
      merged.set(key, traffic)
    }
    return traffic
  }

  return {
    now,
    scope: 'every instance of the service, as each last reported',
    put (service, instance, outcomes, routes) {
      const t = now()
      expire(t)
      let instances = seen.get(service)
      if (instances === undefined) seen.set(service, instances = new Map())
      if (!instances.has(instance) && instances.size >= maxInstances) {
        let oldest: [string, number] | null = null
        for (const entry of instances) if (oldest === null || entry[1] < oldest[1]) oldest = entry
        forget(service, oldest![0])
      }
      instances.set(instance, t)
      const columns = outcomes.map(o => OUTCOME_INDEX[o as TrafficOutcome] ?? -1)
      const id = `${service}|${instance}`
      for (const route of routes) {
        let byInstance = reports.get(route.key)
        if (byInstance === undefined) reports.set(route.key, byInstance = new Map())
        byInstance.set(id, { hour: route.hour, day: route.day, columns })
        merged.delete(route.key)
      }
      if (routes.length > 0) changes++
    },
    route (key) {
      return build(key) ?? new RouteTraffic(key, now)
    },
    // a merged view stays right as time passes: reports are read against the clock
    get: key => build(key),
    keys: () => [...reports.keys()],
    version: () => `${Math.floor(now() / TRAFFIC_RINGS.hour.size)}.${changes}`
  }
}
