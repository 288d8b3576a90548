import t from 'tap'
import { isHttpMethod, parseRouteKey, resolveRouteKeys, routeKey } from '@waygate/core'

t.test('routeKey builds METHOD:/pattern with an upper-case method, or the bare pattern', async t => {
  t.equal(routeKey('get', '/users/:id'), 'GET:/users/:id')
  t.equal(routeKey('DELETE', '/users/:id'), 'DELETE:/users/:id')
  t.equal(routeKey(null, '/users/:id'), '/users/:id')
})

t.test('isHttpMethod knows the methods Node knows, in any case', async t => {
  t.ok(isHttpMethod('GET'))
  t.ok(isHttpMethod('patch'))
  t.ok(isHttpMethod('PROPFIND'))
  t.notOk(isHttpMethod('FETCH'))
  t.notOk(isHttpMethod(''))
})

t.test('parseRouteKey', async t => {
  t.test('splits a method key and normalises the method', async t => {
    t.same(parseRouteKey('GET:/payments'), { key: 'GET:/payments', method: 'GET', path: '/payments', service: null })
    t.same(parseRouteKey('post:/payments'), { key: 'POST:/payments', method: 'POST', path: '/payments', service: null })
  })

  t.test('keeps Fastify parameters: only the first colon separates the method', async t => {
    t.same(parseRouteKey('GET:/users/:id/posts/:postId'),
      { key: 'GET:/users/:id/posts/:postId', method: 'GET', path: '/users/:id/posts/:postId', service: null })
    t.same(parseRouteKey('/users/:id'), { key: '/users/:id', method: null, path: '/users/:id', service: null })
    t.same(parseRouteKey('/files/*'), { key: '/files/*', method: null, path: '/files/*', service: null })
  })

  t.test('a bare path has no method', async t => {
    t.same(parseRouteKey('/'), { key: '/', method: null, path: '/', service: null })
  })

  t.test('rejects what is not a key, by code', async t => {
    for (const bad of ['', 'payments', 'GET:payments', 'GET/payments', ':/payments', 'GET::/x', 'FETCH:/payments', 'GET :/x']) {
      t.throws(() => parseRouteKey(bad), { code: 'WG_ERR_ROUTE_KEY_INVALID', statusCode: 400 }, JSON.stringify(bad))
    }
    t.throws(() => parseRouteKey(undefined as unknown as string), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
  })

  t.test('names the unknown method in the message', async t => {
    t.throws(() => parseRouteKey('FETCH:/x'), { message: /unknown HTTP method "FETCH"/ })
  })

  t.test('rejects keys longer than 2048 characters without echoing them whole', async t => {
    const long = '/' + 'a'.repeat(2048)
    const err = t.throws(() => parseRouteKey(long), { code: 'WG_ERR_ROUTE_KEY_INVALID' }) as Error
    t.ok(err.message.length < 300, 'message stays short')
    t.doesNotThrow(() => parseRouteKey('/' + 'a'.repeat(2047)))
  })
})

t.test('resolveRouteKeys', async t => {
  const known = new Set(['GET:/payments', 'POST:/payments', 'GET:/users/:id', '/health', 'GET:/payments/:id'])

  t.test('a method key names itself', async t => {
    t.same(resolveRouteKeys(known, 'GET:/payments'), ['GET:/payments'])
    t.same(resolveRouteKeys(known, 'get:/users/:id'), ['GET:/users/:id'])
  })

  t.test('a bare path with one method key resolves to it', async t => {
    t.same(resolveRouteKeys(known, '/users/:id'), ['GET:/users/:id'])
    t.same(resolveRouteKeys(known, '/payments/:id'), ['GET:/payments/:id'])
  })

  t.test('a registered bare key names itself', async t => {
    t.same(resolveRouteKeys(known, '/health'), ['/health'])
  })

  t.test('a bare path matching several methods is ambiguous unless all is set', async t => {
    const err = t.throws(() => resolveRouteKeys(known, '/payments'),
      { code: 'WG_ERR_ROUTE_AMBIGUOUS', statusCode: 409 }) as Error & { matches: string[] }
    t.match(err.message, /GET:\/payments, POST:\/payments/)
    t.same(err.matches.sort(), ['GET:/payments', 'POST:/payments'])
    t.same(resolveRouteKeys(known, '/payments', true), ['GET:/payments', 'POST:/payments'])
  })

  t.test('unknown keys are a 404 by code', async t => {
    t.throws(() => resolveRouteKeys(known, 'DELETE:/payments'), { code: 'WG_ERR_ROUTE_NOT_FOUND', statusCode: 404 })
    t.throws(() => resolveRouteKeys(known, '/nope'), { code: 'WG_ERR_ROUTE_NOT_FOUND', statusCode: 404 })
    t.throws(() => resolveRouteKeys(known, '/nope', true), { code: 'WG_ERR_ROUTE_NOT_FOUND' })
  })

  t.test('a bare path does not match longer or shorter patterns', async t => {
    t.throws(() => resolveRouteKeys(known, '/pay'), { code: 'WG_ERR_ROUTE_NOT_FOUND' })
    t.throws(() => resolveRouteKeys(known, '/users'), { code: 'WG_ERR_ROUTE_NOT_FOUND' })
    t.throws(() => resolveRouteKeys(known, '/ments'), { code: 'WG_ERR_ROUTE_NOT_FOUND' })
  })

  t.test('a bare key that contains ":/" is not taken for a method key', async t => {
    const odd = new Set(['/a:/b'])
    t.throws(() => resolveRouteKeys(odd, '/b'), { code: 'WG_ERR_ROUTE_NOT_FOUND' })
    t.same(resolveRouteKeys(odd, '/a:/b'), ['/a:/b'])
  })

  t.test('accepts a Map of known keys', async t => {
    const map = new Map([['GET:/x', 1], ['PUT:/x', 2]])
    t.same(resolveRouteKeys(map, '/x', true), ['GET:/x', 'PUT:/x'])
  })

  t.test('invalid input is a key error, not a 404', async t => {
    t.throws(() => resolveRouteKeys(known, 'payments'), { code: 'WG_ERR_ROUTE_KEY_INVALID' })
  })
})
