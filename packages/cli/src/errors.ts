/**
 * A failure the CLI reports as one line and a hint, then exits with `exitCode`: 1 for a failure,
 * 2 for a usage error, 3 for a `check` that cannot tell. Codes of errors the admin API answered with are passed through unchanged.
 */
export class CliError extends Error {
  readonly code: string
  readonly hint: string | undefined
  readonly exitCode: number
  /** HTTP status, when the admin API answered with an error. */
  readonly status: number | undefined
  /** Keys an ambiguous bare path matches (from a 409 of the API). */
  readonly matches: string[] | undefined

  constructor (code: string, message: string, options: { hint?: string, exitCode?: number, status?: number, matches?: string[], cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CliError'
    this.code = code
    this.hint = options.hint
    this.exitCode = options.exitCode ?? 1
    this.status = options.status
    this.matches = options.matches
  }
}

/** Bad flags, arguments or values: exit code 2. */
export class UsageError extends CliError {
  constructor (message: string, hint?: string) {
    super('WG_ERR_CLI_USAGE', message, { hint, exitCode: 2 })
    this.name = 'UsageError'
  }
}
