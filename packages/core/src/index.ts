export {
  RouteStatus,
  ROUTE_STATUSES,
  Platform,
  MaintenanceWindow,
  RouteState,
  GlobalMaintenance,
  AuditAction,
  AuditEntry,
  GLOBAL_KEY,
  defaultGlobalMaintenance
} from './models.js'
export { parseRouteKey, routeKey, resolveRouteKeys, isHttpMethod } from './route-key.js'
export type { ParsedRouteKey } from './route-key.js'
export {
  WG_ERR_ROUTE_KEY_INVALID,
  WG_ERR_ROUTE_NOT_FOUND,
  WG_ERR_ROUTE_AMBIGUOUS,
  WG_ERR_ROUTE_FORCE_ACTIVE,
  WG_ERR_INPUT_INVALID,
  WG_ERR_OPTIONS_INVALID,
  WG_ERR_CONFIG_INVALID,
  WG_ERR_BACKEND_UNAVAILABLE,
  WG_ERR_ENGINE_CLOSED
} from './errors.js'
export { createEngine, checkRouteDeclaration } from './engine.js'
export type {
  WaygateEngine,
  EngineOptions,
  EngineEvent,
  EngineStatus,
  RouteHandle,
  MutationOptions,
  DisableOptions,
  MaintenanceOptions,
  ScheduleOptions,
  EnvOnlyOptions,
  DeprecateOptions,
  GlobalEnableOptions
} from './engine.js'
export { PASS, compilePlan, effectiveStatus, retryAfterSeconds, isExempt } from './decision.js'
export type { Decision, PassDecision, DeprecatedDecision, BlockDecision, BlockKind, RoutePlan } from './decision.js'
export { RouteDeclaration, MAX_REASON_LENGTH, toIso, toEpochMs, schemaErrors } from './validation.js'
export type { TimeInput } from './validation.js'
export { silentLogger } from './logger.js'
export type { WaygateLogger } from './logger.js'
export { createMemoryBackend } from './backends/memory.js'
export type { MemoryBackendOptions } from './backends/memory.js'
export { filterAudit, DEFAULT_MAX_AUDIT_ENTRIES, ChangeEmitter, checkRecordKey, recordJson, recordExpiry, isLive } from './backends/shared.js'
export type {
  WaygateBackend,
  BackendChange,
  BackendSnapshot,
  BackendHealth,
  AuditQuery,
  Update,
  Updater,
  BackendRecord
} from './backends/types.js'
export { createFileBackend } from './backends/file.js'
export type { FileBackendOptions } from './backends/file.js'
export { createEngineFromEnv, loadWaygateConfig, WAYGATE_CONFIG_FILE, DEFAULT_STATE_FILE } from './config.js'
export type { EngineFromEnvOptions, LoadConfigOptions, WaygateConfig, BackendName, BackendFactory, ConfigSource, ConfigField } from './config.js'
