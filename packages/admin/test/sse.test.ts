import t from 'tap'
import { connect, type Socket } from 'node:net'
import { request as httpRequest } from 'node:http'
import { buildAdminApp } from './helpers/app.js'

const REASON = 'x'.repeat(2000)

/** Opens the event stream on a raw socket and then never reads from it. */
function stalledReader (port: number, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(`GET /waygate/api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Waygate-Token: ${token}\r\n\r\n`)
      socket.once('data', () => {
        // the headers and hello arrived: stop reading for good
        socket.pause()
        resolve(socket)
      })
    })
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

t.test('a client that never reads is dropped once its buffer passes the bound; a normal reader keeps receiving', async t => {
  const maxBufferBytes = 64 * 1024
  const { app, login, engine, logs } = await buildAdminApp(t, { admin: { sseMaxBufferBytes: maxBufferBytes } })
  const token = await login()
  // every socket the server holds, to read what it has buffered for each
  const serverSockets: Socket[] = []
  app.server.on('connection', (socket: Socket) => serverSockets.push(socket))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  let received = ''
  let lastReason = ''
  const reader = await new Promise<import('node:http').ClientRequest>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/waygate/api/events', headers: { 'x-waygate-token': token } }, res => {
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { received = (received + chunk).slice(-20_000) })
      resolve(req)
    })
    req.on('error', err => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    req.end()
  })
  t.teardown(() => { reader.destroy() })

  const stalled = await Promise.all([stalledReader(port, token), stalledReader(port, token)])
  t.teardown(() => { for (const s of stalled) s.destroy() })
  const streamSockets = serverSockets.slice(-2)

  let peak = 0
  // enough data to fill the kernel's buffers on both sides many times over
  for (let i = 0; i < 3000; i++) {
    lastReason = `${i}-${REASON}`.slice(0, 2000)
    await engine.disable('GET:/users/:id', { reason: lastReason })
    for (const s of streamSockets) if (!s.destroyed) peak = Math.max(peak, s.writableLength)
    // give the reading client a turn to read, as a real event loop would between requests
    if (i % 5 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  // one event may land past the bound before the check drops the client
  t.ok(peak <= maxBufferBytes + 16 * 1024, `buffered bytes stayed bounded (peak ${peak})`)
  for (const s of streamSockets) t.ok(s.destroyed, 'the server closed the stalled stream')
  t.equal(logs.filter(l => l.includes('slow event-stream client')).length, 2, 'logged once per dropped client, and only the stalled ones')

  // the reader that reads is still there and gets the latest change
  const marker = 'after-the-flood'
  await engine.disable('GET:/payments', { reason: marker })
  const deadline = Date.now() + 5000
  while (!received.includes(marker) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  t.ok(received.includes(marker), 'a normal reader keeps receiving')
})

t.test('the stream answers with the SSE headers at once', async t => {
  const { app, login } = await buildAdminApp(t)
  const token = await login()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const headers = await new Promise<import('node:http').IncomingHttpHeaders>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/waygate/api/events', headers: { 'x-waygate-token': token } }, res => {
      resolve(res.headers)
      req.destroy()
    })
    req.on('error', err => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    req.end()
  })
  t.match(headers['content-type'], /^text\/event-stream/)
  t.match(headers['cache-control'], /no-cache/)
  t.equal(headers['x-accel-buffering'], 'no')
})

t.test('sseMaxBufferBytes is checked at registration', async t => {
  await t.rejects(buildAdminApp(t, { admin: { sseMaxBufferBytes: 0 } }), { code: 'WG_ERR_ADMIN_OPTIONS_INVALID', message: /sseMaxBufferBytes/ })
})

t.test('createSseStream frames events safely and reports its end once', async t => {
  const Fastify = (await import('fastify')).default
  const { createSseStream } = await import('@waygate/admin')
  const app = Fastify()
  t.teardown(() => app.close())
  let ended = 0
  app.get('/s', (_request, reply) => {
    const stream = createSseStream(reply, { heartbeatMs: 0 })
    stream.onClose(() => { ended++ })
    t.equal(stream.send('a\nevent: forged', 'line one\nline two\r\ndata: three', '7\nid: 8'), true)
    stream.comment('hi\n\nevent: x')
    stream.send('json', { n: 1 })
    stream.close()
    stream.close()
    t.equal(stream.send('late', 'x'), false, 'nothing is sent after close')
  })
  const res = await app.inject('/s')
  t.equal(res.body, [
    'id: 7id: 8', 'event: aevent: forged', 'data: line one', 'data: line two', 'data: data: three', '',
    ': hievent: x', '',
    'event: json', 'data: {"n":1}', '', ''
  ].join('\n'))
  t.equal(ended, 1)
})
