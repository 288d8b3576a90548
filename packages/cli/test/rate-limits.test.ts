import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { run } from '../src/index.js'
import { json, loggedIn, startServer, type Sandbox, type TestServer } from './helpers/server.js'

// `waygate rl`: the seeds' rate limiting quick-start through the real binary, for people and with
// --json, the global policy, and errors; variations through run() in-process. Each test has its
// own server (GET /public/posts allows 2 requests a minute), so they run in parallel.
t.jobs = 4

interface Hit { status: number, policy: string | null, left: string | null }

/** One request to the app, with what its rate limit headers say. */
async function hit (server: TestServer, path: string, method = 'GET'): Promise<Hit> {
  const res = await fetch(server.origin + path, { method })
  await res.arrayBuffer()
  return { status: res.status, policy: res.headers.get('ratelimit-policy'), left: res.headers.get('ratelimit') }
}

async function statuses (server: TestServer, path: string, count: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < count; i++) out.push((await hit(server, path)).status)
  return out
}

async function setUp (t: Test): Promise<{ server: TestServer, box: Sandbox }> {
  const server = await startServer(t, { rateLimits: true })
  return { server, box: await loggedIn(t, server) }
}

t.test('the seeds\' rate limiting quick-start works as written, for people', async t => {
  const { server, box } = await setUp(t)

  // the list does not depend on the counters: the requests go meanwhile
  const [list, first] = await Promise.all([box.waygate(['rl', 'list']), statuses(server, '/public/posts', 3)])
  t.equal(list.code, 0, 'rl list')
  t.match(list.stdout, /^ROUTE\s+LIMITS\s+ALGORITHM\s+KEY\s+BURST\s+SOURCE\s+NOTES\n/)
  t.match(list.stdout, /GET:\/public\/posts\s+2\/minute\s+sliding_window\s+ip\s+0\s+CONFIG\n/)
  t.match(list.stdout, /GET:\/users\/me\s+100\/minute\s+sliding_window\s+user\s+0\s+CONFIG\n/)
  t.match(list.stdout, /\n\n2 policies\n$/)

  t.same(first, [200, 200, 429], 'the config limit: 2 a minute')
  const hits = await box.waygate(['rl', 'hits'])
  t.equal(hits.code, 0, 'rl hits')
  t.match(hits.stdout, /^WHEN\s+ROUTE\s+PATH\s+CLIENT\s+LIMIT\s+RETRY\n(just now|\d+s ago)\s+GET:\/public\/posts\s+\/public\/posts\s+127\.0\.0\.1\s+2\/minute\s+\d+s\n/)
  t.match(hits.stdout, /1 blocked request, newest first/)

  const set = await box.waygate(['rl', 'set', 'GET:/public/posts', '20/minute'])
  t.equal(set.code, 0, 'rl set GET:/public/posts 20/minute')
  t.match(set.stdout, /GET:\/public\/posts\s+20\/minute\s+sliding_window\s+ip\s+0\s+RUNTIME/)
  const raised = await hit(server, '/public/posts')
  t.match(raised, { status: 200, policy: '"route";q=20;w=60', left: /r=17;/ }, 'raised live; the 3 requests already made still count')

  const reset = await box.waygate(['rl', 'reset', 'GET:/public/posts'])
  t.equal(reset.code, 0, 'rl reset GET:/public/posts')
  t.equal(reset.stdout, 'reset the rate limit counters of GET:/public/posts for every client\n')
  t.match(await hit(server, '/public/posts'), { status: 200, left: /r=19;/ }, 'counting starts afresh')

  const deleted = await box.waygate(['rl', 'delete', 'GET:/public/posts'])
  t.equal(deleted.code, 0, 'rl delete GET:/public/posts')
  t.match(deleted.stdout, /^deleted the runtime rate limit of GET:\/public\/posts/)
  t.match(await hit(server, '/public/posts'), { status: 200, policy: '"route";q=2;w=60' }, 'the config limit applies again')
  t.equal((await hit(server, '/public/posts')).status, 429)
})

t.test('the seeds\' rate limiting quick-start works as written with --json, for scripts', async t => {
  const { server, box } = await setUp(t)

  const [list] = await Promise.all([box.waygate(['rl', 'list', '--json']), statuses(server, '/public/posts', 3)])
  t.equal(list.code, 0)
  t.same(json(list), [
    { key: 'GET:/public/posts', policy: { key: 'GET:/public/posts', limits: ['2/minute'] }, source: 'config' },
    { key: 'GET:/users/me', policy: { key: 'GET:/users/me', limits: ['100/minute'], keyBy: 'user' }, source: 'config' }
  ], 'the API\'s model')

  const hits = json(await box.waygate(['rl', 'hits', '--json']))
  t.match(hits, [{ key: 'GET:/public/posts', path: '/public/posts', client: '127.0.0.1', limit: '2/minute', tier: null, retryAfterSeconds: Number, timestamp: String }])
  t.equal(hits.length, 1)

  const set = await box.waygate(['--json', 'rl', 'set', 'GET:/public/posts', '20/minute'])
  t.equal(set.code, 0)
  t.same(json(set), { policies: [{ key: 'GET:/public/posts', limits: ['20/minute'] }] })
  t.equal((await hit(server, '/public/posts')).status, 200)

  const reset = await box.waygate(['rl', 'reset', 'GET:/public/posts', '--json'])
  t.same(json(reset), { routes: [{ key: 'GET:/public/posts', reset: true, client: null }] })

  const deleted = await box.waygate(['rl', 'delete', 'GET:/public/posts', '--json'])
  t.same(json(deleted), { routes: [{ key: 'GET:/public/posts', deleted: true }] })
  t.match(json(await box.run(['rl', 'list', '--json']))[0], { key: 'GET:/public/posts', policy: { limits: ['2/minute'] }, source: 'config' })
  t.equal(server.engine.getState('GET:/public/posts')?.status, 'active')
})

t.test('rl global: set, get, disable, enable, reset and delete, enforced on every route', async t => {
  const { server, box } = await setUp(t)

  const set = await box.waygate(['rl', 'global', 'set', '1/minute', '--key', 'global', '--exempt', '/health'])
  t.equal(set.code, 0, 'rl global set')
  t.match(set.stdout, /^global rate limit\s+ON\nlimits\s+1\/minute\nalgorithm\s+sliding_window\nkey\s+global\nburst\s+0\nexempt\s+\/health\n$/)
  const [get] = await Promise.all([
    box.waygate(['rl', 'global', 'get', '--json']),
    (async () => {
      t.same(await statuses(server, '/orders', 2), [200, 429], 'one request a minute for everyone')
      t.equal((await hit(server, '/reports')).status, 429, 'the counter is shared by every route')
      t.same(await statuses(server, '/health', 2), [200, 200], 'an exempt route is not counted')
    })()
  ])
  t.same(json(get), { policy: { key: '*', limits: ['1/minute'], keyBy: 'global' }, enabled: true, exemptRoutes: ['/health'] })
  const listed = await box.run(['rl', 'list'])
  t.match(listed.stdout, /^GLOBAL RATE LIMIT ON: 1\/minute shared by every client, before each route's own \(exempt: \/health\)\n/)

  const disabled = await box.waygate(['rl', 'global', 'disable'])
  t.equal(disabled.code, 0, 'rl global disable')
  t.match(disabled.stdout, /^global rate limit\s+OFF \(set, not enforced\)\n/)
  t.equal((await hit(server, '/orders')).status, 200)

  const enabled = await box.waygate(['rl', 'global', 'enable', '--json'])
  t.match(json(enabled), { enabled: true, policy: { limits: ['1/minute'] } }, 'rl global enable')
  t.equal((await hit(server, '/orders')).status, 429, 'enforced again, with the counts made before')

  const reset = await box.waygate(['rl', 'global', 'reset'])
  t.equal(reset.code, 0, 'rl global reset')
  t.equal(reset.stdout, 'reset the global rate limit counters for every client\n')
  t.same(await statuses(server, '/orders', 2), [200, 429])

  const deleted = await box.waygate(['rl', 'global', 'delete', '--json'])
  t.same(json(deleted), { deleted: true }, 'rl global delete')
  t.same(await statuses(server, '/orders', 2), [200, 200])

  const [none, noneJson, again, enableNone, oneClient, badExempt] = await Promise.all([
    box.run(['rl', 'global']),
    box.run(['rl', 'global', '--json']),
    box.run(['rl', 'global', 'delete']),
    box.run(['rl', 'global', 'enable', '--json']),
    box.run(['rl', 'global', 'reset', '--key', '203.0.113.7', '--json']),
    box.run(['rl', 'global', 'set', '5/minute', '--exempt', 'FETCH:/x'])
  ])
  t.equal(none.stdout, 'global rate limit  none\n', '`rl global` is `rl global get`')
  t.equal(none.stderr, 'hint: set one with: waygate rl global set 1000/minute\n')
  t.same(json(noneJson), { policy: null, enabled: false, exemptRoutes: [] }, 'none set: one shape for scripts')
  t.equal(again.code, 0)
  t.equal(again.stdout, 'no global rate limit is set: nothing deleted\n')
  t.equal(enableNone.code, 1, 'nothing to enable')
  t.match(JSON.parse(enableNone.stderr), { error: { code: 'WG_ERR_NOT_FOUND', status: 404, hint: 'set one with: waygate rl global set 1000/minute' } })
  t.same(json(oneClient), { reset: true, client: '203.0.113.7' })
  t.equal(badExempt.code, 2)

  // settings not given are kept, the exempt list too
  await box.run(['rl', 'global', 'set', '100/minute', '--key', 'ip', '--burst', '5', '--exempt', 'get:/health', '--exempt', '/orders'])
  const changed = json(await box.run(['rl', 'global', 'set', '200/minute', '--algorithm', 'token-bucket', '--json']))
  t.same(changed, { policy: { key: '*', limits: ['200/minute'], keyBy: 'ip', burst: 5, algorithm: 'token_bucket' }, enabled: true, exemptRoutes: ['GET:/health', '/orders'] })
})

t.test('errors: a bad limit is the server\'s message (exit 1); missing or bad arguments exit 2', async t => {
  const { server, box } = await setUp(t)
  const [badLimit, missing] = await Promise.all([
    box.waygate(['rl', 'set', 'GET:/public/posts', '20/fortnight']),
    box.waygate(['rl', 'set', 'GET:/public/posts'])
  ])
  t.equal(badLimit.code, 1)
  t.match(badLimit.stderr, /^error: Invalid rate limit: rate limit of GET:\/public\/posts: \/limits\/0: "20\/fortnight" has an unknown unit "fortnight"; expected .*\nhint: a limit is N\/unit /)
  t.equal(badLimit.stdout, '')
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing required argument 'limit'[\s\S]*hint: run: waygate rl set --help/)

  const [badJson, noRoute, noGlobalLimit, badRoute, badAlgorithm, badKey, badBurst, badHitsLimit, emptyLimit,
    unknownRoute, notLimited, unknownCommand, missingJson] = await Promise.all([
    box.run(['rl', 'set', 'GET:/public/posts', '10/minute,lots', '--json']),
    box.run(['rl', 'reset']),
    box.run(['rate-limits', 'global', 'set']),
    box.run(['rl', 'set', 'FETCH:/x', '1/second']),
    box.run(['rl', 'set', 'GET:/orders', '1/second', '--algorithm', 'leaky_bucket']),
    box.run(['rl', 'set', 'GET:/orders', '1/second', '--key', 'cookie']),
    box.run(['rl', 'set', 'GET:/orders', '1/second', '--burst', '-1']),
    box.run(['rl', 'hits', '--limit', '501']),
    box.run(['rl', 'set', 'GET:/orders', ',']),
    box.run(['rl', 'delete', 'GET:/nope']),
    box.run(['rl', 'reset', 'GET:/orders']),
    box.run(['rl', 'bogus']),
    box.run(['rl', 'delete', '--json'])
  ])
  t.equal(badJson.code, 1)
  t.match(JSON.parse(badJson.stderr), { error: { code: 'WG_ERR_RATE_LIMIT_INVALID', status: 400, message: /\/limits\/1: "lots" is not a limit/ } })
  for (const [name, result] of Object.entries({ noRoute, noGlobalLimit, badRoute, badAlgorithm, badKey, badBurst, badHitsLimit, emptyLimit, unknownCommand, missingJson })) {
    t.equal(result.code, 2, `${name}: a usage error`)
    t.equal(result.stdout, '', `${name}: nothing on stdout`)
  }
  t.match(badAlgorithm.stderr, /--algorithm "leaky_bucket": expected one of sliding_window, fixed_window, moving_window, token_bucket/)
  t.match(badKey.stderr, /--key "cookie": expected one of ip, user, api_key, global/)
  t.match(badBurst.stderr, /--burst "-1": expected a whole number/)
  t.match(JSON.parse(missingJson.stderr), { error: { code: 'WG_ERR_CLI_USAGE', message: 'missing required argument \'route\'' } })
  t.equal(unknownRoute.code, 1)
  t.equal(unknownRoute.stderr, 'error: No route is registered as "GET:/nope"\nhint: list the routes with: waygate status\n')
  t.equal(notLimited.code, 1)
  t.equal(notLimited.stderr, 'error: Invalid request: GET:/orders has no rate limit\nhint: see the routes with a rate limit: waygate rl list\n')
  t.same(server.app.waygateRateLimits.list().map(p => p.source), ['config', 'config'], 'nothing was set')
})

t.test('rl set keeps the settings not given, takes several limits, and maps --key to the key strategy', async t => {
  const { server, box } = await setUp(t)
  const [raised, several, options] = await Promise.all([
    box.run(['rl', 'set', 'GET:/users/me', '200/minute', '--json']),
    box.run(['rl', 'set', 'GET:/orders', '10/second,1000/day', '5 per 10 minutes', '--json']),
    box.run(['rl', 'set', 'get:/reports', '3/hour', '--algorithm', 'FIXED-window', '--key', 'api-key', '--burst', '2'])
  ])
  t.same(json(raised).policies, [{ key: 'GET:/users/me', limits: ['200/minute'], keyBy: 'user' }], 'still counted per user')
  t.same(json(several).policies[0].limits, ['10/second', '1000/day', '5 per 10 minutes'])
  t.equal(options.code, 0)
  t.match(options.stdout, /GET:\/reports\s+3\/hour\s+fixed_window\s+api_key\s+2\s+RUNTIME/)
  t.same(server.app.waygateRateLimits.policyFor('GET:/reports')?.policy, { key: 'GET:/reports', limits: ['3/hour'], algorithm: 'fixed_window', keyBy: 'api_key', burst: 2 })
  // api_key without the header counts by address: 3 + 2 burst, then 429
  t.same(await statuses(server, '/reports', 6), [200, 200, 200, 200, 200, 429])

  const kept = json(await box.run(['rl', 'set', 'GET:/reports', '4/hour', '--json']))
  t.same(kept.policies, [{ key: 'GET:/reports', limits: ['4/hour'], algorithm: 'fixed_window', keyBy: 'api_key', burst: 2 }], 'a second set keeps the first one\'s options')

  const list = await box.run(['rl', 'list'])
  t.match(list.stdout, /\n\n4 policies, 3 set at runtime\n$/)
  const unlimited = await box.run(['rl', 'set', 'GET:/public/posts', 'unlimited'])
  t.equal(unlimited.code, 0, 'a limit declared in code can be lifted')
  t.same(await statuses(server, '/public/posts', 3), [200, 200, 200])
})

t.test('a bare path matching several methods: refused with the matches, or applied to each with --all', async t => {
  const { server, box } = await setUp(t)
  const [refused, refusedJson, resetRefused, deleteRefused] = await Promise.all([
    box.run(['rl', 'set', '/public/posts', '5/minute']),
    box.run(['rl', 'set', '/public/posts', '5/minute', '--json']),
    box.run(['rl', 'reset', '/public/posts']),
    box.run(['rl', 'delete', '/public/posts'])
  ])
  for (const result of [refused, resetRefused, deleteRefused]) {
    t.equal(result.code, 1)
    t.equal(result.stderr, 'error: /public/posts matches several routes: GET:/public/posts, POST:/public/posts\n' +
      'hint: pass --all to apply it to all of them, or name one, e.g. GET:/public/posts\n')
  }
  t.match(JSON.parse(refusedJson.stderr), { error: { code: 'WG_ERR_ROUTE_AMBIGUOUS', matches: ['GET:/public/posts', 'POST:/public/posts'] } })
  t.same(server.app.waygateRateLimits.list().map(p => p.source), ['config', 'config'], 'nothing changed')

  const onlyLimited = json(await box.run(['rl', 'reset', '/public/posts', '--all', '--json']))
  t.same(onlyLimited.routes.map((r: { key: string }) => r.key), ['GET:/public/posts'], 'a method without a rate limit has no counters to reset')

  const all = json(await box.run(['rl', 'set', '/public/posts', '5/minute', '--all', '--json']))
  t.same(all.policies.map((p: { key: string }) => p.key), ['GET:/public/posts', 'POST:/public/posts'])
  t.same(await statuses(server, '/public/posts', 6), [200, 200, 200, 200, 200, 429])

  const resetAll = json(await box.run(['rl', 'reset', '/public/posts', '--all', '--json']))
  t.same(resetAll.routes.map((r: { key: string }) => r.key), ['GET:/public/posts', 'POST:/public/posts'])
  t.equal((await hit(server, '/public/posts')).status, 200)
  const single = await box.run(['rl', 'reset', '/users/me'])
  t.equal(single.stdout, 'reset the rate limit counters of GET:/users/me for every client\n', 'a bare path with one method needs no --all')

  const deleteAll = await box.run(['rl', 'delete', '/public/posts', '--all'])
  t.equal(deleteAll.stdout, 'deleted the runtime rate limit of GET:/public/posts; the limit in its config, if any, applies again\n' +
    'deleted the runtime rate limit of POST:/public/posts; the limit in its config, if any, applies again\n')
  const nothing = await box.run(['rl', 'delete', 'POST:/public/posts'])
  t.equal(nothing.code, 0, 'deleting what is not there is not a failure')
  t.equal(nothing.stdout, 'POST:/public/posts has no runtime rate limit: nothing deleted\n')
  t.match(nothing.stderr, /hint: a limit declared in code stays; lift it at runtime with: waygate rl set ROUTE unlimited/)
  t.same(json(await box.run(['rl', 'delete', 'POST:/public/posts', '--json'])), { routes: [{ key: 'POST:/public/posts', deleted: false }] })
})

t.test('rl reset --key forgets one client; hits filters by route; the alias rate-limits; --service scopes', async t => {
  const { server, box } = await setUp(t)
  await statuses(server, '/public/posts', 3)
  const [other, mine, byRoute, byOtherRoute, blocked, alias, scopedList, scopedHits, scopedSet] = await Promise.all([
    box.run(['rl', 'reset', 'GET:/public/posts', '--key', '203.0.113.7', '--json']),
    box.run(['rl', 'hits', '--route', '/public/posts', '--json']),
    box.run(['rl', 'hits', '--route', 'GET:/public/posts', '--limit', '1', '--json']),
    box.run(['rl', 'hits', '--route', 'GET:/users/me']),
    box.run(['rl', 'blocked', '--json']),
    box.run(['rate-limits', 'list', '--json']),
    box.run(['rl', 'list', '--service', 'orders-service']),
    box.run(['rl', 'hits', '--json'], { env: { WAYGATE_SERVICE: 'orders-service' } }),
    box.run(['rl', 'set', 'GET:/orders', '1/second', '--service', 'orders-service'])
  ])
  t.same(json(other), { routes: [{ key: 'GET:/public/posts', reset: true, client: '203.0.113.7' }] })
  t.equal(json(mine).length, 1)
  t.equal(json(byRoute).length, 1)
  t.equal(byOtherRoute.stdout, 'no blocked requests for GET:/users/me\n')
  t.equal(json(blocked).length, 1, 'hits is also blocked')
  t.equal(json(alias).length, 2, 'rate-limits is rl')
  t.equal(scopedList.stdout, 'no rate limits for service orders-service\n')
  t.same(json(scopedHits), [])
  t.equal(scopedSet.code, 1)
  t.match(scopedSet.stderr, /GET:\/orders is not a route of service orders-service/)

  t.equal((await hit(server, '/public/posts')).status, 429, 'another client\'s reset leaves this one blocked')
  await box.run(['rl', 'reset', 'GET:/public/posts', '--key', '127.0.0.1'])
  t.equal((await hit(server, '/public/posts')).status, 200, 'its own reset lets it through')
})

t.test('on a terminal, sources are coloured; a bare path asks before changing every method', async t => {
  const server = await startServer(t, { rateLimits: true })
  let out = ''
  let err = ''
  const stdin = new PassThrough()
  stdin.write('y\n')
  const io = {
    stdout: { write: (s: string) => { out += s } },
    stderr: { write: (s: string) => { err += s } },
    stdin,
    env: { WAYGATE_SERVER_URL: server.adminUrl, WAYGATE_TOKEN: await server.token(), WAYGATE_CONFIG_DIR: '/nonexistent/waygate' },
    cwd: process.cwd(),
    isTTY: true
  }
  t.equal(await run(['rl', 'set', '/public/posts', '9/minute'], io), 0)
  t.equal(err, '/public/posts matches 2 routes:\n  GET:/public/posts\n  POST:/public/posts\nApply to all 2? [y/N] ')
  const lines = out.split('\n')
  t.ok(lines[0]!.startsWith('\u001b[1mROUTE\u001b[22m'), 'bold headers')
  t.match(lines[1], /^GET:\/public\/posts\s+9\/minute\s+sliding_window\s+ip\s+0\s+/)
  t.ok(lines[1]!.endsWith('\u001b[36mRUNTIME\u001b[39m'), 'a runtime policy in colour')
  t.match(lines[2], /^POST:\/public\/posts\s+9\/minute/)
})
