// One instance of the leased Redis store hammering one key (the 4-process bound test): argv is the
// Redis socket, the limit string and the hammering time in ms. Prints `ready`, waits for the key
// `go`, then hammers and prints one JSON line:
// the admitted requests per window number, the refused and degraded counts and when it ran.
import { createRateLimitRule, createRedisRateLimitStore } from '@waygate/core'

const [socket, limits, durationArg] = process.argv.slice(2) as [string, string, string]
const rule = createRateLimitRule({ limits, algorithm: 'fixed_window' })
const windowMs = rule.limits[0]!.windowMs
let last = 0
const store = createRedisRateLimitStore({ url: socket, consistency: 'leased', timeoutMs: 5000, now: () => (last = Date.now()) })
await store.init()
process.stdout.write('ready\n')
// the parent sets `go` once every instance is ready
while (await store.client.get('go') === null) await new Promise(resolve => setTimeout(resolve, 10))

const admitted: Record<string, number> = {}
let refused = 0
let degraded = 0
const start = Date.now()
const end = start + Number(durationArg)
async function worker (): Promise<void> {
  while (Date.now() < end) {
    const answer = store.check('bench', 'client', rule)
    const t = last
    const result = await answer
    if (result.degraded) degraded++
    else if (result.allowed) {
      const w = String(Math.floor(t / windowMs))
      admitted[w] = (admitted[w] ?? 0) + 1
    } else refused++
    await new Promise(resolve => setImmediate(resolve))
  }
}
await Promise.all(Array.from({ length: 16 }, worker))
await store.close()
process.stdout.write(JSON.stringify({ admitted, refused, degraded, start, end: Date.now() }) + '\n')
