import type { FastifyRequest } from 'fastify'

const SDK_ROUTES = '/api/sdk/services/:service/'

/**
 * Why a token scoped to `service` may not make this request, or null when it may. Such a token
 * reaches only `/api/sdk/services/<its service>/...`, `GET /api/auth/me` and `POST /api/auth/logout`.
 * Decided on the route's pattern and its parsed `:service`, never on the raw URL.
 */
export function scopeProblem (request: FastifyRequest, prefix: string, service: string): string | null {
  const pattern = request.routeOptions.url ?? ''
  const route = pattern.startsWith(prefix) ? pattern.slice(prefix.length) : pattern
  if ((route === '/api/auth/me' && request.method === 'GET') || (route === '/api/auth/logout' && request.method === 'POST')) return null
  if (route.startsWith(SDK_ROUTES)) {
    const asked = (request.params as { service?: unknown } | undefined)?.service
    return asked === service ? null : `a token of service "${service}" cannot act for service "${String(asked).slice(0, 100)}"`
  }
  return `a token of service "${service}" may only use /api/sdk/services/${service}/...`
}
