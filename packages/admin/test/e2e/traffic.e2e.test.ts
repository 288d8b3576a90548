import type { AddressInfo } from 'node:net'
import { mkdir } from 'node:fs/promises'
import t from 'tap'
import { openPage, skipWithoutChromium } from '../helpers/browser.js'
import { createMemoryBackend } from '@waygate/core'
import { build } from '../../../../examples/basic.js'

/** Where the screenshots a person looks at land. */
const SCREENS = '/work/tmp/screens/'

const row = (key: string): string => `#route-${Buffer.from(key).toString('base64url')}`

t.test('traffic charts of the demo app in headless Chromium: rows, live update, route page', { skip: skipWithoutChromium }, async t => {
  const app = await build({ env: 'dev', backend: createMemoryBackend() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  await mkdir(SCREENS, { recursive: true }).catch(() => {})
  const hit = async (path: string, n: number) => {
    for (let i = 0; i < n; i++) await (await fetch(base + path)).arrayBuffer()
  }
  await hit('/v2/users', 30)
  await hit('/payments', 12)
  await hit('/v1/users', 5)

  const { page, problems, foreign } = await openPage(t, base)
  await page.goto(`${base}/waygate/login`)
  await page.getByLabel('Username').fill('admin')
  await page.getByLabel('Password').fill('secret')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${base}/waygate/`)
  await page.locator('#wg-live[data-state="live"]').waitFor()

  await t.test('each row charts its last hour, requests and blocked', async t => {
    const users = page.locator(`${row('GET:/v2/users')} [data-traffic]`)
    t.match(await users.locator('.spark-count').textContent(), /30 req/)
    t.equal(await users.locator('svg.spark rect.spark-req').count(), 1, 'one minute with traffic: one bar')
    t.equal(await users.locator('svg.spark rect.spark-blocked').count(), 0, 'nothing blocked')
    const payments = page.locator(`${row('GET:/payments')} [data-traffic]`)
    t.match(await payments.locator('.spark-count').textContent(), /12 req · 12 blocked/)
    t.equal(await payments.locator('svg.spark rect.spark-blocked').count(), 1)
    t.match(await payments.locator('svg.spark').getAttribute('aria-label'), 'Last hour: 12 requests, 12 blocked')
    const box = await payments.locator('svg.spark').boundingBox()
    t.ok(box !== null && box.width >= 100 && box.height >= 20, 'drawn at its size')
    await page.locator('#wg-routes').screenshot({ path: `${SCREENS}traffic-routes.png` })
  })

  await t.test('live: more requests show up without reloading the page, and rows do not flash', async t => {
    await page.evaluate('window.__sameDocument = true')
    await hit('/payments', 8)
    const count = page.locator(`${row('GET:/payments')} [data-traffic] .spark-count`)
    await count.filter({ hasText: '20 req' }).waitFor({ timeout: 15_000 })
    t.ok(await page.evaluate('window.__sameDocument === true'), 'patched in place, not reloaded')
    t.notOk(await page.locator(row('GET:/payments')).evaluate(el => el.classList.contains('updated')), 'a traffic change is not a state change')
  })

  await t.test('the route page: 24 h in 5-minute buckets and the blocked requests by kind', async t => {
    await page.locator(`${row('GET:/payments')} [data-traffic] a`).click()
    await page.waitForURL(/\/waygate\/routes\//)
    t.match(await page.locator('h1').textContent(), /GET\s+\/payments/)
    const charts = page.locator('#wg-route-traffic svg.spark-big')
    t.equal(await charts.count(), 2, 'the day and the hour')
    t.match(await charts.first().getAttribute('viewBox'), '0 0 864 120')
    t.match(await charts.first().getAttribute('aria-label'), 'Last 24 hours: 20 requests, 20 blocked')
    t.equal(await page.locator('#kind-maintenance td').last().textContent(), '20')
    t.equal(await page.locator('#kind-rate_limited td').last().textContent(), '0')
    await page.screenshot({ path: `${SCREENS}traffic-route-page.png`, fullPage: true })
  })

  t.same(problems, [], 'no script errors, no CSP violations')
  t.same(foreign, [], 'nothing loaded from elsewhere')
})
