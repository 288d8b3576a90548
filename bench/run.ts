/**
 * `pnpm bench`: server CPU per request of each configuration X, measured side by side with bare
 * Fastify (A) at the same fixed rate, as a ratio X/A; then saturation throughput and p99 as
 * context. Method: /work/shared/BENCHMARKING.md; how to read the output: bench/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon, { type Instance, type Result } from 'autocannon'

const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH_DIR)

// ---------------------------------------------------------------------------------------------
// settings

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`)
  return value
}

const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true'
const settings = {
  quick: QUICK,
  /** Requests per second sent to EACH of A and X during the side-by-side pairs. */
  rate: Math.round(envNumber('BENCH_RATE', 2000)),
  /** Seconds per side-by-side measurement. */
  duration: envNumber('BENCH_DURATION', QUICK ? 2 : 5),
  pairs: Math.round(envNumber('BENCH_PAIRS', QUICK ? 2 : 7)),
  connections: Math.round(envNumber('BENCH_CONNECTIONS', 10)),
  /** Seconds of full-speed load on both servers before anything is measured. */
  warmup: envNumber('BENCH_WARMUP', 1),
  /**
   * Seconds at the measuring rate before the pairs, not measured: for the first 3–5 s of paced load
   * after full-speed load, a server spends 1.5–3× its steady CPU per request (A and X alike).
   */
  settle: envNumber('BENCH_SETTLE', QUICK ? 1.5 : 5),
  /** Seconds per full-speed saturation run. */
  satDuration: envNumber('BENCH_SAT_DURATION', QUICK ? 1 : 3),
  satRounds: Math.round(envNumber('BENCH_SAT_ROUNDS', QUICK ? 2 : 3))
}

/** Target X/A CPU per request, from BENCHMARKING.md. */
interface Target {
  max: number
  why: string
}

interface Case {
  /** Variant started as X (bench/server.ts). */
  variant: string
  label: string
  /** Path requested from both A and X. */
  path: string
  /** The status that counts as a served request. */
  status: number
  target: Target | null
  /** Checks X's answer before measuring; throws when X does not behave as intended. */
  verify: (res: Probe) => void
  /** Backend the server must report, when it matters. */
  backend?: string
}

interface Probe {
  status: number
  headers: Headers
  body: string
}

const ACTIVE_TARGET: Target = { max: 1.05, why: 'lifecycle check on an active or deprecated route' }
const BLOCKED_TARGET: Target = { max: 1.10, why: 'blocked by lifecycle (503)' }
const BODY = JSON.stringify({ hello: 'world', ok: true })

function expectPlain200 (res: Probe): void {
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${res.body}`)
  if (res.body !== BODY) throw new Error(`unexpected body: ${res.body}`)
  if (res.headers.has('deprecation')) throw new Error('unexpected Deprecation header on an active route')
}

function expectDeprecated (res: Probe): void {
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${res.body}`)
  if (res.body !== BODY) throw new Error(`unexpected body: ${res.body}`)
  const deprecation = res.headers.get('deprecation')
  const sunset = res.headers.get('sunset')
  const link = res.headers.get('link')
  if (deprecation === null || !/^@\d+$/.test(deprecation)) throw new Error(`missing or malformed Deprecation header: ${deprecation}`)
  if (sunset === null || Number.isNaN(Date.parse(sunset))) throw new Error(`missing or malformed Sunset header: ${sunset}`)
  if (link === null || !link.includes('rel="successor-version"')) throw new Error(`missing successor Link header: ${link}`)
}

function expectBlocked (res: Probe): void {
  if (res.status !== 503) throw new Error(`expected 503, got ${res.status}: ${res.body}`)
  let code: unknown
  try {
    code = (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code
  } catch {
    throw new Error(`503 body is not JSON: ${res.body}`)
  }
  if (code !== 'MAINTENANCE_MODE') throw new Error(`expected error code MAINTENANCE_MODE, got ${String(code)}`)
}

const CASES: Case[] = [
  { variant: 'bare', label: 'bare (A-vs-A control)', path: '/', status: 200, target: null, verify: expectPlain200 },
  { variant: 'maplookup', label: 'maplookup (floor)', path: '/', status: 200, target: null, verify: expectPlain200 },
  { variant: 'waygate-active', label: 'waygate-active', path: '/', status: 200, target: ACTIVE_TARGET, verify: expectPlain200, backend: 'memory' },
  { variant: 'waygate-deprecated', label: 'waygate-deprecated', path: '/deprecated', status: 200, target: ACTIVE_TARGET, verify: expectDeprecated, backend: 'memory' },
  { variant: 'waygate-blocked', label: 'waygate-blocked', path: '/blocked', status: 503, target: BLOCKED_TARGET, verify: expectBlocked, backend: 'memory' },
  { variant: 'waygate-file', label: 'waygate-file (active)', path: '/', status: 200, target: ACTIVE_TARGET, verify: expectPlain200, backend: 'file' }
]

// ---------------------------------------------------------------------------------------------
// child processes

interface Server {
  variant: string
  port: number
  child: ChildProcess
  base: string
}

const children = new Set<ChildProcess>()
const running = new Set<Instance>()

function killAll (signal: NodeJS.Signals): void {
  for (const instance of running) instance.stop()
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
}

process.on('exit', () => killAll('SIGKILL'))
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping servers`)
    killAll('SIGTERM')
    process.exit(130)
  })
}

class Skipped extends Error {}

function startServer (variant: string): Promise<Server> {
  const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', 'tsx', join(BENCH_DIR, 'server.ts'), variant, '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server ${variant} did not start within 30 s`))
    }, 30_000)
    child.once('error', err => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`server ${variant} exited before it was ready (code ${code}, signal ${signal})`))
    })
    child.once('message', (message: { type?: string, port?: number, reason?: string }) => {
      clearTimeout(timer)
      if (message.type === 'ready' && typeof message.port === 'number') {
        resolve({ variant, port: message.port, child, base: `http://127.0.0.1:${message.port}` })
      } else if (message.type === 'skip') {
        reject(new Skipped(message.reason ?? 'skipped'))
      } else {
        reject(new Error(`server ${variant} sent an unexpected message: ${JSON.stringify(message)}`))
      }
    })
  })
}

async function stopServer (server: Server): Promise<void> {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>(resolve => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

// ---------------------------------------------------------------------------------------------
// measuring

interface CpuReport {
  variant: string
  backend: string
  pid: number
  user: number
  system: number
}

async function readCpu (server: Server): Promise<CpuReport> {
  const res = await fetch(`${server.base}/__cpu`)
  if (res.status !== 200) throw new Error(`${server.variant}: /__cpu answered ${res.status}`)
  return await res.json() as CpuReport
}

async function probe (server: Server, path: string): Promise<Probe> {
  const res = await fetch(`${server.base}${path}`)
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/**
 * Runs autocannon against one server. With `latencies`, every response's latency (ms, fractional)
 * is collected there too: autocannon's own histogram has 1 ms resolution, too coarse for a local p99.
 */
function load (server: Server, path: string, duration: number, rate: number | undefined, latencies?: number[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const options = { url: `${server.base}${path}`, connections: settings.connections, duration, timeout: 10 }
    const instance = autocannon(rate === undefined ? options : { ...options, overallRate: rate }, (err, result) => {
      running.delete(instance)
      if (err !== null) reject(err)
      else resolve(result)
    })
    if (latencies !== undefined) {
      instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => { latencies.push(ms) })
    }
    running.add(instance)
  })
}

function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

/** Responses of the expected status; throws when anything else came back. */
function served (result: Result, status: number, who: string): number {
  const expected = result.statusCodeStats[String(status)]?.count ?? 0
  const other = Object.entries(result.statusCodeStats).filter(([code]) => code !== String(status))
  if (result.errors > 0 || result.timeouts > 0 || other.length > 0) {
    const codes = other.map(([code, { count }]) => `${count}×${code}`).join(', ')
    throw new Error(`${who}: ${expected} responses of the expected ${status}, but also ${codes || 'no other statuses'}, ` +
      `${result.errors} errors, ${result.timeouts} timeouts`)
  }
  if (expected === 0) throw new Error(`${who}: no ${status} responses at all`)
  return expected
}

interface PairSample {
  aCpuUs: number
  xCpuUs: number
  aRequests: number
  xRequests: number
  aUsPerRequest: number
  xUsPerRequest: number
  ratio: number
  aRate: number
  xRate: number
}

async function measurePair (a: Server, x: Server, c: Case, index: number): Promise<PairSample> {
  const [a0, x0] = await Promise.all([readCpu(a), readCpu(x)])
  // both at once; which one is started first alternates, for what it is worth
  let runA: Promise<Result>
  let runX: Promise<Result>
  if (index % 2 === 0) {
    runA = load(a, c.path, settings.duration, settings.rate)
    runX = load(x, c.path, settings.duration, settings.rate)
  } else {
    runX = load(x, c.path, settings.duration, settings.rate)
    runA = load(a, c.path, settings.duration, settings.rate)
  }
  const [ra, rx] = await Promise.all([runA, runX])
  const [a1, x1] = await Promise.all([readCpu(a), readCpu(x)])
  const aRequests = served(ra, 200, `A (bare) on ${c.path}`)
  const xRequests = served(rx, c.status, `X (${c.variant}) on ${c.path}`)
  const aCpuUs = (a1.user + a1.system) - (a0.user + a0.system)
  const xCpuUs = (x1.user + x1.system) - (x0.user + x0.system)
  const aUsPerRequest = aCpuUs / aRequests
  const xUsPerRequest = xCpuUs / xRequests
  return {
    aCpuUs,
    xCpuUs,
    aRequests,
    xRequests,
    aUsPerRequest,
    xUsPerRequest,
    ratio: xUsPerRequest / aUsPerRequest,
    aRate: aRequests / ra.duration,
    xRate: xRequests / rx.duration
  }
}

interface SatSample {
  reqPerSec: number
  p99Ms: number
}

async function saturate (server: Server, path: string, status: number, who: string): Promise<SatSample> {
  const latencies: number[] = []
  const result = await load(server, path, settings.satDuration, undefined, latencies)
  const count = served(result, status, `${who} saturation on ${path}`)
  return { reqPerSec: count / result.duration, p99Ms: percentile(latencies, 0.99) }
}

// ---------------------------------------------------------------------------------------------
// statistics and output

function median (values: number[]): number {
  const sorted = [...values].sort((p, q) => p - q)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

interface Summary {
  median: number
  min: number
  max: number
}

function summarize (values: number[]): Summary {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

interface CaseResult {
  variant: string
  label: string
  path: string
  expectedStatus: number
  target: Target | null
  pairs: PairSample[]
  ratio: Summary
  aUsPerRequest: number
  xUsPerRequest: number
  saturation: { a: SatSample[], x: SatSample[], aReqPerSec: number, xReqPerSec: number, aP99Ms: number, xP99Ms: number }
  versusControl?: 'below' | 'inside' | 'above'
  verdict?: string
}

async function runCase (c: Case): Promise<CaseResult> {
  const started = await Promise.allSettled([startServer('bare'), startServer(c.variant)])
  const up = started.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  try {
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const [a, x] = up as [Server, Server]

    // does each server answer as intended?
    const [aCpu, xCpu] = await Promise.all([readCpu(a), readCpu(x)])
    if (aCpu.variant !== 'bare') throw new Error(`A reports variant ${aCpu.variant}`)
    if (xCpu.variant !== c.variant) throw new Error(`X reports variant ${xCpu.variant}, expected ${c.variant}`)
    if (c.backend !== undefined && xCpu.backend !== c.backend) throw new Error(`${c.variant} runs on backend ${xCpu.backend}, expected ${c.backend}`)
    expectPlain200(await probe(a, c.path))
    try {
      c.verify(await probe(x, c.path))
    } catch (err) {
      throw new Error(`${c.variant} on ${c.path} does not answer as intended: ${(err as Error).message}`)
    }

    // warm-up, not measured: full speed on both at once
    await Promise.all([load(a, c.path, settings.warmup, undefined), load(x, c.path, settings.warmup, undefined)])

    // saturation first (interleaved, one server at a time, order alternating per round), so it also
    // finishes warming both processes before the pairs
    const satA: SatSample[] = []
    const satX: SatSample[] = []
    for (let r = 0; r < settings.satRounds; r++) {
      if (r % 2 === 0) {
        satA.push(await saturate(a, c.path, 200, 'A'))
        satX.push(await saturate(x, c.path, c.status, 'X'))
      } else {
        satX.push(await saturate(x, c.path, c.status, 'X'))
        satA.push(await saturate(a, c.path, 200, 'A'))
      }
    }
    process.stdout.write(`  saturation: A ${Math.round(median(satA.map(s => s.reqPerSec)))} req/s, ` +
      `X ${Math.round(median(satX.map(s => s.reqPerSec)))} req/s\n`)

    // not measured either: the first seconds of paced load after full-speed load cost up to 3× more
    await Promise.all([load(a, c.path, settings.settle, settings.rate), load(x, c.path, settings.settle, settings.rate)])

    const pairs: PairSample[] = []
    for (let i = 0; i < settings.pairs; i++) {
      const sample = await measurePair(a, x, c, i)
      pairs.push(sample)
      const slow = Math.min(sample.aRate, sample.xRate) < settings.rate * 0.9
      process.stdout.write(`  pair ${i + 1}/${settings.pairs}: X/A ${sample.ratio.toFixed(3)} ` +
        `(A ${sample.aUsPerRequest.toFixed(1)} µs/req @ ${Math.round(sample.aRate)}/s, ` +
        `X ${sample.xUsPerRequest.toFixed(1)} µs/req @ ${Math.round(sample.xRate)}/s)` +
        `${slow ? '  WARNING: below 90% of the requested rate, the machine may be saturated' : ''}\n`)
    }
    const ratio = summarize(pairs.map(p => p.ratio))
    return {
      variant: c.variant,
      label: c.label,
      path: c.path,
      expectedStatus: c.status,
      target: c.target,
      pairs,
      ratio,
      aUsPerRequest: median(pairs.map(p => p.aUsPerRequest)),
      xUsPerRequest: median(pairs.map(p => p.xUsPerRequest)),
      saturation: {
        a: satA,
        x: satX,
        aReqPerSec: median(satA.map(s => s.reqPerSec)),
        xReqPerSec: median(satX.map(s => s.reqPerSec)),
        aP99Ms: median(satA.map(s => s.p99Ms)),
        xP99Ms: median(satX.map(s => s.p99Ms))
      }
    }
  } finally {
    await Promise.all(up.map(stopServer))
  }
}

function pad (text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width)
}

function table (rows: string[][], rightAligned: Set<number>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  const line = (r: string[]): string => r.map((cell, i) => pad(cell, widths[i]!, rightAligned.has(i))).join('  ')
  return [line(rows[0]!), widths.map(w => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/**
 * The control band: A and A are identical, so their true ratio is 1 and every pair's deviation from
 * 1 is noise. The band is 1 ± the largest such deviation.
 */
interface Band {
  halfWidth: number
  pairs: Summary
}

function judge (results: CaseResult[]): Band | null {
  const control = results.find(r => r.variant === 'bare')
  const band = control === undefined
    ? null
    : { halfWidth: Math.max(...control.pairs.map(p => Math.abs(p.ratio - 1))), pairs: control.ratio }
  for (const r of results) {
    if (band !== null && r !== control) {
      const m = r.ratio.median
      r.versusControl = m > 1 + band.halfWidth ? 'above' : m < 1 - band.halfWidth ? 'below' : 'inside'
    }
    if (r.target === null) continue
    if (r.ratio.median <= r.target.max) r.verdict = 'PASS'
    else if (band !== null && r.ratio.median <= 1 + band.halfWidth) r.verdict = 'PASS (noise)'
    else r.verdict = 'OVER'
  }
  return band
}

function report (results: CaseResult[], skipped: Array<{ variant: string, reason: string }>): Band | null {
  const band = judge(results)
  const f2 = (n: number): string => n.toFixed(2)
  const rows = [['X', 'X/A CPU/req', 'min–max', 'µs/req A / X', 'vs control', 'sat req/s A / X', 'p99 ms A / X', 'target', 'verdict']]
  for (const r of results) {
    rows.push([
      r.label,
      r.ratio.median.toFixed(3),
      `${f2(r.ratio.min)}–${f2(r.ratio.max)}`,
      `${r.aUsPerRequest.toFixed(1)} / ${r.xUsPerRequest.toFixed(1)}`,
      r.versusControl ?? (r.variant === 'bare' && band !== null ? `±${f2(band.halfWidth)}` : '?'),
      `${Math.round(r.saturation.aReqPerSec)} / ${Math.round(r.saturation.xReqPerSec)}`,
      `${r.saturation.aP99Ms.toFixed(2)} / ${r.saturation.xP99Ms.toFixed(2)}`,
      r.target === null ? '—' : `≤ ${f2(r.target.max)}`,
      r.verdict ?? '—'
    ])
  }
  for (const s of skipped) rows.push([s.variant, 'skipped', '', '', '', '', '', '', s.reason])
  console.log(`\nwaygate benchmark — ${settings.pairs} pairs × ${settings.duration} s at ${settings.rate} req/s to each of A and X, ` +
    `${settings.connections} connections; saturation ${settings.satRounds} × ${settings.satDuration} s interleaved`)
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ` +
    `load average now ${loadavg().map(l => l.toFixed(2)).join(' ')}\n`)
  console.log(table(rows, new Set([1, 2, 3, 5, 6])))
  if (settings.quick) console.log('\nQUICK run: a smoke test that everything answers as intended; too few pairs to judge by.')
  console.log('\nTargets (BENCHMARKING.md, X/A CPU per request, median):')
  console.log(`  ≤ ${f2(ACTIVE_TARGET.max)}  ${ACTIVE_TARGET.why} (waygate-active, waygate-deprecated, waygate-file)`)
  console.log(`  ≤ ${f2(BLOCKED_TARGET.max)}  ${BLOCKED_TARGET.why} (waygate-blocked)`)
  if (band !== null) {
    const lo = f2(1 - band.halfWidth)
    const hi = f2(1 + band.halfWidth)
    console.log(`A-vs-A control band: ${lo}–${hi} (1 ± the largest deviation of an A/A pair, ` +
      `which ranged ${f2(band.pairs.min)}–${f2(band.pairs.max)}); a median inside it is "no measurable cost".`)
    console.log(`Verdict: PASS = median ≤ target; PASS (noise) = above target but ≤ ${hi}; OVER = above both.`)
    if (band.halfWidth > 0.10) {
      console.log('WARNING: the control band is wider than ±10%: this run was noisier than usual, ' +
        'rerun (or raise BENCH_PAIRS) before trusting verdicts.')
    }
  }
  return band
}

// ---------------------------------------------------------------------------------------------

function selectedCases (): Case[] {
  const only = process.env.BENCH_ONLY
  if (only === undefined || only === '') return CASES
  const wanted = new Set(only.split(',').map(s => s.trim()))
  wanted.add('bare') // the control always runs
  const unknown = [...wanted].filter(v => !CASES.some(c => c.variant === v))
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown variant(s) ${unknown.join(', ')}`)
  return CASES.filter(c => wanted.has(c.variant))
}

async function main (): Promise<void> {
  const startedAt = new Date()
  const cases = selectedCases()
  const loadBefore = loadavg()
  console.log(`waygate bench${settings.quick ? ' (quick)' : ''}: ${JSON.stringify(settings)}`)
  if (loadBefore[0]! > availableParallelism() / 2) {
    console.log(`NOTE: load average is ${loadBefore[0]!.toFixed(2)} before starting: something else is busy, expect a wide control band`)
  }
  const results: CaseResult[] = []
  const skipped: Array<{ variant: string, reason: string }> = []
  let failure: Error | null = null
  let band: Band | null = null
  try {
    for (const c of cases) {
      console.log(`\n${c.label}: A = bare, X = ${c.variant}, GET ${c.path}, expecting ${c.status}`)
      const t0 = performance.now()
      try {
        results.push(await runCase(c))
        console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s, load average ${loadavg()[0]!.toFixed(2)})`)
      } catch (err) {
        if (!(err instanceof Skipped)) throw err
        console.log(`  SKIPPED: ${err.message}`)
        skipped.push({ variant: c.variant, reason: err.message })
      }
    }
    band = report(results, skipped)
  } catch (err) {
    failure = err as Error
  }

  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    settings,
    loadAverage: { before: loadBefore, after: loadavg() },
    targets: { activeOrDeprecated: ACTIVE_TARGET.max, blocked: BLOCKED_TARGET.max },
    controlBand: band === null ? null : { low: 1 - band.halfWidth, high: 1 + band.halfWidth, pairs: band.pairs },
    results,
    skipped,
    error: failure === null ? null : failure.message
  }, null, 2) + '\n')
  console.log(`\nresults: ${relative(process.cwd(), file)}`)
  if (failure !== null) throw failure
}

main().then(() => {
  killAll('SIGTERM')
  process.exit(0)
}, err => {
  console.error(`\nbench FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  killAll('SIGTERM')
  process.exit(1)
})
