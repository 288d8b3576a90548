// Crash safety of the file backend: the process is SIGKILLed at random moments while it writes, in
// a loop. After every kill the state file must be valid JSON, and a backend opened on it must hold
// every change whose write had resolved (atomic rename of an fsynced temporary file, then an fsync
// of the directory).
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createFileBackend } from '@waygate/core'
import { startProcess } from '@waygate/core/testing'

const CHILD = fileURLToPath(new URL('../helpers/file-crash-child.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')
const ROUNDS = 12

/** A deterministic sequence of kill delays, so a failure can be replayed. */
function delays (seed: number): () => number {
  let x = seed
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648
    return 20 + (x % 250)
  }
}

t.test('SIGKILL while writing, again and again: the file stays valid and keeps every acknowledged change', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-crash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'state.json')
  const nextDelay = delays(7)
  /** For each route, the highest write number acknowledged so far. */
  const acked = new Map<string, number>()
  const ackedRecords = new Map<string, number>()
  let next = 1
  let totalAcked = 0

  for (let round = 0; round < ROUNDS; round++) {
    const child = startProcess(t, `writer ${round}`, ['--conditions=@waygate/source', '--import', TSX, CHILD, path, String(next)])
    await child.waitFor(/ready\n/)
    // let it write for a while: a few writes at least, so the kill lands mid-way through one
    await child.waitFor(new RegExp(`ack ${next + 2}\\n`), 30_000)
    await new Promise(resolve => setTimeout(resolve, nextDelay()))
    await child.stop('SIGKILL')

    const acks = [...child.logs().matchAll(/ack (\d+)\n/g)].map(m => Number(m[1]))
    t.ok(acks.length >= 3, `round ${round}: ${acks.length} writes acknowledged before the kill`)
    for (const n of acks) {
      acked.set(`GET:/r${n % 7}`, n)
      ackedRecords.set(`r${n % 3}`, n)
    }
    totalAcked += acks.length

    const raw = await readFile(path, 'utf8')
    let parsed: unknown
    t.doesNotThrow(() => { parsed = JSON.parse(raw) }, `round ${round}: the state file is valid JSON`)
    t.equal(typeof parsed, 'object')

    const backend = createFileBackend({ path })
    const snapshot = await backend.load()
    const byKey = new Map(snapshot.routes.map(route => [route.key, route]))
    const lost: string[] = []
    for (const [key, n] of acked) {
      // a later write may have landed without its ack printed: never an older one
      const reason = Number(byKey.get(key)?.reason ?? -1)
      if (reason < n) lost.push(`${key}: acknowledged ${n}, file has ${reason}`)
    }
    for (const [id, n] of ackedRecords) {
      const record = await backend.getRecord('crash-test', id)
      const value = (record?.value as { n?: number } | undefined)?.n ?? -1
      if (value < n) lost.push(`record ${id}: acknowledged ${n}, file has ${value}`)
    }
    const audit = new Set((await backend.listAudit({ limit: 100_000 })).map(entry => entry.id))
    for (const n of acks) if (!audit.has(`crash-${n}`)) lost.push(`audit entry crash-${n}`)
    t.same(lost, [], `round ${round}: nothing acknowledged is lost`)
    await backend.close()
    next = Math.max(...acks) + 2
  }
  t.ok(totalAcked >= ROUNDS * 3, `${totalAcked} acknowledged writes survived ${ROUNDS} kills`)
})
