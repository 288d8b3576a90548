/**
 * What happened to a request, as waygate decided it: served (`passed`, `deprecated`) or refused,
 * and why. The order is the index each outcome has in a route's counters.
 */
export const TRAFFIC_OUTCOMES = [
  'passed',
  'deprecated',
  'maintenance',
  'disabled',
  'env_gated',
  'sunset',
  'brownout',
  'rate_limited',
  'global_maintenance'
] as const

/** One of {@link TRAFFIC_OUTCOMES}. */
export type TrafficOutcome = typeof TRAFFIC_OUTCOMES[number]

/** The index of each outcome in a route's counters, for the request path (no string lookups). */
export const OUTCOME_INDEX: Readonly<Record<TrafficOutcome, number>> = Object.freeze(
  Object.fromEntries(TRAFFIC_OUTCOMES.map((o, i) => [o, i])) as Record<TrafficOutcome, number>)

/** The outcomes that refused the request. */
export const BLOCKED_OUTCOMES: readonly TrafficOutcome[] = TRAFFIC_OUTCOMES.filter(o => o !== 'passed' && o !== 'deprecated')

const K = TRAFFIC_OUTCOMES.length
const MINUTE = 60_000

/** The two ranges a route's traffic is kept for. */
export type TrafficRange = 'hour' | 'day'

interface Ring {
  /** Bucket length, ms. */
  size: number
  /** Number of buckets. */
  length: number
}

/** 60 one-minute buckets (the last hour) and 288 five-minute buckets (the last 24 hours). */
export const TRAFFIC_RINGS: Readonly<Record<TrafficRange, Ring>> = Object.freeze({
  hour: Object.freeze({ size: MINUTE, length: 60 }),
  day: Object.freeze({ size: 5 * MINUTE, length: 288 })
})

/** One bucket of a route's traffic. */
export interface TrafficBucket {
  /** Start of the bucket, ISO 8601. */
  start: string
  /** Requests decided in it, served or refused. */
  requests: number
  /** Requests refused (every outcome but `passed` and `deprecated`). */
  blocked: number
  /** Requests by outcome; outcomes with no request are left out. */
  outcomes: Partial<Record<TrafficOutcome, number>>
}

/** A route's traffic over one range, oldest bucket first, every bucket of the range present. */
export interface TrafficReport {
  key: string
  range: TrafficRange
  bucketSeconds: number
  buckets: TrafficBucket[]
  totals: {
    requests: number
    blocked: number
    /** Every outcome, zeros included. */
    outcomes: Record<TrafficOutcome, number>
  }
}

/**
 * The counters of one route. `add` is what the request path calls: two divisions, two compares
 * and two increments into preallocated typed arrays, no allocation. A bucket is claimed by the
 * period it holds, so a route that was quiet for hours needs no catching up: a stale bucket is
 * cleared when it is reused, and ignored when read.
 */
export class RouteTraffic {
  readonly key: string
  private readonly now: () => number
  // the rings are allocated on the first request: routes never called cost a few fields
  private minutes: Uint32Array | null = null
  private minuteOf: Float64Array | null = null
  private fives: Uint32Array | null = null
  private fiveOf: Float64Array | null = null

  constructor (key: string, now: () => number) {
    this.key = key
    this.now = now
  }

  /** Counts one request with outcome `index` (see {@link OUTCOME_INDEX}). */
  add (index: number): void {
    let minutes = this.minutes
    if (minutes === null) minutes = this.allocate()
    const m = Math.floor(this.now() / MINUTE)
    const ms = m % 60
    const minuteOf = this.minuteOf!
    if (minuteOf[ms] !== m) {
      minuteOf[ms] = m
      minutes.fill(0, ms * K, ms * K + K)
    }
    const at = ms * K + index
    minutes[at] = minutes[at]! + 1
    const f = Math.floor(m / 5)
    const fs = f % 288
    const fives = this.fives!
    const fiveOf = this.fiveOf!
    if (fiveOf[fs] !== f) {
      fiveOf[fs] = f
      fives.fill(0, fs * K, fs * K + K)
    }
    const fat = fs * K + index
    fives[fat] = fives[fat]! + 1
  }

  private allocate (): Uint32Array {
    this.minutes = new Uint32Array(60 * K)
    this.minuteOf = new Float64Array(60).fill(-1)
    this.fives = new Uint32Array(288 * K)
    this.fiveOf = new Float64Array(288).fill(-1)
    return this.minutes
  }

  /** Requests in the current one-minute bucket: a cheap change marker for live views. */
  currentMinute (): number {
    if (this.minutes === null) return 0
    const m = Math.floor(this.now() / MINUTE)
    const ms = m % 60
    if (this.minuteOf![ms] !== m) return 0
    let sum = 0
    for (let i = 0; i < K; i++) sum += this.minutes[ms * K + i]!
    return sum
  }

  /** Requests and refusals over `range`, without the buckets (cheap: no allocation but the result). */
  totals (range: TrafficRange = 'hour'): { requests: number, blocked: number } {
    const ring = TRAFFIC_RINGS[range]
    const counts = range === 'hour' ? this.minutes : this.fives
    const periods = range === 'hour' ? this.minuteOf : this.fiveOf
    let requests = 0
    let blocked = 0
    if (counts === null) return { requests, blocked }
    const current = Math.floor(this.now() / ring.size)
    for (let slot = 0; slot < ring.length; slot++) {
      const p = periods![slot]!
      if (p > current || p <= current - ring.length) continue
      for (let i = 0; i < K; i++) {
        const n = counts[slot * K + i]!
        requests += n
        if (i >= 2) blocked += n
      }
    }
    return { requests, blocked }
  }

  /**
   * The live buckets of `range` that hold a request, for another process to merge with
   * {@link absorb}: `[period, ...counts]` each, `period` the bucket's start divided by its length,
   * the counts in {@link TRAFFIC_OUTCOMES} order.
   */
  export (range: TrafficRange): number[][] {
    const ring = TRAFFIC_RINGS[range]
    const counts = range === 'hour' ? this.minutes : this.fives
    const periods = range === 'hour' ? this.minuteOf : this.fiveOf
    const out: number[][] = []
    if (counts === null) return out
    const current = Math.floor(this.now() / ring.size)
    for (let slot = 0; slot < ring.length; slot++) {
      const p = periods![slot]!
      if (p > current || p <= current - ring.length) continue
      const row = [p]
      let any = false
      for (let i = 0; i < K; i++) {
        const n = counts[slot * K + i]!
        row.push(n)
        if (n > 0) any = true
      }
      if (any) out.push(row)
    }
    return out.sort((a, b) => a[0]! - b[0]!)
  }

  /**
   * Adds buckets another process exported (see {@link export}) to this route's rings. `columns`
   * maps each count's position to an outcome index (-1: an outcome this version does not know,
   * skipped). Buckets outside the range's window, now, are ignored.
   */
  absorb (range: TrafficRange, buckets: readonly (readonly number[])[], columns: readonly number[]): void {
    if (this.minutes === null) this.allocate()
    const ring = TRAFFIC_RINGS[range]
    const counts = range === 'hour' ? this.minutes! : this.fives!
    const periods = range === 'hour' ? this.minuteOf! : this.fiveOf!
    const current = Math.floor(this.now() / ring.size)
    for (const row of buckets) {
      const p = row[0]!
      if (!Number.isInteger(p) || p > current || p <= current - ring.length) continue
      const slot = p % ring.length
      if (periods[slot] !== p) {
        periods[slot] = p
        counts.fill(0, slot * K, slot * K + K)
      }
      for (let c = 0; c < columns.length && c + 1 < row.length; c++) {
        const index = columns[c]!
        const n = row[c + 1]!
        if (index >= 0 && index < K && n > 0) counts[slot * K + index] = counts[slot * K + index]! + n
      }
    }
  }

  /** The latest minute that holds a request and its count: changes whenever a request is counted. */
  marker (): string {
    if (this.minutes === null) return ''
    let latest = -1
    let slot = -1
    for (let s = 0; s < 60; s++) {
      if (this.minuteOf![s]! > latest) {
        latest = this.minuteOf![s]!
        slot = s
      }
    }
    let sum = 0
    for (let i = 0; i < K; i++) sum += this.minutes[slot * K + i]!
    return `${latest}.${sum}`
  }

  /** The route's traffic over `range`, ending with the bucket that holds now. */
  report (range: TrafficRange = 'hour'): TrafficReport {
    const ring = TRAFFIC_RINGS[range]
    const counts = range === 'hour' ? this.minutes : this.fives
    const periods = range === 'hour' ? this.minuteOf : this.fiveOf
    const current = Math.floor(this.now() / ring.size)
    const outcomes = Object.fromEntries(TRAFFIC_OUTCOMES.map(o => [o, 0])) as Record<TrafficOutcome, number>
    const buckets: TrafficBucket[] = []
    let requests = 0
    let blocked = 0
    for (let p = current - ring.length + 1; p <= current; p++) {
      const bucket: TrafficBucket = { start: new Date(p * ring.size).toISOString(), requests: 0, blocked: 0, outcomes: {} }
      const slot = ((p % ring.length) + ring.length) % ring.length
      if (counts !== null && periods![slot] === p) {
        for (let i = 0; i < K; i++) {
          const n = counts[slot * K + i]!
          if (n === 0) continue
          const outcome = TRAFFIC_OUTCOMES[i]!
          bucket.outcomes[outcome] = n
          bucket.requests += n
          if (i >= 2) bucket.blocked += n
          outcomes[outcome] += n
        }
        requests += bucket.requests
        blocked += bucket.blocked
      }
      buckets.push(bucket)
    }
    return { key: this.key, range, bucketSeconds: ring.size / 1000, buckets, totals: { requests, blocked, outcomes } }
  }
}

/** Options of {@link createTrafficRecorder}. */
export interface TrafficRecorderOptions {
  /** The clock (epoch ms). Default `Date.now`. */
  now?: () => number
}

/**
 * Per-route traffic of this process, kept in fixed-size rings: requests and refusals by outcome
 * per minute for the last hour and per five minutes for the last day. Nothing is kept per client,
 * so memory is bounded by the number of routes (about 15 KiB for each route that got a request).
 */
export interface TrafficRecorder {
  /** The counters of a route key, created on first use: take it once, when the route is added. */
  route (key: string): RouteTraffic
  /** The counters of a route key if it has any. */
  get (key: string): RouteTraffic | undefined
  /** Every route key with counters. */
  keys (): string[]
  /** Changes when requests were counted in the current minute, or the minute turned: for live views; recomputed at most every 5 s. */
  version (): string
  readonly now: () => number
  /** Whose requests these are, for the page that shows them. Default `this process`. */
  readonly scope?: string
}

/** Creates a traffic recorder; the waygate Fastify plugin makes one and feeds it. */
export function createTrafficRecorder (options: TrafficRecorderOptions = {}): TrafficRecorder {
  const now = options.now ?? Date.now
  const routes = new Map<string, RouteTraffic>()
  let versionAt = -Infinity
  let versionText = ''
  return {
    now,
    route (key) {
      let traffic = routes.get(key)
      if (traffic === undefined) {
        traffic = new RouteTraffic(key, now)
        routes.set(key, traffic)
      }
      return traffic
    },
    get: key => routes.get(key),
    keys: () => [...routes.keys()],
    version () {
      // recomputed at most every 5 s: a page polling it refreshes no more often than that
      const t = now()
      if (t - versionAt < 5000 && t >= versionAt) return versionText
      let sum = 0
      for (const traffic of routes.values()) sum += traffic.currentMinute()
      versionAt = t
      versionText = `${Math.floor(t / MINUTE)}.${sum}`
      return versionText
    }
  }
}

/** One process's per-route traffic as it is sent elsewhere (a Waygate Server): every route's rings, exported. */
export interface TrafficPush {
  /** What each count of a bucket is, in order: {@link TRAFFIC_OUTCOMES}. */
  outcomes: string[]
  routes: Array<{ key: string, hour: number[][], day: number[][] }>
}

/** Options of {@link startTrafficPublisher}. */
export interface TrafficPublisherOptions {
  traffic: TrafficRecorder
  /** Sends a report; a rejection keeps what it held for the next one. */
  publish: (push: TrafficPush) => Promise<void>
  /** How often, ms. */
  intervalMs: number
  /** Which route keys are sent. Default all. */
  include?: (key: string) => boolean
  /** Every this many reports, every route with traffic goes, changed or not (a server that restarted has the day back). Default 6. */
  fullEvery?: number
  /** Called with a failed report's error. */
  onError?: (err: unknown) => void
}

/** A running publisher: `flush()` sends what changed now; `close()` stops it after a last flush. */
export interface TrafficPublisher {
  flush(): Promise<void>
  close(): Promise<void>
}

/**
 * Sends this process's traffic every `intervalMs`: the routes counted since the last report
 * that got through (and every route now and then), each with its whole rings, so the receiver
 * replaces rather than adds and a report sent twice counts once. Off the request path: it reads
 * the rings on a timer, the requests only increment them.
 */
export function startTrafficPublisher (options: TrafficPublisherOptions): TrafficPublisher {
  const { traffic, publish, intervalMs, include = () => true, fullEvery = 6, onError } = options
  const sent = new Map<string, string>()
  let round = 0
  let running: Promise<void> | null = null
  let closed = false

  async function send (): Promise<void> {
    const full = round++ % fullEvery === 0
    const routes: TrafficPush['routes'] = []
    const markers: Array<[string, string]> = []
    for (const key of traffic.keys()) {
      if (!include(key)) continue
      const route = traffic.get(key)!
      const marker = route.marker()
      if (marker === '' || (!full && sent.get(key) === marker)) continue
      const hour = route.export('hour')
      const day = route.export('day')
      if (day.length === 0) continue
      routes.push({ key, hour, day })
      markers.push([key, marker])
    }
    if (routes.length === 0) return
    try {
      await publish({ outcomes: [...TRAFFIC_OUTCOMES], routes })
      for (const [key, marker] of markers) sent.set(key, marker)
    } catch (err) {
      // sent again with the next report, which goes whole
      round = 0
      onError?.(err)
    }
  }

  function flush (): Promise<void> {
    running ??= send().finally(() => { running = null })
    return running
  }

  const timer = setInterval(() => { if (!closed) flush().catch(() => {}) }, intervalMs)
  timer.unref()
  return {
    flush,
    async close () {
      if (closed) return
      closed = true
      clearInterval(timer)
      await running
      await flush()
    }
  }
}
