import t from 'tap'
import { isServiceName, parseRouteKey, qualifyKey, resolveRouteKeys, routeKey, SERVICE_NAME, unqualifyKey } from '@waygate/core'

t.test('service names: lower case words of up to 100 characters that are no HTTP method', async t => {
  for (const good of ['payments', 'payments-service', 'orders.v2', 'a', '0', 'svc_1', 'a'.repeat(100), 'gets', 'fetch']) {
    t.ok(isServiceName(good), good)
  }
  for (const bad of ['', 'Payments', '-payments', '.x', '_x', 'a'.repeat(101), 'pay ments', 'pay:ments', 'pay/ments', 'get', 'post', 'delete', 'propfind', 'GET', 42, null]) {
    t.notOk(isServiceName(bad), String(bad))
  }
  t.ok(SERVICE_NAME.test('get'), 'the pattern alone admits method words: isServiceName refuses them')
  t.equal(SERVICE_NAME.source, '^[a-z0-9][a-z0-9._-]{0,99}$')
})

t.test('routeKey qualifies by a service when one is given', async t => {
  t.equal(routeKey('get', '/api/payments', 'payments'), 'payments:GET:/api/payments')
  t.equal(routeKey(null, '/api/cart', 'orders'), 'orders:/api/cart')
  t.equal(routeKey('get', '/x', null), 'GET:/x')
  t.equal(routeKey('get', '/x', undefined), 'GET:/x')
})

t.test('parseRouteKey reads service-qualified keys', async t => {
  const cases: Array<[string, { key: string, method: string | null, path: string, service: string | null }]> = [
    ['payments-service:GET:/api/payments', { key: 'payments-service:GET:/api/payments', method: 'GET', path: '/api/payments', service: 'payments-service' }],
    ['payments-service:get:/api/payments', { key: 'payments-service:GET:/api/payments', method: 'GET', path: '/api/payments', service: 'payments-service' }],
    ['orders-service:/api/cart', { key: 'orders-service:/api/cart', method: null, path: '/api/cart', service: 'orders-service' }],
    // Fastify parameters and colons inside the pattern never split anything
    ['users:GET:/users/:id/posts/:postId', { key: 'users:GET:/users/:id/posts/:postId', method: 'GET', path: '/users/:id/posts/:postId', service: 'users' }],
    ['users:/users/:id', { key: 'users:/users/:id', method: null, path: '/users/:id', service: 'users' }],
    ['GET:/a:b', { key: 'GET:/a:b', method: 'GET', path: '/a:b', service: null }],
    ['svc:GET:/a:b', { key: 'svc:GET:/a:b', method: 'GET', path: '/a:b', service: 'svc' }],
    ['svc:/a:GET:/b', { key: 'svc:/a:GET:/b', method: null, path: '/a:GET:/b', service: 'svc' }],
    ['/a:GET:/b', { key: '/a:GET:/b', method: null, path: '/a:GET:/b', service: null }],
    ['get:/x', { key: 'GET:/x', method: 'GET', path: '/x', service: null }],
    ['orders.v2:DELETE:/', { key: 'orders.v2:DELETE:/', method: 'DELETE', path: '/', service: 'orders.v2' }]
  ]
  for (const [input, expected] of cases) t.same(parseRouteKey(input), expected, input)
})

t.test('parseRouteKey refuses bad qualified keys by code, saying why', async t => {
  const cases: Array<[string, RegExp]> = [
    ['Payments:GET:/x', /service name "Payments" must match/],
    ['-svc:GET:/x', /service name "-svc" must match/],
    ['get:GET:/x', /a key is METHOD/],
    ['svc:other:GET:/x', /at most one service/],
    ['svc:other:/x', /at most one service/],
    ['svc:FETCH:/x', /unknown HTTP method "FETCH"/],
    ['svc:', /a key is METHOD/],
    ['svc::/x', /a key is METHOD/],
    ['svc:GET:x', /a key is METHOD/],
    ['svc:GET', /a key is METHOD/],
    ['svc/x:/y', /a key is METHOD/],
    [`${'a'.repeat(101)}:GET:/x`, /must match/]
  ]
  for (const [input, message] of cases) {
    t.throws(() => parseRouteKey(input), { code: 'WG_ERR_ROUTE_KEY_INVALID', statusCode: 400, message }, input)
  }
})

t.test('qualifyKey and unqualifyKey', async t => {
  t.equal(qualifyKey('payments', 'get:/api/payments'), 'payments:GET:/api/payments')
  t.equal(qualifyKey('payments', '/api/payments'), 'payments:/api/payments')
  t.equal(qualifyKey('payments', 'payments:GET:/x'), 'payments:GET:/x', 'already qualified by the same service')
  t.throws(() => qualifyKey('payments', 'orders:GET:/x'), { code: 'WG_ERR_ROUTE_KEY_INVALID', message: /names service "orders"/ })
  t.throws(() => qualifyKey('get', '/x'), { code: 'WG_ERR_ROUTE_KEY_INVALID', message: /is an HTTP method/ })
  t.throws(() => qualifyKey('Bad', '/x'), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
  t.throws(() => qualifyKey('payments', 'nope'), { code: 'WG_ERR_ROUTE_KEY_INVALID' })

  t.same(unqualifyKey('payments:get:/users/:id'), { service: 'payments', key: 'GET:/users/:id' })
  t.same(unqualifyKey('orders:/a:b'), { service: 'orders', key: '/a:b' })
  t.same(unqualifyKey('get:/x'), { service: null, key: 'GET:/x' })
  t.same(unqualifyKey('/x'), { service: null, key: '/x' })
  t.throws(() => unqualifyKey('svc:nope'), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
  for (const key of ['payments:GET:/x', 'orders:/a:b', 'GET:/a:b', '/x']) {
    const { service, key: bare } = unqualifyKey(key)
    t.equal(service === null ? bare : qualifyKey(service, bare), key, `round trip of ${key}`)
  }
})

t.test('resolveRouteKeys with services', async t => {
  const known = new Set([
    'payments:GET:/health',
    'orders:GET:/health',
    'payments:GET:/api/payments',
    'payments:POST:/api/payments',
    'orders:GET:/api/orders',
    'orders:/api/cart',
    'orders:GET:/api/cart',
    'payments:GET:/users/:id',
    'payments:GET:/a:b',
    'GET:/local',
    'billing:GET:/local'
  ])

  t.test('a qualified key names itself', async t => {
    t.same(resolveRouteKeys(known, 'payments:get:/api/payments'), ['payments:GET:/api/payments'])
    t.same(resolveRouteKeys(known, 'payments:GET:/a:b'), ['payments:GET:/a:b'])
  })

  t.test('input naming a service resolves inside it only', async t => {
    t.same(resolveRouteKeys(known, 'orders:/api/orders'), ['orders:GET:/api/orders'])
    t.same(resolveRouteKeys(known, 'payments:/health'), ['payments:GET:/health'])
    t.same(resolveRouteKeys(known, 'payments:/users/:id'), ['payments:GET:/users/:id'])
    t.throws(() => resolveRouteKeys(known, 'orders:GET:/api/payments'), { code: 'WG_ERR_ROUTE_NOT_FOUND', statusCode: 404 })
    t.throws(() => resolveRouteKeys(known, 'nobody:/health'), { code: 'WG_ERR_ROUTE_NOT_FOUND' })
  })

  t.test('a bare path of one service with several methods is ambiguous unless all', async t => {
    const err = t.throws(() => resolveRouteKeys(known, 'payments:/api/payments'),
      { code: 'WG_ERR_ROUTE_AMBIGUOUS', statusCode: 409 }) as Error & { matches: string[] }
    t.same(err.matches, ['payments:GET:/api/payments', 'payments:POST:/api/payments'])
    t.same(resolveRouteKeys(known, 'payments:/api/payments', true), ['payments:GET:/api/payments', 'payments:POST:/api/payments'])
  })

  t.test('input naming no service matches across services', async t => {
    t.same(resolveRouteKeys(known, 'GET:/api/orders'), ['orders:GET:/api/orders'], 'one service has it')
    t.same(resolveRouteKeys(known, '/users/:id'), ['payments:GET:/users/:id'])
    t.same(resolveRouteKeys(known, '/a:b'), ['payments:GET:/a:b'])
    t.same(resolveRouteKeys(known, 'POST:/api/payments'), ['payments:POST:/api/payments'])
  })

  t.test('a key two services share is ambiguous, with the qualified matches', async t => {
    for (const input of ['GET:/health', '/health']) {
      const err = t.throws(() => resolveRouteKeys(known, input),
        { code: 'WG_ERR_ROUTE_AMBIGUOUS', statusCode: 409 }, input) as Error & { matches: string[] }
      t.same(err.matches, ['orders:GET:/health', 'payments:GET:/health'], input)
      t.match(err.message, /orders:GET:\/health, payments:GET:\/health/)
    }
    t.same(resolveRouteKeys(known, '/health', true), ['orders:GET:/health', 'payments:GET:/health'])
  })

  t.test('an exact unqualified key wins over qualified ones', async t => {
    t.same(resolveRouteKeys(known, 'GET:/local'), ['GET:/local'])
    const err = t.throws(() => resolveRouteKeys(known, '/local'), { code: 'WG_ERR_ROUTE_AMBIGUOUS' }) as Error & { matches: string[] }
    t.same(err.matches, ['GET:/local', 'billing:GET:/local'])
  })

  t.test("a service's registered bare key stands for that service", async t => {
    t.same(resolveRouteKeys(known, 'orders:/api/cart'), ['orders:/api/cart'], 'exact')
    t.same(resolveRouteKeys(known, '/api/cart'), ['orders:/api/cart'], 'not also orders:GET:/api/cart')
    t.same(resolveRouteKeys(known, 'GET:/api/cart'), ['orders:GET:/api/cart'], 'a method key still names the method key')
  })

  t.test('a bare path does not match longer or shorter patterns in any service', async t => {
    for (const input of ['/api', '/payments', '/api/payment', 'payments:/api/payment', '/b']) {
      t.throws(() => resolveRouteKeys(known, input), { code: 'WG_ERR_ROUTE_NOT_FOUND' }, input)
    }
  })

  t.test('invalid input is a key error, not a 404', async t => {
    t.throws(() => resolveRouteKeys(known, 'Payments:/x'), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
    t.throws(() => resolveRouteKeys(known, 'svc:other:/x'), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
  })

  t.test('a known key that is not a key is only ever matched exactly', async t => {
    const odd = new Set(['not a key /x', 'GET:/x'])
    t.same(resolveRouteKeys(odd, '/x'), ['GET:/x'])
  })
})
