import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, until, type Proc } from '@waygate/core/testing'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { call, login, SECRET, type Teardown } from './server.js'

export { freePort, until, type Proc } from '@waygate/core/testing'

/** The waygate-server binary, from source. */
export const SERVER_BIN = fileURLToPath(new URL('../../src/bin.ts', import.meta.url))
/** The fleet tests' service script (see fleet-service.ts). */
export const SERVICE_SCRIPT = fileURLToPath(new URL('./fleet-service.ts', import.meta.url))
// resolved here, so a child started in another directory still finds the loader
const TSX = import.meta.resolve('tsx')

/**
 * Starts `node --conditions=@waygate/source --import tsx <file> ...args` with `env` added to a
 * small environment (no variables of the test's own). Killed with SIGKILL when the test ends.
 */
export function startTsProcess (t: Teardown, name: string, file: string, args: string[], env: Record<string, string>, cwd?: string): Proc {
  return startProcess(t, name, ['--conditions=@waygate/source', '--import', TSX, file, ...args], { env, ...(cwd === undefined ? {} : { cwd }) })
}

/**
 * Starts `waygate-server` on `port` with a file backend at `stateFile` (admin `admin`/`secret`,
 * a fixed secret key so tokens outlive a restart) and waits for `/health` to answer 200.
 */
export async function startServerProcess (t: Teardown, options: { port: number, stateFile: string, secretKey?: string }): Promise<Proc> {
  const proc = startTsProcess(t, 'waygate-server', SERVER_BIN, [], {
    PORT: String(options.port),
    WAYGATE_BACKEND: 'file',
    WAYGATE_FILE_PATH: options.stateFile,
    WAYGATE_ADMIN_USER: 'admin',
    WAYGATE_ADMIN_PASSWORD: 'secret',
    WAYGATE_SECRET_KEY: options.secretKey ?? SECRET,
    LOG_LEVEL: 'warn'
  })
  const health = `http://127.0.0.1:${options.port}/health`
  await until(async () => (await get(health).catch(() => ({ status: 0 }))).status === 200 ? true : undefined, 30_000,
    () => `the server did not answer /health:\n${proc.logs()}`, 50)
  return proc
}

/** A server process with its options (to restart it on the same port and file), its admin's token and a service token. */
export interface ServerWithToken {
  url: string
  options: { port: number, stateFile: string }
  proc: Proc
  admin: string
  /** What `POST /api/tokens` answered: `token`, `id`, ... */
  created: { token: string, id: string, [field: string]: unknown }
}

/** A waygate-server process on a fresh port and file, the admin signed in, and a token made for `service`. */
export async function serverWithToken (t: Teardown, service: string, token: Record<string, unknown> = {}): Promise<ServerWithToken> {
  const dir = mkdtempSync(join(tmpdir(), 'wg-server-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const options = { port, stateFile: join(dir, 'state.json') }
  const proc = await startServerProcess(t, options)
  const admin = await login(url)
  const { body: created } = await call(url, 'POST', '/api/tokens', { token: admin, body: { service, expires: '1d', ...token } })
  return { url, options, proc, admin, created }
}

/** A fleet-service process (see fleet-service.ts) with `env`; resolves with its URL once it is connected to its server. */
export async function startConnectedService (t: Teardown, name: string, env: Record<string, string>): Promise<Proc & { url: string }> {
  const proc = startTsProcess(t, name, SERVICE_SCRIPT, [], env)
  const [, url] = await proc.waitFor(/listening (http:\/\/\S+)/, 30_000)
  await until(async () => (await get(`${url!}/sync`)).body?.state === 'connected' ? true : undefined, 10_000, () => `${name} did not connect:\n${proc.logs()}`)
  return Object.assign(proc, { url: url! })
}

/** GET through a real socket: status, headers and the body (JSON when it parses). */
export async function get (url: string): Promise<{ status: number, headers: Headers, body: any }> {
  const res = await fetch(url)
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, headers: res.headers, body }
}

/** A request the counting proxy saw. */
export interface ProxiedRequest {
  method: string
  url: string
  at: number
}

/**
 * An HTTP proxy on loopback in front of `target` (a port): forwards every request as is (streams
 * included) and records it, so a test counts what a client sent.
 */
export async function countingProxy (t: Teardown, targetPort: number): Promise<{ url: string, requests: ProxiedRequest[] }> {
  const requests: ProxiedRequest[] = []
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', at: Date.now() })
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => { res.destroy() })
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}
