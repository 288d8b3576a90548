import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Teardown } from './server.js'

/** The waygate-server binary, from source. */
export const SERVER_BIN = fileURLToPath(new URL('../../src/bin.ts', import.meta.url))
/** The fleet tests' service script (see fleet-service.ts). */
export const SERVICE_SCRIPT = fileURLToPath(new URL('./fleet-service.ts', import.meta.url))
// resolved here, so a child started in another directory still finds the loader
const TSX = import.meta.resolve('tsx')

/** A child process running a TypeScript file from source, with its output kept for failure messages. */
export interface Proc {
  readonly name: string
  readonly child: ChildProcess
  /** Everything it wrote so far, stdout and stderr interleaved. */
  logs(): string
  /** Resolves the first match of `pattern` in its output; rejects when it exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /** Sends `signal` and resolves once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>
  readonly exited: Promise<number | null>
}

/**
 * Starts `node --conditions=@waygate/source --import tsx <file> ...args` with `env` added to a
 * small environment (no variables of the test's own). Killed with SIGKILL when the test ends.
 */
export function startProcess (t: Teardown, name: string, file: string, args: string[], env: Record<string, string>, cwd?: string): Proc {
  const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', TSX, file, ...args], {
    ...(cwd === undefined ? {} : { cwd }),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const listeners = new Set<() => void>()
  let done = false
  const exited = new Promise<number | null>(resolve => {
    child.on('exit', code => {
      done = true
      for (const l of [...listeners]) l()
      resolve(code)
    })
  })
  const take = (chunk: string): void => {
    output += chunk
    for (const l of [...listeners]) l()
  }
  child.stdout!.setEncoding('utf8').on('data', take)
  child.stderr!.setEncoding('utf8').on('data', take)
  t.teardown(() => { if (!done) child.kill('SIGKILL') })
  return {
    name,
    child,
    exited,
    logs: () => output,
    waitFor (pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(output)
          if (match !== null) {
            finish()
            resolve(match)
          } else if (done) {
            finish()
            reject(new Error(`${name} exited before printing ${pattern}:\n${output}`))
          }
        }
        const timer = setTimeout(() => {
          finish()
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${output}`))
        }, timeoutMs)
        const finish = (): void => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      })
    },
    async stop (signal = 'SIGKILL') {
      if (!done) child.kill(signal)
      await exited
    }
  }
}

/** A port nobody listens on right now (so a server can be restarted on the same one). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws `message()` after `timeoutMs`. */
export async function until<T> (check: () => Promise<T | undefined>, timeoutMs: number, message: () => string, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown = null
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) throw new Error(`${message()}${lastError === null ? '' : ` (last error: ${String(lastError)})`}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
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
