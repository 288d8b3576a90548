// Micro-measurements of one rate limit check (not a test): ns per check and bytes allocated per
// check. Run: node --expose-gc --conditions=@waygate/source --import tsx packages/core/test/rate-limit/helpers/micro-bench.ts
import { createMemoryRateLimitStore, createRateLimitRule, createRedisRateLimitStore, ipKey, UNLIMITED_RESULT } from '@waygate/core'
import type { RateLimitRule } from '@waygate/core'
import { startRedisServer } from './redis-server.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

function measure (name: string, fn: (i: number) => unknown, iterations = 2_000_000): void {
  for (let i = 0; i < 200_000; i++) fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) fn(i)
  const ns = Number(process.hrtime.bigint() - start) / iterations
  // bytes: a batch small enough to fit in the young generation, between two full collections
  const batch = 20_000
  const samples: number[] = []
  for (let r = 0; r < 5; r++) {
    gc?.()
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < batch; i++) fn(i)
    samples.push((process.memoryUsage().heapUsed - before) / batch)
  }
  samples.sort((a, b) => a - b)
  console.log(`${name.padEnd(58)} ${ns.toFixed(0).padStart(5)} ns/check  ${(samples[2] as number).toFixed(0).padStart(4)} B/check`)
}

const ips = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
const big = '20000000/hour'

// One algorithm per process (argv[2]) unless "all": what one process runs shapes what V8 inlines
const only = process.argv[2] ?? 'sliding_window'

for (const algorithm of ['sliding_window', 'fixed_window', 'token_bucket', 'moving_window'] as const) {
  if (only !== 'all' && only !== algorithm) continue
  if (algorithm === 'moving_window') {
    // a log of every request: measured with a realistic limit over 10k clients
    const store = createMemoryRateLimitStore()
    const rule = createRateLimitRule({ limits: '100/minute', algorithm })
    measure(`memory ${algorithm} 100/minute, 10k clients (allowed, then 429)`, i => store.check('GET:/x', ips[i % 10_000] as string, rule), 1_000_000)
    continue
  }
  const rule = createRateLimitRule({ limits: big, algorithm })
  const one = createMemoryRateLimitStore()
  measure(`memory ${algorithm} allowed, one client`, () => one.check('GET:/x', 'client', rule))
  const lent = createMemoryRateLimitStore()
  const out = { ...UNLIMITED_RESULT }
  measure(`memory ${algorithm} allowed, one client, result lent`, () => lent.check('GET:/x', 'client', rule, 1, out))
  const many = createMemoryRateLimitStore()
  measure(`memory ${algorithm} allowed, 10k clients`, i => many.check('GET:/x', ips[i % 10_000] as string, rule))
  const tiny = createRateLimitRule({ limits: '1/hour', algorithm })
  const refused = createMemoryRateLimitStore()
  refused.check('GET:/429', 'client', tiny)
  measure(`memory ${algorithm} refused (429 path)`, () => refused.check('GET:/429', 'client', tiny))
}
if (only === 'sliding_window' || only === 'all') {
  const two = createRateLimitRule({ limits: ['2000000/second', big] })
  const store = createMemoryRateLimitStore()
  measure('memory sliding_window two limits, allowed', () => store.check('GET:/z', 'client', two))
  measure('ipKey IPv4', i => ipKey(ips[i % 10_000] as string))
  measure('ipKey IPv6 /64', () => ipKey('2001:db8:1:2:3:4:5:6'))
}

if (only === 'redis') await redisCases()

async function redisCases (): Promise<void> {
  const server = await startRedisServer({ teardown: () => {} })
  try {
    const client = server.client({ enableAutoPipelining: process.argv[3] === 'pipelined' })
    const redis = createRedisRateLimitStore({ client, timeoutMs: 1000 })
    await redis.init()
    const tiny: RateLimitRule = createRateLimitRule({ limits: '1/hour' })
    await redis.check('GET:/429', 'client', tiny)
    await redis.check('GET:/429', 'client', tiny)
    measure('redis refused from the local blocked cache (429 path)', () => redis.check('GET:/429', 'client', tiny))
    const rule = createRateLimitRule({ limits: big })
    const n = 20_000
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i += 100) {
      const batch: Array<unknown> = []
      for (let j = 0; j < 100; j++) batch.push(redis.check('GET:/x', ips[(i + j) % 10_000] as string, rule))
      await Promise.all(batch)
    }
    const us = Number(process.hrtime.bigint() - start) / n / 1000
    const used = process.cpuUsage(cpu)
    console.log(`${'redis sliding_window allowed, 100 in flight'.padEnd(58)} ${us.toFixed(1).padStart(5)} µs/check wall, ${((used.user + used.system) / n).toFixed(1)} µs/check node CPU`)
    const cpu2 = process.cpuUsage()
    for (let i = 0; i < n; i += 100) {
      const batch: Array<unknown> = []
      for (let j = 0; j < 100; j++) batch.push(client.get('x'))
      await Promise.all(batch)
    }
    const used2 = process.cpuUsage(cpu2)
    console.log(`${'for scale: ioredis GET, 100 in flight'.padEnd(58)} ${((used2.user + used2.system) / n).toFixed(1)} µs/command node CPU`)
    await redis.close()
    client.disconnect()
  } finally {
    await server.kill()
  }
}
