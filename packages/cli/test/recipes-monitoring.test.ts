import t from 'tap'
import { host, missingTools, PASSWORDS, readRecipes, recipe, startRecipeApp } from './helpers/recipes.js'

// The monitoring recipes of docs/monitoring-and-deploy.md, run verbatim with bash, curl, jq and the
// CLI against a real app. The deploy recipes are in recipes-deploy.test.ts.

const missing = missingTools()
if (missing.length > 0) {
  t.fail(`the recipes' tests need ${missing.join(', ')} on the PATH (Debian/Ubuntu: apt-get install ${missing.join(' ')})`)
  process.exit(1)
}

const recipes = await readRecipes()
const credentials = recipe(recipes, { heading: 'Credentials for scripts', lang: 'sh' })
const checkRoutes = recipe(recipes, { file: 'check-routes.sh' })
const monitorRoutes = recipe(recipes, { file: 'monitor-routes.mjs' })
const checkCommand = recipe(recipes, { heading: 'The same with `waygate check`', lang: 'sh' })
const sentinel = recipe(recipes, { file: 'audit-sentinel.sh' })

/** The credentials block's three ways to log in, each a paragraph of its own. */
const [curlLogin, cliLogin, printToken] = credentials.code.trim().split(/\n\s*\n/).map(s => s + '\n')

t.test('every runnable block of the page is run by a test', async t => {
  const runnable = recipes.filter(r => ['sh', 'bash', 'js', 'cron'].includes(r.lang))
  const covered = new Set(['Credentials for scripts', 'check-routes.sh', 'monitor-routes.mjs', 'The same with `waygate check`',
    'audit-sentinel.sh', 'deploy.sh', 'rolling-deploy.sh', 'Scheduled maintenance from cron', 'waygate-cron'])
  t.same(runnable.map(r => r.file ?? r.heading).filter(name => !covered.has(name)), [],
    'a new shell, JavaScript or cron block needs a test here or in recipes-deploy.test.ts')
  t.same(recipes.filter(r => !runnable.includes(r)).map(r => r.lang), ['yaml', 'yaml', 'yaml'], 'the rest is YAML for GitHub Actions and Kubernetes')
  t.equal(credentials.code.trim().split(/\n\s*\n/).length, 3, 'three ways to log in')
})

t.test('the curl login, then check-routes.sh: the token reaches the script', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  await h.write('check-routes.sh', checkRoutes.code)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_PASS: PASSWORDS.monitor as string }

  const alert = await h.sh(`${curlLogin}./check-routes.sh`, { env })
  t.equal(alert.code, 1, `ALERT: ${alert.stderr}`)
  t.equal(alert.stdout, 'ALERT: disabled routes:\nGET:/old-endpoint  replaced by /v2/endpoint\n')

  await app.engine.enable('GET:/old-endpoint', { actor: 'alice' })
  const ok = await h.sh(`${curlLogin}./check-routes.sh`, { env })
  t.equal(ok.code, 0, ok.stderr)
  t.equal(ok.stdout, 'OK: no route is disabled\n')
})

t.test('the CLI --print-token login, then check-routes.sh', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  await h.write('check-routes.sh', checkRoutes.code)
  await app.engine.enable('GET:/old-endpoint', { actor: 'alice' })
  const result = await h.sh(`${printToken}./check-routes.sh`, { env: { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_PASS: PASSWORDS.monitor as string } })
  t.equal(result.code, 0, result.stderr)
  t.equal(result.stdout, 'OK: no route is disabled\n')
})

t.test('the CLI login saves a session the next commands use', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_PASS: PASSWORDS['deploy-bot'] as string }
  const login = await h.sh(cliLogin as string, { env })
  t.equal(login.code, 0, login.stderr)
  const disable = await h.sh('waygate disable GET:/orders --reason "saved session"', { env: { WAYGATE_SERVER_URL: app.adminUrl } })
  t.equal(disable.code, 0, disable.stderr)
  t.match(await app.audit(), [{ action: 'disable', key: 'GET:/orders', actor: 'deploy-bot' }])
})

t.test('a failed login leaves no token: the login commands fail, check-routes.sh says UNKNOWN', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  await h.write('check-routes.sh', checkRoutes.code)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_PASS: 'wrong' }
  for (const [name, login] of [['curl', curlLogin], ['--print-token', printToken]]) {
    // in a script of this page: set -euo pipefail
    const failed = await h.sh(`set -euo pipefail\n${login}echo logged in`, { env })
    t.not(failed.code, 0, `${name}: the script stops at the login`)
    t.notMatch(failed.stdout, /logged in/)
  }
  const result = await h.sh('./check-routes.sh', { env })
  t.equal(result.code, 2)
  t.equal(result.stdout, '')
  t.equal(result.stderr, 'UNKNOWN: WAYGATE_TOKEN is not set (export it, see Credentials for scripts)\n')
})

t.test('check-routes.sh: exit 2 when the state cannot be read (server down, token refused)', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  await h.write('check-routes.sh', checkRoutes.code)
  const refused = await h.sh('./check-routes.sh', { env: { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_TOKEN: 'wg1.not-a-token' } })
  t.equal(refused.code, 2)
  t.equal(refused.stderr, `UNKNOWN: cannot read route state from ${app.adminUrl}\n`)
  const url = app.adminUrl
  await app.app.close()
  const down = await h.sh('./check-routes.sh', { env: { WAYGATE_SERVER_URL: url, WAYGATE_TOKEN: 'wg1.any' } })
  t.equal(down.code, 2)
  t.equal(down.stderr, `UNKNOWN: cannot read route state from ${url}\n`)
})

t.test('monitor-routes.mjs: 1 with the disabled and maintenance routes, 0 when nominal, 2 when unreadable', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  await h.write('monitor-routes.mjs', monitorRoutes.code)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_TOKEN: await app.token() }
  await app.engine.setMaintenance('GET:/payments', { reason: 'DB migration', actor: 'alice' })

  const alert = await h.sh('node monitor-routes.mjs', { env })
  t.equal(alert.code, 1, alert.stderr)
  t.match(alert.stdout, /^ALERT MAINTENANCE\s+GET:\/payments reason="DB migration"$/m)
  t.match(alert.stdout, /^ALERT DISABLED\s+GET:\/old-endpoint reason="replaced by \/v2\/endpoint"$/m)

  await app.engine.enable('GET:/payments', { actor: 'alice' })
  await app.engine.enable('GET:/old-endpoint', { actor: 'alice' })
  const ok = await h.sh('node monitor-routes.mjs', { env })
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /^OK: \d+ routes nominal\n$/)

  const refused = await h.sh('node monitor-routes.mjs', { env: { ...env, WAYGATE_TOKEN: 'wg1.not-a-token' } })
  t.equal(refused.code, 2)
  t.match(refused.stderr, /^UNKNOWN: HTTP 401/)
})

t.test('the waygate check lines: exit 0 and the documented OK line, then exit 1 with JSON', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_TOKEN: await app.token() }
  const commands = checkCommand.code.split('\n').filter(line => line.startsWith('waygate '))
  t.equal(commands.length, 2)
  const okComment = /^# (OK: .*)$/m.exec(checkCommand.code)?.[1] ?? 'no OK comment'

  const ok = await h.sh(commands[0] as string, { env })
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout.trim(), new RegExp('^' + okComment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d+/g, '\\d+') + '$'), 'the output the page shows')

  const json = await h.sh(commands[1] as string, { env })
  t.equal(json.code, 1, '/old-endpoint is disabled and not ignored here')
  t.match(JSON.parse(json.stdout), { ok: false, failing: [{ key: 'GET:/old-endpoint' }] })
})

t.test('audit-sentinel.sh: OK for known actors, 1 naming an unknown one, 2 without the log', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  await h.write('audit-sentinel.sh', sentinel.code)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_TOKEN: await app.token() }
  await app.app.inject({ method: 'POST', url: `/waygate/api/routes/${encodeURIComponent('GET:/orders')}/disable`, headers: { 'x-waygate-token': await app.token('deploy-bot') }, payload: { reason: 'deploy' } })
  t.match(await app.audit(), [{ actor: 'deploy-bot', key: 'GET:/orders' }], 'a change by a known actor')

  const ok = await h.sh('./audit-sentinel.sh', { env })
  t.equal(ok.code, 0, ok.stderr)
  t.equal(ok.stdout, 'OK\n')

  await app.app.inject({ method: 'POST', url: `/waygate/api/routes/${encodeURIComponent('GET:/payments')}/disable`, headers: { 'x-waygate-token': await app.token('mallory') }, payload: { reason: 'oops' } })
  const alert = await h.sh('./audit-sentinel.sh', { env })
  t.equal(alert.code, 1, alert.stderr)
  t.match(alert.stdout, /^ALERT: changes by unknown actors:\n\S+ mallory via api: disable GET:\/payments oops\n$/)
  t.notMatch(alert.stdout, /deploy-bot/)

  const noToken = await h.sh('./audit-sentinel.sh', { env: { WAYGATE_SERVER_URL: app.adminUrl } })
  t.equal(noToken.code, 2)
  t.equal(noToken.stderr, 'UNKNOWN: WAYGATE_TOKEN is not set (export it, see Credentials for scripts)\n')
  const refused = await h.sh('./audit-sentinel.sh', { env: { ...env, WAYGATE_TOKEN: 'wg1.not-a-token' } })
  t.equal(refused.code, 2)
  t.equal(refused.stderr, `UNKNOWN: cannot read the audit log from ${app.adminUrl}\n`)
})
