// Bounded memory, measured in a process of its own (--expose-gc, memory read after a full gc):
// a million distinct client keys through the memory rate-limit store, and a thousand concurrent
// event-stream clients on the admin API. Each stays under a stated cap and gives the memory back
// when the clients leave. The caps are documented in docs/reliability.md.
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startProcess, until } from '@waygate/core/testing'

const CHILD = fileURLToPath(new URL('./helpers/memory-child.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')
const MB = 1024 * 1024
const args = (...rest: string[]): string[] => ['--expose-gc', '--conditions=@waygate/source', '--import', TSX, CHILD, ...rest]

t.test('a million distinct clients through the memory store: at most maxKeys held, heap bounded, memory back after they leave', async t => {
  const child = startProcess(t, 'store', args('store', '1000000'))
  const code = await child.exited
  t.equal(code, 0, 'the store run finished')
  const phases = new Map([...child.logs().matchAll(/mem (\w+) (\d+) (\d+) (\d+)\n/g)].map(m => [m[1]!, { rss: Number(m[2]), heap: Number(m[3]), size: Number(m[4]) }]))
  const start = phases.get('start')!
  const full = phases.get('full')!
  const left = phases.get('left')!
  const peak = Number(/peak (\d+)/.exec(child.logs())![1])
  t.comment(`start rss ${(start.rss / MB).toFixed(0)} MB heap ${(start.heap / MB).toFixed(0)} MB; 10^6 clients: rss ${(full.rss / MB).toFixed(0)} MB (peak ${(peak / MB).toFixed(0)}) heap ${(full.heap / MB).toFixed(0)} MB, ${full.size} keys; after: rss ${(left.rss / MB).toFixed(0)} MB heap ${(left.heap / MB).toFixed(0)} MB`)
  t.equal(full.size, 100_000, 'the store holds maxKeys (100 000) keys, not a million')
  t.ok(full.heap - start.heap < 120 * MB, `100 000 keys of two limits cost ${((full.heap - start.heap) / MB).toFixed(0)} MB of heap (cap 120 MB)`)
  // the peak includes the million short-lived id strings the loop makes, garbage that is not kept
  t.ok(Math.max(peak, full.rss) < 600 * MB, `RSS stays under 600 MB (peak ${(Math.max(peak, full.rss) / MB).toFixed(0)} MB)`)
  t.equal(left.size, 0)
  t.ok(left.rss - start.rss < 96 * MB, `RSS back within 96 MB of the start (${((left.rss - start.rss) / MB).toFixed(0)} MB)`)
  t.ok(left.heap - start.heap < 8 * MB, `heap back within 8 MB of the start once the clients left (${((left.heap - start.heap) / MB).toFixed(1)} MB)`)
})

t.test('a thousand concurrent event-stream clients: memory per client bounded, back after they leave', async t => {
  const child = startProcess(t, 'sse server', args('sse'))
  const base = (await child.waitFor(/listening (http:\/\/\S+)\n/))[1]!
  const login = await fetch(`${base}/waygate/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'secret', platform: 'cli' }) })
  const { token } = await login.json() as { token: string }
  const mem = async (): Promise<{ rss: number, heapUsed: number }> => await (await fetch(`${base}/__mem`)).json() as { rss: number, heapUsed: number }
  // warm the paths once, so the baseline holds the code the clients will use
  await openClients(base, token, 20).then(clients => closeAll(clients))
  await new Promise(resolve => setTimeout(resolve, 300))
  const before = await mem()

  const clients = await openClients(base, token, 1000)
  t.teardown(() => closeAll(clients))
  const during = await mem()
  // a change reaches all of them
  const change = await fetch(`${base}/waygate/api/routes/${encodeURIComponent('GET:/payments')}/disable`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-waygate-token': token }, body: JSON.stringify({ reason: 'memory test' }) })
  t.equal(change.status, 200)
  await until(async () => clients.every(c => c.text.includes('memory test')) || undefined, 30_000, () => `${clients.filter(c => c.text.includes('memory test')).length}/1000 clients got the change`)
  t.pass('all 1000 clients received the change')

  closeAll(clients)
  let after = await mem()
  // the server notices closed sockets asynchronously: give it a moment
  await until(async () => {
    after = await mem()
    return after.heapUsed - before.heapUsed < 4 * MB || undefined
  }, 20_000, () => `heap did not come back: before ${before.heapUsed}, after ${after.heapUsed}`, 250)
  const perClient = (during.heapUsed - before.heapUsed) / 1000
  t.comment(`1000 streams: heap +${((during.heapUsed - before.heapUsed) / MB).toFixed(1)} MB (${(perClient / 1024).toFixed(1)} KiB each), rss ${(before.rss / MB).toFixed(0)} → ${(during.rss / MB).toFixed(0)} MB; after they left: heap ${((after.heapUsed - before.heapUsed) / MB).toFixed(1)} MB over the start, rss ${(after.rss / MB).toFixed(0)} MB`)
  t.ok(perClient < 64 * 1024, `under 64 KiB of heap per open stream (${(perClient / 1024).toFixed(1)} KiB)`)
  t.ok(during.rss < 400 * MB, `server RSS under 400 MB with 1000 streams (${(during.rss / MB).toFixed(0)} MB)`)
  t.ok(after.heapUsed - before.heapUsed < 4 * MB, 'heap back within 4 MB once they left')
})

interface Client { req: http.ClientRequest, text: string }

async function openClients (base: string, token: string, n: number): Promise<Client[]> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })
  const url = new URL('/waygate/api/events', base)
  const open = (): Promise<Client> => new Promise((resolve, reject) => {
    const client: Client = { req: null as unknown as http.ClientRequest, text: '' }
    client.req = http.get(url, { agent, headers: { 'x-waygate-token': token, accept: 'text/event-stream' } }, res => {
      if (res.statusCode !== 200) reject(new Error(`events: ${res.statusCode}`))
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        client.text += chunk
        if (client.text.includes('event: hello')) resolve(client)
      })
      res.on('error', () => {})
    })
    client.req.on('error', err => { if (client.text === '') reject(err) })
  })
  const clients: Client[] = []
  // in batches, so the accept queue is not the thing being tested
  for (let i = 0; i < n; i += 100) clients.push(...await Promise.all(Array.from({ length: Math.min(100, n - i) }, open)))
  return clients
}

function closeAll (clients: Client[]): void {
  for (const c of clients) c.req.destroy()
}
