import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { host, missingTools, PASSWORDS, readRecipes, recipe, startRecipeApp, type RecipeApp } from './helpers/recipes.js'

// The deploy and cron recipes of docs/monitoring-and-deploy.md, run verbatim with bash, curl and
// the CLI against a real app; `docker` and `npx` are stubs that record what callers saw meanwhile.

const missing = missingTools()
if (missing.length > 0) {
  t.fail(`the recipes' tests need ${missing.join(', ')} on the PATH (Debian/Ubuntu: apt-get install ${missing.join(' ')})`)
  process.exit(1)
}

const recipes = await readRecipes()
const deploy = recipe(recipes, { file: 'deploy.sh' })
const rolling = recipe(recipes, { file: 'rolling-deploy.sh' })
const cron = recipe(recipes, { heading: 'Scheduled maintenance from cron', lang: 'cron' })
const cronWrapper = recipe(recipes, { file: 'waygate-cron' })

/** What an API caller gets, written to the stub log by a stub: `GET /payments 503`. */
const probe = (method: string, path: string): string =>
  `echo "  ${method} ${path} $(curl -s -o /dev/null -w '%{http_code}' -X ${method} "$APP_ORIGIN${path}")" >> "$STUB_LOG"`

const deployStubs = {
  npx: `${probe('GET', '/payments')}\n${probe('GET', '/health')}\n` +
    'waygate global status --json > "$STUB_LOG.global"\n[ -z "$MIGRATION_FAILS" ] || exit 1',
  docker: 'echo "docker: building api"'
}

async function deployHost (t: { teardown: (fn: () => unknown) => void }, app: RecipeApp) {
  const h = await host(t, deployStubs)
  await h.write('deploy.sh', deploy.code)
  const env = {
    WAYGATE_SERVER_URL: app.adminUrl,
    WAYGATE_PASS: PASSWORDS['deploy-bot'] as string,
    APP_URL: app.origin,
    APP_ORIGIN: app.origin
  }
  return { h, env }
}

const globalActions = async (app: RecipeApp): Promise<string[]> =>
  (await app.audit()).filter(e => e.key === '*' || String(e.action).startsWith('global')).map(e => `${e.action} ${e.actor}`).reverse()

t.test('deploy.sh: the API is down during the deploy and back after it, with a dead-man\'s switch', async t => {
  const app = await startRecipeApp(t)
  const { h, env } = await deployHost(t, app)
  const result = await h.sh('./deploy.sh', { env: { ...env, VERSION: '1.4.2' } })
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /==> Global maintenance on[\s\S]*==> Migrations[\s\S]*==> Deploy complete[\s\S]*==> Global maintenance off\n$/)
  t.equal(await h.stubLog(), 'npx prisma migrate deploy\n  GET /payments 503\n  GET /health 200\ndocker compose up -d --no-deps --build api\n',
    'callers get 503 during the migrations, /health keeps answering')
  t.equal(app.engine.getGlobal().enabled, false, 'maintenance is off afterwards')
  const enable = (await app.audit()).find(e => /Deploying v1\.4\.2, back in about 5 minutes/.test(JSON.stringify(e)))
  t.ok(enable, 'the reason names the version')
  t.match(enable, { actor: 'deploy-bot' })
  const during = JSON.parse(await readFile(join(h.dir, 'stubs.log.global'), 'utf8'))
  t.match(during, { enabled: true, exemptPaths: ['/health', 'GET:/readiness'] })
  t.ok(Math.abs(Date.parse(during.end) - Date.now() - 15 * 60_000) < 60_000, 'with an end 15 minutes away (--for 15m)')
})

t.test('deploy.sh without VERSION: stops before enabling maintenance', async t => {
  const app = await startRecipeApp(t)
  const { h, env } = await deployHost(t, app)
  const before = await globalActions(app)
  await h.write('VERSION', '1.4.2\n') // the old recipe read this file; a stray one must not matter
  const result = await h.sh('./deploy.sh', { env })
  t.not(result.code, 0)
  t.match(result.stderr, /VERSION: set VERSION, e\.g\. VERSION=1\.4\.2 \.\/deploy\.sh/)
  t.notMatch(result.stderr, /Deploying v,|maintenance on/)
  t.equal(await h.stubLog(), '', 'no deploy step ran')
  t.equal(app.engine.getGlobal().enabled, false)
  t.same(await globalActions(app), before, 'global maintenance was never touched')
})

t.test('`./deploy.sh | head -1`: global maintenance is off afterwards', async t => {
  const app = await startRecipeApp(t)
  const { h, env } = await deployHost(t, app)
  const result = await h.sh('./deploy.sh | head -1', { env: { ...env, VERSION: '1.4.2' } })
  t.equal(result.code, 0, 'head exits 0')
  t.equal(result.stdout.split('\n').length, 2, 'head printed one line')
  t.match(await h.stubLog(), /GET \/payments 503/, 'maintenance was on meanwhile')
  t.equal(app.engine.getGlobal().enabled, false, 'and is off now')
  t.match(result.stderr, /==> Global maintenance off\n$/)
})

t.test('`./deploy.sh 2>&1 | head -1`: the deploy stops at its next line, maintenance is off', async t => {
  const app = await startRecipeApp(t)
  const { h, env } = await deployHost(t, app)
  const result = await h.sh('./deploy.sh 2>&1 | head -1', { env: { ...env, VERSION: '1.4.2' } })
  t.equal(result.code, 0, 'head exits 0')
  t.equal(result.stdout.split('\n').length, 2, 'head printed one line')
  t.equal(app.engine.getGlobal().enabled, false)
})

t.test('deploy.sh: a failing step fails the deploy and brings the API back', async t => {
  const app = await startRecipeApp(t)
  const { h, env } = await deployHost(t, app)
  const result = await h.sh('./deploy.sh', { env: { ...env, VERSION: '1.4.2', MIGRATION_FAILS: '1' } })
  t.equal(result.code, 1)
  t.notMatch(await h.stubLog(), /docker/, 'it stopped at the failing step')
  t.match(result.stderr, /==> Global maintenance off\n$/)
  t.equal(app.engine.getGlobal().enabled, false)
})

t.test('deploy.sh killed (SIGTERM to its process group, as a cancelled CI job): the API comes back', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t, { ...deployStubs, docker: 'touch "$STUB_LOG.started"; sleep 30' })
  await h.write('deploy.sh', deploy.code)
  let pid = 0
  const run = h.sh('./deploy.sh', {
    env: { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_PASS: PASSWORDS['deploy-bot'] as string, APP_URL: app.origin, APP_ORIGIN: app.origin, VERSION: '1.4.2' },
    detached: true,
    onStart: p => { pid = p }
  })
  const started = join(h.dir, 'stubs.log.started')
  for (let i = 0; i < 300; i++) {
    if (await readFile(started).then(() => true, () => false)) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal(app.engine.getGlobal().enabled, true, 'killed during the deploy')
  process.kill(-pid, 'SIGTERM')
  const result = await run
  t.equal(result.code, 143)
  t.equal(app.engine.getGlobal().enabled, false, 'maintenance is off')
})

t.test('rolling-deploy.sh: POST /orders answers 503 during the deploy, 200 after', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t, { docker: `${probe('POST', '/orders')}\n${probe('GET', '/orders')}\n[ -z "\${DOCKER_FAILS:-}" ] || exit 1` })
  await h.write('rolling-deploy.sh', rolling.code)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_TOKEN: await app.token('deploy-bot'), ORDERS_URL: app.origin, APP_ORIGIN: app.origin }
  const result = await h.sh('./rolling-deploy.sh', { env })
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /Orders back online\n$/)
  t.equal(await h.stubLog(), 'docker compose up -d --no-deps --build orders\n  POST /orders 503\n  GET /orders 200\n')
  t.equal(app.engine.getState('POST:/orders')?.status, 'active')

  const failed = await h.sh('./rolling-deploy.sh', { env: { ...env, DOCKER_FAILS: '1' } })
  t.equal(failed.code, 1)
  const state = app.engine.getState('POST:/orders')
  t.equal(state?.status, 'maintenance', 'left in maintenance when the deploy fails…')
  const end = Date.parse(String(state?.window?.end))
  t.ok(Math.abs(end - Date.now() - 10 * 60_000) < 60_000, '…until the end 10 minutes away')
})

/** The commands of the crontab lines, as cron runs them (`\%` is a literal `%`). */
const cronCommands = cron.code.split('\n')
  .filter(line => /^[\d*]/.test(line))
  .map(line => line.split(/\s+/).slice(5).join(' ').replace(/\\%/g, '%'))

t.test('the crontab lines schedule and start the weekly window', async t => {
  t.equal(cronCommands.length, 3)
  const app = await startRecipeApp(t)
  const h = await host(t)
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_TOKEN: await app.token('cron') }
  const hour = 3_600_000

  const relative = await h.sh(cronCommands[0] as string, { env })
  t.equal(relative.code, 0, relative.stderr)
  let window = app.engine.getState('GET:/reports')?.window
  t.match(window, { reason: 'Weekly report rebuild' })
  t.ok(Math.abs(Date.parse(String(window?.start)) - Date.now() - hour) < 60_000, 'starts in an hour')
  t.ok(Math.abs(Date.parse(String(window?.end)) - Date.now() - 3 * hour) < 60_000, 'ends in three')

  const now = await h.sh(cronCommands[1] as string, { env })
  t.equal(now.code, 0, now.stderr)
  t.equal(app.engine.getState('GET:/reports')?.status, 'maintenance')
  window = app.engine.getState('GET:/reports')?.window
  t.ok(Math.abs(Date.parse(String(window?.end)) - Date.now() - 2 * hour) < 60_000, 'ends by itself in two hours')

  // the absolute line runs at 01:00 UTC: the server's clock says so
  const today = new Date().toISOString().slice(0, 10)
  app.setClockOffset(Date.parse(`${today}T01:00:00Z`) - Date.now())
  const absolute = await h.sh(cronCommands[2] as string, { env })
  t.equal(absolute.code, 0, absolute.stderr)
  t.match(app.engine.getState('GET:/reports')?.window, { start: `${today}T02:00:00.000Z`, end: `${today}T04:00:00.000Z`, reason: 'Weekly report rebuild' })
})

t.test('waygate-cron: logs in, runs the command as cron, logs out; stops when the login fails', async t => {
  const app = await startRecipeApp(t)
  const h = await host(t)
  const wrapper = await h.write('waygate-cron', cronWrapper.code)
  await h.write('cron.password', PASSWORDS.cron as string)
  await h.write('wrong.password', 'wrong')
  const env = { WAYGATE_SERVER_URL: app.adminUrl, WAYGATE_PASSWORD_FILE: join(h.dir, 'cron.password') }

  const ok = await h.sh(`${wrapper} maintenance GET:/reports --end 2h --reason "Weekly report rebuild"`, { env })
  t.equal(ok.code, 0, ok.stderr)
  t.equal(app.engine.getState('GET:/reports')?.status, 'maintenance')
  t.match(await app.audit(), [{ action: 'maintenance', key: 'GET:/reports', actor: 'cron' }])

  const failed = await h.sh(`${wrapper} enable GET:/reports`, { env: { ...env, WAYGATE_PASSWORD_FILE: join(h.dir, 'wrong.password') } })
  t.not(failed.code, 0)
  t.equal(app.engine.getState('GET:/reports')?.status, 'maintenance', 'the command did not run')
})
