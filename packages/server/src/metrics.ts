import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  registerEngineMetrics,
  resolveMetricsOptions,
  WG_ERR_OPTIONS_INVALID,
  type MetricsOptions,
  type PromClientModule,
  type WaygateEngine
} from '@waygate/core'
import type { InstanceRegistry } from './instances.js'

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
 * The Waygate Server's metrics: the engine's (every service's route status, global maintenance,
 * backend health) and the fleet's: instances connected per service, how long since each was heard
 * from, and how many revisions each is behind. All computed when scraped.
 */
export async function serveServerMetrics (app: FastifyInstance, options: MetricsOptions | true, engine: WaygateEngine,
  instances: InstanceRegistry, authenticate: () => ((request: FastifyRequest) => Promise<unknown>) | null): Promise<void> {
  const resolved = resolveMetricsOptions(options)
  const prom = await loadPromClient()
  const registry = resolved.registry ?? new prom.Registry()
  const prefix = resolved.prefix
  const registers = [registry]
  const gauges: unknown[] = registerEngineMetrics(prom, registry, prefix, engine)
  const connected = () => instances.list().filter(i => i.connectedSince !== null && i.disconnectedAt === null)
  gauges.push(new prom.Gauge({
    name: `${prefix}server_service_instances`,
    help: 'Service instances with an open stream to this Waygate Server (any of its processes), per service',
    labelNames: ['service'],
    registers,
    collect () {
      this.reset()
      const counts = new Map<string, number>()
      for (const i of connected()) counts.set(i.service, (counts.get(i.service) ?? 0) + 1)
      for (const [service, n] of counts) this.set({ service }, n)
    }
  }))
  gauges.push(new prom.Gauge({
    name: `${prefix}server_instance_heartbeat_age_seconds`,
    help: 'Seconds since each connected service instance was last heard from (a heartbeat of its stream)',
    labelNames: ['service', 'instance'],
    registers,
    collect () {
      this.reset()
      const now = engine.now()
      for (const i of connected()) this.set({ service: i.service, instance: i.id }, Math.max(0, (now - Date.parse(i.lastHeartbeat)) / 1000))
    }
  }))
  gauges.push(new prom.Gauge({
    name: `${prefix}server_instance_revision_lag`,
    help: 'Revisions each connected service instance is behind the server (0: it holds the latest state)',
    labelNames: ['service', 'instance'],
    registers,
    collect () {
      this.reset()
      const head = engine.revision
      for (const i of connected()) {
        if (i.revision !== null) this.set({ service: i.service, instance: i.id }, Math.max(0, head - i.revision))
      }
    }
  }))
  if (resolved.path === false) return
  app.get(resolved.path, { config: { waygate: false }, schema: { hide: true } }, async (request, reply) => {
    if (resolved.auth) await authenticate()!(request)
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}
