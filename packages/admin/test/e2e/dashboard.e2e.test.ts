import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ARTIFACTS, openPage, skipWithoutChromium } from '../helpers/browser.js'
import { createMemoryBackend } from '@waygate/core'
import { build } from '../../../../examples/basic.js'

/** Waits up to a second for a condition the page reports asynchronously. */
async function expectSoon (check: () => boolean): Promise<void> {
  for (let i = 0; i < 20 && !check(); i++) await new Promise(resolve => setTimeout(resolve, 50))
}

/** The row of a route key in the routes table. */
const row = (key: string): string => `#route-${Buffer.from(key).toString('base64url')}`

const skip = skipWithoutChromium

t.test('the demo app\'s dashboard in headless Chromium', { skip }, async t => {
  // the demo: the basic example, which mounts the admin at /waygate (admin / secret)
  const app = await build({ env: 'dev', backend: createMemoryBackend() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const api = async (method: string, path: string, token: string | null, body?: object) => {
    const res = await fetch(`${base}/waygate/api${path}`, {
      method,
      headers: { ...(token === null ? {} : { 'x-waygate-token': token }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: res.status, body: await res.json() as any }
  }
  const cliToken = (await api('POST', '/auth/login', null, { username: 'admin', password: 'secret', platform: 'cli' })).body.token as string

  // teardowns run last-in first-out: the browser closes first, as an open event stream would keep app.close() waiting
  const { page, problems, foreign } = await openPage(t, base)

  await t.test('signing in', async t => {
    await page.goto(`${base}/waygate/`)
    t.equal(new URL(page.url()).pathname, '/waygate/login', 'no session: the login page')
    await page.getByLabel('Username').fill('admin')
    await page.getByLabel('Password').fill('wrong')
    await page.getByRole('button', { name: 'Sign in' }).click()
    t.match(await page.getByRole('alert').textContent(), /Wrong username or password/)
    await page.getByLabel('Password').fill('secret')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${base}/waygate/`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    t.equal(await page.locator('h1').first().textContent(), 'Routes')
    t.equal(await page.locator(row('GET:/payments') + ' .badge').first().textContent(), 'Maintenance')
  })

  await t.test('maintenance through the confirmation dialog: the app answers 503', async t => {
    t.equal((await fetch(`${base}/v2/users`)).status, 200)
    const button = page.locator(`${row('GET:/v2/users')} a[data-action="maintenance"]`)
    await button.click()
    const dialog = page.locator('dialog#wg-dialog[open]')
    await dialog.waitFor()
    t.equal(await dialog.locator('h1').textContent(), 'Put route in maintenance')
    t.ok(await page.evaluate('document.activeElement?.id === "field-reason"'), 'focus starts in the first field')
    // Escape cancels, and focus goes back to the button that opened the dialog
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })
    t.equal(await page.locator('dialog#wg-dialog[open]').count(), 0)
    t.ok(await button.evaluate((el: any) => el === el.ownerDocument.activeElement), 'focus returns to the opener')

    await button.click()
    await dialog.waitFor()
    await dialog.getByLabel('Reason').fill('<script>alert(1)</script> upgrade')
    await dialog.getByRole('button', { name: 'Start maintenance' }).click()
    await page.locator('dialog#wg-dialog[open]').waitFor({ state: 'detached' })
    await page.locator(`${row('GET:/v2/users')} .badge-maintenance`).waitFor()
    t.match(await page.locator(`${row('GET:/v2/users')} .reason`).textContent(), '<script>alert(1)</script> upgrade', 'the reason shows as text')
    const answer = await fetch(`${base}/v2/users`)
    t.equal(answer.status, 503)
    t.equal((await answer.json() as any).error.code, 'MAINTENANCE_MODE')
    t.match(await page.locator('#wg-toast').textContent(), /Done: Put route in maintenance · GET:\/v2\/users/)
  })

  await t.test('a refused action explains itself in the dialog', async t => {
    await page.locator(`${row('GET:/debug')} a[data-action="schedule"]`).click()
    const dialog = page.locator('dialog#wg-dialog[open]')
    await dialog.getByLabel('Start').fill('tomorrow')
    await dialog.getByLabel('End').fill('2h')
    await dialog.getByRole('button', { name: 'Schedule' }).click()
    await dialog.locator('[data-form-error]:not([hidden])').waitFor()
    t.match(await dialog.locator('[data-form-error]').textContent(), /expected an ISO 8601 date-time/)
    await dialog.getByRole('link', { name: 'Cancel' }).click()
    await dialog.waitFor({ state: 'detached' })
  })

  await t.test('changes made elsewhere show up without a reload', async t => {
    await page.evaluate('window.samePage = true')
    const active = () => page.locator('.counter-active .count').textContent()
    const before = Number(await active())

    // the REST API, as the CLI would call it
    const started = Date.now()
    t.equal((await api('POST', `/routes/${encodeURIComponent('GET:/v1/users')}/disable`, cliToken, { reason: 'sunset early' })).status, 200)
    await page.locator(`${row('GET:/v1/users')} .badge-disabled`).waitFor({ timeout: 2000 })
    t.ok(Date.now() - started < 1500, `shown within a second or so (${Date.now() - started} ms)`)
    t.match(await page.locator(`${row('GET:/v1/users')} .reason`).textContent(), 'sunset early')
    t.equal(await page.locator('.counter-disabled .count').textContent(), '2', 'counters follow')
    t.equal(Number(await active()), before)

    // global maintenance, from the API: the card and the banner
    await api('POST', '/global/enable', cliToken, { reason: 'deploy 42', exemptPaths: ['/health'] })
    await page.locator('#wg-banner .banner').waitFor({ timeout: 2000 })
    t.match(await page.locator('#wg-banner').textContent(), /Global maintenance is on\.[\s\S]*deploy 42/)
    t.match(await page.locator('#wg-global h2').textContent(), /is on/)
    t.equal(await page.locator('#wg-global code.chip').textContent(), '/health')
    t.equal((await fetch(`${base}/v2/users`)).status, 503)
    t.equal((await fetch(`${base}/waygate/login`)).status, 200, 'the admin is never in maintenance')

    // a dropped stream reconnects, and what changed meanwhile shows up
    app.server.closeAllConnections()
    await page.locator('#wg-live[data-state="reconnecting"]').waitFor({ timeout: 2000 })
    await app.waygate.enable('GET:/v1/users', { actor: 'scheduler-test', platform: 'scheduler' })
    await page.locator('#wg-live[data-state="live"]').waitFor({ timeout: 8000 })
    await page.locator(`${row('GET:/v1/users')} .badge-active`).waitFor({ timeout: 2000 })
    t.ok(await page.evaluate('window.samePage === true'), 'no reload happened')

    await page.screenshot({ path: `${ARTIFACTS}dashboard-routes.png`, fullPage: true })
  })

  await t.test('the audit page, live too', async t => {
    await page.getByRole('link', { name: 'Audit log' }).click()
    await page.waitForURL(`${base}/waygate/audit`)
    await page.locator('#wg-live[data-state="live"]').waitFor()
    const rows = page.locator('#wg-audit tbody tr')
    const first = rows.first()
    t.match(await first.textContent(), /Enabled[\s\S]*scheduler-test[\s\S]*scheduler/)
    t.match(await page.locator('#wg-audit').textContent(), /Maintenance on[\s\S]*admin[\s\S]*dashboard/, 'the dialog\'s change, by the dashboard')
    const count = await rows.count()
    await api('POST', '/global/disable', cliToken)
    await page.locator('#wg-audit tbody tr', { hasText: 'Global maintenance off' }).waitFor({ timeout: 2000 })
    t.equal(await rows.count(), count + 1)
    await page.locator('#wg-banner .banner').waitFor({ state: 'detached', timeout: 2000 })
    t.match(await first.locator('.platform').textContent(), 'cli')
    await page.screenshot({ path: `${ARTIFACTS}dashboard-audit.png`, fullPage: true })
  })

  await t.test('signing out', async t => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(`${base}/waygate/login`)
    await page.goto(`${base}/waygate/`)
    t.equal(new URL(page.url()).pathname, '/waygate/login', 'the session is gone')
  })

  t.same(problems, [], 'no script errors, no CSP violations')
  t.same(foreign, [], 'no request leaves the server\'s origin')

  await t.test('the browser enforces the policy: inline styles and scripts do not run', async t => {
    await page.evaluate(`{
      const div = document.createElement('div')
      div.innerHTML = '<span id="inline" style="color: red">x</span>'
      document.body.append(div)
      const script = document.createElement('script')
      script.textContent = 'window.inlineRan = true'
      document.body.append(script)
    }`)
    await expectSoon(() => problems.length >= 2)
    t.match(problems.join('\n'), /Applying inline style violates the following Content Security Policy directive/)
    t.match(problems.join('\n'), /Executing inline script violates the following Content Security Policy directive/)
    t.notOk(await page.evaluate('window.inlineRan === true'), 'the inline script did not run')
  })
})
