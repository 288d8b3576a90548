import { createHash } from 'node:crypto'
import type { WaygateEngine } from '@waygate/core'
import { isObject, operationsOf, type Json } from './operations.js'
import { applyWaygateToSpec, nextWindowChange, snapshotOf, type ApplyWaygateOptions } from './transform.js'

/** One operation in maintenance, as the docs status lists it. */
export interface DocsMaintenanceItem {
  /** HTTP method, upper case. */
  method: string
  /** The document path (`/users/{id}`), as Swagger UI shows it. */
  path: string
  reason: string
  /** True when global maintenance, not the route's own state, put it there. */
  global: boolean
  /** When the maintenance is expected to end (ISO 8601), or null. */
  retryAfter: string | null
}

/** What the docs UI polls to keep its banner and badges current. */
export interface DocsStatus {
  /** The engine's state version the status was built at. */
  version: number
  env: string
  /** Changes when the set of documented operations changes: the page should reload the document. */
  layout: string
  global: { enabled: boolean, reason: string, exemptPaths: string[], since: string | null }
  maintenance: DocsMaintenanceItem[]
}

/** A document that follows the engine's state, rebuilt only when that state changes. */
export interface OpenApiView {
  /** `spec` with waygate's state applied; the same object while nothing changed. Read-only. */
  transform<T extends object>(spec: T): T
  /** The banner's status for `spec` (the source document, before waygate). */
  status(spec: object): DocsStatus
}

interface Entry {
  version: number
  validUntil: number
  doc: object
  status: DocsStatus | null
}

function buildStatus (doc: Json, engine: WaygateEngine, version: number): DocsStatus {
  const maintenance: DocsMaintenanceItem[] = []
  const layout = createHash('sha256')
  if (isObject(doc.paths)) {
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!isObject(item)) continue
      for (const [method, op] of operationsOf(item)) {
        layout.update(`${method} ${path} ${op.deprecated === true ? 'deprecated' : ''}\n`)
        if (op['x-waygate-status'] !== 'maintenance') continue
        maintenance.push({
          method,
          path,
          reason: typeof op['x-waygate-reason'] === 'string' ? op['x-waygate-reason'] : '',
          global: op['x-waygate-global'] === true,
          retryAfter: typeof op['x-waygate-retry-after'] === 'string' ? op['x-waygate-retry-after'] : null
        })
      }
    }
  }
  const global = engine.getGlobal()
  return {
    version,
    env: engine.env,
    layout: layout.digest('base64url').slice(0, 16),
    global: global.enabled
      ? { enabled: true, reason: global.reason, exemptPaths: global.exemptPaths, since: global.since }
      : { enabled: false, reason: '', exemptPaths: [], since: null },
    maintenance
  }
}

/**
 * Creates a view of documents through the engine's state. A document is rebuilt when the
 * engine's state version changes or a maintenance window opens or closes, and served from cache
 * otherwise, so serving it costs nothing per request.
 *
 * @example
 * const view = createOpenApiView(engine)
 * app.get('/openapi.json', { config: { waygate: false } }, async () => view.transform(app.swagger()))
 */
export function createOpenApiView (engine: WaygateEngine, options: ApplyWaygateOptions = {}): OpenApiView {
  const cache = new WeakMap<object, Entry>()

  function entryFor (spec: object): Entry {
    const version = engine.version
    const now = engine.now()
    const cached = cache.get(spec)
    if (cached !== undefined && cached.version === version && now < cached.validUntil) return cached
    const snapshot = snapshotOf(engine)
    const entry: Entry = {
      version,
      validUntil: nextWindowChange(snapshot.routes, snapshot.now, snapshot.env),
      doc: applyWaygateToSpec(spec, snapshot, options),
      status: null
    }
    cache.set(spec, entry)
    return entry
  }

  return {
    transform<T extends object> (spec: T): T {
      return entryFor(spec).doc as T
    },
    status (spec) {
      const entry = entryFor(spec)
      entry.status ??= buildStatus(entry.doc as Json, engine, entry.version)
      return entry.status
    }
  }
}
