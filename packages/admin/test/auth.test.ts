import t from 'tap'
import { join } from 'node:path'
import { request as httpRequest } from 'node:http'
import Fastify from 'fastify'
import { createEngine, createFileBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { hashPassword, waygateAdmin } from '@waygate/admin'
import { buildAdminApp, SECRET, USER } from './helpers/app.js'

t.test('logout revokes the token, and the revocation survives a restart on the file backend', async t => {
  const path = join(t.testdir(), 'state.json')
  const build = () => buildAdminApp(t, { engine: { backend: createFileBackend({ path }) } })
  const first = await build()
  const token = await first.login('cli')
  const other = await first.login('cli')
  const headers = { 'x-waygate-token': token }
  t.equal((await first.app.inject({ url: '/waygate/api/routes', headers })).statusCode, 200)
  const out = await first.app.inject({ method: 'POST', url: '/waygate/api/auth/logout', headers })
  t.same(out.json(), { revoked: true })
  const after = await first.app.inject({ url: '/waygate/api/routes', headers })
  t.equal(after.statusCode, 401)
  t.match(after.json().error.message, /revoked/)
  await first.app.close()

  const second = await build()
  t.equal((await second.app.inject({ url: '/waygate/api/routes', headers })).statusCode, 401, 'still revoked after a restart')
  t.equal((await second.app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': other } })).statusCode, 200,
    'other tokens signed with the same key still work')
})

t.test('tokens expire, per platform', async t => {
  let now = Date.parse('2030-01-01T00:00:00Z')
  const { app, login } = await buildAdminApp(t, { engine: { now: () => now }, admin: { tokenExpiry: 60, sdkTokenExpiry: 3600 } })
  const cli = await login('cli')
  const sdk = await login('sdk')
  now += 61_000
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': cli } })).statusCode, 401, 'cli token expired')
  t.equal((await app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': sdk } })).statusCode, 200, 'sdk token lives longer')
})

t.test('a token signed with another key is refused', async t => {
  const a = await buildAdminApp(t)
  const b = await buildAdminApp(t, { admin: { secretKey: 'another-secret-key-987654321' } })
  const token = await a.login()
  t.equal((await b.app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': token } })).statusCode, 401)
})

t.test('hashed passwords, several users and a custom authenticator', async t => {
  const hashed = await hashPassword('hunter2')
  t.match(hashed, /^scrypt\$/)
  t.notOk(hashed.includes('hunter2'))
  const many = await buildAdminApp(t, { admin: { auth: [{ username: 'alice', password: hashed }, { username: 'bob', password: 'plain' }] } })
  const login = (username: string, password: string) => many.app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username, password } })
  t.equal((await login('alice', 'hunter2')).statusCode, 200)
  t.equal((await login('alice', 'hunter3')).statusCode, 401)
  t.equal((await login('bob', 'plain')).statusCode, 200)
  t.equal((await login('bob', hashed)).statusCode, 401, 'a hash is not a password')

  const custom = await buildAdminApp(t, { admin: { auth: { authenticate: async (u, p) => u === 'svc' && p === 'k3y' ? 'svc-deployer' : false } } })
  const res = await custom.app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: 'svc', password: 'k3y' } })
  t.equal(res.json().user, 'svc-deployer', 'the authenticator may name the actor')
})

t.test('invalid admin options fail at registration with every problem listed', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine: createEngine() })
  await t.rejects(async () => {
    await app.register(waygateAdmin, { auth: [{ username: '', password: 'x' }, { username: 'a' } as never], tokenExpiry: -5, secretKey: 'short' })
  }, { code: 'WG_ERR_ADMIN_OPTIONS_INVALID', message: /auth\[0\]\.username.*auth\[1\]\.password.*tokenExpiry.*secretKey/ })

  const noAuth = Fastify()
  t.teardown(() => noAuth.close())
  await t.rejects(async () => { await noAuth.register(waygateAdmin, { engine: createEngine() } as never) }, { code: 'WG_ERR_ADMIN_OPTIONS_INVALID', message: /auth: required/ })

  const noEngine = Fastify()
  t.teardown(() => noEngine.close())
  await t.rejects(async () => { await noEngine.register(waygateAdmin, { auth: USER }) }, { message: /engine/ })
})

t.test('without a secret key a random one is used, with a warning', async t => {
  const saved = process.env.WAYGATE_SECRET_KEY
  delete process.env.WAYGATE_SECRET_KEY
  t.teardown(() => { if (saved !== undefined) process.env.WAYGATE_SECRET_KEY = saved })
  const { logs, login } = await buildAdminApp(t, { admin: { secretKey: undefined } })
  t.ok(logs.some(l => l.includes('random key')))
  t.ok(await login())
})

t.test('WAYGATE_SECRET_KEY supplies the key, so tokens survive a restart', async t => {
  const saved = process.env.WAYGATE_SECRET_KEY
  process.env.WAYGATE_SECRET_KEY = SECRET + '-from-env'
  t.teardown(() => { if (saved === undefined) delete process.env.WAYGATE_SECRET_KEY; else process.env.WAYGATE_SECRET_KEY = saved })
  const a = await buildAdminApp(t, { admin: { secretKey: undefined } })
  const token = await a.login()
  const b = await buildAdminApp(t, { admin: { secretKey: undefined } })
  t.equal((await b.app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': token } })).statusCode, 200)
})

t.test('the SSE feed streams changes to a real client', async t => {
  const { app, login, engine } = await buildAdminApp(t)
  const token = await login()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const received: string[] = []
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/waygate/api/events', headers: { 'x-waygate-token': token } }, res => {
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /text\/event-stream/)
      res.setEncoding('utf8')
      let changed = false
      res.on('data', (chunk: string) => {
        received.push(chunk)
        if (!changed && chunk.includes('event: hello')) {
          changed = true
          engine.disable('GET:/users/:id', { reason: 'from sse test' }).catch(reject)
        }
        if (received.join('').includes('event: audit')) {
          req.destroy()
          resolve()
        }
      })
    })
    req.on('error', err => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    req.end()
  })
  const text = received.join('')
  t.match(text, /event: route_changed\ndata: \{[^\n]*"key":"GET:\/users\/:id"[^\n]*"status":"disabled"/)
  t.match(text, /event: audit\ndata: [^\n]*"reason":"from sse test"/)

  const anonymous = await app.inject('/waygate/api/events')
  t.equal(anonymous.statusCode, 401, 'the feed needs a token too')
})

t.test('closing the server ends open event streams instead of waiting for them', async t => {
  const { app, login } = await buildAdminApp(t)
  const token = await login()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const ended = new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/waygate/api/events', headers: { 'x-waygate-token': token } }, res => {
      res.on('data', () => {})
      res.on('end', () => resolve())
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  await new Promise(resolve => setTimeout(resolve, 100))
  const started = Date.now()
  await app.close()
  await ended
  t.ok(Date.now() - started < 2000, 'close() finished promptly')
})

t.test('a token ends with its user: removed or with a changed password, the next instance refuses it', async t => {
  const bobHash = await hashPassword('bob-pw')
  const users = (bob: { username: string, password: string } | null) => [{ username: 'alice', password: 'alice-pw' }, ...(bob === null ? [] : [bob])]
  const first = await buildAdminApp(t, { admin: { auth: users({ username: 'bob', password: bobHash }) } })
  const tokenOf = async (username: string, password: string, platform = 'cli') => {
    const res = await first.app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username, password, platform } })
    t.equal(res.statusCode, 200)
    return res.json().token as string
  }
  const bob = { cli: await tokenOf('bob', 'bob-pw'), sdk: await tokenOf('bob', 'bob-pw', 'sdk') }
  const alice = await tokenOf('alice', 'alice-pw')
  const works = async (app: typeof first.app, token: string) =>
    (await app.inject({ method: 'POST', url: `/waygate/api/routes/${encodeURIComponent('GET:/users/:id')}/disable`, headers: { 'x-waygate-token': token } })).statusCode

  const restarts: Array<[string, ReturnType<typeof users>, number]> = [
    ['bob removed', users(null), 401],
    ['bob\'s password changed (plain)', users({ username: 'bob', password: 'bob-pw2' }), 401],
    ['bob\'s password re-hashed (same password, new salt)', users({ username: 'bob', password: await hashPassword('bob-pw') }), 401],
    ['bob renamed to Bob', users({ username: 'Bob', password: bobHash }), 401],
    ['nothing changed', users({ username: 'bob', password: bobHash }), 200]
  ]
  for (const [why, auth, expected] of restarts) {
    const next = await buildAdminApp(t, { admin: { auth } })
    for (const token of Object.values(bob)) t.equal(await works(next.app, token), expected, why)
    t.equal(await works(next.app, alice), 200, `${why}: alice's token still works`)
    await next.app.close()
  }

  // an open admin's session tokens name anyone; an admin with users does not take them
  const open = await buildAdminApp(t, { admin: { auth: false } })
  const page = await open.app.inject('/waygate/')
  const cookie = String(page.headers['set-cookie']).split(';')[0]!
  const closed = await buildAdminApp(t, { admin: { auth: [{ username: 'anonymous', password: 'x' }] } })
  const res = await closed.app.inject({ url: '/waygate/api/routes', headers: { cookie } })
  t.equal(res.statusCode, 401, 'a token issued by an open admin is not a user\'s token')
})

t.test('a token signature is accepted only in its exact canonical base64url spelling', async t => {
  const { app, login } = await buildAdminApp(t)
  const token = await login()
  const [head, claims, sig] = token.split('.') as [string, string, string]
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(sig.at(-1)!)
  const variants: Record<string, string> = {
    'trailing =': sig + '=',
    'trailing ==': sig + '==',
    'trailing !!': sig + '!!',
    'embedded space': sig.slice(0, 10) + ' ' + sig.slice(10),
    'standard base64 alphabet': sig.replace(/-/g, '+').replace(/_/g, '/') + (/[-_]/.test(sig) ? '' : '+'),
    'flipped unused bits': sig.slice(0, -1) + alphabet[last ^ 1]!,
    'other unused bits': sig.slice(0, -1) + alphabet[last ^ 3]!,
    'one character short': sig.slice(0, -1),
    'a character more': sig + 'A'
  }
  const status = async (s: string) => (await app.inject({ url: '/waygate/api/routes', headers: { 'x-waygate-token': `${head}.${claims}.${s}` } })).statusCode
  t.equal(await status(sig), 200, 'the token as issued')
  for (const [name, variant] of Object.entries(variants)) {
    t.not(variant, sig)
    t.equal(await status(variant), 401, name)
  }
})
