import { Command } from 'commander'
import { registerAuditCommand } from './commands/audit.js'
import { registerAuthCommands } from './commands/auth.js'
import { registerCheckCommand } from './commands/check.js'
import { registerConfigCommands } from './commands/config.js'
import { registerDeprecationCommands } from './commands/deprecation.js'
import { registerGlobalCommands } from './commands/global.js'
import { registerInfoCommands } from './commands/info.js'
import { registerRateLimitCommands } from './commands/rate-limits.js'
import { registerRouteCommands } from './commands/routes.js'
import { registerServiceCommands } from './commands/services.js'
import { registerTrafficCommand } from './commands/traffic.js'
import { registerTokenCommands } from './commands/tokens.js'
import { actionRunner } from './context.js'
import type { Io } from './io.js'
import { CLI_VERSION } from './version.js'

const ENVIRONMENT_HELP = `
Environment:
  WAYGATE_SERVER_URL   admin API URL (after --server-url; before .waygate and the config file)
  WAYGATE_TOKEN        token to use instead of the one saved by \`waygate login\`; sent only
                       to a URL from --server-url or WAYGATE_SERVER_URL
  WAYGATE_SERVICE      service to scope commands to (after --service; before .waygate):
                       GET:/x and /x then mean that service's route
  WAYGATE_TIMEOUT      seconds each exchange with the server may take (after --timeout; default 30)
  WAYGATE_CONFIG_DIR   config directory (default $XDG_CONFIG_HOME/waygate, else ~/.waygate)
  NO_COLOR             no colours, even on a terminal

Quick start:
  waygate config set-url http://localhost:8000/waygate
  waygate login admin
  waygate status
  waygate disable GET:/payments --reason "hotfix"
  waygate enable GET:/payments
  waygate global enable --reason "deploying" --exempt /health
  waygate global disable
  waygate log

A Waygate Server (many services):
  waygate config set-url http://127.0.0.1:8001
  waygate services
  WAYGATE_SERVICE=payments-service waygate status
  waygate disable /api/cart --reason redesign --service orders-service
  waygate service maintenance enable payments-service --reason "failover" --exempt GET:/health
  waygate token create --service payments-service --name "prod pods"

Exit codes: 0 success, 1 failure, 2 usage error; waygate check also 3 when it cannot tell.`

/**
 * The `waygate` command tree; each action records its exit code in `result`. With `json`, usage
 * errors are reported as JSON too.
 */
export function buildProgram (io: Io, result: { exitCode: number }, options: { json?: boolean } = {}): Command {
  const program = new Command('waygate')
    .description('Control the lifecycle of the routes of a Fastify app running waygate, through its admin API.')
    .version(CLI_VERSION, '-V, --version', 'print the CLI version')
    .option('--server-url <url>', 'admin API URL, e.g. http://localhost:8000/waygate')
    .option('--service <name>', 'scope commands to one service (default: WAYGATE_SERVICE)')
    .option('--timeout <seconds>', 'bound of each exchange with the server, body included (default: WAYGATE_TIMEOUT, else 30)')
    .option('--json', 'machine-readable JSON output (errors too, on stderr)')
    .option('--debug', 'log settings and HTTP requests to stderr (never the token)')
    .exitOverride()
    .configureOutput({
      writeOut: text => { io.stdout.write(text) },
      writeErr: text => { io.stderr.write(text) },
      outputError: (text, write) => {
        if (options.json !== true) {
          write(text)
          return
        }
        const message = text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')
        write(JSON.stringify({ error: { code: 'WG_ERR_CLI_USAGE', message, hint: 'see: waygate --help' } }) + '\n')
      }
    })
    .showSuggestionAfterError()
    .addHelpText('after', ENVIRONMENT_HELP)

  const action = actionRunner(io, result)
  registerConfigCommands(program, action)
  registerAuthCommands(program, action)
  registerRouteCommands(program, action)
  registerDeprecationCommands(program, action)
  registerGlobalCommands(program, action)
  registerRateLimitCommands(program, action)
  registerAuditCommand(program, action)
  registerServiceCommands(program, action)
  registerTrafficCommand(program, action)
  registerTokenCommands(program, action)
  registerInfoCommands(program, action)
  registerCheckCommand(program, action)

  // after a usage error, say where the right usage is
  const hintAfterErrors = (command: Command, path: string): void => {
    command.showHelpAfterError(`hint: run: ${path} --help`)
    for (const sub of command.commands) hintAfterErrors(sub, `${path} ${sub.name()}`)
  }
  if (options.json !== true) hintAfterErrors(program, 'waygate')
  return program
}
