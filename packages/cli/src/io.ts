/** A stream the CLI writes text to. */
export interface OutputStream {
  write(chunk: string): unknown
}

/** What the CLI may read from: process.stdin or, in tests, any readable stream. */
export type InputStream = NodeJS.ReadableStream & {
  isTTY?: boolean
  setRawMode?: (mode: boolean) => unknown
  unshift?: (chunk: Buffer | string) => void
}

/** Everything `run()` touches of the outside world, so tests can run it in-process. */
export interface Io {
  stdout: OutputStream
  stderr: OutputStream
  stdin: InputStream
  env: Record<string, string | undefined>
  cwd: string
  /** stdout is a terminal: colours are allowed (unless NO_COLOR is set). */
  isTTY: boolean
  /** stdin is a terminal, so questions can be asked. Default: `stdin.isTTY`, else `isTTY`. */
  stdinIsTTY?: boolean
  /** The clock, epoch ms. Default `Date.now`. */
  now?: () => number
}
