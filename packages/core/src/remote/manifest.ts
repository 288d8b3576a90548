import { createHash } from 'node:crypto'
import type { RouteState } from '../models.js'

/** JSON with object keys sorted at every level and no spaces: the same data always gives the same text. */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`
}

/**
 * The registration manifest of a service's declared routes: the sha256 (hex) of the canonical
 * JSON of the states sorted by key, without `updatedAt` (the time the process declared them), so
 * a restart of the same code gives the same manifest.
 */
export function computeManifest (routes: readonly RouteState[]): string {
  const stable = [...routes]
    .sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
    .map(({ updatedAt: _updatedAt, ...rest }) => rest)
  return createHash('sha256').update(canonicalJson(stable)).digest('hex')
}
