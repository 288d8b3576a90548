/**
 * Basic example: one route in each lifecycle state.
 *
 *   pnpm demo                                   (from the repository root)
 *   pnpm --filter @waygate/examples basic
 *   APP_ENV=production pnpm --filter @waygate/examples basic     → /debug answers 404
 *   WAYGATE_BACKEND=file WAYGATE_FILE_PATH=./waygate-state.json pnpm --filter @waygate/examples basic
 *                                                → state is kept in a JSON file and survives restarts
 *
 *   GET /health        200 always                         forceActive
 *   GET /payments      503 MAINTENANCE_MODE               maintenance
 *   GET /debug         200 in dev, 404 anywhere else      envOnly ['dev']
 *   GET /old-endpoint  503 ROUTE_DISABLED                 disabled
 *   GET /v1/users      200 + Deprecation/Sunset/Link      deprecated, successor /v2/users
 *   GET /v2/users      200                                no declaration: active
 *
 *   /docs              Swagger UI of the live OpenAPI document: a disabled route is gone from it, a
 *                      deprecated one is marked, maintenance shows as a banner and badges
 *   /metrics           Prometheus metrics: requests per route and outcome, route status, health
 *                      (see docs/observability.md)
 *   /waygate/          the admin dashboard (sign in as admin / secret) and, under /waygate/api,
 *                      the REST API the waygate CLI uses. Set WAYGATE_SECRET_KEY (16+ characters)
 *                      to keep sessions and tokens valid across restarts. Each route row charts
 *                      its last hour of traffic; click it for the last 24 h and what was blocked.
 *
 * The declarations only give each route its initial state: once an operator changes a route, the
 * stored state wins, also after a restart (with a persistent backend).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngineFromEnv, type WaygateBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'
import { waygateOpenApi } from '@waygate/openapi'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { CLI, CLI_NOTE } from './lib/cli.js'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface BasicExampleOptions {
  /** The environment this process runs in. Default: `APP_ENV`, else `WAYGATE_ENV`, else `dev`. */
  env?: string
  /** Where state lives. Default: what `WAYGATE_BACKEND` (and `WAYGATE_FILE_PATH`) select, memory if unset. */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

const users = [{ id: 1, name: 'Alice' }, { id: 2, name: 'Bob' }]

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: BasicExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })

  const env = options.env ?? process.env.APP_ENV
  // explicit options win over WAYGATE_* variables, which win over a .waygate file
  const engine = createEngineFromEnv({
    ...(env === undefined ? {} : { env }),
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    // without a logger the engine is silent; this way backend trouble shows in the app's log
    logger: app.log.child({ name: 'waygate' })
  })
  // register waygate before the routes: it manages the routes added after it. /docs stays
  // unmanaged, so the documentation (with its maintenance banner) is up during global maintenance
  // metrics: Prometheus text at /metrics (prom-client), outside waygate; the dashboard's traffic
  // charts need nothing: every route's last hour and day are counted anyway
  await app.register(waygate, { engine, closeEngine: true, ignorePrefixes: ['/docs'], metrics: true })

  // OpenAPI that follows runtime state, with Swagger UI at /docs; registered before the routes,
  // because @fastify/swagger learns routes as they are added
  await app.register(swagger, {
    openapi: { info: { title: 'waygate basic example', version: '1.0.0', description: 'One route in each lifecycle state' } }
  })
  await app.register(waygateOpenApi, { routePrefix: '/docs' })
  await app.register(swaggerUi, { staticCSP: true, ...app.waygateOpenApi.swaggerUiOptions() })

  app.get('/health', { config: { waygate: { forceActive: true } } },
    async () => ({ status: 'ok', env: app.waygate.env }))

  app.get('/payments', { config: { waygate: { maintenance: { reason: 'Database migration, back by 04:00 UTC' } } } },
    async () => ({ payments: [] }))

  app.get('/debug', { config: { waygate: { envOnly: ['dev'] } } },
    async () => ({ debug: true, env: app.waygate.env }))

  app.get('/old-endpoint', { config: { waygate: { disabled: { reason: 'Replaced by /v2/endpoint' } } } },
    async () => ({ old: true }))

  app.get('/v1/users', { config: { waygate: { deprecated: { sunset: '2027-01-01T00:00:00Z', successor: '/v2/users' } } } },
    async () => ({ users }))

  app.get('/v2/users', async () => ({ users }))

  // the admin dashboard and REST API under /waygate, controlling the same engine; nothing under it
  // is ever subject to waygate, so global maintenance cannot lock operators out
  await app.register(waygateAdmin, {
    auth: { username: 'admin', password: 'secret' },
    // without a key the admin makes up a random one (with a warning): every session ends on restart
    secretKey: process.env.WAYGATE_SECRET_KEY
  })

  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  const { env, backend } = app.waygate
  console.log(`\nwaygate basic example on ${url}   (env: ${env}, backend: ${backend.kind})\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Try:
  curl -i ${url}/health
  curl -i ${url}/payments
  curl -i ${url}/debug
  curl -i ${url}/old-endpoint
  curl -i ${url}/v1/users
  curl -i ${url}/v2/users

API docs:  ${url}/docs       (follows runtime state)
Dashboard: ${url}/waygate/  (admin / secret)
CLI:       ${CLI} config set-url ${url}/waygate
           ${CLI} login admin
           ${CLI} status
           ${CLI_NOTE}

${env === 'dev' ? 'Restart with APP_ENV=production to see /debug disappear (404).' : 'Restart with APP_ENV=dev to see /debug answer.'} Ctrl-C stops.
`)
}
