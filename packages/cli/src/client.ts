import { CliError } from './errors.js'
import { CLI_VERSION } from './version.js'

/** How to reach the admin API. */
export interface ClientOptions {
  /** The admin mount, e.g. `http://localhost:8000/waygate` (no trailing slash). */
  baseUrl: string
  /** Sent as `X-Waygate-Token`. */
  token: string | null
  /** Sent as `X-Waygate-Actor`; only an admin running without auth records it. */
  actor?: string
  /** The bound of one whole exchange, from the request to the last byte of the answer. Default 30 s. */
  timeoutMs?: number
  /** Receives one line per request and answer (never the token). */
  debug?: (line: string) => void
}

/** A successful answer. */
export interface ApiResponse<T> {
  status: number
  headers: Headers
  data: T
}

/** What a request may carry. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  /** Sent as JSON. A POST without it sends `{}`, so every mutation is a JSON request. */
  body?: unknown
}

/** A thin client of the admin REST API: JSON in and out, errors turned into `CliError`s. */
export interface Client {
  readonly baseUrl: string
  request<T>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>
}

const URL_HINT = 'check --server-url, WAYGATE_SERVER_URL or `waygate config set-url`: it is the admin mount, e.g. http://localhost:8000/waygate'

interface ErrorShape { error?: { code?: unknown, message?: unknown, matches?: unknown } }

/** Percent-encodes a route key for a URL path segment. */
export function encodeKey (key: string): string {
  return encodeURIComponent(key)
}

/** Creates a client of the admin API at `options.baseUrl`. */
export function createClient (options: ClientOptions): Client {
  const { baseUrl, token, debug } = options
  const timeoutMs = options.timeoutMs ?? 30_000

  async function request<T> (method: string, path: string, { query, body }: RequestOptions = {}): Promise<ApiResponse<T>> {
    let url = baseUrl + path
    if (query !== undefined) {
      const params = new URLSearchParams()
      for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value))
      const text = params.toString()
      if (text !== '') url += '?' + text
    }
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': `waygate-cli/${CLI_VERSION} node/${process.version}`,
      'x-waygate-platform': 'cli'
    }
    if (token !== null) headers['x-waygate-token'] = token
    if (options.actor !== undefined) headers['x-waygate-actor'] = options.actor
    let payload: string | undefined
    // the admin refuses mutations that are not JSON requests (a cross-site form cannot send one)
    const sent = body === undefined && method === 'POST' ? {} : body
    if (sent !== undefined) {
      payload = JSON.stringify(sent)
      headers['content-type'] = 'application/json'
    }

    debug?.(`→ ${method} ${url}${payload === undefined || path.startsWith('/api/auth/') ? '' : ' ' + payload}`)
    const started = performance.now()
    // one timer for the whole exchange: a server that sends its headers and then drips the body
    // must not hold the CLI longer than the timeout
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, timeoutMs)
    let res: Response
    let text: string
    try {
      res = await fetch(url, { method, headers, body: payload, signal: controller.signal, redirect: 'error' })
      text = await res.text()
    } catch (err) {
      throw networkError(err, baseUrl, timeoutMs, timedOut)
    } finally {
      clearTimeout(timer)
    }
    debug?.(`← ${res.status} ${res.statusText} (${Math.round(performance.now() - started)} ms)${res.ok ? '' : ' ' + text.slice(0, 500)}`)

    let data: unknown
    const isJson = (res.headers.get('content-type') ?? '').includes('json')
    if (isJson && text !== '') {
      try {
        data = JSON.parse(text)
      } catch {
        data = undefined
      }
    }
    if (!res.ok) throw apiError(res.status, data as ErrorShape | undefined, res.headers, baseUrl)
    if (data === undefined) {
      throw new CliError('WG_ERR_CLI_BAD_RESPONSE', `unexpected answer from ${baseUrl}: HTTP ${res.status} ${res.headers.get('content-type') ?? 'without a content type'}`, { hint: URL_HINT })
    }
    return { status: res.status, headers: res.headers, data: data as T }
  }

  return { baseUrl, request }
}

function networkError (err: unknown, baseUrl: string, timeoutMs: number, timedOut: boolean): CliError {
  if (timedOut) {
    return new CliError('WG_ERR_CLI_TIMEOUT', `no complete answer from ${baseUrl} within ${timeoutMs / 1000} s`, { hint: 'is the server overloaded? ' + URL_HINT, cause: err })
  }
  const cause = (err as { cause?: { code?: unknown, message?: unknown } } | null)?.cause
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (err as Error).message
  return new CliError('WG_ERR_CLI_UNREACHABLE', `cannot reach ${baseUrl} (${detail})`, { hint: URL_HINT, cause: err })
}

function apiError (status: number, body: ErrorShape | undefined, headers: Headers, baseUrl: string): CliError {
  const code = typeof body?.error?.code === 'string' ? body.error.code : undefined
  const rawMessage = typeof body?.error?.message === 'string' ? body.error.message : undefined
  if (code === undefined || rawMessage === undefined) {
    // not the admin API speaking: a wrong URL, a proxy, another app
    return new CliError('WG_ERR_CLI_BAD_RESPONSE', status === 404
      ? `no waygate admin API at ${baseUrl} (HTTP 404)`
      : `unexpected answer from ${baseUrl}: HTTP ${status}`, { hint: URL_HINT, status })
  }
  // the server's own "(run: waygate login)" becomes the hint line
  const message = rawMessage.replace(/\s*\(run: waygate login\)\s*$/, '')
  const matches = Array.isArray(body?.error?.matches) ? (body.error.matches as unknown[]).map(String) : undefined
  return new CliError(code, message, { hint: hintFor(status, code, headers, baseUrl), status, matches })
}

function hintFor (status: number, code: string, headers: Headers, baseUrl: string): string | undefined {
  if (code === 'WG_ERR_AUTH_INVALID') return 'check the username and password'
  if (status === 401) return 'run: waygate login'
  if (status === 429) {
    const wait = headers.get('retry-after')
    return wait === null ? 'wait a while and try again' : `wait ${wait} s and try again`
  }
  if (code === 'WG_ERR_ROUTE_NOT_FOUND') return 'list the routes with: waygate status'
  if (code === 'WG_ERR_ROUTE_FORCE_ACTIVE') return 'a force-active route is changed in the code, not at runtime'
  if (code === 'WG_ERR_NOT_FOUND') return `the server at ${baseUrl} does not have this endpoint; check the URL and the server's @waygate/admin version`
  if (code === 'WG_ERR_BACKEND_UNAVAILABLE') return 'the server cannot reach its state backend; check the server log'
  if (status === 400) return 'check the values given (see --help)'
  if (status >= 500) return 'a server error; see the server log'
  return undefined
}
