import { createHash } from 'node:crypto'

/** Longest id used as it is; longer ones are replaced by their SHA-256. */
export const MAX_KEY_PART_LENGTH = 128

/**
 * Turns a user id, API key or custom key into a counter id: a non-empty string as it is (its
 * SHA-256 when longer than {@link MAX_KEY_PART_LENGTH}, so a client sending huge headers cannot
 * make the store hold huge keys), a finite number or a bigint as a string, anything else
 * (missing, empty, an object) `undefined`, which means "no key" (see `onMissingKey`).
 */
export function keyPart (value: unknown): string | undefined {
  if (typeof value === 'string') {
    if (value.length === 0) return undefined
    if (value.length <= MAX_KEY_PART_LENGTH) return value
    return `sha256:${createHash('sha256').update(value).digest('base64url')}`
  }
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined
  if (typeof value === 'bigint') return String(value)
  return undefined
}

/** Splits a dotted property path (`user.id`) once, for {@link readPath}. */
export function propertyPath (path: string): readonly string[] {
  return Object.freeze(path.split('.'))
}

/** Reads a property path from an object (own or inherited properties); undefined where it breaks off. */
export function readPath (value: unknown, path: readonly string[]): unknown {
  let current = value
  for (let i = 0; i < path.length; i++) {
    if (current === null || current === undefined || (typeof current !== 'object' && typeof current !== 'function')) return undefined
    current = (current as Record<string, unknown>)[path[i] as string]
  }
  return current
}
