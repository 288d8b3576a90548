import { defaultGlobalMaintenance, type BackendRecord, type GlobalMaintenance, type GlobalRateLimit, type WaygateEngine } from '@waygate/core'
import {
  RATE_LIMIT_NAMESPACE,
  SERVICE_INSTANCES_NAMESPACE,
  SERVICE_MAINTENANCE_NAMESPACE,
  SERVICE_MANIFESTS_NAMESPACE,
  SERVICES_KNOWN_NAMESPACE,
  servicePolicyId
} from './wire.js'

/** An instance of a service, connected to a server process (or registered through one and not yet connected). */
export interface ServiceInstance {
  id: string
  service: string
  host: string | null
  version: string | null
  pid: number | null
  /** When its current stream opened (ISO), or null while it only registered. */
  connectedSince: string | null
  /** Its stream's last heartbeat, or its registration (ISO). */
  lastHeartbeat: string
  /** The revision its stream was last sent, or null. */
  revision: number | null
  /** When its stream closed (ISO): it stays listed, disconnected, for a while (see instances.ts); null while open or only registered. */
  disconnectedAt: string | null
}

const NAMESPACES = [SERVICE_MAINTENANCE_NAMESPACE, RATE_LIMIT_NAMESPACE, SERVICE_INSTANCES_NAMESPACE, SERVICE_MANIFESTS_NAMESPACE, SERVICES_KNOWN_NAMESPACE]

/**
 * What the server knows of its services beyond route state, kept in memory so a snapshot is
 * built without a backend read: service maintenance, rate limit records, the server processes'
 * instance records, manifests.
 * Loaded from the backend's records at start and after a reload, then fed by the engine's
 * `record_changed` events, which every server instance sharing the backend receives.
 */
export interface Fleet {
  start(): Promise<void>
  /** Reads every record again (after the engine reloaded: changes may have been missed). */
  reload(): Promise<void>
  close(): void
  maintenanceOf(service: string): GlobalMaintenance
  /** Every record of the rate limit namespace, by stored id. */
  rateLimitRecords(): Iterable<BackendRecord>
  servicePolicy(service: string): GlobalRateLimit | null
  /** The unexpired instance records, one per server process (see `instances.ts`). */
  instanceRecords(): BackendRecord[]
  manifestOf(service: string): string | null
  /** The service has registered (a `waygate:services-known` record). */
  isKnown(service: string): boolean
  /** Services that registered, or have maintenance or a policy of their own (those with instances: the instance registry). */
  services(): string[]
}

export function createFleet (engine: WaygateEngine): Fleet {
  const byNamespace = new Map<string, Map<string, BackendRecord>>(NAMESPACES.map(n => [n, new Map()]))
  let unsubscribe: (() => void) | null = null
  let loading: Promise<void> | null = null

  function live (record: BackendRecord | undefined): BackendRecord | undefined {
    return record !== undefined && (record.expiresAt === null || record.expiresAt > engine.now()) ? record : undefined
  }

  function set (namespace: string, id: string, record: BackendRecord | null): void {
    const map = byNamespace.get(namespace)
    if (map === undefined) return
    if (record === null) map.delete(id)
    else map.set(id, record)
  }

  async function load (): Promise<void> {
    for (const namespace of NAMESPACES) {
      const records = await engine.backend.listRecords(namespace)
      const map = new Map<string, BackendRecord>()
      for (const record of records) map.set(record.id, record)
      byNamespace.set(namespace, map)
    }
  }

  async function reload (): Promise<void> {
    loading ??= load().finally(() => { loading = null })
    return loading
  }

  return {
    async start () {
      unsubscribe = engine.subscribe(event => {
        if (event.type === 'record_changed') set(event.namespace, event.id, event.record)
      })
      try {
        await reload()
      } catch (err) {
        engine.logger.warn({ err }, 'waygate server: could not read the services\' records; they load on the next reload')
      }
    },
    reload,
    close () {
      unsubscribe?.()
      unsubscribe = null
    },
    maintenanceOf (service) {
      const value = live(byNamespace.get(SERVICE_MAINTENANCE_NAMESPACE)!.get(service))?.value as GlobalMaintenance | undefined
      return value === undefined ? defaultGlobalMaintenance() : structuredClone(value)
    },
    rateLimitRecords () {
      return [...byNamespace.get(RATE_LIMIT_NAMESPACE)!.values()].filter(r => live(r) !== undefined)
    },
    servicePolicy (service) {
      const value = live(byNamespace.get(RATE_LIMIT_NAMESPACE)!.get(servicePolicyId(service)))?.value as GlobalRateLimit | undefined
      return value === undefined ? null : structuredClone(value)
    },
    instanceRecords () {
      return [...byNamespace.get(SERVICE_INSTANCES_NAMESPACE)!.values()].filter(r => live(r) !== undefined)
    },
    manifestOf (service) {
      const value = live(byNamespace.get(SERVICE_MANIFESTS_NAMESPACE)!.get(service))?.value as { manifest?: unknown } | undefined
      return typeof value?.manifest === 'string' ? value.manifest : null
    },
    isKnown (service) {
      return byNamespace.get(SERVICES_KNOWN_NAMESPACE)!.has(service)
    },
    services () {
      const names = new Set<string>()
      for (const id of byNamespace.get(SERVICES_KNOWN_NAMESPACE)!.keys()) names.add(id)
      for (const id of byNamespace.get(SERVICE_MAINTENANCE_NAMESPACE)!.keys()) names.add(id)
      for (const id of byNamespace.get(RATE_LIMIT_NAMESPACE)!.keys()) if (id.startsWith('@service:')) names.add(id.slice(9))
      return [...names].sort()
    }
  }
}
