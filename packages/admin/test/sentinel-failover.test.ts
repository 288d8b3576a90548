import t from 'tap'
import { createRedisBackend } from '@waygate/core'
import { until } from '@waygate/core/testing'
import { startRedisSentinel } from '../../core/test/helpers/redis-topology.js'
import { buildAdminApp, enc, type AdminApp } from './helpers/app.js'

// Two instances of one app (waygate + admin) on a Sentinel-watched Redis (master, one replica,
// three sentinels). Under steady traffic and a stream of operator changes, the master is
// SIGKILLed; a supervisor restarts it once the sentinels have promoted the replica, and the
// sentinels turn it into the new master's replica. What a user would notice is asserted:
// requests answered throughout, changes refused quickly during the failover and accepted after,
// no acknowledged change lost, both instances converged.

const ROUTES = Array.from({ length: 6 }, (_, i) => `/r${i}`)
const PREFIX = 'failover'

// WAYGATE_SENTINEL_REPLICAS=2 measures the setup the docs recommend (the suite runs one replica)
const REPLICAS = Number(process.env.WAYGATE_SENTINEL_REPLICAS ?? 1)
const sentinel = await startRedisSentinel(t, { replicas: REPLICAS })

async function instance (): Promise<AdminApp> {
  return buildAdminApp(t, {
    engine: {
      // the backend opens its own Sentinel connections; every write waits for the replica
      backend: createRedisBackend({ sentinels: sentinel.sentinels, name: sentinel.name }, { keyPrefix: PREFIX, minReplicas: 1 }),
      resyncIntervalMs: 0
    },
    // the admin's body timer assumes a real socket; inject's has no destroy() (see the report)
    admin: { bodyTimeout: 300 },
    routes: app => {
      app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ ok: true }))
      app.get('/orders', async () => ({ ok: true }))
      for (const path of ROUTES) app.get(path, async () => ({ ok: true }))
    }
  })
}

interface Mutation {
  n: number
  key: string
  action: 'disable' | 'maintenance'
  via: 'A' | 'B'
  sentAt: number
  ms: number
  status: number
  code?: string
  message?: string
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('master SIGKILLed under traffic: requests answered, changes fail fast then work, nothing acknowledged lost, both converge', async t => {
  const a = await instance()
  const b = await instance()
  const token = await a.login()
  const headers = { 'x-waygate-token': token }
  const apps = { A: a, B: b }
  // when each instance first applied each change (by its unique reason)
  const seen = { A: new Map<string, number>(), B: new Map<string, number>() }
  for (const [name, app] of Object.entries(apps) as Array<['A' | 'B', AdminApp]>) {
    app.engine.subscribe(event => {
      if (event.type === 'route_changed' && !seen[name].has(event.state.reason)) seen[name].set(event.state.reason, performance.now())
    })
  }

  // steady traffic on both instances until told to stop
  const running = { traffic: true, operator: true }
  const unexpected: string[] = []
  let served = 0
  const traffic = (async () => {
    let i = 0
    while (running.traffic) {
      for (const [name, app] of Object.entries(apps)) {
        const path = i % 3 === 0 ? '/orders' : i % 3 === 1 ? '/health' : ROUTES[i % ROUTES.length]!
        const res = await app.app.inject(path)
        served++
        const managedRefusal = res.statusCode === 503 && path.startsWith('/r') && ['ROUTE_DISABLED', 'MAINTENANCE_MODE'].includes(res.json().error?.code)
        if (res.statusCode !== 200 && !managedRefusal) unexpected.push(`${name} ${path}: ${res.statusCode} ${res.body.slice(0, 200)}`)
      }
      i++
      await sleep(2)
    }
  })()

  // one operator, changes one after the other through either instance's admin API
  const mutations: Mutation[] = []
  const operator = (async () => {
    let n = 0
    while (running.operator) {
      n++
      const key = `GET:${ROUTES[n % ROUTES.length]!}`
      const action = n % 4 < 2 ? 'disable' : 'maintenance'
      const via = n % 2 === 0 ? 'A' : 'B'
      const sentAt = performance.now()
      const res = await apps[via].app.inject({ method: 'POST', url: `/waygate/api/routes/${enc(key)}/${action}`, headers, payload: { reason: `m${n}` } })
      mutations.push({ n, key, action, via, sentAt, ms: performance.now() - sentAt, status: res.statusCode, code: res.statusCode === 200 ? undefined : res.json().error?.code, message: res.statusCode === 200 ? undefined : String(res.json().error?.message) })
      await sleep(20)
    }
  })()

  await until(async () => mutations.length >= 10 ? true : undefined, 20_000, () => 'the operator is stuck')
  t.ok(mutations.every(m => m.status === 200), `before the failover every change is acknowledged (${mutations.length})`)
  const old = await sentinel.master()
  const killedAt = performance.now()
  await old.kill()
  // a supervisor restarts the crashed Redis; only once the sentinels have promoted the replica,
  // as an empty node restarted before that would be taken back as the master
  await until(async () => (await sentinel.masterPort()) !== old.port ? true : undefined, 30_000, () => 'the sentinels did not promote the replica', 50)
  const promotedAt = performance.now()
  await old.start()
  const restartedAt = performance.now()

  // on until changes have been accepted again for a while
  const firstOkAfter = (): Mutation | undefined => mutations.find(m => m.sentAt > killedAt && m.status === 200)
  await until(async () => {
    const first = firstOkAfter()
    return first !== undefined && mutations.filter(m => m.sentAt > first.sentAt && m.status === 200).length >= 10 ? true : undefined
  }, 30_000, () => `changes did not work again: ${JSON.stringify(mutations.slice(-5))}`, 50)
  running.operator = false
  await operator
  const recovered = firstOkAfter()!

  // both instances converge on what Redis holds
  const stateOf = (app: AdminApp, key: string): string => {
    const s = app.engine.getState(key)
    return s === null ? 'none' : `${s.status}:${s.reason}`
  }
  const convergeStarted = performance.now()
  await until(async () => {
    const stored = await a.engine.backend.load()
    const want = new Map(stored.routes.map(s => [s.key, `${s.status}:${s.reason}`]))
    return ROUTES.every(path => want.get(`GET:${path}`) === stateOf(a, `GET:${path}`) && want.get(`GET:${path}`) === stateOf(b, `GET:${path}`)) ? true : undefined
  }, 10_000, () => 'A and B did not converge on the stored state')
  const convergedAt = performance.now()
  running.traffic = false
  await traffic

  // the changes refused during the failover: a 503 with the backend's code, each quickly
  const during = mutations.filter(m => m.sentAt > killedAt && m.sentAt < recovered.sentAt)
  t.ok(during.length > 0, `${during.length} changes made during the failover`)
  t.same(during.filter(m => m.status !== 503 || m.code !== 'WG_ERR_BACKEND_UNAVAILABLE').map(m => `m${m.n} ${m.status} ${m.code ?? ''}`), [],
    'every change during the failover is a 503 WG_ERR_BACKEND_UNAVAILABLE')
  const slowest = Math.max(...during.map(m => m.ms))
  t.ok(slowest < 2500, `each refused within ${slowest.toFixed(0)} ms (command timeout 1 s)`)
  t.same(mutations.filter(m => m.status !== 200 && m.status !== 503), [], 'no other status, never a 500')
  t.same(unexpected.slice(0, 5), [], `${served} requests served, every one 200 or the route's own 503`)

  // nothing acknowledged lost: each route holds its last acknowledged change, or a later one that
  // was refused yet written (a 503 may still have happened)
  const stored = await a.engine.backend.load()
  const byKey = new Map(stored.routes.map(s => [s.key, s]))
  const lost: string[] = []
  for (const path of ROUTES) {
    const key = `GET:${path}`
    const acked = mutations.filter(m => m.key === key && m.status === 200).at(-1)
    if (acked === undefined) continue
    const state = byKey.get(key)
    const n = Number(/^m(\d+)$/.exec(state?.reason ?? '')?.[1] ?? -1)
    const later = mutations.find(m => m.n === n)
    if (n < acked.n || later === undefined || (n > acked.n && later.status === 200)) lost.push(`${key}: stored ${state?.reason ?? 'nothing'}, last acknowledged m${acked.n}`)
    else if ((later.action === 'disable' ? 'disabled' : 'maintenance') !== state?.status) lost.push(`${key}: m${n} is ${later.action}, stored ${state?.status ?? 'nothing'}`)
  }
  t.same(lost, [], 'every route holds its last acknowledged change')
  const audit = await a.engine.listAudit({ limit: 1000 })
  const audited = new Set(audit.map(e => e.reason))
  const unaudited = mutations.filter(m => m.status === 200 && !audited.has(`m${m.n}`)).map(m => `m${m.n}`)
  t.same(unaudited, [], `every acknowledged change is in the audit log (${mutations.filter(m => m.status === 200).length} acknowledged)`)

  const phases = new Map<string, [number, number, number]>()
  for (const m of during) {
    const kind = (m.message ?? '').replace(/[0-9a-f-]{36}/g, '').replace(/\d+/g, 'N').slice(0, 160)
    const at = m.sentAt - killedAt
    const p = phases.get(kind)
    phases.set(kind, p === undefined ? [at, at, 1] : [p[0], at, p[2] + 1])
  }
  for (const [kind, [from, to, count]] of phases) t.comment(`refused ${count}× from ${from.toFixed(0)} to ${to.toFixed(0)} ms: ${kind}`)
  const outage = recovered.sentAt + recovered.ms - killedAt
  // the first change acknowledged after the failover: on the instance that made it at once, on the other through the new master's pub/sub
  const other = recovered.via === 'A' ? 'B' : 'A'
  const reachedOther = seen[other].get(`m${recovered.n}`)
  // (or, when it was made before the other instance's change feed was back, by that instance's reload: the convergence check above)
  const propagation = reachedOther === undefined ? 'by its reload' : `${(reachedOther - recovered.sentAt).toFixed(1)} ms after it was sent`
  t.comment(`failover (${REPLICAS} replica${REPLICAS === 1 ? '' : 's'}): replica promoted ${(promotedAt - killedAt).toFixed(0)} ms after the kill, old master restarted at ${(restartedAt - killedAt).toFixed(0)} ms; changes refused for ${outage.toFixed(0)} ms ` +
    `(${during.length} refused, slowest refusal ${slowest.toFixed(0)} ms); the first accepted change reached the other instance ${propagation}; both instances on the stored state ${(convergedAt - killedAt).toFixed(0)} ms after the kill ` +
    `(${(convergedAt - convergeStarted).toFixed(0)} ms after the operator stopped); ${served} requests, ${unexpected.length} unexpected`)
})
