import {
  registerEngineMetrics,
  resolveMetricsOptions,
  TRAFFIC_OUTCOMES,
  WG_ERR_OPTIONS_INVALID,
  type MetricsOptions,
  type MetricsRegistry,
  type PromClientModule,
  type RateLimitStore,
  type RouteTraffic,
  type WaygateEngine
} from '@waygate/core'

/**
 * What one route counts its requests with: its traffic rings, and (with metrics on) one total per
 * outcome in a typed array. The request path calls {@link RouteMeter.record} once per request: an
 * increment of each, no allocation. prom-client's `requests_total` takes the totals when scraped
 * (a bound prom-client counter would hash its labels and allocate on every increment).
 */
export class RouteMeter {
  readonly traffic: RouteTraffic
  private readonly totals: Float64Array | null

  constructor (traffic: RouteTraffic, totals: Float64Array | null) {
    this.traffic = traffic
    this.totals = totals
  }

  /** Counts one request with outcome `index` (core's `OUTCOME_INDEX`). */
  record (index: number): void {
    this.traffic.add(index)
    const totals = this.totals
    if (totals !== null) totals[index]!++
  }
}

/** The plugin's metrics, once prom-client is loaded. */
export interface PluginMetrics {
  registry: MetricsRegistry
  path: string | false
  auth: boolean
  /** A route's request totals, one per outcome (core's `OUTCOME_INDEX`), published as `requests_total` when scraped. */
  bind (route: string): Float64Array
  /** A rate limit check answered degraded (the store could not answer: allowed, or refused when fail-closed). */
  degraded (): void
  /** A rate limit check failed outright (it was let through). */
  storeError (): void
}

async function loadPromClient (): Promise<PromClientModule> {
  try {
    const mod = await import('prom-client') as unknown as PromClientModule & { default?: PromClientModule }
    return typeof mod.Counter === 'function' ? mod : mod.default!
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new WG_ERR_OPTIONS_INVALID('install prom-client to use the metrics option (npm install prom-client)', { cause: err })
    }
    throw err
  }
}

/**
 * Loads prom-client and registers waygate's metrics: counters the request path increments (bound
 * per route), and gauges computed when scraped.
 */
export async function createPluginMetrics (options: MetricsOptions | true, engine: WaygateEngine,
  store: () => RateLimitStore): Promise<PluginMetrics> {
  const resolved = resolveMetricsOptions(options)
  const prom = await loadPromClient()
  const registry = resolved.registry ?? new prom.Registry()
  const prefix = resolved.prefix
  const registers = [registry]
  // each bound route's totals, and what of them the counter already holds
  const bound: Array<{ totals: Float64Array, published: Float64Array, labels: Array<{ route: string, outcome: string }> }> = []
  const requests = new prom.Counter({
    name: `${prefix}requests_total`,
    help: 'Requests waygate decided, by route pattern and outcome',
    labelNames: ['route', 'outcome'],
    registers,
    collect () {
      for (const b of bound) {
        for (let i = 0; i < b.totals.length; i++) {
          const delta = b.totals[i]! - b.published[i]!
          if (delta > 0) {
            this.inc(b.labels[i]!, delta)
            b.published[i] = b.totals[i]!
          }
        }
      }
    }
  })
  const degraded = new prom.Counter({
    name: `${prefix}rate_limit_degraded_total`,
    help: 'Rate limit checks the store could not answer (allowed: fail-open; refused when the route is failClosed)',
    registers
  })
  const storeErrors = new prom.Counter({
    name: `${prefix}rate_limit_store_errors_total`,
    help: 'Rate limit checks that failed with an error (let through)',
    registers
  })
  const gauges: unknown[] = registerEngineMetrics(prom, registry, prefix, engine)
  gauges.push(new prom.Gauge({
    name: `${prefix}rate_limit_store_up`,
    help: 'Whether the rate limit store answers: 1 healthy, 0 failing',
    labelNames: ['store'],
    registers,
    async collect () {
      const s = store()
      let ok = false
      try {
        ok = (await s.health()).ok
      } catch {
        ok = false
      }
      this.reset()
      this.set({ store: s.kind }, ok ? 1 : 0)
    }
  }))
  return {
    registry,
    path: resolved.path,
    auth: resolved.auth,
    bind: route => {
      const labels = TRAFFIC_OUTCOMES.map(outcome => ({ route, outcome }))
      // a series from the start, at 0, so rate() and absent-series alerts see every outcome
      for (const l of labels) requests.labels(l.route, l.outcome).inc(0)
      const totals = new Float64Array(TRAFFIC_OUTCOMES.length)
      bound.push({ totals, published: new Float64Array(TRAFFIC_OUTCOMES.length), labels })
      return totals
    },
    degraded: () => degraded.inc(),
    storeError: () => storeErrors.inc()
  }
}
