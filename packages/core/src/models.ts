import { Type, type Static } from '@sinclair/typebox'

/** Lifecycle status of a route. Values are the lowercase strings used on the wire. */
export const RouteStatus = Type.Union([
  Type.Literal('active'),
  Type.Literal('maintenance'),
  Type.Literal('disabled'),
  Type.Literal('env_gated'),
  Type.Literal('deprecated')
], { description: 'Lifecycle status of a route' })
export type RouteStatus = Static<typeof RouteStatus>

/** Every status value, in display order. */
export const ROUTE_STATUSES: readonly RouteStatus[] = ['active', 'maintenance', 'disabled', 'env_gated', 'deprecated']

/** Where a change came from, recorded on every audit entry. */
export const Platform = Type.Union([
  Type.Literal('dashboard'),
  Type.Literal('cli'),
  Type.Literal('api'),
  Type.Literal('sdk'),
  Type.Literal('system'),
  Type.Literal('scheduler')
], { description: 'Where a change came from' })
export type Platform = Static<typeof Platform>

const IsoDate = Type.String({ format: 'date-time', description: 'ISO 8601 timestamp in UTC' })

/**
 * A maintenance window. The route answers as in maintenance from `start` (inclusive) to `end`
 * (exclusive); `end: null` means until an operator enables the route.
 */
export const MaintenanceWindow = Type.Object({
  start: IsoDate,
  end: Type.Union([IsoDate, Type.Null()]),
  reason: Type.String({ maxLength: 2000 })
}, { additionalProperties: false })
export type MaintenanceWindow = Static<typeof MaintenanceWindow>

/**
 * A planned brownout of a deprecated route: from `start` (inclusive) to `end` (exclusive) it
 * answers 410 Gone, so that remaining callers notice before the sunset.
 */
export const Brownout = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  start: IsoDate,
  end: IsoDate,
  reason: Type.String({ maxLength: 2000 })
}, { additionalProperties: false })
export type Brownout = Static<typeof Brownout>

/** Most brownouts one route holds (ended ones are dropped at each change). */
export const MAX_BROWNOUTS = 50

/** The persisted lifecycle state of one route key. */
export const RouteState = Type.Object({
  key: Type.String({ description: 'METHOD:/pattern, or /pattern for every method' }),
  path: Type.String({ description: 'Fastify route pattern' }),
  method: Type.Union([Type.String(), Type.Null()], { description: 'HTTP method, null for a bare key' }),
  service: Type.Union([Type.String(), Type.Null()]),
  status: RouteStatus,
  reason: Type.String(),
  allowedEnvs: Type.Array(Type.String()),
  window: Type.Union([MaintenanceWindow, Type.Null()]),
  sunset: Type.Union([Type.String(), Type.Null()], { description: 'Sunset date (ISO 8601) of a deprecated route' }),
  successor: Type.Union([Type.String(), Type.Null()], { description: 'URL of the replacement of a deprecated route' }),
  deprecatedAt: Type.Union([IsoDate, Type.Null()], { description: 'When the route was deprecated: the date of its Deprecation header' }),
  // optional, so states stored before these fields existed still read
  afterSunset: Type.Optional(Type.Union([Type.Literal('gone'), Type.Null()], {
    description: 'What a deprecated route does once its sunset has passed: "gone" answers 410 Gone; null or absent keeps serving it'
  })),
  brownouts: Type.Optional(Type.Array(Brownout, { maxItems: MAX_BROWNOUTS, description: 'Planned brownouts of a deprecated route (410 Gone inside each)' })),
  disabledUntil: Type.Union([IsoDate, Type.Null()], { description: 'A disabled route becomes active again at this time' }),
  forceActive: Type.Boolean(),
  updatedAt: IsoDate,
  updatedBy: Type.String()
}, { additionalProperties: false })
export type RouteState = Static<typeof RouteState>

/** Site-wide maintenance. */
export const GlobalMaintenance = Type.Object({
  enabled: Type.Boolean(),
  reason: Type.String(),
  exemptPaths: Type.Array(Type.String(), { description: 'Bare /pattern or METHOD:/pattern keys that stay reachable' }),
  includeForceActive: Type.Boolean({ description: 'Also block force-active routes' }),
  since: Type.Union([IsoDate, Type.Null()]),
  end: Type.Optional(Type.Union([IsoDate, Type.Null()], {
    description: 'When it turns itself off (a dead-man\'s switch for deploys); absent or null: when an operator turns it off'
  }))
}, { additionalProperties: false })
export type GlobalMaintenance = Static<typeof GlobalMaintenance>

/** What an audit entry records. */
export const AuditAction = Type.Union([
  Type.Literal('register'),
  Type.Literal('enable'),
  Type.Literal('disable'),
  Type.Literal('maintenance_on'),
  Type.Literal('env_gate'),
  Type.Literal('deprecate'),
  Type.Literal('schedule'),
  Type.Literal('schedule_cancel'),
  Type.Literal('window_start'),
  Type.Literal('window_end'),
  Type.Literal('disable_end'),
  Type.Literal('brownout_schedule'),
  Type.Literal('brownout_cancel'),
  Type.Literal('global_maintenance_on'),
  Type.Literal('global_maintenance_off'),
  Type.Literal('global_exempt_add'),
  Type.Literal('global_exempt_remove'),
  Type.Literal('rate_limit_set'),
  Type.Literal('rate_limit_delete'),
  Type.Literal('rate_limit_reset'),
  Type.Literal('token_created'),
  Type.Literal('token_revoked'),
  Type.Literal('webhook_retry'),
  Type.Literal('webhook_delete')
])
export type AuditAction = Static<typeof AuditAction>

/** One record of the audit trail. */
export const AuditEntry = Type.Object({
  id: Type.String(),
  timestamp: IsoDate,
  key: Type.String({ description: 'Route key, or "*" for global maintenance' }),
  service: Type.Union([Type.String(), Type.Null()]),
  action: AuditAction,
  actor: Type.String(),
  platform: Platform,
  reason: Type.String(),
  previousStatus: Type.Union([RouteStatus, Type.Null()]),
  newStatus: Type.Union([RouteStatus, Type.Null()])
}, { additionalProperties: false })
export type AuditEntry = Static<typeof AuditEntry>

/** The key audit entries of global maintenance use. */
export const GLOBAL_KEY = '*'

/** Global maintenance as it is before anyone turns it on. */
export function defaultGlobalMaintenance (): GlobalMaintenance {
  return { enabled: false, reason: '', exemptPaths: [], includeForceActive: false, since: null }
}
