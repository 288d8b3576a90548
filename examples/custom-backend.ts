/**
 * Custom backend example: waygate state in SQLite, through the backend in ./sqlite-backend.ts.
 *
 *   pnpm --filter @waygate/examples custom-backend
 *   SQLITE_PATH=/tmp/waygate.sqlite pnpm --filter @waygate/examples custom-backend
 *
 *   GET  /health        200 always, names the backend            forceActive
 *   GET  /payments      503 MAINTENANCE_MODE                     maintenance
 *   GET  /legacy        503 ROUTE_DISABLED                       disabled
 *   GET  /orders        200                                      active
 *   POST /ops/:action   enable | disable | maintenance, body { key, reason? }
 *   GET  /ops/routes    every route's stored state
 *   GET  /ops/audit     the newest audit entries
 *
 * Change a route through /ops, stop the app, start it again: the change is still there, because
 * stored state wins over the declarations in code. Delete the file to start afresh.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngine, type WaygateBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'
import { createSqliteBackend } from './sqlite-backend.js'

export interface CustomBackendExampleOptions {
  /** The SQLite file. Default: `SQLITE_PATH`, else `./waygate-example.sqlite`. */
  path?: string
  /** Another backend instead of SQLite (tests). */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

type OpsAction = 'enable' | 'disable' | 'maintenance'

const opsParams = {
  type: 'object',
  required: ['action'],
  properties: { action: { type: 'string', enum: ['enable', 'disable', 'maintenance'] } }
} as const

const opsBody = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1, maxLength: 2048 },
    reason: { type: 'string', maxLength: 2000 }
  }
} as const

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: CustomBackendExampleOptions = {}): Promise<FastifyInstance> {
  const backend = options.backend ?? createSqliteBackend({
    path: options.path ?? process.env.SQLITE_PATH ?? './waygate-example.sqlite'
  })
  const app = Fastify({ logger: options.logger ?? false })
  // the engine logs backend trouble (an unreadable file, a failed write) through Fastify's logger
  const engine = createEngine({ backend, logger: app.log.child({ name: 'waygate' }) })
  // closing the app closes the engine, which closes the backend
  await app.register(waygate, { engine, closeEngine: true })

  app.get('/health', { config: { waygate: { forceActive: true } } },
    async () => ({ status: 'ok', backend: app.waygate.backend.kind }))
  app.get('/payments', { config: { waygate: { maintenance: { reason: 'Database migration, back by 04:00 UTC' } } } },
    async () => ({ payments: [] }))
  app.get('/legacy', { config: { waygate: { disabled: { reason: 'Use /payments instead' } } } },
    async () => ({ legacy: true }))
  app.get('/orders', async () => ({ orders: [{ id: 1, total: 49.99 }] }))

  // ---- operator endpoints: what the admin REST API will do ----

  app.post<{ Params: { action: OpsAction }, Body: { key: string, reason?: string } }>('/ops/:action', {
    config: { waygate: false },
    schema: { params: opsParams, body: opsBody }
  }, async request => {
    const { key, reason } = request.body
    const who = { actor: 'ops-example', platform: 'api' as const }
    switch (request.params.action) {
      case 'enable':
        return app.waygate.enable(key, who)
      case 'disable':
        return app.waygate.disable(key, { ...who, reason })
      case 'maintenance':
        return app.waygate.setMaintenance(key, { ...who, reason })
    }
  })

  app.get('/ops/routes', { config: { waygate: false } }, async () => app.waygate.listRoutes())
  app.get('/ops/audit', { config: { waygate: false } }, async () => app.waygate.listAudit({ limit: 20 }))

  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`\nwaygate custom backend example on ${url}   (state in ${process.env.SQLITE_PATH ?? './waygate-example.sqlite'})\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Try:
  curl -i ${url}/orders                                   # 200
  curl -X POST ${url}/ops/disable -H 'content-type: application/json' \\
       -d '{"key":"GET:/orders","reason":"hotfix"}'
  curl -i ${url}/orders                                   # 503 ROUTE_DISABLED
  # stop with Ctrl-C, start again: /orders is still disabled
  curl -X POST ${url}/ops/enable -H 'content-type: application/json' -d '{"key":"GET:/orders"}'
  curl ${url}/ops/audit

Ctrl-C stops.
`)
}
