import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendRecord, WaygateEngine } from '@waygate/core'
import { disconnectedKeepMs } from '@waygate/admin'
import type { Fleet, ServiceInstance } from './fleet.js'
import { SERVICE_INSTANCES_NAMESPACE } from './wire.js'

/**
 * The record one server process keeps in `waygate:service-instances`: id = its server id, value =
 * every instance connected to it (or registered through it and not yet connected).
 */
export interface ServerInstancesRecord {
  server: string
  host: string
  pid: number
  writtenAt: string
  instances: ServiceInstance[]
}

/** What a service tells of an instance when it registers. */
export interface InstanceDetails {
  id: string
  host: string | null
  version: string | null
  pid: number | null
}

/** One stream of an instance, as the registry holds it while it is open. */
export interface ConnectedInstance {
  /** A heartbeat reached the stream. */
  beat(): void
  /** The stream ended. */
  disconnect(): void
}

/** Options of {@link createInstanceRegistry}. */
export interface InstanceRegistryOptions {
  engine: WaygateEngine
  fleet: Fleet
  log: FastifyBaseLogger
  heartbeatMs: number
  /** Delay after a connect, disconnect or registration before the record is written (coalesced). Default min(1000, heartbeatMs). */
  debounceMs?: number
  /** How long an instance whose stream closed stays listed, disconnected. Default 60 s or three heartbeats, the larger, at most 10 min. */
  disconnectedMs?: number
}

/**
 * The instances connected to this server process, held in memory. The backend gets one record
 * per process, written at most once per heartbeat (the heartbeat calls {@link InstanceRegistry.flush})
 * plus once shortly after connects and disconnects, however many instances there are; it expires
 * after three heartbeats, so a process that dies takes its instances with it.
 *
 * An instance whose stream closes (a crash, a kill, a shutdown or a dropped connection: the server
 * cannot tell them apart) stays in the list and the record with `disconnectedAt` for
 * `disconnectedMs`, then goes; opening a stream again under the same id lists it connected at once.
 */
export interface InstanceRegistry {
  /** This process's id: the id of its record. */
  readonly serverId: string
  registered(service: string, details: InstanceDetails): void
  /** An instance's stream opened; `revision` reads the revision it was last sent. */
  connect(service: string, id: string, connectedSince: string, revision: () => number, given?: InstanceDetails | null): ConnectedInstance
  /** Writes this process's record now (or deletes it when no instance is left). */
  flush(): void
  /** Every server process's instances, this one's as they are now, of one service or all. */
  list(service?: string): ServiceInstance[]
  /** Stops writing and removes this process's record. */
  close(): Promise<void>
}

interface Stream {
  service: string
  id: string
  connectedSince: string
  lastHeartbeat: string
  revision: () => number
}

const MAX_DETAILS = 10_000

function keyOf (service: string, id: string): string {
  return `${service}/${id}`
}

function text (value: unknown): string | null {
  return typeof value === 'string' ? value : null
}

function count (value: unknown): number | null {
  return typeof value === 'number' ? value : null
}

/** The instances of another process's record, checked field by field (it is data from the backend). */
function instancesOf (record: BackendRecord): ServiceInstance[] {
  const list = (record.value as { instances?: unknown } | null)?.instances
  if (!Array.isArray(list)) return []
  const out: ServiceInstance[] = []
  for (const item of list as Array<Record<string, unknown> | null>) {
    if (typeof item?.service !== 'string' || typeof item.id !== 'string' || typeof item.lastHeartbeat !== 'string') continue
    out.push({
      id: item.id,
      service: item.service,
      host: text(item.host),
      version: text(item.version),
      pid: count(item.pid),
      connectedSince: text(item.connectedSince),
      lastHeartbeat: item.lastHeartbeat,
      revision: count(item.revision),
      disconnectedAt: text(item.disconnectedAt)
    })
  }
  return out
}

/** Its stream is open (not only registered, not disconnected). */
function open (i: ServiceInstance): boolean {
  return i.connectedSince !== null && i.disconnectedAt === null
}

/**
 * An open stream beats a registered-only or disconnected entry, then the newer heartbeat; between
 * a registration and a disconnection, the later one (an instance that registers again is back).
 */
function better (a: ServiceInstance, b: ServiceInstance): boolean {
  if (open(a) !== open(b)) return open(a)
  if (open(a)) return a.lastHeartbeat > b.lastHeartbeat
  return (a.disconnectedAt ?? a.lastHeartbeat) > (b.disconnectedAt ?? b.lastHeartbeat)
}

/** Merges entries of one instance: the better one, its unknown details filled from the other. */
function merge (held: ServiceInstance | undefined, next: ServiceInstance): ServiceInstance {
  if (held === undefined) return next
  const [top, other] = better(next, held) ? [next, held] : [held, next]
  return { ...top, host: top.host ?? other.host, version: top.version ?? other.version, pid: top.pid ?? other.pid }
}

function sorted (list: ServiceInstance[]): ServiceInstance[] {
  return list.sort((a, b) => a.service === b.service ? a.id.localeCompare(b.id) : a.service.localeCompare(b.service))
}

export function createInstanceRegistry (options: InstanceRegistryOptions): InstanceRegistry {
  const { engine, fleet, log, heartbeatMs } = options
  const debounceMs = options.debounceMs ?? Math.min(1000, heartbeatMs)
  const disconnectedMs = options.disconnectedMs ?? disconnectedKeepMs(heartbeatMs)
  const serverId = randomUUID()
  const streams = new Set<Stream>()
  // registered and not (yet) connected here: listed for three heartbeats, as a stream would be
  const registrations = new Map<string, { service: string, details: InstanceDetails, at: number }>()
  // what registrations told, kept past them so a stream that reconnects is still described
  const details = new Map<string, InstanceDetails>()
  // instances whose stream closed here, as they were then: listed, disconnected, for disconnectedMs
  const gone = new Map<string, ServiceInstance>()
  let timer: NodeJS.Timeout | null = null
  let queued = false
  let written = false
  let closed = false
  let chain: Promise<void> = Promise.resolve()

  function remember (key: string, value: InstanceDetails): void {
    details.delete(key)
    details.set(key, value)
    if (details.size > MAX_DETAILS) details.delete(details.keys().next().value!)
  }

  /** A disconnection older than disconnectedMs: no longer listed. */
  function expired (instance: ServiceInstance, now: number): boolean {
    if (instance.disconnectedAt === null) return false
    const at = Date.parse(instance.disconnectedAt)
    return Number.isNaN(at) || at <= now - disconnectedMs
  }

  /** This process's instances as they are now. */
  function own (): Map<string, ServiceInstance> {
    const out = new Map<string, ServiceInstance>()
    const now = engine.now()
    const stale = now - 3 * heartbeatMs
    for (const [key, instance] of gone) {
      if (expired(instance, now)) gone.delete(key)
      else out.set(key, instance)
    }
    for (const [key, registration] of registrations) {
      if (registration.at <= stale) {
        registrations.delete(key)
        continue
      }
      const { id, host, version, pid } = registration.details
      const at = new Date(registration.at).toISOString()
      out.set(key, merge(out.get(key), { id, service: registration.service, host, version, pid, connectedSince: null, lastHeartbeat: at, revision: null, disconnectedAt: null }))
    }
    for (const stream of streams) {
      const key = keyOf(stream.service, stream.id)
      const known = details.get(key)
      out.set(key, merge(out.get(key), {
        id: stream.id,
        service: stream.service,
        host: known?.host ?? null,
        version: known?.version ?? null,
        pid: known?.pid ?? null,
        connectedSince: stream.connectedSince,
        lastHeartbeat: stream.lastHeartbeat,
        revision: stream.revision(),
        disconnectedAt: null
      }))
    }
    return out
  }

  /** Everything listed: this process's view, merged with the unexpired records of the others. */
  function everything (): { all: Map<string, ServiceInstance>, mine: Set<string> } {
    const all = own()
    const mine = new Set(all.keys())
    const now = engine.now()
    for (const record of fleet.instanceRecords()) {
      if (record.id === serverId) continue
      for (const instance of instancesOf(record)) {
        // that process drops it at its next heartbeat; not listed past the same bound meanwhile
        if (expired(instance, now)) continue
        const key = keyOf(instance.service, instance.id)
        all.set(key, merge(all.get(key), instance))
      }
    }
    // an instance registered through another process and connected here: keep what that one's
    // record told, which goes once the registration is older than three heartbeats
    for (const key of mine) {
      const instance = all.get(key)!
      if (instance.host !== null && details.get(key)?.host == null) {
        remember(key, { id: instance.id, host: instance.host, version: instance.version, pid: instance.pid })
      }
    }
    return { all, mine }
  }

  async function write (): Promise<void> {
    queued = false
    if (closed) return
    const { all, mine } = everything()
    const instances = sorted([...mine].map(key => all.get(key)!))
    if (instances.length === 0) {
      if (!written) return
      written = false
      await engine.backend.deleteRecord(SERVICE_INSTANCES_NAMESPACE, serverId)
      return
    }
    const now = engine.now()
    const value: ServerInstancesRecord = { server: serverId, host: hostname(), pid: process.pid, writtenAt: new Date(now).toISOString(), instances }
    written = true
    await engine.backend.putRecord(SERVICE_INSTANCES_NAMESPACE, serverId, value, { expiresAt: now + 3 * heartbeatMs })
  }

  function flush (): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
    if (closed || queued) return
    queued = true
    // one write at a time, in order; a flush asked for while one waits is the same write
    chain = chain.then(write).catch(err => log.warn({ err }, 'waygate server: could not record the connected service instances'))
  }

  function soon (): void {
    if (closed || timer !== null) return
    timer = setTimeout(flush, debounceMs)
    timer.unref()
  }

  return {
    serverId,

    registered (service, given) {
      const key = keyOf(service, given.id)
      remember(key, given)
      // registering again is a sign of life: no longer listed as disconnected
      gone.delete(key)
      // the SDK opens its stream and registers at once: when the stream came first, it lists the
      // instance, and its end must end the listing (not a registration left for three heartbeats)
      let streaming = false
      for (const stream of streams) if (stream.service === service && stream.id === given.id) streaming = true
      if (!streaming) registrations.set(key, { service, details: given, at: engine.now() })
      soon()
    },

    connect (service, id, connectedSince, revision, given) {
      const key = keyOf(service, id)
      registrations.delete(key)
      gone.delete(key)
      if (given !== undefined && given !== null && given.id === id) remember(key, given)
      else if (!details.has(key)) {
        // registered through another server process: take what its record tells
        for (const record of fleet.instanceRecords()) {
          const found = instancesOf(record).find(i => i.service === service && i.id === id && i.host !== null)
          if (found !== undefined) {
            remember(key, { id, host: found.host, version: found.version, pid: found.pid })
            break
          }
        }
      }
      const stream: Stream = { service, id, connectedSince, lastHeartbeat: connectedSince, revision }
      streams.add(stream)
      soon()
      return {
        beat () {
          stream.lastHeartbeat = new Date(engine.now()).toISOString()
        },
        disconnect () {
          if (!streams.delete(stream)) return
          // another stream of the same instance still open: it stays connected
          for (const other of streams) if (other.service === service && other.id === id) return soon()
          const known = details.get(key)
          gone.delete(key)
          gone.set(key, {
            id,
            service,
            host: known?.host ?? null,
            version: known?.version ?? null,
            pid: known?.pid ?? null,
            connectedSince: stream.connectedSince,
            lastHeartbeat: stream.lastHeartbeat,
            revision: stream.revision(),
            disconnectedAt: new Date(engine.now()).toISOString()
          })
          if (gone.size > MAX_DETAILS) gone.delete(gone.keys().next().value!)
          soon()
        }
      }
    },

    flush,

    list (service) {
      const out: ServiceInstance[] = []
      for (const instance of everything().all.values()) {
        if (service === undefined || instance.service === service) out.push(instance)
      }
      return sorted(out)
    },

    async close () {
      closed = true
      if (timer !== null) clearTimeout(timer)
      timer = null
      await chain
      if (!written) return
      written = false
      await engine.backend.deleteRecord(SERVICE_INSTANCES_NAMESPACE, serverId)
        .catch(err => log.warn({ err }, 'waygate server: could not remove the record of its service instances; it expires'))
    }
  }
}
