import t from 'tap'
import { freePort } from '@waygate/core/testing'
import { json, loggedIn, sandbox, startServer, type TestServer } from './helpers/server.js'

// Every command against a real listening server, through the real binary (`box.waygate`); the
// variations of a behaviour already seen through the binary go through run() in-process
// (`box.run`), which is the same code but for bin.ts and costs no Node start-up. Tests are
// independent (each has its own server and config dir), so they run in parallel.
t.jobs = 4

async function status (server: TestServer, path: string, method = 'GET'): Promise<number> {
  return (await fetch(server.origin + path, { method })).status
}

t.test('usage errors exit 2 with the reason and a hint', async t => {
  const box = await sandbox(t, { WAYGATE_SERVER_URL: 'http://127.0.0.1:9/waygate' })
  const [badMethod, missing, unknownFlag, badUntil, badPage, badFailOn, nothing, badJson, badUrl, unknownJson] = await Promise.all([
    box.waygate(['disable', 'FETCH:/x']),
    box.waygate(['disable']),
    box.run(['status', '--bogus']),
    box.run(['disable', 'GET:/x', '--until', 'tomorrow']),
    box.run(['status', '--per-page', '0']),
    box.run(['check', '--fail-on', 'broken']),
    box.run([]),
    box.run(['enable', 'payments', '--json']),
    box.run(['--server-url', 'ftp://x', 'status']),
    box.run(['status', '--bogus', '--json'])
  ])
  t.equal(badMethod.code, 2, 'a bad method in ROUTE')
  t.match(badMethod.stderr, /^error: route "FETCH:\/x": unknown HTTP method "FETCH"\nhint: /)
  t.equal(badMethod.stdout, '')
  t.equal(missing.code, 2, 'a missing argument')
  t.match(missing.stderr, /missing required argument 'route'[\s\S]*hint: run: waygate disable --help/)
  t.equal(unknownFlag.code, 2, 'an unknown flag')
  t.match(unknownFlag.stderr, /unknown option '--bogus'/)
  t.equal(badUntil.code, 2, 'a time that is neither ISO nor a duration')
  t.match(badUntil.stderr, /--until "tomorrow"/)
  t.equal(badPage.code, 2)
  t.equal(badFailOn.code, 2)
  t.match(badFailOn.stderr, /unknown status "broken"/)
  t.equal(nothing.code, 2, 'no command at all shows the help')
  t.match(nothing.stderr, /Usage: waygate/)
  t.equal(badJson.code, 2)
  t.match(JSON.parse(badJson.stderr), { error: { code: 'WG_ERR_CLI_USAGE', message: /expected METHOD:\/path or \/path/ } }, 'errors are JSON with --json')
  t.equal(badUrl.code, 2)
  t.equal(unknownJson.code, 2)
  t.same(JSON.parse(unknownJson.stderr), { error: { code: 'WG_ERR_CLI_USAGE', message: 'unknown option \'--bogus\'', hint: 'see: waygate --help' } })
})

t.test('failures exit 1 with one line and a hint: unreachable server, wrong URL, unknown route, force-active', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const port = await freePort()
  const [unreachable, unreachableJson, wrongUrl, unknown, forced] = await Promise.all([
    box.waygate(['status'], { env: { WAYGATE_SERVER_URL: `http://127.0.0.1:${port}/waygate` } }),
    box.run(['status', '--json', '--server-url', `http://127.0.0.1:${port}/waygate`]),
    box.run(['status', '--server-url', server.origin]),
    box.waygate(['disable', 'GET:/nope']),
    box.run(['disable', 'GET:/health'])
  ])
  t.equal(unreachable.code, 1)
  t.equal(unreachable.stderr, `error: cannot reach http://127.0.0.1:${port}/waygate (ECONNREFUSED)\n` +
    'hint: check --server-url, WAYGATE_SERVER_URL or `waygate config set-url`: it is the admin mount, e.g. http://localhost:8000/waygate\n')
  t.match(JSON.parse(unreachableJson.stderr), { error: { code: 'WG_ERR_CLI_UNREACHABLE', message: /cannot reach/, hint: /--server-url/ } })
  t.equal(wrongUrl.code, 1)
  t.match(wrongUrl.stderr, /no waygate admin API at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)\nhint: check --server-url/)
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /^error: No route is registered as "GET:\/nope"\nhint: list the routes with: waygate status\n$/)
  t.equal(forced.code, 1)
  t.match(forced.stderr, /force-active[\s\S]*hint: a force-active route is changed in the code/)
})

t.test('no token, a bad token or a wrong password: exit 1 and the hint to log in', async t => {
  const server = await startServer(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: server.adminUrl })
  const [anonymous, forged, wrongPassword] = await Promise.all([
    box.waygate(['status']),
    box.run(['status', '--json'], { env: { WAYGATE_TOKEN: 'wg1.forged.token' } }),
    box.run(['login', 'admin', '--password-stdin'], { input: 'nope' })
  ])
  t.equal(anonymous.code, 1)
  t.match(anonymous.stderr, /^error: Authentication required: .*\nhint: run: waygate login\n$/)
  t.equal(forged.code, 1)
  t.match(JSON.parse(forged.stderr), { error: { code: 'WG_ERR_AUTH_REQUIRED', status: 401, hint: 'run: waygate login' } })
  t.equal(wrongPassword.code, 1)
  t.match(wrongPassword.stderr, /Invalid username or password\nhint: check the username and password/)
  const noPassword = await box.run(['login', 'admin'])
  t.equal(noPassword.code, 2, 'no password and no terminal to ask on is a usage error')
  t.match(noPassword.stderr, /--password-stdin/)
})

t.test('a bare path matching several methods: refused with the matches, or applied to all with --all', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const [refused, refusedJson] = await Promise.all([
    box.waygate(['disable', '/payments', '--reason', 'x']),
    box.run(['disable', '/payments', '--json'])
  ])
  t.equal(refused.code, 1)
  t.equal(refused.stderr, 'error: /payments matches several routes: GET:/payments, POST:/payments\n' +
    'hint: pass --all to apply it to all of them, or name one, e.g. GET:/payments\n')
  t.match(JSON.parse(refusedJson.stderr), { error: { code: 'WG_ERR_ROUTE_AMBIGUOUS', matches: ['GET:/payments', 'POST:/payments'] } })
  t.equal(server.engine.getState('POST:/payments')?.status, 'active', 'nothing changed')

  const all = await box.waygate(['disable', '/payments', '--all', '--reason', 'both', '--json'])
  t.equal(all.code, 0)
  t.same(json(all).routes.map((r: { key: string, status: string }) => `${r.key} ${r.status}`), ['GET:/payments disabled', 'POST:/payments disabled'])
  t.equal(await status(server, '/payments'), 503)
  t.equal(await status(server, '/payments', 'POST'), 503)

  const shown = json(await box.run(['status', '/payments', '--json']))
  t.same(shown.map((r: { key: string }) => r.key), ['GET:/payments', 'POST:/payments'], 'status of a bare path shows every method')
  const one = await box.run(['status', 'get:/payments'])
  t.match(one.stdout, /route\s+GET:\/payments\nstatus\s+DISABLED\nreason\s+both/, 'a lower-case method is fine')

  const single = await box.run(['enable', '/orders', '--json'])
  t.match(json(single), { routes: [{ key: 'GET:/orders', status: 'active' }] }, 'a bare path with one method needs no --all')
})

t.test('check exits 1 when a route is in a --fail-on status, so monitoring needs no grep', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const [defaults, ignored, both, asJson, global] = await Promise.all([
    box.waygate(['check']),
    box.run(['check', '--fail-on', 'disabled', '--ignore', 'GET:/old-endpoint']),
    box.run(['check', '--fail-on', 'disabled,maintenance', '--ignore', '/old-endpoint']),
    box.run(['check', '--fail-on', 'maintenance', '--json']),
    box.run(['check', '--fail-on', 'global', '--json'])
  ])
  t.equal(defaults.code, 1, 'by default a disabled route fails the check')
  t.match(defaults.stdout, /^FAIL: 1 of 8 routes is DISABLED\n[\s\S]*GET:\/old-endpoint\s+DISABLED/)
  t.equal(ignored.code, 0)
  t.equal(ignored.stdout, 'OK: 7 routes checked, none DISABLED\n')
  t.equal(both.code, 1)
  t.match(both.stdout, /GET:\/payments\s+MAINTENANCE/)
  t.equal(asJson.code, 1)
  t.match(json(asJson), { ok: false, failOn: ['maintenance'], checked: 8, failing: [{ key: 'GET:/payments' }] })
  t.equal(global.code, 0)
  t.match(json(global), { ok: true, global: { enabled: false } })

  await server.engine.enableGlobalMaintenance({ reason: 'deploy' })
  const globalOn = await box.run(['check', '--fail-on', 'global'])
  t.equal(globalOn.code, 1)
  t.match(globalOn.stdout, /FAIL: global maintenance is ON: deploy/)
})

t.test('disable --until: disabled until then, then active again', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const [twoHours, oneSecond] = await Promise.all([
    box.waygate(['disable', 'GET:/orders', '--reason', 'hotfix', '--until', '2h', '--json']),
    box.run(['disable', 'GET:/reports', '--until', '1s'])
  ])
  t.equal(twoHours.code, 0)
  const until = Date.parse(json(twoHours).routes[0].disabledUntil)
  t.ok(Math.abs(until - (Date.now() + 7_200_000)) < 60_000, 'until is two hours from now')
  t.equal(oneSecond.code, 0)
  t.equal(await status(server, '/orders'), 503)
  const shown = await box.run(['status'])
  t.match(shown.stdout, /GET:\/orders\s+DISABLED\s.*hotfix\s+until in 2h/, 'status shows when it ends, relatively')
  // the 1 s one has ended by now, or will in a moment
  const deadline = Date.now() + 5000
  while (await status(server, '/reports') !== 200 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(await status(server, '/reports'), 200, 'active again after the --until time')
})

t.test('maintenance with an end, schedule and cancel, env set and clear, deprecate', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const [maintenance, scheduled, gated, deprecated, incomplete, badEnv, cancelMixed] = await Promise.all([
    box.run(['maintenance', 'GET:/orders', '--reason', 'stock sync', '--end', '30m']),
    box.waygate(['schedule', 'GET:/reports', '--start', '1h', '--end', '3h', '--reason', 'weekly rebuild', '--json']),
    box.waygate(['env', 'set', 'GET:/debug', 'dev', 'staging', '--json']),
    box.run(['deprecate', 'GET:/v1/users', '--sunset', '2030-01-01', '--successor', '/v2/users']),
    box.run(['schedule', 'GET:/reports', '--start', '1h']),
    box.run(['env', 'set', 'GET:/debug', 'not an env']),
    box.run(['schedule', 'GET:/reports', '--cancel', '--start', '1h'])
  ])
  t.equal(maintenance.code, 0)
  t.match(maintenance.stdout, /GET:\/orders\s+MAINTENANCE\s.*stock sync\s+until in 30m/)
  const orders = await fetch(server.origin + '/orders')
  t.equal(orders.status, 503)
  t.ok(Number(orders.headers.get('retry-after')) > 1700, 'Retry-After from the window end')

  t.equal(scheduled.code, 0)
  const window = json(scheduled).routes[0]
  t.match(window, { key: 'GET:/reports', status: 'active', window: { reason: 'weekly rebuild' } })
  t.ok(Math.abs(Date.parse(window.window.start) - (Date.now() + 3_600_000)) < 60_000)
  t.equal(await status(server, '/reports'), 200, 'the route answers until the window starts')
  t.match((await box.run(['status', 'GET:/reports'])).stdout, /window\s+in 1h → in 3h/)
  t.match((await box.run(['status'])).stdout, /GET:\/reports\s+ACTIVE\s.*weekly rebuild\s+window in 1h → in 3h/)
  const cancelled = await box.run(['schedule', 'GET:/reports', '--cancel', '--json'])
  t.equal(cancelled.code, 0)
  t.equal(json(cancelled).routes[0].window, null)

  t.equal(gated.code, 0)
  t.match(json(gated), { routes: [{ key: 'GET:/debug', status: 'env_gated', allowedEnvs: ['dev', 'staging'] }] })
  t.equal(await status(server, '/debug'), 404, 'the server runs in production: the route looks absent')
  const cleared = await box.run(['env', 'clear', 'GET:/debug'])
  t.equal(cleared.code, 0)
  t.match(cleared.stdout, /GET:\/debug\s+ACTIVE/)
  t.equal(await status(server, '/debug'), 200)

  t.equal(deprecated.code, 0)
  t.match(deprecated.stdout, /GET:\/v1\/users\s+DEPRECATED\s.*sunset 2030-01-01; successor \/v2\/users/)
  const users = await fetch(server.origin + '/v1/users')
  t.equal(users.status, 200)
  t.equal(users.headers.get('sunset'), 'Tue, 01 Jan 2030 00:00:00 GMT')
  t.match(users.headers.get('link'), '</v2/users>; rel="successor-version"')

  t.equal(incomplete.code, 2)
  t.match(incomplete.stderr, /needs --start and --end/)
  t.equal(badEnv.code, 2)
  t.equal(cancelMixed.code, 2)
})

t.test('global: enable with --include-force-active, exempt-add, exempt-remove, status', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const on = await box.run(['global', 'enable', '--reason', 'all hands', '--include-force-active', '--exempt', 'get:/orders', '--json'])
  t.match(json(on), { enabled: true, includeForceActive: true, exemptPaths: ['GET:/orders'] })
  t.equal(await status(server, '/health'), 503, 'force-active routes are blocked too')
  t.equal(await status(server, '/orders'), 200)
  const added = await box.waygate(['global', 'exempt-add', '/health', '/reports', '--json'])
  t.same(json(added).exemptPaths.sort(), ['/health', '/reports', 'GET:/orders'])
  t.equal(await status(server, '/reports'), 200)
  const removed = await box.run(['global', 'exempt-remove', '/reports'])
  t.equal(removed.code, 0)
  t.match(removed.stdout, /global maintenance\s+ON\nreason\s+all hands\nsince\s+(just now|\d+s ago)\nforce-active routes\s+blocked too\nexempt\s+GET:\/orders, \/health\n/)
  t.equal(await status(server, '/reports'), 503)
  const [shown, bare, badExempt] = await Promise.all([
    box.run(['global', 'status', '--json']),
    box.run(['global']),
    box.run(['global', 'enable', '--exempt', 'FETCH:/x'])
  ])
  t.match(json(shown), { enabled: true, reason: 'all hands' })
  t.match(bare.stdout, /global maintenance\s+ON/, '`waygate global` is global status')
  t.equal(badExempt.code, 2)
})

t.test('log: newest first, --limit with a cursor to the next page, --route over every method, filters', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const { engine } = server
  const tick = () => new Promise(resolve => setTimeout(resolve, 3)) // distinct timestamps
  await engine.disable('GET:/payments', { actor: 'alice', platform: 'api', reason: 'one' })
  await tick()
  await engine.disable('POST:/payments', { actor: 'bob', platform: 'api', reason: 'two' })
  await tick()
  await engine.disable('GET:/orders', { actor: 'alice', platform: 'api' })
  await tick()
  await engine.setMaintenance('GET:/orders', { actor: 'alice', platform: 'api', reason: 'three' })
  await tick()
  await engine.enable('POST:/payments', { actor: 'carol', platform: 'api' })

  const [firstPage, firstJson, byRoute, byActor, alias] = await Promise.all([
    box.waygate(['log', '--limit', '2']),
    box.run(['log', '--limit', '2', '--json']),
    box.run(['log', '--route', '/payments', '--json']),
    box.run(['log', '--actor', 'alice', '--since', '1h', '--json']),
    box.run(['audit', '--json'])
  ])
  t.equal(firstPage.code, 0)
  const cursor = /older entries: waygate log --limit 2 --before (\S+)/.exec(firstPage.stdout)?.[1]
  t.ok(cursor, 'the next page is offered')
  t.match(firstPage.stdout, /carol\s+api\s+enable\s+POST:\/payments\s+DISABLED → ACTIVE/)
  t.same(json(firstJson).map((e: { reason: string, actor: string }) => e.actor), ['carol', 'alice'])
  const next = json(await box.run(['log', '--limit', '2', '--before', cursor!, '--json']))
  t.same(next.map((e: { actor: string, action: string }) => `${e.actor} ${e.action}`), ['alice disable', 'bob disable'], 'the next page follows on')
  t.same(json(byRoute).map((e: { key: string, actor: string }) => `${e.key} ${e.actor}`), ['POST:/payments carol', 'POST:/payments bob', 'GET:/payments alice'],
    'a bare path covers the history of every method on it')
  t.ok(json(byActor).every((e: { actor: string }) => e.actor === 'alice'))
  t.equal(json(byActor).length, 3)
  t.equal(json(alias).length, 5, 'audit is log')
})

t.test('status pages through routes; --debug traces requests without the token', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const [page, pageJson, traced] = await Promise.all([
    box.run(['status', '--page', '2', '--per-page', '3']),
    box.run(['status', '--page', '3', '--per-page', '3', '--json']),
    box.waygate(['--debug', 'status', 'GET:/orders'])
  ])
  t.equal(page.code, 0)
  t.equal(page.stdout.split('\n').filter(l => /^(GET|POST):/.test(l)).length, 3)
  t.match(page.stdout, /page 2 of 3, 8 routes; next: waygate status --page 3 --per-page 3/)
  t.equal(json(pageJson).length, 2, 'the last page')
  t.equal(traced.code, 0)
  t.match(traced.stderr, /debug: server http:\/\/127\.0\.0\.1:\d+\/waygate \(from env\)/)
  t.match(traced.stderr, /debug: → GET http:\/\/127\.0\.0\.1:\d+\/waygate\/api\/routes\/GET%3A%2Forders\ndebug: ← 200 OK/)
  t.notMatch(traced.stderr, /wg1\./, 'the token is never traced')
})

t.test('services, current-service, version; --service scopes commands', async t => {
  const server = await startServer(t)
  const box = await loggedIn(t, server)
  const port = await freePort()
  const [services, none, fromFlag, fromEnv, version, offline, scoped, outside] = await Promise.all([
    box.waygate(['services', '--json']),
    box.run(['current-service']),
    box.run(['current-service', '--service', 'payments-service', '--json']),
    box.run(['current-service', '--json'], { env: { WAYGATE_SERVICE: 'orders-service' } }),
    box.waygate(['version', '--json']),
    box.run(['version', '--server-url', `http://127.0.0.1:${port}/waygate`]),
    box.run(['status', '--service', 'orders-service']),
    box.run(['disable', 'GET:/orders'], { env: { WAYGATE_SERVICE: 'orders-service' } })
  ])
  t.same(json(services), [{ service: null, name: null, routes: 8 }], 'an embedded admin\'s answer, with the name the server\'s has')
  t.match(none.stdout, /^none: commands cover every service/)
  t.same(json(fromFlag), { service: 'payments-service', source: '--service' })
  t.same(json(fromEnv), { service: 'orders-service', source: 'WAYGATE_SERVICE' })
  t.match(json(version), { cli: '0.1.0', serverUrl: server.adminUrl, server: { version: String, backend: 'memory', healthy: true, auth: true }, serverError: null })
  t.equal(offline.code, 0, 'version works without a server')
  t.match(offline.stdout, /waygate CLI\s+0\.1\.0[\s\S]*server\s+.*cannot reach/)
  t.equal(scoped.code, 0)
  t.equal(scoped.stdout, 'no routes for service orders-service\n')
  t.equal(outside.code, 1)
  t.match(outside.stderr, /GET:\/orders is not a route of service orders-service\nhint: list its routes: waygate status --service orders-service/)
  t.equal(server.engine.getState('GET:/orders')?.status, 'active')
})

t.test('an admin without auth: no login needed, the actor is the local user', async t => {
  const server = await startServer(t, { auth: false })
  const box = await sandbox(t, { WAYGATE_SERVER_URL: server.adminUrl, USER: 'dora' })
  const disabled = await box.waygate(['disable', 'GET:/orders', '--json'])
  t.equal(disabled.code, 0)
  t.match(json(disabled), { routes: [{ updatedBy: 'dora' }] })
  t.match(json(await box.run(['log', '--json']))[0], { actor: 'dora', platform: 'cli' })
})
