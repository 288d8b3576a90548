import type http from 'node:http'
import type https from 'node:https'
import type { IncomingHttpHeaders } from 'node:http'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { transportOf } from './http.js'
import type { RemoteClock } from './clock.js'

/** What an open stream reports to its owner. Nothing is reported after `close()`. */
export interface StreamHandlers {
  /** The server answered 200 with an event stream. */
  onOpen(): void
  /** The server answered with something else; `body` is its text (at most 64 KiB). */
  onRefused(status: number, headers: IncomingHttpHeaders, body: string): void
  /** A parsed server-sent event. */
  onEvent(message: EventSourceMessage): void
  /** Every byte (events, comments, heartbeats) that reached the stream. */
  onBytes(): void
  /** The stream ended or never opened (network error, watchdog). Called at most once. */
  onEnd(reason: Error): void
}

/** Options of {@link openEventStream}. */
export interface StreamOptions {
  headers: Record<string, string>
  agents: { http: http.Agent, https: https.Agent }
  clock: RemoteClock
  /** No byte for this long (ms), headers included: the stream is taken as dead. */
  idleTimeoutMs: number
}

/** A stream being read; `close()` ends it without reporting. */
export interface EventStream {
  close(): void
}

const MAX_REFUSAL_BYTES = 64 * 1024

/**
 * Reads a server-sent event stream over a plain Node request, parsed by `eventsource-parser`.
 * A watchdog on the injected clock ends a stream that stays silent (a proxy that stalls without
 * closing), from the request on, so a server that never answers is caught too.
 */
export function openEventStream (url: URL, options: StreamOptions, handlers: StreamHandlers): EventStream {
  const { module, agent } = transportOf(url, options.agents)
  let done = false
  let watchdog: unknown = null

  const finish = (reason: Error): void => {
    if (done) return
    done = true
    stopWatchdog()
    req.destroy()
    handlers.onEnd(reason)
  }
  const stopWatchdog = (): void => {
    if (watchdog !== null) options.clock.clearTimeout(watchdog)
    watchdog = null
  }
  const armWatchdog = (): void => {
    stopWatchdog()
    watchdog = options.clock.setTimeout(() => {
      watchdog = null
      finish(new Error(`no byte from the server for ${options.idleTimeoutMs} ms`))
    }, options.idleTimeoutMs)
  }

  const parser = createParser({
    onEvent: message => { if (!done) handlers.onEvent(message) }
  })

  const req = module.request(url, {
    method: 'GET',
    agent,
    headers: { accept: 'text/event-stream', 'cache-control': 'no-cache', ...options.headers }
  }, res => {
    if (done) {
      res.destroy()
      return
    }
    armWatchdog()
    const status = res.statusCode ?? 0
    const type = res.headers['content-type'] ?? ''
    if (status !== 200 || !type.toLowerCase().startsWith('text/event-stream')) {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { if (text.length < MAX_REFUSAL_BYTES) text += chunk })
      res.on('end', () => {
        if (done) return
        done = true
        stopWatchdog()
        handlers.onRefused(status === 200 ? 502 : status, res.headers, status === 200 ? `not an event stream (${type || 'no content type'})` : text)
      })
      res.on('error', err => finish(err))
      return
    }
    handlers.onOpen()
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      if (done) return
      armWatchdog()
      handlers.onBytes()
      parser.feed(chunk)
    })
    res.on('end', () => finish(new Error('the server ended the stream')))
    res.on('error', err => finish(err))
    res.on('close', () => finish(new Error('the stream closed')))
  })
  req.on('error', err => finish(err))
  req.end()
  armWatchdog()

  return {
    close () {
      if (done) return
      done = true
      stopWatchdog()
      req.destroy()
    }
  }
}
