import { Type, type Static } from '@sinclair/typebox'
import { AuditAction, GlobalMaintenance, MAX_REASON_LENGTH, RouteState, RouteStatus, SERVICE_NAME } from '@waygate/core'

/** `{ error: { code, message } }`: every error the admin API answers with. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'Stable machine-readable code, e.g. WG_ERR_ROUTE_NOT_FOUND' }),
    message: Type.String({ description: 'What went wrong, for people' }),
    matches: Type.Optional(Type.Array(Type.String(), { description: 'Keys an ambiguous bare path matches' }))
  })
})

const Reason = Type.String({ maxLength: MAX_REASON_LENGTH, description: 'Why; shown to callers and recorded in the audit log' })
const When = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'ISO 8601 date-time, or a duration from now such as 30m, 2h, 1d'
})
const All = Type.Boolean({ description: 'With a bare path matching several methods: apply to all of them' })

export const KeyParams = Type.Object({
  key: Type.String({
    minLength: 1,
    maxLength: 4096,
    description: 'Route key (METHOD:/pattern or /pattern), percent-encoded, or base64url-encoded'
  })
})
export type KeyParams = Static<typeof KeyParams>

/**
 * The body of an endpoint that takes none: nothing at all, or an empty object (the CLI sends `{}`
 * with a JSON content type on every POST); any field is refused.
 */
export const NoBody = Type.Object({}, { additionalProperties: false, description: 'No fields: send no body, or {}' })
export type NoBody = Static<typeof NoBody>

/** The query string of an endpoint that takes none: any parameter is refused. */
export const NoQuery = Type.Object({}, { additionalProperties: false })
export type NoQuery = Static<typeof NoQuery>

export const AllBody = Type.Object({ all: Type.Optional(All) }, { additionalProperties: false })
export type AllBody = Static<typeof AllBody>

export const DisableBody = Type.Object({
  reason: Type.Optional(Reason),
  until: Type.Optional(When),
  all: Type.Optional(All)
}, { additionalProperties: false })
export type DisableBody = Static<typeof DisableBody>

export const MaintenanceBody = Type.Object({
  reason: Type.Optional(Reason),
  start: Type.Optional(When),
  end: Type.Optional(When),
  all: Type.Optional(All)
}, { additionalProperties: false })
export type MaintenanceBody = Static<typeof MaintenanceBody>

export const ScheduleBody = Type.Object({
  start: When,
  end: When,
  reason: Type.Optional(Reason),
  all: Type.Optional(All)
}, { additionalProperties: false })
export type ScheduleBody = Static<typeof ScheduleBody>

export const EnvBody = Type.Object({
  envs: Type.Array(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' }), { minItems: 1, maxItems: 50, description: 'Environments where the route answers' }),
  reason: Type.Optional(Reason),
  all: Type.Optional(All)
}, { additionalProperties: false })
export type EnvBody = Static<typeof EnvBody>

export const DeprecateBody = Type.Object({
  sunset: Type.Optional(When),
  successor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'URL or path of the replacement' })),
  reason: Type.Optional(Reason),
  afterSunset: Type.Optional(Type.Union([Type.Literal('gone'), Type.Null()], { description: '"gone": answer 410 Gone (ROUTE_SUNSET) once the sunset has passed; needs sunset' })),
  all: Type.Optional(All)
}, { additionalProperties: false })
export type DeprecateBody = Static<typeof DeprecateBody>

export const RoutesQuery = Type.Object({
  status: Type.Optional(Type.String({ maxLength: 200, description: 'Comma-separated statuses to keep' })),
  service: Type.Optional(Type.String({ maxLength: 200 })),
  method: Type.Optional(Type.String({ maxLength: 20 })),
  q: Type.Optional(Type.String({ maxLength: 200, description: 'Text to find in the key or reason' })),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  perPage: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 }))
}, { additionalProperties: false })
export type RoutesQuery = Static<typeof RoutesQuery>

export const AuditQuery = Type.Object({
  key: Type.Optional(Type.String({ maxLength: 4096 })),
  service: Type.Optional(Type.String({ maxLength: 200 })),
  action: Type.Optional(AuditAction),
  actor: Type.Optional(Type.String({ maxLength: 200 })),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'Entries at or after this time' })),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'Entries before this time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  before: Type.Optional(Type.String({ maxLength: 300, description: 'Cursor: the id of the last entry of the previous page' }))
}, { additionalProperties: false })
export type AuditQuery = Static<typeof AuditQuery>

export const GlobalEnableBody = Type.Object({
  reason: Type.Optional(Reason),
  exemptPaths: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { maxItems: 500 })),
  includeForceActive: Type.Optional(Type.Boolean()),
  end: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'When it turns itself off (a dead-man\'s switch): ISO 8601 date-time, or a duration from now such as 15m'
  }))
}, { additionalProperties: false })
export type GlobalEnableBody = Static<typeof GlobalEnableBody>

export const ExemptBody = Type.Object({
  paths: Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { minItems: 1, maxItems: 500 })
}, { additionalProperties: false })
export type ExemptBody = Static<typeof ExemptBody>

export const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 200 }),
  password: Type.String({ minLength: 1, maxLength: 1000 }),
  platform: Type.Optional(Type.Union([Type.Literal('cli'), Type.Literal('sdk'), Type.Literal('api')], { description: 'Who the token is for; decides its lifetime' })),
  service: Type.Optional(Type.String({ pattern: SERVICE_NAME.source, description: 'With platform sdk: scope the token to this service\'s SDK endpoints' }))
}, { additionalProperties: false })
export type LoginBody = Static<typeof LoginBody>

export const LoginReply = Type.Object({
  token: Type.String(),
  user: Type.String(),
  platform: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  service: Type.Optional(Type.String({ description: 'The service a scoped token is for' }))
})

export const MeReply = Type.Object({
  user: Type.String(),
  platform: Type.String(),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  authenticated: Type.Boolean({ description: 'False when the admin runs without auth' }),
  service: Type.Optional(Type.String({ description: 'The service a scoped token is for' }))
})

export const RoutesReply = Type.Object({ routes: Type.Array(RouteState) })

export const AuditReplyEntry = Type.Object({
  id: Type.String(),
  timestamp: Type.String(),
  key: Type.String(),
  path: Type.String({ description: 'The route pattern of the key (or * for global maintenance)' }),
  service: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  actor: Type.String(),
  platform: Type.String(),
  reason: Type.String(),
  previousStatus: Type.Union([RouteStatus, Type.Null()]),
  newStatus: Type.Union([RouteStatus, Type.Null()])
})

export const StatusReply = Type.Object({
  version: Type.String({ description: 'Version of @waygate/admin' }),
  backend: Type.String(),
  healthy: Type.Boolean(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  env: Type.String(),
  routes: Type.Integer(),
  stateVersion: Type.Integer({ description: 'Increments on every applied state change' }),
  testBypass: Type.Boolean(),
  auth: Type.Boolean({ description: 'Whether the admin requires authentication' }),
  revision: Type.Integer({ description: 'The backend revision of the newest change applied (0 when the backend counts none)' }),
  sync: Type.Optional(Type.Object({
    state: Type.Union(['connecting', 'connected', 'reconnecting', 'unauthorized', 'offline'].map(v => Type.Literal(v))),
    source: Type.Union(['server', 'cache', 'declared'].map(v => Type.Literal(v))),
    revision: Type.Union([Type.Integer(), Type.Null()]),
    epoch: Type.Union([Type.String(), Type.Null()]),
    lastSync: Type.Union([Type.String(), Type.Null()]),
    staleSeconds: Type.Union([Type.Number(), Type.Null()]),
    reconnects: Type.Integer(),
    serverUrl: Type.String(),
    service: Type.String()
  }, { description: 'On a service attached to a Waygate Server: how its snapshot keeps up with the server' }))
})

export { RouteState, GlobalMaintenance }
