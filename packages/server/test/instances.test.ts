import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createFileBackend, createMemoryBackend } from '@waygate/core'
import { SERVICE_INSTANCES_NAMESPACE } from '../src/index.js'
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

t.test('an instance is listed as soon as it connects and gone as soon as it disconnects', async t => {
  const { backend, writes } = countingBackend()
  // no heartbeat within the test: only the write after the connect and the one after the disconnect
  const { url } = await startServer(t, { backend, heartbeatMs: 60_000 })
  const token = await login(url, { service: 'payments' })
  const admin = await login(url)
  await register(url, 'payments', token, ['GET:/a'], 'pod-1')
  const stream = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-1', { token })
  await stream.next()
  const other = await openStream(t, url, '/api/sdk/services/payments/events?instance=pod-2', { token })
  await other.next()

  const instances = async (): Promise<string[]> => (await call(url, 'GET', '/api/services', { token: admin })).body[0].instances.map((i: { id: string }) => i.id)
  t.same(await instances(), ['pod-1', 'pod-2'], 'listed from memory')
  t.equal(writes.length, 0, 'before any record was written (the connects are coalesced)')

  stream.close()
  await until('pod-1 unlisted', async () => (await instances()).length === 1)
  t.same(await instances(), ['pod-2'])
  await until('the record written', async () => writes.at(-1)?.value.instances.length === 1)
  t.equal(writes.length, 1, 'two connects and a disconnect within the delay: one write')
  t.same(writes[0]!.value.instances.map((i: { id: string }) => i.id), ['pod-2'])

  other.close()
  await until('pod-2 unlisted', async () => (await instances()).length === 0)
  await until('the record removed', async () => (await backend.listRecords(SERVICE_INSTANCES_NAMESPACE)).length === 0)
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
