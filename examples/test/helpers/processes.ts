import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** The examples package's directory, where its scripts run. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../', import.meta.url))

/** An example started the way its README says, with its output kept for failure messages. */
export interface ExampleProcess {
  logs(): string
  /** Resolves the first match of `pattern` in its output; rejects when it exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
}

/**
 * Runs the examples package's script `name` (`pnpm --filter @waygate/examples <name>` without pnpm:
 * the script's own `node …` command, in the examples directory) with `env` added to a small
 * environment. Killed with SIGKILL when the test ends.
 */
export function runScript (t: Teardown, name: string, env: Record<string, string>): ExampleProcess {
  const scripts = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts as Record<string, string>
  const command = scripts[name]
  if (command === undefined) throw new Error(`the examples have no script ${name}`)
  const [program, ...args] = command.split(/\s+/)
  if (program !== 'node') throw new Error(`script ${name} does not start with node: ${command}`)
  const child = spawn(process.execPath, args, {
    cwd: EXAMPLES_DIR,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  let exited = false
  const listeners = new Set<() => void>()
  const take = (chunk: string): void => {
    output += chunk
    for (const l of [...listeners]) l()
  }
  child.stdout.setEncoding('utf8').on('data', take)
  child.stderr.setEncoding('utf8').on('data', take)
  child.on('exit', () => {
    exited = true
    for (const l of [...listeners]) l()
  })
  t.teardown(() => { if (!exited) child.kill('SIGKILL') })
  return {
    logs: () => output,
    waitFor (pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const finish = (): void => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        const check = (): void => {
          const match = pattern.exec(output)
          if (match !== null) {
            finish()
            resolve(match)
          } else if (exited) {
            finish()
            reject(new Error(`${name} exited before printing ${pattern}:\n${output}`))
          }
        }
        const timer = setTimeout(() => {
          finish()
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${output}`))
        }, timeoutMs)
        listeners.add(check)
        check()
      })
    }
  }
}

/** Polls `check` until it returns something other than undefined; throws `message()` after `timeoutMs`. */
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
