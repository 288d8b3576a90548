import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startProcess, type Proc } from '@waygate/core/testing'

export { until } from '@waygate/core/testing'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** The examples package's directory, where its scripts run. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Runs the examples package's script `name` (`pnpm --filter @waygate/examples <name>` without pnpm:
 * the script's own `node …` command, in the examples directory) with `env` added to a small
 * environment. Killed with SIGKILL when the test ends.
 */
export function runScript (t: Teardown, name: string, env: Record<string, string>): Proc {
  const scripts = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts as Record<string, string>
  const command = scripts[name]
  if (command === undefined) throw new Error(`the examples have no script ${name}`)
  const [program, ...args] = command.split(/\s+/)
  if (program !== 'node') throw new Error(`script ${name} does not start with node: ${command}`)
  return startProcess(t, name, args, { env, cwd: EXAMPLES_DIR })
}
