// Run by test/memory-bounds.test.ts with --expose-gc, so its memory is its own:
//   store: drives a million distinct client keys through the memory rate-limit store, printing
//          `mem <phase> <rss> <heapUsed> <size>` before, at the end, and after the clients left
//   sse:   serves the admin API (admin / secret) with GET /__mem reporting memory after a full gc
import Fastify from 'fastify'
import { createEngine, createMemoryBackend, createMemoryRateLimitStore, createRateLimitRule } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

function measure (): { rss: number, heapUsed: number } {
  gc!()
  gc!()
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heapUsed }
}

const mode = process.argv[2]
if (mode === 'store') {
  const keys = Number(process.argv[3] ?? 1_000_000)
  const store = createMemoryRateLimitStore({ sweepIntervalMs: 0 })
  const rule = createRateLimitRule({ limits: ['100/minute', '1000/hour'] })
  const report = (phase: string): void => {
    const { rss, heapUsed } = measure()
    process.stdout.write(`mem ${phase} ${rss} ${heapUsed} ${store.size}\n`)
  }
  report('start')
  let peakRss = 0
  for (let i = 0; i < keys; i++) {
    store.check('GET:/api', `client-${i}`, rule)
    if (i % 100_000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss)
  }
  report('full')
  process.stdout.write(`peak ${peakRss}\n`)
  // the clients leave: their windows pass (resetAll stands for the expiry sweep)
  await store.resetAll()
  report('left')
  await store.close()
} else if (mode === 'sse') {
  const app = Fastify()
  const engine = createEngine({ backend: createMemoryBackend() })
  await app.register(waygate, { engine, closeEngine: true })
  app.get('/payments', async () => ({ ok: true }))
  await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' }, secretKey: 'memory-bounds-secret-0123456789' })
  app.get('/__mem', async () => measure())
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`listening ${address}\n`)
} else {
  throw new Error('usage: memory-child store [keys] | sse')
}
