import type { Command } from 'commander'
import { readConfig, writeConfig } from '../config.js'
import type { Action } from '../context.js'
import { CliError, UsageError } from '../errors.js'
import { relativeTime } from '../format.js'
import { ask, askHidden, readAll } from '../prompt.js'

interface LoginReply { token: string, user: string, platform: string, expiresAt: string }

interface LoginOptions { password?: string, passwordStdin?: boolean, printToken?: boolean }

const STDIN_EXAMPLE = 'printf %s "$WAYGATE_PASS" | waygate login USER --password-stdin'

/** `waygate login [user]` and `waygate logout`. */
export function registerAuthCommands (program: Command, action: Action): void {
  program.command('login')
    .description('log in to the admin API and save the token (per server URL) in the config file')
    .argument('[user]', 'user name (asked for on a terminal when omitted)')
    .option('--password <password>', 'the password (visible to other processes: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--print-token', 'print the token on stdout instead of saving it, e.g. for WAYGATE_TOKEN')
    .addHelpText('after', `
Examples:
  waygate login admin                      # asks for the password without echoing it
  ${STDIN_EXAMPLE}
  export WAYGATE_TOKEN=$(${STDIN_EXAMPLE} --print-token)`)
    .action(action(async (ctx, userArg: string | undefined, options: LoginOptions) => {
      if (options.password !== undefined && options.passwordStdin === true) {
        throw new UsageError('--password and --password-stdin exclude each other')
      }
      const settings = await ctx.settings()
      // a password is a credential too: say so when a .waygate file chose where it goes
      if (settings.serverUrlSource === 'dotfile') ctx.note(`note: logging in to ${settings.serverUrl}, the server URL from ${settings.dotfile!}`)
      let user = userArg?.trim()
      if (user === undefined || user === '') {
        if (!ctx.interactive || options.passwordStdin === true) {
          throw new UsageError('no user name given', 'e.g. waygate login admin')
        }
        user = (await ask(ctx.io, 'User: ')).trim()
        if (user === '') throw new UsageError('no user name given', 'e.g. waygate login admin')
      }
      let password: string
      if (options.passwordStdin === true) {
        password = (await readAll(ctx.io.stdin)).replace(/\r?\n$/, '')
        if (password === '') throw new UsageError('--password-stdin: stdin was empty', `e.g. ${STDIN_EXAMPLE}`)
      } else if (options.password !== undefined) {
        password = options.password
      } else if (ctx.interactive) {
        password = await askHidden(ctx.io, `Password for ${user}: `)
      } else {
        throw new UsageError('no password given, and stdin is not a terminal to ask on', `pipe it in: ${STDIN_EXAMPLE}`)
      }
      if (password === '') throw new UsageError('empty password')

      const client = await ctx.client()
      const { data } = await client.request<LoginReply>('POST', '/api/auth/login', { body: { username: user, password, platform: 'cli' } })

      if (options.printToken === true) {
        if (ctx.json) ctx.printJson({ serverUrl: settings.serverUrl, ...data })
        else ctx.print(data.token)
        return
      }
      const stored = await readConfig(settings.configPath)
      await writeConfig(settings.configPath, {
        ...stored,
        sessions: { ...stored.sessions, [settings.serverUrl]: { token: data.token, user: data.user, expiresAt: data.expiresAt } }
      })
      if (ctx.json) {
        ctx.printJson({ serverUrl: settings.serverUrl, user: data.user, platform: data.platform, expiresAt: data.expiresAt, configPath: settings.configPath })
      } else {
        ctx.print(`logged in to ${settings.serverUrl} as ${data.user} (token expires ${relativeTime(data.expiresAt, ctx.now())})`)
      }
      if (settings.tokenSource === 'env') ctx.note('note: WAYGATE_TOKEN is set and still takes precedence over the saved token')
      if (settings.tokenSource === 'dotfile') ctx.note(`note: ${settings.dotfile!} sets WAYGATE_TOKEN, which still takes precedence over the saved token`)
    }))

  program.command('logout')
    .description('revoke the token on the server and forget it')
    .action(action(async (ctx) => {
      const settings = await ctx.settings()
      if (settings.tokenRefusal !== null) throw settings.tokenRefusal
      if (settings.token === null) {
        if (ctx.json) ctx.printJson({ serverUrl: settings.serverUrl, revoked: false, forgotten: false })
        else ctx.print(`not logged in to ${settings.serverUrl}`)
        return
      }
      const client = await ctx.client()
      let revoked = false
      let failure: CliError | null = null
      try {
        revoked = (await client.request<{ revoked: boolean }>('POST', '/api/auth/logout')).data.revoked
      } catch (err) {
        // a token the server already refuses is as good as revoked
        if (!(err instanceof CliError) || err.status !== 401) failure = err instanceof CliError ? err : new CliError('WG_ERR_CLI_LOGOUT', String(err))
      }
      let forgotten = false
      if (settings.tokenSource === 'config') {
        const stored = await readConfig(settings.configPath)
        const sessions = { ...stored.sessions }
        delete sessions[settings.serverUrl]
        await writeConfig(settings.configPath, { ...stored, sessions })
        forgotten = true
      }
      if (failure !== null) {
        throw new CliError(failure.code, `${forgotten ? 'forgot the token, but ' : ''}could not revoke it: ${failure.message}`, {
          hint: `it stays valid until it expires; ${failure.hint ?? 'try again later'}`,
          status: failure.status
        })
      }
      if (ctx.json) {
        ctx.printJson({ serverUrl: settings.serverUrl, revoked, forgotten })
        return
      }
      ctx.print(`logged out of ${settings.serverUrl}${revoked ? ' (token revoked)' : ''}`)
      if (settings.tokenSource === 'env') ctx.note('note: the token came from WAYGATE_TOKEN; unset it too')
      if (settings.tokenSource === 'dotfile') ctx.note(`note: the token came from ${settings.dotfile!}; remove it there too`)
    }))
}
