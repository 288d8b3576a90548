import t from 'tap'
import { createRedisBackend } from '@waygate/core'
import { backendContract } from '@waygate/core/testing'
import { startRedisServer } from './helpers/redis-server.js'

const server = await startRedisServer(t)
let stores = 0

await backendContract(t, {
  name: 'redis backend',
  create: options => createRedisBackend({ url: server.url }, { keyPrefix: `contract-${++stores}`, ...options }),
  revisions: true
})
