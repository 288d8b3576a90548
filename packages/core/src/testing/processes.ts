import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'

/** The part of a tap test the process helpers need. */
export interface ProcessTeardown {
  teardown: (fn: () => unknown) => void
}

/** A child process started by {@link startProcess}, with its output kept for failure messages. */
export interface Proc {
  readonly name: string
  readonly child: ChildProcess
  /** Everything it wrote so far, stdout and stderr interleaved. */
  logs(): string
  /** Resolves the first match of `pattern` in its output; rejects when it exits first or after `timeoutMs` (default 20 s). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /** Sends `signal` (default SIGKILL) and resolves once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Resolves the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>
}

/**
 * Starts `node <args>` with `env` added to a small environment (PATH and HOME only, none of the
 * test's own variables), keeping its output. Killed with SIGKILL when the test ends.
 */
export function startProcess (t: ProcessTeardown, name: string, args: string[], options: { env?: Record<string, string>, cwd?: string } = {}): Proc {
  const child = spawn(process.execPath, args, {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  let done = false
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const listener of [...listeners]) listener() }
  const exited = new Promise<number | null>(resolve => {
    child.on('exit', code => {
      done = true
      notify()
      resolve(code)
    })
  })
  const take = (chunk: string): void => {
    output += chunk
    notify()
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

/** A loopback port nobody listens on right now: one to start a server on (again), or to find closed. */
export async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise(resolve => probe.close(resolve))
  return port
}
