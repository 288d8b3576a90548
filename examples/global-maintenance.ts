/**
 * Global maintenance example: take the whole API down at once, and bring it back, at runtime.
 *
 *   pnpm --filter @waygate/examples global-maintenance
 *
 *   GET  /payments, /orders     business routes: 503 MAINTENANCE_MODE while global maintenance is on
 *   GET  /status                public status page: stays up when listed in exemptPaths
 *   GET  /health                forceActive: stays up unless includeForceActive is set
 *   GET  /ops/maintenance       the current global maintenance record
 *   POST /ops/maintenance/on    body { reason?, exemptPaths?, includeForceActive? }
 *   POST /ops/maintenance/off
 *
 * The /ops routes are a stand-in for what the admin REST API (@waygate/admin) will offer. They are
 * opted out of waygate (`config: { waygate: false }`) so operators can always reach them, and they
 * have no authentication: keep them on localhost, or put auth in front of them.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngine, createMemoryBackend, type WaygateBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface GlobalMaintenanceExampleOptions {
  /** Where state lives. Default: a memory backend. */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

/** Who the audit log says made the changes through /ops. */
export const OPS_ACTOR = 'ops-example'

const maintenanceOnBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reason: { type: 'string', maxLength: 2000 },
    exemptPaths: { type: 'array', maxItems: 500, items: { type: 'string', minLength: 1 } },
    includeForceActive: { type: 'boolean' }
  }
} as const

interface MaintenanceOnBody {
  reason?: string
  exemptPaths?: string[]
  includeForceActive?: boolean
}

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: GlobalMaintenanceExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const engine = createEngine({ backend: options.backend ?? createMemoryBackend(), logger: app.log.child({ name: 'waygate' }) })
  await app.register(waygate, { engine, closeEngine: true })

  app.get('/payments', async () => ({ payments: [{ id: 1, amount: 99.99 }] }))
  app.get('/orders', async () => ({ orders: [{ id: 1, total: 49.99 }] }))
  app.get('/status', async () => {
    const global = app.waygate.getGlobal()
    return { operational: !global.enabled, maintenance: global.enabled ? global.reason : null, since: global.since }
  })
  app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok' }))

  // ---- operator endpoints: what the admin REST API will do ----

  app.get('/ops/maintenance', { config: { waygate: false } }, async () => app.waygate.getGlobal())

  app.post<{ Body: MaintenanceOnBody }>('/ops/maintenance/on', {
    config: { waygate: false },
    // a bare `curl -X POST` has no body: treat it as {} so every field takes its default
    preValidation: async request => { request.body ??= {} },
    schema: { body: maintenanceOnBody }
  }, async request => {
    const body = request.body
    return app.waygate.enableGlobalMaintenance({
      reason: body.reason ?? 'Infrastructure upgrade in progress',
      exemptPaths: body.exemptPaths ?? ['/status'],
      includeForceActive: body.includeForceActive ?? false,
      actor: OPS_ACTOR,
      platform: 'api'
    })
  })

  app.post('/ops/maintenance/off', { config: { waygate: false } },
    async () => app.waygate.disableGlobalMaintenance({ actor: OPS_ACTOR, platform: 'api' }))

  app.get('/ops/audit', { config: { waygate: false } }, async () => app.waygate.listAudit({ limit: 20 }))

  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`\nwaygate global maintenance example on ${url}\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Try:
  curl -i ${url}/payments                                   # 200
  curl -X POST ${url}/ops/maintenance/on -H 'content-type: application/json' \\
       -d '{"reason":"Deploying v2","exemptPaths":["/status"]}'
  curl -i ${url}/payments                                   # 503 MAINTENANCE_MODE
  curl -i ${url}/anything-else                              # 503 too: unmatched paths are covered
  curl -i ${url}/status                                     # 200: exempt
  curl -i ${url}/health                                     # 200: force-active
  curl -X POST ${url}/ops/maintenance/off
  curl -i ${url}/payments                                   # 200 again
  curl ${url}/ops/audit                                     # who did what

Ctrl-C stops.
`)
}
