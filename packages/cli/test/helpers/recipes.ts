import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
// The CLI depends on no server package; the recipes' tests borrow the workspace's sources to run a real app.
import { createEngine, createMemoryBackend, type WaygateEngine } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'

/** The page whose recipes run verbatim. */
export const RECIPES_DOC = fileURLToPath(new URL('../../../../docs/monitoring-and-deploy.md', import.meta.url))

/** One fenced block of the page. */
export interface Recipe {
  /** The `##`/`###` heading it sits under. */
  heading: string
  /** The fence's language: sh, bash, js, cron, yaml… */
  lang: string
  /** The file it names in its first comment (`# deploy.sh: …`, `// monitor-routes.mjs`), if any. */
  file: string | undefined
  code: string
}

/** Every fenced block of the page, in order. */
export async function readRecipes (): Promise<Recipe[]> {
  const lines = (await readFile(RECIPES_DOC, 'utf8')).split('\n')
  const recipes: Recipe[] = []
  let heading = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    const h = /^#{2,4} (.+)$/.exec(line)
    if (h !== null) heading = h[1] as string
    const fence = /^```(\w*)\s*$/.exec(line)
    if (fence === null) continue
    const body: string[] = []
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] as string)
    const code = body.join('\n') + '\n'
    const named = /^(?:#|\/\/) (?:\/usr\/local\/bin\/)?([\w.-]+\.(?:sh|mjs|ya?ml)|waygate-cron)\b/m.exec(body.slice(0, 2).join('\n'))
    recipes.push({ heading, lang: fence[1] ?? '', file: named?.[1], code })
  }
  return recipes
}

/** The one block named `file` (in its first comment), or under `heading` when it names none. */
export function recipe (recipes: Recipe[], which: { file: string } | { heading: string, lang?: string }): Recipe {
  const found = recipes.filter(r => 'file' in which
    ? r.file === which.file
    : r.heading === which.heading && (which.lang === undefined || r.lang === which.lang))
  if (found.length !== 1) throw new Error(`${JSON.stringify(which)}: ${found.length} blocks in ${RECIPES_DOC}, expected one`)
  return found[0] as Recipe
}

/** The scripts' users: monitor reads, deploy-bot and cron change, mallory is not in the sentinel's list. */
export const PASSWORDS: Record<string, string> = {
  monitor: 'monitor-pass',
  'deploy-bot': 'deploy-pass',
  cron: 'cron-pass',
  mallory: 'mallory-pass'
}

/** A real app with waygate and its admin at /waygate, listening on 127.0.0.1. */
export interface RecipeApp {
  app: FastifyInstance
  engine: WaygateEngine
  /** `http://127.0.0.1:PORT`: the app, for health checks */
  origin: string
  /** `http://127.0.0.1:PORT/waygate`: WAYGATE_SERVER_URL */
  adminUrl: string
  /** Moves the engine's clock (not the admin's tokens') by `ms` from the real time. */
  setClockOffset(ms: number): void
  /** A token of `user` from the REST API. */
  token(user?: string): Promise<string>
  /** The audit log, newest first. */
  audit(): Promise<Array<Record<string, any>>>
}

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Starts an app shaped like the page's examples: /health force-active, GET /readiness, GET and
 * POST /orders, GET /payments, GET /reports, GET /old-endpoint disabled.
 */
export async function startRecipeApp (t: Teardown): Promise<RecipeApp> {
  let offset = 0
  const app = Fastify({ logger: false })
  const engine = createEngine({ backend: createMemoryBackend(), env: 'production', now: () => Date.now() + offset })
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true })
  const ok = async () => ({ ok: true })
  app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
  app.get('/readiness', ok)
  app.get('/orders', ok)
  app.post('/orders', ok)
  app.get('/payments', ok)
  app.get('/reports', ok)
  app.get('/old-endpoint', { config: { waygate: { disabled: { reason: 'replaced by /v2/endpoint' } } } }, ok)
  await app.register(waygateAdmin, {
    auth: Object.entries(PASSWORDS).map(([username, password]) => ({ username, password })),
    secretKey: 'recipes-test-secret-key-0123456789'
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const origin = `http://127.0.0.1:${address.port}`
  const token = async (user = 'monitor'): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { username: user, password: PASSWORDS[user], platform: 'api' } })
    if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
    return res.json().token as string
  }
  return {
    app,
    engine,
    origin,
    adminUrl: `${origin}/waygate`,
    setClockOffset (ms) { offset = ms },
    token,
    async audit () {
      const res = await app.inject({ method: 'GET', url: '/waygate/api/audit?limit=500', headers: { 'x-waygate-token': await token('monitor') } })
      return res.json()
    }
  }
}

/** What a shell run left behind. */
export interface ShellResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A scratch host: a home, a working directory, `waygate` (the CLI from source) and stubs on the PATH. */
export interface Host {
  dir: string
  /** Each stub's calls, one line each: `<name> <args>` and what it saw. */
  stubLog(): Promise<string>
  /** Writes `code` to `dir/name` (executable). */
  write(name: string, code: string): Promise<string>
  /** Runs `bash -c script` in `dir`; `env` on top of the host's small environment. */
  sh(script: string, options?: { env?: Record<string, string>, input?: string, detached?: boolean, onStart?: (pid: number) => void }): Promise<ShellResult>
}

const BIN = fileURLToPath(new URL('../../src/bin.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')

/** Which of the tools the recipes run on (`bash`, `curl`, `jq`) the PATH lacks. */
export function missingTools (): string[] {
  const dirs = (process.env.PATH ?? '').split(':').filter(dir => dir !== '')
  return ['bash', 'curl', 'jq'].filter(tool => !dirs.some(dir => {
    try {
      accessSync(join(dir, tool), constants.X_OK)
      return true
    } catch {
      return false
    }
  }))
}

/**
 * Creates a host. `stubs` are shell bodies for commands the recipes call but a test cannot run
 * (`docker`, `npx`); each stub logs its arguments to the stub log first.
 */
export async function host (t: Teardown, stubs: Record<string, string> = {}): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-recipes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const bin = join(dir, 'bin')
  const home = join(dir, 'home')
  const log = join(dir, 'stubs.log')
  await mkdir(bin)
  await mkdir(home)
  await writeFile(log, '')
  const exe = async (file: string, code: string): Promise<string> => {
    await writeFile(file, code)
    await chmod(file, 0o755)
    return file
  }
  // the CLI as an installed `waygate` would be, but from source
  await exe(join(bin, 'waygate'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --conditions=@waygate/source --import ${JSON.stringify(TSX)} ${JSON.stringify(BIN)} "$@"\n`)
  for (const [name, body] of Object.entries(stubs)) {
    await exe(join(bin, name), `#!/usr/bin/env bash\necho "${name} $*" >> ${JSON.stringify(log)}\n${body}\n`)
  }
  const base: Record<string, string> = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: home,
    LANG: 'C.UTF-8',
    STUB_LOG: log
  }
  return {
    dir,
    stubLog: () => readFile(log, 'utf8'),
    write: (name, code) => exe(join(dir, name), code),
    sh (script, options = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn('bash', ['-c', script], {
          cwd: dir,
          env: { ...base, ...options.env },
          stdio: ['pipe', 'pipe', 'pipe'],
          detached: options.detached === true
        })
        let stdout = ''
        let stderr = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
        child.on('error', reject)
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
        child.stdin.on('error', () => {}) // a script that exits before reading its input
        child.stdin.end(options.input ?? '')
        if (child.pid !== undefined) options.onStart?.(child.pid)
      })
    }
  }
}
