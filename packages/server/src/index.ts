export { createWaygateServer } from './server.js'
export type { WaygateServerOptions } from './server.js'
export { WG_ERR_SERVER_OPTIONS_INVALID, WG_ERR_TOKEN_NOT_FOUND } from './errors.js'
export { createServiceTokens, parseTokenDuration, SERVICE_TOKENS_NAMESPACE } from './tokens.js'
export type { ServiceTokenInfo, ServiceTokens, ServiceTokensDeps } from './tokens.js'
export { parseEventId } from './streams.js'
export type { ServiceSnapshot, WireChange } from './streams.js'
export type { ServiceInstance } from './fleet.js'
export {
  SERVICE_MAINTENANCE_NAMESPACE,
  SERVICE_INSTANCES_NAMESPACE,
  SERVICE_MANIFESTS_NAMESPACE,
  SERVICES_KNOWN_NAMESPACE,
  SERVER_NAMESPACE,
  servicePolicyId
} from './wire.js'
