import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { checkRouteDeclaration, type RouteHandle, type WaygateEngine } from '@waygate/core'
import type { WaygateRouteConfig } from './plugin.js'
import { applyDecision } from './enforce.js'
import type { WaygateResponses } from './responses.js'

/** An `onRequest` hook that enforces waygate on the one route it is attached to. */
export type WaygateGuard = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** Options of {@link createGuards}. */
export interface GuardOptions {
  /** Blocked responses for guarded routes without their own `response`. */
  responses?: WaygateResponses
}

/** Hook factories for routes guarded one by one, without the plugin registered around them. */
export interface WaygateGuards {
  /** Enforces whatever state the route has, declaring it with `declaration` as its initial state. */
  guard(declaration?: WaygateRouteConfig): WaygateGuard
  /** Starts the route in maintenance. */
  maintenance(options?: WaygateRouteConfig['maintenance'] & Pick<WaygateRouteConfig, 'response'>): WaygateGuard
  /** Starts the route disabled. */
  disabled(options?: WaygateRouteConfig['disabled'] & Pick<WaygateRouteConfig, 'response'>): WaygateGuard
  /** Makes the route reachable only in these environments. */
  envOnly(...envs: string[]): WaygateGuard
  /** Starts the route deprecated. */
  deprecated(options?: WaygateRouteConfig['deprecated']): WaygateGuard
}

/**
 * Route guards: the per-route counterpart of the plugin for apps (or encapsulated contexts) that
 * do not register it, sharing the same engine and rules. A guarded route is declared to the
 * engine on its first request (the guard learns its pattern from Fastify then); call
 * `engine.start()` yourself before serving.
 *
 * @example
 * const guards = createGuards(engine)
 * app.get('/orders', { onRequest: guards.maintenance({ reason: 'Order upgrade' }) }, handler)
 */
export function createGuards (engine: WaygateEngine, options: GuardOptions = {}): WaygateGuards {
  const responses = options.responses ?? {}

  function guard (config: WaygateRouteConfig = {}): WaygateGuard {
    const { response, ...declaration } = config
    // guards count no callers (the plugin does): the key, possibly a function, is not the engine's
    if (declaration.deprecated?.callers !== undefined) {
      const { callers: _callers, ...deprecated } = declaration.deprecated
      declaration.deprecated = deprecated
    }
    // fail where the route is defined, not on its first request
    checkRouteDeclaration(declaration, 'waygate guard')
    if (response !== undefined && typeof response !== 'function') throw new TypeError('waygate guard: response must be a function')
    // one handle per method this hook serves, resolved on the first request of each
    const handles: Record<string, RouteHandle> = Object.create(null)
    return function waygateGuard (request, reply, done) {
      let handle = handles[request.method]
      if (handle === undefined) {
        const method = request.method === 'HEAD' ? 'GET' : request.method
        const path = request.routeOptions.url ?? request.url
        handle = engine.declareRoute(method, path, declaration)
        handles[request.method] = handle
        engine.registerDeclaredRoutes().catch(err => engine.logger.error({ err }, 'waygate: registering a guarded route failed'))
      }
      const decision = engine.decide(handle)
      const factory = decision.action === 'block'
        ? response ?? (decision.kind === 'env_gated' ? responses.envGated : decision.kind === 'sunset' || decision.kind === 'brownout' ? responses.gone : responses[decision.kind])
        : undefined
      applyDecision(request, reply, done, decision, engine.now, factory, engine.logger)
    }
  }

  return {
    guard,
    maintenance: ({ response, ...maintenance } = {}) => guard({ maintenance, response }),
    disabled: ({ response, ...disabled } = {}) => guard({ disabled, response }),
    envOnly: (...envs) => guard({ envOnly: envs }),
    deprecated: (deprecated = {}) => guard({ deprecated })
  }
}
