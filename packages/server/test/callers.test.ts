import { join } from 'node:path'
import t from 'tap'
import { call, login, register, startServer } from './helpers/server.js'
import { serverWithToken, startConnectedService, startTsProcess, until, type Proc } from './helpers/processes.js'

const KEY = 'GET:/api/v1/users'
const SERVER_KEY = `alpha:${KEY}`

async function callAs (url: string, caller: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const res = await fetch(`${url}/api/v1/users`, { headers: { 'x-caller': caller } })
    await res.arrayBuffer()
    if (res.status !== 200 || res.headers.get('deprecation') === null) throw new Error(`GET /api/v1/users answered ${res.status} without Deprecation`)
  }
}

t.test('two instances of a service: the server\'s callers report merges both, and the CLI prints it', async t => {
  const fleet = await serverWithToken(t, 'alpha')
  const serverUrl = fleet.url
  const admin = fleet.admin
  const procs: Array<Proc & { url: string }> = []
  for (const instance of ['alpha-1', 'alpha-2']) {
    procs.push(await startConnectedService(t, instance, {
      SERVICE: 'alpha',
      WAYGATE_SERVER_URL: serverUrl,
      WAYGATE_TOKEN: fleet.created.token,
      INSTANCE_ID: instance,
      CALLERS_PUBLISH_MS: '200',
      READY_TIMEOUT_MS: '5000'
    }))
  }
  const urls = procs.map(p => p.url)
  const [one, two] = urls as [string, string]
  // mobile-app calls both instances; the batch job only the first, the partner only the second
  await callAs(one, 'mobile-app', 30)
  await callAs(two, 'mobile-app', 20)
  await callAs(one, 'batch-job', 12)
  await callAs(two, 'partner-<b>', 5)

  let last: unknown = null
  const report = await until(async () => {
    const res = await call(serverUrl, 'GET', `/api/routes/${encodeURIComponent(SERVER_KEY)}/callers`, { token: admin })
    last = res
    return res.status === 200 && res.body.total === 67 ? res.body : undefined
  }, 10_000, () => `the server never reported the 67 requests of both instances; last answer ${JSON.stringify(last)}\n${procs.map(p => p.logs()).join('\n')}`)
  t.same(report.callers.map((c: { id: string, count: number }) => [c.id, c.count]),
    [['mobile-app', 50], ['batch-job', 12], ['partner-<b>', 5]], 'each caller\'s count summed over both instances, highest first')
  t.equal(report.sketches, 2, 'one sketch of each instance')

  const cli = startTsProcess(t, 'cli', join(import.meta.dirname, '../../cli/src/bin.ts'), ['callers', KEY, '--service', 'alpha', '--json'], {
    WAYGATE_SERVER_URL: serverUrl,
    WAYGATE_TOKEN: admin
  })
  const code = await cli.exited
  if (code !== 0) t.fail(`the CLI exited ${String(code)}:\n${cli.logs()}`)
  const printed = JSON.parse(cli.logs())
  t.equal(printed.total, 67)
  t.equal(printed.callers[0].id, 'mobile-app')
  t.equal(printed.callers[0].count, 50)
})

t.test('the callers endpoint refuses what is no sketch of the service\'s own route', async t => {
  const { url } = await startServer(t)
  const admin = await login(url)
  t.equal((await register(url, 'alpha', admin, [KEY])).status, 200)
  const good = { key: KEY, hour: 3_600_000 * 490_000, total: 3, capacity: 2, entries: [{ id: 'a', count: 2, error: 0, lastSeen: 1 }, { id: 'b', count: 1, error: 0, lastSeen: 1 }] }
  const put = (id: string, body: unknown): Promise<{ status: number, body: any }> => call(url, 'PUT', `/api/sdk/services/alpha/callers/${encodeURIComponent(id)}`, { token: admin, body })
  t.equal((await put('i-1:1', { value: good })).status, 200, 'a well-formed sketch is stored')
  for (const [id, body, why, status] of [
    ['i-1:1', { value: { ...good, entries: [...good.entries, { id: 'c', count: 1, error: 0, lastSeen: 1 }] } }, 'more entries than slots', 400],
    ['i-1:1', { value: { ...good, key: 'not a key' } }, 'no route key', 400],
    ['i-1:1', { value: { ...good, key: `beta:${KEY}` } }, 'another service\'s route', 403],
    ['i-1:1', { value: { ...good, total: -1 } }, 'a negative total', 400],
    ['i-1:1', { value: { ...good, extra: true } }, 'an unknown field', 400],
    ['a/b', { value: good }, 'an id with a slash', 400],
    ['i-1:1', { value: { ...good, entries: Array.from({ length: 10_001 }, (_, i) => ({ id: `c${i}`, count: 1, error: 0, lastSeen: 1 })), capacity: 10_000 } }, 'over 10 000 entries', 400]
  ] as const) {
    const res = await put(id, body)
    t.equal(res.status, status, why)
    t.type(res.body?.error?.code, 'string', `${why}: a code`)
  }
  t.equal((await call(url, 'PUT', '/api/sdk/services/alpha/callers/i-1:1', { body: { value: good } })).status, 401, 'a token is needed')
  const { body: beta } = await call(url, 'POST', '/api/tokens', { token: admin, body: { service: 'beta' } })
  const foreign = await call(url, 'PUT', '/api/sdk/services/alpha/callers/i-1:1', { token: beta.token, body: { value: good } })
  t.equal(foreign.status, 403, 'another service\'s token cannot write alpha\'s sketches')
  t.equal(foreign.body.error.code, 'WG_ERR_AUTH_SCOPE')
})
