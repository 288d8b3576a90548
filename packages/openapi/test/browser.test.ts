import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { buildDocsApp } from './helpers/app.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url))
const skip = existsSync(CHROMIUM) ? false : `headless Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) to run the Swagger UI check`

t.test('Swagger UI shows the maintenance banner and badges, and follows changes without a reload', { skip }, async t => {
  const { app, engine } = await buildDocsApp(t, { openapi: { pollIntervalMs: 250 }, ui: { staticCSP: true } })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })

  const profile = mkdtempSync(join(tmpdir(), 'waygate-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 }
  })
  t.teardown(() => browser.close())

  await engine.deprecate('GET:/users', { sunset: '2027-01-01T00:00:00Z', successor: '/v2/users' })
  await engine.setMaintenance('PUT:/users/:id', { reason: 'Reindexing users' })
  const reason = 'Database upgrade <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>'
  await engine.enableGlobalMaintenance({ reason, exemptPaths: ['/health'] })

  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', err => problems.push(`page error: ${err.message}`))
  page.on('console', msg => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
  await page.goto(`${base}/docs/`)

  const banner = page.locator('#waygate-banner')
  await banner.waitFor({ state: 'visible', timeout: 15_000 })
  t.match(await banner.innerText(), /site-wide maintenance in progress/i)
  t.match(await banner.locator('.waygate-banner-reason').textContent(), reason, 'the reason shows as text, markup included')
  t.match(await banner.innerText(), 'Still available: /health')
  t.equal(await page.evaluate('window.__xss'), undefined, 'nothing in the reason ran')
  t.equal(await banner.locator('img, script').count(), 0, 'no element came from the reason')

  await page.locator('.opblock').first().waitFor({ timeout: 15_000 })
  await page.locator('.waygate-badge').first().waitFor({ timeout: 5_000 })
  const badged = await page.locator('.opblock.waygate-maintenance').count()
  const blocks = await page.locator('.opblock').count()
  t.equal(badged, blocks - 2, 'every operation but the exempt /health and the unmanaged /internal carries a badge')
  t.equal(await page.locator('.opblock-deprecated').count(), 1, 'Swagger UI shows the deprecated operation')
  t.equal(await page.locator('#waygate-chip').count(), 0, 'no "all systems operational" chip meanwhile')

  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'openapi-global-maintenance.png') })

  await engine.disableGlobalMaintenance()
  await banner.waitFor({ state: 'detached', timeout: 5_000 })
  const chip = page.locator('#waygate-chip')
  await chip.waitFor({ state: 'visible', timeout: 5_000 })
  t.match(await chip.innerText(), '1 operation in maintenance', 'the chip counts the route still in maintenance')
  t.equal(await page.locator('.opblock.waygate-maintenance').count(), 1, 'only its badge is left')

  await engine.enable('PUT:/users/:id')
  await page.locator('#waygate-chip', { hasText: 'All systems operational' }).waitFor({ timeout: 5_000 })
  await page.locator('.waygate-badge').waitFor({ state: 'detached', timeout: 5_000 })

  await engine.disable('GET:/users/:id')
  await page.locator('#waygate-chip .waygate-reload').waitFor({ timeout: 5_000 })
  t.pass('a removed operation offers a reload')
  await Promise.all([page.waitForEvent('load'), page.locator('#waygate-chip .waygate-reload').click()])
  await page.locator('.opblock').first().waitFor({ timeout: 15_000 })
  t.equal(await page.locator('.opblock').count(), blocks - 1, 'after the reload the disabled operation is gone')

  // Swagger UI itself applies a few inline styles its static CSP blocks, with or without waygate
  const ours = problems.filter(p => !p.includes('Applying inline style violates'))
  t.same(ours, [], 'no script errors, no other CSP violations')
})
