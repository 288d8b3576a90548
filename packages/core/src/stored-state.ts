import type { GlobalMaintenance, RouteState } from './models.js'
import { readTime } from './time.js'

const EPOCH_ISO = '1970-01-01T00:00:00.000Z'

function readable (value: string | null | undefined): boolean {
  return !Number.isNaN(readTime(value))
}

/**
 * A stored route state with every time the model cannot read made absent: `disabledUntil`,
 * `sunset` and `deprecatedAt` become null, a window without a readable start is dropped (it never
 * opens), one without a readable end becomes open-ended, and an unreadable `updatedAt` becomes the
 * epoch. State written by an older version or edited by hand thus never makes a read fail.
 * Returns `state` itself when every time reads, else a repaired copy; `fields` lists what was
 * repaired.
 */
export function readableState (state: RouteState, fields: string[] = []): RouteState {
  const start = fields.length
  if (state.disabledUntil !== null && !readable(state.disabledUntil)) fields.push('disabledUntil')
  if (state.sunset !== null && !readable(state.sunset)) fields.push('sunset')
  if (state.deprecatedAt !== null && !readable(state.deprecatedAt)) fields.push('deprecatedAt')
  if (!readable(state.updatedAt)) fields.push('updatedAt')
  const window = state.window
  if (window !== null && !readable(window.start)) fields.push('window.start')
  else if (window !== null && window.end !== null && !readable(window.end)) fields.push('window.end')
  if (fields.length === start) return state
  const repaired: RouteState = { ...state }
  for (const field of fields.slice(start)) {
    if (field === 'window.start') repaired.window = null
    else if (field === 'window.end') repaired.window = { ...window!, end: null }
    else if (field === 'updatedAt') repaired.updatedAt = EPOCH_ISO
    else repaired[field as 'disabledUntil' | 'sunset' | 'deprecatedAt'] = null
  }
  return repaired
}

/**
 * Global maintenance with an unreadable `since` made absent, as {@link readableState} does, and an
 * unreadable `end` removed (until turned off, as without one).
 */
export function readableGlobal (global: GlobalMaintenance): GlobalMaintenance {
  const badSince = global.since !== null && !readable(global.since)
  const badEnd = global.end !== undefined && global.end !== null && !readable(global.end)
  if (!badSince && !badEnd) return global
  const repaired = { ...global }
  if (badSince) repaired.since = null
  if (badEnd) delete repaired.end
  return repaired
}
