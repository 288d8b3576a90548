import { randomUUID } from 'node:crypto'
import type { DeadLetter, OutboxBatch, OutboxClaim, OutboxDelivery } from './types.js'

/** A pending delivery as the memory and file backends hold it. */
export interface PendingDelivery {
  delivery: OutboxDelivery
  /** When it may be claimed: its next attempt, or the end of the lease of whoever holds it. */
  due: number
  attempts: number
  /** The token of the claim holding it, or null. */
  lease: string | null
}

/** The outbox of the memory and file backends: plain data, so the file backend stores it as it is. */
export interface OutboxData {
  pending: Record<string, PendingDelivery>
  dead: Record<string, DeadLetter>
}

export function emptyOutbox (): OutboxData {
  return { pending: {}, dead: {} }
}

/** What a delivery id looks like (hex, from a hash): never a name like `__proto__`. */
export const DELIVERY_ID = /^[0-9a-f]{16,64}$/

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isDelivery (value: unknown): value is OutboxDelivery {
  return isObject(value) && typeof value.id === 'string' && typeof value.webhook === 'string' && typeof value.body === 'string' &&
    typeof value.eventId === 'string' && typeof value.createdAt === 'number'
}

/** Reads an outbox from a parsed file; throws a plain message for what is not one. */
export function parseOutbox (value: unknown): OutboxData {
  if (value === undefined) return emptyOutbox()
  if (!isObject(value) || !isObject(value.pending ?? {}) || !isObject(value.dead ?? {})) throw new TypeError('"outbox" is not an outbox')
  const out = emptyOutbox()
  for (const [id, item] of Object.entries((value.pending ?? {}) as Record<string, unknown>)) {
    if (!DELIVERY_ID.test(id)) throw new TypeError(`outbox.pending has a key that is not a delivery id: ${JSON.stringify(id.slice(0, 80))}`)
    if (!isObject(item) || !isDelivery(item.delivery) || typeof item.due !== 'number' || typeof item.attempts !== 'number') {
      throw new TypeError(`outbox.pending[${JSON.stringify(id)}] is not a pending delivery`)
    }
    out.pending[id] = { delivery: item.delivery, due: item.due, attempts: item.attempts, lease: typeof item.lease === 'string' ? item.lease : null }
  }
  for (const [id, item] of Object.entries((value.dead ?? {}) as Record<string, unknown>)) {
    if (!DELIVERY_ID.test(id)) throw new TypeError(`outbox.dead has a key that is not a delivery id: ${JSON.stringify(id.slice(0, 80))}`)
    if (!isObject(item) || !isDelivery(item.delivery) || typeof item.attempts !== 'number' || typeof item.failedAt !== 'number') {
      throw new TypeError(`outbox.dead[${JSON.stringify(id)}] is not a dead letter`)
    }
    out.dead[id] = { delivery: item.delivery, attempts: item.attempts, lastError: String(item.lastError ?? ''), failedAt: item.failedAt }
  }
  return out
}

export function isEmptyOutbox (outbox: OutboxData): boolean {
  return Object.keys(outbox.pending).length === 0 && Object.keys(outbox.dead).length === 0
}

/** Adds the deliveries of a change, due at once; one already pending or dead keeps its place. */
export function addDeliveries (outbox: OutboxData, deliveries: readonly OutboxDelivery[] | undefined, now: number): void {
  for (const delivery of deliveries ?? []) {
    if (!DELIVERY_ID.test(delivery.id)) continue
    if (outbox.pending[delivery.id] !== undefined || outbox.dead[delivery.id] !== undefined) continue
    outbox.pending[delivery.id] = { delivery: structuredClone(delivery), due: now, attempts: 0, lease: null }
  }
}

/** Claims due deliveries of the given webhooks, in the order they are due; `changed` says whether anything was taken. */
export function claimIn (outbox: OutboxData, options: { webhooks: readonly string[], now: number, leaseUntil: number, limit: number }): OutboxBatch & { changed: boolean } {
  const known = new Set(options.webhooks)
  const due = Object.entries(outbox.pending)
    .filter(([, item]) => item.due <= options.now && known.has(item.delivery.webhook))
    .sort(([, a], [, b]) => a.due - b.due || a.delivery.createdAt - b.delivery.createdAt)
    .slice(0, Math.max(0, options.limit))
  const token = randomUUID()
  const claims: OutboxClaim[] = []
  for (const [id, item] of due) {
    const next: PendingDelivery = { ...item, due: options.leaseUntil, attempts: item.attempts + 1, lease: token }
    outbox.pending[id] = next
    claims.push({ delivery: structuredClone(item.delivery), attempts: next.attempts, token })
  }
  let nextDueAt: number | null = null
  for (const item of Object.values(outbox.pending)) if (nextDueAt === null || item.due < nextDueAt) nextDueAt = item.due
  return { claims, nextDueAt, changed: claims.length > 0 }
}

function held (outbox: OutboxData, claim: OutboxClaim): PendingDelivery | null {
  if (!Object.hasOwn(outbox.pending, claim.delivery.id)) return null
  const item = outbox.pending[claim.delivery.id]
  return item !== undefined && item.lease === claim.token ? item : null
}

export function completeIn (outbox: OutboxData, claim: OutboxClaim): boolean {
  if (held(outbox, claim) === null) return false
  delete outbox.pending[claim.delivery.id]
  return true
}

export function failIn (outbox: OutboxData, claim: OutboxClaim, retryAt: number | null, lastError: string, now: number): boolean {
  const item = held(outbox, claim)
  if (item === null) return false
  if (retryAt === null) {
    delete outbox.pending[claim.delivery.id]
    outbox.dead[claim.delivery.id] = { delivery: item.delivery, attempts: item.attempts, lastError, failedAt: now }
  } else {
    outbox.pending[claim.delivery.id] = { ...item, due: retryAt, lease: null }
  }
  return true
}

export function listDeadIn (outbox: OutboxData): DeadLetter[] {
  return Object.values(outbox.dead).map(d => structuredClone(d)).sort((a, b) => b.failedAt - a.failedAt || (a.delivery.id < b.delivery.id ? -1 : 1))
}

export function retryDeadIn (outbox: OutboxData, id: string, now: number): boolean {
  if (!Object.hasOwn(outbox.dead, id)) return false
  const dead = outbox.dead[id]
  if (dead === undefined) return false
  delete outbox.dead[id]
  outbox.pending[id] = { delivery: dead.delivery, due: now, attempts: 0, lease: null }
  return true
}

export function deleteDeadIn (outbox: OutboxData, id: string): boolean {
  if (!Object.hasOwn(outbox.dead, id)) return false
  delete outbox.dead[id]
  return true
}
