// Run by test/backends/file-crash.test.ts in its own process: writes route changes, audit entries
// and records to a file backend one after another, printing `ack N` once write N resolved, until
// the parent kills it with SIGKILL at a moment it does not choose.
import { createFileBackend } from '@waygate/core'
import { routeState } from '@waygate/core/testing'

const [path, firstArg] = process.argv.slice(2)
if (path === undefined || firstArg === undefined) throw new Error('usage: file-crash-child <path> <first>')
const backend = createFileBackend({ path })
process.stdout.write('ready\n')

for (let n = Number(firstArg); ; n++) {
  const key = `GET:/r${n % 7}`
  const now = new Date().toISOString()
  await backend.updateRoute(key, () => ({
    next: routeState(key, { status: n % 2 === 0 ? 'maintenance' : 'disabled', reason: String(n), updatedAt: now, updatedBy: 'crash' }),
    audit: {
      id: `crash-${n}`,
      timestamp: now,
      key,
      service: null,
      action: 'disable',
      actor: 'crash',
      platform: 'system',
      reason: String(n),
      previousStatus: 'active',
      newStatus: 'disabled'
    }
  }))
  // a record too, so the file's other sections are written under the same crash
  await backend.putRecord('crash-test', `r${n % 3}`, { n })
  process.stdout.write(`ack ${n}\n`)
}
