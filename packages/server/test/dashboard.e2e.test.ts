// The Waygate Server's dashboard in headless Chromium, against real processes: a server (this
// process) and a second server process on one Redis, services alpha and beta as their own processes
// (beta with one instance on each server), a second alpha instance that is SIGKILLed, and a service
// started with a token made on the tokens page.
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createRedisBackend } from '@waygate/core'
import { startRedisServer } from '../../core/test/helpers/redis-server.js'
import { ARTIFACTS, openPage, skipWithoutChromium } from '../../admin/test/helpers/browser.js'
import { createWaygateServer } from '../src/index.js'
import { get, SERVICE_SCRIPT, startTsProcess, until, type Proc } from './helpers/processes.js'
import { SECRET } from './helpers/server.js'
import { fileURLToPath } from 'node:url'

/** Where the screenshots go, for people to look at (see docs/dashboard.md): test-artifacts/ unless told. */
const SCREENS = process.env.WAYGATE_SCREENS === undefined ? ARTIFACTS : `${process.env.WAYGATE_SCREENS.replace(/\/$/, '')}/`
const PEER_SCRIPT = fileURLToPath(new URL('./helpers/peer-server.ts', import.meta.url))
// short heartbeats, so an instance goes stale within seconds: stale after 2 × 2 s, gone after 3 × 2 s
const HEARTBEAT_MS = 2000

interface Service extends Proc {
  url: string
}

t.test('the server\'s dashboard: service scope, service maintenance, live services, tokens', { skip: skipWithoutChromium, timeout: 240_000 }, async t => {
  mkdirSync(SCREENS, { recursive: true })
  const redis = await startRedisServer(t)
  const app = await createWaygateServer({
    backend: createRedisBackend({ url: redis.url }),
    auth: { username: 'admin', password: 'secret' },
    secretKey: SECRET,
    heartbeatMs: HEARTBEAT_MS
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const peer = startTsProcess(t, 'peer-server', PEER_SCRIPT, [], { WAYGATE_REDIS_URL: redis.url, WAYGATE_SECRET_KEY: SECRET, HEARTBEAT_MS: String(HEARTBEAT_MS) })
  const [, peerUrl] = await peer.waitFor(/listening (http:\/\/\S+)/, 60_000)
  // a frozen peer must not outlive the test: SIGKILL works on a stopped process too
  t.teardown(() => { peer.child.kill('SIGCONT') })

  async function startService (name: string, service: string, env: Record<string, string>): Promise<Service> {
    const proc = startTsProcess(t, name, SERVICE_SCRIPT, [], {
      SERVICE: service,
      WAYGATE_SERVER_URL: base,
      WAYGATE_USERNAME: 'admin',
      WAYGATE_PASSWORD: 'secret',
      READY_TIMEOUT_MS: '5000',
      BACKOFF_MS: '200',
      ...env
    })
    const [, url] = await proc.waitFor(/listening (http:\/\/\S+)/, 60_000)
    return Object.assign(proc, { url: url! })
  }
  const connected = (service: Service, timeoutMs = 15_000) => until(async () => {
    const sync = (await get(`${service.url}/sync`)).body
    return sync?.state === 'connected' ? sync : undefined
  }, timeoutMs, () => `${service.name} did not connect:\n${service.logs()}`)
  const answers = (service: Service, path: string, status: number, timeoutMs = 5000) => until(async () => {
    const res = await get(service.url + path)
    return res.status === status ? res : undefined
  }, timeoutMs, () => `${service.name} ${path} did not answer ${status}`, 25)

  const [alpha, beta, betaPeer] = await Promise.all([
    startService('alpha', 'alpha', { VERSION: '1.4.2', INSTANCE_ID: 'alpha-1', TRAFFIC_PUBLISH_MS: '300' }),
    startService('beta', 'beta', { VERSION: '2.0.0', INSTANCE_ID: 'beta-1' }),
    startService('beta-on-peer', 'beta', { VERSION: '2.0.0', INSTANCE_ID: 'beta-on-peer', WAYGATE_SERVER_URL: peerUrl! })
  ])
  await Promise.all([connected(alpha), connected(beta), connected(betaPeer)])

  // teardowns run last in, first out: the browser closes before the server, whose close would wait on its event stream
  const { page, problems, foreign } = await openPage(t, base)
  page.setDefaultTimeout(10_000)
  const dialog = page.locator('dialog#wg-dialog[open]')
  const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true })

  await t.test('signing in; unscoped, every route row names its service', async t => {
    await page.goto(`${base}/`)
    await page.getByLabel('Username').fill('admin')
    await page.getByLabel('Password').fill('secret')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${base}/`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    const chips = await page.locator('#wg-routes tbody .chip-service').allTextContents()
    t.ok(chips.includes('alpha') && chips.includes('beta'), `service chips: ${[...new Set(chips)].join(', ')}`)
    t.equal(await page.locator('#wg-service-card').count(), 0, 'no service card without a service selected')
  })

  await t.test('selecting a service scopes the page, in the URL, and the other pages follow', async t => {
    await page.getByLabel('Service', { exact: true }).selectOption('alpha')
    await page.getByRole('button', { name: 'Show' }).click()
    await page.waitForURL(`${base}/?service=alpha`)
    const rows = page.locator('#wg-routes tbody tr.route')
    t.ok(await rows.count() >= 3, 'alpha\'s routes')
    t.equal(await page.locator('#wg-routes tbody .chip-service').count(), 0, 'scoped: no chip on the rows')
    t.notMatch(await page.locator('#wg-routes').textContent(), /beta/, 'no route of beta')
    t.match(await page.locator('#wg-service-card h2').textContent(), /Maintenance of\s*alpha\s*is off/)
    t.equal(await nav('Audit log').getAttribute('href'), '/audit?service=alpha', 'the nav keeps the scope')
  })

  await t.test('service routes chart what their instances report: alpha\'s requests on the server\'s routes table, live', async t => {
    // the page is open before the requests: the rows change without a reload
    const items = page.locator('#wg-routes tbody tr.route[data-key="alpha:GET:/api/items"]')
    const old = page.locator('#wg-routes tbody tr.route[data-key="alpha:GET:/api/old"]')
    for (let i = 0; i < 25; i++) t.equal((await get(`${alpha.url}/api/items`)).status, 200)
    for (let i = 0; i < 4; i++) t.equal((await get(`${alpha.url}/api/old`)).status, 503)
    await items.locator('.spark-count', { hasText: '25 req' }).waitFor({ timeout: 20_000 })
    await old.locator('.spark-count', { hasText: '4 req · 4 blocked' }).waitFor({ timeout: 20_000 })
    t.ok(await items.locator('svg rect.spark-req').count() > 0, 'a bar in the chart')
    await page.screenshot({ path: `${SCREENS}routes-service-traffic.png`, fullPage: true })
    await items.locator('td.traffic a').click()
    await page.waitForURL(`${base}/routes/${encodeURIComponent('alpha:GET:/api/items')}`)
    t.match(await page.locator('#wg-route-traffic h2').first().textContent(), /every instance of the service/, 'the route page says whose requests they are')
    await page.screenshot({ path: `${SCREENS}route-service-traffic.png`, fullPage: true })
    await page.goto(`${base}/?service=alpha`)
  })

  await t.test('service maintenance through the card: alpha answers 503, beta does not', async t => {
    t.equal((await get(`${alpha.url}/api/items`)).status, 200)
    const opener = page.locator('#wg-service-card a[data-action="service-on"]')
    await opener.focus()
    await page.keyboard.press('Enter')
    await dialog.waitFor()
    t.equal(await dialog.locator('h1').textContent(), 'Put the service in maintenance')
    t.ok(await page.evaluate('document.activeElement?.id === "field-reason"'), 'focus starts in the first field')
    await dialog.getByLabel('Reason').fill('<script>alert(1)</script> db migration')
    await dialog.getByLabel('Exempt paths').fill('GET:/health')
    await dialog.getByRole('button', { name: 'Start service maintenance' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator('#wg-service-card.is-on').waitFor()
    t.match(await page.locator('#wg-service-card .global-reason').textContent(), '<script>alert(1)</script> db migration', 'the reason shows as text')

    const refused = await answers(alpha, '/api/items', 503)
    t.equal(refused.body.error.code, 'MAINTENANCE_MODE')
    t.equal((await get(`${alpha.url}/health`)).status, 200, 'the exempt path keeps answering')
    t.equal((await get(`${beta.url}/api/items`)).status, 200, 'beta is not in maintenance')
    t.equal((await get(`${betaPeer.url}/api/items`)).status, 200, 'nor beta\'s instance on the other server')
    await page.screenshot({ path: `${SCREENS}routes-scoped.png`, fullPage: true })

    await page.locator('#wg-service-card a[data-action="service-off"]').click()
    await dialog.getByRole('button', { name: 'End service maintenance' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator('#wg-service-card.is-off').waitFor()
    await answers(alpha, '/api/items', 200)

    // a change made elsewhere (the REST API, as the CLI calls it) shows up in the card without a reload
    await page.evaluate('window.samePage = true')
    const token = await operatorToken()
    await fetch(`${base}/api/services/alpha/maintenance/enable`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'from the CLI' }) })
    await page.locator('#wg-service-card.is-on', { hasText: 'from the CLI' }).waitFor()
    await fetch(`${base}/api/services/alpha/maintenance/disable`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    await page.locator('#wg-service-card.is-off').waitFor()
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')
    await answers(alpha, '/api/items', 200)
  })

  await t.test('the service rate limit card: alpha is limited, beta is not', async t => {
    await nav('Rate limits').click()
    await page.waitForURL(`${base}/rate-limits?service=alpha`)
    t.match(await page.locator('#wg-rl-service h2').textContent(), /Rate limit of\s*alpha\s*is not set/)
    await page.locator('#wg-rl-service a[data-action="rl-service-set"]').click()
    await dialog.getByLabel('Limits').fill('2/minute')
    await dialog.getByRole('button', { name: 'Set service limit' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator('#wg-rl-service.is-on').waitFor()
    t.match(await page.locator('#wg-rl-service .rl-limits').first().textContent(), '2/minute')
    await page.screenshot({ path: `${SCREENS}rate-limits-scoped.png`, fullPage: true })
    await until(async () => {
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((await get(`${alpha.url}/api/limited`)).status)
      return statuses.includes(429) ? true : undefined
    }, 5000, () => 'alpha never answered 429')
    for (let i = 0; i < 4; i++) t.equal((await get(`${beta.url}/api/limited`)).status, 200, `beta request ${i + 1}`)
    const rest = await fetch(`${base}/api/services/alpha/rate-limit`, { headers: { authorization: `Bearer ${await operatorToken()}` } })
    t.match(await rest.json(), { policy: { limits: ['2/minute'] }, enabled: true }, 'the REST API sees the same policy')
  })

  await t.test('the services page follows its instances live: one that stops heartbeating turns stale without a reload', async t => {
    await nav('Services').click()
    await page.waitForURL(`${base}/services?service=alpha`)
    await page.getByLabel('Service', { exact: true }).selectOption('')
    await page.getByRole('button', { name: 'Show' }).click()
    await page.waitForURL(`${base}/services?service=`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    const betaCard = page.locator('#wg-services section.service-card', { has: page.locator('h2', { hasText: 'beta' }) })
    const peerRow = betaCard.locator('tr.instance', { hasText: 'beta-on-peer' })
    await until(async () => await betaCard.locator('tr.instance').count() === 2 ? true : undefined, 10_000, () => 'beta does not list two instances')
    t.equal(await peerRow.getAttribute('data-state'), 'connected')
    t.equal(await betaCard.locator('[data-health]').textContent(), 'Healthy')
    t.match(await page.locator('#wg-services section.service-card', { has: page.locator('h2', { hasText: 'alpha' }) }).textContent(), /rate limit on[\s\S]*alpha-1/)
    await page.evaluate('window.samePage = true')

    // the peer server freezes: its stream to beta stays open, but no heartbeat is sent or recorded
    const stopped = Date.now()
    peer.child.kill('SIGSTOP')
    await page.locator('#wg-services tr.instance.state-stale', { hasText: 'beta-on-peer' }).waitFor({ timeout: 20_000 })
    const ms = Date.now() - stopped
    t.ok(ms < 60_000, `shown stale ${ms} ms after the freeze (rule: more than ${2 * HEARTBEAT_MS} ms since its last heartbeat)`)
    t.match(await betaCard.locator('[data-health]').textContent(), /Degraded · 1 of 2 stale/)
    t.equal(await betaCard.locator('tr.instance', { hasText: 'beta-1' }).getAttribute('data-state'), 'connected', 'beta\'s other instance stays connected')
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')
    await page.screenshot({ path: `${SCREENS}services.png`, fullPage: true })

    peer.child.kill('SIGCONT')
    await page.locator('#wg-services tr.instance.state-connected', { hasText: 'beta-on-peer' }).waitFor({ timeout: 30_000 })
    t.pass('back to connected once the peer heartbeats again')
  })

  await t.test('a service process killed (SIGKILL): its row turns disconnected on the open services page, without a reload', async t => {
    const alphaCard = page.locator('#wg-services section.service-card', { has: page.locator('h2', { hasText: 'alpha' }) })
    await page.evaluate('window.samePage = true')
    const alpha2 = await startService('alpha-2', 'alpha', { VERSION: '1.4.3', INSTANCE_ID: 'alpha-2' })
    await connected(alpha2)
    const row = alphaCard.locator('tr.instance', { hasText: 'alpha-2' })
    await alphaCard.locator('tr.instance.state-connected', { hasText: 'alpha-2' }).waitFor({ timeout: 20_000 })
    t.pass('a new instance appears on the open page')

    const killed = Date.now()
    await alpha2.stop('SIGKILL')
    await alphaCard.locator('tr.instance.state-disconnected', { hasText: 'alpha-2' }).waitFor({ timeout: 20_000 })
    const ms = Date.now() - killed
    t.ok(ms < 20_000, `shown disconnected ${ms} ms after the kill`)
    t.equal(await row.locator('.badge').textContent(), 'Disconnected')
    t.match(await row.locator('td[data-label="Last heartbeat"]').textContent(), /stream closed\s*(just now|\d+ s ago)/, 'when it went, and its last heartbeat')
    t.match(await alphaCard.locator('[data-health]').textContent(), /Degraded · 1 of 2 stale/)
    t.equal(await alphaCard.locator('tr.instance', { hasText: 'alpha-1' }).getAttribute('data-state'), 'connected', 'alpha\'s other instance stays connected')
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')
    await page.screenshot({ path: `${SCREENS}services-disconnected.png`, fullPage: true })

    // the other server process reads it from this one's record on Redis
    const onPeer = await until(async () => {
      const res = await fetch(`${peerUrl!}/api/services`, { headers: { authorization: `Bearer ${await operatorToken(peerUrl!)}` } })
      const found = ((await res.json()) as Array<{ name: string, instances: Array<{ id: string, state: string }> }>)
        .find(s => s.name === 'alpha')?.instances.find(i => i.id === 'alpha-2')
      return found?.state === 'disconnected' ? found : undefined
    }, 10_000, () => 'the peer server does not list alpha-2 as disconnected')
    t.match(onPeer, { stale: true, disconnectedAt: String, version: '1.4.3' }, 'the peer server lists it disconnected too')
  })

  let tokenValue = ''
  await t.test('a token made on the tokens page: shown once, copied, used by a service, revoked', async t => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
    await nav('Tokens').click()
    await page.waitForURL(`${base}/tokens`)
    await page.locator('#token-service').fill('gamma')
    await page.getByLabel('Name (optional)').fill('<script>alert(2)</script> pods')
    await page.getByLabel('Expires in').fill('30d')
    await page.getByRole('button', { name: 'Create token' }).click()
    const card = page.locator('#wg-new-token')
    await card.waitFor()
    t.match(await card.textContent(), /shown only this once/)
    tokenValue = await page.locator('#new-token-value').inputValue()
    t.ok(tokenValue.length > 40, 'the token is shown')
    await card.getByRole('button', { name: 'Copy' }).click()
    await page.locator('#wg-toast', { hasText: 'Copied' }).waitFor()
    t.equal(await page.evaluate('navigator.clipboard.readText()'), tokenValue, 'the copy button copies it')
    const row = page.locator('#wg-tokens tbody tr.token', { hasText: 'gamma' })
    t.match(await row.locator('th').textContent(), '<script>alert(2)</script> pods', 'its name shows as text')
    t.equal(await row.locator('.badge').textContent(), 'active')
    await page.screenshot({ path: `${SCREENS}tokens.png`, fullPage: true })

    // never again: the list and a new load of the page do not carry it
    await page.goto(`${base}/tokens`)
    t.notOk((await page.content()).includes(tokenValue), 'a reload does not show the token')

    const gamma = await startService('gamma', 'gamma', { WAYGATE_USERNAME: '', WAYGATE_PASSWORD: '', WAYGATE_TOKEN: tokenValue, VERSION: '0.1.0' })
    await connected(gamma)
    t.equal((await get(`${gamma.url}/api/items`)).status, 200)

    await page.locator('#wg-tokens tbody tr.token', { hasText: 'gamma' }).locator('a[data-action="token-revoke"]').click()
    await dialog.getByRole('button', { name: 'Revoke token' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator('#wg-tokens tbody tr.token.state-revoked', { hasText: 'gamma' }).waitFor()
    const sync = await until(async () => {
      const s = (await get(`${gamma.url}/sync`)).body
      return s?.state !== 'connected' ? s : undefined
    }, 10_000, () => `gamma's stream stayed open:\n${gamma.logs()}`)
    t.not(sync.state, 'connected', `gamma's stream closed (${sync.state})`)
    t.equal((await get(`${gamma.url}/api/items`)).status, 200, 'gamma keeps serving from its last snapshot')
    t.equal((await fetch(`${base}/api/sdk/services/gamma/snapshot`, { headers: { authorization: `Bearer ${tokenValue}` } })).status, 401, 'the token is refused')
    await page.screenshot({ path: `${SCREENS}tokens-revoked.png`, fullPage: true })
  })

  await t.test('the audit log, scoped to the service, shows the token\'s life', async t => {
    await page.goto(`${base}/audit?service=gamma`)
    const text = await page.locator('#wg-audit').textContent()
    t.match(text, /Service token revoked[\s\S]*admin[\s\S]*dashboard/)
    t.match(text, /Service token created[\s\S]*admin[\s\S]*dashboard/)
    t.notMatch(text, /alpha/, 'no entry of another service')
  })

  t.same(problems, [], 'no script errors, no CSP violations')
  t.same(foreign, [], 'no request leaves the server\'s origin')

  async function operatorToken (server = base): Promise<string> {
    const res = await fetch(`${server}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'secret' }) })
    return (await res.json() as { token: string }).token
  }
})
