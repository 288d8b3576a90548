import type { Command } from 'commander'
import { createClient, type Client, type RequestOptions } from './client.js'
import { resolveSettings, type Settings } from './config.js'
import { colourWanted, createStyle, type Style } from './format.js'
import type { Io } from './io.js'
import { jsonText, printable, printableDeep } from './safe-text.js'

/** The flags every command accepts. */
export interface GlobalOptions {
  serverUrl?: string
  service?: string
  timeout?: string
  json?: boolean
  debug?: boolean
}

/** What a command runs with: output, the resolved settings and a client of the admin API. */
export interface Context {
  io: Io
  json: boolean
  debug: boolean
  style: Style
  now(): number
  /** Questions may be asked (on stderr): stdin is a terminal. */
  interactive: boolean
  settings(): Promise<Settings>
  client(): Promise<Client>
  /** Writes lines of human output to stdout. */
  print(text: string): void
  /** Writes a JSON document to stdout. */
  printJson(value: unknown): void
  /** Writes a remark for people to stderr (not in --json mode, where stdout is for machines). */
  note(text: string): void
  /** Writes a debug line to stderr when --debug is on. */
  trace(text: string): void
}

/** Builds the context of one command from its flags (global ones included). */
export function createContext (io: Io, options: GlobalOptions): Context {
  const json = options.json === true
  const debug = options.debug === true
  const now = io.now ?? Date.now
  // a pretend stdin without isTTY (tests) follows isTTY
  const stdinIsTTY = io.stdinIsTTY ?? io.stdin.isTTY ?? io.isTTY
  let settings: Promise<Settings> | undefined
  let client: Promise<Client> | undefined

  // debug lines quote the server's answers: never raw on the terminal
  const trace = (text: string): void => {
    if (debug) io.stderr.write(`debug: ${printable(text)}\n`)
  }

  const ctx: Context = {
    io,
    json,
    debug,
    style: createStyle(!json && colourWanted(io.isTTY, io.env)),
    now,
    interactive: stdinIsTTY,
    settings () {
      settings ??= resolveSettings({ serverUrl: options.serverUrl, service: options.service, timeout: options.timeout, env: io.env, cwd: io.cwd }).then(s => {
        trace(`config file ${s.configPath}`)
        trace(`server ${s.serverUrl} (from ${s.serverUrlSource === 'dotfile' ? s.dotfile! : s.serverUrlSource})`)
        if (s.tokenRefusal !== null) trace('token: WAYGATE_TOKEN is set but not bound to this URL')
        trace(`token ${s.tokenSource === null ? 'none' : `from ${s.tokenSource === 'env' ? 'WAYGATE_TOKEN' : s.tokenSource === 'dotfile' ? s.dotfile! : 'the config file'}`}`)
        if (s.service !== null) trace(`service ${s.service} (from ${s.serviceSource})`)
        return s
      })
      return settings
    },
    client () {
      client ??= ctx.settings().then(s => {
        if (s.tokenRefusal !== null) throw s.tokenRefusal
        const inner = createClient({
          baseUrl: s.serverUrl,
          token: s.token,
          actor: actorName(io.env),
          timeoutMs: s.timeoutMs,
          debug: debug ? trace : undefined
        })
        if (json) return inner
        // human output is built from these answers: what the server wrote is shown, never obeyed
        return {
          baseUrl: inner.baseUrl,
          async request<T> (method: string, path: string, options?: RequestOptions) {
            const res = await inner.request<T>(method, path, options)
            return { ...res, data: printableDeep(res.data) }
          }
        }
      })
      return client
    },
    print (text) {
      io.stdout.write(text.endsWith('\n') ? text : text + '\n')
    },
    printJson (value) {
      io.stdout.write(jsonText(value, 2) + '\n')
    },
    note (text) {
      if (!json) io.stderr.write(text.replace(/\n$/, '').split('\n').map(printable).join('\n') + '\n')
    },
    trace
  }
  return ctx
}

/** Who the operator is, for an admin that runs without auth (it records X-Waygate-Actor). */
function actorName (env: Record<string, string | undefined>): string | undefined {
  const name = env.WAYGATE_ACTOR ?? env.USER ?? env.USERNAME
  return name !== undefined && /^[\x20-\x7e]{1,200}$/.test(name) ? name : undefined
}

/** The positional arguments and options commander hands an action, then the command itself. */
export type Handler<A extends unknown[]> = (ctx: Context, ...args: A) => Promise<number | undefined | void>

/**
 * Wraps a command handler for commander: builds the context from the command's flags (global
 * ones included) and records the exit code the handler answers.
 */
export function actionRunner (io: Io, result: { exitCode: number }) {
  return function action<A extends unknown[]> (handler: Handler<A>) {
    return async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command
      const ctx = createContext(io, command.optsWithGlobals<GlobalOptions>())
      const code = await handler(ctx, ...(args.slice(0, -1) as A))
      result.exitCode = typeof code === 'number' ? code : 0
    }
  }
}

/** The `action` helper each command module receives. */
export type Action = ReturnType<typeof actionRunner>
