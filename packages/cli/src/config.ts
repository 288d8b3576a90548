import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, parse as parsePath, resolve, sep } from 'node:path'
import { CliError, UsageError } from './errors.js'
import { isServiceName, serviceNameProblem } from './parse.js'

/** Where the admin API is when nothing else says. */
export const DEFAULT_SERVER_URL = 'http://localhost:8000/waygate'

/** A token obtained by `waygate login`, kept per server URL so it is never sent to another server. */
export interface Session {
  token: string
  user: string
  expiresAt: string
}

/** The config file: `{ serverUrl, sessions: { [serverUrl]: Session } }`. */
export interface ConfigFile {
  serverUrl?: string
  sessions?: Record<string, Session>
}

type Env = Record<string, string | undefined>

/**
 * The config directory: `WAYGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/waygate`, else `~/.waygate`.
 */
export function configDir (env: Env): string {
  if (nonEmpty(env.WAYGATE_CONFIG_DIR)) return env.WAYGATE_CONFIG_DIR!
  if (nonEmpty(env.XDG_CONFIG_HOME)) return join(env.XDG_CONFIG_HOME!, 'waygate')
  const home = nonEmpty(env.HOME) ? env.HOME! : homedir()
  return join(home, '.waygate')
}

/** The config file's path. */
export function configPath (env: Env): string {
  return join(configDir(env), 'config.json')
}

function nonEmpty (value: string | undefined): boolean {
  return value !== undefined && value.trim() !== ''
}

/** Reads the config file; a missing file is an empty config. */
export async function readConfig (path: string): Promise<ConfigFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new CliError('WG_ERR_CLI_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  try {
    const value = JSON.parse(text) as unknown
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object')
    return value as ConfigFile
  } catch (err) {
    throw new CliError('WG_ERR_CLI_CONFIG', `${path} is not a valid waygate config file`, {
      hint: 'fix it, or delete it and run: waygate login',
      cause: err
    })
  }
}

/**
 * Writes the config file readable by its owner only (0600), through a temporary file so a crash
 * never leaves half a file. Directories it has to create are made 0700; one that exists keeps
 * its mode (it may be shared, e.g. a 1777 directory).
 */
export async function writeConfig (path: string, config: ConfigFile): Promise<void> {
  const dir = resolve(dirname(path))
  // the first directory mkdir created, if any: it and those below it down to `dir` are ours
  const created = await mkdir(dir, { recursive: true, mode: 0o700 })
  if (created !== undefined) {
    const first = resolve(created)
    // the mode given to mkdir is reduced by the umask
    for (let mine = dir; mine === first || mine.startsWith(first + sep); mine = dirname(mine)) await chmod(mine, 0o700)
  }
  // a fresh name, and never an existing file (or a link planted in a shared directory)
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  await writeFile(temp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  await chmod(temp, 0o600)
  await rename(temp, path)
}

const CREDENTIALS = 'the server URL must not contain a user name or password'

/** What to do about a server URL `checkServerUrl` refused. */
export function serverUrlHint (err: Error, otherwise = 'give the admin mount, e.g. http://localhost:8000/waygate'): string {
  return err.message.startsWith(CREDENTIALS)
    ? 'give it without the user:password@ part; the CLI authenticates with a token: waygate login'
    : otherwise
}

/**
 * Normalises a server URL (no trailing slash), or says why it is not one. A URL with credentials
 * is refused: they would be saved, shown and sent along with every request. No message repeats
 * them.
 */
export function checkServerUrl (value: string): string | Error {
  // whatever sits between `//` and `@` may be a password, even in a value that is not a URL
  const shown = value.replace(/\/\/[^/?#]*@/, '//***@')
  let url: URL
  try {
    url = new URL(value.trim())
  } catch {
    return new Error(shown === value ? `"${value}" is not a URL` : `${CREDENTIALS} ("${shown}")`)
  }
  if (url.username !== '' || url.password !== '') {
    return new Error(`${CREDENTIALS}: ${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return new Error(`"${shown}" is not an http or https URL`)
  if (url.search !== '' || url.hash !== '') return new Error(`"${shown}" must not have a query or fragment`)
  return url.href.replace(/\/+$/, '')
}

/** How long one exchange with the server may take, body included, when nothing else says. */
export const DEFAULT_TIMEOUT_MS = 30_000

/** Reads a timeout in seconds (`30`, `2.5`) as milliseconds, or says why it is not one. */
export function checkTimeout (value: string): number | Error {
  const text = value.trim()
  const seconds = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : Number.NaN
  if (!(seconds >= 0.1 && seconds <= 3600)) return new Error(`"${value}" is not a number of seconds between 0.1 and 3600`)
  return Math.round(seconds * 1000)
}

/** Parses `KEY=value` lines: `#` comments, optional `export `, optional quotes. */
export function parseDotfile (text: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (match === null) continue
    let value = match[2]!
    const quote = value[0]
    if ((quote === '"' || quote === '\'') && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1)
    } else {
      // an unquoted value may carry a trailing comment
      value = value.replace(/\s+#.*$/, '').trim()
    }
    values[match[1]!] = value
  }
  return values
}

/** The nearest `.waygate` file from `cwd` upward (a directory of that name is skipped). */
export async function findDotfile (cwd: string): Promise<{ path: string, values: Record<string, string> } | null> {
  let dir = cwd
  const root = parsePath(cwd).root
  for (;;) {
    const candidate = join(dir, '.waygate')
    try {
      if ((await stat(candidate)).isFile()) {
        return { path: candidate, values: parseDotfile(await readFile(candidate, 'utf8')) }
      }
    } catch {
      // absent or unreadable: keep looking upward
    }
    if (dir === root) return null
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

/** Where a setting came from, for `config show` and `--debug`. */
export type Source = 'flag' | 'env' | 'dotfile' | 'config' | 'default'

/** What every command needs to reach the server. */
export interface Settings {
  serverUrl: string
  serverUrlSource: Source
  /** The `.waygate` file, when one was found. */
  dotfile: string | null
  service: string | null
  serviceSource: Source | null
  token: string | null
  tokenSource: 'env' | 'dotfile' | 'config' | null
  /**
   * Why WAYGATE_TOKEN, although set, is not used: the URL does not come from the operator
   * (`--server-url` or WAYGATE_SERVER_URL). Any request then fails with this error.
   */
  tokenRefusal: CliError | null
  /** The bound of one whole exchange with the server: `--timeout`, else WAYGATE_TIMEOUT, else 30 s. */
  timeoutMs: number
  session: Session | null
  configPath: string
  config: ConfigFile
}

/**
 * Resolves the server URL (flag > WAYGATE_SERVER_URL > `.waygate` > config file > default), the
 * service (flag > WAYGATE_SERVICE > `.waygate`) and the token (WAYGATE_TOKEN > `.waygate` > the
 * session `waygate login` saved for that URL). WAYGATE_TOKEN is bound to a URL the operator gave
 * (flag or WAYGATE_SERVER_URL): a `.waygate` file, the saved URL or the default never receive it.
 */
export async function resolveSettings (options: { serverUrl?: string, service?: string, timeout?: string, env: Env, cwd: string }): Promise<Settings> {
  const { env } = options
  let timeoutMs = DEFAULT_TIMEOUT_MS
  if (options.timeout !== undefined) {
    const checked = checkTimeout(options.timeout)
    if (checked instanceof Error) throw new UsageError(`--timeout: ${checked.message}`, 'e.g. --timeout 10')
    timeoutMs = checked
  } else if (nonEmpty(env.WAYGATE_TIMEOUT)) {
    const checked = checkTimeout(env.WAYGATE_TIMEOUT!)
    if (checked instanceof Error) throw new CliError('WG_ERR_CLI_CONFIG', `WAYGATE_TIMEOUT: ${checked.message}`, { hint: 'e.g. WAYGATE_TIMEOUT=10' })
    timeoutMs = checked
  }
  const path = configPath(env)
  const config = await readConfig(path)
  const dot = await findDotfile(options.cwd)

  const candidates: Array<[string | undefined, Source, string]> = [
    [options.serverUrl, 'flag', '--server-url'],
    [env.WAYGATE_SERVER_URL, 'env', 'WAYGATE_SERVER_URL'],
    [dot?.values.WAYGATE_SERVER_URL, 'dotfile', dot?.path ?? '.waygate'],
    [config.serverUrl, 'config', path]
  ]
  let serverUrl = DEFAULT_SERVER_URL
  let serverUrlSource: Source = 'default'
  for (const [value, source, where] of candidates) {
    if (value === undefined || value.trim() === '') continue
    const checked = checkServerUrl(value)
    if (checked instanceof Error) {
      if (source === 'flag') throw new UsageError(`--server-url: ${checked.message}`, serverUrlHint(checked))
      const hint = source === 'config' ? `${serverUrlHint(checked)}; save it again with: waygate config set-url URL` : serverUrlHint(checked)
      throw new CliError('WG_ERR_CLI_CONFIG', `server URL from ${where}: ${checked.message}`, { hint })
    }
    serverUrl = checked
    serverUrlSource = source
    break
  }

  let service: string | null = null
  let serviceSource: Source | null = null
  const services: Array<[string | undefined, Source]> = [
    [options.service, 'flag'],
    [env.WAYGATE_SERVICE, 'env'],
    [dot?.values.WAYGATE_SERVICE, 'dotfile']
  ]
  for (const [value, source] of services) {
    if (value === undefined || value.trim() === '') continue
    service = value.trim()
    serviceSource = source
    // a key qualified with a name the server cannot have would match nothing: say so at once
    if (!isServiceName(service)) {
      const problem = serviceNameProblem(service)
      if (source === 'flag') throw new UsageError(`--service: ${problem}`, 'e.g. --service payments-service')
      throw new CliError('WG_ERR_CLI_CONFIG', `WAYGATE_SERVICE${source === 'dotfile' ? ` in ${dot!.path}` : ''}: ${problem}`, { hint: 'e.g. WAYGATE_SERVICE=payments-service' })
    }
    break
  }

  const session = config.sessions?.[serverUrl] ?? null
  let token: string | null = null
  let tokenSource: Settings['tokenSource'] = null
  let tokenRefusal: CliError | null = null
  if (nonEmpty(env.WAYGATE_TOKEN)) {
    if (serverUrlSource === 'flag' || serverUrlSource === 'env') {
      token = env.WAYGATE_TOKEN!.trim()
      tokenSource = 'env'
    } else {
      // a .waygate file in a cloned repository must not redirect the operator's token
      const from = serverUrlSource === 'dotfile' ? dot!.path : serverUrlSource === 'config' ? `${path} (waygate config set-url)` : 'the default'
      tokenRefusal = new CliError('WG_ERR_CLI_TOKEN_UNBOUND',
        `WAYGATE_TOKEN is only sent to a server URL given by --server-url or WAYGATE_SERVER_URL; this one comes from ${from}: ${serverUrl}`, {
          hint: 'name the server with --server-url or WAYGATE_SERVER_URL to use WAYGATE_TOKEN, or unset WAYGATE_TOKEN to use the session saved by waygate login'
        })
    }
  } else if (nonEmpty(dot?.values.WAYGATE_TOKEN)) {
    token = dot!.values.WAYGATE_TOKEN!.trim()
    tokenSource = 'dotfile'
  } else if (session !== null && typeof session.token === 'string') {
    token = session.token
    tokenSource = 'config'
  }

  return { serverUrl, serverUrlSource, dotfile: dot?.path ?? null, service, serviceSource, token, tokenSource, tokenRefusal, timeoutMs, session, configPath: path, config }
}
