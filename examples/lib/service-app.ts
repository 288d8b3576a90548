import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { waygateService, type WaygateServiceOptions } from '@waygate/fastify'
import { waygateOpenApi } from '@waygate/openapi'

/** What every service of the server examples takes. */
export interface ServiceExampleOptions {
  /** The Waygate Server. Default: `WAYGATE_SERVER_URL`, else http://127.0.0.1:8001. */
  serverUrl?: string
  /** Default: `WAYGATE_TOKEN`, else log in with `username`/`password`. */
  token?: string
  /** Default: `WAYGATE_USERNAME`, else `admin`. */
  username?: string
  /** Default: `WAYGATE_PASSWORD`, else `secret`. */
  password?: string
  /** Where the last snapshot is kept, so a restart during a server outage keeps operators' changes. Default none. */
  cacheFile?: string
  /** Longest wait for the server's snapshot at startup, ms. */
  readyTimeoutMs?: number
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

/**
 * The connection settings of a service example: options, else the environment, else the seeds'
 * defaults (a server on 8001, admin / secret).
 */
export function connection (service: string, options: ServiceExampleOptions): WaygateServiceOptions {
  const token = options.token ?? process.env.WAYGATE_TOKEN
  const base = {
    serverUrl: options.serverUrl ?? process.env.WAYGATE_SERVER_URL ?? 'http://127.0.0.1:8001',
    service,
    ...(options.cacheFile === undefined ? {} : { cacheFile: options.cacheFile }),
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs })
  }
  if (token !== undefined && token !== '') return { ...base, token }
  return {
    ...base,
    username: options.username ?? process.env.WAYGATE_USERNAME ?? 'admin',
    password: options.password ?? process.env.WAYGATE_PASSWORD ?? 'secret'
  }
}

/**
 * A Fastify app attached to the Waygate Server as `service`, with Swagger UI at /docs that follows
 * the server's state. `routes` adds the service's own routes.
 */
export async function serviceApp (service: string, title: string, options: ServiceExampleOptions,
  routes: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  // the service SDK: routes register with the server, state is enforced here from a local snapshot
  await app.register(waygateService, { ...connection(service, options), ignorePrefixes: ['/docs'] })
  await app.register(swagger, { openapi: { info: { title, version: '1.0.0' } } })
  await app.register(waygateOpenApi, { routePrefix: '/docs' })
  await app.register(swaggerUi, { staticCSP: true, ...app.waygateOpenApi.swaggerUiOptions() })
  routes(app)
  return app
}
