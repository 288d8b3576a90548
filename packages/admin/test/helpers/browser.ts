import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
/** Where screenshots land (gitignored), for people to look at. */
export const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url))

/** False when Chromium is there, else why the browser tests are skipped. */
export const skipWithoutChromium = existsSync(CHROMIUM)
  ? false
  : `dashboard end-to-end tests need Chromium at ${CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)`

export interface WatchedPage {
  page: Page
  /** Script errors and console errors (Chromium reports CSP violations there). */
  problems: string[]
  /** Requests to any other origin than `base`. */
  foreign: string[]
}

/**
 * Opens a page in headless Chromium (flags this machine needs), closed at teardown, recording
 * script errors, CSP violations and requests that leave `base`. Register it after the app's own
 * teardown: teardowns run last in, first out, and an open event stream would keep app.close() waiting.
 */
export async function openPage (t: { teardown: (fn: () => unknown) => void }, base: string): Promise<WatchedPage> {
  await mkdir(ARTIFACTS, { recursive: true })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' })
  const page = await context.newPage()
  page.setDefaultTimeout(5000)
  const problems: string[] = []
  page.on('pageerror', err => problems.push(`page error: ${err.message}`))
  // 4xx answers a test asks for show as "Failed to load resource" and are fine
  page.on('console', message => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`)
  })
  const foreign: string[] = []
  page.on('request', request => { if (!request.url().startsWith(base)) foreign.push(request.url()) })
  return { page, problems, foreign }
}
