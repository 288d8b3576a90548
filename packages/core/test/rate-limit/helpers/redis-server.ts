import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'
import { redisServerBinary } from '../../helpers/redis-server.js'

/** The part of a tap test the helper needs. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** A private redis-server on a unix socket in a temp dir, killed when the test ends. */
export interface RedisServer {
  readonly socket: string
  readonly pid: number
  /** A new client of this server, disconnected at teardown. */
  client(options?: RedisOptions): Redis
  /** Kills the server (SIGKILL): connections drop at once. */
  kill(): Promise<void>
  /** Starts it again on the same socket, empty. */
  restart(): Promise<void>
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, answers stop. */
  pause(): void
  resume(): void
}

/**
 * Starts `redis-server` with no TCP port, a unix socket only its owner may use, and no
 * persistence, so tests never touch a shared Redis and can kill theirs.
 */
export async function startRedisServer (t: Teardown): Promise<RedisServer> {
  const binary = redisServerBinary()
  const dir = mkdtempSync(join(tmpdir(), 'waygate-redis-'))
  const socket = join(dir, 'redis.sock')
  const clients: Redis[] = []
  let child: ChildProcess = await spawnServer(binary, dir, socket)

  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await stop(child)
    rmSync(dir, { recursive: true, force: true })
  })

  return {
    socket,
    get pid () { return child.pid as number },
    client (options = {}) {
      const c = new Redis({ path: socket, ...options })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    kill: () => stop(child),
    async restart () {
      await stop(child)
      child = await spawnServer(binary, dir, socket)
    },
    pause () { child.kill('SIGSTOP') },
    resume () { child.kill('SIGCONT') }
  }
}

async function spawnServer (binary: string, dir: string, socket: string): Promise<ChildProcess> {
  const child = spawn(binary, [
    '--port', '0',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => fail(new Error(`redis-server did not start: ${output}`)), 5000)
    function fail (err: Error): void {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.once('error', fail)
    child.once('exit', code => fail(new Error(`redis-server exited with ${String(code)}: ${output}`)))
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (/ready to accept connections/i.test(output)) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve()
      }
    })
  })
  return child
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGCONT')
  child.kill('SIGKILL')
  await exited
}

/** EVALSHA calls the server has run so far (INFO commandstats), to count script calls. */
export async function evalshaCalls (redis: Redis): Promise<number> {
  const info = await redis.info('commandstats')
  const match = /cmdstat_evalsha:calls=(\d+)/.exec(info)
  return match === null ? 0 : Number(match[1])
}
