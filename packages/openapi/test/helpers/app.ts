import Fastify, { type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi, { type FastifySwaggerUiOptions } from '@fastify/swagger-ui'
import { createEngine, createMemoryBackend, type EngineOptions, type RouteState, type WaygateEngine } from '@waygate/core'
// @waygate/fastify is not a dependency of this package yet: its source is imported by path
import { waygate } from '@waygate/fastify'
import { waygateOpenApi, type SwaggerUiParts, type WaygateOpenApiOptions } from '../../src/index.js'

/** A clock tests move by hand. */
export function fakeClock (start = Date.parse('2026-06-01T12:00:00.000Z')) {
  let t = start
  return {
    now: () => t,
    set: (ms: number) => { t = ms },
    advance: (ms: number) => { t += ms }
  }
}

/** Freezes a value and everything it holds, so any mutation throws (ESM is strict mode). */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key])
  }
  return value
}

const ok = async () => ({ ok: true })

/**
 * The API the tests document: parameterized routes, several methods per path, regex and
 * wildcard parameters, a prefixed plugin, a force-active and an unmanaged route, and stand-ins
 * for the admin API under /waygate (which waygate ignores, as the admin mount does).
 */
export function apiRoutes (app: FastifyInstance): void {
  app.get('/users', { schema: { summary: 'List users', tags: ['users'] } }, ok)
  app.post('/users', { schema: { summary: 'Create a user', tags: ['users'] } }, ok)
  app.get('/users/:id', { schema: { summary: 'Get a user', description: 'One user, by id.', tags: ['users'] } }, ok)
  app.put('/users/:id', { schema: { summary: 'Replace a user', tags: ['users'] } }, ok)
  app.delete('/users/:id', { schema: { tags: ['users'] } }, ok)
  app.get('/files/:name(^\\d+).png', ok)
  app.get('/static/*', ok)
  app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
  app.get('/internal', { config: { waygate: false } }, ok)
  app.register(async v1 => {
    v1.get('/orders/:orderId', { schema: { summary: 'Get an order' } }, ok)
    v1.post('/orders', ok)
  }, { prefix: '/v1' })
  app.register(async admin => {
    admin.get('/api/routes', ok)
    admin.post('/api/routes/:key/disable', ok)
  }, { prefix: '/waygate' })
}

export interface DocsAppOptions {
  /** Swagger 2 instead of OpenAPI 3. */
  swagger2?: boolean
  /** More @fastify/swagger options (`openapi` / `swagger` objects are merged). */
  document?: Record<string, unknown>
  /** Other @fastify/swagger plugin options (exposeHeadRoutes…). */
  swaggerPlugin?: Record<string, unknown>
  engine?: EngineOptions
  /** Register @waygate/openapi (default true) with these options. */
  openapi?: WaygateOpenApiOptions | false
  /** Register @fastify/swagger-ui at /docs (default true) with these extra options. */
  ui?: (SwaggerUiParts & Omit<FastifySwaggerUiOptions, keyof SwaggerUiParts>) | false
  /** The waygate plugin's ignorePrefixes. Default ['/docs', '/waygate']. */
  ignorePrefixes?: string[]
  routes?: (app: FastifyInstance) => void
}

export interface DocsApp {
  app: FastifyInstance
  engine: WaygateEngine
}

/** Builds a documented app: waygate, @fastify/swagger, @waygate/openapi and Swagger UI at /docs. */
export async function buildDocsApp (t: { teardown: (fn: () => unknown) => void }, options: DocsAppOptions = {}): Promise<DocsApp> {
  const engine = createEngine({ backend: createMemoryBackend(), ...options.engine })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true, ignorePrefixes: options.ignorePrefixes ?? ['/docs', '/waygate'] })
  const info = { title: 'Test API', version: '1.0.0' }
  await app.register(swagger, options.swagger2 === true
    ? { swagger: { info, ...options.document }, ...options.swaggerPlugin }
    : { openapi: { openapi: '3.0.3', info, ...options.document }, ...options.swaggerPlugin })
  if (options.openapi !== false) {
    await app.register(waygateOpenApi, { routePrefix: '/docs', ...options.openapi })
  }
  if (options.ui !== false) {
    const { theme, transformSpecification, transformSpecificationClone, ...others } = options.ui ?? {}
    await app.register(swaggerUi, options.openapi === false
      ? { routePrefix: '/docs', ...others }
      // the documented way: your other options spread next to waygate's
      : { ...others, ...app.waygateOpenApi.swaggerUiOptions({ theme, transformSpecification, transformSpecificationClone }) })
  }
  ;(options.routes ?? apiRoutes)(app)
  await app.ready()
  return { app, engine }
}

type Doc = Record<string, any>

/** The operations of a document as `METHOD /path` strings, sorted. */
export function operations (doc: Doc): string[] {
  const out: string[] = []
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of Object.keys(item as object)) {
      if (['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method)) out.push(`${method.toUpperCase()} ${path}`)
    }
  }
  return out.sort()
}

/** A route state with every field the current core model has, for hand-made snapshots. */
export function routeState (method: string | null, path: string, fields: Partial<RouteState> = {}): RouteState {
  const initial = createEngine().declareRoute(method ?? 'GET', path).initial
  return { ...initial, key: method === null ? path : `${method}:${path}`, method, ...fields }
}
