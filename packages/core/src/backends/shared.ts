import type { AuditEntry } from '../models.js'
import type { AuditQuery, BackendChange } from './types.js'

/** Default number of audit entries a backend keeps. */
export const DEFAULT_MAX_AUDIT_ENTRIES = 1000

/** Default page size of an audit read. */
export const DEFAULT_AUDIT_LIMIT = 100

/** Applies an audit query to entries already sorted newest first. */
export function filterAudit (entries: readonly AuditEntry[], query: AuditQuery = {}): AuditEntry[] {
  const limit = query.limit ?? DEFAULT_AUDIT_LIMIT
  const out: AuditEntry[] = []
  if (limit <= 0) return out
  let started = query.before === undefined
  for (const entry of entries) {
    if (!started) {
      if (entry.id === query.before) started = true
      continue
    }
    if (query.key !== undefined && entry.key !== query.key) continue
    if (query.service !== undefined && entry.service !== query.service) continue
    if (query.action !== undefined && entry.action !== query.action) continue
    if (query.actor !== undefined && entry.actor !== query.actor) continue
    if (query.since !== undefined && entry.timestamp < query.since) continue
    if (query.until !== undefined && entry.timestamp >= query.until) continue
    out.push(entry)
    if (out.length >= limit) break
  }
  return out
}

/** Listener bookkeeping shared by backends; a throwing listener never breaks the others. */
export class ChangeEmitter {
  readonly #listeners = new Set<(change: BackendChange) => void>()

  subscribe (listener: (change: BackendChange) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  emit (change: BackendChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change)
      } catch {
        // a subscriber's bug must not stop delivery to the others or fail the write
      }
    }
  }

  clear (): void {
    this.#listeners.clear()
  }
}

/** Checks a positive integer option. */
export function positiveInteger (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${String(value)}`)
  }
  return value
}
