import { createHmac, timingSafeEqual } from 'node:crypto'

/** The header a signed webhook delivery carries: `t=<unix seconds>,v1=<hex HMAC-SHA256>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-waygate-signature'

/** How far a signature's timestamp may be from the receiver's clock by default, in seconds. */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300

function hmac (secret: string, timestamp: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest()
}

/**
 * Signs a webhook body: the value of `X-Waygate-Signature`, `t=<unix seconds>,v1=<hex>` where
 * the hex is the HMAC-SHA256, keyed with `secret`, of `"<t>.<body>"`. The timestamp inside the
 * signed text lets receivers refuse replays of old deliveries.
 */
export function signWebhookBody (body: string | Uint8Array, secret: string, timestampSeconds = Math.floor(Date.now() / 1000)): string {
  return `t=${timestampSeconds},v1=${hmac(secret, timestampSeconds, body).toString('hex')}`
}

/**
 * Checks the `X-Waygate-Signature` header of a delivery against the raw body as received (before
 * any JSON parsing) and the shared secret. True when one `v1` signature matches and the timestamp
 * is within `toleranceSeconds` of `nowMs`; false for anything else, malformed headers included.
 *
 * @example
 * app.post('/hooks/waygate', { config: { rawBody: true } }, async (request, reply) => {
 *   if (!verifyWebhookSignature(request.rawBody, request.headers['x-waygate-signature'], secret)) {
 *     return reply.code(401).send()
 *   }
 *   ...
 * })
 */
export function verifyWebhookSignature (
  body: string | Uint8Array,
  header: string | string[] | null | undefined,
  secret: string,
  toleranceSeconds = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  nowMs = Date.now()
): boolean {
  if (typeof header !== 'string' || typeof secret !== 'string' || secret === '' || header.length > 4096) return false
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return false
  let timestamp: number | null = null
  const signatures: Buffer[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    const name = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (name === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value)
    else if (name === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(Buffer.from(value, 'hex'))
  }
  if (timestamp === null || signatures.length === 0) return false
  if (!(toleranceSeconds >= 0) || Math.abs(nowMs / 1000 - timestamp) > toleranceSeconds) return false
  const expected = hmac(secret, timestamp, body)
  // every candidate is compared, so timing does not tell which one matched
  let match = false
  for (const signature of signatures) if (timingSafeEqual(signature, expected)) match = true
  return match
}
