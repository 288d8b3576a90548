// Run by test/backends/file.test.ts in its own process: increments a counter stored in the
// `reason` of one route, `count` times concurrently, once the parent says go.
import { createInterface } from 'node:readline'
import { createFileBackend } from '@waygate/core'
import { routeState } from '@waygate/core/testing'

const [path, countArg, prefix] = process.argv.slice(2)
if (path === undefined || countArg === undefined || prefix === undefined) {
  throw new Error('usage: file-backend-child <path> <count> <prefix>')
}
const key = 'GET:/counter'
const backend = createFileBackend({ path })

const lines = createInterface({ input: process.stdin })
process.stdout.write('ready\n')
for await (const line of lines) if (line === 'go') break
lines.close()

await Promise.all(Array.from({ length: Number(countArg) }, (_, i) => backend.updateRoute(key, current => {
  const count = Number(current?.reason ?? '0') + 1
  const now = new Date().toISOString()
  return {
    next: routeState(key, { reason: String(count), updatedAt: now, updatedBy: prefix }),
    audit: {
      id: `${prefix}-${i}`,
      timestamp: now,
      key,
      service: null,
      action: 'enable',
      actor: prefix,
      platform: 'system',
      reason: String(count),
      previousStatus: 'active',
      newStatus: 'active'
    }
  }
})))
await backend.close()
process.stdout.write('done\n')
