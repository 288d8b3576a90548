import type { Command } from 'commander'
import { checkServerUrl, configPath, readConfig, serverUrlHint, writeConfig } from '../config.js'
import type { Action } from '../context.js'
import { UsageError } from '../errors.js'
import { keyValues, relativeTime } from '../format.js'

/** `waygate config set-url URL` and `waygate config show`. */
export function registerConfigCommands (program: Command, action: Action): void {
  const config = program.command('config').description('where the CLI finds the server, and what it stored')

  config.command('set-url')
    .description('save the admin API URL (the admin mount, e.g. http://localhost:8000/waygate)')
    .argument('<url>', 'the admin mount URL')
    .action(action(async (ctx, url: string) => {
      const checked = checkServerUrl(url)
      if (checked instanceof Error) throw new UsageError(checked.message, serverUrlHint(checked, 'e.g. waygate config set-url http://localhost:8000/waygate'))
      // the saved URL is the one being replaced: it may be the invalid one, so it is not resolved first
      const path = configPath(ctx.io.env)
      const stored = await readConfig(path)
      await writeConfig(path, { ...stored, serverUrl: checked })
      if (ctx.json) {
        ctx.printJson({ serverUrl: checked, configPath: path })
        return
      }
      ctx.print(`server URL set to ${checked} (saved in ${path})`)
      const settings = await ctx.settings().catch(() => null)
      if (settings?.serverUrlSource === 'env') ctx.note('note: WAYGATE_SERVER_URL is set and takes precedence in this shell')
      if (settings?.serverUrlSource === 'dotfile') ctx.note(`note: ${settings.dotfile!} sets WAYGATE_SERVER_URL and takes precedence in this directory`)
    }))

  config.command('show', { isDefault: true })
    .description('show the server URL in use and where it comes from, the service and the session')
    .action(action(async (ctx) => {
      const s = await ctx.settings()
      const source = s.serverUrlSource === 'dotfile' ? s.dotfile! : s.serverUrlSource === 'config' ? s.configPath : s.serverUrlSource === 'env' ? 'WAYGATE_SERVER_URL' : s.serverUrlSource === 'flag' ? '--server-url' : 'default'
      if (ctx.json) {
        ctx.printJson({
          configPath: s.configPath,
          serverUrl: s.serverUrl,
          serverUrlSource: s.serverUrlSource,
          dotfile: s.dotfile,
          service: s.service,
          serviceSource: s.serviceSource,
          user: s.tokenSource === 'config' ? s.session!.user : null,
          expiresAt: s.tokenSource === 'config' ? s.session!.expiresAt : null,
          tokenSource: s.tokenSource,
          tokenRefused: s.tokenRefusal?.message ?? null
        })
        return
      }
      let session: string
      if (s.tokenRefusal !== null) session = 'WAYGATE_TOKEN is set but not used: it is only sent to a URL given by --server-url or WAYGATE_SERVER_URL'
      else if (s.tokenSource === 'env') session = 'token from WAYGATE_TOKEN'
      else if (s.tokenSource === 'dotfile') session = `token from ${s.dotfile!}`
      else if (s.session !== null) {
        const expired = Date.parse(s.session.expiresAt) <= ctx.now()
        session = `${s.session.user}, token ${expired ? 'expired' : 'expires'} ${relativeTime(s.session.expiresAt, ctx.now())}${expired ? ' (run: waygate login)' : ''}`
      } else session = 'not logged in (run: waygate login)'
      ctx.print(keyValues([
        ['server URL', `${s.serverUrl}  (from ${source})`],
        ['service', s.service === null ? 'none: commands cover every service' : `${s.service}  (from ${s.serviceSource === 'env' ? 'WAYGATE_SERVICE' : s.serviceSource === 'dotfile' ? s.dotfile! : '--service'})`],
        ['session', session],
        ['config file', s.configPath]
      ], ctx.style))
    }))
}
