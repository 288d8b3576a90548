import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createRemoteBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { BackendChange, RemoteBackend, RemoteBackendOptions, WaygateLogger } from '@waygate/core'
import { routeState } from '@waygate/core/testing'
import { startFakeServer, type FakeServer } from './helpers/fake-server.js'
import { createTimerClock, settle, waitFor, type TimerClock } from './helpers/timer-clock.js'

const EVENTS = '/api/sdk/services/payments/events'

interface Logged { level: string, obj: object, msg: string | undefined }

function captureLogger (): WaygateLogger & { lines: Logged[], at: (level: string) => Logged[] } {
  const lines: Logged[] = []
  const put = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj, msg }) }
  return { lines, at: level => lines.filter(l => l.level === level), debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') }
}

interface Rig {
  fake: FakeServer
  clock: TimerClock
  backend: RemoteBackend
  changes: BackendChange[]
  logger: ReturnType<typeof captureLogger>
}

/** A fake server and a remote backend on it; jitter fixed at 50 % of the step (random 0). */
async function rig (t: Test, options: Partial<RemoteBackendOptions> = {}, prepare?: (fake: FakeServer) => void): Promise<Rig> {
  const fake = await startFakeServer()
  t.teardown(() => fake.close())
  prepare?.(fake)
  const clock = createTimerClock()
  const logger = captureLogger()
  const backend = createRemoteBackend({ serverUrl: fake.url, service: 'payments', token: 'tok', clock, random: () => 0, logger, ...options })
  t.teardown(() => backend.close())
  const changes: BackendChange[] = []
  backend.subscribe(c => changes.push(c))
  return { fake, clock, backend, changes, logger }
}

/** Waits for the reconnect timer to be armed and returns its delay. */
async function pendingReconnect (r: Rig): Promise<number> {
  await settle(20)
  await waitFor(() => r.clock.pending().length > 0 && r.backend.syncStatus().state !== 'connected', 3000, 'a pending reconnect')
  const pending = r.clock.pending()
  return pending[0]!
}

t.test('first connect takes a snapshot: load() answers the mirror, status is connected from the server', async t => {
  const r = await rig(t, {}, fake => {
    fake.routes.set('GET:/pay', routeState('GET:/pay', { status: 'maintenance', reason: 'db' }))
    fake.serviceMaintenance = { ...defaultGlobalMaintenance(), enabled: true, reason: 'payments down' }
  })
  await r.backend.init!()
  const first = r.fake.requests.find(q => q.path === EVENTS)!
  t.equal(first.headers.accept, 'text/event-stream')
  t.equal(first.headers.authorization, 'Bearer tok')
  t.equal(first.headers['last-event-id'], undefined, 'a fresh process asks for a snapshot')
  t.ok(first.query.get('instance'), 'names its instance')
  const snapshot = await r.backend.load()
  t.equal(snapshot.routes[0]?.status, 'maintenance')
  t.equal(snapshot.global?.reason, 'payments down', 'global off: the service maintenance is the effective one')
  t.equal(snapshot.revision, 10)
  t.equal(snapshot.epoch, 'ep1')
  const before = r.fake.requests.length
  await r.backend.load()
  t.equal(r.fake.requests.length, before, 'load() never goes to the network')
  t.match(r.backend.syncStatus(), { state: 'connected', source: 'server', revision: 10, epoch: 'ep1', reconnects: 0, staleSeconds: 0, service: 'payments' })

  r.fake.change({ type: 'global', global: { ...defaultGlobalMaintenance(), enabled: true, reason: 'everything' } })
  await waitFor(() => r.changes.some(c => c.type === 'global'))
  t.match(r.changes.find(c => c.type === 'global'), { global: { reason: 'everything' }, revision: 11 }, 'global on wins over the service maintenance')
})

t.test('a dropped stream reconnects after the back-off step with Last-Event-ID, and replays what it missed', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.changes.length = 0
  r.fake.dropStreams()
  const delay = await pendingReconnect(r)
  t.equal(delay, 500, 'first step 1 s, jitter at 50 %')
  t.equal(r.backend.syncStatus().state, 'reconnecting')
  const rev = r.fake.change({ type: 'route', state: routeState('GET:/x', { status: 'disabled' }) })
  r.clock.tick(499)
  await settle()
  t.equal(r.fake.count(EVENTS), 1, 'not before the delay')
  r.clock.tick(1)
  await waitFor(() => r.changes.some(c => c.type === 'route'))
  const second = r.fake.requests.filter(q => q.path === EVENTS)[1]!
  t.equal(second.headers['last-event-id'], 'ep1.10')
  t.match(r.changes.find(c => c.type === 'route'), { state: { key: 'GET:/x', status: 'disabled' }, revision: rev })
  t.notOk(r.changes.some(c => c.type === 'resync'), 'a replay needs no reload')
  t.match(r.backend.syncStatus(), { state: 'connected', reconnects: 1, revision: 11 })
  t.equal(r.logger.at('warn').length, 1, 'one warning for the outage')
})

t.test('back-off doubles to 30 s with jitter, one pending reconnect at a time, reset only after 60 s connected', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.fake.streams.push(...Array(7).fill({ status: 502 }))
  r.fake.dropStreams()
  const delays: number[] = []
  for (let i = 0; i < 7; i++) {
    const delay = await pendingReconnect(r)
    t.equal(r.clock.pending().length, 1, 'never more than one reconnect pending')
    delays.push(delay)
    const seen = r.fake.count(EVENTS)
    r.clock.tick(delay)
    await waitFor(() => r.fake.count(EVENTS) === seen + 1, 3000, `attempt ${i + 2} (pending ${r.clock.pending().join()})`)
  }
  t.same(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000], '1, 2, 4, 8, 16, 30, 30 s at 50 %')
  // the next attempt connects; a drop right after keeps the step
  t.equal(await pendingReconnect(r), 15000)
  r.clock.tick(15000)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  r.fake.dropStreams()
  t.equal(await pendingReconnect(r), 15000, 'a short connection does not reset the steps')
  r.clock.tick(15000)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  const synced = r.backend.syncStatus().lastSync
  r.clock.tick(30_000)
  r.fake.heartbeat()
  await waitFor(() => r.backend.syncStatus().lastSync !== synced, 3000, 'the heartbeat')
  r.clock.tick(30_000)
  r.fake.dropStreams()
  t.equal(await pendingReconnect(r), 500, 'after 60 s connected the steps start again')
  t.equal(r.logger.at('warn').length, 3, 'one warning per outage (three outages), not one per attempt')
})

t.test('jitter spreads the delay over 50-100 % of the step', async t => {
  const r = await rig(t, { random: () => 0.999 })
  await r.backend.init!()
  r.fake.dropStreams()
  t.equal(await pendingReconnect(r), 999)
})

t.test('a stalled stream (headers, then nothing) is reconnected by the 45 s watchdog', async t => {
  const r = await rig(t, {}, fake => { fake.streams.push('stall') })
  const init = r.backend.init!()
  // The client re-arms its watchdog when it reads the headers; the clock must not move before that
  // (on a loaded machine the headers can reach the client well after the server has sent them).
  await waitFor(() => r.fake.openStreams() === 1 && r.backend.syncStatus().state === 'connected', 3000, 'the stalled stream to open')
  r.clock.tick(2000)
  await init
  t.equal(r.backend.syncStatus().source, 'declared', 'served the declared states after readyTimeoutMs')
  r.clock.tick(42_999)
  await settle()
  t.equal(r.fake.count(EVENTS), 1, 'still waiting at 44.999 s')
  r.clock.tick(1)
  const delay = await pendingReconnect(r)
  t.equal(delay, 500)
  r.clock.tick(delay)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  t.equal(r.fake.count(EVENTS), 2)
  t.equal(r.backend.syncStatus().source, 'server')
})

t.test('heartbeats keep a quiet stream alive; rate limit records follow the stream', async t => {
  const r = await rig(t)
  await r.backend.init!()
  for (let i = 0; i < 3; i++) {
    const synced = r.backend.syncStatus().lastSync
    r.clock.tick(40_000)
    r.fake.heartbeat()
    await waitFor(() => r.backend.syncStatus().lastSync !== synced)
  }
  t.equal(r.fake.count(EVENTS), 1, 'no reconnect in 120 s with a heartbeat every 40 s')
  r.fake.change({ type: 'record', namespace: 'waygate:rate-limits', id: '@service', record: { id: '@service', value: { enabled: true }, expiresAt: null } })
  await waitFor(() => r.changes.some(c => c.type === 'record'))
  t.same(await r.backend.listRecords('waygate:rate-limits'), [{ id: '@service', value: { enabled: true }, expiresAt: null }])
})

t.test('401 with a token only: one error log, the unauthorized state, a probe every 180 s, no hot loop', async t => {
  const r = await rig(t, {}, fake => { fake.token = 'other' })
  await r.backend.init!()
  for (let i = 0; i < 10; i++) {
    r.clock.tick(1000)
    await settle(5)
  }
  t.equal(r.fake.count(EVENTS), 1, 'one attempt in 10 s')
  t.equal(r.backend.syncStatus().state, 'unauthorized')
  t.equal(r.logger.at('error').length, 1, 'one clear error')
  t.match(r.logger.at('error')[0]!.msg, /refused this service's credentials/)
  t.same(r.clock.pending(), [170_000], 'the next probe at 180 s')
  r.clock.tick(170_000)
  await waitFor(() => r.fake.count(EVENTS) === 2)
  await waitFor(() => r.clock.pending().length === 1)
  t.equal(r.logger.at('error').length, 1, 'still one error')
  r.fake.token = 'tok'
  r.clock.tick(180_000)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  t.equal(r.fake.count(EVENTS), 3)
})

t.test('401 with credentials: logs in again once, then probes; attempts over 10 s are bounded', async t => {
  const r = await rig(t, { token: undefined, username: 'svc', password: 'pw' }, fake => {
    fake.issueToken = 'stale'
    fake.token = 'fresh'
  })
  await r.backend.init!()
  for (let i = 0; i < 10; i++) {
    r.clock.tick(1000)
    await settle(5)
  }
  t.ok(r.fake.count(EVENTS) <= 2, `stream attempts in 10 s: ${r.fake.count(EVENTS)}`)
  t.ok(r.fake.count('/api/auth/login') <= 2, `logins in 10 s: ${r.fake.count('/api/auth/login')}`)
  const login = r.fake.requests.find(q => q.path === '/api/auth/login')!
  t.same(login.body, { username: 'svc', password: 'pw', platform: 'sdk', service: 'payments' })
  t.equal(r.backend.syncStatus().state, 'unauthorized')
  t.equal(r.logger.at('error').length, 1)
  r.fake.issueToken = 'fresh'
  r.clock.tick(180_000)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  t.equal(r.fake.requests.filter(q => q.path === EVENTS).at(-1)!.headers.authorization, 'Bearer fresh', 'logged in again before the probe')
})

t.test('a token the server stops taking: re-login right away with credentials', async t => {
  const r = await rig(t, { token: undefined, username: 'svc', password: 'pw' })
  await r.backend.init!()
  r.fake.token = 'rotated'
  r.fake.issueToken = 'rotated'
  r.fake.streams.push({ status: 401 })
  r.fake.dropStreams()
  const delay = await pendingReconnect(r)
  r.clock.tick(delay)
  await waitFor(() => r.backend.syncStatus().state === 'unauthorized')
  const relogin = await pendingReconnect(r)
  t.ok(relogin < 180_000, 'a re-login, not a probe')
  r.clock.tick(relogin)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  t.equal(r.fake.count('/api/auth/login'), 2)
})

t.test('429 with Retry-After waits what the server asks', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.fake.streams.push({ status: 429, headers: { 'retry-after': '7' } })
  r.fake.dropStreams()
  r.clock.tick(await pendingReconnect(r))
  await waitFor(() => r.fake.count(EVENTS) === 2)
  t.equal(await pendingReconnect(r), 7000, 'Retry-After: 7 beats the 2 s step')
  r.clock.tick(6999)
  await settle()
  t.equal(r.fake.count(EVENTS), 2)
  r.clock.tick(1)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
  t.equal(r.fake.count(EVENTS), 3)
})

t.test('503: back-off without Retry-After, an HTTP-date Retry-After honoured', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.fake.streams.push({ status: 503 }, { status: 503, headers: { 'retry-after': new Date(r.clock.now() + 20_000).toUTCString() } })
  r.fake.dropStreams()
  r.clock.tick(await pendingReconnect(r))
  await waitFor(() => r.fake.count(EVENTS) === 2)
  t.equal(await pendingReconnect(r), 1000, 'plain 503: the next step')
  r.clock.tick(1000)
  await waitFor(() => r.fake.count(EVENTS) === 3)
  const delay = await pendingReconnect(r)
  t.ok(delay >= 18_000 && delay <= 20_000, `HTTP-date honoured (${delay} ms)`)
  r.clock.tick(delay)
  await waitFor(() => r.backend.syncStatus().state === 'connected')
})

t.test('a replay gap too old for the log: the server sends a snapshot, which replaces the mirror', async t => {
  const r = await rig(t, {}, fake => {
    fake.routes.set('GET:/a', routeState('GET:/a'))
    fake.routes.set('GET:/b', routeState('GET:/b'))
  })
  await r.backend.init!()
  r.fake.dropStreams()
  const delay = await pendingReconnect(r)
  // while away: changes the log no longer has
  r.fake.routes.delete('GET:/a')
  r.fake.routes.set('GET:/b', routeState('GET:/b', { status: 'disabled' }))
  r.fake.routes.set('GET:/c', routeState('GET:/c', { status: 'maintenance' }))
  r.fake.revision = 50
  r.fake.forceSnapshot = true
  r.changes.length = 0
  r.clock.tick(delay)
  await waitFor(() => r.changes.some(c => c.type === 'resync'))
  t.equal(r.fake.requests.filter(q => q.path === EVENTS)[1]!.headers['last-event-id'], 'ep1.10')
  const snapshot = await r.backend.load()
  t.same(snapshot.routes.map(s => `${s.key}=${s.status}`).sort(), ['GET:/b=disabled', 'GET:/c=maintenance'])
  t.equal(snapshot.revision, 50)
  t.notOk(r.changes.some(c => c.type === 'route'), 'one resync, no piecemeal changes')
})

t.test('an epoch reset: a snapshot of the new history replaces the mirror, lower revisions then apply', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.fake.dropStreams()
  const delay = await pendingReconnect(r)
  r.fake.resetEpoch('ep2', 3)
  r.fake.routes.set('GET:/new', routeState('GET:/new'))
  r.changes.length = 0
  r.clock.tick(delay)
  await waitFor(() => r.changes.some(c => c.type === 'resync'))
  t.equal(r.fake.requests.filter(q => q.path === EVENTS)[1]!.headers['last-event-id'], 'ep1.10', 'resumed with the old history')
  t.match(await r.backend.load(), { epoch: 'ep2', revision: 3 })
  r.fake.change({ type: 'route', state: routeState('GET:/new', { status: 'disabled' }) })
  await waitFor(() => r.changes.some(c => c.type === 'route'))
  t.match(r.changes.find(c => c.type === 'route'), { revision: 4, state: { status: 'disabled' } }, 'revision 4 < 10 is not stale in the new epoch')
})

t.test('a change of another epoch on the stream makes it reconnect for a snapshot', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.fake.sendRaw(11, { type: 'route', state: routeState('GET:/x') }, 'ep9')
  const delay = await pendingReconnect(r)
  r.clock.tick(delay)
  await waitFor(() => r.fake.count(EVENTS) === 2 && r.backend.syncStatus().state === 'connected')
  t.equal(r.fake.requests.filter(q => q.path === EVENTS)[1]!.headers['last-event-id'], undefined, 'asks for a fresh snapshot')
  t.notOk(r.changes.some(c => c.type === 'route'), 'the foreign change was not applied')
})

t.test('a stale event after a newer one, and a repeated one, are dropped', async t => {
  const r = await rig(t)
  await r.backend.init!()
  r.fake.sendRaw(12, { type: 'route', state: routeState('GET:/x', { status: 'disabled' }) })
  r.fake.sendRaw(11, { type: 'route', state: routeState('GET:/x', { status: 'maintenance' }) })
  r.fake.sendRaw(12, { type: 'route', state: routeState('GET:/x', { status: 'maintenance' }) })
  r.fake.sendRaw(13, { type: 'route', state: routeState('GET:/y') })
  await waitFor(() => r.changes.filter(c => c.type === 'route').length === 2)
  await settle()
  t.same(r.changes.filter(c => c.type === 'route').map(c => c.type === 'route' && `${c.state.key}=${c.state.status}@${c.revision}`), ['GET:/x=disabled@12', 'GET:/y=active@13'])
  t.equal((await r.backend.getRoute('GET:/x'))?.status, 'disabled')
  t.equal(r.fake.count(EVENTS), 1, 'dropping is not a reason to reconnect')
})

t.test('cache file: written atomically after a snapshot, used when the server is down at start', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'wg-remote-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cacheFile = join(dir, 'cache.json')
  const r = await rig(t, { cacheFile }, fake => { fake.routes.set('GET:/pay', routeState('GET:/pay', { status: 'disabled' })) })
  await r.backend.init!()
  await waitFor(() => r.fake.count(EVENTS) === 1)
  let saved: { header: Record<string, unknown> } | null = null
  await waitFor(() => {
    readFile(cacheFile, 'utf8').then(text => { saved = JSON.parse(text) }, () => {})
    return saved !== null
  })
  t.match(saved!.header, { format: 1, server: r.fake.url, service: 'payments', epoch: 'ep1', revision: 10 })
  await r.backend.close()
  await r.fake.close()

  const clock = createTimerClock()
  const logger = captureLogger()
  const offline = createRemoteBackend({ serverUrl: r.fake.url, service: 'payments', token: 'tok', cacheFile, clock, random: () => 0, logger })
  t.teardown(() => offline.close())
  const init = offline.init!()
  await waitFor(() => logger.at('warn').length === 1, 3000, 'the refused connection')
  clock.tick(2000)
  await init
  t.equal((await offline.getRoute('GET:/pay'))?.status, 'disabled', 'the operators\' change survives the restart')
  t.match(offline.syncStatus(), { state: 'offline', source: 'cache', revision: 10, epoch: 'ep1' })
  t.equal(logger.at('warn').length, 1, 'one warning for the outage')
})

t.test('a torn or foreign cache file is refused with a warning', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'wg-remote-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const torn = join(dir, 'torn.json')
  const foreign = join(dir, 'foreign.json')
  const body = JSON.stringify({ header: { format: 1, server: 'http://127.0.0.1:1', service: 'payments', epoch: 'e', revision: 1, savedAt: '' }, snapshot: {} })
  await writeFile(torn, body.slice(0, 40))
  await writeFile(foreign, body)
  for (const [file, problem] of [[torn, /not valid JSON/], [foreign, /belongs to server/]] as const) {
    const r = await rig(t, { cacheFile: file }, fake => { fake.streams.push('stall') })
    const init = r.backend.init!()
    await waitFor(() => r.fake.openStreams() === 1)
    r.clock.tick(2000)
    await init
    t.equal(r.backend.syncStatus().source, 'declared', 'nothing loaded')
    t.match(r.logger.at('warn')[0]?.msg, problem)
  }
})

t.test('registration: a manifest retried with back-off until acknowledged, re-sent on reconnect when the server lost it', async t => {
  const r = await rig(t, {}, fake => { fake.registerStatus = 503 })
  await r.backend.init!()
  const states = [routeState('GET:/pay'), routeState('POST:/pay', { status: 'maintenance' })]
  const registering = r.backend.registerRoutes(states)
  await waitFor(() => r.fake.count('/api/sdk/services/payments/register') === 1)
  t.same(await registering, [], 'the first refusal does not fail startup')
  t.equal(await pendingReconnect(r).catch(() => -1), -1, 'no stream reconnect for a failed registration')
  r.fake.registerStatus = 200
  t.same(r.clock.pending(), [500, 45_000], 'the registration retry beside the stream\'s watchdog')
  r.clock.tick(500)
  await waitFor(() => r.fake.manifest !== null)
  const sent = r.fake.requests.filter(q => q.path.endsWith('/register')).at(-1)!.body as { manifest: string, instance: { id: string }, routes: unknown[] }
  t.match(sent.manifest, /^[0-9a-f]{64}$/)
  t.equal(sent.routes.length, 2)
  t.ok(sent.instance.id)
  await waitFor(() => r.changes.filter(c => c.type === 'route').length === 2)
  t.same(await r.backend.registerRoutes(states), [], 'same manifest, server knows it: nothing sent')
  t.equal(r.fake.count('/api/sdk/services/payments/register'), 2)

  // the server forgets (a new history): the snapshot's manifest differs, registration goes again
  r.fake.resetEpoch('ep2', 0)
  r.fake.routes.clear()
  r.fake.manifest = null
  r.fake.dropStreams()
  r.clock.tick(await pendingReconnect(r))
  await waitFor(() => r.fake.count('/api/sdk/services/payments/register') === 3)
  await waitFor(() => r.fake.routes.size === 2)
  t.equal(r.fake.manifest, sent.manifest, 'the same manifest for the same routes')
})

t.test('writes: CAS PUT, retried with the server\'s current state on conflict; the change is seen before the write resolves', async t => {
  const r = await rig(t, {}, fake => { fake.routes.set('GET:/pay', routeState('GET:/pay')) })
  await r.backend.init!()
  // someone else changed it on the server; the stream has not told us yet
  r.fake.routes.set('GET:/pay', routeState('GET:/pay', { reason: 'theirs' }))
  const seen: Array<string | null> = []
  const stored = await r.backend.updateRoute('GET:/pay', current => {
    seen.push(current?.reason ?? null)
    return { next: { ...current!, status: 'disabled' } }
  })
  t.same(seen, ['', 'theirs'], 'the updater ran again on the server\'s current state')
  t.match(stored, { status: 'disabled', reason: 'theirs' })
  t.match(r.changes.find(c => c.type === 'route'), { state: { status: 'disabled' } }, 'announced before resolving')
  const puts = r.fake.requests.filter(q => q.method === 'PUT')
  t.equal(puts.length, 2)
  t.equal(puts[0]!.path, '/api/sdk/services/payments/routes/GET%3A%2Fpay')

  const maintenance = await r.backend.updateGlobal(current => ({ next: { ...current, enabled: true, reason: 'svc' } }))
  t.match(maintenance, { enabled: true, reason: 'svc' })
  t.match((await r.backend.load()).global, { enabled: true, reason: 'svc' }, 'global is off, so the service maintenance is in force')
  t.match(r.fake.serviceMaintenance, { enabled: true, reason: 'svc' })

  await r.fake.close()
  await t.rejects(r.backend.updateRoute('GET:/pay', current => ({ next: { ...current!, status: 'active' } })), { code: 'WG_ERR_BACKEND_UNAVAILABLE' })
  await t.rejects(r.backend.deleteRoute('GET:/pay'), { code: 'WG_ERR_REMOTE_UNSUPPORTED' })
})

t.test('close() ends the stream and every timer', async t => {
  const r = await rig(t)
  await r.backend.init!()
  await waitFor(() => r.fake.openStreams() === 1)
  await r.backend.close()
  await waitFor(() => r.fake.openStreams() === 0)
  t.same(r.clock.pending(), [], 'no timer left')
  r.clock.tick(600_000)
  await settle()
  t.equal(r.fake.count(EVENTS), 1, 'nothing after close')
  t.equal(r.backend.syncStatus().state, 'offline')
})

t.test('bad options are refused at once with every problem', async t => {
  t.throws(() => createRemoteBackend({ serverUrl: '', service: 'Bad Name', readyTimeoutMs: -1 } as RemoteBackendOptions), {
    code: 'WG_ERR_OPTIONS_INVALID',
    message: /serverUrl is required.*service must be.*readyTimeoutMs/
  })
  t.throws(() => createRemoteBackend({ serverUrl: 'ftp://x', service: 'ok', username: 'u' }), { message: /http or https.*username and password/ })
})
