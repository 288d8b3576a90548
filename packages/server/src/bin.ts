#!/usr/bin/env node
// The waygate-server binary: the Waygate Server from the environment alone (a container, a
// systemd unit). Exit codes: 0 after a clean shutdown, 2 for bad or missing settings, 1 otherwise.
import { createWaygateServer } from './server.js'
import { readSettings, SettingsError } from './settings.js'

const USAGE = `waygate-server: the Waygate Server (dashboard, REST API, service sync)

Settings come from the environment:
  PORT                       port to listen on (default 8001)
  HOST                       address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  WAYGATE_BACKEND            memory | file | redis | postgres (default memory)
  WAYGATE_FILE_PATH          state file of the file backend (default ./waygate-state.json)
  WAYGATE_REDIS_URL          redis://, rediss:// or unix:// URL of the redis backend
  WAYGATE_POSTGRES_URL       postgres:// connection string of the postgres backend
  WAYGATE_SECRET_KEY         token signing key, 16+ characters (default random: tokens die on restart)
  WAYGATE_ADMIN_USER         the admin's user name, with
  WAYGATE_ADMIN_PASSWORD     its password (plain, or a hashPassword() hash)
  WAYGATE_USERS_FILE         or: a JSON file of [{ "username", "password": "<hashPassword() hash>" }]
  WAYGATE_TOKEN_EXPIRY       lifetime of dashboard and CLI tokens, seconds (default 86400)
  WAYGATE_SDK_TOKEN_EXPIRY   lifetime of service tokens, seconds (default 2592000)
  WAYGATE_WEBHOOK_URL, WAYGATE_SLACK_WEBHOOK_URL, WAYGATE_WEBHOOK_SECRET   webhooks
  LOG_LEVEL                  pino level (default info)
`

async function main (): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE)
    return
  }
  let settings
  try {
    settings = readSettings()
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err
    process.stderr.write(`waygate-server: ${err.message}\n(run waygate-server --help for every setting)\n`)
    process.exit(2)
  }
  const app = await createWaygateServer({
    backend: settings.backend,
    auth: settings.users,
    secretKey: settings.secretKey,
    tokenExpiry: settings.tokenExpiry,
    sdkTokenExpiry: settings.sdkTokenExpiry,
    webhooks: settings.webhooks,
    logger: { level: settings.logLevel }
  })

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'waygate server: shutting down')
    // a close that hangs (a backend that never answers) must not keep a stopping container alive
    const force = setTimeout(() => {
      app.log.error('waygate server: shutdown took over 10 s; exiting anyway')
      process.exit(1)
    }, 10_000)
    force.unref()
    app.close().then(() => process.exit(0), err => {
      app.log.error({ err }, 'waygate server: shutdown failed')
      process.exit(1)
    })
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))

  try {
    await app.listen({ port: settings.port, host: settings.host })
  } catch (err) {
    app.log.error({ err }, 'waygate server: cannot listen')
    await app.close().catch(() => {})
    process.exit((err as { code?: string }).code === 'EADDRINUSE' || (err as { code?: string }).code === 'EACCES' ? 2 : 1)
  }
}

await main()
