import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createMemoryBackend, type RouteState, type WaygateBackend } from '@waygate/core'
import { createWaygateServer, type WaygateServerOptions } from '../../src/index.js'
import { routeState } from '@waygate/core/testing'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

export const SECRET = 'test-secret-key-0123456789'

/** A listening server on loopback, with admin / secret. */
export async function startServer (t: Teardown, options: Partial<WaygateServerOptions> = {}): Promise<{ app: FastifyInstance, url: string, backend: WaygateBackend }> {
  const backend = options.backend ?? createMemoryBackend()
  const app = await createWaygateServer({
    auth: [{ username: 'admin', password: 'secret' }, { username: 'svc-user', password: 'svc-pass' }],
    secretKey: SECRET,
    dashboard: false,
    ...options,
    backend
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, backend }
}

/** JSON request through a real socket. */
export async function call (url: string, method: string, path: string, options: { token?: string, body?: unknown } = {}): Promise<{ status: number, body: any }> {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(url + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) })
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, body }
}

/** Logs in; with `service`, for a token scoped to it. */
export async function login (url: string, options: { service?: string, username?: string, password?: string } = {}): Promise<string> {
  const body: Record<string, string> = { username: options.username ?? 'admin', password: options.password ?? 'secret' }
  if (options.service !== undefined) Object.assign(body, { platform: 'sdk', service: options.service })
  const res = await call(url, 'POST', '/api/auth/login', { body })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.token
}

/** A route state as a service declares it. */
export function declared (key: string, fields: Partial<RouteState> = {}): RouteState {
  return routeState(key, { updatedAt: '2026-01-01T00:00:00.000Z', updatedBy: 'config', ...fields })
}

export async function register (url: string, service: string, token: string, keys: Array<string | RouteState>, instance = 'i-1'): Promise<{ status: number, body: any }> {
  return call(url, 'POST', `/api/sdk/services/${service}/register`, {
    token,
    body: { manifest: 'a'.repeat(64), instance: { id: instance, host: 'test-host', version: '1.0.0' }, routes: keys.map(k => typeof k === 'string' ? declared(k) : k) }
  })
}

/** One server-sent event. */
export interface SseEvent {
  event: string
  id: string | null
  data: any
}

/** A minimal event-stream reader over a real socket (tests only; the SDK uses a maintained parser). */
export interface SseClient {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly events: SseEvent[]
  readonly comments: string[]
  readonly ended: boolean
  /** Resolves the next event (after those already taken) matching `match`, or rejects after `timeoutMs`. */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>
  /** Resolves when the server ends the stream. */
  closed(timeoutMs?: number): Promise<void>
  close(): void
}

export function openStream (t: Teardown, url: string, path: string, options: { token?: string, lastEventId?: string } = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId
    const req = http.get(url + path, { headers }, res => {
      const events: SseEvent[] = []
      const comments: string[] = []
      const waiters = new Set<() => void>()
      let taken = 0
      let ended = false
      let buffer = ''
      let current: { event: string, id: string | null, data: string[] } = { event: 'message', id: null, data: [] }
      const wake = (): void => { for (const w of [...waiters]) w() }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let nl: number
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          if (line === '') {
            if (current.data.length > 0) {
              const text = current.data.join('\n')
              let data: unknown = text
              try { data = JSON.parse(text) } catch {}
              events.push({ event: current.event, id: current.id, data })
            }
            current = { event: 'message', id: null, data: [] }
          } else if (line.startsWith(':')) {
            comments.push(line.slice(1).trim())
          } else {
            const colon = line.indexOf(':')
            const field = line.slice(0, colon)
            const value = line.slice(colon + 1).replace(/^ /, '')
            if (field === 'event') current.event = value
            else if (field === 'id') current.id = value
            else if (field === 'data') current.data.push(value)
          }
        }
        wake()
      })
      const finish = (): void => { ended = true; wake() }
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', finish)
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        comments,
        get ended () { return ended },
        next (match = () => true, timeoutMs = 2000) {
          return new Promise((resolve, reject) => {
            const check = (): void => {
              while (taken < events.length) {
                const e = events[taken++]!
                if (match(e)) {
                  waiters.delete(check)
                  clearTimeout(timer)
                  resolve(e)
                  return
                }
              }
              if (ended) {
                waiters.delete(check)
                clearTimeout(timer)
                reject(new Error('the stream ended'))
              }
            }
            const timer = setTimeout(() => {
              waiters.delete(check)
              reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events.map(e => e.event))}`))
            }, timeoutMs)
            waiters.add(check)
            check()
          })
        },
        closed (timeoutMs = 2000) {
          return new Promise((resolve, reject) => {
            if (ended) { resolve(); return }
            const timer = setTimeout(() => reject(new Error(`the stream stayed open for ${timeoutMs} ms`)), timeoutMs)
            const check = (): void => {
              if (ended) { clearTimeout(timer); waiters.delete(check); resolve() }
            }
            waiters.add(check)
          })
        },
        close () { req.destroy() }
      }
      t.teardown(() => req.destroy())
      resolve(client)
    })
    req.on('error', reject)
  })
}
