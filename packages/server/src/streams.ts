import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { defaultGlobalMaintenance, GLOBAL_KEY, RATE_LIMIT_NAMESPACE, type BackendRecord, type EngineEvent, type GlobalMaintenance, type RemoteChange, type RemoteSnapshot, type RouteState, type WaygateEngine } from '@waygate/core'
import { REVOKED_NAMESPACE, type SseStream } from '@waygate/admin'
import type { Fleet } from './fleet.js'
import type { ConnectedInstance, InstanceDetails, InstanceRegistry } from './instances.js'
import { createReplayLog, type LoggedChange, type ServerChange } from './replay-log.js'
import {
  recordForService,
  SERVER_NAMESPACE,
  SERVICE_MAINTENANCE_NAMESPACE,
  serviceOfKey,
  unqualify,
  unqualifyState
} from './wire.js'

/** A service's snapshot on the wire: its routes with plain keys, and everything that applies to it (the SDK reads the same shape). */
export type ServiceSnapshot = RemoteSnapshot

/** One change on the wire, as a service gets it (its keys plain). */
export type WireChange = RemoteChange

/** What a stream was opened with. */
export interface StreamRequest {
  service: string
  /** The id of the token that opened it (closed when the token is revoked), or null. */
  tokenId: string | null
  instanceId: string | null
  /** Host, version and pid the instance reported on the stream's query, or null. */
  instanceDetails?: InstanceDetails | null
  /** `<epoch>.<revision>` the client holds, or null. */
  resumeFrom: string | null
}

/** Options of {@link createStreamHub}. */
export interface StreamHubOptions {
  engine: WaygateEngine
  fleet: Fleet
  instances: InstanceRegistry
  log: FastifyBaseLogger
  heartbeatMs: number
  replayLogSize: number
}

/** The services' event streams: one engine subscription, a replay log, and every open stream. */
export interface StreamHub {
  /** Reads (or creates) the epoch and follows the engine. */
  start(): Promise<void>
  /** Ends every stream. */
  close(): Promise<void>
  readonly epoch: string
  /** How many streams are open. */
  readonly size: number
  snapshotFor(service: string): ServiceSnapshot
  /** Serves a stream: a snapshot or the replay of what the client missed, then live changes. */
  serve(sse: SseStream, request: StreamRequest): void
}

interface OpenStream {
  sse: SseStream
  service: string
  tokenId: string | null
  instanceId: string | null
  instanceDetails: InstanceDetails | null
  /** Its entry in the instance registry, when it named its instance. */
  instance: ConnectedInstance | null
  revision: number
}

/** Parses `<epoch>.<revision>`; null when malformed. */
export function parseEventId (id: string | null | undefined): { epoch: string, revision: number } | null {
  if (typeof id !== 'string') return null
  const dot = id.lastIndexOf('.')
  if (dot <= 0) return null
  const revision = Number(id.slice(dot + 1))
  if (!/^\d{1,15}$/.test(id.slice(dot + 1)) || !Number.isSafeInteger(revision)) return null
  return { epoch: id.slice(0, dot), revision }
}

/** The service a stored change concerns; `*` for every service; null for none. */
function audienceOf (change: ServerChange): string | null {
  switch (change.type) {
    case 'route': return serviceOfKey(change.state.key)
    case 'route_deleted': return serviceOfKey(change.key)
    case 'global': return GLOBAL_KEY
    case 'service': return change.service
    case 'record': {
      const id = change.id.startsWith('reset:') ? change.id.slice(6) : change.id
      if (id === GLOBAL_KEY) return GLOBAL_KEY
      if (id.startsWith('@service:')) return id.slice(9)
      return serviceOfKey(id)
    }
  }
}

/** A stored change as `service` gets it, or null when it is none of its business. */
function wireChange (service: string, change: ServerChange): WireChange | null {
  switch (change.type) {
    case 'route': return { type: 'route', state: unqualifyState(service, change.state) }
    case 'route_deleted': {
      const key = unqualify(service, change.key)
      return key === null ? null : { type: 'route_deleted', key }
    }
    case 'global': return change
    case 'service': return change.service === service ? { type: 'service', maintenance: change.maintenance } : null
    case 'record': {
      if (change.record === null) {
        const probe = recordForService(service, { id: change.id, value: null, expiresAt: null })
        return probe === null ? null : { type: 'record', namespace: change.namespace, id: probe.id, record: null }
      }
      const record = recordForService(service, change.record)
      return record === null ? null : { type: 'record', namespace: change.namespace, id: record.id, record }
    }
  }
}

export function createStreamHub (options: StreamHubOptions): StreamHub {
  const { engine, fleet, instances, log, heartbeatMs } = options
  const log_ = createReplayLog(options.replayLogSize)
  const byService = new Map<string, Set<OpenStream>>()
  const byToken = new Map<string, Set<OpenStream>>()
  let epoch = ''
  let storedEpoch: string | null = null
  // the newest revision any event carried: a reload that moved past it applied changes unseen
  let seen = 0
  let unsubscribe: (() => void) | null = null
  let heartbeat: NodeJS.Timeout | null = null
  let count = 0

  function id (revision: number): string {
    return `${epoch}.${revision}`
  }

  function snapshotFor (service: string): ServiceSnapshot {
    const stored = engine.storedSnapshot()
    const routes: RouteState[] = []
    for (const state of stored.routes) {
      if (serviceOfKey(state.key) === service) routes.push(unqualifyState(service, state))
    }
    const rateLimits: BackendRecord[] = []
    for (const record of fleet.rateLimitRecords()) {
      if (record.id.startsWith('reset:')) continue
      const mine = recordForService(service, record)
      if (mine !== null) rateLimits.push(mine)
    }
    return {
      epoch,
      revision: stored.revision,
      service,
      routes,
      global: stored.global,
      serviceMaintenance: fleet.maintenanceOf(service),
      rateLimits,
      manifest: fleet.manifestOf(service)
    }
  }

  function sendSnapshot (stream: OpenStream): void {
    const snapshot = snapshotFor(stream.service)
    stream.revision = snapshot.revision
    stream.sse.send('snapshot', snapshot, id(snapshot.revision))
  }

  /** Every stream gets a fresh snapshot: the history it could resume from is gone. */
  function restartHistory (why: string): void {
    log_.reset(engine.revision)
    seen = engine.revision
    if (count > 0) log.info({ streams: count, why }, 'waygate server: sending every stream a fresh snapshot')
    for (const streams of byService.values()) for (const stream of streams) sendSnapshot(stream)
  }

  function storedChangeOf (event: EngineEvent): ServerChange | null {
    switch (event.type) {
      case 'route_changed': return { type: 'route', state: event.stored }
      case 'route_removed': return { type: 'route_deleted', key: event.key }
      case 'global_changed': return { type: 'global', global: event.global }
      case 'record_changed':
        if (event.namespace === SERVICE_MAINTENANCE_NAMESPACE) {
          const value = event.record?.value as GlobalMaintenance | undefined
          return { type: 'service', service: event.id, maintenance: value ?? defaultGlobalMaintenance() }
        }
        if (event.namespace === RATE_LIMIT_NAMESPACE) return { type: 'record', namespace: event.namespace, id: event.id, record: event.record }
        return null
      default: return null
    }
  }

  function dispatch (entry: LoggedChange | { revision: null, change: ServerChange }): void {
    const audience = audienceOf(entry.change)
    if (audience === null) return
    const targets = audience === GLOBAL_KEY ? [...byService.keys()] : byService.has(audience) ? [audience] : []
    for (const service of targets) {
      const change = wireChange(service, entry.change)
      if (change === null) continue
      const revision = entry.revision ?? engine.revision
      const eventId = id(revision)
      // one serialisation per service, however many of its instances listen
      const data = JSON.stringify({ revision, change })
      for (const stream of byService.get(service) ?? []) {
        stream.revision = revision
        stream.sse.send('change', data, eventId)
      }
    }
  }

  function onEvent (event: EngineEvent): void {
    if (event.type === 'record_changed' && event.namespace === REVOKED_NAMESPACE && event.record !== null) {
      for (const stream of byToken.get(event.id) ?? []) stream.sse.close()
      return
    }
    if (event.type === 'record_changed' && event.namespace === SERVER_NAMESPACE && event.id === 'epoch' && storedEpoch === null) {
      // another server instance won the race to create the epoch: adopt it
      const value = (event.record?.value as { epoch?: unknown } | undefined)?.epoch
      if (typeof value === 'string' && value !== epoch) {
        epoch = value
        restartHistory('epoch adopted')
      }
      return
    }
    if (event.type === 'resynced') {
      const stored = engine.storedSnapshot().epoch
      if (stored !== null && stored !== epoch) {
        epoch = stored
        storedEpoch = stored
        restartHistory('the backend\'s history restarted')
      } else if (engine.revision > seen) {
        restartHistory('a reload applied changes no event announced')
      }
      fleet.reload().catch(err => log.warn({ err }, 'waygate server: reloading the services\' records failed'))
      return
    }
    // audit and window events carry no revision and are nothing a service is sent
    const revision = 'revision' in event ? event.revision : null
    if (revision !== null && revision > seen) seen = revision
    const change = storedChangeOf(event)
    if (change === null) return
    if (revision === null) {
      dispatch({ revision: null, change })
      return
    }
    const entry = { revision, change }
    log_.append(entry)
    dispatch(entry)
  }

  function beat (): void {
    for (const streams of byService.values()) {
      for (const stream of streams) {
        if (stream.sse.comment('hb')) stream.instance?.beat()
      }
    }
    // one write of this process's instances per heartbeat, however many streams it serves
    instances.flush()
  }

  async function loadEpoch (): Promise<void> {
    const fromBackend = engine.storedSnapshot().epoch
    if (fromBackend !== null) {
      epoch = fromBackend
      storedEpoch = fromBackend
      return
    }
    // the backend keeps no epoch of its own: the server keeps one in a record, so a memory backend
    // gets a new one at each start and a file or Redis store keeps it while it keeps its revisions
    try {
      const record = await engine.backend.getRecord(SERVER_NAMESPACE, 'epoch')
      const value = (record?.value as { epoch?: unknown } | undefined)?.epoch
      if (typeof value === 'string' && value !== '' && !value.includes('.')) {
        epoch = value
        return
      }
      epoch = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')
      await engine.backend.putRecord(SERVER_NAMESPACE, 'epoch', { epoch, createdAt: new Date(engine.now()).toISOString() })
    } catch (err) {
      epoch = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')
      log.warn({ err }, 'waygate server: could not store the epoch; services resume with a snapshot after a restart')
    }
  }

  return {
    get epoch () { return epoch },
    get size () { return count },

    async start () {
      unsubscribe = engine.subscribe(onEvent)
      await loadEpoch()
      log_.reset(engine.revision)
      seen = engine.revision
      heartbeat = setInterval(beat, heartbeatMs)
      heartbeat.unref()
    },

    async close () {
      unsubscribe?.()
      unsubscribe = null
      if (heartbeat !== null) clearInterval(heartbeat)
      heartbeat = null
      for (const streams of [...byService.values()]) for (const stream of [...streams]) stream.sse.close()
    },

    snapshotFor,

    serve (sse, request) {
      const stream: OpenStream = {
        sse,
        service: request.service,
        tokenId: request.tokenId,
        instanceId: request.instanceId,
        instanceDetails: request.instanceDetails ?? null,
        instance: null,
        revision: 0
      }
      const group = byService.get(stream.service) ?? new Set()
      byService.set(stream.service, group)
      group.add(stream)
      count++
      if (stream.tokenId !== null) {
        const tokens = byToken.get(stream.tokenId) ?? new Set()
        byToken.set(stream.tokenId, tokens)
        tokens.add(stream)
      }
      sse.onClose(() => {
        count--
        group.delete(stream)
        if (group.size === 0 && byService.get(stream.service) === group) byService.delete(stream.service)
        if (stream.tokenId !== null) {
          const tokens = byToken.get(stream.tokenId)
          tokens?.delete(stream)
          if (tokens?.size === 0) byToken.delete(stream.tokenId)
        }
        stream.instance?.disconnect()
      })

      // everything below runs in one turn, so no change can fall between the snapshot and the feed
      const resume = parseEventId(request.resumeFrom)
      const current = engine.revision
      const missed = resume !== null && resume.epoch === epoch && resume.revision <= current ? log_.after(resume.revision) : null
      if (missed === null) {
        sendSnapshot(stream)
      } else {
        stream.revision = resume!.revision
        for (const entry of missed) {
          const change = wireChange(stream.service, entry.change)
          const audience = audienceOf(entry.change)
          if (change === null || (audience !== GLOBAL_KEY && audience !== stream.service)) continue
          stream.revision = entry.revision
          sse.send('change', { revision: entry.revision, change }, id(entry.revision))
        }
      }
      if (stream.instanceId !== null && !sse.closed) {
        stream.instance = instances.connect(stream.service, stream.instanceId, new Date(engine.now()).toISOString(), () => stream.revision, stream.instanceDetails)
      }
    }
  }
}
