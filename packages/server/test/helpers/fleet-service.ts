// A small service attached to a Waygate Server, started as its own process by the fleet tests.
// Settings from the environment: SERVICE, WAYGATE_SERVER_URL, WAYGATE_TOKEN or WAYGATE_USERNAME /
// WAYGATE_PASSWORD, CACHE_FILE, READY_TIMEOUT_MS, BACKOFF_MS, PROBE_MS, VERSION, INSTANCE_ID,
// CALLERS_PUBLISH_MS (how often the callers of /api/v1/users are published), TRAFFIC_PUBLISH_MS (how
// often the traffic goes to the server). It listens on 127.0.0.1 on
// an ephemeral port and prints `listening <url>` once it serves.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { waygateService } from '@waygate/fastify'

const number = (name: string): number | undefined => process.env[name] === undefined ? undefined : Number(process.env[name])

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
const backoffMs = number('BACKOFF_MS') ?? 150
const cacheFile = process.env.CACHE_FILE
const probeMs = number('PROBE_MS')
const callersPublishMs = number('CALLERS_PUBLISH_MS')
const trafficPublishMs = number('TRAFFIC_PUBLISH_MS')
await app.register(waygateService, {
  service: process.env.SERVICE,
  readyTimeoutMs: number('READY_TIMEOUT_MS') ?? 1500,
  backoff: { initialMs: backoffMs, maxMs: backoffMs * 4 },
  // /sync reports the SDK's own view; it is no route of the service
  ignorePrefixes: ['/sync'],
  ...(cacheFile === undefined ? {} : { cacheFile }),
  ...(probeMs === undefined ? {} : { unauthorizedProbeMs: probeMs }),
  ...(callersPublishMs === undefined ? {} : { callers: { publishIntervalMs: callersPublishMs } }),
  ...(trafficPublishMs === undefined ? {} : { trafficPublishMs }),
  ...(process.env.VERSION === undefined ? {} : { version: process.env.VERSION }),
  ...(process.env.INSTANCE_ID === undefined ? {} : { instanceId: process.env.INSTANCE_ID })
})
app.get('/health', async () => ({ ok: true, service: process.env.SERVICE }))
app.get('/api/items', async () => ({ items: [1, 2, 3] }))
app.get('/api/limited', async () => ({ ok: true }))
app.get('/api/old', { config: { waygate: { disabled: { reason: 'gone' } } } }, async () => ({}))
// deprecated; its callers are told apart by the X-Caller header
app.get('/api/v1/users', {
  config: { waygate: { deprecated: { sunset: '2030-01-01T00:00:00Z', successor: '/api/v2/users', callers: { by: request => request.headers['x-caller'] as string | undefined } } } }
}, async () => ({ users: [] }))
app.get('/sync', async () => (await app.waygate.status()).sync ?? null)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
await app.listen({ port: 0, host: '127.0.0.1' })
console.log(`listening http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
