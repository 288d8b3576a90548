/**
 * Scheduled maintenance example: windows that open and close by themselves.
 *
 *   pnpm --filter @waygate/examples scheduled-maintenance
 *
 *   GET  /reports           declared with a window: 503 from ~10 s after boot, for 20 s
 *   GET  /orders            active until you schedule a window on it
 *   GET  /health            forceActive
 *   GET  /ops/routes        every route's status and window
 *   POST /ops/schedule      body { key?, startInSeconds?, durationSeconds?, reason? }
 *                           (default: GET:/orders, in 5 s, for 10 s)
 *   POST /ops/schedule/cancel   body { key }
 *
 * A window is enforced from `start` (inclusive) to `end` (exclusive) by comparing the clock on each
 * request: no timer has to fire for the 503 to start or stop. Timers only announce the transitions
 * (the `window_started` / `window_ended` events logged below, and one audit entry each).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngine, createMemoryBackend, type WaygateBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface ScheduledMaintenanceExampleOptions {
  /** Where state lives. Default: a memory backend. */
  backend?: WaygateBackend
  /** The clock, epoch ms: tests pass a fake one. Default `Date.now`. */
  now?: () => number
  /** How long after `build()` the declared window on /reports opens. Default 10 s. */
  windowDelayMs?: number
  /** How long it stays open. Default 20 s. */
  windowLengthMs?: number
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

const scheduleBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1, maxLength: 2048 },
    startInSeconds: { type: 'number', minimum: 0, maximum: 31_536_000 },
    durationSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 31_536_000 },
    reason: { type: 'string', maxLength: 2000 }
  }
} as const

interface ScheduleBody {
  key?: string
  startInSeconds?: number
  durationSeconds?: number
  reason?: string
}

const cancelBody = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: { key: { type: 'string', minLength: 1, maxLength: 2048 } }
} as const

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: ScheduledMaintenanceExampleOptions = {}): Promise<FastifyInstance> {
  const now = options.now ?? Date.now
  const app = Fastify({ logger: options.logger ?? false })
  const engine = createEngine({ backend: options.backend ?? createMemoryBackend(), now, logger: app.log.child({ name: 'waygate' }) })
  await app.register(waygate, { engine, closeEngine: true })

  engine.subscribe(event => {
    if (event.type === 'window_started') {
      app.log.info({ key: event.key, window: event.state.window }, 'maintenance window started')
    } else if (event.type === 'window_ended') {
      app.log.info({ key: event.key }, 'maintenance window ended')
    }
  })

  const opensAt = now() + (options.windowDelayMs ?? 10_000)
  const closesAt = opensAt + (options.windowLengthMs ?? 20_000)
  app.get('/reports', {
    config: {
      waygate: {
        maintenance: {
          reason: 'Nightly report rebuild',
          start: new Date(opensAt).toISOString(),
          end: new Date(closesAt).toISOString()
        }
      }
    }
  }, async () => ({ reports: [{ id: 'daily-sales', rows: 412 }] }))

  app.get('/orders', async () => ({ orders: [{ id: 1, total: 49.99 }, { id: 2, total: 129 }] }))
  app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok' }))

  // ---- operator endpoints: what the admin REST API will do ----

  app.get('/ops/routes', { config: { waygate: false } }, async () =>
    app.waygate.listRoutes().map(({ key, status, reason, window }) => ({ key, status, reason, window })))

  app.post<{ Body: ScheduleBody }>('/ops/schedule', {
    config: { waygate: false },
    // a bare `curl -X POST` has no body: treat it as {} so every field takes its default
    preValidation: async request => { request.body ??= {} },
    schema: { body: scheduleBody }
  }, async request => {
    const { key = 'GET:/orders', startInSeconds = 5, durationSeconds = 10, reason = 'Order system upgrade' } = request.body
    const start = now() + startInSeconds * 1000
    const end = start + durationSeconds * 1000
    const [state] = await app.waygate.schedule(key, { start, end, reason, actor: 'ops-example', platform: 'api' })
    return { scheduled: true, key: state?.key ?? key, window: state?.window ?? null }
  })

  app.post<{ Body: { key: string } }>('/ops/schedule/cancel', {
    config: { waygate: false },
    schema: { body: cancelBody }
  }, async request => {
    const states = await app.waygate.cancelSchedule(request.body.key, { actor: 'ops-example', platform: 'api' })
    return { cancelled: states.map(s => s.key) }
  })

  return app
}

if (isEntryPoint(import.meta.url)) {
  // info, so the window_started / window_ended lines show
  const app = await build({ logger: exampleLogger('info') })
  const url = await serve(app)
  console.log(`\nwaygate scheduled maintenance example on ${url}\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Try:
  curl -i ${url}/reports            # 200 now, 503 between ~10 s and ~30 s after start, then 200
  curl -X POST ${url}/ops/schedule -H 'content-type: application/json' \\
       -d '{"key":"GET:/orders","startInSeconds":5,"durationSeconds":10}'
  curl -i ${url}/orders             # 503 MAINTENANCE_MODE with Retry-After during the window
  curl ${url}/ops/routes

Window starts and ends are logged as they happen. Ctrl-C stops.
`)
}
