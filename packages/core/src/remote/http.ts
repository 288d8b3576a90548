import http from 'node:http'
import https from 'node:https'
import type { IncomingHttpHeaders } from 'node:http'

/** A JSON answer of the server: its status, headers and body (parsed when JSON, else the text). */
export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: unknown
}

/** A request of the SDK to the server. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  headers?: Record<string, string>
  body?: unknown
  /** Socket inactivity limit, ms. */
  timeoutMs: number
}

/** Longest answer body read, bytes: the SDK's answers are small. */
const MAX_BODY_BYTES = 8 * 1024 * 1024

/** The agent module and agent for a URL's protocol. */
export function transportOf (url: URL, agents: { http: http.Agent, https: https.Agent }): { module: typeof http | typeof https, agent: http.Agent } {
  return url.protocol === 'https:' ? { module: https, agent: agents.https } : { module: http, agent: agents.http }
}

/** Sends one JSON request; rejects only when no answer came (network, timeout, an answer too large). */
export function requestJson (url: URL, request: HttpRequest, agents: { http: http.Agent, https: https.Agent }): Promise<HttpAnswer> {
  const { module, agent } = transportOf(url, agents)
  const payload = request.body === undefined ? undefined : JSON.stringify(request.body)
  const headers: Record<string, string> = { accept: 'application/json', ...request.headers }
  if (payload !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(payload))
  }
  return new Promise((resolve, reject) => {
    const req = module.request(url, { method: request.method, headers, agent }, res => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_BODY_BYTES) {
          req.destroy(new Error(`the answer is larger than ${MAX_BODY_BYTES} bytes`))
          return
        }
        chunks.push(chunk)
      })
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        if (text !== '' && /json/i.test(res.headers['content-type'] ?? '')) {
          try {
            body = JSON.parse(text)
          } catch {
            // a broken body stays text; the caller judges by the status
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
      res.on('error', reject)
    })
    req.setTimeout(request.timeoutMs, () => { req.destroy(new Error(`no answer within ${request.timeoutMs} ms`)) })
    req.on('error', reject)
    req.end(payload)
  })
}

/** The `{ error: { code, message } }` of an error answer, as far as it is there. */
export function errorOf (body: unknown): { code: string | null, message: string | null } {
  const error = (body as { error?: { code?: unknown, message?: unknown } } | null)?.error
  return {
    code: typeof error?.code === 'string' ? error.code : null,
    message: typeof error?.message === 'string' ? error.message : null
  }
}
