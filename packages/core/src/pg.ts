import { createRequire } from 'node:module'
import type * as Pg from 'pg'
import { WG_ERR_OPTIONS_INVALID } from './errors.js'

// pg (node-postgres) is an optional peer dependency: only the Postgres backend loads it, and only
// when it creates its own pool; a pool handed in is used without loading anything.
const require = createRequire(import.meta.url)
let loaded: typeof Pg | undefined

/**
 * The app's `pg` module, loaded on first use.
 * Throws `WG_ERR_OPTIONS_INVALID` saying what to install when pg is missing.
 */
export function loadPg (what: string): typeof Pg {
  if (loaded !== undefined) return loaded
  try {
    loaded = require('pg') as typeof Pg
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new WG_ERR_OPTIONS_INVALID(`install pg to use ${what} (npm install pg)`, { cause: err })
    }
    throw err
  }
  return loaded
}
