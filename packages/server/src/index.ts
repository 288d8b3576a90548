export { createWaygateServer } from './server.js'
export type { WaygateServerOptions } from './server.js'
export { WG_ERR_SERVER_OPTIONS_INVALID } from './errors.js'
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
