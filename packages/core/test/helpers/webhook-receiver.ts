import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** One request a receiver got. */
export interface Received {
  headers: IncomingHttpHeaders
  /** The raw body, as signatures are computed over it. */
  body: string
  json: unknown
  /** performance.now() when it arrived. */
  at: number
}

/** How a receiver answers: a status code, or `hang` to never answer. */
export type Answer = number | 'hang'

export interface WebhookReceiver {
  readonly url: string
  readonly received: Received[]
  /** Answers for the next requests, in order; once used up, `fallback` (default 200). */
  answers: Answer[]
  fallback: Answer
  /** Resolves when `count` requests have arrived; rejects after `timeoutMs`. */
  waitFor (count: number, timeoutMs?: number): Promise<Received[]>
}

/**
 * An HTTP server on 127.0.0.1 (port 0, or `port`) that records what it receives and answers as told, closed
 * when the test ends (hanging requests included).
 */
export async function startReceiver (t: Teardown, options: { answers?: Answer[], fallback?: Answer, port?: number } = {}): Promise<WebhookReceiver> {
  const sockets = new Set<Socket>()
  const received: Received[] = []
  const waiters = new Set<() => void>()
  const receiver = {
    url: '',
    received,
    answers: options.answers ?? [],
    fallback: options.fallback ?? 200,
    waitFor (count: number, timeoutMs = 3000): Promise<Received[]> {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (received.length < count) return false
          waiters.delete(check)
          clearTimeout(timer)
          resolve(received)
          return true
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`expected ${count} webhook requests within ${timeoutMs} ms, got ${received.length}`))
        }, timeoutMs)
        if (!check()) waiters.add(check)
      })
    }
  }
  const server: Server = createServer((request, response) => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', chunk => { body += chunk })
    request.on('end', () => {
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        json = undefined
      }
      received.push({ headers: request.headers, body, json, at: performance.now() })
      for (const check of [...waiters]) check()
      const answer = receiver.answers.shift() ?? receiver.fallback
      if (answer === 'hang') return
      response.writeHead(answer, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
  })
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>(resolve => server.listen(options.port ?? 0, '127.0.0.1', () => resolve()))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  t.teardown(() => new Promise<void>(resolve => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return receiver
}

/** A URL on 127.0.0.1 where nothing listens: connections are refused. */
export async function refusingUrl (): Promise<string> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return `http://127.0.0.1:${port}/hook`
}
