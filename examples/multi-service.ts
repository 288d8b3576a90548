/**
 * Waygate Server, several services: `payments-service` and `orders-service` attach to one
 * Waygate Server. Each registers its routes under its own name, so the server, its dashboard and
 * the CLI (`--service`, `WAYGATE_SERVICE`) manage them one by one or together.
 *
 *   pnpm --filter @waygate/examples waygate-server      → :8001 (first)
 *   pnpm --filter @waygate/examples payments-service    → :8000
 *   pnpm --filter @waygate/examples orders-service      → :8002
 *
 *   payments  GET /health            200 always                      forceActive
 *   payments  GET /api/payments      503 MAINTENANCE_MODE            starts in maintenance
 *   payments  GET /api/refunds       200                             active
 *   payments  GET /api/v1/invoices   200 + deprecation headers       deprecated, successor /api/v2/invoices
 *   payments  GET /api/v2/invoices   200                             active successor
 *   orders    GET /health            200 always                      forceActive
 *   orders    GET /api/orders        200                             active
 *   orders    GET /api/shipments     503 ROUTE_DISABLED              disabled
 *   orders    GET /api/cart          200                             active
 *
 * CLI against the server:
 *   waygate config set-url http://127.0.0.1:8001 && waygate login admin
 *   waygate services
 *   export WAYGATE_SERVICE=payments-service; waygate status; waygate enable /api/payments
 *   waygate status --service orders-service          (the flag beats the variable)
 *   unset WAYGATE_SERVICE; waygate status; waygate audit
 *   waygate global enable --reason "emergency maintenance"; waygate global disable
 */
import type { FastifyInstance } from 'fastify'
import { CLI, CLI_NOTE } from './lib/cli.js'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'
import { serviceApp, type ServiceExampleOptions } from './lib/service-app.js'

/** The payments service. */
export async function buildPayments (options: ServiceExampleOptions = {}): Promise<FastifyInstance> {
  return serviceApp('payments-service', 'waygate — payments service', options, app => {
    app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok', service: 'payments-service' }))
    app.get('/api/payments', { config: { waygate: { maintenance: { reason: 'Payment processor upgrade, back at 04:00 UTC' } } } },
      async () => ({ paymentId: 'pay_abc123', status: 'processed' }))
    app.get('/api/refunds', async () => ({ refunds: [{ id: 'ref_001', amount: 49.99 }] }))
    app.get('/api/v1/invoices', { config: { waygate: { deprecated: { sunset: '2028-06-01T00:00:00Z', successor: '/api/v2/invoices' } } } },
      async () => ({ invoices: [{ id: 'inv_001', total: 199.99 }], version: 1 }))
    app.get('/api/v2/invoices', async () => ({ invoices: [{ id: 'inv_001', total: 199.99 }], version: 2 }))
  })
}

/** The orders service. */
export async function buildOrders (options: ServiceExampleOptions = {}): Promise<FastifyInstance> {
  return serviceApp('orders-service', 'waygate — orders service', options, app => {
    app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok', service: 'orders-service' }))
    app.get('/api/orders', async () => ({ orders: [{ id: 42, status: 'shipped' }] }))
    app.get('/api/shipments', { config: { waygate: { disabled: { reason: 'Shipment provider integration retired: use /api/orders' } } } },
      async () => ({}))
    app.get('/api/cart', async () => ({ cart: { items: [], total: 0 } }))
  })
}

const SERVICES: Record<string, { build: typeof buildPayments, port: string }> = {
  'payments-service': { build: buildPayments, port: '8000' },
  'orders-service': { build: buildOrders, port: '8002' }
}

if (isEntryPoint(import.meta.url)) {
  const name = process.argv[2] ?? ''
  const chosen = SERVICES[name]
  if (chosen === undefined) {
    console.error(`usage: multi-service.ts <${Object.keys(SERVICES).join(' | ')}>`)
    process.exit(2)
  }
  if (process.env.PORT === undefined) process.env.PORT = chosen.port
  const app = await chosen.build({ logger: exampleLogger(), ...(process.env.WAYGATE_CACHE_FILE === undefined ? {} : { cacheFile: process.env.WAYGATE_CACHE_FILE }) })
  const url = await serve(app)
  const status = await app.waygate.status()
  console.log(`\n${name} on ${url}   (Waygate Server: ${status.sync?.serverUrl ?? '?'}, ${status.sync?.state ?? 'unknown'})\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`\nSwagger UI: ${url}/docs\nCLI:        ${CLI} status --service ${name}\n            ${CLI_NOTE}\n\nCtrl-C stops.\n`)
}
