import type { FastifyReply, FastifyRequest } from 'fastify'
import { isSendableHeader, retryAfterSeconds, type BlockDecision, type BlockKind, type DeprecatedDecision, type WaygateLogger } from '@waygate/core'
import type { RateLimitedResponseFactory } from './rate-limit.js'

/** What a custom response factory is told about the block. */
export interface BlockContext {
  /** What blocked the request; `sunset` and `brownout` are a deprecated route's 410 Gone. */
  kind: BlockKind
  /** The route key that decided (`METHOD:/pattern`), or `*` for an unmatched path under global maintenance. */
  key: string
  reason: string
  /** The concrete request path, without the query string. */
  path: string
  /** True when site-wide maintenance blocked the request. */
  global: boolean
  /** Seconds until the maintenance window ends, or null when unknown. */
  retryAfterSeconds: number | null
  /** When the maintenance window ends (ISO 8601), or null when unknown. */
  retryAt: string | null
  /** For `sunset` and `brownout`: the successor URL of the deprecated route, or null. */
  successor?: string | null
  /** For `sunset` and `brownout`: the sunset date (ISO 8601), or null. */
  sunset?: string | null
}

/**
 * Builds the response for a blocked request, like a route handler: set the status and headers on
 * `reply`, then return the body or call `reply.send()`. The status is preset to the built-in one
 * (503, 404 for env-gated, 410 for sunset and brownout). May be async. If it throws, the built-in
 * response is sent instead.
 */
export type WaygateResponseFactory = (request: FastifyRequest, reply: FastifyReply, block: BlockContext) => unknown

/** Plugin-wide response factories, used for routes without their own `response`. */
export interface WaygateResponses {
  maintenance?: WaygateResponseFactory
  disabled?: WaygateResponseFactory
  envGated?: WaygateResponseFactory
  /** Answers a deprecated route's 410 Gone, after its sunset (`kind: 'sunset'`) and in a brownout (`kind: 'brownout'`). */
  gone?: WaygateResponseFactory
  /** Answers rate-limited requests (429) of routes without their own `rateLimit.response`. */
  rateLimited?: RateLimitedResponseFactory
}

const JSON_TYPE = 'application/json; charset=utf-8'

function requestPath (request: FastifyRequest): string {
  const url = request.url
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function contextOf (request: FastifyRequest, decision: BlockDecision, now: number): BlockContext {
  const ctx: BlockContext = {
    kind: decision.kind,
    key: decision.key,
    reason: decision.reason,
    path: requestPath(request),
    global: decision.global,
    retryAfterSeconds: decision.retryAt === null ? null : retryAfterSeconds(decision.retryAt, now),
    retryAt: decision.retryAt === null ? null : new Date(decision.retryAt).toISOString()
  }
  const deprecation = decision.deprecation
  if (deprecation !== undefined) {
    ctx.successor = successorOf(deprecation)
    ctx.sunset = deprecation.sunset === null ? null : new Date(deprecation.sunset).toISOString()
  }
  return ctx
}

/** The URL of a `<url>; rel="successor-version"` Link value. */
function successorOf (deprecation: DeprecatedDecision): string | null {
  const link = deprecation.link
  if (link === null) return null
  const end = link.indexOf('>')
  return end > 1 ? link.slice(1, end) : null
}

/** The status of a block's built-in answer. */
function statusOf (kind: BlockKind): number {
  return kind === 'env_gated' ? 404 : kind === 'sunset' || kind === 'brownout' ? 410 : 503
}

/** A deprecated route's 410 Gone: after its sunset, or in a planned brownout (RFC 9110 §15.5.11). */
function sendGone (reply: FastifyReply, ctx: BlockContext): void {
  const brownout = ctx.kind === 'brownout'
  const error: Record<string, unknown> = {
    code: brownout ? 'ROUTE_BROWNOUT' : 'ROUTE_SUNSET',
    message: brownout
      ? 'This endpoint is deprecated and unavailable during a planned brownout; move to its successor before it is retired'
      : 'This endpoint has been retired',
    reason: ctx.reason,
    path: ctx.path,
    sunset: ctx.sunset ?? null,
    successor: ctx.successor ?? null
  }
  if (brownout) error.brownout = true
  if (ctx.retryAt !== null) {
    error.retryAfter = ctx.retryAfterSeconds
    error.retryAt = ctx.retryAt
    reply.header('retry-after', String(ctx.retryAfterSeconds))
  }
  reply.code(410).type(JSON_TYPE).send(JSON.stringify({ error }))
}

function setGoneHeaders (reply: FastifyReply, deprecation: DeprecatedDecision): void {
  reply.header('deprecation', deprecation.deprecation)
  if (deprecation.sunset !== null) reply.header('sunset', deprecation.sunset)
  if (deprecation.link !== null) reply.header('link', deprecation.link)
}

/** Sends waygate's built-in response for a block. */
function sendBuiltIn (request: FastifyRequest, reply: FastifyReply, ctx: BlockContext): void {
  if (ctx.kind === 'env_gated') {
    // the route must look absent: the app's own not-found handler answers
    reply.callNotFound()
    return
  }
  if (ctx.kind === 'sunset' || ctx.kind === 'brownout') {
    sendGone(reply, ctx)
    return
  }
  const maintenance = ctx.kind === 'maintenance'
  const error: Record<string, unknown> = {
    code: maintenance ? 'MAINTENANCE_MODE' : 'ROUTE_DISABLED',
    message: maintenance
      ? (ctx.global ? 'The service is temporarily down for maintenance' : 'This endpoint is temporarily down for maintenance')
      : 'This endpoint is disabled',
    reason: ctx.reason,
    path: ctx.path
  }
  if (ctx.retryAt !== null) {
    // seconds, as in the Retry-After header, and the time itself
    error.retryAfter = ctx.retryAfterSeconds
    error.retryAt = ctx.retryAt
    reply.header('retry-after', String(ctx.retryAfterSeconds))
  }
  // serialised here so a route's own response schema never reshapes waygate's body
  reply.code(503).type(JSON_TYPE).send(JSON.stringify({ error }))
}

/**
 * Removes the headers a factory set that Node would refuse to write (a reason with an emoji or a
 * CR/LF put in a header, say), which would turn the answer into an error. Runs on the blocked
 * path only, before the reply is sent.
 */
function dropUnsendableHeaders (reply: FastifyReply, ctx: BlockContext, logger: WaygateLogger): void {
  const headers = reply.getHeaders()
  for (const name of Object.keys(headers)) {
    if (isSendableHeader(name, headers[name])) continue
    reply.removeHeader(name)
    logger.warn({ key: ctx.key, kind: ctx.kind, header: name.slice(0, 100) },
      'waygate: a response factory set a header that cannot be sent; the response goes without it')
  }
}

/**
 * Answers a blocked request: the route's factory, else the plugin-wide one for the kind, else the
 * built-in response. A factory that throws or rejects is logged and replaced by the built-in one.
 * Headers the factory set that cannot be sent are dropped (and logged) when it returns a body.
 */
export function respondBlocked (
  request: FastifyRequest,
  reply: FastifyReply,
  decision: BlockDecision,
  now: number,
  factory: WaygateResponseFactory | undefined,
  logger: WaygateLogger
): void | Promise<void> {
  const ctx = contextOf(request, decision, now)
  // a 410 of a deprecated route still says what it was (RFC 9745, RFC 8594) and where to go
  if (decision.deprecation !== undefined) setGoneHeaders(reply, decision.deprecation)
  if (factory === undefined) {
    sendBuiltIn(request, reply, ctx)
    return
  }
  const fallback = (err: unknown): void => {
    logger.error({ err, key: ctx.key, kind: ctx.kind }, 'waygate: custom response factory failed; sending the built-in response')
    if (!reply.sent) {
      reply.removeHeader('retry-after')
      dropUnsendableHeaders(reply, ctx, logger)
      sendBuiltIn(request, reply, ctx)
    }
  }
  const finish = (value: unknown): void => {
    if (reply.sent) return
    if (value === reply || value === undefined) {
      if (value === undefined) fallback(new Error('the response factory returned nothing and sent nothing'))
      return
    }
    dropUnsendableHeaders(reply, ctx, logger)
    reply.send(value)
  }
  reply.code(statusOf(ctx.kind))
  if (ctx.retryAfterSeconds !== null) reply.header('retry-after', String(ctx.retryAfterSeconds))
  let result: unknown
  try {
    result = factory(request, reply, ctx)
  } catch (err) {
    fallback(err)
    return
  }
  if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function' && result !== reply) {
    return (result as Promise<unknown>).then(finish, fallback)
  }
  finish(result)
}
