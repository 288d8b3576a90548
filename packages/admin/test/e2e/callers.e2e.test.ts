import type { AddressInfo } from 'node:net'
import { mkdir } from 'node:fs/promises'
import t from 'tap'
import Fastify from 'fastify'
import { createEngine, createMemoryBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'
import { openPage, skipWithoutChromium } from '../helpers/browser.js'
import { SECRET, USER } from '../helpers/app.js'

const SCREENS = '/work/tmp/screens/'

t.test('the route page shows who still calls a deprecated route, next to its sunset', { skip: skipWithoutChromium }, async t => {
  const engine = createEngine({ backend: createMemoryBackend() })
  const app = Fastify()
  await app.register(waygate, { engine, closeEngine: true, callers: { publishIntervalMs: 0 } })
  app.get('/v1/users', {
    config: { waygate: { deprecated: { sunset: '2027-06-01T00:00:00Z', successor: '/v2/users', afterSunset: 'gone', callers: { by: 'api_key' } } } }
  }, async () => ({ users: [] }))
  app.get('/v2/users', async () => ({ users: [] }))
  await app.register(waygateAdmin, { auth: USER, secretKey: SECRET })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  await mkdir(SCREENS, { recursive: true })

  // a skewed set of callers, one of them with markup in its key
  const calls: Array<[string, number]> = [['mobile-app-ios', 40], ['partner-acme', 25], ['billing-cron', 9], ['<img src=x onerror=alert(1)>', 3], ['legacy-dashboard', 1]]
  for (const [key, n] of calls) for (let i = 0; i < n; i++) await app.inject({ url: '/v1/users', headers: { 'x-api-key': key } })
  const now = Date.now()
  await engine.scheduleBrownout('GET:/v1/users', { start: now + 3_600_000, end: now + 3_600_000 + 15 * 60_000, reason: 'v1 retires on 1 June', actor: 'ops' })

  const { page, problems, foreign } = await openPage(t, base)
  await page.goto(`${base}/waygate/login`)
  await page.getByLabel('Username').fill('admin')
  await page.getByLabel('Password').fill('secret')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${base}/waygate/`)
  await page.goto(`${base}/waygate/routes/${encodeURIComponent('GET:/v1/users')}`)
  const section = page.locator('#wg-route-callers')
  await section.waitFor()
  t.match(await section.locator('.callers-sunset').textContent(), /Sunset[\s\S]*\/v2\/users[\s\S]*410 Gone after it/)
  const rows = section.locator('.callers-table:not(.brownouts) tbody tr')
  t.equal(await rows.count(), 5)
  t.match(await rows.nth(0).textContent(), /mobile-app-ios\s*40\s*51\.3%/)
  t.match(await rows.nth(1).textContent(), /partner-acme\s*25/)
  t.equal(await rows.nth(3).locator('code').textContent(), '<img src=x onerror=alert(1)>', 'markup in a caller id is shown as text')
  t.equal(await section.locator('img').count(), 0, 'and never becomes an element')
  t.match(await section.locator('.brownouts tbody tr').textContent(), /v1 retires on 1 June/)
  t.match(await section.textContent(), /78 requests since/)
  await section.screenshot({ path: `${SCREENS}callers-section.png` })
  await page.screenshot({ path: `${SCREENS}callers-route-page.png`, fullPage: true })

  // an active route has no such section
  await page.goto(`${base}/waygate/routes/${encodeURIComponent('GET:/v2/users')}`)
  t.equal(await page.locator('#wg-route-callers').count(), 0)
  t.same(problems, [], 'no script errors, no CSP violations')
  t.same(foreign, [], 'nothing loaded from elsewhere')
})
