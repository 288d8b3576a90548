import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ARTIFACTS, openPage, skipWithoutChromium } from '../helpers/browser.js'
import Fastify from 'fastify'
import { createEngine, createMemoryBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'

const XSS = '<script>alert(1)</script>'

/** A row of the rate limits page: `rl-` for policies, `rl-free-` for routes without one. */
const row = (kind: 'rl' | 'rl-free', key: string): string => `#${kind}-${Buffer.from(key).toString('base64url')}`

const skip = skipWithoutChromium

t.test('rate limits in the dashboard, in headless Chromium', { skip }, async t => {
  const app = Fastify()
  await app.register(waygate, { engine: createEngine({ backend: createMemoryBackend() }), closeEngine: true })
  const ok = async () => ({ ok: true })
  app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
  app.get('/posts', { config: { waygate: { rateLimit: { limit: ['5/minute', '100/day'], algorithm: 'fixed_window' } } } }, ok)
  app.get('/plans', { config: { waygate: { rateLimit: { tiers: { free: '10/minute', pro: '100/minute', enterprise: 'unlimited' }, key: 'user' } } } }, ok)
  app.get('/search', ok)
  app.get('/items/:id', ok)
  app.post('/items', ok)
  await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' }, secretKey: 'e2e-secret-key-0123456789' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const cliToken = (await (await fetch(`${base}/waygate/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'secret', platform: 'cli' })
  })).json() as any).token as string
  const api = (method: string, path: string, body?: object) => fetch(`${base}/waygate/api${path}`, {
    method,
    headers: { 'x-waygate-token': cliToken, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })

  const { page, problems, foreign } = await openPage(t, base)
  const dialog = page.locator('dialog#wg-dialog[open]')

  await t.test('signing in leads back to the rate limits page', async t => {
    await page.goto(`${base}/waygate/rate-limits`)
    t.equal(new URL(page.url()).pathname, '/waygate/login')
    await page.getByLabel('Username').fill('admin')
    await page.getByLabel('Password').fill('secret')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${base}/waygate/rate-limits`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    t.equal(await page.locator('.mainnav a[aria-current="page"]').textContent(), 'Rate limits')
    t.match(await page.locator(row('rl', 'GET:/posts')).textContent(), /5\/minute[\s\S]*100\/day[\s\S]*Fixed window[\s\S]*code/)
    t.match(await page.locator(row('rl', 'GET:/plans')).textContent(), /free\s*10\/minute[\s\S]*pro\s*100\/minute[\s\S]*enterprise\s*unlimited/)
    t.equal(await page.locator('#wg-rl-global h2').textContent(), 'Global rate limit is not set')
  })

  await t.test('a limit added through the dialog: the app answers 429 at once', async t => {
    await page.evaluate('window.samePage = true')
    t.equal((await fetch(`${base}/search`)).status, 200)
    const add = page.locator(`${row('rl-free', 'GET:/search')} a[data-action="rl-add"]`)
    await add.click()
    await dialog.waitFor()
    t.equal(await dialog.locator('h1').textContent(), 'Add a rate limit')
    t.ok(await page.evaluate('document.activeElement?.id === "field-limits"'), 'focus starts in the limits field')
    // Escape cancels, and focus returns to the button
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })
    t.ok(await add.evaluate((el: any) => el === el.ownerDocument.activeElement), 'focus returns to the opener')

    await add.click()
    await dialog.waitFor()
    // a refusal is the limiter's own, shown in the dialog
    await dialog.getByLabel('Limits').fill('many/minute')
    await dialog.getByRole('button', { name: 'Add limit' }).click()
    await dialog.locator('[data-form-error]:not([hidden])').waitFor()
    t.match(await dialog.locator('[data-form-error]').textContent(), /\/limits\/0: .*many\/minute/)

    await dialog.getByLabel('Limits').fill('1/minute')
    // a moving window: the refusals below stay refusals for a whole minute, wherever the clock's
    // minute boundary falls during the test (a fixed window would reset at it)
    await dialog.getByLabel('Algorithm').selectOption('moving_window')
    await dialog.getByLabel('Burst').fill('1')
    await dialog.locator('summary', { hasText: 'More settings' }).click()
    await dialog.getByLabel('Group').fill(`${XSS} search`)
    await page.screenshot({ path: `${ARTIFACTS}dashboard-rate-limits-dialog.png` })
    await dialog.getByRole('button', { name: 'Add limit' }).click()
    await dialog.waitFor({ state: 'detached' })
    t.match(await page.locator('#wg-toast').textContent(), /Done: Add a rate limit · GET:\/search/)
    const policy = page.locator(row('rl', 'GET:/search'))
    await policy.waitFor()
    t.match(await policy.locator('.rl-limits').textContent(), /1\/minute[\s\S]*group <script>alert\(1\)<\/script> search/, 'user text shows as text')
    t.match(await policy.textContent(), /Moving window[\s\S]*\+1[\s\S]*runtime/)
    await page.locator(row('rl-free', 'GET:/search')).waitFor({ state: 'detached' })

    const codes = []
    for (let i = 0; i < 3; i++) codes.push((await fetch(`${base}/search`)).status)
    t.same(codes, [200, 200, 429], 'limit + burst, then 429')
    const refused = await fetch(`${base}/search`)
    t.equal(refused.status, 429)
    t.ok(Number(refused.headers.get('retry-after')) > 0)
    t.match(await refused.json(), { error: { code: 'RATE_LIMIT_EXCEEDED', limit: '1/minute', path: '/search' } })

    // the per-route count of refusals follows without a reload (no event: the page polls)
    await policy.locator('.blocked-count', { hasText: '2' }).waitFor({ timeout: 4000 })
    t.equal(await page.locator('#wg-rl-tabs .tab-count').textContent(), '2')
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')
  })

  await t.test('policies changed elsewhere show up without a reload', async t => {
    const started = Date.now()
    t.equal((await api('POST', '/rate-limits', { key: 'POST:/items', limits: ['30/minute'], keyBy: 'api_key' })).status, 200)
    await page.locator(row('rl', 'POST:/items')).waitFor({ timeout: 2000 })
    t.ok(Date.now() - started < 1500, `shown within a second or so (${Date.now() - started} ms)`)
    t.match(await page.locator(row('rl', 'POST:/items')).textContent(), /30\/minute[\s\S]*API key[\s\S]*x-api-key/)
    await api('POST', '/rate-limits/global', { limits: ['1000/minute'], exemptRoutes: ['GET:/health'] })
    await page.locator('#wg-rl-global.is-on').waitFor({ timeout: 2000 })
    t.match(await page.locator('#wg-rl-global').textContent(), /1000\/minute[\s\S]*GET:\/health/)
    t.equal(await page.locator(`${row('rl-free', 'GET:/health')} td[data-label="Global limit"]`).textContent(), 'exempt')
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')
    // the dialog's notice fades after a few seconds; the picture is of the page
    await page.locator('#wg-toast p').first().waitFor({ state: 'detached', timeout: 6000 })
    await page.screenshot({ path: `${ARTIFACTS}dashboard-rate-limits.png`, fullPage: true })
  })

  await t.test('the blocked-requests page fills in live; a reset from a row lets the client through', async t => {
    await page.getByRole('link', { name: /^Blocked requests/ }).click()
    await page.waitForURL(`${base}/waygate/rate-limits/blocked`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    await page.evaluate('window.samePage = true')
    const rows = page.locator('#wg-blocked tbody tr')
    t.equal(await rows.count(), 2)
    t.match(await rows.first().textContent(), /GET:\/search[\s\S]*\/search[\s\S]*127\.0\.0\.1[\s\S]*1\/minute/)

    // the app refuses another request: it appears on its own, at the top
    const started = Date.now()
    t.equal((await fetch(`${base}/search?q=${encodeURIComponent(XSS)}`)).status, 429)
    await page.locator('#wg-blocked tbody tr').nth(2).waitFor({ timeout: 4000 })
    t.ok(Date.now() - started < 2500, `shown within the poll interval (${Date.now() - started} ms)`)
    t.equal(await rows.count(), 3)
    t.match(await page.locator('#wg-blocked .summary').textContent(), /newest 3 of 3/)
    t.match(await page.locator('#wg-blocked-summary').textContent(), /GET:\/search\s*3[\s\S]*127\.0\.0\.1\s*3/)
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')
    await page.screenshot({ path: `${ARTIFACTS}dashboard-rate-limits-blocked.png`, fullPage: true })

    await rows.first().locator('a[data-action="unblock"]').click()
    await dialog.waitFor()
    t.equal(await dialog.locator('h1').textContent(), 'Reset rate limit counters')
    t.equal(await dialog.getByLabel('Client (optional)').inputValue(), '127.0.0.1', 'the client comes from the row')
    await dialog.getByRole('button', { name: 'Reset counters' }).click()
    await dialog.waitFor({ state: 'detached' })
    t.equal((await fetch(`${base}/search`)).status, 200, 'the client is let through again')
  })

  await t.test('edit and delete dialogs', async t => {
    await page.getByRole('link', { name: 'Policies' }).click()
    await page.waitForURL(`${base}/waygate/rate-limits`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    await page.locator(`${row('rl', 'GET:/search')} a[data-action="rl-edit"]`).click()
    await dialog.waitFor()
    t.equal(await dialog.getByLabel('Limits').inputValue(), '1/minute', 'prefilled with the policy')
    t.equal(await dialog.getByLabel('Group').inputValue(), `${XSS} search`)
    t.ok(await dialog.locator('details.more[open]').count() === 1, 'advanced settings unfolded, as one is set')
    await dialog.getByLabel('Limits').fill('20/minute, 5 per second')
    await dialog.getByLabel('Group').fill('')
    await dialog.getByRole('button', { name: 'Save' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator(row('rl', 'GET:/search'), { hasText: '5 per second' }).waitFor({ timeout: 2000 })
    t.same(app.waygateRateLimits.policyFor('GET:/search')!.policy, { key: 'GET:/search', limits: ['20/minute', '5 per second'], algorithm: 'moving_window', burst: 1 })

    await page.locator(`${row('rl', 'POST:/items')} a[data-action="rl-delete"]`).click()
    await dialog.waitFor()
    t.match(await dialog.locator('.description').textContent(), /runtime policy goes/)
    await dialog.getByRole('button', { name: 'Delete' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator(row('rl-free', 'POST:/items')).waitFor({ timeout: 2000 })
    t.equal(app.waygateRateLimits.policyFor('POST:/items'), null)

    const audit = await (await api('GET', '/audit?limit=10')).json() as any[]
    t.match(audit[0], { action: 'rate_limit_delete', key: 'POST:/items', actor: 'admin', platform: 'dashboard' })
  })

  t.same(problems, [], 'no script errors, no CSP violations')
  t.same(foreign, [], 'no request leaves the server\'s origin')
})
