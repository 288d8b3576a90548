import type { WaygateBackend } from '@waygate/core'
import { createMemoryBackend } from '@waygate/core'

/** A backend whose storage can be switched off: every call rejects while `down` is true. */
export interface FailingBackend extends WaygateBackend {
  down: boolean
  /** How many calls were refused. */
  readonly failures: number
}

/**
 * Wraps `inner` (default: a new memory backend) so tests can simulate an unreachable store.
 * `subscribe` and `close` keep working: they hold no connection in a real backend either.
 */
export function createFailingBackend (inner: WaygateBackend = createMemoryBackend(), down = true): FailingBackend {
  let failures = 0
  const backend: FailingBackend = {
    kind: `failing-${inner.kind}`,
    down,
    get failures () { return failures },
    load: () => guard(() => inner.load()),
    getRoute: key => guard(() => inner.getRoute(key)),
    updateRoute: (key, updater) => guard(() => inner.updateRoute(key, updater)),
    registerRoutes: states => guard(() => inner.registerRoutes(states)),
    deleteRoute: key => guard(() => inner.deleteRoute(key)),
    updateGlobal: updater => guard(() => inner.updateGlobal(updater)),
    appendAudit: entry => guard(() => inner.appendAudit(entry)),
    listAudit: query => guard(() => inner.listAudit(query)),
    putRecord: (namespace, id, value, options) => guard(() => inner.putRecord(namespace, id, value, options)),
    getRecord: (namespace, id) => guard(() => inner.getRecord(namespace, id)),
    listRecords: namespace => guard(() => inner.listRecords(namespace)),
    deleteRecord: (namespace, id) => guard(() => inner.deleteRecord(namespace, id)),
    health: async () => backend.down ? { ok: false, detail: 'connection refused' } : inner.health(),
    subscribe: listener => inner.subscribe(listener),
    close: () => inner.close()
  }

  async function guard<T> (op: () => Promise<T>): Promise<T> {
    if (backend.down) {
      failures++
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })
    }
    return op()
  }

  return backend
}
