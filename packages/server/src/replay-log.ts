import type { BackendRecord, GlobalMaintenance, RouteState } from '@waygate/core'

/** A change services may need to hear of, as the server stores it (keys and ids qualified). */
export type ServerChange =
  | { type: 'route', state: RouteState }
  | { type: 'route_deleted', key: string }
  | { type: 'global', global: GlobalMaintenance }
  | { type: 'service', service: string, maintenance: GlobalMaintenance }
  | { type: 'record', namespace: string, id: string, record: BackendRecord | null }

/** A change with the backend revision it was stored at. */
export interface LoggedChange {
  revision: number
  change: ServerChange
}

/**
 * The newest changes, for streams that resume: a client that held revision `r` is sent what came
 * after `r` when the log still covers it, else a fresh snapshot.
 */
export interface ReplayLog {
  /** Every change after this revision is in the log (or was not one services hear of). */
  readonly coveredFrom: number
  /** Revision of the newest logged change, or `coveredFrom` when there is none. */
  readonly newest: number
  readonly size: number
  /** Logs a change; one not newer than the newest logged is ignored (a repeat). */
  append(entry: LoggedChange): boolean
  /** The changes after `revision`, oldest first; null when the log no longer reaches back that far. */
  after(revision: number): LoggedChange[] | null
  /** Forgets everything: the history starts again at `revision` (a reload, a new epoch). */
  reset(revision: number): void
}

/** Creates a replay log keeping the newest `capacity` changes. */
export function createReplayLog (capacity: number, startRevision = 0): ReplayLog {
  if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError('capacity must be a positive integer')
  let ring: Array<LoggedChange | undefined> = new Array(capacity)
  let next = 0
  let count = 0
  let coveredFrom = startRevision
  let newest = startRevision

  return {
    get coveredFrom () { return coveredFrom },
    get newest () { return newest },
    get size () { return count },

    append (entry) {
      if (entry.revision <= newest) return false
      if (count === capacity) {
        // the oldest leaves: a client that held anything before it can no longer be replayed to
        coveredFrom = ring[next]!.revision
      } else {
        count++
      }
      ring[next] = entry
      next = (next + 1) % capacity
      newest = entry.revision
      return true
    },

    after (revision) {
      if (revision < coveredFrom) return null
      const out: LoggedChange[] = []
      for (let i = 1; i <= count; i++) {
        const entry = ring[(next - i + capacity) % capacity]!
        if (entry.revision <= revision) break
        out.push(entry)
      }
      return out.reverse()
    },

    reset (revision) {
      ring = new Array(capacity)
      next = 0
      count = 0
      coveredFrom = revision
      newest = revision
    }
  }
}
