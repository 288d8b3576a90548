import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'

// tap's loader arguments (TypeScript from source), without its mock hooks
const childExecArgv = process.execArgv.filter(arg => !arg.includes('@tapjs/mock'))
const run = promisify(execFile)

// ioredis is an optional peer: an app that only uses memory or file state must not need it
const probe = `
import { createRequire } from 'node:module'
const core = await import(process.argv[1])
const engine = core.createEngine({ backend: core.createMemoryBackend() })
await engine.start()
await engine.close()
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some(f => /[\\\\/]ioredis[\\\\/]/.test(f))
const before = loaded()
core.createRedisRateLimitStore({ url: 'redis://127.0.0.1:1' }).close()
console.log(JSON.stringify({ before, after: loaded() }))
`

t.test('importing @waygate/core and running a memory engine does not load ioredis; the Redis store does', async t => {
  const coreEntry = new URL('../src/index.ts', import.meta.url).href
  const { stdout } = await run(process.execPath, [...childExecArgv, '--input-type=module', '-e', probe, coreEntry], { timeout: 20_000 })
  t.same(JSON.parse(stdout.trim().split('\n').pop() ?? ''), { before: false, after: true })
})
