import t from 'tap'
import { createMemoryBackend } from '@waygate/core'
import { SERVICE_MANIFESTS_NAMESPACE, SERVICES_KNOWN_NAMESPACE } from '../src/index.js'
import { call, declared, login, startServer } from './helpers/server.js'

t.test('the instances of a service registering at once write its manifest and first registration once', async t => {
  const backend = createMemoryBackend()
  const writes: string[] = []
  const putRecord = backend.putRecord.bind(backend)
  backend.putRecord = async (namespace, id, value, options) => {
    if (namespace === SERVICE_MANIFESTS_NAMESPACE || namespace === SERVICES_KNOWN_NAMESPACE) writes.push(`${namespace} ${id} ${JSON.stringify(value)}`)
    return putRecord(namespace, id, value, options)
  }
  const { url } = await startServer(t, { backend })
  const token = await login(url, { service: 'payments' })
  const registerAs = (id: string, manifest: string): Promise<{ status: number, body: any }> =>
    call(url, 'POST', '/api/sdk/services/payments/register', { token, body: { manifest, instance: { id, host: 'h' }, routes: [declared('GET:/a')] } })

  const first = 'a'.repeat(64)
  const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => registerAs(`pod-${i}`, first)))
  t.same(replies.map(r => r.status), Array(10).fill(200))
  t.equal(writes.filter(w => w.startsWith(SERVICE_MANIFESTS_NAMESPACE)).length, 1, 'one manifest write for ten registrations')
  t.equal(writes.filter(w => w.startsWith(SERVICES_KNOWN_NAMESPACE)).length, 1, 'one first-registration write')
  t.equal((await registerAs('pod-10', first)).status, 200)
  t.equal(writes.length, 2, 'a later registration of the same manifest writes nothing')

  const second = 'b'.repeat(64)
  t.equal((await registerAs('pod-0', second)).status, 200)
  t.equal(writes.length, 3, 'a new manifest is written')
  const snapshot = await call(url, 'GET', '/api/sdk/services/payments/snapshot', { token })
  t.equal(snapshot.body.manifest, second, 'and served in the snapshot')
})
