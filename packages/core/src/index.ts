export {
  RouteStatus,
  ROUTE_STATUSES,
  Platform,
  MaintenanceWindow,
  Brownout,
  MAX_BROWNOUTS,
  RouteState,
  GlobalMaintenance,
  AuditAction,
  AuditEntry,
  GLOBAL_KEY,
  defaultGlobalMaintenance
} from './models.js'
export { parseRouteKey, routeKey, resolveRouteKeys, isHttpMethod, SERVICE_NAME, isServiceName, qualifyKey, unqualifyKey } from './route-key.js'
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
  WG_ERR_ENGINE_CLOSED,
  WG_ERR_CONFLICT
} from './errors.js'
export { createEngine, checkRouteDeclaration } from './engine.js'
export type {
  WaygateEngine,
  EngineOptions,
  EngineEvent,
  EngineStatus,
  StoredSnapshot,
  RemoteUpdate,
  RouteHandle,
  MutationOptions,
  DisableOptions,
  MaintenanceOptions,
  ScheduleOptions,
  EnvOnlyOptions,
  DeprecateOptions,
  BrownoutOptions,
  GlobalEnableOptions
} from './engine.js'
export { PASS, compilePlan, effectiveStatus, retryAfterSeconds, isExempt, MAX_RETRY_AFTER_SECONDS, goneAt, goneReason } from './decision.js'
export type { Decision, PassDecision, DeprecatedDecision, BlockDecision, BlockKind, RoutePlan, GonePlan, DroppedHeader } from './decision.js'
export { RouteDeclaration, MAX_REASON_LENGTH, MAX_SUCCESSOR_LENGTH, toIso, toEpochMs, schemaErrors, checkSuccessor } from './validation.js'
export { encodeSuccessor, isSendableHeader } from './header-value.js'
export type { TimeInput } from './validation.js'
export { parseTime, readTime, MIN_TIME_MS, MAX_TIME_MS } from './time.js'
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
  BackendRecord,
  SyncStatus,
  OutboxDelivery,
  OutboxClaim,
  OutboxBatch,
  DeadLetter,
  WebhookOutbox
} from './backends/types.js'
export { createFileBackend } from './backends/file.js'
export type { FileBackendOptions } from './backends/file.js'
export { createEngineFromEnv, loadWaygateConfig, WAYGATE_CONFIG_FILE, DEFAULT_STATE_FILE } from './config.js'
export type { EngineFromEnvOptions, LoadConfigOptions, WaygateConfig, BackendName, BackendFactory, ConfigSource, ConfigField } from './config.js'
export { WG_ERR_RATE_LIMIT_INVALID } from './rate-limit/errors.js'
export { parseLimit, formatLimit, isUnlimited, limitStringError, MAX_LIMIT, MAX_WINDOW_MS } from './rate-limit/limit-string.js'
export type { ParsedLimit, UnlimitedLimit } from './rate-limit/limit-string.js'
export { RateLimitAlgorithm, RATE_LIMIT_ALGORITHMS, DEFAULT_ALGORITHM, MAX_CAPACITY_WINDOW, createRateLimitRule, rateLimitRuleErrors } from './rate-limit/rule.js'
export type { RateLimitRule, RateLimitRuleOptions, CompiledLimit } from './rate-limit/rule.js'
export { RateLimitPolicy, RateLimitKeyBy, RateLimitMissingKey, RATE_LIMIT_DEFAULTS, rateLimitPolicyErrors, checkRateLimitPolicy, compileRateLimitPolicy, resolveTier } from './rate-limit/policy.js'
export type { CompiledRateLimitPolicy } from './rate-limit/policy.js'
export { UNLIMITED_RESULT } from './rate-limit/types.js'
export type { RateLimitResult, RateLimitStore, RateLimitStoreHealth } from './rate-limit/types.js'
export { FAIL_CLOSED_RETRY_MS } from './rate-limit/result.js'
export { createMemoryRateLimitStore, DEFAULT_MAX_KEYS } from './rate-limit/memory-store.js'
export type { MemoryRateLimitStore, MemoryRateLimitStoreOptions } from './rate-limit/memory-store.js'
export { createRedisRateLimitStore, DEFAULT_REDIS_PREFIX } from './rate-limit/redis-store.js'
export type { RedisRateLimitStore, RedisRateLimitStoreOptions } from './rate-limit/redis-store.js'
export { ipKey, createIpMatcher, ipRuleError } from './rate-limit/ip.js'
export type { IpMatcher } from './rate-limit/ip.js'
export { keyPart, readPath, propertyPath, MAX_KEY_PART_LENGTH } from './rate-limit/keys.js'
export { createRedisBackend } from './backends/redis.js'
export type { RedisBackendOptions, RedisConnection, RedisClient } from './backends/redis.js'
export { createPostgresBackend } from './backends/postgres.js'
export type { PostgresBackendOptions, PostgresConnection, PostgresPool, PostgresAuditRetention } from './backends/postgres.js'
export { WEBHOOK_EVENTS, webhookEventOf } from './webhook-events.js'
export type { WebhookEvent, WebhookEventName } from './webhook-events.js'
export { defaultWebhookFormatter, slackWebhookFormatter, escapeSlackText } from './webhook-formatters.js'
export type { WebhookFormatter, DefaultWebhookPayload, SlackWebhookPayload } from './webhook-formatters.js'
export { signWebhookBody, verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, DEFAULT_SIGNATURE_TOLERANCE_SECONDS } from './webhook-signature.js'
export type { WebhookOptions, WebhookConfig, WebhookDeliveryOutcome } from './webhooks.js'
export { createRateLimiter, RATE_LIMIT_NAMESPACE, SERVICE_RATE_LIMIT_ID } from './rate-limit/limiter.js'
export type { RateLimiter, RateLimiterOptions, GlobalRateLimit, ServiceRateLimit, ActiveTierLimit, BlockedRequest, ListedPolicy, PolicyChangeOptions } from './rate-limit/limiter.js'
export { createRemoteBackend } from './remote/remote-backend.js'
export type { RemoteBackend, RemoteBackendOptions } from './remote/remote-backend.js'
export type { RemoteClock } from './remote/clock.js'
export type { BackoffOptions } from './remote/backoff.js'
export type { RemoteSnapshot, RemoteChange } from './remote/snapshot.js'
export { computeManifest, canonicalJson } from './remote/manifest.js'
export { WG_ERR_REMOTE_UNAUTHORIZED, WG_ERR_REMOTE_REJECTED, WG_ERR_REMOTE_UNSUPPORTED } from './remote/errors.js'
export { createSpaceSaving, mergeSummaries } from './callers/space-saving.js'
export type { SpaceSavingSketch, CallerCount, SketchSummary } from './callers/space-saving.js'
export {
  createCallerTracker,
  callerTrackerOf,
  setCallerTracker,
  readCallers,
  callersNamespace,
  callerSketchExpiry,
  CALLER_WINDOW_HOURS,
  DEFAULT_CALLER_SLOTS
} from './callers/tracker.js'
export type { CallerTracker, CallerTrackerOptions, CallersReport, RouteCallers } from './callers/tracker.js'
export { createTrafficRecorder, RouteTraffic, startTrafficPublisher, TRAFFIC_OUTCOMES, OUTCOME_INDEX, BLOCKED_OUTCOMES, TRAFFIC_RINGS } from './traffic.js'
export type { TrafficRecorder, TrafficRecorderOptions, TrafficOutcome, TrafficRange, TrafficBucket, TrafficReport, TrafficPush, TrafficPublisher, TrafficPublisherOptions } from './traffic.js'
export { registerEngineMetrics, metricsOptionsProblems, resolveMetricsOptions, UNMATCHED_ROUTE } from './metrics.js'
export type { MetricsOptions, MetricsRegistry, PromClientModule, BoundCounter } from './metrics.js'
