/**
 * Custom responses example: answer blocked requests with your own pages instead of waygate's JSON.
 *
 *   pnpm --filter @waygate/examples custom-responses
 *
 *   GET /payments     maintenance → HTML page                      (the route's own `response`)
 *   GET /orders       maintenance → 302 redirect to /status        (the route's own `response`)
 *   GET /legacy       disabled    → plain text                     (the route's own `response`)
 *   GET /inventory    maintenance → HTML from an async factory     (plugin-wide `responses.maintenance`)
 *   GET /exports      disabled    → branded JSON                   (plugin-wide `responses.disabled`)
 *   GET /gift-cards   maintenance → its factory throws, so waygate sends its built-in JSON 503
 *   GET /status       200, the redirect target                     (forceActive)
 *   GET /health       200                                          (forceActive)
 *
 * Resolution order: the route's `response` → the plugin-wide `responses[kind]` → the built-in
 * answer. A factory works like a route handler: the status is preset (503; 404 for env-gated),
 * set headers on `reply`, return the body or send it yourself. If it throws or rejects, waygate
 * logs the error and sends the built-in response, never a 500.
 *
 * A reason is operator input and may contain markup: escape it before putting it into HTML.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createEngine, createMemoryBackend, type WaygateBackend } from '@waygate/core'
import { waygate, type WaygateResponseFactory } from '@waygate/fastify'
import { formatRouteTable } from './lib/route-table.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface CustomResponsesExampleOptions {
  /** Where state lives. Default: a memory backend. */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => HTML_ESCAPES[c]!)
}

function page (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2937}
.badge{display:inline-block;background:#fde68a;color:#78350f;border-radius:1rem;padding:.15rem .7rem;font-size:.8rem}</style></head>
<body>${body}</body>
</html>
`
}

/** The branded maintenance page of /payments. */
const maintenancePage: WaygateResponseFactory = (request, reply, block) => {
  const back = block.retryAt === null ? '' : `<p>We expect to be back at <time datetime="${escapeHtml(block.retryAt)}">${escapeHtml(block.retryAt)}</time>.</p>`
  reply.type('text/html; charset=utf-8')
  return page('Down for maintenance', `<span class="badge">maintenance</span>
<h1>We'll be right back</h1>
<p>${escapeHtml(block.reason || 'This page is being worked on.')}</p>
${back}<p>Live updates on <a href="/status">the status page</a>.</p>`)
}

/** Stands in for an async template engine or CMS lookup. */
async function renderTemplate (name: string, values: Record<string, string>): Promise<string> {
  await new Promise(resolve => setImmediate(resolve))
  const rows = Object.entries(values).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')
  return page(name, `<h1>${escapeHtml(name)}</h1><dl>${rows}</dl><p><a href="/status">Status</a></p>`)
}

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: CustomResponsesExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const engine = createEngine({ backend: options.backend ?? createMemoryBackend(), logger: app.log.child({ name: 'waygate' }) })
  await app.register(waygate, {
    engine,
    closeEngine: true,
    responses: {
      // for every route in maintenance without its own `response`, and for global maintenance
      maintenance: async (request, reply, block) => {
        const html = await renderTemplate('Temporarily unavailable', { reason: block.reason || 'maintenance', page: block.path })
        reply.type('text/html; charset=utf-8')
        return html
      },
      disabled: (request, reply, block) => {
        reply.header('cache-control', 'no-store')
        return { ok: false, problem: 'gone', detail: block.reason, see: '/status' }
      }
      // envGated is left out: env-gated routes keep answering with the app's own 404
    }
  })

  app.get('/status', { config: { waygate: { forceActive: true } } }, async () => ({
    operational: true,
    degraded: app.waygate.listRoutes().filter(r => r.status !== 'active' && !r.forceActive).map(r => r.key)
  }))
  app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok' }))

  // ---- the route's own response ----

  app.get('/payments', {
    config: { waygate: { maintenance: { reason: 'Database migration, back by 04:00 UTC' }, response: maintenancePage } }
  }, async () => ({ payments: [] }))

  app.get('/orders', {
    config: { waygate: { maintenance: { reason: 'Order service upgrade' }, response: (request, reply) => reply.redirect('/status', 302) } }
  }, async () => ({ orders: [] }))

  app.get('/legacy', {
    config: {
      waygate: {
        disabled: { reason: 'Retired: use /v2/orders' },
        response: (request, reply, block) => {
          reply.type('text/plain; charset=utf-8')
          return `Gone. ${block.reason}\n`
        }
      }
    }
  }, async () => ({ legacy: true }))

  // ---- no response of their own: the plugin-wide ones answer ----

  app.get('/inventory', { config: { waygate: { maintenance: { reason: 'Stock sync in progress' } } } },
    async () => ({ items: [] }))

  app.get('/exports', { config: { waygate: { disabled: { reason: 'Exports moved to /reports/export' } } } },
    async () => ({ exports: [] }))

  // ---- a factory that fails: the built-in JSON answer goes out instead of a 500 ----

  app.get('/gift-cards', {
    config: {
      waygate: {
        maintenance: { reason: 'Gift card provider outage' },
        response: async () => { throw new Error('template service unreachable') }
      }
    }
  }, async () => ({ giftCards: [] }))

  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`\nwaygate custom responses example on ${url}\n`)
  console.log(formatRouteTable(app.waygate))
  console.log(`
Try:
  curl -i ${url}/payments      # 503, HTML page
  curl -i ${url}/orders        # 302 to /status
  curl -i ${url}/legacy        # 503, text/plain
  curl -i ${url}/inventory     # 503, HTML from the async plugin-wide factory
  curl -i ${url}/exports       # 503, branded JSON from the plugin-wide disabled factory
  curl -i ${url}/gift-cards    # 503, built-in JSON: its factory throws (see the error log)

Ctrl-C stops.
`)
}
