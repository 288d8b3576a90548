import { createHash, randomUUID } from 'node:crypto'
import type { WaygateBackend } from '../backends/types.js'
import type { WaygateLogger } from '../logger.js'
import { createSpaceSaving, mergeSummaries, type CallerCount, type SketchSummary, type SpaceSavingSketch } from './space-saving.js'

/** An hour, the bucket of the sliding day. */
export const HOUR_MS = 3_600_000
/** Hourly buckets merged on read: the current hour and the 23 before it. */
export const CALLER_WINDOW_HOURS = 24
/** Default slots of each route's hourly sketch. */
export const DEFAULT_CALLER_SLOTS = 200

/** When the stored sketch of the hour starting at `hour` stops counting: the window and one hour more. */
export function callerSketchExpiry (hour: number): number {
  return hour + (CALLER_WINDOW_HOURS + 1) * HOUR_MS
}

/** The backend namespace of one route's published sketches. */
export function callersNamespace (key: string): string {
  const ns = `callers:${key}`
  // record namespaces hold at most 200 characters
  return ns.length <= 200 ? ns : `callers#${createHash('sha256').update(key).digest('base64url')}`
}

/** The callers of one route, counted by this process. Created on the route's first deprecated request. */
export interface RouteCallers {
  readonly key: string
  /** Counts one request of `id` (from a key extractor: already bounded in length). */
  add(id: string): void
}

/** Options of {@link createCallerTracker}. */
export interface CallerTrackerOptions {
  backend: WaygateBackend
  now: () => number
  logger?: WaygateLogger
  /** Slots per route and hour. Default 200: counts are off by at most 0.5 % of the requests counted. */
  slots?: number
  /** How often this process publishes its current sketches to the backend, in ms; 0: only on `publish()`. Default 15000. */
  publishIntervalMs?: number
  /** Names this process's records. Default a random UUID. */
  instanceId?: string
}

/** The merged top callers of a route over the sliding day. */
export interface CallersReport {
  key: string
  /** Requests counted in the window, every instance together. */
  total: number
  /** Slots per sketch: each count is within `total / slots` of the truth. */
  slots: number
  /** The window: from the start of the oldest hour merged (ISO) to now. */
  since: string
  until: string
  /** Sketches merged (instances × hours). */
  sketches: number
  callers: Array<{ id: string, count: number, error: number, lastSeen: string }>
}

/** Counts the callers of deprecated routes in hourly Space-Saving sketches and publishes them to the backend. */
export interface CallerTracker {
  readonly instanceId: string
  readonly slots: number
  /** The counter of one route (the same object for the same key). */
  route(key: string): RouteCallers
  /** Writes the sketches changed since the last publish to the backend. Never rejects. */
  publish(): Promise<void>
  /** The merged top `limit` callers (default 50) of `key` over the last 24 hours, every instance's. */
  read(key: string, options?: { limit?: number }): Promise<CallersReport>
  /** Publishes one last time and stops the timer. */
  close(): Promise<void>
}

interface RouteCounter {
  key: string
  sketch: SpaceSavingSketch | null
  /** Start of the hour the sketch counts (epoch ms). */
  hour: number
  dirty: boolean
  /** Hours that ended and are not published yet. */
  finished: Array<{ hour: number, summary: SketchSummary }>
  add(id: string): void
}

function summaryOf (sketch: SpaceSavingSketch): SketchSummary {
  return { total: sketch.total, capacity: sketch.capacity, entries: sketch.entries() }
}

function isSummary (value: unknown): value is SketchSummary & { hour: number } {
  if (value === null || typeof value !== 'object') return false
  const v = value as Record<string, unknown>
  return typeof v.total === 'number' && typeof v.capacity === 'number' && typeof v.hour === 'number' && Array.isArray(v.entries) &&
    v.entries.every(e => e !== null && typeof e === 'object' && typeof e.id === 'string' && typeof e.count === 'number' &&
      typeof e.error === 'number' && typeof e.lastSeen === 'number')
}

/**
 * Creates the tracker of deprecated routes' callers. Each route counts in a sketch of the current
 * hour (allocated on its first request, reused every hour); every `publishIntervalMs` the changed
 * sketches go to the backend as records `callers:<key>` / `<instance>:<hour>` that expire when
 * their hour leaves the window, so instances sharing a backend (Redis) see each other's, and a
 * read merges the hours of the last day from all of them.
 */
export function createCallerTracker (options: CallerTrackerOptions): CallerTracker {
  const { backend, now } = options
  const slots = options.slots ?? DEFAULT_CALLER_SLOTS
  if (!Number.isInteger(slots) || slots < 1 || slots > 10_000) throw new RangeError('callers.slots must be an integer from 1 to 10000')
  const interval = options.publishIntervalMs ?? 15_000
  if (!Number.isInteger(interval) || interval < 0) throw new RangeError('callers.publishIntervalMs must be a non-negative integer')
  const instanceId = options.instanceId ?? randomUUID()
  const routes = new Map<string, RouteCounter>()
  let publishing: Promise<void> | null = null
  let closed = false

  function rotate (state: RouteCounter, t: number): void {
    const sketch = state.sketch!
    if (sketch.total > 0) state.finished.push({ hour: state.hour, summary: summaryOf(sketch) })
    sketch.clear()
    state.hour = t - (t % HOUR_MS)
    state.dirty = false
  }

  function route (key: string): RouteCallers {
    let state = routes.get(key)
    if (state !== undefined) return state
    const s: RouteCounter = {
      key,
      sketch: null,
      hour: 0,
      dirty: false,
      finished: [],
      add (id) {
        const t = now()
        if (s.sketch === null) {
          s.sketch = createSpaceSaving(slots)
          s.hour = t - (t % HOUR_MS)
        } else if (t >= s.hour + HOUR_MS) {
          rotate(s, t)
        }
        s.sketch.add(id, t)
        s.dirty = true
      }
    }
    state = s
    routes.set(key, state)
    return state
  }

  async function put (key: string, hour: number, summary: SketchSummary): Promise<void> {
    await backend.putRecord(callersNamespace(key), `${instanceId}:${hour}`, { key, hour, ...summary },
      { expiresAt: callerSketchExpiry(hour) })
  }

  async function doPublish (): Promise<void> {
    const t = now()
    for (const state of routes.values()) {
      if (state.sketch !== null && t >= state.hour + HOUR_MS) rotate(state, t)
      const finished = state.finished.splice(0)
      const current = state.dirty && state.sketch !== null ? { hour: state.hour, summary: summaryOf(state.sketch) } : null
      state.dirty = false
      try {
        for (const f of finished) await put(state.key, f.hour, f.summary)
        if (current !== null) await put(state.key, current.hour, current.summary)
      } catch (err) {
        // kept for the next attempt; a day's worth at most
        state.finished.unshift(...finished.filter(f => f.hour > t - CALLER_WINDOW_HOURS * HOUR_MS))
        if (current !== null) state.dirty = true
        options.logger?.warn({ err, key: state.key }, 'waygate: publishing the callers of a deprecated route failed; retrying later')
      }
    }
  }

  async function publish (): Promise<void> {
    // one publish at a time; a call during one waits for it and then runs its own
    // eslint-disable-next-line no-unmodified-loop-condition -- doPublish's finally clears it
    while (publishing !== null) await publishing
    publishing = doPublish().finally(() => { publishing = null })
    return publishing
  }

  const timer = interval > 0 ? setInterval(() => { if (!closed) publish().catch(() => {}) }, interval) : null
  timer?.unref()

  return {
    instanceId,
    slots,
    route,
    publish,

    async read (key, readOptions) {
      const limit = readOptions?.limit ?? 50
      const t = now()
      const oldest = t - (t % HOUR_MS) - (CALLER_WINDOW_HOURS - 1) * HOUR_MS
      const records = await backend.listRecords(callersNamespace(key))
      const summaries: SketchSummary[] = []
      for (const record of records) {
        const value = record.value
        if (!isSummary(value) || value.hour < oldest || (value as { key?: unknown }).key !== key) continue
        summaries.push(value)
      }
      const merged = mergeSummaries(summaries, limit)
      return {
        key,
        total: merged.total,
        slots: summaries[0]?.capacity ?? slots,
        since: new Date(oldest).toISOString(),
        until: new Date(t).toISOString(),
        sketches: summaries.length,
        callers: merged.callers.map((c: CallerCount) => ({ id: c.id, count: c.count, error: c.error, lastSeen: new Date(c.lastSeen).toISOString() }))
      }
    },

    async close () {
      if (closed) return
      closed = true
      if (timer !== null) clearInterval(timer)
      await publish()
    }
  }
}

const trackers = new WeakMap<object, CallerTracker>()

/** Makes `tracker` the one the admin of `engine` reads (the Fastify plugin calls it). */
export function setCallerTracker (engine: object, tracker: CallerTracker | null): void {
  if (tracker === null) trackers.delete(engine)
  else trackers.set(engine, tracker)
}

/** The caller tracker serving `engine`, if a plugin registered one. */
export function callerTrackerOf (engine: object): CallerTracker | undefined {
  return trackers.get(engine)
}

/**
 * Reads the merged callers of `key` from a backend without a tracker of one's own (an admin in
 * another process than the app, on the same Redis).
 */
export async function readCallers (backend: WaygateBackend, key: string, now: number, limit = 50): Promise<CallersReport> {
  const reader = createCallerTracker({ backend, now: () => now, publishIntervalMs: 0 })
  return reader.read(key, { limit })
}
