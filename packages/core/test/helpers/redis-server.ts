import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** A private redis-server listening on a unix socket only (no TCP port), for one test file. */
export interface RedisServer {
  /** The unix socket it listens on. */
  readonly socket: string
  /** `unix://<socket>`: what `createRedisBackend({ url })` and `WAYGATE_REDIS_URL` take. */
  readonly url: string
  /** Whether the process is running. */
  readonly running: boolean
  /** Sends one command with redis-cli-like arguments and resolves the raw reply text. */
  command (...args: string[]): Promise<string>
  /** Kills the server at once (SIGKILL, as a crash would), after writing a snapshot when `save` is true. */
  kill (options?: { save?: boolean }): Promise<void>
  /** Starts it (again) on the same socket; a snapshot written by `kill({ save: true })` is loaded. */
  start (): Promise<void>
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, as with an overloaded server. */
  freeze (): void
  /** Lets a frozen process go on (SIGCONT). */
  thaw (): void
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'

/** The one line a Redis test file fails with when there is no `redis-server` to start. */
export const REDIS_SERVER_MISSING = `redis-server not found (${REDIS_SERVER.includes('/') ? `no executable at REDIS_SERVER=${REDIS_SERVER}` : 'not on the PATH'}): ` +
  'the Redis tests need it. Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) ' +
  'or set REDIS_SERVER to its path.'

function executable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The path of the `redis-server` the Redis tests start (`REDIS_SERVER`, else the PATH's). When
 * there is none, the test file stops at once with exit code 1 and REDIS_SERVER_MISSING on stderr:
 * not skipped, since CI must run these tests, and not a `spawn ENOENT` stack far from its cause.
 */
export function redisServerBinary (): string {
  const found = REDIS_SERVER.includes('/')
    ? (executable(REDIS_SERVER) ? REDIS_SERVER : undefined)
    : (process.env.PATH ?? '').split(delimiter).filter(dir => dir !== '').map(dir => join(dir, REDIS_SERVER)).find(executable)
  if (found === undefined) {
    process.stderr.write(REDIS_SERVER_MISSING + '\n')
    process.exit(1)
  }
  return found
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Encodes a command in RESP and reads replies until one is complete enough for our needs. */
function send (socket: string, args: string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket)
    let data = ''
    const timer = setTimeout(() => {
      conn.destroy()
      reject(new Error(`no reply to ${args[0] ?? ''} within ${timeoutMs} ms`))
    }, timeoutMs)
    conn.setEncoding('utf8')
    conn.on('connect', () => {
      conn.write(`*${args.length}\r\n` + args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
    })
    conn.on('data', chunk => {
      data += chunk
      // good enough for status, error, integer and bulk replies
      if (/^[+\-:]/.test(data) ? data.endsWith('\r\n') : /^\$-?\d+\r\n/.test(data) && (data.startsWith('$-1') || data.split('\r\n').length >= 3)) {
        clearTimeout(timer)
        conn.end()
        resolve(data.trimEnd())
      }
    })
    conn.on('error', err => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/**
 * Starts `redis-server` on a unix socket in a fresh temporary directory (`--port 0`, no
 * persistence unless asked), and kills it and removes the directory when the test ends.
 * Never touches a shared instance. With `start: false` only the socket path is chosen: call
 * `start()` later, to test an app that starts before its Redis.
 */
export async function startRedisServer (t: Teardown, options: { start?: boolean } = {}): Promise<RedisServer> {
  const binary = redisServerBinary()
  const dir = mkdtempSync(join(tmpdir(), 'wg-redis-'))
  const socket = join(dir, 'redis.sock')
  let child: ChildProcess | null = null
  let exited: Promise<void> = Promise.resolve()

  async function start (): Promise<void> {
    if (child !== null) throw new Error('redis-server is already running')
    const proc = spawn(binary, [
      '--port', '0',
      '--unixsocket', socket,
      '--unixsocketperm', '700',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--dbfilename', 'dump.rdb',
      '--loglevel', 'warning',
      '--daemonize', 'no'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    child = proc
    let stderr = ''
    proc.stderr?.setEncoding('utf8').on('data', chunk => { stderr += chunk })
    exited = new Promise(resolve => {
      const gone = (): void => {
        if (child === proc) child = null
        resolve()
      }
      proc.once('exit', gone)
      // a binary that cannot be run (removed since, not executable) emits 'error', maybe no 'exit'
      proc.once('error', err => {
        stderr += err.message
        gone()
      })
    })
    const deadline = Date.now() + 5000
    for (;;) {
      if (child !== proc) throw new Error(`redis-server exited at start: ${stderr.trim()}`)
      try {
        if ((await send(socket, ['PING'], 500)) === '+PONG') return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${socket} within 5 s: ${stderr.trim()}`)
      await sleep(20)
    }
  }

  async function kill (options: { save?: boolean } = {}): Promise<void> {
    const proc = child
    if (proc === null) return
    if (options.save === true) await send(socket, ['SAVE'])
    proc.kill('SIGKILL')
    await exited
    // a killed server leaves its socket file behind; the next start replaces it
  }

  t.teardown(async () => {
    child?.kill('SIGCONT')
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  if (options.start !== false) await start()

  return {
    socket,
    url: `unix://${socket}`,
    get running () { return child !== null },
    command: (...args) => send(socket, args),
    kill,
    start,
    freeze: () => { child?.kill('SIGSTOP') },
    thaw: () => { child?.kill('SIGCONT') }
  }
}

/**
 * A unix-socket proxy in front of a Redis socket, so a test can cut one client off while others
 * stay connected. `cut()` drops every connection and refuses new ones until `restore()`.
 */
export interface SocketProxy {
  readonly socket: string
  readonly url: string
  cut (): Promise<void>
  restore (): Promise<void>
}

export async function startSocketProxy (t: Teardown, target: string): Promise<SocketProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'wg-proxy-'))
  const socket = join(dir, 'proxy.sock')
  const open = new Set<Socket>()
  let server: Server | null = null

  async function listen (): Promise<void> {
    const s = createServer(client => {
      const upstream = createConnection(target)
      open.add(client)
      open.add(upstream)
      const drop = (): void => {
        client.destroy()
        upstream.destroy()
        open.delete(client)
        open.delete(upstream)
      }
      client.on('error', drop).on('close', drop)
      upstream.on('error', drop).on('close', drop)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.listen(socket, () => resolve())
    })
    server = s
  }

  async function cut (): Promise<void> {
    const s = server
    server = null
    for (const conn of open) conn.destroy()
    open.clear()
    if (s !== null) await new Promise<void>(resolve => s.close(() => resolve()))
  }

  t.teardown(async () => {
    await cut()
    rmSync(dir, { recursive: true, force: true })
  })
  await listen()

  return {
    socket,
    url: `unix://${socket}`,
    cut,
    restore: listen
  }
}
