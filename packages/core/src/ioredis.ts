import { createRequire } from 'node:module'
import type * as IORedis from 'ioredis'
import { WG_ERR_OPTIONS_INVALID } from './errors.js'

// ioredis is an optional peer dependency: memory and file users never install or load it.
// The Redis factories are synchronous, so it is required (not imported) on their first call.
const require = createRequire(import.meta.url)
let loaded: typeof IORedis.Redis | undefined
let loadedCluster: typeof IORedis.Cluster | undefined

/**
 * The `Redis` class of the app's ioredis, loaded on first use.
 * Throws `WG_ERR_OPTIONS_INVALID` saying what to install when ioredis is missing.
 */
export function loadRedis (what: string): typeof IORedis.Redis {
  if (loaded !== undefined) return loaded
  try {
    loaded = (require('ioredis') as typeof IORedis).Redis
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new WG_ERR_OPTIONS_INVALID(`install ioredis to use ${what} (npm install ioredis)`, { cause: err })
    }
    throw err
  }
  return loaded
}

/** The `Cluster` class of the app's ioredis, loaded on first use; throws as {@link loadRedis}. */
export function loadCluster (what: string): typeof IORedis.Cluster {
  if (loadedCluster !== undefined) return loadedCluster
  loadRedis(what)
  loadedCluster = (require('ioredis') as typeof IORedis).Cluster
  return loadedCluster
}
