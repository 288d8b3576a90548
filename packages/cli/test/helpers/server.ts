import { spawn } from 'node:child_process'
import { PassThrough } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
// The CLI depends on no server package; its tests borrow the workspace's sources to run a real server.
import { createEngine, createMemoryBackend, type WaygateEngine } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'
import { run } from '../../src/index.js'

export const USER = { username: 'admin', password: 'secret' }
const SECRET = 'cli-test-secret-key-0123456789'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A Fastify app with waygate and its admin at /waygate, listening on 127.0.0.1. */
export interface TestServer {
  app: FastifyInstance
  engine: WaygateEngine
  /** `http://127.0.0.1:PORT` */
  origin: string
  /** The admin mount: `http://127.0.0.1:PORT/waygate` */
  adminUrl: string
  /** A CLI token obtained through the API. */
  token(): Promise<string>
}

/**
 * Starts the app the seeds' quick-start expects: /payments starts in maintenance, /old-endpoint
 * disabled, /health force-active; GET and POST /payments make a bare /payments ambiguous.
 * With `rateLimits`, three more routes for the rate limiting quick-start: GET /public/posts
 * limited to 2/minute per address, POST /public/posts without a limit (a bare /public/posts is
 * ambiguous), GET /users/me limited per user.
 */
export async function startServer (t: Teardown, options: { auth?: false, rateLimits?: boolean } = {}): Promise<TestServer> {
  const app = Fastify({ logger: false })
  const engine = createEngine({ backend: createMemoryBackend(), env: 'production' })
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true })
  const ok = async () => ({ ok: true })
  app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
  app.get('/payments', { config: { waygate: { maintenance: { reason: 'DB migration' } } } }, ok)
  app.post('/payments', ok)
  app.get('/orders', ok)
  app.get('/reports', ok)
  app.get('/debug', ok)
  app.get('/old-endpoint', { config: { waygate: { disabled: { reason: 'replaced by /v2/endpoint' } } } }, ok)
  app.get('/v1/users', ok)
  if (options.rateLimits === true) {
    app.get('/public/posts', { config: { waygate: { rateLimit: '2/minute' } } }, ok)
    app.post('/public/posts', ok)
    app.get('/users/me', { config: { waygate: { rateLimit: { limit: '100/minute', key: 'user' } } } }, ok)
  }
  await app.register(waygateAdmin, { auth: options.auth ?? USER, secretKey: SECRET })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const origin = `http://127.0.0.1:${address.port}`
  return {
    app,
    engine,
    origin,
    adminUrl: `${origin}/waygate`,
    async token () {
      const res = await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { ...USER, platform: 'cli' } })
      if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
      return res.json().token as string
    }
  }
}

/** What one run of the binary left behind. */
export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** A JSON document from stdout. */
export function json<T = any> (result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`)
  }
}

const BIN = fileURLToPath(new URL('../../src/bin.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')

/** Runs the real `waygate` binary (from source, through tsx) in a child process. */
export function runCli (args: string[], options: { cwd: string, env: Record<string, string>, input?: string }): Promise<CliResult> {
  const env: Record<string, string> = {}
  // nothing of the test runner's environment leaks in: no WAYGATE_* settings, no colour switches,
  // and no NODE_OPTIONS / coverage hooks, which would double the start-up time of every run
  const skip = new Set(['NO_COLOR', 'XDG_CONFIG_HOME', 'NODE_OPTIONS', 'NODE_V8_COVERAGE'])
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('WAYGATE_') && !name.startsWith('TAP') && !skip.has(name)) env[name] = value
  }
  Object.assign(env, options.env)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', TSX, BIN, ...args], {
      cwd: options.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
    child.stdin.end(options.input ?? '')
  })
}

/** Runs `run(args)` in this process with a piped (not a terminal) stdin and captured output. */
export async function runInProcess (args: string[], options: { cwd: string, env: Record<string, string>, input?: string }): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const stdin = new PassThrough()
  stdin.end(options.input ?? '')
  const code = await run(args, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    stdin,
    env: options.env,
    cwd: options.cwd,
    isTTY: false,
    stdinIsTTY: false
  })
  return { code, stdout, stderr }
}

interface RunOptions { cwd?: string, env?: Record<string, string>, input?: string }

/** A scratch home for one test: its own config dir and working directory. */
export interface Sandbox {
  home: string
  configDir: string
  /** Runs the real binary, `waygate ARGS`, with WAYGATE_CONFIG_DIR set to this sandbox's config dir. */
  waygate(args: string[], options?: RunOptions): Promise<CliResult>
  /**
   * The same through `run()` in this process: the same code but for `bin.ts`, without the cost of
   * starting Node. For the variations of a behaviour the binary was already tested for.
   */
  run(args: string[], options?: RunOptions): Promise<CliResult>
}

export async function sandbox (t: Teardown, baseEnv: Record<string, string> = {}): Promise<Sandbox> {
  const home = await mkdtemp(join(tmpdir(), 'waygate-cli-'))
  t.teardown(() => rm(home, { recursive: true, force: true }))
  const configDir = join(home, 'config')
  const settings = (options: RunOptions) => ({
    cwd: options.cwd ?? home,
    env: { HOME: home, WAYGATE_CONFIG_DIR: configDir, ...baseEnv, ...options.env },
    input: options.input
  })
  return {
    home,
    configDir,
    waygate: (args, options = {}) => runCli(args, settings(options)),
    run: (args, options = {}) => runInProcess(args, settings(options))
  }
}

/** A sandbox already pointed at `server` with a token in WAYGATE_TOKEN: no login run needed. */
export async function loggedIn (t: Teardown, server: TestServer): Promise<Sandbox> {
  return sandbox(t, { WAYGATE_SERVER_URL: server.adminUrl, WAYGATE_TOKEN: await server.token() })
}
