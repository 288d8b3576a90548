import t from 'tap'
import { startHostile } from './helpers/hostile.js'
import { sandbox } from './helpers/server.js'

// The HTTP exchange itself, against plain servers that are not waygate: what a slow or stalled
// server does to the CLI, and what the CLI puts on the wire.

t.test('a server that sends the headers, then drips the body, fails the CLI within the timeout', async t => {
  const timers = new Set<NodeJS.Timeout>()
  t.teardown(() => { for (const timer of timers) clearInterval(timer) })
  const drip = await startHostile(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('[')
    const timer = setInterval(() => res.write(' '), 200)
    timers.add(timer)
    res.on('close', () => clearInterval(timer))
  })
  const box = await sandbox(t, { WAYGATE_SERVER_URL: drip.adminUrl, WAYGATE_TIMEOUT: '1' })
  const started = Date.now()
  const result = await box.waygate(['status'])
  const elapsed = Date.now() - started
  t.equal(result.code, 1)
  t.equal(result.stderr.split('\n')[0], `error: no complete answer from ${drip.adminUrl} within 1 s`)
  t.match(result.stderr, /\nhint: is the server overloaded\?/)
  t.equal(result.stdout, '')
  // the binary's own start-up (tsx) takes a second or two on a loaded machine
  t.ok(elapsed < 8000, `bounded by the timeout, not by the drip (${elapsed} ms)`)
  t.ok(drip.requests.length > 0, 'the request reached the server')

  // the same in-process, with --timeout, and the body never finishing at all
  const flag = await box.run(['status', '--json', '--timeout', '0.5'], { env: { WAYGATE_TIMEOUT: '' } })
  t.equal(flag.code, 1)
  t.match(JSON.parse(flag.stderr), { error: { code: 'WG_ERR_CLI_TIMEOUT', message: /within 0\.5 s/ } })
})

t.test('a server that never answers at all fails the CLI within the timeout', async t => {
  const silent = await startHostile(t, () => {})
  const box = await sandbox(t, { WAYGATE_SERVER_URL: silent.adminUrl })
  const started = Date.now()
  const result = await box.run(['status', '--timeout', '0.3'])
  t.equal(result.code, 1)
  t.match(result.stderr, /^error: no complete answer from .* within 0\.3 s\n/)
  t.ok(Date.now() - started < 3000)
})

t.test('--timeout and WAYGATE_TIMEOUT take seconds; anything else is refused', async t => {
  const box = await sandbox(t, { WAYGATE_SERVER_URL: 'http://127.0.0.1:9/waygate' })
  for (const value of ['0', '-1', 'abc', '1e9', 'Infinity', '30s']) {
    const flag = await box.run(['status', '--timeout', value])
    t.equal(flag.code, 2, `--timeout ${value}`)
    t.match(flag.stderr, /^error: --timeout: ".*" is not a number of seconds between 0\.1 and 3600\n/)
    const env = await box.run(['status'], { env: { WAYGATE_TIMEOUT: value } })
    t.equal(env.code, 1, `WAYGATE_TIMEOUT=${value}`)
    t.match(env.stderr, /^error: WAYGATE_TIMEOUT: ".*" is not a number of seconds between 0\.1 and 3600\n/)
  }
})

t.test('every POST carries a JSON body and content-type: application/json, even without a payload', async t => {
  const capture = await startHostile(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(req.url.endsWith('/logout') ? '{"revoked":true}' : '{"enabled":true,"reason":"","exemptPaths":[],"includeForceActive":false,"since":null}')
  })
  const box = await sandbox(t, { WAYGATE_SERVER_URL: capture.adminUrl, WAYGATE_TOKEN: 'wg1.x.y' })
  t.equal((await box.run(['logout'])).code, 0)
  t.equal((await box.run(['global', 'enable'])).code, 0)
  t.equal(capture.requests.length, 2)
  for (const req of capture.requests) {
    t.equal(req.method, 'POST')
    t.equal(req.headers['content-type'], 'application/json', req.url)
    t.same(JSON.parse(req.body), {}, req.url)
  }
})
