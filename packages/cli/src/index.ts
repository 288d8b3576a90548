import { CommanderError } from 'commander'
import { CliError } from './errors.js'
import type { Io } from './io.js'
import { buildProgram } from './program.js'
import { jsonText, printable } from './safe-text.js'

export type { Io, InputStream, OutputStream } from './io.js'
export { CliError, UsageError } from './errors.js'
export { CLI_VERSION } from './version.js'

/**
 * Runs the `waygate` CLI with `argv` (the arguments after the program name) and answers its exit
 * code: 0 success, 1 failure, 2 usage error, and for `check` 3 when it cannot tell. Everything it touches comes from `io`, so tests can
 * run it in-process.
 *
 * @example
 * const code = await run(['status', '--json'], { stdout: process.stdout, stderr: process.stderr,
 *   stdin: process.stdin, env: process.env, cwd: process.cwd(), isTTY: false })
 */
export async function run (argv: string[], io: Io): Promise<number> {
  // flags may sit anywhere, and a failure may come before commander has parsed them
  const json = argv.includes('--json')
  const debug = argv.includes('--debug')
  const result = { exitCode: 0 }
  const program = buildProgram(io, result, { json })
  try {
    await program.parseAsync(argv, { from: 'user' })
    return result.exitCode
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed the message (and the hint); help and --version are successes
      return err.exitCode === 0 ? 0 : 2
    }
    if (err instanceof CliError) {
      if (json) {
        const body: Record<string, unknown> = { code: err.code, message: err.message }
        if (err.hint !== undefined) body.hint = err.hint
        if (err.status !== undefined) body.status = err.status
        if (err.matches !== undefined) body.matches = err.matches
        io.stderr.write(jsonText({ error: body }) + '\n')
      } else {
        // messages and hints quote the server (its error message, a Retry-After header)
        io.stderr.write(`error: ${printable(err.message)}\n`)
        if (err.hint !== undefined) io.stderr.write(`hint: ${printable(err.hint)}\n`)
      }
      if (debug && err.cause !== undefined) io.stderr.write(`debug: cause: ${lines((err.cause as Error)?.stack ?? String(err.cause))}\n`)
      return err.exitCode
    }
    const message = (err as Error)?.message ?? String(err)
    if (json) io.stderr.write(jsonText({ error: { code: 'WG_ERR_CLI_INTERNAL', message, hint: 'rerun with --debug for details' } }) + '\n')
    else io.stderr.write(`error: ${printable(message)}\nhint: rerun with --debug for details\n`)
    if (debug) io.stderr.write(`debug: ${lines((err as Error)?.stack ?? String(err))}\n`)
    return 1
  }
}

/** A stack trace kept on its lines, each made printable. */
function lines (text: string): string {
  return text.split('\n').map(printable).join('\n')
}
