import { execFileSync, spawn } from 'node:child_process'
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** A private PostgreSQL listening on a unix socket only (no TCP port), for one test file. */
export interface PostgresServer {
  /** The directory holding its socket. */
  readonly socketDir: string
  /** A connection string for the `postgres` database: what `createPostgresBackend({ connectionString })` and `WAYGATE_POSTGRES_URL` take. */
  readonly url: string
  /** The connection string of another database (see `createDatabase`). */
  urlFor (database: string): string
  /** Whether the server is running. */
  readonly running: boolean
  /** Runs one SQL statement on the `postgres` database (or `database`) and resolves its rows. */
  query (sql: string, values?: unknown[], database?: string): Promise<Array<Record<string, unknown>>>
  /** Creates an empty database and resolves its connection string. */
  createDatabase (name: string): Promise<string>
  /**
   * Stops the server (`pg_ctl -m fast`): every connection is dropped at once, as in an outage, and
   * committed data survives (an immediate stop could lose the last commits: synchronous_commit is off).
   */
  stop (): Promise<void>
  /** Starts it (again) on the same socket and data. */
  start (): Promise<void>
  /** Freezes the server and its backends (SIGSTOP): connections stay open but nothing answers, as with an overloaded or unreachable server. */
  freeze (): void
  /** Lets a frozen server go on (SIGCONT). */
  thaw (): void
}

/** The postmaster of a data directory and every process it started (Linux /proc). */
function clusterPids (data: string): number[] {
  let postmaster: number
  try {
    postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
  } catch {
    return []
  }
  const pids = [postmaster]
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry))
    } catch {}
  }
  return pids
}

function signalAll (pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {}
  }
}

function executable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The one line a Postgres test file fails with when there is no PostgreSQL to start. */
export const POSTGRES_MISSING = 'PostgreSQL server binaries not found (no initdb in PG_BINDIR, `pg_config --bindir` or /usr/lib/postgresql/*/bin): ' +
  'the Postgres tests need them. Install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) or set PG_BINDIR.'

/**
 * The directory of `initdb`, `pg_ctl` and `postgres`: `PG_BINDIR`, else `pg_config --bindir`, else
 * the newest Debian layout. When there is none the test file stops at once with exit code 1 and
 * POSTGRES_MISSING on stderr: not skipped, since CI must run these tests.
 */
export function postgresBinDir (): string {
  const candidates: string[] = []
  if (process.env.PG_BINDIR !== undefined) candidates.push(process.env.PG_BINDIR)
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  } catch {}
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter(v => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {}
  const found = candidates.find(dir => executable(join(dir, 'initdb')) && executable(join(dir, 'pg_ctl')))
  if (found === undefined) {
    process.stderr.write(POSTGRES_MISSING + '\n')
    process.exit(1)
  }
  return found
}

/**
 * PostgreSQL refuses to run as root. As root, the server runs as the `postgres` user (Debian's
 * package creates it), else as `nobody`; the temporary directory is handed to that user.
 */
function serverUser (): { uid: number, gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map(line => line.split(':'))
  const entry = passwd.find(fields => fields[0] === 'postgres') ?? passwd.find(fields => fields[0] === 'nobody')
  if (entry === undefined) throw new Error('running as root with neither a postgres nor a nobody user to run PostgreSQL as')
  return { uid: Number(entry[2]), gid: Number(entry[3]) }
}

function run (file: string, args: string[], user: { uid: number, gid: number } | null, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', LC_ALL: 'C', TZ: 'UTC' },
      ...(user === null ? {} : { uid: user.uid, gid: user.gid })
    })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', chunk => { output += chunk })
    child.stderr.setEncoding('utf8').on('data', chunk => { output += chunk })
    child.on('error', reject)
    child.on('exit', code => {
      if (code === 0) resolve(output)
      else reject(new Error(`${file} ${args.join(' ')} exited with ${String(code)}: ${output.trim()}`))
    })
  })
}

/**
 * Creates a PostgreSQL cluster in a fresh temporary directory (`initdb`, trust authentication,
 * user `waygate`) and starts it on a unix socket in that directory, with fsync off for speed.
 * Stops it and removes the directory when the test ends; never touches a shared instance. With
 * `start: false` the cluster is created but not started: call `start()` later, to test an app
 * that starts before its database.
 */
export async function startPostgres (t: Teardown, options: { start?: boolean } = {}): Promise<PostgresServer> {
  const bin = postgresBinDir()
  const user = serverUser()
  const dir = mkdtempSync(join(tmpdir(), 'wg-pg-'))
  if (user !== null) chownSync(dir, user.uid, user.gid)
  const data = join(dir, 'data')
  const log = join(dir, 'server.log')
  let running = false
  const url = (database: string): string => `postgresql://waygate@/${database}?host=${encodeURIComponent(dir)}`

  await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'waygate', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], user, dir)
    .catch(async err => {
      // --no-instructions is newer than some servers
      if (!/no-instructions/.test(String(err))) throw err
      await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'waygate', '-E', 'UTF8', '--locale=C', '--no-sync'], user, dir)
    })

  const serverOptions = [
    `-k ${dir}`,
    "-c listen_addresses=''",
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c synchronous_commit=off',
    '-c shared_buffers=16MB',
    '-c max_connections=60',
    '-c max_wal_size=256MB'
  ].join(' ')

  async function start (): Promise<void> {
    if (running) throw new Error('postgres is already running')
    try {
      await run(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-o', serverOptions, '-w', '-t', '30', 'start'], user, dir)
    } catch (err) {
      let tail = ''
      try {
        tail = readFileSync(log, 'utf8').slice(-2000)
      } catch {}
      throw new Error(`${(err as Error).message}\n${tail}`)
    }
    running = true
  }

  async function stop (): Promise<void> {
    if (!running) return
    running = false
    await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], user, dir)
  }

  async function query (sql: string, values?: unknown[], database = 'postgres'): Promise<Array<Record<string, unknown>>> {
    const client = new pg.Client({ connectionString: url(database) })
    await client.connect()
    try {
      return (await client.query(sql, values)).rows
    } finally {
      await client.end()
    }
  }

  t.teardown(async () => {
    signalAll(clusterPids(data), 'SIGCONT')
    await stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })
  if (options.start !== false) await start()

  return {
    socketDir: dir,
    url: url('postgres'),
    urlFor: url,
    get running () { return running },
    query,
    async createDatabase (name) {
      await query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`)
      return url(name)
    },
    stop,
    start,
    freeze: () => { signalAll(clusterPids(data), 'SIGSTOP') },
    thaw: () => { signalAll(clusterPids(data), 'SIGCONT') }
  }
}
