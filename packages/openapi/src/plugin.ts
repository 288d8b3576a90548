import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import { WG_ERR_OPTIONS_INVALID, type WaygateEngine } from '@waygate/core'
import { BANNER_SCRIPT_FILE, BANNER_STYLE, BANNER_STYLE_FILE, bannerScript, STATUS_PATH } from './banner.js'
import { createOpenApiView, type DocsStatus } from './live-view.js'
import { isUnderPrefix } from './path-mapping.js'
import { DEFAULT_EXCLUDE_PREFIXES } from './transform.js'

/** Options of the {@link waygateOpenApi} plugin. */
export interface WaygateOpenApiOptions {
  /** The engine whose state the documents follow. Default: `fastify.waygate` (register `@waygate/fastify` first). */
  engine?: WaygateEngine
  /**
   * Where `@fastify/swagger-ui` serves the docs (its own `routePrefix`); the status endpoint the
   * banner polls is served under it. Default `/documentation`, as in `@fastify/swagger-ui`.
   */
  routePrefix?: string
  /** Paths whose operations never appear in the documents. Default `['/waygate']` (the admin API). */
  excludePrefixes?: string[]
  /** Also serve the live document as JSON at this path (for Scalar, ReDoc, clients). Default: not served. */
  specRoute?: string | false
  /** Serve `GET <routePrefix>/waygate-status` for the Swagger UI banner. Default true. */
  statusRoute?: boolean
  /** How often the banner polls the status endpoint, in ms (at least 250). Default 5000. */
  pollIntervalMs?: number
  /** The name `@fastify/swagger` decorates the instance with (its `decorator` option). Default `swagger`. */
  swaggerDecorator?: string
}

/** A file of `@fastify/swagger-ui`'s `theme`. */
export interface SwaggerUiThemeFile {
  filename: string
  content: string
}

/** `@fastify/swagger-ui`'s per-request document transform. */
export type TransformSpecification = (
  spec: Readonly<Record<string, any>>, request: FastifyRequest, reply: FastifyReply
) => Record<string, any>

/** `@fastify/swagger-ui`'s `theme` option. */
export interface SwaggerUiTheme {
  title?: string
  css?: SwaggerUiThemeFile[]
  js?: SwaggerUiThemeFile[]
  favicon?: Array<{ filename: string, rel: string, type: string, sizes: string, content: string | Buffer }>
}

/** Your own parts of the `@fastify/swagger-ui` options that waygate merges with its own. */
export interface SwaggerUiParts {
  /** Must be the plugin's `routePrefix` when given. */
  routePrefix?: string
  /** Your theme: waygate's script and stylesheet are appended to its files. */
  theme?: SwaggerUiTheme
  /** Your transform: runs after waygate's, on a copy unless `transformSpecificationClone` is false. */
  transformSpecification?: TransformSpecification
  transformSpecificationClone?: boolean
}

/** The `@fastify/swagger-ui` options {@link WaygateOpenApi.swaggerUiOptions} returns; spread the rest of yours next to them. */
export interface WaygateSwaggerUiOptions {
  routePrefix: string
  theme: SwaggerUiTheme & { css: SwaggerUiThemeFile[], js: SwaggerUiThemeFile[] }
  transformSpecification: TransformSpecification
  transformSpecificationClone: false
}

/** The live documentation helpers, decorated as `fastify.waygateOpenApi`. */
export interface WaygateOpenApi {
  readonly engine: WaygateEngine
  /** The docs prefix the status endpoint lives under. */
  readonly routePrefix: string
  /** The application's document (`fastify.swagger()`) with waygate's state applied. Call after `ready()`. */
  document(): Record<string, unknown>
  /** Any document with waygate's state applied, cached by the engine's state version. Read-only result. */
  transform<T extends object>(spec: T): T
  /** What the banner polls: global maintenance, operations in maintenance, a layout hash. */
  status(): DocsStatus
  /** A ready `transformSpecification` for `@fastify/swagger-ui` (use with `transformSpecificationClone: false`). */
  readonly transformSpecification: TransformSpecification
  /**
   * The `@fastify/swagger-ui` options waygate needs: the docs prefix, the per-request transform
   * (without swagger-ui's per-request deep clone: waygate never mutates) and the banner theme.
   * Pass your own theme and transform through it to have them merged; spread your other options
   * next to the result.
   *
   * @example
   * await app.register(swaggerUi, app.waygateOpenApi.swaggerUiOptions())
   * await app.register(swaggerUi, { staticCSP: true, uiConfig: { docExpansion: 'list' }, ...app.waygateOpenApi.swaggerUiOptions({ theme: { title: 'Shop API' } }) })
   */
  swaggerUiOptions(parts?: SwaggerUiParts): WaygateSwaggerUiOptions
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Waygate's live documentation helpers (`@waygate/openapi`). */
    waygateOpenApi: WaygateOpenApi
  }
}

const DEFAULT_ROUTE_PREFIX = '/documentation'
const DEFAULT_POLL_MS = 5000

// routes of this plugin are never managed by waygate: the docs must stay up during maintenance
const UNMANAGED: Record<string, unknown> = { waygate: false }
// `hide` is @fastify/swagger's: these routes are not part of the API
const HIDDEN = { hide: true } as FastifySchema

function isPath (value: unknown): value is string {
  return typeof value === 'string' && value[0] === '/'
}

function trimSlash (path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

function checkOptions (options: WaygateOpenApiOptions): void {
  const problems: string[] = []
  const engine = options.engine as Partial<WaygateEngine> | undefined
  if (engine !== undefined && (engine === null || typeof engine.listRoutes !== 'function' || typeof engine.getGlobal !== 'function')) {
    problems.push('engine: expected an engine from createEngine()')
  }
  if (options.routePrefix !== undefined && !isPath(options.routePrefix)) problems.push('routePrefix: expected a path starting with /')
  if (options.excludePrefixes !== undefined &&
      (!Array.isArray(options.excludePrefixes) || !options.excludePrefixes.every(isPath))) {
    problems.push('excludePrefixes: expected an array of paths starting with /')
  }
  if (options.specRoute !== undefined && options.specRoute !== false && !isPath(options.specRoute)) {
    problems.push('specRoute: expected a path starting with / or false')
  }
  if (options.statusRoute !== undefined && typeof options.statusRoute !== 'boolean') problems.push('statusRoute: expected a boolean')
  const poll = options.pollIntervalMs
  if (poll !== undefined && (!Number.isInteger(poll) || poll < 250 || poll > 3_600_000)) {
    problems.push('pollIntervalMs: expected an integer from 250 to 3600000')
  }
  if (options.swaggerDecorator !== undefined && (typeof options.swaggerDecorator !== 'string' || options.swaggerDecorator === '')) {
    problems.push('swaggerDecorator: expected a non-empty string')
  }
  if (problems.length > 0) throw new WG_ERR_OPTIONS_INVALID(`@waygate/openapi: ${problems.join('; ')}`)
}

async function waygateOpenApiPlugin (fastify: FastifyInstance, options: WaygateOpenApiOptions): Promise<void> {
  checkOptions(options)
  const engine = options.engine ?? (fastify as unknown as { waygate?: WaygateEngine }).waygate
  if (engine === undefined) {
    throw new WG_ERR_OPTIONS_INVALID('@waygate/openapi: engine: register @waygate/fastify before this plugin, or pass engine')
  }
  const routePrefix = trimSlash(options.routePrefix ?? DEFAULT_ROUTE_PREFIX)
  const decorator = options.swaggerDecorator ?? 'swagger'
  const view = createOpenApiView(engine, { excludePrefixes: options.excludePrefixes ?? DEFAULT_EXCLUDE_PREFIXES })
  const script = bannerScript(options.pollIntervalMs ?? DEFAULT_POLL_MS)
  const log = fastify.log.child({ name: 'waygate' })

  function builder (): () => object {
    const build = (fastify as unknown as Record<string, unknown>)[decorator]
    if (typeof build !== 'function') {
      throw new WG_ERR_OPTIONS_INVALID(`@waygate/openapi: fastify.${decorator}() is missing: register @fastify/swagger first`)
    }
    return build as () => object
  }

  function source (): object {
    return builder().call(fastify)
  }

  const transformSpecification: TransformSpecification = spec => view.transform(spec)

  const api: WaygateOpenApi = {
    engine,
    routePrefix,
    document: () => view.transform(source()) as Record<string, unknown>,
    transform: spec => view.transform(spec),
    status: () => view.status(source()),
    transformSpecification,
    swaggerUiOptions (parts) {
      const own: SwaggerUiParts = parts ?? {}
      if (own.routePrefix !== undefined && trimSlash(own.routePrefix) !== routePrefix) {
        throw new WG_ERR_OPTIONS_INVALID(`@waygate/openapi: swaggerUiOptions: routePrefix "${own.routePrefix}" differs from the plugin's "${routePrefix}"`)
      }
      const theme = own.theme ?? {}
      const userTransform = own.transformSpecification
      // a transform of yours may expect its own copy (swagger-ui's default), ours is a shared cached document
      const copy = own.transformSpecificationClone !== false
      const combined: TransformSpecification = userTransform === undefined
        ? transformSpecification
        : (spec, request, reply) => {
            const live = view.transform(spec)
            return userTransform(copy ? structuredClone(live) : live, request, reply)
          }
      // other options a JavaScript caller passes along are kept
      return {
        ...own,
        routePrefix,
        theme: {
          ...theme,
          css: [...(theme.css ?? []), { filename: BANNER_STYLE_FILE, content: BANNER_STYLE }],
          js: [...(theme.js ?? []), { filename: BANNER_SCRIPT_FILE, content: script }]
        },
        transformSpecification: combined,
        transformSpecificationClone: false
      }
    }
  }
  fastify.decorate('waygateOpenApi', api)

  if (options.statusRoute !== false) {
    fastify.get(`${routePrefix === '/' ? '' : routePrefix}${STATUS_PATH}`, { schema: HIDDEN, config: UNMANAGED }, async (_request, reply) => {
      reply.header('cache-control', 'no-store')
      return api.status()
    })
  }
  if (typeof options.specRoute === 'string') {
    fastify.get(options.specRoute, { schema: HIDDEN, config: UNMANAGED }, async (_request, reply) => {
      reply.header('cache-control', 'no-store')
      return api.document()
    })
  }

  fastify.addHook('onReady', async () => {
    builder()
    // docs at the root share it with the API: nothing to tell apart then
    const managed = routePrefix === '/' ? [] : engine.listRoutes().filter(state => isUnderPrefix(state.path, routePrefix))
    if (managed.length > 0) {
      log.warn({ routes: managed.map(state => state.key), routePrefix },
        `waygate manages the docs routes under ${routePrefix}: they answer 503 under global maintenance and show in the dashboard; add '${routePrefix}' to the waygate plugin's ignorePrefixes`)
    }
  })
}

/**
 * Makes the application's OpenAPI document follow waygate's runtime state, with a Swagger UI
 * banner for site-wide maintenance. Register after `@waygate/fastify` and `@fastify/swagger`, then
 * pass `app.waygateOpenApi.swaggerUiOptions()` to `@fastify/swagger-ui`.
 *
 * @example
 * await app.register(waygate, { engine, ignorePrefixes: ['/docs'] })
 * await app.register(swagger, { openapi: { info: { title: 'My API', version: '1.0.0' } } })
 * await app.register(waygateOpenApi, { routePrefix: '/docs' })
 * await app.register(swaggerUi, app.waygateOpenApi.swaggerUiOptions())
 */
export const waygateOpenApi = fp(waygateOpenApiPlugin, { fastify: '5.x', name: '@waygate/openapi' })
