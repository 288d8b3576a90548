import t from 'tap'
import { durationMs, isServiceName, parseCount, parseRouteArg, parseSince, parseStatusList, parseWhen, qualify, splitKey } from '../src/parse.js'

t.test('route arguments: METHOD:/path, a bare /path, a lower-case method, METHOD /path', async t => {
  t.same(parseRouteArg('GET:/payments'), { key: 'GET:/payments', method: 'GET', path: '/payments', service: null })
  t.same(parseRouteArg('/payments'), { key: '/payments', method: null, path: '/payments', service: null })
  t.same(parseRouteArg('delete:/users/:id'), { key: 'DELETE:/users/:id', method: 'DELETE', path: '/users/:id', service: null })
  t.same(parseRouteArg('PATCH /x'), { key: 'PATCH:/x', method: 'PATCH', path: '/x', service: null })
  t.same(parseRouteArg('GET /a:b'), { key: 'GET:/a:b', method: 'GET', path: '/a:b', service: null }, 'a colon in the pattern separates nothing')
  t.throws(() => parseRouteArg('FETCH:/x'), { code: 'WG_ERR_CLI_USAGE', exitCode: 2, message: /unknown HTTP method "FETCH"/ })
  t.throws(() => parseRouteArg('payments'), { code: 'WG_ERR_CLI_USAGE' })
  t.throws(() => parseRouteArg('GET:payments'), { code: 'WG_ERR_CLI_USAGE' })
})

t.test('route arguments naming a service; qualifying a route with the scope; keys the server answers', async t => {
  t.same(parseRouteArg('payments-service:GET:/api/payments'), { key: 'payments-service:GET:/api/payments', method: 'GET', path: '/api/payments', service: 'payments-service' })
  t.same(parseRouteArg('orders-service:/api/cart'), { key: 'orders-service:/api/cart', method: null, path: '/api/cart', service: 'orders-service' })
  t.same(parseRouteArg('a.b_c:post:/x'), { key: 'a.b_c:POST:/x', method: 'POST', path: '/x', service: 'a.b_c' })
  t.throws(() => parseRouteArg('payments:FETCH:/x'), { code: 'WG_ERR_CLI_USAGE', message: /unknown HTTP method "FETCH"/ })
  t.throws(() => parseRouteArg('Payments:GET:/x'), { code: 'WG_ERR_CLI_USAGE' }, 'upper case is no service name')
  t.same(qualify(parseRouteArg('GET:/api/payments'), 'payments-service'), { key: 'payments-service:GET:/api/payments', method: 'GET', path: '/api/payments', service: 'payments-service' })
  t.same(qualify(parseRouteArg('/api/payments'), 'payments-service').key, 'payments-service:/api/payments')
  t.same(qualify(parseRouteArg('orders-service:/x'), 'payments-service').key, 'orders-service:/x', 'a key naming a service keeps it')
  t.ok(isServiceName('payments-service'))
  t.notOk(isServiceName('get'), 'an HTTP method is never a service name')
  t.notOk(isServiceName('Payments'))
  t.same(splitKey('payments:GET:/x'), { service: 'payments', method: 'GET', path: '/x' })
  t.same(splitKey('payments:/x'), { service: 'payments', method: null, path: '/x' })
  t.same(splitKey('GET:/x:y'), { service: null, method: 'GET', path: '/x:y' })
  t.equal(splitKey('*'), null)
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
