import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { json, sandbox, startServer, type Sandbox, type TestServer } from './helpers/server.js'

// The seeds' CLI quick-start, as written, against a real listening server: once for people, once
// with --json for scripts.

async function get (server: TestServer, path: string): Promise<{ status: number, body: any }> {
  const res = await fetch(server.origin + path)
  return { status: res.status, body: await res.json() }
}

async function humanRun (t: Test, server: TestServer, box: Sandbox): Promise<void> {
  const setUrl = await box.waygate(['config', 'set-url', server.adminUrl])
  t.equal(setUrl.code, 0, 'config set-url')
  t.match(setUrl.stdout, server.adminUrl)
  const mode = (await stat(join(box.configDir, 'config.json'))).mode & 0o777
  t.equal(mode, 0o600, 'the config file is readable by its owner only')

  const login = await box.waygate(['login', 'admin', '--password-stdin'], { input: 'secret\n' })
  t.equal(login.code, 0, 'login admin --password-stdin')
  t.match(login.stdout, /logged in to .* as admin/)
  t.notMatch(login.stdout + login.stderr, /wg1\./, 'the token is not printed')

  const status = await box.waygate(['status'])
  t.equal(status.code, 0, 'status')
  t.match(status.stdout, /ROUTE\s+STATUS/)
  t.match(status.stdout, /GET:\/payments\s+MAINTENANCE\s.*DB migration/)
  t.match(status.stdout, /GET:\/old-endpoint\s+DISABLED/)

  const disable = await box.waygate(['disable', 'GET:/payments', '--reason', 'hotfix'])
  t.equal(disable.code, 0, 'disable GET:/payments --reason hotfix')
  t.match(disable.stdout, /GET:\/payments\s+DISABLED\s.*hotfix/)
  t.match(await get(server, '/payments'), { status: 503, body: { error: { code: 'ROUTE_DISABLED', reason: 'hotfix' } } }, 'the app answers 503')

  const enable = await box.waygate(['enable', 'GET:/payments'])
  t.equal(enable.code, 0, 'enable GET:/payments')
  t.match(enable.stdout, /GET:\/payments\s+ACTIVE/)
  t.equal((await get(server, '/payments')).status, 200, 'the app answers again')

  const on = await box.waygate(['global', 'enable', '--reason', 'deploying v2', '--exempt', '/health'])
  t.equal(on.code, 0, 'global enable --reason ... --exempt /health')
  t.match(on.stdout, /global maintenance\s+ON/)
  t.match(on.stdout, /exempt\s+\/health/)
  t.match(await get(server, '/orders'), { status: 503, body: { error: { code: 'MAINTENANCE_MODE', reason: 'deploying v2' } } })
  t.equal((await get(server, '/health')).status, 200, 'an exempt path still answers')

  const marked = await box.waygate(['status'])
  t.match(marked.stdout, /^GLOBAL MAINTENANCE ON: deploying v2/, 'status says global maintenance is on')

  const off = await box.waygate(['global', 'disable'])
  t.equal(off.code, 0, 'global disable')
  t.match(off.stdout, /global maintenance\s+OFF/)
  t.equal((await get(server, '/orders')).status, 200)

  const log = await box.waygate(['log'])
  t.equal(log.code, 0, 'log')
  t.match(log.stdout, /WHEN\s+ACTOR\s+VIA\s+ACTION\s+ROUTE/)
  const lines = log.stdout.split('\n')
  t.match(lines[1], /^(just now|\d+s ago)\s+admin\s+cli\s+global_maintenance_off\s+\(global\)/, 'newest first')
  t.match(log.stdout, /disable\s+GET:\/payments\s+MAINTENANCE → DISABLED\s+hotfix/)
}

async function jsonRun (t: Test, server: TestServer, box: Sandbox): Promise<void> {
  t.same(json(await box.waygate(['config', 'set-url', server.adminUrl + '/', '--json'])),
    { serverUrl: server.adminUrl, configPath: join(box.configDir, 'config.json') }, 'config set-url --json (trailing slash dropped)')

  const login = await box.waygate(['login', 'admin', '--password-stdin', '--json'], { input: 'secret' })
  t.equal(login.code, 0)
  const session = json(login)
  t.match(session, { serverUrl: server.adminUrl, user: 'admin', platform: 'cli', expiresAt: String })
  t.notOk('token' in session, 'no token in the output')

  const routes = json<Array<{ key: string, status: string }>>(await box.waygate(['status', '--json']))
  t.match(routes.find(r => r.key === 'GET:/payments'), { status: 'maintenance', reason: 'DB migration' })
  t.equal(routes.length, 8)

  const disabled = await box.waygate(['--json', 'disable', 'GET:/payments', '--reason', 'hotfix'])
  t.equal(disabled.code, 0)
  t.match(json(disabled), { routes: [{ key: 'GET:/payments', status: 'disabled', reason: 'hotfix', updatedBy: 'admin' }] })
  t.equal((await get(server, '/payments')).status, 503)

  t.match(json(await box.waygate(['enable', 'GET:/payments', '--json'])), { routes: [{ key: 'GET:/payments', status: 'active' }] })
  t.equal((await get(server, '/payments')).status, 200)

  t.match(json(await box.waygate(['global', 'enable', '--reason', 'deploying v2', '--exempt', '/health', '--json'])),
    { enabled: true, reason: 'deploying v2', exemptPaths: ['/health'], includeForceActive: false, since: String })
  t.equal((await get(server, '/orders')).status, 503)
  t.match(json(await box.waygate(['global', 'disable', '--json'])), { enabled: false })
  t.equal((await get(server, '/orders')).status, 200)

  const log = json<Array<Record<string, unknown>>>(await box.waygate(['log', '--json']))
  t.match(log[0], { key: '*', action: 'global_maintenance_off', actor: 'admin', platform: 'cli' })
  t.match(log.find(e => e.action === 'disable'), { key: 'GET:/payments', path: '/payments', reason: 'hotfix', previousStatus: 'maintenance', newStatus: 'disabled' })
}

// the two runs use separate servers and config dirs, so they go in parallel
t.jobs = 2

t.test('the seeds\' quick-start works as written, for people', async t => {
  await humanRun(t, await startServer(t), await sandbox(t))
})

t.test('the seeds\' quick-start works as written with --json, for scripts', async t => {
  await jsonRun(t, await startServer(t), await sandbox(t))
})
