import { randomBytes } from 'node:crypto'
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'
import type { RemoteSnapshot } from './snapshot.js'
import { checkSnapshot } from './snapshot.js'

/** The header of a cache file: which server, service and history the snapshot belongs to. */
export interface CacheHeader {
  format: 1
  server: string
  service: string
  epoch: string
  revision: number
  savedAt: string
}

/** What reading a cache file gave: a snapshot, nothing (no file), or why it was refused. */
export type CacheRead =
  | { ok: true, header: CacheHeader, snapshot: RemoteSnapshot }
  | { ok: false, problem: string | null }

/**
 * Reads a cache file written by {@link writeCacheFile}. A missing file is no problem; a file that
 * does not parse, has another format, or names another server or service is refused with the reason.
 */
export async function readCacheFile (path: string, expect: { server: string, service: string }): Promise<CacheRead> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, problem: null }
    return { ok: false, problem: `cannot be read (${(err as Error).message})` }
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return { ok: false, problem: 'is not valid JSON (torn or corrupt)' }
  }
  const { header, snapshot } = (data ?? {}) as { header?: Partial<CacheHeader>, snapshot?: unknown }
  if (header === null || typeof header !== 'object') return { ok: false, problem: 'has no header' }
  if (header.format !== 1) return { ok: false, problem: `has format ${String(header.format)}, expected 1` }
  if (header.server !== expect.server) return { ok: false, problem: `belongs to server ${String(header.server)}, not ${expect.server}` }
  if (header.service !== expect.service) return { ok: false, problem: `belongs to service ${String(header.service)}, not ${expect.service}` }
  const problem = checkSnapshot(snapshot)
  if (problem !== null) return { ok: false, problem: `holds an invalid snapshot: ${problem}` }
  const checked = snapshot as RemoteSnapshot
  if (checked.epoch !== header.epoch || checked.revision !== header.revision || checked.service !== header.service) {
    return { ok: false, problem: 'has a header that does not match its snapshot' }
  }
  return { ok: true, header: header as CacheHeader, snapshot: checked }
}

/** Writes the snapshot atomically: a temporary file beside the target, then a rename over it. */
export async function writeCacheFile (path: string, server: string, snapshot: RemoteSnapshot, savedAt: string): Promise<void> {
  const header: CacheHeader = { format: 1, server, service: snapshot.service, epoch: snapshot.epoch, revision: snapshot.revision, savedAt }
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(tmp, JSON.stringify({ header, snapshot }), { mode: 0o600 })
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}
