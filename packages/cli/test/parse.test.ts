import t from 'tap'
import { durationMs, parseCount, parseRouteArg, parseSince, parseStatusList, parseWhen } from '../src/parse.js'

t.test('route arguments: METHOD:/path, a bare /path, a lower-case method, METHOD /path', async t => {
  t.same(parseRouteArg('GET:/payments'), { key: 'GET:/payments', method: 'GET', path: '/payments' })
  t.same(parseRouteArg('/payments'), { key: '/payments', method: null, path: '/payments' })
  t.same(parseRouteArg('delete:/users/:id'), { key: 'DELETE:/users/:id', method: 'DELETE', path: '/users/:id' })
  t.same(parseRouteArg('PATCH /x'), { key: 'PATCH:/x', method: 'PATCH', path: '/x' })
  t.throws(() => parseRouteArg('FETCH:/x'), { code: 'WG_ERR_CLI_USAGE', exitCode: 2, message: /unknown HTTP method "FETCH"/ })
  t.throws(() => parseRouteArg('payments'), { code: 'WG_ERR_CLI_USAGE' })
  t.throws(() => parseRouteArg('GET:payments'), { code: 'WG_ERR_CLI_USAGE' })
})

t.test('times: durations and ISO dates pass, anything else is a usage error', async t => {
  t.equal(durationMs('2h'), 7_200_000)
  t.equal(durationMs('30 min'), 1_800_000)
  t.equal(durationMs('1d'), 86_400_000)
  t.equal(durationMs('soon'), null)
  t.equal(parseWhen(' 2h ', '--until'), '2h', 'a duration is sent as is: the server resolves it')
  t.equal(parseWhen('2030-01-01T02:00:00Z', '--start'), '2030-01-01T02:00:00Z')
  t.equal(parseWhen('2030-01-01', '--sunset'), '2030-01-01')
  t.throws(() => parseWhen('tomorrow', '--until'), { code: 'WG_ERR_CLI_USAGE', message: /--until "tomorrow"/ })
  t.throws(() => parseWhen('2030-13-45', '--until'), { code: 'WG_ERR_CLI_USAGE' })
  t.equal(parseSince('1h', '--since', Date.parse('2030-01-01T12:00:00Z')), '2030-01-01T11:00:00.000Z', 'a duration ago')
})

t.test('counts and status lists', async t => {
  t.equal(parseCount('20', '--per-page', 500), 20)
  t.throws(() => parseCount('0', '--page'), { code: 'WG_ERR_CLI_USAGE' })
  t.throws(() => parseCount('501', '--per-page', 500), { code: 'WG_ERR_CLI_USAGE' })
  t.throws(() => parseCount('1.5', '--page'), { code: 'WG_ERR_CLI_USAGE' })
  t.same(parseStatusList('Disabled, maintenance,env-gated,disabled', '--fail-on'), ['disabled', 'maintenance', 'env_gated'])
  t.throws(() => parseStatusList('down', '--fail-on'), { code: 'WG_ERR_CLI_USAGE' })
  t.throws(() => parseStatusList(',', '--fail-on'), { code: 'WG_ERR_CLI_USAGE' })
})
