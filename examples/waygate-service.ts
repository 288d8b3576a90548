/**
 * Waygate Server, single service: a Fastify app attached to the Waygate Server as
 * `payments-service`. Its routes register with the server, whose stored state wins; every request
 * is checked against a local snapshot (no network call per request) that follows the server's
 * stream within a second.
 *
 *   pnpm --filter @waygate/examples waygate-server      (first, in another terminal)
 *   pnpm --filter @waygate/examples service             → http://127.0.0.1:8000
 *
 *   GET /health            200 always                         forceActive
 *   GET /api/payments      503 MAINTENANCE_MODE               starts in maintenance
 *   GET /api/orders        200                                active
 *   GET /api/legacy        503 ROUTE_DISABLED                 disabled
 *   GET /api/v1/products   200 + Deprecation/Sunset/Link      deprecated, successor /api/v2/products
 *   /docs                  Swagger UI following the server's state
 *
 * Environment: PORT (8000), HOST, WAYGATE_SERVER_URL (http://127.0.0.1:8001), WAYGATE_TOKEN or
 * WAYGATE_USERNAME / WAYGATE_PASSWORD (admin / secret), WAYGATE_CACHE_FILE.
 */
import type { FastifyInstance } from 'fastify'
import { CLI, CLI_NOTE } from './lib/cli.js'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'
import { serviceApp, type ServiceExampleOptions } from './lib/service-app.js'

export const SERVICE = 'payments-service'

/** Builds the service without listening. */
export async function build (options: ServiceExampleOptions = {}): Promise<FastifyInstance> {
  return serviceApp(SERVICE, 'waygate — single service', options, app => {
    app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok', service: SERVICE }))
    app.get('/api/payments', { config: { waygate: { maintenance: { reason: 'Payment processor upgrade, back at 04:00 UTC' } } } },
      async () => ({ paymentId: 'pay_abc123', status: 'processed' }))
    app.get('/api/orders', async () => ({ orders: [{ id: 42, status: 'shipped' }] }))
    app.get('/api/legacy', { config: { waygate: { disabled: { reason: 'Replaced by /api/orders' } } } }, async () => ({}))
    app.get('/api/v1/products', { config: { waygate: { deprecated: { sunset: '2028-06-01T00:00:00Z', successor: '/api/v2/products' } } } },
      async () => ({ products: [{ id: 1, name: 'Widget' }], version: 1 }))
    app.get('/api/v2/products', async () => ({ products: [{ id: 1, name: 'Widget' }], version: 2 }))
  })
}

if (isEntryPoint(import.meta.url)) {
  if (process.env.PORT === undefined) process.env.PORT = '8000'
  const app = await build({ logger: exampleLogger(), ...(process.env.WAYGATE_CACHE_FILE === undefined ? {} : { cacheFile: process.env.WAYGATE_CACHE_FILE }) })
  const url = await serve(app)
  const status = await app.waygate.status()
  console.log(`\n${SERVICE} on ${url}   (Waygate Server: ${status.sync?.serverUrl ?? '?'}, ${status.sync?.state ?? 'unknown'})\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Try:
  curl -i ${url}/health
  curl -i ${url}/api/payments
  curl -i ${url}/api/orders
  curl -i ${url}/api/legacy
  curl -i ${url}/api/v1/products

Swagger UI: ${url}/docs
CLI:        ${CLI} config set-url ${status.sync?.serverUrl ?? 'http://127.0.0.1:8001'}
            ${CLI} login admin
            ${CLI} enable /api/payments --service ${SERVICE}
            ${CLI_NOTE}

Ctrl-C stops.
`)
}
