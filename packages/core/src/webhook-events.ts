import type { AuditEntry, GlobalMaintenance, Platform, RouteState, RouteStatus } from './models.js'

/**
 * What a webhook can be told about. Names follow the audit log's actions where there is one.
 *
 * | event | sent when |
 * |---|---|
 * | `enable` | a route becomes active (an operator enabled it, or a timed disable ended) |
 * | `disable` | a route is disabled |
 * | `maintenance_on` | a route goes into maintenance now (a window starting now included) |
 * | `maintenance_off` | a route in maintenance is enabled, or its open window cancelled |
 * | `env_gate` | a route is restricted to some environments |
 * | `deprecate` | a route is deprecated |
 * | `global_maintenance_on` / `global_maintenance_off` | global maintenance is turned on (or changed while on) / off |
 * | `window_start` / `window_end` | a scheduled maintenance window opens / closes |
 * | `rate_limit_policy_change` | a rate-limit policy is set or removed |
 */
export const WEBHOOK_EVENTS = [
  'enable',
  'disable',
  'maintenance_on',
  'maintenance_off',
  'env_gate',
  'deprecate',
  'global_maintenance_on',
  'global_maintenance_off',
  'window_start',
  'window_end',
  'rate_limit_policy_change'
] as const

/** One of {@link WEBHOOK_EVENTS}. */
export type WebhookEventName = typeof WEBHOOK_EVENTS[number]

/** A change as formatters see it. */
export interface WebhookEvent {
  /** Unique per change and the same on every retry: the id of the change's audit entry. */
  id: string
  event: WebhookEventName
  /** The route key, or `*` for global maintenance. */
  key: string
  reason: string
  /** When the change happened (ISO 8601 UTC). */
  timestamp: string
  actor: string
  platform: Platform
  previousStatus: RouteStatus | null
  newStatus: RouteStatus | null
  /** The route's state after the change, or global maintenance for the global events. */
  state: RouteState | GlobalMaintenance | null
}

/**
 * The webhook event an audit entry stands for, or null for changes webhooks are not told about
 * (registration, exempt path edits, a window scheduled for later: its start and end are sent when
 * they happen).
 */
export function webhookEventOf (entry: AuditEntry): WebhookEventName | null {
  switch (entry.action) {
    case 'enable':
    case 'disable_end':
      return entry.previousStatus === 'maintenance' ? 'maintenance_off' : 'enable'
    case 'disable':
      return 'disable'
    case 'env_gate':
      return 'env_gate'
    case 'deprecate':
      return 'deprecate'
    case 'global_maintenance_on':
    case 'global_maintenance_off':
    case 'window_start':
    case 'window_end':
      return entry.action
    case 'maintenance_on':
    case 'schedule':
    case 'schedule_cancel':
      // by what the route answers before and after: a window scheduled for later changes nothing yet
      if (entry.newStatus === 'maintenance' && entry.previousStatus !== 'maintenance') return 'maintenance_on'
      if (entry.previousStatus === 'maintenance' && entry.newStatus !== 'maintenance') return 'maintenance_off'
      return entry.action === 'maintenance_on' ? 'maintenance_on' : null
    case 'rate_limit_set':
    case 'rate_limit_delete':
      return 'rate_limit_policy_change'
    default:
      return null
  }
}
