export { backendContract } from './backend-contract.js'
export type { BackendContractTest, BackendContractOptions, BackendContractCreateOptions } from './backend-contract.js'
export { routeState, auditEntry, waitFor, BUILT_AT } from './builders.js'
