import { GLOBAL_KEY, type AuditAction, type RouteStatus } from '@waygate/core'

/** A point in time as the dashboard shows it: absolute (UTC) and relative to now. */
export interface TimeView {
  iso: string
  absolute: string
  relative: string
}

export const STATUS_LABELS: Record<RouteStatus, string> = {
  active: 'Active',
  maintenance: 'Maintenance',
  disabled: 'Disabled',
  env_gated: 'Env-gated',
  deprecated: 'Deprecated'
}

export const AUDIT_ACTION_LABELS: Record<AuditAction, string> = {
  register: 'Registered',
  enable: 'Enabled',
  disable: 'Disabled',
  maintenance_on: 'Maintenance on',
  env_gate: 'Env gate set',
  deprecate: 'Deprecated',
  schedule: 'Window scheduled',
  schedule_cancel: 'Window cancelled',
  window_start: 'Window started',
  window_end: 'Window ended',
  disable_end: 'Disable ended',
  brownout_schedule: 'Brownout scheduled',
  brownout_cancel: 'Brownout cancelled',
  global_maintenance_on: 'Global maintenance on',
  global_maintenance_off: 'Global maintenance off',
  global_exempt_add: 'Exempt paths added',
  global_exempt_remove: 'Exempt paths removed',
  rate_limit_set: 'Rate limit set',
  rate_limit_delete: 'Rate limit removed',
  rate_limit_reset: 'Rate limit reset',
  token_created: 'Service token created',
  token_revoked: 'Service token revoked',
  webhook_retry: 'Webhook dead letter retried',
  webhook_delete: 'Webhook dead letter deleted'
}

const UNITS: Array<[number, string]> = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']]

/** `5 min ago`, `in 2 h`, `just now`. */
export function relativeTime (ms: number, now: number): string {
  const diff = ms - now
  const abs = Math.abs(diff)
  if (abs < 5000) return 'just now'
  for (const [size, unit] of UNITS) {
    if (abs >= size) {
      const n = Math.floor(abs / size)
      return diff < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`
    }
  }
  return 'just now'
}

/** `2025-06-01 02:00:00 UTC`: unambiguous whatever the reader's time zone. */
export function absoluteTime (ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

export function timeView (iso: string, now: number): TimeView {
  const ms = Date.parse(iso)
  return { iso: new Date(ms).toISOString(), absolute: absoluteTime(ms), relative: relativeTime(ms, now) }
}

export function maybeTime (iso: string | null, now: number): TimeView | null {
  return iso === null || Number.isNaN(Date.parse(iso)) ? null : timeView(iso, now)
}

/** What a key reads as in a table: the global key has a name of its own. */
export function keyLabel (key: string): string {
  return key === GLOBAL_KEY ? 'Global maintenance' : key
}

/** An id usable in HTML for any route key. */
export function domId (prefix: string, key: string): string {
  return `${prefix}-${Buffer.from(key).toString('base64url')}`
}
