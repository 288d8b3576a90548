import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { WaygateEngine } from '@waygate/core'
import { WG_ERR_REQUEST_INVALID } from '../errors.js'
import { deadLetterView } from '../routes/webhooks.js'

/** What the dead letter page needs from the dashboard that mounts it. */
export interface DeadLetterPagesOptions<S> {
  engine: WaygateEngine
  prefix: string
  routeOptions: RouteShorthandOptions
  session(request: FastifyRequest, reply: FastifyReply): Promise<S>
  page(reply: FastifyReply, template: string, data: object, user: S | null, nav?: string | null): Promise<FastifyReply>
}

const NOTICES: Record<string, string> = {
  retried: 'Sent again: the delivery is pending, its attempts starting over.',
  deleted: 'Deleted.',
  gone: 'That dead letter is gone (retried or deleted meanwhile).'
}

function idField (body: unknown): string {
  const value = (typeof body === 'object' && body !== null ? body as Record<string, unknown> : {}).id
  if (typeof value !== 'string' || !/^[0-9a-f]{32}$/.test(value)) throw new WG_ERR_REQUEST_INVALID('id: a dead letter id (32 hex digits)')
  return value
}

/**
 * The webhook dead letters page: the list, and a retry and a delete button on each (forms with
 * the session's CSRF token, checked when the dashboard authenticates the post).
 */
export function registerDeadLetterPages<S extends { user: string }> (fastify: FastifyInstance, options: DeadLetterPagesOptions<S>): void {
  const { engine, prefix, routeOptions: base } = options
  const home = `${prefix}/dead-letters`

  fastify.get('/dead-letters', base, async (request, reply) => {
    const user = await options.session(request, reply)
    const done = (request.query as Record<string, unknown> | undefined)?.done
    return options.page(reply, 'dead-letters', {
      title: 'Webhook dead letters',
      durable: engine.webhooksDurable,
      rows: (await engine.listDeadLetters()).map(deadLetterView),
      notice: typeof done === 'string' ? NOTICES[done] ?? null : null
    }, user, 'dead-letters')
  })

  for (const action of ['retry', 'delete'] as const) {
    fastify.post(`/dead-letters/${action}`, base, async (request, reply) => {
      const user = await options.session(request, reply)
      const id = idField(request.body)
      const who = { actor: user.user, platform: 'dashboard' as const }
      const found = action === 'retry' ? await engine.retryDeadLetter(id, who) : await engine.deleteDeadLetter(id, who)
      return reply.redirect(`${home}?done=${found ? (action === 'retry' ? 'retried' : 'deleted') : 'gone'}`, 303)
    })
  }
}
