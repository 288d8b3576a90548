/**
 * Webhooks example: every route change is posted to three receivers that live in this same app,
 * so nothing outside is needed. Change a route through /ops and watch the deliveries arrive.
 *
 *   pnpm --filter @waygate/examples webhooks
 *
 *   GET  /payments, /orders, /legacy    sample routes (maintenance, active, disabled)
 *   GET  /health                        forceActive
 *   POST /webhooks/generic              receives the default JSON payload, signed; the signature is checked
 *   POST /webhooks/slack                receives Slack incoming-webhook messages (slackWebhookFormatter)
 *   POST /webhooks/custom               receives a payload shaped by a formatter of this file
 *   GET  /webhook-log                   the last 50 deliveries as a page (refreshes every 5 s)
 *   GET  /webhook-log.json              the same, as JSON
 *   POST /ops/routes/:action            action enable | disable | maintenance, body { key, reason? }
 *   POST /ops/global/on, /ops/global/off
 *
 * The webhooks are registered once the app listens, on its own address. Deliveries go out in the
 * background: a change never waits for them. Run it on Redis (WAYGATE_BACKEND=redis
 * WAYGATE_REDIS_URL=redis://localhost:6379) in two terminals with different PORTs: a change made
 * through one instance is enforced by both and delivered once, by the instance that made it.
 *
 * The /ops routes stand in for the admin REST API (@waygate/admin): no authentication, keep them
 * on localhost. The receivers and the log are opted out of waygate, so no route state hides them.
 */
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import {
  createEngineFromEnv,
  slackWebhookFormatter,
  verifyWebhookSignature,
  type WaygateBackend,
  type WebhookFormatter
} from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface WebhooksExampleOptions {
  /** Where state lives. Default: what `WAYGATE_BACKEND` selects, memory if unset. */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
  /** The secret the generic webhook signs with. Default: `WEBHOOK_SECRET`, else a demo value. */
  secret?: string
  /** Pause before a failed delivery is tried again, ms. Default 1000. */
  retryDelayMs?: number
}

/** Who the audit log says made the changes through /ops. */
export const OPS_ACTOR = 'ops-example'

/** One delivery a receiver got, as the log shows it. */
export interface LoggedDelivery {
  receiver: 'generic' | 'slack' | 'custom'
  receivedAt: string
  /** The event name, or the Slack message's text. */
  summary: string
  /** Whether the X-Waygate-Signature matched (generic receiver only). */
  verified: boolean | null
  payload: unknown
}

const MAX_LOGGED = 50

/** Parses a receiver's body; anything that is not a JSON object is the sender's mistake, a 400. */
function jsonObject (body: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(body)
  } catch {
    value = undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw Object.assign(new Error('the body must be a JSON object'), { statusCode: 400 })
  }
  return value as Record<string, unknown>
}

/** A bespoke payload: only what this consumer needs, in its own words. */
export const customFormatter: WebhookFormatter = event => ({
  source: 'waygate',
  event: event.event,
  route: event.key,
  status: event.newStatus,
  reason: event.reason === '' ? null : event.reason,
  by: event.actor,
  at: event.timestamp
})

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML content and attribute values. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => HTML_ESCAPES[c]!)
}

function logPage (entries: readonly LoggedDelivery[]): string {
  const rows = entries.length === 0
    ? '<tr><td colspan="4" class="empty">No deliveries yet: change a route (see the curl lines printed at start).</td></tr>'
    : entries.map(entry => `<tr>
  <td class="receiver">${escapeHtml(entry.receiver)}</td>
  <td><code>${escapeHtml(entry.summary)}</code></td>
  <td>${entry.verified === null ? '' : entry.verified ? 'signature ok' : 'BAD signature'}</td>
  <td><details><summary>${escapeHtml(entry.receivedAt)}</summary><pre>${escapeHtml(JSON.stringify(entry.payload, null, 2))}</pre></details></td>
</tr>`).join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Webhook log · waygate</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111827}
p{color:#6b7280}table{width:100%;border-collapse:collapse}
th{text-align:left;background:#f3f4f6;padding:.5rem}td{padding:.5rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
.receiver{font-weight:600}.empty{text-align:center;color:#6b7280}pre{font-size:.8rem;white-space:pre-wrap}
</style>
</head>
<body>
<h1>Webhook log</h1>
<p>The last ${entries.length} of up to ${MAX_LOGGED} deliveries, newest first. Refreshes every 5 seconds.</p>
<table>
<thead><tr><th>Receiver</th><th>Event</th><th>Check</th><th>Received / payload</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</body>
</html>
`
}

const routeBody = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1, maxLength: 2048 },
    reason: { type: 'string', maxLength: 2000 }
  }
} as const

/** Builds the app without listening, so tests can `inject()` into it; the webhooks are added when it listens. */
export async function build (options: WebhooksExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const secret = options.secret ?? process.env.WEBHOOK_SECRET ?? 'example-webhook-secret-change-me'
  const engine = createEngineFromEnv({
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    logger: app.log.child({ name: 'waygate' })
  })
  await app.register(waygate, { engine, closeEngine: true })

  const log: LoggedDelivery[] = []
  function keep (entry: Omit<LoggedDelivery, 'receivedAt'>): void {
    log.unshift({ ...entry, receivedAt: new Date().toISOString() })
    log.length = Math.min(log.length, MAX_LOGGED)
  }

  // ---- the receivers: what Slack, an incident tool or your own service would run ----

  await app.register(async receivers => {
    // the signature covers the exact bytes sent, so these routes get the body as a string
    receivers.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })

    receivers.post<{ Body: string }>('/webhooks/generic', { config: { waygate: false } }, async (request, reply) => {
      if (!verifyWebhookSignature(request.body, request.headers['x-waygate-signature'], secret)) {
        return reply.code(401).send({ error: 'bad signature' })
      }
      const payload = jsonObject(request.body)
      keep({ receiver: 'generic', summary: String(payload.event), verified: true, payload })
      return { ok: true }
    })

    receivers.post<{ Body: string }>('/webhooks/slack', { config: { waygate: false } }, async (request, reply) => {
      const payload = jsonObject(request.body)
      // what Slack checks first: a text and, if any, an array of blocks
      if (typeof payload.text !== 'string' || (payload.blocks !== undefined && !Array.isArray(payload.blocks))) {
        return reply.code(400).send('invalid_payload')
      }
      keep({ receiver: 'slack', summary: payload.text, verified: null, payload })
      return reply.type('text/plain').send('ok')
    })

    receivers.post<{ Body: string }>('/webhooks/custom', { config: { waygate: false } }, async request => {
      const payload = jsonObject(request.body)
      keep({ receiver: 'custom', summary: String(payload.event), verified: null, payload })
      return { ok: true }
    })
  })

  app.get('/webhook-log', { config: { waygate: false } }, async (_request, reply) => {
    reply.type('text/html; charset=utf-8')
    return logPage(log)
  })
  app.get('/webhook-log.json', { config: { waygate: false } }, async () => log)

  // ---- sample routes: change their state to fire the webhooks ----

  app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok' }))
  app.get('/payments', { config: { waygate: { maintenance: { reason: 'Database migration' } } } }, async () => ({ payments: [] }))
  app.get('/orders', async () => ({ orders: [] }))
  app.get('/legacy', { config: { waygate: { disabled: { reason: 'Replaced by /orders' } } } }, async () => ({ legacy: true }))

  // ---- operator endpoints: what the admin REST API does ----

  app.post<{ Params: { action: string }, Body: { key: string, reason?: string } }>('/ops/routes/:action', {
    config: { waygate: false },
    schema: {
      params: { type: 'object', properties: { action: { type: 'string', enum: ['enable', 'disable', 'maintenance'] } } },
      body: routeBody
    }
  }, async request => {
    const { key, reason } = request.body
    const who = { actor: OPS_ACTOR, platform: 'api' as const }
    switch (request.params.action) {
      case 'enable': return engine.enable(key, who)
      case 'disable': return engine.disable(key, { reason, ...who })
      default: return engine.setMaintenance(key, { reason, ...who })
    }
  })
  app.post('/ops/global/on', { config: { waygate: false } },
    async () => engine.enableGlobalMaintenance({ reason: 'Deploying', exemptPaths: ['/health'], actor: OPS_ACTOR, platform: 'api' }))
  app.post('/ops/global/off', { config: { waygate: false } },
    async () => engine.disableGlobalMaintenance({ actor: OPS_ACTOR, platform: 'api' }))

  // ---- the webhooks: pointed at this app's own receivers once its address is known ----

  app.addHook('onListen', async () => {
    const address = app.server.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address === '::' ? '::1' : address.address}]` : (address.address === '0.0.0.0' ? '127.0.0.1' : address.address)
    const base = `http://${host}:${address.port}`
    const retry = options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }
    engine.addWebhook(`${base}/webhooks/generic`, { secret, ...retry })
    engine.addWebhook(`${base}/webhooks/slack`, { formatter: slackWebhookFormatter, ...retry })
    engine.addWebhook(`${base}/webhooks/custom`, { formatter: customFormatter, events: ['enable', 'disable', 'maintenance_on', 'maintenance_off'], ...retry })
  })

  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`\nwaygate webhooks example on ${url}   (backend: ${app.waygate.backend.kind})\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Open ${url}/webhook-log, then:
  curl -X POST ${url}/ops/routes/disable -H 'content-type: application/json' -d '{"key":"GET:/orders","reason":"hotfix"}'
  curl -X POST ${url}/ops/routes/enable -H 'content-type: application/json' -d '{"key":"GET:/orders"}'
  curl -X POST ${url}/ops/routes/enable -H 'content-type: application/json' -d '{"key":"GET:/payments"}'
  curl -X POST ${url}/ops/global/on
  curl -X POST ${url}/ops/global/off
  curl ${url}/webhook-log.json

Ctrl-C stops.
`)
}
