import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { createEngine, createFileBackend, createMemoryBackend } from '@waygate/core'
import { SERVICE_INSTANCES_NAMESPACE } from '../src/index.js'
import { createFleet } from '../src/fleet.js'
import { createInstanceRegistry } from '../src/instances.js'
import { call, login, openStream, register, startServer } from './helpers/server.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function until (what: string, check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(20)
  }
}

/** A memory backend that counts the writes of instance records. */
function countingBackend (): { backend: ReturnType<typeof createMemoryBackend>, writes: Array<{ id: string, value: any }> } {
  const backend = createMemoryBackend()
  const writes: Array<{ id: string, value: any }> = []
  const putRecord = backend.putRecord.bind(backend)
  backend.putRecord = async (namespace, id, value, options) => {
    if (namespace === SERVICE_INSTANCES_NAMESPACE) writes.push({ id, value })
    return putRecord(namespace, id, value, options)
  }
  return { backend, writes }
}

t.test('heartbeats write one record per period, however many instances are connected', async t => {
  const heartbeatMs = 100
  const { backend, writes } = countingBackend()
  const { url } = await startServer(t, { backend, heartbeatMs })
  const token = await login(url, { service: 'payments' })
  const connected = 30
  for (let i = 0; i < connected; i++) t.equal((await register(url, 'payments', token, ['GET:/a'], `pod-${i}`)).status, 200)
  for (let i = 0; i < connected; i++) {
    const stream = await openStream(t, url, `/api/sdk/services/payments/events?instance=pod-${i}`, { token })
    await stream.next()
  }
  await sleep(heartbeatMs * 1.5)

  writes.length = 0
  const started = Date.now()
  await sleep(heartbeatMs * 6)
  const periods = Math.ceil((Date.now() - started) / heartbeatMs)
  t.ok(writes.length >= 4, `the record is refreshed at the heartbeats (${writes.length} writes in ${periods} periods)`)
  t.ok(writes.length <= periods + 1, `at most one write per period (${writes.length} writes in ${periods} periods, ${connected} instances)`)
  t.same(new Set(writes.map(w => w.id)).size, 1, 'one record, the server process\'s')
  t.equal(writes.at(-1)!.value.instances.length, connected, 'listing every connected instance')
  t.match(writes.at(-1)!.value.instances[0], { service: 'payments', id: 'pod-0', host: 'test-host', version: '1.0.0', connectedSince: String, lastHeartbeat: String, revision: Number })

  const admin = await login(url)
  const listed = (await call(url, 'GET', '/api/services', { token: admin })).body
  t.equal(listed[0].instances.length, connected)
})

t.test('an instance is listed as soon as it connects; once its stream closes it stays listed, disconnected, until it connects again', async t => {
  const { backend, writes } = countingBackend()
  // no heartbeat within the test: only the write after the connects and the one after the disconnect
  const { url } = await startServer(t, { backend, heartbeatMs: 60_000 })
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  await register(url, 'payments', token, ['GET:/a'], 'pod-1')
  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await stream.next()
  const other = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-2', { token })
  await other.next()

  const listed = async (): Promise<any[]> => (await call(url, 'GET', '/api/services', { token: admin })).body[0].instances
  const states = async (): Promise<string[]> => (await listed()).map((i: { id: string, state: string }) => `${i.id} ${i.state}`)
  t.same(await states(), ['pod-1 connected', 'pod-2 connected'], 'listed from memory')
  t.match((await listed())[0], { stale: false, disconnectedAt: null })
  t.equal(writes.length, 0, 'before any record was written (the connects are coalesced)')

  const closedAt = Date.now()
  stream.close()
  await until('pod-1 disconnected', async () => (await states())[0] === 'pod-1 disconnected')
  const gone = (await listed())[0]
  t.match(gone, { id: 'pod-1', host: 'test-host', version: '1.0.0', stale: true, state: 'disconnected', connectedSince: String, lastHeartbeat: String })
  t.ok(Math.abs(Date.parse(gone.disconnectedAt) - closedAt) < 2000, `disconnectedAt is when the stream closed (${gone.disconnectedAt})`)
  t.same(await states(), ['pod-1 disconnected', 'pod-2 connected'], 'the other instance stays connected')
  await until('the record written', async () => writes.length === 1)
  t.same(writes[0]!.value.instances.map((i: { id: string, disconnectedAt: string | null }) => [i.id, i.disconnectedAt !== null]), [['pod-1', true], ['pod-2', false]],
    'two connects and a disconnect within the delay: one write, which tells the other processes it is disconnected')

  // the same instance opens a stream again: connected at once, the same record
  const again = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await again.next()
  t.same(await states(), ['pod-1 connected', 'pod-2 connected'], 'reconnected: connected again at once')
  t.match((await listed())[0], { stale: false, disconnectedAt: null, host: 'test-host' })
  again.close()
  other.close()
  await until('both disconnected', async () => (await states()).join() === 'pod-1 disconnected,pod-2 disconnected')
  await until('the record says so', async () => writes.at(-1)?.value.instances.every((i: { disconnectedAt: string | null }) => i.disconnectedAt !== null) === true)
})

t.test('a disconnected instance is listed for 60 s (three heartbeats when longer), then goes, from the list and the record', async t => {
  let now = Date.now()
  const backend = createMemoryBackend()
  const engine = createEngine({ backend, now: () => now })
  await engine.start()
  t.teardown(() => engine.close())
  const fleet = createFleet(engine)
  await fleet.start()
  t.teardown(() => fleet.close())
  const log = { warn () {} } as unknown as FastifyBaseLogger
  const registry = createInstanceRegistry({ engine, fleet, log, heartbeatMs: 1000, debounceMs: 1 })
  t.teardown(() => registry.close())
  const record = async (): Promise<any> => (await backend.listRecords(SERVICE_INSTANCES_NAMESPACE))[0]?.value ?? null

  registry.registered('payments', { id: 'pod-1', host: 'node-1', version: '3.0.0', pid: 99 })
  const stream = registry.connect('payments', 'pod-1', new Date(now).toISOString(), () => 7)
  now += 500
  stream.beat()
  now += 1500
  stream.disconnect()
  const disconnectedAt = new Date(now).toISOString()
  t.match(registry.list(), [{ id: 'pod-1', host: 'node-1', pid: 99, revision: 7, disconnectedAt, lastHeartbeat: new Date(now - 1500).toISOString() }], 'as it was when its stream closed')
  await until('the record tells it', async () => (await record())?.instances[0]?.disconnectedAt === disconnectedAt)

  now += 59_000
  registry.flush()
  await sleep(50)
  t.equal(registry.list().length, 1, 'still listed 59 s after')
  t.equal((await record())?.instances.length, 1, 'and in the record, rewritten at the heartbeats')
  now += 1_001
  t.same(registry.list(), [], 'gone 60 s after')
  registry.flush()
  await until('the record removed (nothing left)', async () => (await record()) === null)

  // with long heartbeats, three of them
  const slow = createInstanceRegistry({ engine, fleet, log, heartbeatMs: 30_000, debounceMs: 1 })
  t.teardown(() => slow.close())
  slow.connect('payments', 'pod-2', new Date(now).toISOString(), () => 1).disconnect()
  now += 89_000
  t.equal(slow.list().length, 1, 'heartbeats of 30 s: still listed after 89 s')
  now += 1_001
  t.same(slow.list(), [], 'gone after 90 s')
})

t.test('across server processes on one backend: a disconnection shows on the other, a reconnection there is connected at once', async t => {
  const backend = createMemoryBackend()
  const a = await startServer(t, { backend, heartbeatMs: 60_000 })
  const b = await startServer(t, { backend, heartbeatMs: 60_000 })
  const token = await login(a.url, { service: 'payments' })
  const admin = await login(a.url)
  const adminB = await login(b.url)
  const states = async (url: string, who: string): Promise<string[]> =>
    ((await call(url, 'GET', '/api/services', { token: who })).body[0]?.instances ?? []).map((i: { id: string, state: string }) => `${i.id} ${i.state}`)

  await register(a.url, 'payments', token, ['GET:/a'], 'pod-1')
  const onA = await openStream(t, a.url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await onA.next()
  await until('B lists pod-1 connected', async () => (await states(b.url, adminB)).join() === 'pod-1 connected')

  onA.close()
  await until('B lists pod-1 disconnected', async () => (await states(b.url, adminB)).join() === 'pod-1 disconnected')
  const seen = (await call(b.url, 'GET', '/api/services', { token: adminB })).body[0].instances[0]
  t.match(seen, { id: 'pod-1', host: 'test-host', stale: true, state: 'disconnected', disconnectedAt: String }, 'B tells what A recorded')

  // it comes back through B: connected there at once, and on A once B's record is written
  const onB = await openStream(t, b.url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await onB.next()
  t.same(await states(b.url, adminB), ['pod-1 connected'], 'B: connected at once, one entry')
  await until('A lists it connected (B\'s record beats its own disconnection)', async () => (await states(a.url, admin)).join() === 'pod-1 connected')
  onB.close()
})

t.test('lists the instances of the other server processes\' records with its own', async t => {
  const backend = createMemoryBackend()
  const { url } = await startServer(t, { backend, heartbeatMs: 60_000 })
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  await register(url, 'payments', token, ['GET:/a'], 'pod-1')
  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await stream.next()

  const at = new Date().toISOString()
  const instance = (service: string, id: string, fields = {}): object =>
    ({ service, id, host: 'elsewhere', version: '2.0.0', pid: 7, connectedSince: at, lastHeartbeat: at, revision: 1, ...fields })
  await backend.putRecord(SERVICE_INSTANCES_NAMESPACE, 'server-b', {
    server: 'server-b',
    instances: [instance('payments', 'pod-9'), instance('orders', 'pod-3'), instance('payments', 'pod-1', { host: 'stale', lastHeartbeat: '2000-01-01T00:00:00.000Z' }), { junk: true }]
  }, { expiresAt: Date.now() + 60_000 })
  await backend.putRecord(SERVICE_INSTANCES_NAMESPACE, 'server-dead', { server: 'server-dead', instances: [instance('payments', 'pod-dead')] }, { expiresAt: Date.now() - 1 })

  const listed = (await call(url, 'GET', '/api/services', { token: admin })).body
  t.match(listed, [
    { name: 'orders', routes: 0, instances: [{ id: 'pod-3', host: 'elsewhere' }] },
    { name: 'payments', routes: 1, instances: [{ id: 'pod-1', host: 'test-host' }, { id: 'pod-9', host: 'elsewhere', pid: 7 }] }
  ])
  t.equal(listed[1].instances.length, 2, 'one entry per instance; an expired record lists nothing')
})

t.test('a graceful close removes the process\'s record', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-instances-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'state.json')
  const { app, url } = await startServer(t, { backend: createFileBackend({ path }), heartbeatMs: 50 })
  const token = await login(url, { service: 'payments' })
  await register(url, 'payments', token, ['GET:/a'], 'pod-1')
  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await stream.next()
  const reader = createFileBackend({ path })
  t.teardown(() => reader.close())
  await until('the record written', async () => (await reader.listRecords(SERVICE_INSTANCES_NAMESPACE)).length === 1)
  await app.close()
  t.same(await reader.listRecords(SERVICE_INSTANCES_NAMESPACE), [], 'no instance left listed by a server that stopped')
})

t.test('an instance that skipped registration (the manifest was known) is listed with the host, version and pid of its stream', async t => {
  const { url } = await startServer(t, { backend: createMemoryBackend(), heartbeatMs: 60_000 })
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  await register(url, 'payments', token, ['GET:/a'], 'pod-1')
  // pod-2 registers nothing: it streams only, naming itself on the query as the SDK does
  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-2&host=node-7&version=2.1.0&pid=4242', { token })
  await stream.next()
  const listed = (await call(url, 'GET', '/api/services', { token: admin })).body[0].instances
  t.match(listed.find((i: { id: string }) => i.id === 'pod-2'), { id: 'pod-2', host: 'node-7', version: '2.1.0', pid: 4242 })
  const bad = await call(url, 'GET', '/api/sdk/services/payments/events?instance=pod-3&pid=minus-one', { token })
  t.equal(bad.status, 400, 'details are validated like a registration\'s')
  stream.close()
})
