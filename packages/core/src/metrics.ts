import { effectiveStatus } from './decision.js'
import type { WaygateEngine } from './engine.js'
import { ROUTE_STATUSES } from './models.js'

// Typed by shape, not by importing prom-client: it is an optional peer dependency of the packages
// that load it, and core never does. A prom-client Registry, Counter and Gauge fit these.

/** A prom-client `Registry` (the app's own, to sit beside its other metrics, or a new one). */
export interface MetricsRegistry {
  metrics(): Promise<string>
  readonly contentType: string
  getSingleMetric(name: string): unknown
  registerMetric(metric: never): void
}

/** A counter bound to its label values: what the request path increments. */
export interface BoundCounter {
  inc(value?: number): void
}

interface PromCounter {
  labels(...values: string[]): BoundCounter
  inc(value?: number): void
}

interface PromCounterCollected {
  inc(labels: Record<string, string>, value: number): void
  reset(): void
}

interface PromGauge {
  set(labels: Record<string, string>, value: number): void
  set(value: number): void
  reset(): void
}

interface MetricConfig<T> {
  name: string
  help: string
  labelNames?: readonly string[]
  registers: MetricsRegistry[]
  collect?: (this: T) => void | Promise<void>
}

/** What of prom-client waygate uses: `await import('prom-client')` fits it. */
export interface PromClientModule {
  Counter: new (config: MetricConfig<PromCounterCollected>) => PromCounter
  Gauge: new (config: MetricConfig<PromGauge>) => PromGauge
  Registry: new () => MetricsRegistry
}

/** The `metrics` option of the waygate plugin and of the Waygate Server. */
export interface MetricsOptions {
  /** The prom-client registry to register on. Default: a new one (only waygate's metrics then). */
  registry?: MetricsRegistry
  /** Where the metrics are served, or false to serve nothing (scrape the registry yourself). Default `/metrics`. */
  path?: string | false
  /** Prefix of every metric name. Default `waygate_`. */
  prefix?: string
  /** Serve the metrics only to callers the waygate admin authenticates (its tokens). Default false. */
  auth?: boolean
}

/** Lists what is wrong with a `metrics` option (empty when nothing). */
export function metricsOptionsProblems (value: unknown, where = 'metrics'): string[] {
  if (value === undefined || value === false || value === true) return []
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${where}: expected true, false or an object`]
  const o = value as Record<string, unknown>
  const problems: string[] = []
  for (const name of Object.keys(o)) {
    if (!['registry', 'path', 'prefix', 'auth'].includes(name)) problems.push(`${where}.${name}: unknown option (registry, path, prefix, auth)`)
  }
  const registry = o.registry as Partial<MetricsRegistry> | undefined
  if (registry !== undefined && (registry === null || typeof registry.metrics !== 'function' || typeof registry.registerMetric !== 'function')) {
    problems.push(`${where}.registry: expected a prom-client Registry`)
  }
  if (o.path !== undefined && o.path !== false && (typeof o.path !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(o.path))) {
    problems.push(`${where}.path: expected a path such as /metrics, or false`)
  }
  if (o.prefix !== undefined && (typeof o.prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(o.prefix))) {
    problems.push(`${where}.prefix: expected a metric name prefix such as waygate_`)
  }
  if (o.auth !== undefined && typeof o.auth !== 'boolean') problems.push(`${where}.auth: expected a boolean`)
  return problems
}

/** The options with their defaults, from `true` or an object. */
export function resolveMetricsOptions (value: MetricsOptions | true): { registry: MetricsRegistry | undefined, path: string | false, prefix: string, auth: boolean } {
  const o = value === true ? {} : value
  return { registry: o.registry, path: o.path ?? '/metrics', prefix: o.prefix ?? 'waygate_', auth: o.auth ?? false }
}

/** The label a route key gets; `*` stands for paths no route matched (global maintenance). */
export const UNMATCHED_ROUTE = '*'

/**
 * Registers the gauges every engine has, computed when scraped (nothing on the request path):
 * each route's status, how long it has had it, global maintenance, backend health and the age of
 * the state held. Returns the gauges (already registered).
 */
export function registerEngineMetrics (prom: PromClientModule, registry: MetricsRegistry, prefix: string, engine: WaygateEngine): unknown[] {
  const registers = [registry]
  // registered through `registers`; kept for the caller
  const gauges: unknown[] = []
  gauges.push(new prom.Gauge({
    name: `${prefix}route_status`,
    help: 'Current status of each route: 1 for the status it has now, 0 for the others',
    labelNames: ['route', 'service', 'status'],
    registers,
    collect () {
      this.reset()
      const now = engine.now()
      for (const state of engine.listRoutes()) {
        const current = effectiveStatus(state, now)
        for (const status of ROUTE_STATUSES) this.set({ route: state.key, service: state.service ?? '', status }, status === current ? 1 : 0)
      }
    }
  }))
  gauges.push(new prom.Gauge({
    name: `${prefix}route_status_since_seconds`,
    help: 'Seconds each route has had its current status (since its last change, or since its maintenance window opened)',
    labelNames: ['route', 'service'],
    registers,
    collect () {
      this.reset()
      const now = engine.now()
      for (const state of engine.listRoutes()) {
        let since = Date.parse(state.updatedAt)
        const windowStart = state.window === null ? Number.NaN : Date.parse(state.window.start)
        // a scheduled window is stored ahead: its maintenance begins when it opens
        if (effectiveStatus(state, now) === 'maintenance' && windowStart <= now) since = Math.max(since, windowStart)
        this.set({ route: state.key, service: state.service ?? '' }, Number.isNaN(since) ? 0 : Math.max(0, (now - since) / 1000))
      }
    }
  }))
  gauges.push(new prom.Gauge({
    name: `${prefix}global_maintenance`,
    help: 'Whether global maintenance is on (1) or off (0)',
    registers,
    collect () {
      this.set(engine.getGlobal().enabled ? 1 : 0)
    }
  }))
  // the engine says whether it is healthy now; the last time it was seen so is kept here, at scrapes
  let lastHealthy = engine.now()
  const status = async (): Promise<Awaited<ReturnType<WaygateEngine['status']>>> => await engine.status()
  gauges.push(new prom.Gauge({
    name: `${prefix}backend_up`,
    help: 'Whether the state backend (or the Waygate Server a service syncs from) answers: 1 healthy, 0 failing',
    labelNames: ['backend'],
    registers,
    async collect () {
      const s = await status()
      this.reset()
      this.set({ backend: s.backend }, s.healthy ? 1 : 0)
    }
  }))
  gauges.push(new prom.Gauge({
    name: `${prefix}backend_sync_age_seconds`,
    help: 'Seconds since the state held was last known to be in sync with the backend (0 while it is)',
    labelNames: ['backend'],
    registers,
    async collect () {
      const s = await status()
      const now = engine.now()
      let age: number
      if (s.sync !== undefined) {
        age = s.sync.staleSeconds ?? (s.sync.lastSync === null ? Number.NaN : Math.max(0, (now - Date.parse(s.sync.lastSync)) / 1000))
      } else {
        if (s.healthy) lastHealthy = now
        age = s.healthy ? 0 : Math.max(0, (now - lastHealthy) / 1000)
      }
      this.reset()
      this.set({ backend: s.backend }, age)
    }
  }))
  // the dispatcher counts; the counter is set from it at each scrape
  gauges.push(new prom.Counter({
    name: `${prefix}webhook_deliveries_total`,
    help: 'Webhook deliveries of this process by outcome: delivered, retried (another attempt follows), failed (given up, in memory), dead (kept as a dead letter), dropped (queue full)',
    labelNames: ['outcome'],
    registers,
    collect () {
      this.reset()
      for (const [outcome, n] of Object.entries(engine.webhookDeliveries)) this.inc({ outcome }, n)
    }
  }))
  return gauges
}
