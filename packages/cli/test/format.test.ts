import { readFile } from 'node:fs/promises'
import t from 'tap'
import { routeState } from '@waygate/core/testing'
import { compactDuration, createStyle, relativeTime, routeNotes, table, visibleLength, type RouteState } from '../src/format.js'
import { CLI_VERSION } from '../src/version.js'

const NOW = Date.parse('2030-06-01T12:00:00Z')

t.test('relative times read like people talk', async t => {
  t.equal(relativeTime(NOW + 7_199_000, NOW), 'in 2h', 'rounded to the minute')
  t.equal(relativeTime(NOW - 5 * 60_000, NOW), '5m ago')
  t.equal(relativeTime(NOW + 90 * 60_000, NOW), 'in 1h 30m')
  t.equal(relativeTime(NOW - 2_000, NOW), 'just now')
  t.equal(relativeTime(NOW + 30_000, NOW), 'in 30s')
  t.equal(relativeTime(NOW - 26 * 3_600_000, NOW), '1d 2h ago')
  t.equal(relativeTime('2031-01-01T00:00:00Z', NOW), '2031-01-01', 'far away: a date')
  t.equal(relativeTime(null, NOW), '-')
  t.equal(compactDuration(86_400_000), '1d')
})

t.test('tables align on what is visible, colour codes included', async t => {
  const style = createStyle(true)
  const out = table(['ROUTE', 'STATUS', 'REASON'], [
    ['GET:/a', style.red('DISABLED'), 'x'],
    ['GET:/longer', style.green('ACTIVE'), '']
  ], createStyle(false))
  const lines = out.split('\n')
  t.equal(lines[0], 'ROUTE        STATUS    REASON')
  t.equal(visibleLength(lines[1]!), 'GET:/a       DISABLED  x'.length)
  t.equal(lines[2], 'GET:/longer  \u001b[32mACTIVE\u001b[39m', 'no trailing blanks')
})

t.test('route notes say what else matters', async t => {
  const base: RouteState = routeState('GET:/r', { updatedAt: new Date(NOW).toISOString(), updatedBy: 'a' })
  t.equal(routeNotes({ ...base, window: { start: new Date(NOW + 3_600_000).toISOString(), end: new Date(NOW + 3 * 3_600_000).toISOString(), reason: '' } }, NOW), 'window in 1h → in 3h')
  t.equal(routeNotes({ ...base, status: 'maintenance', window: { start: new Date(NOW).toISOString(), end: null, reason: '' } }, NOW), 'until enabled')
  t.equal(routeNotes({ ...base, status: 'disabled', disabledUntil: new Date(NOW + 1_800_000).toISOString() }, NOW), 'until in 30m')
  t.equal(routeNotes({ ...base, status: 'env_gated', allowedEnvs: ['dev', 'staging'] }, NOW), 'envs dev,staging')
  t.equal(routeNotes({ ...base, forceActive: true }, NOW), 'force-active')
})

t.test('the version printed is the package version', async t => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
  t.equal(CLI_VERSION, pkg.version)
})
