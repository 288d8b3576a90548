// A second Waygate Server process on the same Redis as the test's own, started by the dashboard's
// browser test so that it can be frozen (SIGSTOP): the instances connected to it then stop
// heartbeating while their streams stay open. Settings from the environment: WAYGATE_REDIS_URL,
// WAYGATE_SECRET_KEY, HEARTBEAT_MS. Listens on 127.0.0.1 on an ephemeral port and prints
// `listening <url>` once it serves.
import type { AddressInfo } from 'node:net'
import { createRedisBackend } from '@waygate/core'
import { createWaygateServer } from '../../src/index.js'

const app = await createWaygateServer({
  backend: createRedisBackend({ url: process.env.WAYGATE_REDIS_URL! }),
  auth: { username: 'admin', password: 'secret' },
  secretKey: process.env.WAYGATE_SECRET_KEY,
  heartbeatMs: Number(process.env.HEARTBEAT_MS ?? 15_000),
  dashboard: false,
  logger: { level: 'warn' }
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
await app.listen({ port: 0, host: '127.0.0.1' })
console.log(`listening http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
