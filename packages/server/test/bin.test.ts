import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { hashPassword } from '@waygate/admin'
import { call, login, register } from './helpers/server.js'

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url))
// the loader is found from here: the child runs in a temporary directory
const TSX = import.meta.resolve('tsx')
const dir = mkdtempSync(join(tmpdir(), 'wg-server-bin-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface Run {
  exited: Promise<{ code: number | null, stdout: string, stderr: string }>
  /** Resolves the URL once the server listens. */
  listening: Promise<string>
  kill(signal: NodeJS.Signals): void
}

function run (env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', TSX, BIN], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  let onListen: (url: string) => void = () => {}
  const listening = new Promise<string>((resolve) => { onListen = resolve })
  child.stdout.setEncoding('utf8').on('data', chunk => {
    stdout += chunk
    const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
    if (match !== null) onListen(match[1]!)
  })
  child.stderr.setEncoding('utf8').on('data', chunk => { stderr += chunk })
  const exited = new Promise<{ code: number | null, stdout: string, stderr: string }>(resolve => {
    child.on('exit', code => resolve({ code, stdout, stderr }))
  })
  return { exited, listening, kill: signal => child.kill(signal) }
}

const admin = { WAYGATE_ADMIN_USER: 'admin', WAYGATE_ADMIN_PASSWORD: 'secret' }

t.test('bad or missing settings: one message naming the variable, exit code 2', async t => {
  const plain = join(dir, 'plain-users.json')
  writeFileSync(plain, JSON.stringify([{ username: 'admin', password: 'secret' }]))
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ...admin, PORT: 'eighty' }, /PORT/],
    [{ WAYGATE_ADMIN_USER: 'admin' }, /WAYGATE_ADMIN_PASSWORD/],
    [{ ...admin, WAYGATE_BACKEND: 'redis' }, /WAYGATE_REDIS_URL/],
    [{ ...admin, WAYGATE_SECRET_KEY: 'short' }, /WAYGATE_SECRET_KEY/],
    [{ WAYGATE_USERS_FILE: plain }, /WAYGATE_USERS_FILE.*hashPassword/]
  ]
  await Promise.all(cases.map(async ([env, message]) => {
    const { code, stderr } = await run(env).exited
    t.equal(code, 2, JSON.stringify(env))
    t.match(stderr, message)
    t.equal(stderr.trim().split('\n')[0]!.startsWith('waygate-server: '), true, 'one clear line first')
  }))
})

t.test('serves /health, keeps state in its file, and exits 0 on SIGTERM', async t => {
  const users = join(dir, 'users.json')
  writeFileSync(users, JSON.stringify([{ username: 'ops', password: await hashPassword('pa55word') }]))
  const state = join(dir, 'state.json')
  const server = run({ PORT: '0', WAYGATE_BACKEND: 'file', WAYGATE_FILE_PATH: state, WAYGATE_USERS_FILE: users, WAYGATE_SECRET_KEY: 'a-secret-of-16-chars-at-least' })
  const url = await Promise.race([server.listening, server.exited.then(r => { throw new Error(`exited ${r.code}: ${r.stderr}`) })])
  const health = await call(url, 'GET', '/health')
  t.equal(health.status, 200)
  t.same(health.body, { status: 'ok' })
  const token = await login(url, { username: 'ops', password: 'pa55word', service: 'payments' })
  t.equal((await register(url, 'payments', token, ['GET:/api/payments'])).status, 200)
  server.kill('SIGTERM')
  const { code, stdout } = await server.exited
  t.equal(code, 0)
  t.match(stdout, /"level":30/, 'pino JSON logs')
  t.match(readFileSync(state, 'utf8'), /payments:GET:\/api\/payments/, 'the state was written')
})
