/**
 * One app instance of the chaos soak (bench/soak/run.ts): Fastify with waygate on the Redis backend
 * at SOAK_REDIS_URL, the admin API at /waygate (admin / secret), ten managed routes `/r0`…`/r9`
 * and the unmanaged `/__rss`. Prints `READY <port>` once listening.
 */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { createEngine, createRedisBackend } from '../../packages/core/src/index.js'
import { waygate } from '../../packages/fastify/src/index.js'
import { waygateAdmin } from '../../packages/admin/src/index.js'

const url = process.env.SOAK_REDIS_URL
if (url === undefined) throw new Error('set SOAK_REDIS_URL')
const app = Fastify({ logger: { level: 'warn' } })
const engine = createEngine({
  backend: createRedisBackend({ url }, { maxAuditEntries: 1_000_000 }),
  env: 'production',
  logger: app.log.child({ name: 'waygate' })
})
await app.register(waygate, { engine, closeEngine: true })
for (let i = 0; i < 10; i++) app.get(`/r${i}`, async () => ({ route: i }))
app.get('/__rss', { config: { waygate: false } }, async () => {
  const status = readFileSync('/proc/self/status', 'utf8')
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024 }
})
await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' }, secretKey: 'soak-secret-key-0123456789abcdef' })
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.stdout.write(`READY ${new URL(address).port}\n`)
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
