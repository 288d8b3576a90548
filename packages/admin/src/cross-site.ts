import type { FastifyRequest } from 'fastify'

/**
 * Why a request looks like it came from another site, or null when it does not. Both headers are
 * checked when both are sent: a browser's `Sec-Fetch-Site` must be `same-origin` or `none` (a
 * typed URL, a bookmark), and an `Origin` must name this very host. A request with neither is not
 * from a browser page, so nothing here can tell, and it passes.
 */
export function crossSiteReason (request: FastifyRequest): string | null {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `Sec-Fetch-Site is ${String(site).slice(0, 40)}`
  }
  const origin = request.headers.origin
  if (origin === undefined) return null
  let from: URL
  let own: string
  try {
    from = new URL(String(origin))
    // the Host header may spell out the default port the Origin leaves out, or the other way round
    own = new URL(`${from.protocol}//${request.host}`).host
  } catch {
    return `Origin ${String(origin).slice(0, 100)} is not a URL`
  }
  return from.host !== '' && from.host === own ? null : `Origin ${String(origin).slice(0, 100)} is another site`
}

const JSON_TYPE = /^application\/json\s*(;|$)/i

/**
 * Why a request that may change state is not acceptable JSON, or null. A body needs a JSON content
 * type, and so does any request that names a content type: an HTML form always does (even an empty
 * one), so a form can never reach a mutation. A request with no body and no content type passes.
 */
export function nonJsonReason (request: FastifyRequest): string | null {
  const type = request.headers['content-type']
  const length = request.headers['content-length']
  const hasBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  if (type === undefined) return hasBody ? 'a body needs Content-Type: application/json' : null
  return JSON_TYPE.test(type) ? null : `${type.slice(0, 100)} (send application/json)`
}
