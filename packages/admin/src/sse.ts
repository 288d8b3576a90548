import type { FastifyReply } from 'fastify'

/** Default bound on what one event-stream client may have buffered, in bytes (1 MiB). */
export const DEFAULT_SSE_MAX_BUFFER_BYTES = 1024 * 1024

/** Options of {@link createSseStream}. */
export interface SseStreamOptions {
  /**
   * Bytes the server may hold for this client (its response and socket buffers) before the client
   * counts as too slow and is dropped. Default 1 MiB.
   */
  maxBufferBytes?: number
  /** Interval of `: keep-alive` comments, in ms; 0 turns them off. Default 15000. */
  heartbeatMs?: number
  /** Reconnection delay sent as `retry:` first, in ms; omitted when undefined. */
  retryMs?: number
  /** Extra response headers, sent with the SSE ones. */
  headers?: Record<string, string>
  /** Where the drop of a slow client is reported, once per stream. Pino-compatible. */
  log?: { warn(obj: object, msg: string): void }
}

/** An open server-sent-events response with a bounded buffer. */
export interface SseStream {
  /**
   * Sends one event; `data` is sent as is when a string, else as JSON. Returns false when the
   * stream is closed (or was just closed because the client fell too far behind).
   */
  send(event: string, data: unknown, id?: string | number): boolean
  /** Sends a comment line (a heartbeat by default), under the same bound. */
  comment(text?: string): boolean
  /** Ends the stream; idempotent. */
  close(): void
  /** True once the stream ended, whoever ended it. */
  readonly closed: boolean
  /** Calls `listener` once when the stream ends: closed here, dropped, or gone on the client side. */
  onClose(listener: () => void): void
}

// event names and ids are one line each; anything that could end the field is cut out
function field (value: string): string {
  return value.replace(/[\r\n\0]/g, '')
}

/**
 * Takes over a Fastify reply and turns it into a server-sent-events stream. The headers go out at
 * once; a client that stops reading is dropped (and logged) as soon as what is waiting for it passes
 * `maxBufferBytes`, so a stalled reader costs bounded memory however much is sent.
 *
 * @example
 * const stream = createSseStream(reply, { maxBufferBytes: 1 << 20, heartbeatMs: 15_000 })
 * const unsubscribe = engine.subscribe(e => stream.send(e.type, e, e.version))
 * stream.onClose(unsubscribe)
 */
export function createSseStream (reply: FastifyReply, options: SseStreamOptions = {}): SseStream {
  const maxBufferBytes = options.maxBufferBytes ?? DEFAULT_SSE_MAX_BUFFER_BYTES
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const raw = reply.raw
  const listeners: Array<() => void> = []
  let closed = false
  let heartbeat: NodeJS.Timeout | undefined

  reply.hijack()
  raw.writeHead(200, {
    ...options.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no'
  })
  raw.flushHeaders()

  function finish (): void {
    if (closed) return
    closed = true
    if (heartbeat !== undefined) clearInterval(heartbeat)
    for (const listener of listeners.splice(0)) {
      try {
        listener()
      } catch {
        // a listener's failure must not keep the others from running
      }
    }
  }

  function write (text: string): boolean {
    if (closed || raw.destroyed) {
      finish()
      return false
    }
    raw.write(text)
    // the response's own buffer plus its socket's: everything the client has not taken yet
    const buffered = raw.writableLength
    if (buffered > maxBufferBytes) {
      options.log?.warn({ bufferedBytes: buffered, maxBufferBytes }, 'waygate admin: slow event-stream client dropped')
      finish()
      // destroy, not end: ending would keep the whole backlog in memory until it drains
      raw.destroy()
      return false
    }
    return true
  }

  // the response closes when the stream ends on either side, the client's socket included
  raw.on('close', finish)

  if (options.retryMs !== undefined) write(`retry: ${Math.max(0, Math.floor(options.retryMs))}\n\n`)
  if (heartbeatMs > 0) {
    heartbeat = setInterval(() => write(': keep-alive\n\n'), heartbeatMs)
    heartbeat.unref()
  }

  return {
    send (event, data, id) {
      const text = typeof data === 'string' ? data : JSON.stringify(data)
      let frame = id === undefined ? '' : `id: ${field(String(id))}\n`
      frame += `event: ${field(event)}\n`
      for (const line of text.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`
      return write(frame + '\n')
    },
    comment (text = 'keep-alive') {
      return write(`: ${field(text)}\n\n`)
    },
    close () {
      if (closed) return
      finish()
      raw.end()
    },
    get closed () {
      return closed
    },
    onClose (listener) {
      if (closed) listener()
      else listeners.push(listener)
    }
  }
}
