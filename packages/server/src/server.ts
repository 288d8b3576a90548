import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngine, createRateLimiter, metricsOptionsProblems, type MetricsOptions, type WaygateBackend, type WebhookConfig } from '@waygate/core'
import { waygateAdmin, type AdminContext, type AuthOption } from '@waygate/admin'
import { WG_ERR_SERVER_OPTIONS_INVALID } from './errors.js'
import { createFleet } from './fleet.js'
import { createInstanceRegistry } from './instances.js'
import { createFleetTraffic } from './traffic.js'
import { serveServerMetrics } from './metrics.js'
import { registerSdkRoutes } from './sdk-routes.js'
import { registerServiceResetRoute } from './service-reset-routes.js'
import { createServiceOps } from './service-ops.js'
import { registerServicesRoutes } from './services-routes.js'
import { createStreamHub } from './streams.js'
import { createServiceTokens } from './tokens.js'
import { registerTokenRoutes } from './tokens-routes.js'

/** Options of {@link createWaygateServer}. */
export interface WaygateServerOptions {
  /** Where the state of every service lives: memory, file or Redis (several servers on one Redis are one server). */
  backend: WaygateBackend
  /** Who may log in (see `@waygate/admin`): users, an authenticator, or `false` for an open server (development only). */
  auth: AuthOption
  /** HMAC key of the tokens, 16+ characters. Default `WAYGATE_SECRET_KEY`, else random (tokens die on restart). */
  secretKey?: string
  /** Lifetime of dashboard and CLI tokens, seconds. Default 86400. */
  tokenExpiry?: number
  /** Lifetime of the tokens services log in for, seconds. Default 2592000 (30 days). */
  sdkTokenExpiry?: number
  /** Where the dashboard and the API are mounted. Default `''`: dashboard at `/`, API at `/api/...`. */
  prefix?: string
  /** Webhooks told of every change, once, whoever made it (operators or a service's code). */
  webhooks?: WebhookConfig[]
  /** Fastify's `logger` option, or a pino-compatible logger to use as is. Default: no logging. */
  logger?: FastifyServerOptions['logger'] | FastifyBaseLogger
  /** Serve the dashboard. Default true. */
  dashboard?: boolean
  /** Interval of the heartbeat comments on services' streams, ms. Default 15000. */
  heartbeatMs?: number
  /** Changes kept for streams that resume (older gaps get a snapshot). Default 1000. */
  replayLogSize?: number
  /** Bytes a service's stream may leave unread before it is dropped. Default 1 MiB. */
  sseMaxBufferBytes?: number
  /**
   * Prometheus metrics (needs prom-client): route status of every service, global maintenance,
   * backend health, connected instances and their lag; `true` or `{ registry, path, prefix, auth }`
   * (path default `/metrics`, outside the admin's auth unless `auth: true`). Default off.
   */
  metrics?: MetricsOptions | boolean
}

function isLogger (value: unknown): value is FastifyBaseLogger {
  return typeof value === 'object' && value !== null &&
    typeof (value as FastifyBaseLogger).child === 'function' && typeof (value as FastifyBaseLogger).info === 'function'
}

function wholeNumber (value: unknown, name: string, min: number, max: number, problems: string[]): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)) {
    problems.push(`${name}: expected a whole number between ${min} and ${max}`)
  }
}

/**
 * Creates the Waygate Server: the dashboard, the REST API the CLI uses and the endpoints services
 * sync from, over one engine that holds every service's routes. Resolves a Fastify instance that is
 * not listening yet (`listen()` it, or `inject()` into it in tests); `GET /health` answers 200 once
 * it serves, and `close()` ends the services' streams and closes the backend.
 *
 * @example
 * const server = await createWaygateServer({
 *   backend: createFileBackend({ path: 'waygate-server.json' }),
 *   auth: { username: 'admin', password: await hashPassword('secret') },
 *   secretKey: process.env.WAYGATE_SECRET_KEY
 * })
 * await server.listen({ port: 8001 })
 */
export async function createWaygateServer (options: WaygateServerOptions): Promise<FastifyInstance> {
  if (options === null || typeof options !== 'object') throw new WG_ERR_SERVER_OPTIONS_INVALID('expected an options object')
  const problems: string[] = []
  const backend = options.backend
  if (backend === null || typeof backend !== 'object' || typeof backend.load !== 'function') problems.push('backend: a waygate backend is required')
  if (options.auth === undefined) problems.push('auth: required ({ username, password }, users, an authenticator, or false)')
  const prefix = options.prefix ?? ''
  if (typeof prefix !== 'string' || (prefix !== '' && (!/^\/[A-Za-z0-9._~\-/]*$/.test(prefix) || prefix.endsWith('/')))) {
    problems.push('prefix: expected \'\' or a path such as /waygate (no trailing slash)')
  }
  wholeNumber(options.heartbeatMs, 'heartbeatMs', 10, 3_600_000, problems)
  wholeNumber(options.replayLogSize, 'replayLogSize', 1, 1_000_000, problems)
  problems.push(...metricsOptionsProblems(options.metrics))
  if (problems.length > 0) throw new WG_ERR_SERVER_OPTIONS_INVALID(problems.join('; '))
  const heartbeatMs = options.heartbeatMs ?? 15_000

  // the server owns its HTTP server, so it bounds slow clients itself: a request (headers and body)
  // must arrive within 30 s; idle sockets are left alone, since event streams idle between heartbeats
  const http = { requestTimeout: 30_000 }
  const app = isLogger(options.logger)
    ? Fastify({ ...http, loggerInstance: options.logger })
    : Fastify({ ...http, logger: options.logger ?? false })
  const log = app.log.child({ name: 'waygate-server' })
  const engine = createEngine({ backend, logger: app.log.child({ name: 'waygate' }), webhooks: options.webhooks })
  const limiter = createRateLimiter(engine)
  const fleet = createFleet(engine)
  const instances = createInstanceRegistry({ engine, fleet, log, heartbeatMs })
  const hub = createStreamHub({ engine, fleet, instances, log, heartbeatMs, replayLogSize: options.replayLogSize ?? 1000 })
  const ops = createServiceOps({ engine, fleet, instances })
  // service tokens are signed by the admin's signer, which the admin hands its extension below
  let issueServiceToken: AdminContext['issueServiceToken'] | null = null
  const tokens = createServiceTokens({
    engine,
    issue (service, ttlSeconds) {
      if (issueServiceToken === null) throw new Error('waygate server: the admin is not registered yet')
      return issueServiceToken(service, ttlSeconds)
    }
  })
  app.decorate('waygate', engine)
  app.decorate('waygateRateLimits', limiter)
  // the services' traffic as their instances report it: the admin's charts and traffic endpoints read it
  const traffic = createFleetTraffic({ now: engine.now })
  app.decorate('waygateTraffic', traffic)

  let serving = false
  app.addHook('onReady', async () => {
    await engine.start()
    await limiter.start()
    await fleet.start()
    await hub.start()
    serving = true
    log.info({ backend: backend.kind, epoch: hub.epoch, revision: engine.revision }, 'waygate server: ready')
  })
  // streams first, so close() does not wait on them, then this process's instance record; then
  // the engine, which closes the backend
  app.addHook('preClose', async () => {
    serving = false
    await hub.close()
    await instances.close()
  })
  app.addHook('onClose', async () => {
    fleet.close()
    await limiter.close()
    await engine.close()
  })

  let authenticate: AdminContext['authenticate'] | null = null
  if (options.metrics !== undefined && options.metrics !== false) {
    await serveServerMetrics(app, options.metrics, engine, instances, () => authenticate)
  }

  app.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    if (!serving) return reply.code(503).send({ status: 'starting' })
    return { status: 'ok' }
  })

  await app.register(waygateAdmin, {
    engine,
    prefix,
    auth: options.auth,
    secretKey: options.secretKey,
    tokenExpiry: options.tokenExpiry,
    sdkTokenExpiry: options.sdkTokenExpiry,
    dashboard: options.dashboard,
    sseMaxBufferBytes: options.sseMaxBufferBytes,
    // the dashboard's service pages: the same operations as /api/services/...
    fleet: {
      heartbeatMs,
      services: ops.list,
      enableMaintenance: ops.enableMaintenance,
      disableMaintenance: ops.disableMaintenance,
      setRateLimit: ops.setRateLimit,
      deleteRateLimit: ops.deleteRateLimit,
      tokens
    },
    extend: {
      replaces: ['GET /api/services'],
      register (api, ctx) {
        registerSdkRoutes(api, ctx, { engine, fleet, hub, instances, traffic })
        registerServicesRoutes(api, { engine, fleet, instances, ops, heartbeatMs })
        registerServiceResetRoute(api, { engine, fleet })
        issueServiceToken = ctx.issueServiceToken
        authenticate = ctx.authenticate
        registerTokenRoutes(api, tokens)
      }
    }
  })
  return app
}
