import { readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { createFileBackend } from './backends/file.js'
import { createMemoryBackend } from './backends/memory.js'
import { createPostgresBackend, type PostgresBackendOptions } from './backends/postgres.js'
import { createRedisBackend, type RedisBackendOptions } from './backends/redis.js'
import type { WaygateBackend } from './backends/types.js'
import { createEngine, type EngineOptions, type WaygateEngine } from './engine.js'
import { WG_ERR_CONFIG_INVALID, WG_ERR_OPTIONS_INVALID } from './errors.js'
import { EnvName } from './validation.js'
import { slackWebhookFormatter } from './webhook-formatters.js'
import type { WebhookConfig } from './webhooks.js'

/** Name of the configuration file looked up from the working directory upwards. */
export const WAYGATE_CONFIG_FILE = '.waygate'

/** State file of the `file` backend when `WAYGATE_FILE_PATH` is not set, relative to the working directory. */
export const DEFAULT_STATE_FILE = 'waygate-state.json'

/** Where state lives: the backends `createEngineFromEnv` can build. */
export type BackendName = 'memory' | 'file' | 'redis' | 'postgres'

/** Where a configuration value came from, highest precedence first. */
export type ConfigSource = 'options' | 'env' | 'file' | 'default'

/** The configuration fields, each read from one variable. */
export type ConfigField = 'backend' | 'env' | 'filePath' | 'redisUrl' | 'postgresUrl' | 'testBypass' | 'webhookUrls' | 'slackWebhookUrls' | 'webhookSecret'

/** The variables of the server side; the CLI's are accepted in a `.waygate` file too. */
const VARIABLES: Record<ConfigField, { name: string, option: string }> = {
  backend: { name: 'WAYGATE_BACKEND', option: 'backend' },
  env: { name: 'WAYGATE_ENV', option: 'env' },
  filePath: { name: 'WAYGATE_FILE_PATH', option: 'filePath' },
  redisUrl: { name: 'WAYGATE_REDIS_URL', option: 'redisUrl' },
  postgresUrl: { name: 'WAYGATE_POSTGRES_URL', option: 'postgresUrl' },
  testBypass: { name: 'WAYGATE_TEST_BYPASS', option: 'testBypass' },
  webhookUrls: { name: 'WAYGATE_WEBHOOK_URL', option: 'webhookUrls' },
  slackWebhookUrls: { name: 'WAYGATE_SLACK_WEBHOOK_URL', option: 'slackWebhookUrls' },
  webhookSecret: { name: 'WAYGATE_WEBHOOK_SECRET', option: 'webhookSecret' }
}
const CLI_VARIABLES = ['WAYGATE_SERVER_URL', 'WAYGATE_TOKEN', 'WAYGATE_SERVICE']
const KNOWN_VARIABLES = new Set([...Object.values(VARIABLES).map(v => v.name), ...CLI_VARIABLES])
const BACKENDS: readonly BackendName[] = ['memory', 'file', 'redis', 'postgres']
const TRUE_VALUES = new Set(['true', '1', 'yes'])
const FALSE_VALUES = new Set(['false', '0', 'no'])

/** The resolved configuration. */
export interface WaygateConfig {
  /** Which backend to build. Default `memory`. */
  backend: BackendName
  /** The environment this process runs in, for env-gated routes. Default `dev`. */
  env: string
  /** Absolute path of the `file` backend's state file. Default `waygate-state.json` in the working directory. */
  filePath: string
  /** Connection URL of the `redis` backend (`redis://`, `rediss://` or `unix://`), or null when not set. */
  redisUrl: string | null
  /** Connection string of the `postgres` backend (`postgres://` or `postgresql://`), or null when not set. */
  postgresUrl: string | null
  /** Whether every lifecycle check is turned off (for an app's own test suite). Default false. */
  testBypass: boolean
  /** Webhooks sent the default JSON payload. Default none. */
  webhookUrls: string[]
  /** Webhooks sent Slack-formatted messages (Slack incoming webhooks). Default none. */
  slackWebhookUrls: string[]
  /** The secret the webhooks above sign their deliveries with, or null for unsigned ones. */
  webhookSecret: string | null
  /** Absolute path of the `.waygate` file that was read, or null. */
  configFile: string | null
  /** Where each value came from. */
  sources: Record<ConfigField, ConfigSource>
}

/** Options of {@link loadWaygateConfig}. Explicit values win over the environment and the `.waygate` file. */
export interface LoadConfigOptions {
  /** Where relative paths start and the `.waygate` lookup begins. Default `process.cwd()`. */
  cwd?: string
  /** The variables to read. Default `process.env`; tests pass their own map instead of changing it. */
  variables?: Readonly<Record<string, string | undefined>>
  /** A `.waygate` file to read instead of looking one up, or `false` to read none. */
  configFile?: string | false
  /** Overrides `WAYGATE_BACKEND`. */
  backend?: BackendName
  /** Overrides `WAYGATE_ENV`: the environment this process runs in. */
  env?: string
  /** Overrides `WAYGATE_FILE_PATH`; relative to `cwd`. */
  filePath?: string
  /** Overrides `WAYGATE_REDIS_URL`. */
  redisUrl?: string
  /** Overrides `WAYGATE_POSTGRES_URL`. */
  postgresUrl?: string
  /** Overrides `WAYGATE_TEST_BYPASS`. */
  testBypass?: boolean
  /** Overrides `WAYGATE_WEBHOOK_URL`. */
  webhookUrls?: string[]
  /** Overrides `WAYGATE_SLACK_WEBHOOK_URL`. */
  slackWebhookUrls?: string[]
  /** Overrides `WAYGATE_WEBHOOK_SECRET`. */
  webhookSecret?: string
}

/** Builds a backend from the resolved configuration. */
export type BackendFactory = (config: WaygateConfig) => WaygateBackend

/** Options of {@link createEngineFromEnv}. */
export interface EngineFromEnvOptions extends Omit<LoadConfigOptions, 'backend'>, Pick<EngineOptions, 'now' | 'logger' | 'resyncIntervalMs' | 'webhooks'> {
  /** Overrides `WAYGATE_BACKEND`: a backend name, or a backend to use as is. */
  backend?: BackendName | WaygateBackend
  /**
   * Backends by name, used instead of the built-in ones: a way to build one differently, e.g.
   * `{ redis: config => createRedisBackend({ client: myCluster }) }`.
   */
  backendFactories?: Partial<Record<BackendName, BackendFactory>>
  /** Audit entries the built-in backends keep. Default 1000. */
  maxAuditEntries?: number
  /** Options of the built-in `redis` backend (`keyPrefix`, `commandTimeoutMs`…); its URL comes from `WAYGATE_REDIS_URL`. */
  redis?: Omit<RedisBackendOptions, 'maxAuditEntries' | 'logger'>
  /** Options of the built-in `postgres` backend (`schema`, `auditRetention`…); its connection string comes from `WAYGATE_POSTGRES_URL`. */
  postgres?: Omit<PostgresBackendOptions, 'maxAuditEntries' | 'logger'>
}

/** One `KEY=value` line of a `.waygate` file. */
export interface ConfigFileEntry {
  value: string
  line: number
}

/**
 * Parses the text of a `.waygate` file: `KEY=value` lines, `#` comments, optional `export `
 * prefixes and optional single or double quotes. `file` only names the file in errors.
 *
 * @throws WG_ERR_CONFIG_INVALID on a malformed line, an unknown key or a key set twice.
 */
export function parseWaygateFile (text: string, file: string): Map<string, ConfigFileEntry> {
  const entries = new Map<string, ConfigFileEntry>()
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1
    const where = `${file} line ${line}`
    const trimmed = (lines[i] ?? '').trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed)
    if (match === null) throw new WG_ERR_CONFIG_INVALID(`${where}: expected KEY=value`)
    const key = match[1] as string
    const value = unquote(match[2] as string, where)
    if (!KNOWN_VARIABLES.has(key)) {
      throw new WG_ERR_CONFIG_INVALID(`${where}: unknown key ${key} (known: ${[...KNOWN_VARIABLES].join(', ')})`)
    }
    const previous = entries.get(key)
    if (previous !== undefined) throw new WG_ERR_CONFIG_INVALID(`${where}: ${key} is already set on line ${previous.line}`)
    entries.set(key, { value, line })
  }
  return entries
}

function unquote (raw: string, where: string): string {
  const quote = raw[0]
  if (quote === '"' || quote === '\'') {
    const close = raw.indexOf(quote, 1)
    if (close === -1) throw new WG_ERR_CONFIG_INVALID(`${where}: missing closing ${quote}`)
    const rest = raw.slice(close + 1).trim()
    if (rest !== '' && !rest.startsWith('#')) throw new WG_ERR_CONFIG_INVALID(`${where}: unexpected text after the closing ${quote}`)
    return raw.slice(1, close)
  }
  // an unquoted value ends at a comment: a # at its start or after whitespace
  if (raw.startsWith('#')) return ''
  return raw.replace(/\s+#.*$/, '').trim()
}

/** The nearest `.waygate` file in `cwd` or one of its parents, or null. */
export function findWaygateFile (cwd: string): string | null {
  let dir = resolve(cwd)
  for (;;) {
    const candidate = join(dir, WAYGATE_CONFIG_FILE)
    try {
      if (statSync(candidate, { throwIfNoEntry: false })?.isFile() === true) return candidate
    } catch {
      // an unreadable directory on the way up holds no file we could read
    }
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

function readWaygateFile (path: string): Map<string, ConfigFileEntry> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new WG_ERR_CONFIG_INVALID(`cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  return parseWaygateFile(text, path)
}

/** A raw value and where it came from, before it is checked. */
interface Candidate<T> {
  value: T
  source: ConfigSource
  /** Names the variable and its origin in error messages. */
  origin: string
  /** Directory relative paths of this value start from. */
  base: string
}

/**
 * Resolves waygate's configuration. Each value comes from, in order: the explicit option, the
 * process environment (`env`), the nearest `.waygate` file, the default. An empty variable counts
 * as unset. Relative paths in a `.waygate` file are relative to that file's directory.
 *
 * @throws WG_ERR_CONFIG_INVALID when a variable or the `.waygate` file is invalid, naming both.
 * @throws WG_ERR_OPTIONS_INVALID when an explicit option is invalid.
 */
export function loadWaygateConfig (options: LoadConfigOptions = {}): WaygateConfig {
  if (options === null || typeof options !== 'object') throw new WG_ERR_OPTIONS_INVALID('options must be an object')
  const cwd = resolve(options.cwd ?? process.cwd())
  const variables = options.variables ?? process.env
  if (variables === null || typeof variables !== 'object') throw new WG_ERR_OPTIONS_INVALID('variables must be an object')

  let configFile: string | null = null
  if (options.configFile === undefined) configFile = findWaygateFile(cwd)
  else if (options.configFile !== false) {
    if (typeof options.configFile !== 'string' || options.configFile === '') {
      throw new WG_ERR_OPTIONS_INVALID('configFile must be a path or false')
    }
    configFile = resolve(cwd, options.configFile)
  }
  const fileEntries = configFile === null ? new Map<string, ConfigFileEntry>() : readWaygateFile(configFile)
  const fileDir = configFile === null ? cwd : dirname(configFile)

  function candidate<K extends keyof LoadConfigOptions> (field: ConfigField, option: K): Candidate<unknown> | null {
    const { name } = VARIABLES[field]
    if (options[option] !== undefined) {
      return { value: options[option], source: 'options', origin: `options.${VARIABLES[field].option}`, base: cwd }
    }
    const fromEnv = variables[name]
    if (fromEnv !== undefined && fromEnv !== '') {
      return { value: fromEnv, source: 'env', origin: `${name} from the environment`, base: cwd }
    }
    const fromFile = fileEntries.get(name)
    if (fromFile !== undefined && fromFile.value !== '') {
      return { value: fromFile.value, source: 'file', origin: `${name} from ${configFile ?? ''} line ${fromFile.line}`, base: fileDir }
    }
    return null
  }

  function invalid (c: Candidate<unknown>, problem: string): Error {
    const shown = typeof c.value === 'string' ? JSON.stringify(c.value.slice(0, 200)) : String(c.value)
    const message = `${c.origin} ${problem}, got ${shown}`
    return c.source === 'options' ? new WG_ERR_OPTIONS_INVALID(message) : new WG_ERR_CONFIG_INVALID(message)
  }

  const sources = {} as Record<ConfigField, ConfigSource>

  const backendIn = candidate('backend', 'backend')
  let backend: BackendName = 'memory'
  if (backendIn !== null) {
    const name = typeof backendIn.value === 'string' ? backendIn.value.toLowerCase() : ''
    if (!(BACKENDS as readonly string[]).includes(name)) throw invalid(backendIn, `must be one of ${BACKENDS.join(', ')}`)
    backend = name as BackendName
  }
  sources.backend = backendIn?.source ?? 'default'

  const envIn = candidate('env', 'env')
  let currentEnv = 'dev'
  if (envIn !== null) {
    if (!Value.Check(EnvName, envIn.value)) throw invalid(envIn, 'must be 1 to 100 letters, digits, ".", "_" or "-"')
    currentEnv = envIn.value
  }
  sources.env = envIn?.source ?? 'default'

  const fileIn = candidate('filePath', 'filePath')
  let filePath = resolve(cwd, DEFAULT_STATE_FILE)
  if (fileIn !== null) {
    if (typeof fileIn.value !== 'string' || fileIn.value.trim() === '' || fileIn.value.includes('\0')) {
      throw invalid(fileIn, 'must be a file path')
    }
    filePath = resolve(fileIn.base, fileIn.value)
  }
  sources.filePath = fileIn?.source ?? 'default'

  const redisIn = candidate('redisUrl', 'redisUrl')
  let redisUrl: string | null = null
  if (redisIn !== null) {
    let protocol = ''
    try {
      protocol = new URL(String(redisIn.value)).protocol
    } catch {}
    if (typeof redisIn.value !== 'string' || (protocol !== 'redis:' && protocol !== 'rediss:' && protocol !== 'unix:')) {
      throw invalid(redisIn, 'must be a redis://, rediss:// or unix:// URL')
    }
    redisUrl = redisIn.value
  }
  sources.redisUrl = redisIn?.source ?? 'default'

  const postgresIn = candidate('postgresUrl', 'postgresUrl')
  let postgresUrl: string | null = null
  if (postgresIn !== null) {
    // not parsed as a URL: `postgresql://user@/db?host=/run/postgresql` (a unix socket) is valid for pg, not for URL
    if (typeof postgresIn.value !== 'string' || !/^postgres(ql)?:\/\/\S+$/i.test(postgresIn.value)) {
      // never echoed: a connection string often holds a password
      const message = `${postgresIn.origin} must be a postgres:// or postgresql:// URL`
      throw postgresIn.source === 'options' ? new WG_ERR_OPTIONS_INVALID(message) : new WG_ERR_CONFIG_INVALID(message)
    }
    postgresUrl = postgresIn.value
  }
  sources.postgresUrl = postgresIn?.source ?? 'default'

  const bypassIn = candidate('testBypass', 'testBypass')
  let testBypass = false
  if (bypassIn !== null) {
    if (bypassIn.source === 'options') {
      if (typeof bypassIn.value !== 'boolean') throw invalid(bypassIn, 'must be a boolean')
      testBypass = bypassIn.value
    } else {
      const word = String(bypassIn.value).toLowerCase()
      if (TRUE_VALUES.has(word)) testBypass = true
      else if (!FALSE_VALUES.has(word)) throw invalid(bypassIn, 'must be true, 1, yes, false, 0 or no')
    }
  }
  sources.testBypass = bypassIn?.source ?? 'default'

  /** A list of http(s) URLs: an array in options, comma or space separated in a variable. The URLs are not echoed: they often hold a token. */
  function urlList (field: 'webhookUrls' | 'slackWebhookUrls'): string[] {
    const given = candidate(field, field)
    sources[field] = given?.source ?? 'default'
    if (given === null) return []
    const items = given.source === 'options'
      ? (Array.isArray(given.value) ? given.value as unknown[] : null)
      : String(given.value).split(/[\s,]+/).filter(item => item !== '')
    const fail = (problem: string): Error => given.source === 'options'
      ? new WG_ERR_OPTIONS_INVALID(`${given.origin} ${problem}`)
      : new WG_ERR_CONFIG_INVALID(`${given.origin} ${problem}`)
    if (items === null) throw fail('must be an array of http(s) URLs')
    return items.map((item, i) => {
      let protocol = ''
      try {
        protocol = new URL(String(item)).protocol
      } catch {}
      if (typeof item !== 'string' || (protocol !== 'http:' && protocol !== 'https:')) {
        throw fail(`must list http:// or https:// URLs; entry ${i + 1} is not one`)
      }
      return item
    })
  }
  const webhookUrls = urlList('webhookUrls')
  const slackWebhookUrls = urlList('slackWebhookUrls')

  const secretIn = candidate('webhookSecret', 'webhookSecret')
  let webhookSecret: string | null = null
  if (secretIn !== null) {
    // never echoed: it is a secret
    if (typeof secretIn.value !== 'string' || secretIn.value.length < 16) {
      const message = `${secretIn.origin} must be at least 16 characters`
      throw secretIn.source === 'options' ? new WG_ERR_OPTIONS_INVALID(message) : new WG_ERR_CONFIG_INVALID(message)
    }
    webhookSecret = secretIn.value
  }
  sources.webhookSecret = secretIn?.source ?? 'default'

  return { backend, env: currentEnv, filePath, redisUrl, postgresUrl, testBypass, webhookUrls, slackWebhookUrls, webhookSecret, configFile, sources }
}

function describe (config: WaygateConfig, field: ConfigField): string {
  const source = config.sources[field]
  if (source === 'options') return `options.${VARIABLES[field].option}`
  if (source === 'env') return `${VARIABLES[field].name} from the environment`
  if (source === 'file') return `${VARIABLES[field].name} from ${config.configFile ?? WAYGATE_CONFIG_FILE}`
  return 'the default'
}

function buildBackend (config: WaygateConfig, options: EngineFromEnvOptions): WaygateBackend {
  const factories = options.backendFactories
  if (factories !== undefined && (factories === null || typeof factories !== 'object')) {
    throw new WG_ERR_OPTIONS_INVALID('backendFactories must be an object of functions')
  }
  const factory = factories?.[config.backend]
  if (factory !== undefined) {
    if (typeof factory !== 'function') throw new WG_ERR_OPTIONS_INVALID(`backendFactories.${config.backend} must be a function`)
    const backend = factory(config)
    if (backend === null || typeof backend !== 'object' || typeof backend.load !== 'function') {
      throw new WG_ERR_OPTIONS_INVALID(`backendFactories.${config.backend} did not return a backend`)
    }
    return backend
  }
  switch (config.backend) {
    case 'memory':
      return createMemoryBackend({ maxAuditEntries: options.maxAuditEntries })
    case 'file':
      return createFileBackend({ path: config.filePath, maxAuditEntries: options.maxAuditEntries })
    case 'redis':
      if (config.redisUrl === null) {
        throw new WG_ERR_CONFIG_INVALID(`the redis backend needs WAYGATE_REDIS_URL (redis chosen by ${describe(config, 'backend')})`)
      }
      return createRedisBackend({ url: config.redisUrl }, {
        ...options.redis,
        maxAuditEntries: options.maxAuditEntries,
        ...(options.logger === undefined ? {} : { logger: options.logger })
      })
    case 'postgres':
      if (config.postgresUrl === null) {
        throw new WG_ERR_CONFIG_INVALID(`the postgres backend needs WAYGATE_POSTGRES_URL (postgres chosen by ${describe(config, 'backend')})`)
      }
      return createPostgresBackend({ connectionString: config.postgresUrl }, {
        ...options.postgres,
        ...(options.maxAuditEntries === undefined ? {} : { maxAuditEntries: options.maxAuditEntries }),
        ...(options.logger === undefined ? {} : { logger: options.logger })
      })
  }
}

/** The webhooks the configuration names, signed with its secret when there is one. */
function configuredWebhooks (config: WaygateConfig): WebhookConfig[] {
  const secret = config.webhookSecret === null ? {} : { secret: config.webhookSecret }
  return [
    ...config.webhookUrls.map(url => ({ url, ...secret })),
    ...config.slackWebhookUrls.map(url => ({ url, formatter: slackWebhookFormatter, ...secret }))
  ]
}

/**
 * Creates an engine configured from the environment: `WAYGATE_BACKEND`, `WAYGATE_ENV`,
 * `WAYGATE_FILE_PATH`, `WAYGATE_REDIS_URL`, `WAYGATE_POSTGRES_URL`, `WAYGATE_TEST_BYPASS`, read from explicit options,
 * then the process environment, then the nearest `.waygate` file (see {@link loadWaygateConfig}).
 * Nothing is read from the backend until `start()`.
 *
 * @example
 * // WAYGATE_BACKEND=file WAYGATE_ENV=production node server.js
 * const engine = createEngineFromEnv()
 *
 * @throws WG_ERR_CONFIG_INVALID when a variable or the `.waygate` file is invalid, or names a backend that is not available.
 * @throws WG_ERR_OPTIONS_INVALID when an explicit option is invalid.
 */
export function createEngineFromEnv (options: EngineFromEnvOptions = {}): WaygateEngine {
  const given = options?.backend
  const instance = given !== null && typeof given === 'object' ? given : null
  // a backend given as is makes WAYGATE_BACKEND irrelevant, so it is not read at all
  const config = loadWaygateConfig(instance === null ? options as LoadConfigOptions : { ...options, backend: 'memory' })
  const backend = instance ?? buildBackend(config, options)
  let engine: WaygateEngine
  try {
    engine = createEngine({
      backend,
      env: config.env,
      testBypass: config.testBypass,
      now: options.now,
      logger: options.logger,
      resyncIntervalMs: options.resyncIntervalMs,
      // a `webhooks` option that is not an array is left for createEngine to report
      webhooks: Array.isArray(options.webhooks) || options.webhooks === undefined
        ? [...configuredWebhooks(config), ...(options.webhooks ?? [])]
        : options.webhooks
    })
  } catch (err) {
    backend.close().catch(() => {})
    throw err
  }
  engine.logger.debug({ backend: backend.kind, env: config.env, configFile: config.configFile, sources: config.sources },
    'waygate: configuration loaded')
  return engine
}
