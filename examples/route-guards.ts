/**
 * Route guards example: waygate on chosen routes only, without registering the plugin.
 *
 *   pnpm --filter @waygate/examples route-guards
 *   APP_ENV=production pnpm --filter @waygate/examples route-guards     → /debug answers 404
 *
 *   GET  /orders        guards.maintenance(...)   503 MAINTENANCE_MODE
 *   GET  /report        guards.disabled(...)      503 ROUTE_DISABLED
 *   GET  /debug         guards.envOnly('dev')     200 in dev, 404 elsewhere
 *   GET  /v1/items/:id  guards.deprecated(...)    200 + Deprecation/Sunset/Link
 *   GET  /users         guards.guard()            active, but operators can change it
 *   GET  /health        no guard                  never managed
 *   POST /ops/enable    body { key }              puts a guarded route back to active
 *   GET  /ops/routes    the guarded routes the engine knows
 *
 * A guard is an `onRequest` hook for one route, running the same engine and rules as the plugin.
 * Without the plugin nobody starts the engine for you: `build()` calls `engine.start()` before
 * the app serves, and closes the engine when the app closes.
 *
 * A guard learns its route's pattern from Fastify on the first request, so a guarded route is
 * unknown to the engine (and to operators) until it has been requested once.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngine, createMemoryBackend, type WaygateBackend } from '@waygate/core'
import { createGuards } from '@waygate/fastify'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface RouteGuardsExampleOptions {
  /** The environment this process runs in. Default: `APP_ENV`, else `dev`. */
  env?: string
  /** Where state lives. Default: a memory backend. */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

const enableBody = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: { key: { type: 'string', minLength: 1, maxLength: 2048 } }
} as const

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: RouteGuardsExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const engine = createEngine({
    env: options.env ?? process.env.APP_ENV ?? 'dev',
    backend: options.backend ?? createMemoryBackend(),
    logger: app.log.child({ name: 'waygate' })
  })
  // the plugin would do this; with guards only, load stored state and follow changes yourself
  await engine.start()
  app.addHook('onClose', async () => { await engine.close() })
  const guards = createGuards(engine)

  app.get('/orders', { onRequest: guards.maintenance({ reason: 'Order service upgrade' }) },
    async () => ({ orders: [] }))

  app.get('/report', { onRequest: guards.disabled({ reason: 'Use /v2/report' }) },
    async () => ({ report: 'q3' }))

  app.get('/debug', { onRequest: guards.envOnly('dev') },
    async () => ({ debug: true, env: engine.env }))

  app.get<{ Params: { id: string } }>('/v1/items/:id', {
    onRequest: guards.deprecated({ sunset: '2027-01-01T00:00:00Z', successor: '/v2/items' })
  }, async request => ({ id: request.params.id }))

  app.get('/users', { onRequest: guards.guard() }, async () => ({ users: [{ id: 1, name: 'Alice' }] }))

  app.get('/health', async () => ({ status: 'ok' }))

  // ---- operator endpoints (unguarded): what the admin REST API will do ----

  app.post<{ Body: { key: string } }>('/ops/enable', { schema: { body: enableBody } }, async request => {
    const states = await engine.enable(request.body.key, { actor: 'ops-example', platform: 'api' })
    return states.map(({ key, status }) => ({ key, status }))
  })

  app.get('/ops/routes', async () => engine.listRoutes().map(({ key, status, reason }) => ({ key, status, reason })))

  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`
waygate route guards example on ${url}   (no plugin: each route carries its own guard)

  GET /orders         503 MAINTENANCE_MODE
  GET /report         503 ROUTE_DISABLED
  GET /debug          200 in dev, 404 elsewhere
  GET /v1/items/:id   200 + Deprecation, Sunset, Link headers
  GET /users          200 (guarded, active)
  GET /health         200 (not guarded)

Try:
  curl -i ${url}/orders
  curl -X POST ${url}/ops/enable -H 'content-type: application/json' -d '{"key":"GET:/orders"}'
  curl -i ${url}/orders        # 200 now
  curl -i ${url}/v1/items/7

Ctrl-C stops.
`)
}
