import { CliError } from './errors.js'
import type { InputStream, Io } from './io.js'

function cancelled (): CliError {
  return new CliError('WG_ERR_CLI_CANCELLED', 'cancelled', { exitCode: 130 })
}

/** Everything on stdin until it ends (for `--password-stdin`). */
export async function readAll (stdin: InputStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * One line of stdin, without its end of line; null when stdin ends with nothing. What follows the
 * line is pushed back, so a later question reads it.
 */
export async function readLine (stdin: InputStream): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const finish = (line: string | null): void => {
      stdin.off('data', onData)
      stdin.off('end', onEnd)
      stdin.off('error', onError)
      stdin.pause()
      resolve(line)
    }
    const onData = (chunk: Buffer | string): void => {
      buffered += chunk.toString()
      const eol = buffered.indexOf('\n')
      if (eol === -1) return
      const rest = buffered.slice(eol + 1)
      finish(buffered.slice(0, eol).replace(/\r$/, ''))
      // pushed back only once this listener is gone, or it would read it again
      if (rest !== '' && typeof stdin.unshift === 'function') stdin.unshift(Buffer.from(rest))
    }
    const onEnd = (): void => finish(buffered === '' ? null : buffered)
    const onError = (err: Error): void => {
      stdin.off('data', onData)
      stdin.off('end', onEnd)
      reject(err)
    }
    stdin.on('data', onData)
    stdin.once('end', onEnd)
    stdin.once('error', onError)
    stdin.resume()
  })
}

/** Asks a question on stderr (stdout stays for results) and reads the answer. */
export async function ask (io: Io, question: string): Promise<string> {
  io.stderr.write(question)
  const line = await readLine(io.stdin)
  if (line === null) throw cancelled()
  return line
}

/** Asks for a secret: on a terminal nothing is echoed. */
export async function askHidden (io: Io, question: string): Promise<string> {
  const stdin = io.stdin
  if (typeof stdin.setRawMode !== 'function' || stdin.isTTY !== true) return ask(io, question)
  io.stderr.write(question)
  const setRawMode = stdin.setRawMode.bind(stdin)
  setRawMode(true)
  return new Promise((resolve, reject) => {
    let value = ''
    const done = (): void => {
      stdin.off('data', onData)
      setRawMode(false)
      stdin.pause()
      io.stderr.write('\n')
    }
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') {
          done()
          resolve(value)
          return
        }
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) {
          done()
          reject(cancelled())
          return
        }
        if (ch === '\u007f' || ch === '\b') {
          value = [...value].slice(0, -1).join('')
        } else if (ch >= ' ') {
          value += ch
        }
      }
    }
    stdin.on('data', onData)
    stdin.resume()
  })
}

/** A yes/no question; only `y` or `yes` is yes. */
export async function confirm (io: Io, question: string): Promise<boolean> {
  const answer = await ask(io, `${question} [y/N] `)
  return /^y(es)?$/i.test(answer.trim())
}
