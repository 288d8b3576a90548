/**
 * `BENCH_ONLY=fleet pnpm bench` (and the end of a full `pnpm bench`): the Waygate Server and its
 * services as a fleet. Three measurements, against one Waygate Server in its own process
 * (`bench/server.ts waygate-server`, file backend, admin / secret) on loopback:
 *
 * 1. **Propagation.** One service (an engine on `createRemoteBackend`, what `waygateService` builds)
 *    declares `GET /toggle`. 100 times, a route disable or enable is sent through the server's REST
 *    API (`POST /api/routes/prop-service:GET:/toggle/disable|enable`, an operator's token). Propagation
 *    = from just before that request is sent to the moment the service's `decide()` for the route (the
 *    per-request check of the plugin, synchronous, no I/O) gives the new answer, checked on each of the
 *    engine's change events, so no polling interval is added. Median, p99 and max.
 * 2. **Fan-out.** 200 service connections, 10 instances of each of 20 services, each a real engine on
 *    its own remote backend (its own HTTP agent and SSE stream) in this process. Global maintenance
 *    is toggled through the REST API (`POST /api/global/enable|disable`), which reaches all 200;
 *    delivery of a connection = from before the request to the moment its engine's `decide()` changes.
 *    p99 over every delivery of every round. The server's memory per connection = (RSS after the 200
 *    streams are open − RSS before any service connected) ÷ 200, both after a forced GC; its heap too.
 * 3. **Restart storm.** The server is stopped (SIGTERM: streams closed, state flushed) and started
 *    again on the same port and file. The 200 reconnect with the SDK's jittered back-off. Reported:
 *    time from the new server's ready until all 200 are connected again, the stream connects it
 *    received (one per service when nothing is wasted), and `GET /api/routes` probed every 25 ms
 *    throughout: its max and p99 latency while the 200 reconnect, and any error after ready. Then one
 *    more change, to show that every service follows the restarted server.
 *
 * Environment: FLEET_CHANGES (100; quick 20), FLEET_CONNECTIONS (200), FLEET_SERVICES (20),
 * FLEET_ROUNDS (10; quick 3), BENCH_QUICK. Results: bench/results/<timestamp>-fleet.json.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, readCount } from './common.js'
import { createEngine, createRemoteBackend, type RemoteBackend, type RouteHandle, type WaygateEngine } from '../packages/core/src/index.js'

const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH_DIR)

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number, got "${raw}"`)
  return value
}

const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true'
const settings = {
  quick: QUICK,
  changes: envNumber('FLEET_CHANGES', QUICK ? 20 : 100),
  connections: envNumber('FLEET_CONNECTIONS', 200),
  services: envNumber('FLEET_SERVICES', 20),
  rounds: envNumber('FLEET_ROUNDS', QUICK ? 3 : 10),
  /** The Waygate Server's backend: file (default; the restart needs state that survives it) or memory. */
  backend: process.env.FLEET_BACKEND === 'memory' ? 'memory' : 'file',
  /** Interval of the GET /api/routes probe during the restart, ms. */
  probeMs: 25
}
const TARGETS = { propagationP99Ms: 100, fanoutP99Ms: 250 }
const SERVICE = 'prop-service'
/** How long one change may take to reach a service before the bench gives up on it. */
const DEADLINE_MS = 10_000

// ---------------------------------------------------------------------------------------------
// the Waygate Server process

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill('SIGTERM')
    process.exit(130)
  })
}

/** Starts `server.ts waygate-server` on `port` with the file backend at `file`; resolves once it listens. */
function startWaygateServer (port: number, file: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--expose-gc', '--conditions=@waygate/source', '--import', 'tsx', join(BENCH_DIR, 'server.ts'), 'waygate-server', String(port)], {
    cwd: ROOT,
    env: { ...process.env, BENCH_WAYGATE_BACKEND: settings.backend, BENCH_WAYGATE_FILE: file },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Waygate Server did not start within 30 s')), 30_000)
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`the Waygate Server exited before it was ready (code ${code})`))
    })
    child.once('message', (message: { type?: string }) => {
      clearTimeout(timer)
      if (message.type === 'ready') resolve(child)
      else reject(new Error(`the Waygate Server sent ${JSON.stringify(message)}`))
    })
  })
}

function stopWaygateServer (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

// ---------------------------------------------------------------------------------------------
// REST

async function login (base: string, service?: string): Promise<string> {
  const body = service === undefined ? { username: 'admin', password: 'secret' } : { username: 'admin', password: 'secret', platform: 'sdk', service }
  const res = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = await res.json() as { token?: string }
  if (res.status !== 200 || typeof answer.token !== 'string') throw new Error(`login${service === undefined ? '' : ` for ${service}`} answered ${res.status}: ${JSON.stringify(answer)}`)
  return answer.token
}

async function post (base: string, token: string, path: string): Promise<void> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })
  if (res.status !== 200) throw new Error(`POST ${path} answered ${res.status}: ${await res.text()}`)
  await res.arrayBuffer()
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// services

interface Service {
  name: string
  engine: WaygateEngine
  backend: RemoteBackend
  handle: RouteHandle
  /** Resolves the current wait when decide() matches it (see {@link awaitDecision}). */
  waiter: { want: 'pass' | 'block', resolve: (at: number) => void } | null
}

/** An engine on a remote backend with one declared route, started and registered: a service's SDK minus Fastify. */
async function startService (base: string, name: string, credentials: { token: string } | { username: string, password: string }, instanceId: string, path: string): Promise<Service> {
  const backend = createRemoteBackend({ serverUrl: base, service: name, instanceId, ...credentials })
  const engine = createEngine({ backend })
  const handle = engine.declareRoute('GET', path)
  const service: Service = { name, engine, backend, handle, waiter: null }
  engine.subscribe(() => {
    const waiter = service.waiter
    if (waiter === null) return
    if (engine.decide(handle).action === waiter.want) {
      service.waiter = null
      waiter.resolve(performance.now())
    }
  })
  await engine.start()
  await engine.registerDeclaredRoutes()
  return service
}

/** Resolves the time (performance.now()) at which the service's decide() for its route becomes `want`. */
function awaitDecision (service: Service, want: 'pass' | 'block'): Promise<number> {
  if (service.engine.decide(service.handle).action === want) return Promise.resolve(performance.now())
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      service.waiter = null
      reject(new Error(`${service.name}: decide() did not become ${want} within ${DEADLINE_MS} ms (sync ${JSON.stringify(service.backend.syncStatus())})`))
    }, DEADLINE_MS)
    service.waiter = { want, resolve: at => { clearTimeout(timer); resolve(at) } }
  })
}

// ---------------------------------------------------------------------------------------------
// statistics

function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

interface Distribution { n: number, median: number, p99: number, max: number, min: number }

function distribution (values: number[]): Distribution {
  return { n: values.length, median: percentile(values, 0.5), p99: percentile(values, 0.99), max: Math.max(...values), min: Math.min(...values) }
}

const ms = (n: number): string => `${n.toFixed(1)} ms`
const verdict = (value: number, target: number): string => value < target ? 'PASS' : 'OVER'

// ---------------------------------------------------------------------------------------------

async function propagation (base: string, admin: string): Promise<{ propagation: Distribution, rest: Distribution }> {
  const service = await startService(base, SERVICE, { username: 'admin', password: 'secret' }, 'prop-1', '/toggle')
  try {
    const sync = service.backend.syncStatus()
    if (sync.state !== 'connected' || sync.source !== 'server') throw new Error(`${SERVICE} is not in sync with the server: ${JSON.stringify(sync)}`)
    if (service.engine.decide(service.handle).action !== 'pass') throw new Error(`${SERVICE}: GET /toggle does not start active`)
    const key = encodeURIComponent(`${SERVICE}:GET:/toggle`)
    const delays: number[] = []
    const rest: number[] = []
    for (let i = 0; i < settings.changes; i++) {
      const disable = i % 2 === 0
      const applied = awaitDecision(service, disable ? 'block' : 'pass')
      const t0 = performance.now()
      await post(base, admin, `/api/routes/${key}/${disable ? 'disable' : 'enable'}`)
      rest.push(performance.now() - t0)
      delays.push(await applied - t0)
      await sleep(10 + Math.random() * 20) // changes spread out a little, as operators make them
    }
    return { propagation: distribution(delays), rest: distribution(rest) }
  } finally {
    await service.engine.close()
  }
}

/** One global toggle to every service: each service's delivery delay, ms, and the REST answer's. */
async function globalToggle (base: string, admin: string, services: Service[], enable: boolean): Promise<{ delays: number[], restMs: number }> {
  const waits = services.map(s => awaitDecision(s, enable ? 'block' : 'pass'))
  const t0 = performance.now()
  await post(base, admin, `/api/global/${enable ? 'enable' : 'disable'}`)
  const restMs = performance.now() - t0
  const at = await Promise.all(waits)
  return { delays: at.map(t => t - t0), restMs }
}

async function waitConnected (base: string, services: Service[], timeoutMs: number): Promise<{ at: number, connectedAt: number[] }> {
  const t0 = performance.now()
  const connectedAt: number[] = new Array(services.length).fill(NaN)
  for (;;) {
    const now = performance.now()
    let all = true
    services.forEach((s, i) => {
      const connected = s.backend.syncStatus().state === 'connected'
      if (connected && Number.isNaN(connectedAt[i])) connectedAt[i] = now
      if (!connected) all = false
    })
    if (all && (await readCount(base)).openStreams >= services.length) return { at: performance.now(), connectedAt }
    if (now - t0 > timeoutMs) {
      const down = services.filter(s => s.backend.syncStatus().state !== 'connected').length
      throw new Error(`${down} of ${services.length} services not connected after ${timeoutMs} ms`)
    }
    await sleep(10)
  }
}

interface Probe { at: number, ms: number, status: number | 'error' }

/** GET /api/routes every `probeMs` until stopped; a probe that fails (server down) is recorded as 'error'. */
function probeRoutes (base: string, admin: string): { stop: () => Promise<Probe[]> } {
  const probes: Probe[] = []
  const state = { running: true }
  const loop = (async () => {
    while (state.running) {
      const t0 = performance.now()
      let status: number | 'error'
      try {
        const res = await fetch(`${base}/api/routes`, { headers: { authorization: `Bearer ${admin}` }, signal: AbortSignal.timeout(10_000) })
        await res.arrayBuffer()
        status = res.status
      } catch {
        status = 'error'
      }
      const t1 = performance.now()
      probes.push({ at: t0, ms: t1 - t0, status })
      await sleep(Math.max(0, settings.probeMs - (t1 - t0)))
    }
  })()
  return {
    stop: async () => {
      state.running = false
      await loop
      return probes
    }
  }
}

async function main (): Promise<void> {
  const startedAt = new Date()
  const loadBefore = loadavg()
  console.log(`\nwaygate fleet bench${QUICK ? ' (quick)' : ''}: ${JSON.stringify(settings)}; load average ${loadBefore.map(l => l.toFixed(2)).join(' ')}`)
  const dir = mkdtempSync(join(tmpdir(), 'waygate-bench-fleet-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'waygate-server.json')
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  let server = await startWaygateServer(port, file)
  console.log(`Waygate Server (${settings.backend} backend) on ${base}, pid ${server.pid}`)
  const admin = await login(base)

  // 1. propagation
  const prop = await propagation(base, admin)
  console.log(`propagation over ${prop.propagation.n} changes: median ${ms(prop.propagation.median)}, p99 ${ms(prop.propagation.p99)}, max ${ms(prop.propagation.max)} ` +
    `(REST answer: median ${ms(prop.rest.median)}, p99 ${ms(prop.rest.p99)})`)

  // 2. fan-out
  const names = Array.from({ length: settings.services }, (_, i) => `fleet-${String(i).padStart(2, '0')}`)
  const tokens = new Map<string, string>()
  for (const name of names) tokens.set(name, await login(base, name))
  await sleep(500)
  const before = await readCount(base, true)
  const tStart = performance.now()
  const services = await Promise.all(Array.from({ length: settings.connections }, (_, i) => {
    const name = names[i % names.length]!
    // the instances of one service declare the same routes (one manifest), as replicas do
    return startService(base, name, { token: tokens.get(name)! }, `${name}-i${Math.floor(i / names.length)}`, '/toggle')
  }))
  await waitConnected(base, services, 30_000)
  const connectMs = performance.now() - tStart
  await sleep(1000)
  const after = await readCount(base, true)
  const rssPerConnection = (after.rss - before.rss) / settings.connections
  const heapPerConnection = (after.heapUsed - before.heapUsed) / settings.connections
  console.log(`fan-out: ${settings.connections} connections (${settings.services} services × ${settings.connections / settings.services}) connected in ${ms(connectMs)}; ` +
    `server RSS ${(before.rss / 1048576).toFixed(1)} → ${(after.rss / 1048576).toFixed(1)} MiB = ${(rssPerConnection / 1024).toFixed(1)} KiB per connection ` +
    `(heap ${(heapPerConnection / 1024).toFixed(1)} KiB)`)
  // every stream connect (and registration) makes the server write records (the instance and its
  // heartbeat); on the file backend each is a whole-file write, queued, and an operator's change
  // waits behind them. Measured once, then drained (toggles until one is answered within 100 ms)
  // so that the rounds below measure the fan-out itself.
  const drain0 = performance.now()
  let backlogMs = NaN
  for (let k = 0; ; k++) {
    const { restMs } = await globalToggle(base, admin, services, k % 2 === 0)
    if (k === 0) backlogMs = restMs
    if (k % 2 === 1 && restMs < 100) break
    if (performance.now() - drain0 > 120_000) throw new Error('the server did not settle within 120 s of the 200 connects')
  }
  const drainMs = performance.now() - drain0
  console.log(`  the first change after the connects: REST answered in ${ms(backlogMs)} (the server's record writes queued ahead of it); settled in ${ms(drainMs)}`)
  const fanout: number[] = []
  const perRound: Array<Distribution & { restMs: number }> = []
  for (let r = 0; r < settings.rounds; r++) {
    const { delays, restMs } = await globalToggle(base, admin, services, r % 2 === 0)
    fanout.push(...delays)
    perRound.push({ ...distribution(delays), restMs })
    await sleep(200)
  }
  if (settings.rounds % 2 === 1) await globalToggle(base, admin, services, false) // leave global maintenance off
  const fan = distribution(fanout)
  console.log(`fan-out over ${settings.rounds} global changes × ${settings.connections}: median ${ms(fan.median)}, p99 ${ms(fan.p99)}, max ${ms(fan.max)} ` +
    `(per change, REST answer / slowest connection: ${perRound.map(d => `${d.restMs.toFixed(0)}/${d.max.toFixed(0)}`).join(', ')} ms)`)

  // 3. restart storm
  const probe = probeRoutes(base, admin)
  await sleep(500)
  const reconnects0 = services.reduce((sum, s) => sum + s.backend.syncStatus().reconnects, 0)
  const tStop = performance.now()
  await stopWaygateServer(server)
  const tDown = performance.now()
  server = await startWaygateServer(port, file)
  const tUp = performance.now()
  const count0 = await readCount(base)
  const { at: tAll, connectedAt } = await waitConnected(base, services, 120_000)
  const count1 = await readCount(base)
  await sleep(1000)
  const probes = await probe.stop()
  const reconnects = services.reduce((sum, s) => sum + s.backend.syncStatus().reconnects, 0) - reconnects0
  const storm = probes.filter(p => p.at >= tUp && p.at <= tAll)
  const afterUp = probes.filter(p => p.at >= tUp)
  const failedAfterUp = afterUp.filter(p => p.status !== 200)
  const stormLatency = distribution(storm.length > 0 ? storm.map(p => p.ms) : [NaN])
  const quiet = distribution(probes.filter(p => p.at < tStop).map(p => p.ms))
  const reconnectDelays = distribution(connectedAt.map(t => t - tUp))
  const followed = distribution([...(await globalToggle(base, admin, services, true)).delays, ...(await globalToggle(base, admin, services, false)).delays])
  console.log(`restart: stopped in ${ms(tDown - tStop)}, new server ready ${ms(tUp - tDown)} later; all ${settings.connections} connected again ` +
    `${ms(tAll - tUp)} after it was ready (${ms(tAll - tStop)} after the stop; per connection median ${ms(reconnectDelays.median)}, max ${ms(reconnectDelays.max)}); ` +
    `${count1.byKind.events ?? 0} stream connects reached the new server (requests by kind until then: ${JSON.stringify(count1.byKind)}), ` +
    `${reconnects} reconnect attempts by the services (refused ones while it was down included)`)
  console.log(`  GET /api/routes during the storm: ${storm.length} probes, p99 ${ms(stormLatency.p99)}, max ${ms(stormLatency.max)} ` +
    `(before the restart: p99 ${ms(quiet.p99)}); ${failedAfterUp.length} failed after the new server was ready`)
  console.log(`  the next change after the restart reached all ${settings.connections}: p99 ${ms(followed.p99)}, max ${ms(followed.max)}`)

  await Promise.all(services.map(s => s.engine.close()))
  await stopWaygateServer(server)

  const restartOk = failedAfterUp.length === 0
  console.log('\nFleet targets (BENCHMARKING.md):')
  console.log(`  server → service propagation p99 < ${TARGETS.propagationP99Ms} ms: ${ms(prop.propagation.p99)} ${verdict(prop.propagation.p99, TARGETS.propagationP99Ms)}`)
  console.log(`  fan-out to ${settings.connections} connections p99 < ${TARGETS.fanoutP99Ms} ms: ${ms(fan.p99)} ${verdict(fan.p99, TARGETS.fanoutP99Ms)}`)
  console.log(`  restart with ${settings.connections} reconnecting stays responsive (every GET /api/routes after ready answered 200): ` +
    `${restartOk ? 'PASS' : 'FAIL'}, max ${ms(stormLatency.max)}; all back in ${ms(tAll - tUp)}`)
  if (QUICK) console.log('QUICK run: fewer changes and rounds; the figures are rough.')

  const out = join(BENCH_DIR, 'results')
  mkdirSync(out, { recursive: true })
  const path = join(out, `${startedAt.toISOString().replace(/[:.]/g, '-')}-fleet.json`)
  writeFileSync(path, JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    settings,
    targets: TARGETS,
    loadAverage: { before: loadBefore, after: loadavg() },
    propagation: prop,
    fanout: { connectMs, firstChangeRestMs: backlogMs, settleMs: drainMs, rssPerConnection, heapPerConnection, rssBefore: before.rss, rssAfter: after.rss, delivery: fan, perRound },
    restart: {
      stopMs: tDown - tStop,
      startMs: tUp - tDown,
      allConnectedAfterReadyMs: tAll - tUp,
      allConnectedAfterStopMs: tAll - tStop,
      perConnectionAfterReady: reconnectDelays,
      streamConnects: count1.byKind.events ?? 0,
      requestsByKind: count1.byKind,
      requestsBetweenReadyAndAllConnected: count1.requests - count0.requests,
      reconnectAttempts: reconnects,
      routesProbe: { storm: stormLatency, beforeRestart: quiet, failedAfterReady: failedAfterUp.length, probes: probes.length },
      nextChange: followed
    }
  }, null, 2) + '\n')
  console.log(`results: ${relative(process.cwd(), path)}`)
}

main().then(() => process.exit(0), err => {
  console.error(`\nfleet bench FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exit(1)
})
