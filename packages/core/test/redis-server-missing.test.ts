import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

// Without redis-server, a Redis test file must stop with one line saying what to install: not a
// `spawn redis-server ENOENT` stack, and not a skip (CI must run these tests).

const TSX = import.meta.resolve('tsx')
const HELPERS = {
  'helpers/redis-server.ts': new URL('./helpers/redis-server.ts', import.meta.url).href,
  'rate-limit/helpers/redis-server.ts': new URL('./rate-limit/helpers/redis-server.ts', import.meta.url).href
}

interface Result { code: number | null, stdout: string, stderr: string }

/** Runs `startRedisServer()` of `helper` in a child process whose PATH has node and nothing else. */
async function startWithout (helper: string, env: Record<string, string> = {}): Promise<Result> {
  const bin = await mkdtemp(join(tmpdir(), 'wg-no-redis-'))
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  await symlink(process.execPath, join(bin, 'node'))
  const script = `import { startRedisServer } from ${JSON.stringify(helper)}\n` +
    'await startRedisServer({ teardown () {} })\nconsole.log("started")\n'
  const childEnv: Record<string, string> = { PATH: bin, TMPDIR: bin, ...env }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@waygate/source', '--import', TSX, '--input-type=module', '-e', script], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

for (const [name, helper] of Object.entries(HELPERS)) {
  t.test(`${name}: without redis-server on the PATH, one line says what to install`, async t => {
    const result = await startWithout(helper)
    t.equal(result.code, 1, 'the test file fails')
    t.equal(result.stdout, '', 'nothing ran')
    const lines = result.stderr.trim().split('\n')
    t.equal(lines.length, 1, `one line, got:\n${result.stderr}`)
    t.match(lines[0], /^redis-server not found \(not on the PATH\): the Redis tests need it\. Install Redis \(Debian\/Ubuntu: apt-get install redis-server; macOS: brew install redis\) or set REDIS_SERVER to its path\.$/)
    t.notMatch(result.stderr, /ENOENT|at .*\.ts:\d+/, 'no spawn error, no stack')
  })
}

t.test('REDIS_SERVER pointing at nothing: the same line, naming the path', async t => {
  const result = await startWithout(HELPERS['helpers/redis-server.ts'], { REDIS_SERVER: '/nonexistent/redis-server' })
  t.equal(result.code, 1)
  t.equal(result.stderr, 'redis-server not found (no executable at REDIS_SERVER=/nonexistent/redis-server): the Redis tests need it. ' +
    'Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_SERVER to its path.\n')
})

t.test('the check leaves no temporary directory behind', async t => {
  const bin = await mkdtemp(join(tmpdir(), 'wg-no-redis-probe-'))
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  const result = await startWithout(HELPERS['helpers/redis-server.ts'], { TMPDIR: bin })
  t.equal(result.code, 1)
  t.same((await readdir(bin)).filter(name => name.startsWith('wg-redis-')), [], 'it stops before creating the socket directory')
})
