import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import {
  createCallerTracker,
  createEngineFromEnv,
  createRateLimiter,
  createTrafficRecorder,
  metricsOptionsProblems,
  OUTCOME_INDEX,
  RouteTraffic,
  UNMATCHED_ROUTE,
  startTrafficPublisher,
  type RemoteBackend,
  type MetricsOptions,
  type TrafficRecorder,
  setCallerTracker,
  type CallerTracker,
  type RateLimiter,
  type RateLimitStore,
  type BlockDecision,
  type RouteDeclaration,
  type RouteHandle,
  type TimeInput,
  type WaygateEngine,
  type WaygateLogger
} from '@waygate/core'
import { WG_ERR_PLUGIN_OPTIONS_INVALID, WG_ERR_ROUTE_CONFIG_INVALID, WG_ERR_ROUTES_BEFORE_PLUGIN } from './errors.js'
import { applyDecision, setDeprecationHeaders } from './enforce.js'
import { createPluginMetrics, RouteMeter, type PluginMetrics } from './metrics.js'
import {
  limitChain,
  NO_LIMITS,
  runLimits,
  splitRateLimitConfig,
  upperLimits,
  type ActiveLimit,
  type LimitChain,
  type RateLimitHeaders,
  type RateLimitHooks,
  type RateLimitRuntime,
  type RouteRateLimitConfig
} from './rate-limit.js'
import type { WaygateResponseFactory, WaygateResponses } from './responses.js'
import { callerSlot, callersConfigProblems, countCaller, type CallersConfig, type CallersOptions, type CallerSlot } from './callers.js'

/** What a route declares under `config.waygate`: its initial state and its own blocked response. */
export interface WaygateRouteConfig {
  /** Start in maintenance (503), or in a maintenance window when `start`/`end` are given. */
  maintenance?: { reason?: string, start?: TimeInput, end?: TimeInput }
  /** Start disabled (503). */
  disabled?: { reason?: string }
  /** Only reachable in these environments; elsewhere the app's own 404 answers. */
  envOnly?: string[]
  /**
   * Serve with `Deprecation`, `Sunset` and `Link: rel="successor-version"` headers, counting who
   * still calls (`callers`); `afterSunset: 'gone'` answers 410 Gone once the sunset has passed.
   */
  deprecated?: { sunset?: TimeInput, successor?: string, reason?: string, afterSunset?: 'gone', callers?: CallersConfig }
  /** Immune to every state change; only global maintenance with `includeForceActive` blocks it. */
  forceActive?: boolean
  /** This route's response when blocked (beats the plugin-wide `responses`). */
  response?: WaygateResponseFactory
  /** Rate limit: `'100/minute'`, `['10/second', '1000/day']` or the full form. Checked after the lifecycle. */
  rateLimit?: RouteRateLimitConfig
}

/** Options of the waygate Fastify plugin. */
export interface WaygatePluginOptions {
  /** The engine to use. Default: `createEngineFromEnv()` (WAYGATE_BACKEND, WAYGATE_ENV, .waygate…), logging through `fastify.log`. */
  engine?: WaygateEngine
  /** Plugin-wide blocked responses, for routes without their own `response`. */
  responses?: WaygateResponses
  /** Path prefixes whose routes waygate neither registers nor enforces (the admin mount uses this). */
  ignorePrefixes?: string[]
  /**
   * What to do about routes declared before the plugin was registered, which it cannot manage:
   * `warn` (default) logs them loudly, `error` fails registration, `ignore` says nothing.
   */
  unmanagedRoutes?: 'warn' | 'error' | 'ignore'
  /** Close the engine when Fastify closes. Default: true when the plugin created the engine. */
  closeEngine?: boolean
  /**
   * Prometheus metrics (needs prom-client): `true`, or where to register (`registry`), serve (`path`,
   * default `/metrics`, false for none), how to name (`prefix`, default `waygate_`) and whether the
   * admin's auth guards them (`auth`). Default off. Per-route traffic for the dashboard is always kept.
   */
  metrics?: MetricsOptions | boolean
  /** Rate limiting: where counters live, which headers to send, how many refusals to log. */
  rateLimit?: {
    /** Default: a memory store (bounded, per process). Use `createRedisRateLimitStore()` for several instances. */
    store?: RateLimitStore
    /** `draft` (RateLimit and RateLimit-Policy, default), `legacy` (X-RateLimit-*), `both` or false. */
    headers?: RateLimitHeaders
    /** Size of the blocked-requests log. Default 500. */
    blockedLogSize?: number
  }
  /**
   * Who still calls deprecated routes: the default key (`by`, default `ip`) of every route without
   * its own `deprecated.callers`, and the sketches' size; `false` counts nothing.
   */
  callers?: CallersOptions | false
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The waygate engine: read state, change it at runtime, follow changes. */
    waygate: WaygateEngine
    /** Rate limit policies (declared and runtime), counters and the blocked log. */
    waygateRateLimits: RateLimiter
    /** Requests per route and outcome, per minute (last hour) and per five minutes (last day). */
    waygateTraffic: TrafficRecorder
  }
  interface FastifyContextConfig {
    /** Waygate's declaration for this route, or `false` to leave the route unmanaged. */
    waygate?: WaygateRouteConfig | false
  }
}

/** Where one route's hook finds its engine handle and response factory. */
interface Slot {
  handle: RouteHandle
  factory: WaygateResponseFactory | undefined
  /** The code-only parts of the route's rate limit (key function, tier resolver, cost, 429 factory). */
  rlHooks: RateLimitHooks
  /** What the route checks: global, service, then its own limit; replaced when policies change. */
  limits: LimitChain
  /** Counts each request once: traffic rings, and the metrics' counters when on. */
  meter: RouteMeter
  /** Counts the callers while the route is deprecated. */
  callers: CallerSlot
}

const ROUTE_CONFIG_KEYS = new Set(['maintenance', 'disabled', 'envOnly', 'deprecated', 'forceActive', 'response', 'rateLimit'])

function checkOptions (options: WaygatePluginOptions): void {
  const problems: string[] = []
  const engine = options.engine as Partial<WaygateEngine> | undefined
  if (engine !== undefined && (engine === null || typeof engine.decide !== 'function' || typeof engine.declareRoute !== 'function')) {
    problems.push('engine: expected an engine from createEngine()')
  }
  if (options.responses !== undefined) {
    if (options.responses === null || typeof options.responses !== 'object') {
      problems.push('responses: expected an object')
    } else {
      for (const [kind, factory] of Object.entries(options.responses)) {
        if (!['maintenance', 'disabled', 'envGated', 'gone', 'rateLimited'].includes(kind)) problems.push(`responses.${kind}: unknown kind (maintenance, disabled, envGated, gone, rateLimited)`)
        else if (factory !== undefined && typeof factory !== 'function') problems.push(`responses.${kind}: expected a function`)
      }
    }
  }
  if (options.ignorePrefixes !== undefined &&
      (!Array.isArray(options.ignorePrefixes) || options.ignorePrefixes.some(p => typeof p !== 'string' || p[0] !== '/'))) {
    problems.push('ignorePrefixes: expected an array of paths starting with /')
  }
  if (options.unmanagedRoutes !== undefined && !['warn', 'error', 'ignore'].includes(options.unmanagedRoutes)) {
    problems.push('unmanagedRoutes: expected warn, error or ignore')
  }
  if (options.closeEngine !== undefined && typeof options.closeEngine !== 'boolean') problems.push('closeEngine: expected a boolean')
  problems.push(...metricsOptionsProblems(options.metrics))
  if (options.callers !== false) problems.push(...callersConfigProblems(options.callers, 'callers'))
  if (problems.length > 0) throw new WG_ERR_PLUGIN_OPTIONS_INVALID(problems.join('; '))
}

/** Splits a route's `config.waygate` into the engine's declaration and the response factory. */
interface SplitConfig {
  declaration: RouteDeclaration
  factory: WaygateResponseFactory | undefined
  rateLimit: RouteRateLimitConfig | undefined
  callers: CallersConfig | undefined
}

function splitRouteConfig (config: unknown, where: string): SplitConfig {
  if (config === undefined || config === null) return { declaration: {}, factory: undefined, rateLimit: undefined, callers: undefined }
  if (typeof config !== 'object' || Array.isArray(config)) throw new Error(`${where}: config.waygate must be an object or false`)
  const { response, rateLimit, ...declaration } = config as WaygateRouteConfig
  for (const key of Object.keys(declaration)) {
    if (!ROUTE_CONFIG_KEYS.has(key)) throw new Error(`${where}: unknown option "${key}" (expected one of ${[...ROUTE_CONFIG_KEYS].join(', ')})`)
  }
  if (response !== undefined && typeof response !== 'function') throw new Error(`${where}: response must be a function`)
  // the callers key may be a function: it stays here, the engine gets the storable rest
  let callers: CallersConfig | undefined
  const deprecated = declaration.deprecated
  if (deprecated !== null && typeof deprecated === 'object' && 'callers' in deprecated) {
    const { callers: own, ...rest } = deprecated
    const problems = callersConfigProblems(own, `${where}: deprecated.callers`)
    if (problems.length > 0) throw new Error(problems.join('; '))
    callers = own
    declaration.deprecated = rest
  }
  return { declaration, factory: response, rateLimit, callers }
}

const PASSED = OUTCOME_INDEX.passed
const DEPRECATED = OUTCOME_INDEX.deprecated
const GLOBAL_MAINTENANCE = OUTCOME_INDEX.global_maintenance
// by block kind; a string index, so a kind added to the engine later counts as soon as it is listed here
const BLOCK_OUTCOME: Record<string, number> = {
  maintenance: OUTCOME_INDEX.maintenance,
  disabled: OUTCOME_INDEX.disabled,
  env_gated: OUTCOME_INDEX.env_gated,
  sunset: OUTCOME_INDEX.sunset,
  brownout: OUTCOME_INDEX.brownout
}
// the meter of a HEAD route until onReady finds its GET; no request reaches it before
const PENDING_METER = new RouteMeter(new RouteTraffic('', () => 0), null)

/** Whoever can authenticate admin callers: set by @waygate/admin when it is registered. */
interface AdminAuthHolder {
  authenticate: ((request: FastifyRequest) => Promise<unknown>) | null
}

/**
 * Serves the registry at `path`, outside waygate's control; behind the admin's auth when asked
 * (the admin fills the holder when it is registered; without it, ready() fails).
 */
function serveMetrics (fastify: FastifyInstance, metrics: PluginMetrics, path: string): void {
  const holder: AdminAuthHolder = { authenticate: null }
  fastify.decorate('waygateMetricsAuth', holder)
  if (metrics.auth) {
    fastify.addHook('onReady', async () => {
      if (holder.authenticate === null) throw new WG_ERR_PLUGIN_OPTIONS_INVALID('metrics.auth: register @waygate/admin (its tokens guard the metrics), or leave auth off')
    })
  }
  // hidden from @fastify/swagger, whose type augmentation is not a dependency of this package
  const hidden = { hide: true } as FastifySchema
  fastify.get(path, { config: { waygate: false }, schema: hidden }, async (request, reply) => {
    if (metrics.auth) await holder.authenticate!(request)
    const text = await metrics.registry.metrics()
    return reply.type(metrics.registry.contentType).send(text)
  })
}

function loggerFrom (fastify: FastifyInstance): WaygateLogger {
  return fastify.log.child({ name: 'waygate' }) as unknown as WaygateLogger
}

async function waygatePlugin (fastify: FastifyInstance, options: WaygatePluginOptions): Promise<void> {
  checkOptions(options)
  const ownEngine = options.engine === undefined
  const engine = options.engine ?? createEngineFromEnv({ logger: loggerFrom(fastify) })
  const log = ownEngine ? engine.logger : loggerFrom(fastify)
  const responses = options.responses ?? {}
  // a copy: the admin adds its own prefix (nothing under it is subject to waygate)
  const ignorePrefixes = [...(options.ignorePrefixes ?? [])]
  const factoryFor: Record<BlockDecision['kind'], WaygateResponseFactory | undefined> = {
    maintenance: responses.maintenance,
    disabled: responses.disabled,
    env_gated: responses.envGated,
    sunset: responses.gone,
    brownout: responses.gone
  }

  // printRoutes lists each path with its methods in parentheses, "(GET, HEAD)"; "(empty tree)" when none
  const existing = fastify.printRoutes({ commonPrefix: false })
  if (/\([A-Z]+(, [A-Z]+)*\)/.test(existing) && options.unmanagedRoutes !== 'ignore') {
    const list = existing.trim()
    if (options.unmanagedRoutes === 'error') throw new WG_ERR_ROUTES_BEFORE_PLUGIN(list)
    log.warn({ routes: list }, 'waygate: routes declared before the plugin was registered are NOT managed; register waygate first')
  }

  fastify.decorate('waygate', engine)
  fastify.decorate('waygateIgnorePrefixes', ignorePrefixes)
  await engine.start()

  const rlOptions = options.rateLimit ?? {}
  const limiter = createRateLimiter(engine, { store: rlOptions.store, blockedLogSize: rlOptions.blockedLogSize })
  // a store that connects (Redis) is connected before the first request; it never throws for a
  // failure (it answers degraded and reconnects)
  await (limiter.store as { init?: () => Promise<void> }).init?.()
  await limiter.start()
  fastify.decorate('waygateRateLimits', limiter)

  const traffic = createTrafficRecorder({ now: engine.now })
  fastify.decorate('waygateTraffic', traffic)
  // attached to a Waygate Server: this instance's traffic goes to it, for the server's charts
  const remote = engine.backend as Partial<Pick<RemoteBackend, 'publishTraffic' | 'trafficPublishMs'>>
  if (typeof remote.publishTraffic === 'function' && (remote.trafficPublishMs ?? 0) > 0) {
    let failing = false
    const publisher = startTrafficPublisher({
      traffic,
      intervalMs: remote.trafficPublishMs!,
      include: key => key !== UNMATCHED_ROUTE,
      publish: async push => {
        await remote.publishTraffic!(push)
        failing = false
      },
      onError: err => {
        // once per run of failures: the stream's own warnings say when the server is away
        if (!failing) log.debug({ err }, 'waygate: sending traffic to the server failed; it goes with the next report')
        failing = true
      }
    })
    fastify.addHook('preClose', async () => { await publisher.close() })
  }
  // loaded only when asked for: prom-client is an optional peer dependency
  const metrics: PluginMetrics | null = options.metrics === undefined || options.metrics === false
    ? null
    : await createPluginMetrics(options.metrics, engine, () => limiter.store)
  const meterFor = (key: string): RouteMeter => new RouteMeter(traffic.route(key), metrics === null ? null : metrics.bind(key))
  const unmatchedMeter = meterFor(UNMATCHED_ROUTE)
  if (metrics !== null && metrics.path !== false) serveMetrics(fastify, metrics, metrics.path)
  const rlRuntime: RateLimitRuntime = {
    limiter,
    headers: rlOptions.headers ?? 'draft',
    now: engine.now,
    log,
    response: responses.rateLimited as RateLimitRuntime['response']
  }
  if (metrics !== null) {
    rlRuntime.onDegraded = metrics.degraded
    rlRuntime.onStoreError = metrics.storeError
  }

  const callersOption = options.callers === false ? null : options.callers ?? {}
  const callers: CallerTracker | null = callersOption === null
    ? null
    : createCallerTracker({ backend: engine.backend, now: engine.now, logger: log, slots: callersOption.slots, publishIntervalMs: callersOption.publishIntervalMs })
  if (callers !== null) {
    setCallerTracker(engine, callers)
    fastify.addHook('onClose', async () => {
      setCallerTracker(engine, null)
      await callers.close()
    })
  }
  const callerDefaults: CallersConfig = callersOption ?? {}

  const slots = new Map<string, Slot>()
  const pendingHead: Array<{ slot: Slot, path: string, declaration: RouteDeclaration }> = []
  const configErrors: string[] = []
  // Fastify's automatic HEAD route shares its GET's config object: a GET reported as invalid is not reported again as HEAD
  const invalidGets = new Map<string, unknown>()

  function enforce (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, slot: Slot): void {
    const decision = engine.decide(slot.handle)
    if (decision.action === 'block') {
      slot.meter.record(decision.global ? GLOBAL_MAINTENANCE : BLOCK_OUTCOME[decision.kind]!)
      // a deprecated route's 410 (sunset, brownout): whoever still calls is counted too
      if (decision.deprecation !== undefined) countCaller(callers, slot.callers, request)
      // lifecycle first: a blocked route consumes no quota
      applyDecision(request, reply, done, decision, engine.now, slot.factory ?? factoryFor[decision.kind], log)
      return
    }
    if (decision.action === 'deprecated') {
      setDeprecationHeaders(reply, decision)
      countCaller(callers, slot.callers, request)
    }
    const limits = slot.limits
    const outcome = decision.action === 'deprecated' ? DEPRECATED : PASSED
    if (limits.length === 0) {
      slot.meter.record(outcome)
      done()
    } else {
      runLimits(request, reply, done, rlRuntime, limits, 0, slot.meter, outcome)
    }
  }

  /** Points every route at the rate limit in force for it. */
  function refreshLimits (): void {
    const tiers = upperLimits(limiter)
    for (const slot of slots.values()) {
      const compiled = limiter.policyFor(slot.handle.key) ?? limiter.policyFor(slot.handle.path)
      const own: ActiveLimit | null = compiled === null ? null : { compiled, hooks: slot.rlHooks, key: slot.handle.key, name: 'route' }
      slot.limits = limitChain(tiers, slot.handle.key, slot.handle.path, own)
    }
  }
  limiter.onChange(refreshLimits)

  function slotFor (method: string, path: string, config: unknown): Slot | undefined {
    const where = `${method}:${path}`
    if (method === 'HEAD' && invalidGets.has(path) && invalidGets.get(path) === config) return undefined
    let split: ReturnType<typeof splitRouteConfig>
    try {
      split = splitRouteConfig(config, where)
    } catch (err) {
      configErrors.push((err as Error).message)
      if (method === 'GET') invalidGets.set(path, config)
      return undefined
    }
    if (method === 'HEAD') {
      // HEAD follows the GET route of the same pattern; bound at onReady if GET comes later
      const get = slots.get(`GET:${path}`)
      if (get !== undefined) return get
      const slot: Slot = { handle: undefined as unknown as RouteHandle, factory: split.factory, rlHooks: {}, meter: PENDING_METER, limits: NO_LIMITS, callers: callerSlot(`HEAD:${path}`, split.callers, callerDefaults, log) }
      pendingHead.push({ slot, path, declaration: split.declaration })
      return slot
    }
    const key = `${method}:${path}`
    const known = slots.get(key)
    if (known !== undefined) return known
    try {
      const slot: Slot = {
        handle: engine.declareRoute(method, path, split.declaration),
        factory: split.factory,
        rlHooks: {},
        meter: meterFor(key),
        limits: NO_LIMITS,
        callers: callerSlot(key, split.callers, callerDefaults, log)
      }
      if (split.rateLimit !== undefined) {
        const { policy, hooks } = splitRateLimitConfig(key, split.rateLimit)
        slot.rlHooks = hooks
        slots.set(key, slot)
        limiter.declare(key, policy)
      } else {
        slots.set(key, slot)
      }
      return slot
    } catch (err) {
      configErrors.push((err as Error).message.replace(/^Invalid input: /, ''))
      if (method === 'GET') invalidGets.set(path, config)
      return undefined
    }
  }

  fastify.addHook('onRoute', (routeOptions: RouteOptions) => {
    const config = (routeOptions.config as { waygate?: unknown } | undefined)?.waygate
    if (config === false) return
    const path = routeOptions.url
    if (path === undefined) return
    for (const prefix of ignorePrefixes) if (path.startsWith(prefix)) return
    const methods = Array.isArray(routeOptions.method) ? routeOptions.method : [routeOptions.method]
    let hook
    if (methods.length === 1) {
      const slot = slotFor(methods[0]!.toUpperCase(), path, config)
      if (slot === undefined) return
      hook = function waygateOnRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
        enforce(request, reply, done, slot)
      }
    } else {
      const byMethod: Record<string, Slot> = Object.create(null)
      for (const method of methods) {
        const slot = slotFor(method.toUpperCase(), path, config)
        if (slot !== undefined) byMethod[method.toUpperCase()] = slot
      }
      hook = function waygateOnRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
        const slot = byMethod[request.method]
        if (slot === undefined) done()
        else enforce(request, reply, done, slot)
      }
    }
    const current = routeOptions.onRequest
    routeOptions.onRequest = current === undefined ? [hook] : [hook, ...(Array.isArray(current) ? current : [current])]
  })

  // Under global maintenance, paths that match no route answer 503 too (except exempt ones and preflights).
  fastify.addHook('onRequest', function waygateUnmatched (request, reply, done) {
    const decision = engine.decideUnmatched(request.url, request.method,
      request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined)
    if (decision.action !== 'block' || !request.is404) {
      done()
      return
    }
    for (const prefix of ignorePrefixes) {
      if (request.url.startsWith(prefix)) {
        done()
        return
      }
    }
    unmatchedMeter.record(GLOBAL_MAINTENANCE)
    applyDecision(request, reply, done, decision, engine.now, factoryFor.maintenance, log)
  })

  fastify.addHook('onReady', async () => {
    for (const { slot, path, declaration } of pendingHead) {
      const get = slots.get(`GET:${path}`)
      if (get !== undefined) {
        slot.handle = get.handle
        slot.factory ??= get.factory
        slot.rlHooks = get.rlHooks
        slot.meter = get.meter
        // HEAD follows its GET: one count of callers for both
        slot.callers = get.callers
        slots.set(`HEAD:${path}`, slot)
        continue
      }
      try {
        slot.handle = engine.declareRoute('HEAD', path, declaration)
        slot.meter = meterFor(`HEAD:${path}`)
        slots.set(`HEAD:${path}`, slot)
      } catch (err) {
        configErrors.push((err as Error).message.replace(/^Invalid input: /, ''))
      }
    }
    pendingHead.length = 0
    if (configErrors.length > 0) throw new WG_ERR_ROUTE_CONFIG_INVALID(configErrors.join('; '))
    refreshLimits()
    await engine.registerDeclaredRoutes()
  })

  fastify.addHook('onClose', async () => { await limiter.close() })
  if (options.closeEngine ?? ownEngine) {
    fastify.addHook('onClose', async () => { await engine.close() })
  }
}

/**
 * The waygate plugin: enforces route lifecycle state in `onRequest`, from a snapshot, with no I/O
 * per request. Register it before your routes; routes declare their initial state under
 * `config: { waygate: { ... } }` and operators change it at runtime through `fastify.waygate`.
 *
 * @example
 * await app.register(waygate, { engine: createEngine({ env: 'production' }) })
 * app.get('/payments', { config: { waygate: { maintenance: { reason: 'DB migration' } } } }, handler)
 */
export const waygate = fp(waygatePlugin, { fastify: '5.x', name: '@waygate/fastify' })
