import { WG_ERR_INPUT_INVALID } from '../errors.js'
import type { AuditEntry } from '../models.js'
import type { AuditQuery, BackendChange, BackendRecord } from './types.js'

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

/** Checks a clock option: a function returning epoch ms, `Date.now` when absent. */
export function clockOption (value: unknown, name = 'now'): () => number {
  if (value === undefined) return Date.now
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function returning epoch milliseconds`)
  return value as () => number
}

/** Longest namespace or record id, in UTF-16 code units. */
export const MAX_RECORD_KEY_LENGTH = 200

/** A record as a backend keeps it; its id is the key it is stored under. */
export interface StoredRecord {
  value: unknown
  expiresAt: number | null
}

/** Whether a record is still there at `now`: it is gone from `expiresAt` on. */
export function isLive (record: { expiresAt: number | null }, now: number): boolean {
  return record.expiresAt === null || record.expiresAt > now
}

/** Orders records by id in code unit order, whatever the locale. */
export function compareIds (a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** A record to hand out, its value a copy. */
export function recordOf (id: string, stored: StoredRecord): BackendRecord {
  return { id, value: structuredClone(stored.value), expiresAt: stored.expiresAt }
}

/** Checks a namespace or record id; throws `WG_ERR_INPUT_INVALID`. */
export function checkRecordKey (value: unknown, name: 'namespace' | 'id'): asserts value is string {
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_RECORD_KEY_LENGTH) return
  const found = typeof value === 'string'
    ? (value.length === 0 ? 'an empty string' : `a string of ${value.length} characters`)
    : value === null ? 'null' : `a ${typeof value}`
  throw new WG_ERR_INPUT_INVALID(`record ${name} must be a string of 1 to ${MAX_RECORD_KEY_LENGTH} characters, got ${found}`)
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** Describes the first part of `value` a JSON round trip would not give back unchanged, or null. */
function jsonProblem (value: unknown, path: string, ancestors: Set<object>): string | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null
    case 'number':
      return Number.isFinite(value) ? null : `${path} is ${value}, which JSON cannot hold`
    case 'undefined':
      return `${path} is undefined`
    case 'object':
      break
    default:
      return `${path} is a ${typeof value}`
  }
  if (value === null) return null
  if (ancestors.has(value)) return `${path} refers back to itself`
  ancestors.add(value)
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const problem = jsonProblem(value[i], `${path}[${i}]`, ancestors)
        if (problem !== null) return problem
      }
      return null
    }
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      const name = (proto as { constructor?: { name?: unknown } }).constructor?.name
      return `${path} is ${typeof name === 'string' && name !== '' ? `a ${name}` : 'an object with a prototype'}, not plain JSON data`
    }
    for (const [key, item] of Object.entries(value)) {
      const problem = jsonProblem(item, IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, ancestors)
      if (problem !== null) return problem
    }
    return null
  } finally {
    ancestors.delete(value)
  }
}

/**
 * Checks that a record value is plain JSON data and returns its JSON text; throws
 * `WG_ERR_INPUT_INVALID` naming the first part that would not survive the round trip.
 */
export function recordJson (value: unknown): string {
  let problem: string | null
  try {
    problem = jsonProblem(value, 'value', new Set())
  } catch (err) {
    throw new WG_ERR_INPUT_INVALID('record value is nested too deeply', { cause: err })
  }
  if (problem !== null) throw new WG_ERR_INPUT_INVALID(`record ${problem}`)
  return JSON.stringify(value)
}

/** Checks the options of `putRecord` and returns when the record expires. */
export function recordExpiry (options: unknown): number | null {
  if (options === undefined) return null
  if (typeof options !== 'object' || options === null) {
    throw new WG_ERR_INPUT_INVALID('record options must be an object')
  }
  const { expiresAt } = options as { expiresAt?: unknown }
  if (expiresAt === undefined) return null
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new WG_ERR_INPUT_INVALID(`record expiresAt must be a finite number of epoch milliseconds, got ${typeof expiresAt === 'number' ? String(expiresAt) : expiresAt === null ? 'null' : `a ${typeof expiresAt}`}`)
  }
  return expiresAt
}
