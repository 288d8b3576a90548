import t from 'tap'
import { connect } from 'node:net'
import { buildAdminApp } from './helpers/app.js'

/** Sends the headers and part of a body, then nothing more; resolves with how long the server kept the socket open. */
function slowBody (port: number, path: string, type: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nContent-Length: 200\r\n\r\n{"user`)
    })
    const give = setTimeout(() => { socket.destroy(); reject(new Error(`${path}: still open after 8 s`)) }, 8000)
    socket.on('data', () => {})
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(give)
      resolve(Date.now() - started)
    })
  })
}

t.test('a body that does not arrive within bodyTimeout ends the connection, on every kind of admin route', async t => {
  const { app, logs } = await buildAdminApp(t, { admin: { bodyTimeout: 1 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const cases: Array<[string, string]> = [
    ['/waygate/api/auth/login', 'application/json'],
    [`/waygate/api/routes/${encodeURIComponent('GET:/users/:id')}/disable`, 'application/json'],
    ['/waygate/login', 'application/x-www-form-urlencoded'],
    ['/waygate/action', 'application/x-www-form-urlencoded']
  ]
  const times = await Promise.all(cases.map(([path, type]) => slowBody(port, path, type)))
  cases.forEach(([path], i) => {
    t.ok(times[i]! >= 900 && times[i]! < 4000, `${path}: closed after ${times[i]} ms`)
  })
  t.ok(logs.some(l => l.includes('request body not complete')), 'logged')

  // a body that arrives in time is served as before
  const res = await fetch(`http://127.0.0.1:${port}/waygate/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret' })
  })
  t.equal(res.status, 200)
})

t.test('bodyTimeout is checked at registration', async t => {
  await t.rejects(buildAdminApp(t, { admin: { bodyTimeout: 0 } }), { code: 'WG_ERR_ADMIN_OPTIONS_INVALID', message: /bodyTimeout/ })
})
