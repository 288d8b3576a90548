import { randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { hostname } from 'node:os'
import type { EventSourceMessage } from 'eventsource-parser'
import { createMemoryBackend } from '../backends/memory.js'
import { ChangeEmitter, checkRecordKey, isLive, recordExpiry, recordJson } from '../backends/shared.js'
import type {
  AuditQuery,
  BackendChange,
  BackendHealth,
  BackendRecord,
  BackendSnapshot,
  SyncStatus,
  Updater,
  WaygateBackend
} from '../backends/types.js'
import { WG_ERR_BACKEND_UNAVAILABLE, WG_ERR_OPTIONS_INVALID } from '../errors.js'
import { silentLogger, type WaygateLogger } from '../logger.js'
import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { defaultGlobalMaintenance } from '../models.js'
import type { TrafficPush } from '../traffic.js'
import { createBackoff, parseRetryAfter, type BackoffOptions } from './backoff.js'
import { readCacheFile, writeCacheFile } from './cache-file.js'
import { systemClock, type RemoteClock } from './clock.js'
import { WG_ERR_REMOTE_REJECTED, WG_ERR_REMOTE_UNAUTHORIZED, WG_ERR_REMOTE_UNSUPPORTED } from './errors.js'
import { errorOf, requestJson, type HttpAnswer } from './http.js'
import { canonicalJson, computeManifest } from './manifest.js'
import { checkChange, checkSnapshot, isMaintenance, isRouteState, type RemoteChange, type RemoteSnapshot } from './snapshot.js'
import { openEventStream, type EventStream } from './stream.js'

/** The only record namespace the server keeps for a service; other namespaces stay in this process. */
const RATE_LIMIT_NAMESPACE = 'waygate:rate-limits'
/** Rate limit records that only announce a counter reset between instances: kept local. */
const LOCAL_RECORD_PREFIX = 'reset:'
/** The namespaces of the callers sketches of deprecated routes (see callersNamespace): also sent to the server. */
const isCallersNamespace = (namespace: string): boolean => namespace.startsWith('callers:') || namespace.startsWith('callers#')
const SERVICE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/

/** Options of {@link createRemoteBackend}. */
export interface RemoteBackendOptions {
  /** Base URL of the Waygate Server, with its prefix if it has one (`http://127.0.0.1:8001`). */
  serverUrl: string
  /** This service's name (`payments-service`). */
  service: string
  /** A token for the server (`Authorization: Bearer`). */
  token?: string
  /** With `password`: log in as this user (`platform: 'sdk'`), and again when the token stops working. */
  username?: string
  password?: string
  /** Where the last snapshot is kept, so a restart during a server outage keeps the operators' changes. */
  cacheFile?: string
  /** This instance's id in the server's list of connected instances. Default host, pid and a random part. */
  instanceId?: string
  /** The version this instance reports. Default none. */
  version?: string
  /** How long `init()` waits for the first snapshot before serving what it has, ms. Default 2000. */
  readyTimeoutMs?: number
  /** No byte on the stream for this long (the server's heartbeat comes every 15 s) → reconnect, ms. Default 45000. */
  heartbeatTimeoutMs?: number
  /** Reconnect back-off: 1 s doubling to 30 s, each delay 50–100 % of its step, reset after 60 s connected. */
  backoff?: BackoffOptions
  /** With the credentials refused and no way to log in again: how often to try, ms. Default 180000. */
  unauthorizedProbeMs?: number
  /** Socket inactivity limit of a request other than the stream, ms. Default 10000. */
  requestTimeoutMs?: number
  /** How many times a write is retried when another writer changed the value meanwhile. Default 5. */
  maxWriteAttempts?: number
  /** The clock reconnects, the watchdog and the ready timeout run on. Default the system clock. */
  clock?: RemoteClock
  /** Random numbers in [0, 1) for the back-off's jitter. Default `Math.random`. */
  random?: () => number
  /** How often the waygate plugin sends this instance's per-route traffic to the server, ms (0: never). Default 10000. */
  trafficPublishMs?: number
  /** A pino-compatible logger. Default silent. */
  logger?: WaygateLogger
}

/** The backend of a service attached to a Waygate Server (see {@link createRemoteBackend}). */
export interface RemoteBackend extends WaygateBackend {
  readonly service: string
  /** How the mirror keeps up with the server. */
  syncStatus(): SyncStatus
  /** How often the waygate plugin reports this instance's traffic (0: never), ms. */
  readonly trafficPublishMs: number
  /** Sends this instance's per-route traffic to the server, replacing its previous report. */
  publishTraffic(push: TrafficPush): Promise<void>
}

function positive (value: unknown, name: string, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    problems.push(`${name} must be a positive number of milliseconds`)
    return fallback
  }
  return value
}

function clone<T> (value: T): T {
  return structuredClone(value)
}

type ConnectResult = 'ok' | 'unauthorized' | 'failed'

/**
 * A backend whose source of truth is a Waygate Server: a service's SDK. It keeps a mirror of the
 * service's state (its routes, the effective maintenance, its rate limit policies) fed by the
 * server's event stream, so `load()` and every read answer from memory and a request never waits
 * for the network. Each (re)connect's snapshot replaces the mirror and announces `resync`; each
 * change carries the server's revision and a stale or repeated one is dropped. Writes go to the
 * server with compare-and-set, retried on conflict. It survives the server being away: it keeps
 * what it has (or the cache file, or nothing, so the declared states apply), reconnects with
 * jittered back-off and never loops on refused credentials.
 */
export function createRemoteBackend (options: RemoteBackendOptions): RemoteBackend {
  const problems: string[] = []
  let base: URL | null = null
  if (typeof options?.serverUrl !== 'string' || options.serverUrl === '') {
    problems.push('serverUrl is required (the Waygate Server, e.g. http://127.0.0.1:8001)')
  } else {
    try {
      base = new URL(options.serverUrl)
      if (base.protocol !== 'http:' && base.protocol !== 'https:') problems.push(`serverUrl must be http or https, got ${base.protocol}`)
    } catch {
      problems.push(`serverUrl is not a URL: ${options.serverUrl}`)
    }
  }
  if (typeof options?.service !== 'string' || !SERVICE_NAME.test(options.service)) {
    problems.push('service must be 1 to 100 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit')
  }
  const hasCredentials = options?.username !== undefined || options?.password !== undefined
  if (hasCredentials && (typeof options.username !== 'string' || options.username === '' || typeof options.password !== 'string' || options.password === '')) {
    problems.push('username and password go together, both non-empty strings')
  }
  if (options?.token !== undefined && (typeof options.token !== 'string' || options.token === '')) problems.push('token must be a non-empty string')
  if (options?.cacheFile !== undefined && (typeof options.cacheFile !== 'string' || options.cacheFile === '')) problems.push('cacheFile must be a path')
  const readyTimeoutMs = positive(options?.readyTimeoutMs, 'readyTimeoutMs', 2000, problems)
  const heartbeatTimeoutMs = positive(options?.heartbeatTimeoutMs, 'heartbeatTimeoutMs', 45_000, problems)
  const unauthorizedProbeMs = positive(options?.unauthorizedProbeMs, 'unauthorizedProbeMs', 180_000, problems)
  const requestTimeoutMs = positive(options?.requestTimeoutMs, 'requestTimeoutMs', 10_000, problems)
  const maxWriteAttempts = positive(options?.maxWriteAttempts, 'maxWriteAttempts', 5, problems)
  const trafficPublishMs = options?.trafficPublishMs === 0 ? 0 : positive(options?.trafficPublishMs, 'trafficPublishMs', 10_000, problems)
  const backoffOptions = {
    initialMs: positive(options?.backoff?.initialMs, 'backoff.initialMs', 1000, problems),
    maxMs: positive(options?.backoff?.maxMs, 'backoff.maxMs', 30_000, problems),
    resetAfterMs: positive(options?.backoff?.resetAfterMs, 'backoff.resetAfterMs', 60_000, problems)
  }
  if (options?.clock !== undefined && (typeof options.clock?.now !== 'function' || typeof options.clock.setTimeout !== 'function' || typeof options.clock.clearTimeout !== 'function')) {
    problems.push('clock must have now, setTimeout and clearTimeout')
  }
  if (options?.random !== undefined && typeof options.random !== 'function') problems.push('random must be a function')
  if (problems.length > 0 || base === null) throw new WG_ERR_OPTIONS_INVALID(`createRemoteBackend: ${problems.join('; ')}`)

  const service = options.service
  const clock = options.clock ?? systemClock
  const logger = options.logger ?? silentLogger
  const log = { service }
  // the server's address as the status and the cache header name it: origin and prefix
  const serverUrl = `${base.origin}${base.pathname.replace(/\/+$/, '')}`
  const sdkBase = `${serverUrl}/api/sdk/services/${service}`
  // the server takes ids of [A-Za-z0-9._:-], at most 100 characters
  const instanceId = options.instanceId ??
    `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 80)}-${process.pid}-${randomBytes(3).toString('hex')}`
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
  const backoff = createBackoff(backoffOptions, options.random ?? Math.random)
  const registrationBackoff = createBackoff(backoffOptions, options.random ?? Math.random)
  const emitter = new ChangeEmitter()
  // records of other namespaces (revocations…) have no SDK endpoint: they live in this process
  const local = createMemoryBackend({ now: () => clock.now() })
  local.subscribe(change => { if (change.type === 'record') emitter.emit(change) })

  // ---- the mirror ----
  let routes = new Map<string, RouteState>()
  let routeRevisions = new Map<string, number>()
  let global = defaultGlobalMaintenance()
  let serviceMaintenance = defaultGlobalMaintenance()
  let effective = defaultGlobalMaintenance()
  let records = new Map<string, BackendRecord>()
  let epoch: string | null = null
  let revision: number | null = null
  let manifestOnServer: string | null = null
  let source: SyncStatus['source'] = 'declared'
  let lastSyncAt: number | null = null

  // ---- the connection ----
  let state: SyncStatus['state'] = 'connecting'
  let token: string | null = options.token ?? null
  let stream: EventStream | null = null
  let connecting = false
  let generation = 0
  let reconnectTimer: unknown = null
  let attempts = 0
  let everConnected = false
  let snapshotThisProcess = false
  let outageWarned = false
  let unauthorizedLogged = false
  let reloginAllowed = token !== null
  let lastProblem: string | null = null
  let closed = false
  let loginInFlight: Promise<ConnectResult> | null = null

  // ---- readiness ----
  let readyResolve: (() => void) | null = null
  const ready = new Promise<void>(resolve => { readyResolve = resolve })
  const markReady = (): void => {
    readyResolve?.()
    readyResolve = null
  }

  // ---- registration ----
  let registration: { manifest: string, states: RouteState[] } | null = null
  let registrationAcked = false
  let registrationInFlight: Promise<string[] | null> | null = null
  let registrationTimer: unknown = null

  // ---- cache file ----
  let cacheWriting: Promise<void> | null = null
  let cacheDirty = false

  function effectiveOf (): GlobalMaintenance {
    return global.enabled ? global : serviceMaintenance
  }

  function updateEffective (rev: number | undefined): void {
    const next = effectiveOf()
    if (canonicalJson(next) === canonicalJson(effective)) return
    effective = clone(next)
    emitter.emit(rev === undefined ? { type: 'global', global: clone(effective) } : { type: 'global', global: clone(effective), revision: rev })
  }

  function snapshotOfMirror (): RemoteSnapshot | null {
    if (epoch === null || revision === null) return null
    return {
      epoch,
      revision,
      service,
      routes: [...routes.values()],
      global,
      serviceMaintenance,
      rateLimits: [...records.values()],
      manifest: manifestOnServer
    }
  }

  function saveCache (): void {
    if (options.cacheFile === undefined || source !== 'server' || closed) return
    if (cacheWriting !== null) {
      cacheDirty = true
      return
    }
    const snapshot = snapshotOfMirror()
    if (snapshot === null) return
    cacheWriting = writeCacheFile(options.cacheFile, serverUrl, snapshot, new Date(clock.now()).toISOString())
      .catch(err => logger.warn({ ...log, err, cacheFile: options.cacheFile }, 'waygate: could not write the cache file'))
      .finally(() => {
        cacheWriting = null
        if (cacheDirty) {
          cacheDirty = false
          saveCache()
        }
      })
  }

  function applySnapshot (snapshot: RemoteSnapshot, from: 'server' | 'cache'): void {
    const previousRecords = records
    routes = new Map(snapshot.routes.map(s => [s.key, clone(s)]))
    routeRevisions = new Map()
    global = clone(snapshot.global)
    serviceMaintenance = clone(snapshot.serviceMaintenance)
    effective = clone(effectiveOf())
    records = new Map(snapshot.rateLimits.map(r => [r.id, clone(r)]))
    epoch = snapshot.epoch
    revision = snapshot.revision
    manifestOnServer = snapshot.manifest
    source = from
    if (from === 'server') {
      snapshotThisProcess = true
      lastSyncAt = clock.now()
      saveCache()
    }
    emitter.emit({ type: 'resync' })
    // the engine's reload carries routes and maintenance; rate limit policies follow record changes
    for (const [id, record] of records) {
      const before = previousRecords.get(id)
      if (before === undefined || canonicalJson(before) !== canonicalJson(record)) {
        emitter.emit({ type: 'record', namespace: RATE_LIMIT_NAMESPACE, id, record: clone(record) })
      }
    }
    for (const id of previousRecords.keys()) {
      if (!records.has(id)) emitter.emit({ type: 'record', namespace: RATE_LIMIT_NAMESPACE, id, record: null })
    }
    if (from === 'server') {
      sendRegistrationIfNeeded()
      markReady()
    }
  }

  function applyChange (rev: number, change: RemoteChange): void {
    if (revision !== null && rev <= revision) {
      logger.debug({ ...log, revision: rev, held: revision }, 'waygate: dropped a stale or repeated change')
      return
    }
    revision = rev
    lastSyncAt = clock.now()
    switch (change.type) {
      case 'route': {
        const key = change.state.key
        if ((routeRevisions.get(key) ?? -1) >= rev) return
        routes.set(key, clone(change.state))
        routeRevisions.set(key, rev)
        emitter.emit({ type: 'route', state: clone(change.state), revision: rev })
        break
      }
      case 'route_deleted':
        if ((routeRevisions.get(change.key) ?? -1) >= rev) return
        routeRevisions.set(change.key, rev)
        if (routes.delete(change.key)) emitter.emit({ type: 'route_deleted', key: change.key, revision: rev })
        break
      case 'global':
        global = clone(change.global)
        updateEffective(rev)
        break
      case 'service':
        serviceMaintenance = clone(change.maintenance)
        updateEffective(rev)
        break
      case 'record':
        if (change.namespace !== RATE_LIMIT_NAMESPACE) return
        if (change.record === null) records.delete(change.id)
        else records.set(change.id, clone(change.record))
        emitter.emit({ type: 'record', namespace: RATE_LIMIT_NAMESPACE, id: change.id, record: change.record === null ? null : clone(change.record), revision: rev })
        break
    }
    saveCache()
  }

  // ---- HTTP ----

  function authHeaders (): Record<string, string> {
    return token === null ? {} : { authorization: `Bearer ${token}` }
  }

  async function login (): Promise<ConnectResult> {
    loginInFlight ??= (async (): Promise<ConnectResult> => {
      let answer: HttpAnswer
      try {
        answer = await requestJson(new URL(`${serverUrl}/api/auth/login`), {
          method: 'POST',
          body: { username: options.username, password: options.password, platform: 'sdk', service },
          timeoutMs: requestTimeoutMs
        }, agents)
      } catch (err) {
        lastProblem = `login failed: ${(err as Error).message}`
        return 'failed'
      }
      const issued = (answer.body as { token?: unknown } | null)?.token
      if (answer.status === 200 && typeof issued === 'string' && issued !== '') {
        token = issued
        return 'ok'
      }
      const error = errorOf(answer.body)
      lastProblem = `login answered ${answer.status}${error.code === null ? '' : ` ${error.code}`}`
      if (answer.status === 401 || answer.status === 403 || answer.status === 400) return 'unauthorized'
      loginRetryAfter = parseRetryAfter(answer.headers['retry-after'], clock.now())
      return 'failed'
    })().finally(() => { loginInFlight = null })
    return loginInFlight
  }
  let loginRetryAfter: number | null = null

  /** A request of the SDK with the service's credentials; logs in again once if the token stopped working. */
  async function call (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown): Promise<HttpAnswer> {
    if (closed) throw new WG_ERR_BACKEND_UNAVAILABLE('the remote backend is closed')
    if (token === null && hasCredentials) await login()
    const send = async (): Promise<HttpAnswer> => {
      try {
        return await requestJson(new URL(url), { method, headers: authHeaders(), body, timeoutMs: requestTimeoutMs }, agents)
      } catch (err) {
        throw new WG_ERR_BACKEND_UNAVAILABLE(`the Waygate Server at ${serverUrl} did not answer: ${(err as Error).message}`, { cause: err })
      }
    }
    let answer = await send()
    if ((answer.status === 401) && hasCredentials) {
      token = null
      if (await login() === 'ok') answer = await send()
    }
    return answer
  }

  function failWith (answer: HttpAnswer, what: string): never {
    const error = errorOf(answer.body)
    const detail = `${what}: ${answer.status}${error.code === null ? '' : ` ${error.code}`}${error.message === null ? '' : ` (${error.message})`}`
    if (answer.status === 401 || answer.status === 403) throw new WG_ERR_REMOTE_UNAUTHORIZED(detail)
    if (answer.status === 429 || answer.status >= 500) throw new WG_ERR_BACKEND_UNAVAILABLE(detail)
    throw new WG_ERR_REMOTE_REJECTED(detail)
  }

  /** The `current` a 409 carries (in `error` or beside it); undefined when it carries none. */
  function conflictCurrent (body: unknown): unknown {
    const top = body as { current?: unknown, error?: { current?: unknown } } | null
    if (top?.error !== undefined && top.error !== null && typeof top.error === 'object' && 'current' in top.error) return top.error.current
    if (top !== null && typeof top === 'object' && 'current' in top) return top.current
    return undefined
  }

  // ---- the stream ----

  function warnOutage (obj: object, msg: string): void {
    if (outageWarned) {
      logger.debug({ ...log, ...obj }, msg)
      return
    }
    outageWarned = true
    logger.warn({ ...log, ...obj }, msg)
  }

  function scheduleReconnect (delayMs: number): void {
    if (closed || reconnectTimer !== null || stream !== null || connecting) return
    reconnectTimer = clock.setTimeout(() => {
      reconnectTimer = null
      connect()
    }, delayMs)
  }

  function failure (reason: string, retryAfterMs: number | null = null): void {
    stream = null
    connecting = false
    if (closed) return
    backoff.ended(clock.now())
    lastProblem = reason
    state = everConnected ? 'reconnecting' : 'offline'
    const delay = Math.max(backoff.next(), retryAfterMs ?? 0)
    warnOutage({ reason, retryInMs: delay, source },
      `waygate: lost the Waygate Server (${reason}); enforcing the ${source === 'declared' ? 'declared states' : `last known state (${source})`} and retrying`)
    scheduleReconnect(delay)
  }

  function unauthorized (status: number, body: unknown): void {
    stream = null
    connecting = false
    if (closed) return
    backoff.ended(clock.now())
    const error = errorOf(body)
    lastProblem = `refused: ${status}${error.code === null ? '' : ` ${error.code}`}`
    state = 'unauthorized'
    const relogin = hasCredentials && reloginAllowed
    if (!unauthorizedLogged) {
      unauthorizedLogged = true
      // the server's reason (a revoked or expired token…), bounded: it is text from the network
      const reason = error.message === null ? '' : `: ${error.message.replace(/\p{Cc}/gu, ' ').slice(0, 200)}`
      logger.error({ ...log, status, code: error.code, serverUrl },
        `waygate: the Waygate Server refused this service's credentials (${status}${error.code === null ? '' : ` ${error.code}`}${reason}); ` +
        `enforcing the last known state; ${relogin ? 'logging in again' : `trying again every ${Math.round(unauthorizedProbeMs / 1000)} s`}`)
    }
    if (hasCredentials) token = null
    reloginAllowed = false
    markReady()
    scheduleReconnect(relogin ? backoff.next() : unauthorizedProbeMs)
  }

  function connect (): void {
    if (closed || stream !== null || connecting) return
    connecting = true
    attempts++
    if (state !== 'connecting' && state !== 'unauthorized') state = everConnected ? 'reconnecting' : 'offline'
    const run = async (): Promise<void> => {
      if (token === null && hasCredentials) {
        loginRetryAfter = null
        const result = await login()
        if (closed) return
        if (result === 'unauthorized') {
          unauthorized(401, null)
          return
        }
        if (result === 'failed') {
          failure(lastProblem ?? 'login failed', loginRetryAfter)
          return
        }
      }
      openStream()
    }
    run().catch(err => failure((err as Error).message))
  }

  function openStream (): void {
    const mine = ++generation
    const url = new URL(`${sdkBase}/events`)
    url.searchParams.set('instance', instanceId)
    url.searchParams.set('host', hostname().slice(0, 255))
    if (options.version !== undefined) url.searchParams.set('version', options.version)
    url.searchParams.set('pid', String(process.pid))
    const headers = authHeaders()
    if (snapshotThisProcess && epoch !== null && revision !== null) headers['last-event-id'] = `${epoch}.${revision}`
    const current = (): boolean => mine === generation && !closed
    stream = openEventStream(url, { headers, agents, clock, idleTimeoutMs: heartbeatTimeoutMs }, {
      onOpen () {
        if (!current()) return
        connecting = false
        const wasDown = outageWarned || state === 'unauthorized'
        state = 'connected'
        everConnected = true
        backoff.opened(clock.now())
        reloginAllowed = hasCredentials
        unauthorizedLogged = false
        lastProblem = null
        if (wasDown) logger.info({ ...log, serverUrl }, 'waygate: connected to the Waygate Server again')
        outageWarned = false
      },
      onBytes () {
        if (current() && state === 'connected') lastSyncAt = clock.now()
      },
      onEvent (message) {
        if (current()) onMessage(message)
      },
      onRefused (status, resHeaders, text) {
        if (!current()) return
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {}
        if (status === 401 || status === 403) {
          unauthorized(status, body)
          return
        }
        const error = errorOf(body)
        const retryAfter = status === 429 || status === 503 ? parseRetryAfter(resHeaders['retry-after'], clock.now()) : null
        failure(`the stream answered ${status}${error.code === null ? '' : ` ${error.code}`}`, retryAfter)
      },
      onEnd (reason) {
        if (current()) failure(reason.message)
      }
    })
  }

  /** Ends the current stream and opens a new one that asks for a snapshot (a stream that broke the protocol). */
  function restartFresh (reason: string): void {
    logger.warn({ ...log, reason }, 'waygate: the Waygate Server sent something unexpected; reconnecting for a fresh snapshot')
    snapshotThisProcess = false
    stream?.close()
    failure(reason)
  }

  function onMessage (message: EventSourceMessage): void {
    if (message.event !== 'snapshot' && message.event !== 'change') return
    let data: unknown
    try {
      data = JSON.parse(message.data)
    } catch {
      restartFresh(`a ${message.event} event that is not JSON`)
      return
    }
    if (message.event === 'snapshot') {
      const problem = checkSnapshot(data)
      if (problem !== null || (data as RemoteSnapshot).service !== service) {
        restartFresh(`an invalid snapshot: ${problem ?? `it is of service ${(data as RemoteSnapshot).service}`}`)
        return
      }
      applySnapshot(data as RemoteSnapshot, 'server')
      return
    }
    const { revision: rev, change } = (data ?? {}) as { revision?: unknown, change?: unknown }
    const problem = checkChange(change)
    if (typeof rev !== 'number' || !Number.isInteger(rev) || problem !== null) {
      restartFresh(`an invalid change event: ${problem ?? 'no revision'}`)
      return
    }
    const idEpoch = message.id === undefined ? null : message.id.slice(0, Math.max(message.id.lastIndexOf('.'), 0))
    if (idEpoch !== null && idEpoch !== '' && epoch !== null && idEpoch !== epoch) {
      restartFresh(`a change of epoch ${idEpoch} while holding ${epoch}`)
      return
    }
    applyChange(rev, change as RemoteChange)
  }

  // ---- registration ----

  function sendRegistrationIfNeeded (): void {
    if (registration === null || closed) return
    if (manifestOnServer === registration.manifest && snapshotThisProcess) {
      registrationAcked = true
      return
    }
    if (registrationAcked && manifestOnServer === registration.manifest) return
    registrationAcked = false
    sendRegistration().catch(() => {})
  }

  function sendRegistration (): Promise<string[] | null> {
    if (registration === null) return Promise.resolve(null)
    if (registrationInFlight !== null) return registrationInFlight
    if (registrationTimer !== null) {
      clock.clearTimeout(registrationTimer)
      registrationTimer = null
    }
    const { manifest, states } = registration
    registrationInFlight = (async (): Promise<string[] | null> => {
      let answer: HttpAnswer
      try {
        answer = await call('POST', `${sdkBase}/register`, {
          manifest,
          instance: options.version === undefined
            ? { id: instanceId, host: hostname().slice(0, 255), pid: process.pid }
            : { id: instanceId, host: hostname().slice(0, 255), version: options.version, pid: process.pid },
          routes: states
        })
      } catch (err) {
        retryRegistration(null, (err as Error).message)
        return null
      }
      if (answer.status !== 200) {
        const error = errorOf(answer.body)
        retryRegistration(answer, `${answer.status}${error.code === null ? '' : ` ${error.code}`}`)
        return null
      }
      const body = answer.body as { added?: unknown, revision?: unknown }
      const added = Array.isArray(body.added) ? body.added.filter((k): k is string => typeof k === 'string') : []
      const rev = typeof body.revision === 'number' ? body.revision : undefined
      if (registration?.manifest === manifest) {
        registrationAcked = true
        manifestOnServer = manifest
        registrationBackoff.reset()
      }
      // own writes are seen before the write resolves; the stream's copies of them are then dropped
      for (const key of added) {
        const declared = states.find(s => s.key === key)
        if (declared === undefined || routes.has(key)) continue
        if (rev !== undefined && (routeRevisions.get(key) ?? -1) >= rev) continue
        routes.set(key, clone(declared))
        if (rev !== undefined) routeRevisions.set(key, rev)
        emitter.emit(rev === undefined ? { type: 'route', state: clone(declared) } : { type: 'route', state: clone(declared), revision: rev })
      }
      logger.debug({ ...log, manifest, added: added.length }, 'waygate: routes registered with the Waygate Server')
      return added
    })().finally(() => { registrationInFlight = null })
    return registrationInFlight
  }

  function retryRegistration (answer: HttpAnswer | null, reason: string): void {
    if (closed || registrationTimer !== null) return
    const refused = answer !== null && (answer.status === 401 || answer.status === 403)
    const retryAfter = answer === null ? null : parseRetryAfter(answer.headers['retry-after'], clock.now())
    const delay = refused ? unauthorizedProbeMs : Math.max(registrationBackoff.next(), retryAfter ?? 0)
    logger.debug({ ...log, reason, retryInMs: delay }, 'waygate: route registration not acknowledged; retrying')
    registrationTimer = clock.setTimeout(() => {
      registrationTimer = null
      if (!registrationAcked) sendRegistration().catch(() => {})
    }, delay)
  }

  // ---- records ----

  const isServerRecord = (namespace: string, id: string): boolean =>
    namespace === RATE_LIMIT_NAMESPACE && !id.startsWith(LOCAL_RECORD_PREFIX)

  const recordUrl = (id: string): string =>
    `${sdkBase}/records/${encodeURIComponent(RATE_LIMIT_NAMESPACE)}/${encodeURIComponent(id)}`

  const backend: RemoteBackend = {
    kind: 'remote',
    service,

    async init () {
      if (options.cacheFile !== undefined) {
        const read = await readCacheFile(options.cacheFile, { server: serverUrl, service })
        if (read.ok) {
          applySnapshot(read.snapshot, 'cache')
          logger.info({ ...log, cacheFile: options.cacheFile, epoch: read.header.epoch, revision: read.header.revision, savedAt: read.header.savedAt },
            'waygate: loaded the last snapshot from the cache file')
        } else if (read.problem !== null) {
          logger.warn({ ...log, cacheFile: options.cacheFile, problem: read.problem }, `waygate: ignoring the cache file: it ${read.problem}`)
        }
      }
      connect()
      let timer: unknown = null
      const timeout = new Promise<void>(resolve => { timer = clock.setTimeout(resolve, readyTimeoutMs) })
      await Promise.race([ready, timeout])
      if (timer !== null) clock.clearTimeout(timer)
      if (!snapshotThisProcess && !closed) {
        logger.info({ ...log, source, waitedMs: readyTimeoutMs },
          `waygate: no snapshot from the Waygate Server yet; serving the ${source === 'cache' ? 'cache file' : 'declared states'} until it comes`)
      }
    },

    async load (): Promise<BackendSnapshot> {
      if (source === 'declared') return { routes: [], global: null }
      const snapshot: BackendSnapshot = { routes: [...routes.values()].map(clone), global: clone(effective) }
      if (revision !== null) snapshot.revision = revision
      if (epoch !== null) snapshot.epoch = epoch
      return snapshot
    },

    async getRoute (key) {
      const held = routes.get(key)
      return held === undefined ? null : clone(held)
    },

    async updateRoute (key, updater: Updater<RouteState, RouteState | null>) {
      let current: RouteState | null = routes.get(key) ?? null
      for (let attempt = 0; attempt < maxWriteAttempts; attempt++) {
        const result = updater(current === null ? null : clone(current))
        if (result === undefined) return current === null ? null : clone(current)
        const answer = await call('PUT', `${sdkBase}/routes/${encodeURIComponent(key)}`, { base: current, next: result.next, audit: result.audit })
        if (answer.status === 200) {
          const body = answer.body as { state?: unknown, revision?: unknown }
          const stored = isRouteState(body.state) ? body.state : result.next
          const rev = typeof body.revision === 'number' ? body.revision : undefined
          if (rev === undefined || (routeRevisions.get(key) ?? -1) < rev) {
            routes.set(key, clone(stored))
            if (rev !== undefined) routeRevisions.set(key, rev)
            emitter.emit(rev === undefined ? { type: 'route', state: clone(stored) } : { type: 'route', state: clone(stored), revision: rev })
            saveCache()
          }
          return clone(stored)
        }
        if (answer.status === 409) {
          const held = conflictCurrent(answer.body)
          if (held !== undefined && held !== null && !isRouteState(held)) failWith(answer, `route ${key}`)
          current = held === undefined ? routes.get(key) ?? null : held as RouteState | null
          continue
        }
        failWith(answer, `route ${key}`)
      }
      throw new WG_ERR_BACKEND_UNAVAILABLE(`route ${key} kept changing on the Waygate Server (${maxWriteAttempts} attempts)`)
    },

    async registerRoutes (states) {
      registration = { manifest: computeManifest(states), states: states.map(clone) }
      if (snapshotThisProcess && manifestOnServer === registration.manifest) {
        registrationAcked = true
        return []
      }
      registrationAcked = false
      let timer: unknown = null
      const timeout = new Promise<null>(resolve => { timer = clock.setTimeout(() => resolve(null), readyTimeoutMs) })
      const added = await Promise.race([sendRegistration(), timeout])
      if (timer !== null) clock.clearTimeout(timer)
      return added ?? []
    },

    async deleteRoute (key) {
      throw new WG_ERR_REMOTE_UNSUPPORTED(`deleting route ${key} (remove it on the server)`)
    },

    async updateGlobal (updater: Updater<GlobalMaintenance, GlobalMaintenance>) {
      let current = serviceMaintenance
      for (let attempt = 0; attempt < maxWriteAttempts; attempt++) {
        const result = updater(clone(current))
        if (result === undefined) return clone(current)
        const answer = await call('PUT', `${sdkBase}/maintenance`, { base: current, next: result.next, audit: result.audit })
        if (answer.status === 200) {
          const body = answer.body as { state?: unknown, maintenance?: unknown, revision?: unknown }
          const stored = isMaintenance(body.state) ? body.state : isMaintenance(body.maintenance) ? body.maintenance : result.next
          serviceMaintenance = clone(stored)
          updateEffective(typeof body.revision === 'number' ? body.revision : undefined)
          saveCache()
          return clone(stored)
        }
        if (answer.status === 409) {
          const held = conflictCurrent(answer.body)
          if (held !== undefined && !isMaintenance(held)) failWith(answer, 'service maintenance')
          current = held === undefined ? serviceMaintenance : held as GlobalMaintenance
          continue
        }
        failWith(answer, 'service maintenance')
      }
      throw new WG_ERR_BACKEND_UNAVAILABLE(`the service maintenance kept changing on the Waygate Server (${maxWriteAttempts} attempts)`)
    },

    async appendAudit (entry: AuditEntry) {
      const answer = await call('POST', `${sdkBase}/audit`, entry)
      if (answer.status !== 200 && answer.status !== 201) failWith(answer, 'audit')
      return (answer.body as { written?: unknown } | null)?.written === true
    },

    async listAudit (query?: AuditQuery) {
      const url = new URL(`${sdkBase}/audit`)
      for (const [name, value] of Object.entries(query ?? {})) {
        if (value !== undefined) url.searchParams.set(name, String(value))
      }
      const answer = await call('GET', url.href)
      if (answer.status !== 200) failWith(answer, 'audit')
      const body = answer.body as AuditEntry[] | { entries?: AuditEntry[] }
      return Array.isArray(body) ? body : Array.isArray(body?.entries) ? body.entries : []
    },

    trafficPublishMs,

    async publishTraffic (push) {
      const answer = await call('PUT', `${sdkBase}/traffic/${encodeURIComponent(instanceId)}`, push)
      if (answer.status !== 200) failWith(answer, 'traffic report')
    },

    async putRecord (namespace, id, value, recordOptions) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      if (isCallersNamespace(namespace)) {
        // kept here for this instance's own admin, and sent to the server, which merges every instance's
        await local.putRecord(namespace, id, value, recordOptions)
        const expiresAt = recordExpiry(recordOptions)
        const answer = await call('PUT', `${sdkBase}/callers/${encodeURIComponent(id)}`, expiresAt === null ? { value } : { value, expiresAt })
        if (answer.status !== 200 && answer.status !== 204) failWith(answer, `callers sketch ${id}`)
        return
      }
      if (!isServerRecord(namespace, id)) return local.putRecord(namespace, id, value, recordOptions)
      const json = recordJson(value)
      const expiresAt = recordExpiry(recordOptions)
      const answer = await call('PUT', recordUrl(id), expiresAt === null ? { value } : { value, expiresAt })
      if (answer.status !== 200 && answer.status !== 204) failWith(answer, `record ${id}`)
      const record: BackendRecord = { id, value: JSON.parse(json), expiresAt }
      if (!isLive(record, clock.now())) {
        if (records.delete(id)) emitter.emit({ type: 'record', namespace, id, record: null })
        return
      }
      records.set(id, record)
      emitter.emit({ type: 'record', namespace, id, record: clone(record) })
      saveCache()
    },

    async getRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      if (!isServerRecord(namespace, id)) return local.getRecord(namespace, id)
      const held = records.get(id)
      return held === undefined || !isLive(held, clock.now()) ? null : clone(held)
    },

    async listRecords (namespace) {
      checkRecordKey(namespace, 'namespace')
      const mine = await local.listRecords(namespace)
      if (namespace !== RATE_LIMIT_NAMESPACE) return mine
      const now = clock.now()
      return [...mine, ...[...records.values()].filter(r => isLive(r, now)).map(clone)]
        .sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    },

    async deleteRecord (namespace, id) {
      checkRecordKey(namespace, 'namespace')
      checkRecordKey(id, 'id')
      if (!isServerRecord(namespace, id)) return local.deleteRecord(namespace, id)
      const answer = await call('DELETE', recordUrl(id))
      if (answer.status === 404) return false
      if (answer.status !== 200 && answer.status !== 204) failWith(answer, `record ${id}`)
      const held = records.get(id)
      if (held === undefined) return false
      records.delete(id)
      emitter.emit({ type: 'record', namespace, id, record: null })
      saveCache()
      return isLive(held, clock.now())
    },

    subscribe (listener: (change: BackendChange) => void) {
      return emitter.subscribe(listener)
    },

    async health (): Promise<BackendHealth> {
      if (state === 'connected') return { ok: true }
      return { ok: false, detail: `${state}${lastProblem === null ? '' : `: ${lastProblem}`}; enforcing the ${source === 'declared' ? 'declared states' : `last known state (${source})`}` }
    },

    syncStatus (): SyncStatus {
      const now = clock.now()
      return {
        state: closed ? 'offline' : state,
        source,
        revision,
        epoch,
        lastSync: lastSyncAt === null ? null : new Date(lastSyncAt).toISOString(),
        staleSeconds: lastSyncAt === null ? null : state === 'connected' ? 0 : Math.max(0, Math.floor((now - lastSyncAt) / 1000)),
        reconnects: Math.max(0, attempts - 1),
        serverUrl,
        service
      }
    },

    async close () {
      if (closed) return
      closed = true
      generation++
      stream?.close()
      stream = null
      for (const timer of [reconnectTimer, registrationTimer]) if (timer !== null) clock.clearTimeout(timer)
      reconnectTimer = null
      registrationTimer = null
      markReady()
      await cacheWriting
      agents.http.destroy()
      agents.https.destroy()
      emitter.clear()
      await local.close()
    }
  }
  return backend
}
