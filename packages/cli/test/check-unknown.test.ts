import { createServer as createHttpServer } from 'node:http'
import t from 'tap'
import { freePort } from '@waygate/core/testing'
import { loggedIn, sandbox, startServer } from './helpers/server.js'

// `waygate check` answers 3 (UNKNOWN, as monitoring plugins do) when it cannot tell, so a monitor
// does not page for "a route is failing" when the server is only out of reach.
t.jobs = 3

t.test('an unreachable server is UNKNOWN: exit 3, through the real binary', async t => {
  const box = await sandbox(t, { WAYGATE_SERVER_URL: `http://127.0.0.1:${await freePort()}/waygate`, WAYGATE_TOKEN: 'x' })
  const [human, asJson] = await Promise.all([box.waygate(['check', '--fail-on', 'disabled,global']), box.run(['check', '--json'])])
  t.equal(human.code, 3)
  t.match(human.stdout, /^UNKNOWN: cannot tell: cannot reach http:\/\/127\.0\.0\.1:\d+\/waygate \(ECONNREFUSED\)\n$/)
  t.match(human.stderr, /^error: cannot reach .*\nhint: check --server-url/)
  t.equal(asJson.code, 3)
  t.equal(asJson.stdout, '', 'in --json mode stdout stays empty: the error is JSON on stderr')
  t.match(JSON.parse(asJson.stderr), { error: { code: 'WG_ERR_CLI_UNREACHABLE' } })
})

t.test('a refused token and an answer that is not the admin API are UNKNOWN too; usage errors stay 2', async t => {
  const server = await startServer(t)
  const stranger = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<html>a login page of a proxy</html>')
  })
  await new Promise<void>(resolve => stranger.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => stranger.close(resolve)))
  const strangerUrl = `http://127.0.0.1:${(stranger.address() as { port: number }).port}/waygate`

  const box = await sandbox(t, { WAYGATE_SERVER_URL: server.adminUrl, WAYGATE_TOKEN: 'not-a-token' })
  const [badToken, proxy, usage, badIgnore] = await Promise.all([
    box.run(['check']),
    box.run(['check'], { env: { WAYGATE_SERVER_URL: strangerUrl } }),
    box.run(['check', '--fail-on', 'broken']),
    box.run(['check', '--ignore', 'FETCH:/x'])
  ])
  t.equal(badToken.code, 3, 'auth refused')
  t.match(badToken.stdout, /^UNKNOWN: cannot tell: /)
  t.equal(proxy.code, 3, 'HTML where JSON was expected')
  t.match(proxy.stderr, /unexpected answer from/)
  t.equal(usage.code, 2)
  t.equal(badIgnore.code, 2)
  t.equal(usage.stdout, '', 'no UNKNOWN line for a usage error')
})

t.test('the same server answering: 0 when fine, 1 when a route fails', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const [ok, failing] = await Promise.all([
    box.run(['check', '--ignore', '/old-endpoint']),
    box.run(['check'])
  ])
  t.equal(ok.code, 0)
  t.equal(failing.code, 1)
})

t.test('global enable --for / --end send an end; maintenance --for is a window end', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const before = Date.now()
  const forIt = await box.waygate(['global', 'enable', '--reason', 'deploying', '--for', '15m'])
  t.equal(forIt.code, 0, forIt.stderr)
  t.match(forIt.stdout, /ends\s+in 1[45]m \(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\)/)
  const end = Date.parse(server.engine.getGlobal().end!)
  t.ok(end >= before + 15 * 60_000 && end <= Date.now() + 15 * 60_000, 'fifteen minutes from now, by the server clock')

  const at = new Date(Date.now() + 3_600_000).toISOString()
  const endIt = await box.run(['global', 'enable', '--end', at, '--json'])
  t.equal(JSON.parse(endIt.stdout).end, at)
  const plain = await box.run(['global', 'enable', '--json'])
  t.notOk('end' in JSON.parse(plain.stdout), 'enabling without one removes the end')

  const [both, badFor, badEnd, forWithStart] = await Promise.all([
    box.run(['global', 'enable', '--for', '15m', '--end', at]),
    box.run(['global', 'enable', '--for', 'tomorrow']),
    box.run(['global', 'enable', '--end', 'soon']),
    box.run(['maintenance', 'GET:/orders', '--start', '1h', '--for', '10m'])
  ])
  for (const r of [both, badFor, badEnd, forWithStart]) t.equal(r.code, 2, r.stderr)
  t.match(both.stderr, /give --for or --end, not both/)

  const win = await box.run(['maintenance', 'GET:/orders', '--reason', 'upgrade', '--for', '10m', '--json'])
  t.equal(win.code, 0, win.stderr)
  const window = JSON.parse(win.stdout).routes[0].window
  t.ok(Math.abs(Date.parse(window.end) - (Date.now() + 600_000)) < 60_000, 'the window ends ten minutes from now')
  t.match(server.engine.getState('GET:/orders'), { status: 'maintenance' })
})
