// The durable webhook outbox: a change and its deliveries are written together, so a process
// killed (SIGKILL) between the change and the delivery delivers it after a restart; attempts and
// their back-off survive restarts; a delivery that keeps failing ends as a dead letter, retried
// from there; instances sharing one Redis send each delivery once.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createEngine, createFileBackend, createRedisBackend, createMemoryBackend, type WaygateBackend } from '@waygate/core'
import { freePort, startProcess, until, type Proc } from '@waygate/core/testing'
import { startRedisServer, type Teardown } from './helpers/redis-server.js'
import { startReceiver, type Received } from './helpers/webhook-receiver.js'

const CHILD = fileURLToPath(new URL('./helpers/outbox-child.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')
const redis = await startRedisServer(t)
let prefixes = 0

type Kind = 'file' | 'redis'

interface Place {
  kind: Kind
  /** The file path or the Redis URL. */
  where: string
  prefix: string
}

async function place (t: Teardown, kind: Kind): Promise<Place> {
  const prefix = `outbox${++prefixes}`
  if (kind === 'redis') return { kind, where: redis.url, prefix }
  const dir = await mkdtemp(join(tmpdir(), 'waygate-outbox-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return { kind, where: join(dir, 'state.json'), prefix }
}

function app (t: Teardown, at: Place, url: string, mode: 'change' | 'serve', env: Record<string, string> = {}): Proc {
  return startProcess(t, `${at.kind} ${mode}`, ['--conditions=@waygate/source', '--import', TSX, CHILD, at.kind, at.where, url, mode],
    { env: { PREFIX: at.prefix, ...env } })
}

interface FileOutbox {
  pending: Record<string, { attempts: number, due: number, delivery: { eventId: string } }>
  dead: Record<string, { attempts: number, lastError: string, delivery: { eventId: string } }>
}

async function fileOutbox (path: string): Promise<FileOutbox> {
  const doc = JSON.parse(await readFile(path, 'utf8')) as { outbox?: Partial<FileOutbox> }
  return { pending: doc.outbox?.pending ?? {}, dead: doc.outbox?.dead ?? {} }
}

/** Pending deliveries in Redis under a prefix (the command helper answers raw RESP: `:3\r\n`). */
async function redisPending (prefix: string): Promise<number> {
  const reply = await redis.command('HLEN', `{${prefix}}:outbox`)
  return Number(/^:(\d+)/.exec(reply)?.[1] ?? Number.NaN)
}

async function pendingCount (at: Place): Promise<number> {
  if (at.kind === 'file') return Object.keys((await fileOutbox(at.where)).pending).length
  return redisPending(at.prefix)
}

/** The audit id of the one `disable` the child made. */
async function changeId (at: Place): Promise<string> {
  const backend: WaygateBackend = at.kind === 'file' ? createFileBackend({ path: at.where }) : createRedisBackend({ url: at.where }, { keyPrefix: at.prefix })
  await backend.init?.()
  try {
    const [entry] = await backend.listAudit({ action: 'disable' })
    if (entry === undefined) throw new Error('no disable in the audit log')
    return entry.id
  } finally {
    await backend.close()
  }
}

/** What a receiver that drops repeated delivery ids keeps. */
function deduped (received: readonly Received[]): Received[] {
  const seen = new Set<string>()
  return received.filter(r => {
    const id = String(r.headers['x-waygate-delivery'])
    if (seen.has(id)) return false
    seen.add(id)
    return true
  })
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

for (const kind of ['file', 'redis'] as const) {
  t.test(`${kind}: killed right after a change while the receiver is down, the restarted app delivers it, once`, async t => {
    const at = await place(t, kind)
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/hook`
    const first = app(t, at, url, 'change')
    await first.waitFor(/changed disabled\n/, 60_000)
    await first.stop('SIGKILL')
    t.equal(await pendingCount(at), 1, 'the delivery was stored with the change')

    const receiver = await startReceiver(t, { port })
    const second = app(t, at, url, 'serve')
    await second.waitFor(/started\n/, 60_000)
    await receiver.waitFor(1, 60_000)
    // anything sent twice would arrive within this time
    await sleep(1500)
    t.equal(receiver.received.length, 1, 'the receiver got exactly one request')
    const got = receiver.received[0]!
    t.match(got.json, { event: 'disable', key: 'GET:/payments', actor: 'alice', reason: 'crash test' }, 'the change made before the kill')
    t.equal(got.headers['x-waygate-delivery'], await changeId(at), 'its delivery id is the change\'s audit id')
    await until(async () => await pendingCount(at) === 0 ? true : undefined, 10_000, () => 'the outbox still holds the delivery')
  })
}

t.test('file: killed while the receiver holds the request, the delivery is sent again after its lease; one after dedupe', async t => {
  const at = await place(t, 'file')
  const receiver = await startReceiver(t, { answers: ['hang'] })
  const first = app(t, at, receiver.url, 'change', { TIMEOUT_MS: '1000' })
  await first.waitFor(/changed disabled\n/, 60_000)
  await receiver.waitFor(1, 60_000)
  await first.stop('SIGKILL')

  const second = app(t, at, receiver.url, 'serve', { TIMEOUT_MS: '1000' })
  await second.waitFor(/started\n/, 60_000)
  // the first claim's lease (timeout + 5 s) has to run out: it might still have been delivering
  await receiver.waitFor(2, 60_000)
  await until(async () => await pendingCount(at) === 0 ? true : undefined, 10_000, () => 'the outbox still holds the delivery')
  await sleep(1000)
  t.equal(receiver.received.length, 2, 'at least once: the unanswered request was sent again')
  t.equal(deduped(receiver.received).length, 1, 'both carry the same delivery id: one change after dedupe')
  t.equal(receiver.received[1]!.headers['x-waygate-delivery'], await changeId(at), 'the change\'s audit id')
})

t.test('file: attempts and their back-off survive a restart; after the last one the delivery is a dead letter, retried from there', async t => {
  const at = await place(t, 'file')
  const receiver = await startReceiver(t, { fallback: 503 })
  const env = { RETRIES: '3', RETRY_DELAY_MS: '400' }
  const first = app(t, at, receiver.url, 'change', env)
  await first.waitFor(/changed disabled\n/, 60_000)
  await receiver.waitFor(2, 20_000)
  await first.stop('SIGKILL')
  const stored = Object.values((await fileOutbox(at.where)).pending)
  t.equal(stored.length, 1, 'still pending after two failed attempts')
  t.equal(stored[0]!.attempts, 2, 'with its two attempts counted')
  t.ok(stored[0]!.due > Date.now() - 1000, 'and its next attempt time stored')

  const second = app(t, at, receiver.url, 'serve', env)
  await second.waitFor(/started\n/, 60_000)
  await receiver.waitFor(4, 60_000)
  await until(async () => Object.keys((await fileOutbox(at.where)).dead).length === 1 ? true : undefined, 10_000, () => 'no dead letter')
  await sleep(1500)
  t.equal(receiver.received.length, 4, 'four attempts in all (retries: 3), across the restart, then no more')
  const gaps = receiver.received.slice(1).map((r, i) => r.at - receiver.received[i]!.at)
  // the pause doubles with each retry (±25 % jitter); a slow machine only makes gaps longer
  t.ok(gaps[0]! >= 300 && gaps[2]! >= 1200, `back-off grows: gaps ${gaps.map(Math.round).join(', ')} ms`)
  const outbox = await fileOutbox(at.where)
  t.same(Object.keys(outbox.pending), [], 'nothing pending')
  const [dead] = Object.values(outbox.dead)
  t.match(dead, { attempts: 4, lastError: 'answered 503' }, 'the dead letter says how often and why')
  t.match(second.logs(), /webhook delivery failed; kept as a dead letter/, 'and it was logged')
  await second.stop('SIGKILL')

  receiver.fallback = 200
  const engine = createEngine({ backend: createFileBackend({ path: at.where }), resyncIntervalMs: 0, webhooks: [{ url: receiver.url }] })
  t.teardown(() => engine.close())
  await engine.start()
  t.ok(engine.webhooksDurable, 'the file backend keeps a durable outbox')
  const letters = await engine.listDeadLetters()
  t.equal(letters.length, 1)
  t.equal(letters[0]!.delivery.eventId, receiver.received[0]!.headers['x-waygate-delivery'])
  t.equal(await engine.retryDeadLetter(letters[0]!.delivery.id), true, 'retried')
  await receiver.waitFor(5, 20_000)
  t.match(receiver.received[4]!.json, { event: 'disable', key: 'GET:/payments' }, 'and delivered')
  await until(async () => (await engine.listDeadLetters()).length === 0 && await pendingCount(at) === 0 ? true : undefined, 10_000,
    () => 'the delivery is still in the outbox')
  t.equal(await engine.retryDeadLetter(letters[0]!.delivery.id), false, 'a dead letter that is gone cannot be retried')
})

t.test('redis: two instances, deliveries piled up while the receiver was down: each sent once', async t => {
  const prefix = `outbox${++prefixes}`
  const port = await freePort()
  const url = `http://127.0.0.1:${port}/hook`
  const engines = []
  for (let i = 0; i < 2; i++) {
    const engine = createEngine({
      backend: createRedisBackend({ url: redis.url }, { keyPrefix: prefix }),
      resyncIntervalMs: 0,
      webhooks: [{ url, retries: 10, retryDelayMs: 100, timeoutMs: 2000 }]
    })
    t.teardown(() => engine.close())
    for (let r = 0; r < 10; r++) engine.declareRoute('GET', `/r${r}`)
    await engine.start()
    await engine.registerDeclaredRoutes()
    engines.push(engine)
  }
  const [a, b] = engines as [typeof engines[0], typeof engines[0]]
  for (let r = 0; r < 10; r++) {
    await a.disable(`GET:/r${r}`, { reason: `a${r}` })
    await b.setMaintenance(`GET:/r${r}`, { reason: `b${r}` })
  }
  t.equal(await redisPending(prefix), 20, 'twenty deliveries wait')
  const receiver = await startReceiver(t, { port })
  await receiver.waitFor(20, 60_000)
  await until(async () => await redisPending(prefix) === 0 ? true : undefined, 10_000, () => 'deliveries still pending')
  await sleep(1500)
  t.equal(receiver.received.length, 20, 'twenty requests')
  t.equal(deduped(receiver.received).length, 20, 'twenty distinct delivery ids: none sent twice')
  t.same(receiver.received.map(r => (r.json as { reason: string }).reason).sort(),
    Array.from({ length: 10 }, (_, r) => [`a${r}`, `b${r}`]).flat().sort(), 'every change')
})

t.test('a claim is exclusive until its lease ends, then anyone may take it; a lost claim cannot complete', async t => {
  for (const kind of ['memory', 'file', 'redis'] as const) {
    let backend: WaygateBackend
    if (kind === 'memory') backend = createMemoryBackend({ webhookOutbox: true })
    else if (kind === 'file') backend = createFileBackend({ path: (await place(t, 'file')).where })
    else backend = createRedisBackend({ url: redis.url }, { keyPrefix: `outbox${++prefixes}` })
    t.teardown(() => backend.close())
    await backend.init?.()
    const outbox = backend.outbox!
    const entry = { id: `e-${kind}`, timestamp: new Date().toISOString(), key: 'GET:/x', service: null, action: 'disable' as const, actor: 'a', platform: 'api' as const, reason: '', previousStatus: null, newStatus: null }
    const delivery = { id: 'ab'.repeat(16), eventId: entry.id, event: 'disable', key: 'GET:/x', webhook: 'w1', target: 'http://x', body: '{}', createdAt: Date.now() }
    t.equal(await backend.appendAudit(entry, [delivery]), true)
    t.equal(await backend.appendAudit(entry, [{ ...delivery, id: 'cd'.repeat(16) }]), false, `${kind}: a known audit id stores no deliveries`)
    const now = Date.now()
    t.same((await outbox.claim({ webhooks: ['w2'], now, leaseUntil: now + 1000, limit: 10 })).claims, [], `${kind}: only known webhooks are claimed`)
    const one = await outbox.claim({ webhooks: ['w1'], now, leaseUntil: now + 1000, limit: 10 })
    t.equal(one.claims.length, 1, `${kind}: claimed`)
    t.match(one.claims[0], { attempts: 1, delivery }, `${kind}: as written`)
    t.same((await outbox.claim({ webhooks: ['w1'], now, leaseUntil: now + 1000, limit: 10 })).claims, [], `${kind}: not twice within the lease`)
    const later = await outbox.claim({ webhooks: ['w1'], now: now + 1000, leaseUntil: now + 2000, limit: 10 })
    t.equal(later.claims[0]?.attempts, 2, `${kind}: again once the lease ended`)
    t.equal(await outbox.complete(one.claims[0]!), false, `${kind}: the first claimer lost it`)
    t.equal(await outbox.fail(later.claims[0]!, null, 'answered 410', now), true, `${kind}: dead`)
    t.equal(await outbox.pendingCount(), 0)
    t.match(await outbox.listDead(), [{ attempts: 2, lastError: 'answered 410', delivery: { id: delivery.id } }], `${kind}: a dead letter`)
    t.equal(await outbox.retryDead(delivery.id, now), true)
    const again = await outbox.claim({ webhooks: ['w1'], now, leaseUntil: now + 1000, limit: 10 })
    t.equal(again.claims[0]?.attempts, 1, `${kind}: retried with its attempts starting over`)
    t.equal(await outbox.complete(again.claims[0]!), true)
    t.equal(await outbox.pendingCount(), 0, `${kind}: sent`)
    t.equal(await outbox.deleteDead(delivery.id), false)
  }
})
