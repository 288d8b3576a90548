import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import type { DeadLetter } from '@waygate/core'
import { WG_ERR_NOT_FOUND } from '../errors.js'
import type { AdminContext } from '../context.js'
import { principalOf } from '../principal.js'
import { ErrorBody, NoBody, NoQuery } from '../schemas.js'

type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody }

/** A webhook delivery given up on, as the REST API and the dashboard show it. */
export const DeadLetterView = Type.Object({
  id: Type.String({ description: 'The delivery: one per change and webhook' }),
  eventId: Type.String({ description: 'The change\'s audit entry id, sent as X-Waygate-Delivery' }),
  event: Type.String(),
  key: Type.String(),
  webhook: Type.String({ description: 'The webhook\'s URL as logs show it (origin and a hint of the path)' }),
  attempts: Type.Integer(),
  lastError: Type.String(),
  createdAt: Type.String({ description: 'When the change was made (ISO)' }),
  failedAt: Type.String({ description: 'When the delivery was given up on (ISO)' })
})
export type DeadLetterView = Static<typeof DeadLetterView>

const DeadLettersReply = Type.Object({
  durable: Type.Boolean({ description: 'Whether deliveries wait in the backend\'s outbox; false: in process memory, and no dead letters are kept' }),
  deadLetters: Type.Array(DeadLetterView)
})

export const DeadLetterParams = Type.Object({
  id: Type.String({ pattern: '^[0-9a-f]{32}$', description: 'A dead letter\'s id (32 hex digits)' })
}, { additionalProperties: false })

/** What a dead letter shows: never the receiver's full URL (it may carry a token) or the signing secret. */
export function deadLetterView (letter: DeadLetter): DeadLetterView {
  const d = letter.delivery
  return {
    id: d.id,
    eventId: d.eventId,
    event: d.event,
    key: d.key,
    webhook: d.target,
    attempts: letter.attempts,
    lastError: letter.lastError,
    createdAt: new Date(d.createdAt).toISOString(),
    failedAt: new Date(letter.failedAt).toISOString()
  }
}

/** The webhook outbox's dead letters: list, retry, delete. */
export function registerWebhookRoutes (api: Api, ctx: AdminContext): void {
  const { engine } = ctx
  const base = { config: { waygate: false as const }, bodyLimit: ctx.bodyLimit }
  const tags = ['waygate-webhooks']

  api.get('/api/webhooks/dead-letters', {
    ...base,
    schema: { tags, summary: 'Webhook deliveries given up on after their last attempt, newest first', querystring: NoQuery, response: { 200: DeadLettersReply, ...errors } }
  }, async () => ({
    durable: engine.webhooksDurable,
    deadLetters: (await engine.listDeadLetters()).map(deadLetterView)
  }))

  api.post('/api/webhooks/dead-letters/:id/retry', {
    ...base,
    schema: {
      tags,
      summary: 'Send a dead letter again: it is pending once more, its attempts starting over',
      params: DeadLetterParams,
      querystring: NoQuery,
      body: Type.Optional(NoBody),
      response: { 200: Type.Object({ retried: Type.Boolean() }), ...errors }
    }
  }, async (request) => {
    const { id } = request.params
    const principal = principalOf(request)
    if (!await engine.retryDeadLetter(id, { actor: principal.user, platform: principal.platform })) throw new WG_ERR_NOT_FOUND(`no dead letter ${id}`)
    return { retried: true }
  })

  api.delete('/api/webhooks/dead-letters/:id', {
    ...base,
    schema: {
      tags,
      summary: 'Remove a dead letter without sending it',
      params: DeadLetterParams,
      querystring: NoQuery,
      body: Type.Optional(NoBody),
      response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors }
    }
  }, async (request) => {
    const { id } = request.params
    const principal = principalOf(request)
    if (!await engine.deleteDeadLetter(id, { actor: principal.user, platform: principal.platform })) throw new WG_ERR_NOT_FOUND(`no dead letter ${id}`)
    return { deleted: true }
  })
}
