// What the bench's runner, its fleet script and its server processes share.
import { createServer } from 'node:net'

/** What the Waygate Server process answers on `GET /__count`. */
export interface CountReport {
  /** HTTP requests received since the process started, `/__count` itself excluded. */
  requests: number
  /** The same by kind: `events` (stream connects), `register`, `login`, `routes` (GET /api/routes), `report` (traffic and callers reports, on a timer), `other`. */
  byKind: Record<string, number>
  /** Service streams open now. */
  openStreams: number
  pid: number
  user: number
  system: number
  rss: number
  heapUsed: number
}

/** Reads a Waygate Server process's `/__count` (`gc` forces a collection first, for memory figures). */
export async function readCount (serverUrl: string, gc = false): Promise<CountReport> {
  const res = await fetch(`${serverUrl}/__count${gc ? '?gc=1' : ''}`)
  if (res.status !== 200) throw new Error(`the Waygate Server's /__count answered ${res.status}`)
  return await res.json() as CountReport
}

/** A loopback port nobody listens on right now. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port)
        else reject(new Error('could not pick a free port'))
      })
    })
  })
}
