import { createHash } from 'node:crypto'
import type { DeadLetter, OutboxClaim, OutboxDelivery, WebhookOutbox } from './backends/types.js'
import { WG_ERR_OPTIONS_INVALID } from './errors.js'
import { createThrottledWarn, type WaygateLogger } from './logger.js'
import type { AuditEntry, GlobalMaintenance, RouteState } from './models.js'
import { WEBHOOK_EVENTS, webhookEventOf, type WebhookEvent, type WebhookEventName } from './webhook-events.js'
import { defaultWebhookFormatter, type WebhookFormatter } from './webhook-formatters.js'
import { signWebhookBody, WEBHOOK_SIGNATURE_HEADER } from './webhook-signature.js'

/** Options of one webhook (`engine.addWebhook(url, options)`). */
export interface WebhookOptions {
  /** Builds the JSON body. Default {@link defaultWebhookFormatter}; `slackWebhookFormatter` for Slack. */
  formatter?: WebhookFormatter
  /** The events to send. Default: all of them. */
  events?: readonly WebhookEventName[]
  /** Signs each delivery with `X-Waygate-Signature` (HMAC-SHA256 of `<t>.<body>`). Default: unsigned. */
  secret?: string
  /** Extra request headers (an `Authorization` for the receiver, say). */
  headers?: Record<string, string>
  /** How long one attempt may take before it is aborted. Default 5000 ms. */
  timeoutMs?: number
  /** Attempts after the first one, on a network error, a timeout, a 5xx, 408 or 429. Default 3. */
  retries?: number
  /** Pause before the first retry; it doubles with each retry (with jitter, at most 30 s). Default 1000 ms. */
  retryDelayMs?: number
  /**
   * Deliveries that may wait for this webhook in process memory; beyond, the oldest is dropped
   * (and logged). Default 1000. Not used with a durable outbox (file and Redis backends), whose
   * deliveries wait in the backend.
   */
  maxQueueSize?: number
}

/** A webhook given as configuration: its URL and its options. */
export interface WebhookConfig extends WebhookOptions {
  url: string
}

/** Sends the changes an engine makes to webhooks, off the path of the change itself. */
export interface WebhookDispatcher {
  /** Adds a webhook; returns the function that removes it (its queued deliveries are dropped). */
  add (url: string, options?: WebhookOptions): () => void
  /**
   * Queues the deliveries of the change an audit entry records, with the state after it. Never
   * throws and never waits: delivery happens in the background.
   */
  notify (entry: AuditEntry, state: RouteState | GlobalMaintenance | null): void
  /**
   * The deliveries of a change to write with it, when the dispatcher has a durable outbox (else
   * undefined: `notify` queues them in memory). Never throws (a formatter that throws is logged).
   */
  prepare (entry: AuditEntry, state: RouteState | GlobalMaintenance | null): OutboxDelivery[] | undefined
  /** Starts sending what the outbox holds (the deliveries a crashed or stopped process left too). */
  start (): void
  /** Whether deliveries wait in the backend's outbox rather than in process memory. */
  readonly durable: boolean
  /** The dead letters of the outbox, newest first; none without one. */
  deadLetters (): Promise<DeadLetter[]>
  /** Sends a dead letter again (its attempts start over). Resolves false when there is none with that id. */
  retryDeadLetter (id: string): Promise<boolean>
  /** Removes a dead letter. Resolves whether it existed. */
  deleteDeadLetter (id: string): Promise<boolean>
  /** How many webhooks are registered. */
  readonly size: number
  /**
   * Deliveries of this process by outcome, since it started: `delivered`, `retried` (an attempt
   * failed, another follows), `failed` (given up on, in memory), `dead` (kept as a dead letter),
   * `dropped` (a full queue's oldest). For metrics.
   */
  readonly deliveries: Readonly<Record<WebhookDeliveryOutcome, number>>
  /**
   * Stops taking changes, gives queued deliveries up to `timeoutMs` to go out (one attempt each,
   * no more retries), then aborts what is left and logs how many were dropped.
   */
  close (timeoutMs?: number): Promise<void>
}

const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_RETRIES = 3
const DEFAULT_RETRY_DELAY_MS = 1000
const DEFAULT_MAX_QUEUE = 1000
const MAX_RETRY_DELAY_MS = 30_000
const DEFAULT_CLOSE_TIMEOUT_MS = 5000
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/
const RESERVED_HEADERS = new Set(['content-length', 'host', 'transfer-encoding', 'connection', WEBHOOK_SIGNATURE_HEADER])
const USER_AGENT = 'waygate-webhooks/0.1'
/** How long a claimed delivery stays with its claimer beyond its attempt's timeout: then another may take it. */
const LEASE_MARGIN_MS = 5000
/** How often the outbox is looked at when nothing says sooner (deliveries of other instances, retries). */
const OUTBOX_POLL_MS = 1000
/** Deliveries claimed at once, and at most in flight. */
const OUTBOX_CLAIM_LIMIT = 20
const OUTBOX_MAX_IN_FLIGHT = 50

interface Delivery {
  event: WebhookEvent
  body: string
}

interface Endpoint {
  /** Names the webhook in the outbox (a hash of its URL): instances with the same webhooks agree on it. */
  id: string
  url: string
  /** The URL as logs show it: a webhook URL often is a secret (Slack's are). */
  shown: string
  formatter: WebhookFormatter
  events: ReadonlySet<WebhookEventName> | null
  secret: string | null
  headers: Record<string, string>
  timeoutMs: number
  retries: number
  retryDelayMs: number
  maxQueue: number
  queue: Delivery[]
  running: boolean
  removed: boolean
}

function integerOption (value: unknown, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
    return fallback
  }
  return value
}

/** Origin and a hint of the path: enough to tell webhooks apart, not enough to call them. */
function showUrl (url: URL): string {
  const path = url.pathname.length > 1 ? '/…' : ''
  return `${url.origin}${path}`
}

function describe (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = (err as { cause?: unknown }).cause
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message
}

/** Builds an endpoint from a URL and options; throws WG_ERR_OPTIONS_INVALID listing every problem. */
function endpointOf (url: unknown, options: WebhookOptions | undefined): Endpoint {
  const problems: string[] = []
  let parsed: URL | null = null
  if (typeof url !== 'string') problems.push('url must be a string')
  else {
    try {
      parsed = new URL(url)
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        problems.push(`url must be http:// or https://, got ${parsed.protocol}`)
        parsed = null
      }
    } catch {
      problems.push(`url must be an absolute http(s) URL, got ${JSON.stringify(url.slice(0, 200))}`)
    }
  }
  const o = options ?? {}
  if (typeof o !== 'object' || o === null) throw new WG_ERR_OPTIONS_INVALID('webhook options must be an object')
  const formatter = o.formatter ?? defaultWebhookFormatter
  if (typeof formatter !== 'function') problems.push('formatter must be a function')
  let events: Set<WebhookEventName> | null = null
  if (o.events !== undefined) {
    if (!Array.isArray(o.events) || o.events.length === 0) problems.push('events must be a non-empty array of event names')
    else {
      for (const name of o.events) {
        if (!WEBHOOK_EVENTS.includes(name)) problems.push(`unknown event ${JSON.stringify(name)} (known: ${WEBHOOK_EVENTS.join(', ')})`)
      }
      events = new Set(o.events)
    }
  }
  if (o.secret !== undefined && (typeof o.secret !== 'string' || o.secret.length < 16)) {
    problems.push('secret must be a string of at least 16 characters')
  }
  const headers: Record<string, string> = {}
  if (o.headers !== undefined) {
    if (typeof o.headers !== 'object' || o.headers === null) problems.push('headers must be an object of strings')
    else {
      for (const [name, value] of Object.entries(o.headers)) {
        if (!HEADER_NAME.test(name) || RESERVED_HEADERS.has(name.toLowerCase())) problems.push(`header ${JSON.stringify(name)} cannot be set`)
        else if (typeof value !== 'string' || /[\r\n\0]/.test(value)) problems.push(`header ${name} must be a string without line breaks`)
        else headers[name.toLowerCase()] = value
      }
    }
  }
  const timeoutMs = integerOption(o.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS, 1, 120_000, problems)
  const retries = integerOption(o.retries, 'retries', DEFAULT_RETRIES, 0, 10, problems)
  const retryDelayMs = integerOption(o.retryDelayMs, 'retryDelayMs', DEFAULT_RETRY_DELAY_MS, 1, MAX_RETRY_DELAY_MS, problems)
  const maxQueue = integerOption(o.maxQueueSize, 'maxQueueSize', DEFAULT_MAX_QUEUE, 1, 100_000, problems)
  if (problems.length > 0 || parsed === null) {
    throw new WG_ERR_OPTIONS_INVALID(`webhook${parsed === null ? '' : ` ${showUrl(parsed)}`}: ${problems.join('; ')}`)
  }
  return {
    id: '',
    url: parsed.href,
    shown: showUrl(parsed),
    formatter,
    events,
    secret: o.secret ?? null,
    headers,
    timeoutMs,
    retries,
    retryDelayMs,
    maxQueue,
    queue: [],
    running: false,
    removed: false
  }
}

type Outcome = { ok: true } | { ok: false, retry: boolean, detail: string, status?: number }

/**
 * Creates the webhook dispatcher an engine uses. Deliveries go out from an in-process queue per
 * webhook, in order, through the global `fetch`: a slow or dead receiver delays only its own
 * queue, never a change or another webhook.
 */
/** What happened to a webhook delivery (see {@link WebhookDispatcher.deliveries}). */
export type WebhookDeliveryOutcome = 'delivered' | 'retried' | 'failed' | 'dead' | 'dropped'

export function createWebhookDispatcher (options: { logger: WaygateLogger, now?: () => number, outbox?: WebhookOutbox }): WebhookDispatcher {
  const logger = options.logger
  const deliveries: Record<WebhookDeliveryOutcome, number> = { delivered: 0, retried: 0, failed: 0, dead: 0, dropped: 0 }
  const outbox = options.outbox
  const warnOnce = createThrottledWarn(logger, options.now ?? Date.now)
  const endpoints = new Set<Endpoint>()
  const inFlight = new Set<AbortController>()
  const sleepers = new Set<() => void>()
  const idleWaiters = new Set<() => void>()
  /** Outbox deliveries being sent, and the endpoints by id. */
  const sending = new Set<Promise<void>>()
  const byId = new Map<string, Endpoint>()
  let pumpStarted = false
  let pumping = false
  let pumpAgain = false
  let pumpTimer: NodeJS.Timeout | null = null
  let pumpAt = Infinity
  let closing = false
  /** Set when close() gives up on what is left: those deliveries are counted once, not logged one by one. */
  let abandoned = false

  function isIdle (): boolean {
    if (sending.size > 0) return false
    for (const endpoint of endpoints) if (endpoint.running || endpoint.queue.length > 0) return false
    return true
  }

  function settle (): void {
    if (!isIdle()) return
    for (const resolve of idleWaiters) resolve()
    idleWaiters.clear()
  }

  /** Waits `ms`, or less when the dispatcher starts closing (no retry waits then). */
  function pause (ms: number): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        sleepers.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      sleepers.add(done)
    })
  }

  async function attempt (endpoint: Endpoint, delivery: { event: { id: string, event: string }, body: string }): Promise<Outcome> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${endpoint.timeoutMs} ms`)), endpoint.timeoutMs)
    timer.unref()
    inFlight.add(controller)
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'x-waygate-event': delivery.event.event,
        'x-waygate-delivery': delivery.event.id,
        ...endpoint.headers
      }
      if (endpoint.secret !== null) headers[WEBHOOK_SIGNATURE_HEADER] = signWebhookBody(delivery.body, endpoint.secret)
      const response = await fetch(endpoint.url, {
        method: 'POST',
        headers,
        body: delivery.body,
        signal: controller.signal,
        // a receiver that redirects is misconfigured; following could post the change elsewhere
        redirect: 'manual'
      })
      await response.body?.cancel().catch(() => {})
      const status = response.status
      if (status >= 200 && status < 300) return { ok: true }
      return { ok: false, retry: status >= 500 || status === 408 || status === 429, detail: `answered ${status}`, status }
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err
      return { ok: false, retry: true, detail: describe(reason) }
    } finally {
      clearTimeout(timer)
      inFlight.delete(controller)
    }
  }

  async function deliver (endpoint: Endpoint, delivery: Delivery): Promise<void> {
    let outcome: Outcome = { ok: false, retry: false, detail: 'not sent' }
    let attempts = 0
    for (;;) {
      attempts++
      outcome = await attempt(endpoint, delivery)
      if (outcome.ok || !outcome.retry || attempts > endpoint.retries || closing || endpoint.removed) break
      deliveries.retried++
      const base = endpoint.retryDelayMs * 2 ** (attempts - 1)
      await pause(Math.min(MAX_RETRY_DELAY_MS, base * (0.75 + Math.random() / 2)))
      if (closing || endpoint.removed) break
    }
    if (outcome.ok) deliveries.delivered++
    if (outcome.ok || abandoned) return
    deliveries.failed++
    logger.error({
      webhook: endpoint.shown,
      event: delivery.event.event,
      key: delivery.event.key,
      delivery: delivery.event.id,
      attempts,
      status: outcome.status,
      detail: outcome.detail
    }, 'waygate: webhook delivery failed')
  }

  async function drain (endpoint: Endpoint): Promise<void> {
    for (let next = endpoint.queue.shift(); next !== undefined; next = endpoint.queue.shift()) {
      try {
        await deliver(endpoint, next)
      } catch (err) {
        logger.error({ err, webhook: endpoint.shown }, 'waygate: webhook delivery failed')
      }
    }
  }

  function pump (endpoint: Endpoint): void {
    if (endpoint.running) return
    endpoint.running = true
    // on a later turn of the event loop: not even the first fetch's setup runs before the change resolves
    setImmediate(() => {
      drain(endpoint).finally(() => {
        endpoint.running = false
        settle()
      })
    })
  }

  function eventOf (entry: AuditEntry, state: RouteState | GlobalMaintenance | null): WebhookEvent | null {
    const name = webhookEventOf(entry)
    if (name === null) return null
    return {
      id: entry.id,
      event: name,
      key: entry.key,
      reason: entry.reason,
      timestamp: entry.timestamp,
      actor: entry.actor,
      platform: entry.platform,
      previousStatus: entry.previousStatus,
      newStatus: entry.newStatus,
      state
    }
  }

  /** The body a webhook gets for an event, or undefined when it gets none. */
  function bodyFor (endpoint: Endpoint, event: WebhookEvent): string | undefined {
    if (endpoint.events !== null && !endpoint.events.has(event.event)) return undefined
    try {
      // each formatter gets its own copy: one that mutates the event cannot change another's body
      const payload = endpoint.formatter(structuredClone(event))
      if (payload === undefined) return undefined
      return JSON.stringify(payload)
    } catch (err) {
      logger.error({ err, webhook: endpoint.shown, event: event.event }, 'waygate: webhook formatter threw; nothing sent')
      return undefined
    }
  }

  // ---- the durable outbox: deliveries wait in the backend, claimed with a lease, sent at least once ----

  function backoff (endpoint: Endpoint, attempts: number): number {
    const base = endpoint.retryDelayMs * 2 ** Math.max(0, attempts - 1)
    return Math.round(Math.min(MAX_RETRY_DELAY_MS, base * (0.75 + Math.random() / 2)))
  }

  /** Looks at the outbox in `ms` (or sooner, if already planned sooner). */
  function schedulePump (ms: number): void {
    if (outbox === undefined || !pumpStarted || closing) return
    if (pumping) {
      if (ms === 0) pumpAgain = true
      return
    }
    const at = Date.now() + ms
    if (pumpTimer !== null) {
      if (pumpAt <= at) return
      clearTimeout(pumpTimer)
    }
    pumpAt = at
    pumpTimer = setTimeout(() => {
      pumpTimer = null
      pumpAt = Infinity
      pumpOutbox().catch(() => {})
    }, ms)
    pumpTimer.unref()
  }

  async function pumpOutbox (): Promise<void> {
    if (outbox === undefined || closing) return
    pumping = true
    pumpAgain = false
    let wait = OUTBOX_POLL_MS
    try {
      const ids = [...byId.keys()]
      const room = OUTBOX_MAX_IN_FLIGHT - sending.size
      if (ids.length > 0 && room > 0) {
        let leaseMs = 0
        for (const endpoint of byId.values()) leaseMs = Math.max(leaseMs, endpoint.timeoutMs)
        const at = Date.now()
        const batch = await outbox.claim({ webhooks: ids, now: at, leaseUntil: at + leaseMs + LEASE_MARGIN_MS, limit: Math.min(room, OUTBOX_CLAIM_LIMIT) })
        for (const claim of batch.claims) track(send(claim))
        if (batch.claims.length >= Math.min(room, OUTBOX_CLAIM_LIMIT)) wait = 0
        else if (batch.nextDueAt !== null && batch.nextDueAt > at) wait = Math.min(OUTBOX_POLL_MS, batch.nextDueAt - at)
      }
    } catch (err) {
      warnOnce('webhook-outbox', { err: describe(err) }, 'waygate: cannot read the webhook outbox; deliveries wait until it answers')
    } finally {
      pumping = false
    }
    if (closing) {
      settle()
      return
    }
    schedulePump(pumpAgain ? 0 : wait)
  }

  function track (task: Promise<void>): void {
    sending.add(task)
    task.finally(() => {
      sending.delete(task)
      settle()
      // room again for claims, and a retry may be due soon
      schedulePump(0)
    }).catch(() => {})
  }

  async function record (what: string, op: () => Promise<boolean>, delivery: OutboxDelivery): Promise<void> {
    try {
      if (!await op()) {
        logger.warn({ delivery: delivery.id, webhook: delivery.target }, `waygate: webhook delivery claim ran out before it was ${what}; another attempt will follow`)
      }
    } catch (err) {
      // the lease ends and the delivery is due again: sent at least once, perhaps twice
      warnOnce('webhook-outbox-record', { err: describe(err) }, `waygate: could not record a webhook delivery as ${what}; it will be sent again`)
    }
  }

  async function send (claim: OutboxClaim): Promise<void> {
    const delivery = claim.delivery
    const endpoint = byId.get(delivery.webhook)
    if (endpoint === undefined || endpoint.removed || closing) {
      await record('released', () => outbox!.fail(claim, Date.now(), 'not sent: released', Date.now()), delivery)
      return
    }
    const outcome = await attempt(endpoint, { event: { id: delivery.eventId, event: delivery.event }, body: delivery.body })
    if (outcome.ok) {
      deliveries.delivered++
      await record('sent', () => outbox!.complete(claim), delivery)
      return
    }
    const at = Date.now()
    if (closing) {
      // aborted or failed while closing: due again at once, for the next process or another instance
      await record('released', () => outbox!.fail(claim, at, outcome.detail, at), delivery)
      return
    }
    if (outcome.retry && claim.attempts <= endpoint.retries) {
      deliveries.retried++
      await record('failed', () => outbox!.fail(claim, at + backoff(endpoint, claim.attempts), outcome.detail, at), delivery)
      return
    }
    logger.error({
      webhook: endpoint.shown,
      event: delivery.event,
      key: delivery.key,
      delivery: delivery.eventId,
      attempts: claim.attempts,
      status: outcome.status,
      detail: outcome.detail
    }, 'waygate: webhook delivery failed; kept as a dead letter')
    deliveries.dead++
    await record('dead', () => outbox!.fail(claim, null, outcome.detail, at), delivery)
  }

  return {
    get durable () {
      return outbox !== undefined
    },

    deliveries,

    add (url, webhookOptions) {
      if (closing) throw new WG_ERR_OPTIONS_INVALID('cannot add a webhook to a closed engine')
      const endpoint = endpointOf(url, webhookOptions)
      // the same URL twice gets a second id, the same on every instance configured alike
      let n = 1
      do {
        endpoint.id = createHash('sha256').update(n === 1 ? endpoint.url : `${endpoint.url}#${n}`).digest('hex').slice(0, 16)
        n++
      } while (byId.has(endpoint.id))
      endpoints.add(endpoint)
      byId.set(endpoint.id, endpoint)
      schedulePump(0)
      return () => {
        endpoint.removed = true
        endpoint.queue.length = 0
        endpoints.delete(endpoint)
        if (byId.get(endpoint.id) === endpoint) byId.delete(endpoint.id)
        settle()
      }
    },

    prepare (entry, state) {
      if (outbox === undefined || closing || endpoints.size === 0) return undefined
      const event = eventOf(entry, state)
      if (event === null) return undefined
      const deliveries: OutboxDelivery[] = []
      const createdAt = Date.now()
      for (const endpoint of endpoints) {
        const body = bodyFor(endpoint, event)
        if (body === undefined) continue
        deliveries.push({
          id: createHash('sha256').update(`${endpoint.id}\n${entry.id}`).digest('hex').slice(0, 32),
          eventId: entry.id,
          event: event.event,
          key: entry.key,
          webhook: endpoint.id,
          target: endpoint.shown,
          body,
          createdAt
        })
      }
      return deliveries.length === 0 ? undefined : deliveries
    },

    start () {
      if (outbox === undefined || pumpStarted) return
      pumpStarted = true
      schedulePump(0)
    },

    async deadLetters () {
      return outbox === undefined ? [] : outbox.listDead()
    },

    async retryDeadLetter (id) {
      if (outbox === undefined) return false
      const moved = await outbox.retryDead(id, Date.now())
      if (moved) schedulePump(0)
      return moved
    },

    async deleteDeadLetter (id) {
      return outbox === undefined ? false : outbox.deleteDead(id)
    },

    notify (entry, state) {
      if (closing || endpoints.size === 0) return
      // with an outbox the deliveries were written with the change: only look at it now
      if (outbox !== undefined) {
        schedulePump(0)
        return
      }
      const event = eventOf(entry, state)
      if (event === null) return
      for (const endpoint of endpoints) {
        const body = bodyFor(endpoint, event)
        if (body === undefined) continue
        if (endpoint.queue.length >= endpoint.maxQueue) {
          endpoint.queue.shift()
          deliveries.dropped++
          warnOnce(`webhook-queue:${endpoint.url}`, { webhook: endpoint.shown, maxQueueSize: endpoint.maxQueue },
            'waygate: webhook queue full (the receiver is slow or down); dropping the oldest deliveries')
        }
        endpoint.queue.push({ event, body })
        pump(endpoint)
      }
    },

    get size () {
      return endpoints.size
    },

    async close (timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS) {
      if (closing) return
      closing = true
      if (pumpTimer !== null) clearTimeout(pumpTimer)
      pumpTimer = null
      for (const wake of [...sleepers]) wake()
      if (!isIdle()) {
        let timer: NodeJS.Timeout | undefined
        const drained = await Promise.race([
          new Promise<boolean>(resolve => idleWaiters.add(() => resolve(true))),
          new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), timeoutMs) })
        ])
        clearTimeout(timer)
        if (!drained) {
          let dropped = 0
          for (const endpoint of endpoints) {
            dropped += endpoint.queue.length
            endpoint.queue.length = 0
          }
          if (outbox === undefined) dropped += inFlight.size
          abandoned = true
          for (const controller of inFlight) controller.abort(new Error('the engine is closing'))
          if (outbox === undefined) logger.warn({ dropped }, 'waygate: webhook deliveries dropped at close (receivers too slow)')
          else {
            // the aborted ones are released in the outbox, for the next process: wait for that, briefly
            let release: NodeJS.Timeout | undefined
            await Promise.race([
              Promise.allSettled([...sending]),
              new Promise(resolve => { release = setTimeout(resolve, 2000) })
            ])
            clearTimeout(release)
          }
        }
      }
      endpoints.clear()
      byId.clear()
    }
  }
}
