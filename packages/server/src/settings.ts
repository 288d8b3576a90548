import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  createEngineFromEnv,
  loadWaygateConfig,
  slackWebhookFormatter,
  type WaygateBackend,
  type WebhookConfig
} from '@waygate/core'
import type { AdminUser } from '@waygate/admin'

/** A setting of the environment that cannot be used; the message names the variable. */
export class SettingsError extends Error {
  override name = 'SettingsError'
}

/** What the `waygate-server` binary runs with, read from the environment alone. */
export interface ServerSettings {
  port: number
  host: string
  backend: WaygateBackend
  users: AdminUser[]
  secretKey: string | undefined
  tokenExpiry: number | undefined
  sdkTokenExpiry: number | undefined
  webhooks: WebhookConfig[]
  logLevel: string
}

const HASH = /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/
const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function given (env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

function seconds (env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const raw = given(env, name)
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(value) || value < 1 || value > 366 * 86400) {
    throw new SettingsError(`${name} must be whole seconds between 1 and 31622400, got ${JSON.stringify(raw.slice(0, 50))}`)
  }
  return value
}

function usersFile (path: string, cwd: string): AdminUser[] {
  const name = 'WAYGATE_USERS_FILE'
  let data: unknown
  try {
    data = JSON.parse(readFileSync(resolve(cwd, path), 'utf8'))
  } catch (err) {
    throw new SettingsError(`${name}: cannot read ${path} as JSON: ${(err as Error).message}`)
  }
  const list = Array.isArray(data) ? data : [data]
  if (list.length === 0) throw new SettingsError(`${name}: ${path} lists no users`)
  return list.map((user: unknown, i) => {
    const { username, password } = (user ?? {}) as Partial<AdminUser>
    if (typeof username !== 'string' || username === '' || username.length > 200) {
      throw new SettingsError(`${name}: entry ${i + 1} of ${path} needs a username`)
    }
    if (typeof password !== 'string' || !HASH.test(password)) {
      throw new SettingsError(`${name}: the password of "${username}" in ${path} must be a hashPassword() hash (scrypt$...), not plain text`)
    }
    return { username, password }
  })
}

/**
 * Reads the binary's settings: `PORT` (8001), `HOST` (127.0.0.1), `WAYGATE_BACKEND` with
 * `WAYGATE_FILE_PATH` / `WAYGATE_REDIS_URL` (and a `.waygate` file, as the engine reads them),
 * `WAYGATE_SECRET_KEY`, `WAYGATE_ADMIN_USER` + `WAYGATE_ADMIN_PASSWORD` or `WAYGATE_USERS_FILE`,
 * `WAYGATE_TOKEN_EXPIRY`, `WAYGATE_SDK_TOKEN_EXPIRY`, the webhook variables, `LOG_LEVEL`.
 *
 * @throws SettingsError naming the variable that is missing or wrong.
 */
export function readSettings (env: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): ServerSettings {
  const rawPort = given(env, 'PORT') ?? '8001'
  const port = Number(rawPort)
  if (!/^\d+$/.test(rawPort.trim()) || port > 65535) {
    throw new SettingsError(`PORT must be a port number between 0 and 65535, got ${JSON.stringify(rawPort.slice(0, 50))}`)
  }
  const host = given(env, 'HOST') ?? '127.0.0.1'
  if (/\s/.test(host)) throw new SettingsError(`HOST must be an address or host name, got ${JSON.stringify(host.slice(0, 100))}`)
  const logLevel = given(env, 'LOG_LEVEL') ?? 'info'
  if (!LEVELS.has(logLevel)) throw new SettingsError(`LOG_LEVEL must be one of ${[...LEVELS].join(', ')}, got ${JSON.stringify(logLevel.slice(0, 50))}`)

  const secretKey = given(env, 'WAYGATE_SECRET_KEY')
  if (secretKey !== undefined && secretKey.length < 16) throw new SettingsError('WAYGATE_SECRET_KEY must be at least 16 characters')

  const user = given(env, 'WAYGATE_ADMIN_USER')
  const password = given(env, 'WAYGATE_ADMIN_PASSWORD')
  const file = given(env, 'WAYGATE_USERS_FILE')
  let users: AdminUser[]
  if (file !== undefined) {
    if (user !== undefined || password !== undefined) {
      throw new SettingsError('WAYGATE_USERS_FILE and WAYGATE_ADMIN_USER/WAYGATE_ADMIN_PASSWORD are both set: use one of them')
    }
    users = usersFile(file, cwd)
  } else if (user === undefined && password === undefined) {
    throw new SettingsError('no admin user: set WAYGATE_ADMIN_USER and WAYGATE_ADMIN_PASSWORD, or WAYGATE_USERS_FILE (a JSON file of { username, password } with hashPassword() hashes)')
  } else if (user === undefined) {
    throw new SettingsError('WAYGATE_ADMIN_USER is missing (WAYGATE_ADMIN_PASSWORD is set)')
  } else if (password === undefined) {
    throw new SettingsError('WAYGATE_ADMIN_PASSWORD is missing (WAYGATE_ADMIN_USER is set)')
  } else {
    if (user.length > 200) throw new SettingsError('WAYGATE_ADMIN_USER must be at most 200 characters')
    users = [{ username: user, password }]
  }

  const tokenExpiry = seconds(env, 'WAYGATE_TOKEN_EXPIRY')
  const sdkTokenExpiry = seconds(env, 'WAYGATE_SDK_TOKEN_EXPIRY')

  let backend: WaygateBackend
  let webhooks: WebhookConfig[]
  try {
    // the engine's own reading of WAYGATE_BACKEND and friends: the same variables, the same messages
    const config = loadWaygateConfig({ variables: env, cwd })
    const signing = config.webhookSecret === null ? {} : { secret: config.webhookSecret }
    webhooks = [
      ...config.webhookUrls.map(url => ({ url, ...signing })),
      ...config.slackWebhookUrls.map(url => ({ url, formatter: slackWebhookFormatter, ...signing }))
    ]
    backend = createEngineFromEnv({ variables: env, cwd }).backend
  } catch (err) {
    throw new SettingsError((err as Error).message)
  }
  return { port, host, backend, users, secretKey, tokenExpiry, sdkTokenExpiry, webhooks, logLevel }
}
