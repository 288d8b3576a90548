/**
 * A Space-Saving top-k sketch (Metwally, Agrawal, El Abbadi 2005): `capacity` slots, each an id
 * with a count, the error that count may carry and the time the id was last seen.
 *
 * A new id takes a free slot, else the slot with the smallest count, inheriting that count (plus
 * one) as its error. Hence, after N counted requests: every count overestimates the id's true count
 * by at most its `error`, which is at most the smallest count and so at most N / capacity; and every
 * id seen more than N / capacity times holds a slot. Memory is fixed: the slots are typed arrays
 * allocated once, and the only other storage is the index from id to slot.
 */
export interface SpaceSavingSketch {
  readonly capacity: number
  /** Requests counted since the last `clear()`. */
  readonly total: number
  /** Slots in use. */
  readonly size: number
  /** Counts one request of `id` at `at` (epoch ms). Allocates nothing but the index entry of an id taking a slot. */
  add(id: string, at: number): void
  /** Forgets every id, keeping the slots. */
  clear(): void
  /** The slots in use, highest count first (ties: most recently seen first). */
  entries(): CallerCount[]
}

/** One id of a sketch, or of a merge of sketches. */
export interface CallerCount {
  /** The caller: an address, a user id, an API key (hashed when long), a custom key. */
  id: string
  /** Estimated requests. From one sketch an overestimate: the true count is from `count - error` to `count`. */
  count: number
  /**
   * How far `count` may be from the true count. From one sketch it is all overestimate; from a
   * merge it also covers what full sketches not holding the id may have counted of it.
   */
  error: number
  /** Last request seen, epoch ms. */
  lastSeen: number
}

/** Creates a sketch with `capacity` slots (1 to 100 000). */
export function createSpaceSaving (capacity: number): SpaceSavingSketch {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 100_000) throw new RangeError('capacity must be an integer from 1 to 100000')
  const ids: string[] = new Array<string>(capacity).fill('')
  const counts = new Float64Array(capacity)
  const errors = new Float64Array(capacity)
  const seen = new Float64Array(capacity)
  // a binary min-heap of slot numbers by count, and each slot's place in it
  const heap = new Int32Array(capacity)
  const place = new Int32Array(capacity)
  const index = new Map<string, number>()
  let size = 0
  let total = 0

  function swap (i: number, j: number): void {
    const a = heap[i]!
    const b = heap[j]!
    heap[i] = b
    heap[j] = a
    place[b] = i
    place[a] = j
  }

  // a count only grows, so a slot only ever moves down
  function siftDown (i: number): void {
    for (;;) {
      const l = 2 * i + 1
      if (l >= size) return
      const r = l + 1
      let m = l
      if (r < size && counts[heap[r]!]! < counts[heap[l]!]!) m = r
      if (counts[heap[m]!]! >= counts[heap[i]!]!) return
      swap(i, m)
      i = m
    }
  }

  function siftUp (i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1
      if (counts[heap[p]!]! <= counts[heap[i]!]!) return
      swap(i, p)
      i = p
    }
  }

  return {
    capacity,
    get total () { return total },
    get size () { return size },

    add (id, at) {
      total++
      const slot = index.get(id)
      if (slot !== undefined) {
        counts[slot]!++
        if (at > seen[slot]!) seen[slot] = at
        siftDown(place[slot]!)
        return
      }
      if (size < capacity) {
        const s = size
        ids[s] = id
        counts[s] = 1
        errors[s] = 0
        seen[s] = at
        heap[size] = s
        place[s] = size
        size++
        index.set(id, s)
        siftUp(size - 1)
        return
      }
      // the smallest slot goes to the newcomer, which may have been counted there before
      const s = heap[0]!
      index.delete(ids[s]!)
      ids[s] = id
      errors[s] = counts[s]!
      counts[s]!++
      seen[s] = at
      index.set(id, s)
      siftDown(0)
    },

    clear () {
      index.clear()
      size = 0
      total = 0
      ids.fill('')
    },

    entries () {
      const out: CallerCount[] = []
      for (let s = 0; s < size; s++) out.push({ id: ids[s]!, count: counts[s]!, error: errors[s]!, lastSeen: seen[s]! })
      return sortCallers(out)
    }
  }
}

/** Sorts highest count first, then most recently seen, then by id (so equal inputs give equal output). */
export function sortCallers (list: CallerCount[]): CallerCount[] {
  return list.sort((a, b) => b.count - a.count || b.lastSeen - a.lastSeen || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** A sketch as it is published and merged: its slots and what it counted. */
export interface SketchSummary {
  /** Requests counted. */
  total: number
  /** Slots of the sketch (the capacity): when `entries` fills them, an id absent from it may have been counted up to the smallest count. */
  capacity: number
  entries: CallerCount[]
}

/**
 * Merges summaries (hourly sketches, other instances' sketches) into the `limit` highest counts.
 * An id's count is the sum of its counts where it appears; a full summary it is absent from may
 * have counted it up to its smallest count, which is added to the id's error. Each summary adds at
 * most its smallest count (≤ its N_i / k) to an error, so with N requests counted in all and every
 * summary of capacity k, each error stays at most N / k: the bound of one sketch that saw everything.
 */
export function mergeSummaries (summaries: readonly SketchSummary[], limit: number): { total: number, callers: CallerCount[] } {
  const merged = new Map<string, CallerCount>()
  let total = 0
  let slack = 0
  for (const summary of summaries) {
    total += summary.total
    let floor = 0
    if (summary.entries.length >= summary.capacity && summary.entries.length > 0) {
      floor = Infinity
      for (const e of summary.entries) if (e.count < floor) floor = e.count
    }
    slack += floor
    for (const e of summary.entries) {
      const known = merged.get(e.id)
      if (known === undefined) {
        merged.set(e.id, { id: e.id, count: e.count, error: e.error - floor, lastSeen: e.lastSeen })
      } else {
        known.count += e.count
        // the floor of this summary is not slack for an id it holds
        known.error += e.error - floor
        if (e.lastSeen > known.lastSeen) known.lastSeen = e.lastSeen
      }
    }
  }
  const callers: CallerCount[] = []
  for (const m of merged.values()) {
    m.error += slack
    callers.push(m)
  }
  return { total, callers: sortCallers(callers).slice(0, Math.max(0, limit)) }
}
