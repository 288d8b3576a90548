import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { Decision, DeprecatedDecision, WaygateLogger } from '@waygate/core'
import { respondBlocked, type WaygateResponseFactory } from './responses.js'

/**
 * Carries out one decision in an `onRequest` hook: go on, go on with deprecation headers, or
 * answer the block (never calling `done` then). Shared by the plugin and the route guards.
 */
export function applyDecision (
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
  decision: Decision,
  now: () => number,
  factory: WaygateResponseFactory | undefined,
  log: WaygateLogger
): void {
  if (decision.action === 'pass') {
    done()
    return
  }
  if (decision.action === 'deprecated') {
    setDeprecationHeaders(reply, decision)
    done()
    return
  }
  const pending = respondBlocked(request, reply, decision, now(), factory, log)
  if (pending !== undefined) pending.catch(err => log.error({ err }, 'waygate: sending a blocked response failed'))
}

/** Sets the RFC 9745 `Deprecation`, RFC 8594 `Sunset` and successor `Link` headers. */
export function setDeprecationHeaders (reply: FastifyReply, decision: DeprecatedDecision): void {
  reply.header('deprecation', decision.deprecation)
  if (decision.sunset !== null) reply.header('sunset', decision.sunset)
  if (decision.link !== null) reply.header('link', decision.link)
}
