// Service routes' traffic on a Waygate Server: each instance reports its rings, the server's
// charts and traffic endpoints sum them. Real processes: a server, two instances of one service.
import { join } from 'node:path'
import t from 'tap'
import { TRAFFIC_OUTCOMES } from '@waygate/core'
import { call, login, register, startServer } from './helpers/server.js'
import { serverWithToken, startConnectedService, startServerProcess, startTsProcess, until, type Proc } from './helpers/processes.js'

const ITEMS = 'alpha:GET:/api/items'
const OLD = 'alpha:GET:/api/old'
const trafficPath = (key: string, range = 'hour'): string => `/api/routes/${encodeURIComponent(key)}/traffic?range=${range}`

async function hit (url: string, path: string, times: number, status: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const res = await fetch(url + path)
    await res.arrayBuffer()
    if (res.status !== status) throw new Error(`${path} answered ${res.status}, not ${status}`)
  }
}

t.test('two instances report their traffic: the server sums them, keeps a killed one\'s, and has it all back after a restart', async t => {
  const fleet = await serverWithToken(t, 'alpha')
  const serverUrl = fleet.url
  let admin = fleet.admin
  const instances: Array<Proc & { url: string }> = []
  for (const id of ['alpha-1', 'alpha-2']) {
    instances.push(await startConnectedService(t, id, {
      SERVICE: 'alpha',
      WAYGATE_SERVER_URL: serverUrl,
      WAYGATE_TOKEN: fleet.created.token,
      INSTANCE_ID: id,
      TRAFFIC_PUBLISH_MS: '200',
      READY_TIMEOUT_MS: '5000',
      BACKOFF_MS: '150'
    }))
  }
  const [one, two] = instances as [Proc & { url: string }, Proc & { url: string }]
  await hit(one.url, '/api/items', 30, 200)
  await hit(two.url, '/api/items', 12, 200)
  await hit(one.url, '/api/old', 4, 503)
  await hit(two.url, '/api/old', 3, 503)

  const totals = async (key: string, range = 'hour'): Promise<any> => (await call(serverUrl, 'GET', trafficPath(key, range), { token: admin })).body?.totals
  const settled = async (key: string, requests: number): Promise<any> => {
    let last: unknown = null
    return until(async () => {
      last = await totals(key)
      return (last as { requests?: number } | undefined)?.requests === requests ? last : undefined
    }, 10_000, () => `the server never counted ${requests} requests of ${key}: ${JSON.stringify(last)}\n${instances.map(p => p.logs()).join('\n')}`)
  }

  t.match(await settled(ITEMS, 42), { requests: 42, blocked: 0, outcomes: { passed: 42 } }, 'both instances\' requests, summed')
  t.match(await settled(OLD, 7), { requests: 7, blocked: 7, outcomes: { disabled: 7 } }, 'the blocked ones by kind')
  t.match(await totals(ITEMS, 'day'), { requests: 42 }, 'the day range too')
  const summary = (await call(serverUrl, 'GET', '/api/traffic', { token: admin })).body
  t.match(summary.routes.find((r: { key: string }) => r.key === OLD), { requests: 7, blocked: 7 }, 'GET /api/traffic lists them')

  // the dashboard: the route's chart in its row, its page with the day and the blocked by kind
  const signIn = await fetch(`${serverUrl}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=admin&password=secret' })
  const cookie = String(signIn.headers.get('set-cookie')).split(';')[0]!
  const home = await (await fetch(`${serverUrl}/?service=alpha`, { headers: { cookie } })).text()
  t.match(home, /<svg[^>]*class="spark[^"]*"[^>]*>[\s\S]*?<\/svg>/, 'the routes table charts the service\'s routes')
  const page = await (await fetch(`${serverUrl}/routes/${encodeURIComponent(OLD)}`, { headers: { cookie } })).text()
  t.match(page, 'every instance of the service', 'the route page says whose requests it shows')
  t.match(page, /<tr id="kind-disabled"><th scope="row">[^<]+<\/th><td>7<\/td><td>7<\/td><\/tr>/, 'and the 7 disabled requests by kind')

  // a killed instance's last report stays: it is the route's history
  await one.stop('SIGKILL')
  await hit(two.url, '/api/items', 5, 200)
  t.match(await settled(ITEMS, 47), { requests: 47 }, 'the killed instance\'s 30 still counted, the survivor\'s 5 added')

  // the server forgets on restart; the survivor's next whole report brings its counts back
  await fleet.proc.stop('SIGKILL')
  await startServerProcess(t, fleet.options)
  admin = await login(serverUrl)
  t.match(await settled(ITEMS, 17), { requests: 17 }, 'after the restart: what the living instance reports (12 + 5)')
  const cli = startTsProcess(t, 'cli', join(import.meta.dirname, '../../cli/src/bin.ts'), ['traffic', 'GET:/api/items', '--service', 'alpha', '--json'], {
    WAYGATE_SERVER_URL: serverUrl,
    WAYGATE_TOKEN: admin
  })
  const code = await cli.exited
  if (code !== 0) t.fail(`the CLI exited ${String(code)}:\n${cli.logs()}`)
  t.equal(JSON.parse(cli.logs()).totals.requests, 17, 'waygate traffic --service prints the server\'s figures')
})

t.test('the traffic endpoint takes only well-formed reports of the service\'s own routes', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  t.equal((await register(url, 'alpha', admin, ['GET:/a'])).status, 200)
  const minute = Math.floor(Date.now() / 60_000)
  const row = [minute, 5, 0, 2]
  const good = { outcomes: [...TRAFFIC_OUTCOMES], routes: [{ key: 'GET:/a', hour: [row], day: [[Math.floor(minute / 5), 5, 0, 2]] }] }
  const put = (body: unknown, instance = 'i-1', token = admin): Promise<{ status: number, body: any }> =>
    call(url, 'PUT', `/api/sdk/services/alpha/traffic/${encodeURIComponent(instance)}`, { token, body })
  t.same((await put(good)).body, { routes: 1 }, 'a well-formed report is taken')
  t.same((await put(good)).body, { routes: 1 }, 'sent twice')
  t.match((await call(url, 'GET', trafficPath('alpha:GET:/a'), { token: admin })).body.totals, { requests: 7, blocked: 2, outcomes: { passed: 5, maintenance: 2 } },
    'a report sent twice counts once')
  t.same((await put({ ...good, routes: [{ ...good.routes[0], key: 'GET:/never-registered' }] }, 'i-2')).body, { routes: 0 }, 'a route the service never registered is dropped')
  t.same((await put({ outcomes: ['passed', 'from-a-newer-version'], routes: [{ key: 'GET:/a', hour: [[minute, 1, 9]], day: [] }] }, 'i-3')).body, { routes: 1 })
  t.match((await call(url, 'GET', trafficPath('alpha:GET:/a'), { token: admin })).body.totals, { requests: 8 }, 'an outcome this server does not know is skipped')
  for (const [body, why, status, instance] of [
    [{ ...good, routes: [{ ...good.routes[0], key: 'not a key' }] }, 'no route key', 400, 'i-1'],
    [{ ...good, routes: [{ ...good.routes[0], key: 'beta:GET:/a' }] }, 'another service\'s route', 403, 'i-1'],
    [{ ...good, routes: [{ ...good.routes[0], hour: [[minute, -1]] }] }, 'a negative count', 400, 'i-1'],
    [{ ...good, routes: [{ ...good.routes[0], hour: Array.from({ length: 61 }, () => row) }] }, 'more buckets than the hour has', 400, 'i-1'],
    [{ ...good, extra: 1 }, 'an unknown field', 400, 'i-1'],
    [good, 'an instance id with a space', 400, 'a b']
  ] as const) {
    const res = await put(body, instance)
    t.equal(res.status, status, why)
    t.type(res.body?.error?.code, 'string', `${why}: a code`)
  }
  t.equal((await call(url, 'PUT', '/api/sdk/services/alpha/traffic/i-1', { body: good })).status, 401, 'a token is needed')
  const { body: beta } = await call(url, 'POST', '/api/tokens', { token: admin, body: { service: 'beta' } })
  const foreign = await put(good, 'i-1', beta.token)
  t.equal(foreign.status, 403, 'another service\'s token cannot report alpha\'s traffic')
})
