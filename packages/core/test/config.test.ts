import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createEngineFromEnv, createMemoryBackend, loadWaygateConfig, PASS } from '@waygate/core'
import type { WaygateConfig } from '@waygate/core'
import { findWaygateFile, parseWaygateFile } from '../src/config.js'
import type { Teardown } from './helpers/engine.js'

/** A fresh directory outside the repository, removed when the test ends. */
function tempDir (t: Teardown): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'waygate-config-')))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function write (path: string, text: string): string {
  writeFileSync(path, text)
  return path
}

t.test('defaults', async t => {
  const cwd = tempDir(t)
  const config = loadWaygateConfig({ cwd, variables: {}, configFile: false })
  t.same(config, {
    backend: 'memory',
    env: 'dev',
    filePath: join(cwd, 'waygate-state.json'),
    redisUrl: null,
    postgresUrl: null,
    testBypass: false,
    webhookUrls: [],
    slackWebhookUrls: [],
    webhookSecret: null,
    configFile: null,
    sources: { backend: 'default', env: 'default', filePath: 'default', redisUrl: 'default', postgresUrl: 'default', testBypass: 'default', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' }
  })
})

t.test('cwd defaults to the process working directory and variables to process.env', async t => {
  const config = loadWaygateConfig({ variables: {}, configFile: false })
  t.equal(config.filePath, join(process.cwd(), 'waygate-state.json'))
  const cwd = tempDir(t)
  t.same(loadWaygateConfig({ cwd, configFile: false }), loadWaygateConfig({ cwd, configFile: false, variables: process.env }))
})

t.test('reads every variable from the environment', async t => {
  const cwd = tempDir(t)
  const config = loadWaygateConfig({
    cwd,
    configFile: false,
    variables: {
      WAYGATE_BACKEND: 'file',
      WAYGATE_ENV: 'production',
      WAYGATE_FILE_PATH: 'data/state.json',
      WAYGATE_REDIS_URL: 'redis://cache.internal:6380/2',
      WAYGATE_TEST_BYPASS: 'true',
      PATH: '/usr/bin'
    }
  })
  t.same(config, {
    backend: 'file',
    env: 'production',
    filePath: join(cwd, 'data/state.json'),
    redisUrl: 'redis://cache.internal:6380/2',
    postgresUrl: null,
    testBypass: true,
    webhookUrls: [],
    slackWebhookUrls: [],
    webhookSecret: null,
    configFile: null,
    sources: { backend: 'env', env: 'env', filePath: 'env', redisUrl: 'env', postgresUrl: 'default', testBypass: 'env', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' }
  })
})

t.test('an absolute WAYGATE_FILE_PATH is kept', async t => {
  const cwd = tempDir(t)
  const config = loadWaygateConfig({ cwd, configFile: false, variables: { WAYGATE_FILE_PATH: '/var/lib/waygate/state.json' } })
  t.equal(config.filePath, '/var/lib/waygate/state.json')
})

t.test('WAYGATE_TEST_BYPASS spellings', async t => {
  const cwd = tempDir(t)
  const bypass = (value: string) => loadWaygateConfig({ cwd, configFile: false, variables: { WAYGATE_TEST_BYPASS: value } }).testBypass
  for (const yes of ['true', '1', 'yes', 'TRUE', 'Yes']) t.equal(bypass(yes), true, yes)
  for (const no of ['false', '0', 'no', 'NO']) t.equal(bypass(no), false, no)
})

t.test('WAYGATE_BACKEND is case-insensitive', async t => {
  const cwd = tempDir(t)
  t.equal(loadWaygateConfig({ cwd, configFile: false, variables: { WAYGATE_BACKEND: 'File' } }).backend, 'file')
})

t.test('an empty variable counts as unset', async t => {
  const cwd = tempDir(t)
  write(join(cwd, '.waygate'), 'WAYGATE_ENV=staging\n')
  const config = loadWaygateConfig({ cwd, variables: { WAYGATE_ENV: '', WAYGATE_BACKEND: '' } })
  t.equal(config.env, 'staging')
  t.equal(config.backend, 'memory')
  t.same(config.sources, { backend: 'default', env: 'file', filePath: 'default', redisUrl: 'default', postgresUrl: 'default', testBypass: 'default', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' })
})

t.test('the .waygate file', async t => {
  t.test('is found by walking up from the working directory', async t => {
    const root = tempDir(t)
    const file = write(join(root, '.waygate'), 'WAYGATE_BACKEND=file\nWAYGATE_ENV=staging\nWAYGATE_FILE_PATH=state/waygate.json\n')
    const cwd = join(root, 'services', 'api')
    mkdirSync(cwd, { recursive: true })
    const config = loadWaygateConfig({ cwd, variables: {} })
    t.equal(config.configFile, file)
    t.equal(config.backend, 'file')
    t.equal(config.env, 'staging')
    t.equal(config.filePath, join(root, 'state/waygate.json'), 'a relative path in the file is relative to the file')
    t.same(config.sources, { backend: 'file', env: 'file', filePath: 'file', redisUrl: 'default', postgresUrl: 'default', testBypass: 'default', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' })
  })

  t.test('the nearest one wins and files are not merged', async t => {
    const root = tempDir(t)
    write(join(root, '.waygate'), 'WAYGATE_BACKEND=file\nWAYGATE_ENV=outer\n')
    mkdirSync(join(root, 'app', 'src'), { recursive: true })
    const inner = write(join(root, 'app', '.waygate'), 'WAYGATE_ENV=inner\n')
    const config = loadWaygateConfig({ cwd: join(root, 'app', 'src'), variables: {} })
    t.equal(config.configFile, inner)
    t.equal(config.env, 'inner')
    t.equal(config.backend, 'memory')
  })

  t.test('a directory named .waygate is not a config file', async t => {
    const root = tempDir(t)
    const file = write(join(root, '.waygate'), 'WAYGATE_ENV=outer\n')
    mkdirSync(join(root, 'app', '.waygate'), { recursive: true })
    t.equal(findWaygateFile(join(root, 'app')), file)
  })

  t.test('configFile names the file to read instead', async t => {
    const root = tempDir(t)
    write(join(root, '.waygate'), 'WAYGATE_ENV=found\n')
    const other = write(join(root, 'ci.waygate'), 'WAYGATE_ENV=ci\n')
    const config = loadWaygateConfig({ cwd: root, variables: {}, configFile: 'ci.waygate' })
    t.equal(config.configFile, other)
    t.equal(config.env, 'ci')
  })

  t.test('configFile: false reads none', async t => {
    const root = tempDir(t)
    write(join(root, '.waygate'), 'WAYGATE_ENV=found\n')
    const config = loadWaygateConfig({ cwd: root, variables: {}, configFile: false })
    t.equal(config.configFile, null)
    t.equal(config.env, 'dev')
  })

  t.test('a configFile that does not exist is an error', async t => {
    const root = tempDir(t)
    t.throws(() => loadWaygateConfig({ cwd: root, variables: {}, configFile: 'missing.waygate' }),
      { code: 'WG_ERR_CONFIG_INVALID', message: /missing\.waygate/ })
  })
})

t.test('.waygate syntax', async t => {
  t.test('comments, blank lines, export, quotes, CRLF and a BOM', async t => {
    const text = [
      '\uFEFF# waygate settings for this checkout',
      '',
      '   # indented comment',
      'export WAYGATE_BACKEND=file',
      'WAYGATE_ENV = staging   # trailing comment',
      'WAYGATE_FILE_PATH="my state/waygate #1.json"  # quoted keeps # and spaces',
      "WAYGATE_REDIS_URL='redis://localhost:6379'",
      'WAYGATE_TEST_BYPASS=',
      'WAYGATE_TOKEN=abc#def',
      'WAYGATE_SERVER_URL=http://localhost:8000/waygate'
    ].join('\r\n')
    const entries = parseWaygateFile(text, '/x/.waygate')
    t.same(Object.fromEntries([...entries].map(([k, v]) => [k, v.value])), {
      WAYGATE_BACKEND: 'file',
      WAYGATE_ENV: 'staging',
      WAYGATE_FILE_PATH: 'my state/waygate #1.json',
      WAYGATE_REDIS_URL: 'redis://localhost:6379',
      WAYGATE_TEST_BYPASS: '',
      WAYGATE_TOKEN: 'abc#def',
      WAYGATE_SERVER_URL: 'http://localhost:8000/waygate'
    })
    t.equal(entries.get('WAYGATE_ENV')?.line, 5)
  })

  t.test('an empty or comment-only value is unset', async t => {
    const entries = parseWaygateFile('WAYGATE_ENV= # none yet\nWAYGATE_BACKEND=""\n', 'f')
    t.equal(entries.get('WAYGATE_ENV')?.value, '')
    t.equal(entries.get('WAYGATE_BACKEND')?.value, '')
  })

  t.test('mistakes are errors naming the file and line', async t => {
    const cases: Array<[string, RegExp]> = [
      ['WAYGATE_ENV=dev\nWAYGATE_BACKEND file\n', /\/app\/\.waygate line 2: expected KEY=value/],
      ['WAYGATE_BAKEND=file\n', /line 1: unknown key WAYGATE_BAKEND/],
      ['DATABASE_URL=postgres://x\n', /unknown key DATABASE_URL/],
      ['WAYGATE_ENV=dev\n\nWAYGATE_ENV=prod\n', /line 3: WAYGATE_ENV is already set on line 1/],
      ['WAYGATE_ENV="dev\n', /line 1: missing closing "/],
      ["WAYGATE_ENV='dev' prod\n", /line 1: unexpected text after the closing '/],
      ['=dev\n', /expected KEY=value/],
      ['1WAYGATE=dev\n', /expected KEY=value/]
    ]
    for (const [text, message] of cases) {
      t.throws(() => parseWaygateFile(text, '/app/.waygate'), { code: 'WG_ERR_CONFIG_INVALID', message }, JSON.stringify(text))
    }
  })

  t.test('a broken file fails loading', async t => {
    const root = tempDir(t)
    const file = write(join(root, '.waygate'), 'WAYGATE_BACKEND: file\n')
    t.throws(() => loadWaygateConfig({ cwd: root, variables: {} }),
      { code: 'WG_ERR_CONFIG_INVALID', message: new RegExp(`${file.replace(/[.]/g, '\\.')} line 1`) })
  })
})

t.test('precedence: explicit options > environment > .waygate > defaults', async t => {
  const root = tempDir(t)
  mkdirSync(join(root, 'cwd'))
  write(join(root, '.waygate'), [
    'WAYGATE_BACKEND=file',
    'WAYGATE_ENV=from-file',
    'WAYGATE_FILE_PATH=file.json',
    'WAYGATE_REDIS_URL=redis://file:6379',
    'WAYGATE_TEST_BYPASS=yes'
  ].join('\n'))
  const cwd = join(root, 'cwd')
  const variables = {
    WAYGATE_BACKEND: 'redis',
    WAYGATE_ENV: 'from-env',
    WAYGATE_FILE_PATH: 'env.json',
    WAYGATE_REDIS_URL: 'redis://env:6379',
    WAYGATE_TEST_BYPASS: 'no'
  }

  const fromFile = loadWaygateConfig({ cwd, variables: {} })
  t.match(fromFile, { backend: 'file', env: 'from-file', filePath: join(root, 'file.json'), redisUrl: 'redis://file:6379', testBypass: true })

  const fromEnv = loadWaygateConfig({ cwd, variables })
  t.match(fromEnv, { backend: 'redis', env: 'from-env', filePath: join(cwd, 'env.json'), redisUrl: 'redis://env:6379', testBypass: false })
  t.same(fromEnv.sources, { backend: 'env', env: 'env', filePath: 'env', redisUrl: 'env', postgresUrl: 'default', testBypass: 'env', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' })

  const fromOptions = loadWaygateConfig({
    cwd,
    variables,
    backend: 'memory',
    env: 'from-options',
    filePath: 'options.json',
    redisUrl: 'rediss://options:6380',
    testBypass: true
  })
  t.match(fromOptions, { backend: 'memory', env: 'from-options', filePath: join(cwd, 'options.json'), redisUrl: 'rediss://options:6380', testBypass: true })
  t.same(fromOptions.sources, { backend: 'options', env: 'options', filePath: 'options', redisUrl: 'options', postgresUrl: 'default', testBypass: 'options', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' })

  const explicitFalse = loadWaygateConfig({ cwd, variables: {}, testBypass: false })
  t.equal(explicitFalse.testBypass, false, 'an explicit false beats the file\'s yes')

  const mixed = loadWaygateConfig({ cwd, variables: { WAYGATE_ENV: 'from-env' }, backend: 'memory' })
  t.same(mixed.sources, { backend: 'options', env: 'env', filePath: 'file', redisUrl: 'file', postgresUrl: 'default', testBypass: 'file', webhookUrls: 'default', slackWebhookUrls: 'default', webhookSecret: 'default' })
})

t.test('only the value that applies is checked', async t => {
  const root = tempDir(t)
  write(join(root, '.waygate'), 'WAYGATE_BACKEND=mongo\n')
  t.equal(loadWaygateConfig({ cwd: root, variables: { WAYGATE_BACKEND: 'file' } }).backend, 'file')
  t.throws(() => loadWaygateConfig({ cwd: root, variables: {} }), { code: 'WG_ERR_CONFIG_INVALID' })
})

t.test('invalid values name the variable and where it came from', async t => {
  const root = tempDir(t)
  const bad: Array<[string, string, RegExp]> = [
    ['WAYGATE_BACKEND', 'mongo', /WAYGATE_BACKEND .*must be one of memory, file, redis, postgres, got "mongo"/],
    ['WAYGATE_ENV', 'prod env', /WAYGATE_ENV .*got "prod env"/],
    ['WAYGATE_ENV', 'x'.repeat(101), /WAYGATE_ENV/],
    ['WAYGATE_REDIS_URL', 'localhost:6379', /WAYGATE_REDIS_URL .*redis:\/\/, rediss:\/\/ or unix:\/\/ URL, got "localhost:6379"/],
    ['WAYGATE_REDIS_URL', 'http://localhost:6379', /WAYGATE_REDIS_URL/],
    ['WAYGATE_REDIS_URL', 'not a url', /WAYGATE_REDIS_URL/],
    ['WAYGATE_TEST_BYPASS', 'maybe', /WAYGATE_TEST_BYPASS .*got "maybe"/],
    ['WAYGATE_FILE_PATH', '   ', /WAYGATE_FILE_PATH/]
  ]
  for (const [name, value, message] of bad) {
    t.throws(() => loadWaygateConfig({ cwd: root, configFile: false, variables: { [name]: value } }),
      { code: 'WG_ERR_CONFIG_INVALID', message }, `${name}=${value} in the environment`)
    t.throws(() => loadWaygateConfig({ cwd: root, configFile: false, variables: { [name]: value } }),
      { message: /from the environment/ })
  }

  const file = write(join(root, '.waygate'), '# comment\nWAYGATE_ENV=prod env\n')
  t.throws(() => loadWaygateConfig({ cwd: root, variables: {} }),
    { code: 'WG_ERR_CONFIG_INVALID', message: `Invalid waygate configuration: WAYGATE_ENV from ${file} line 2 must be 1 to 100 letters, digits, ".", "_" or "-", got "prod env"` })
})

t.test('invalid explicit options are option errors', async t => {
  const cwd = tempDir(t)
  const base = { cwd, configFile: false as const, variables: {} }
  t.throws(() => loadWaygateConfig({ ...base, backend: 'mongo' as never }), { code: 'WG_ERR_OPTIONS_INVALID', message: /options\.backend/ })
  t.throws(() => loadWaygateConfig({ ...base, env: '' }), { code: 'WG_ERR_OPTIONS_INVALID', message: /options\.env/ })
  t.throws(() => loadWaygateConfig({ ...base, testBypass: 'yes' as never }), { code: 'WG_ERR_OPTIONS_INVALID', message: /options\.testBypass/ })
  t.throws(() => loadWaygateConfig({ ...base, redisUrl: 'nope' }), { code: 'WG_ERR_OPTIONS_INVALID', message: /options\.redisUrl/ })
  t.throws(() => loadWaygateConfig({ ...base, configFile: '' }), { code: 'WG_ERR_OPTIONS_INVALID' })
})

t.test('createEngineFromEnv', async t => {
  t.test('builds a memory engine by default', async t => {
    const cwd = tempDir(t)
    const engine = createEngineFromEnv({ cwd, variables: {}, resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    t.equal(engine.backend.kind, 'memory')
    t.equal(engine.env, 'dev')
    t.equal(engine.testBypass, false)
  })

  t.test('env and test bypass reach the engine', async t => {
    const cwd = tempDir(t)
    const engine = createEngineFromEnv({ cwd, variables: { WAYGATE_ENV: 'production', WAYGATE_TEST_BYPASS: '1' }, resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    await engine.start()
    t.equal(engine.env, 'production')
    t.equal(engine.testBypass, true)
    const h = engine.declareRoute('GET', '/payments', { maintenance: { reason: 'x' } })
    t.equal(engine.decide(h), PASS)
  })

  t.test('an explicit env beats WAYGATE_ENV', async t => {
    const cwd = tempDir(t)
    const engine = createEngineFromEnv({ cwd, variables: { WAYGATE_ENV: 'production' }, env: 'staging', resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    t.equal(engine.env, 'staging')
  })

  t.test('file: state lands in WAYGATE_FILE_PATH and survives a restart', async t => {
    const root = tempDir(t)
    write(join(root, '.waygate'), 'WAYGATE_BACKEND=file\nWAYGATE_FILE_PATH=var/state.json\n')
    const statePath = join(root, 'var', 'state.json')
    const options = { cwd: root, variables: {}, resyncIntervalMs: 0 }

    const first = createEngineFromEnv(options)
    t.equal(first.backend.kind, 'file')
    first.declareRoute('GET', '/payments')
    await first.start()
    await first.registerDeclaredRoutes()
    await first.disable('GET:/payments', { reason: 'kept on disk' })
    await first.close()
    t.ok(existsSync(statePath), 'the state file was written where configured')
    t.match(readFileSync(statePath, 'utf8'), /kept on disk/)

    const second = createEngineFromEnv(options)
    t.teardown(() => second.close())
    const h = second.declareRoute('GET', '/payments')
    await second.start()
    await second.registerDeclaredRoutes()
    t.match(second.decide(h), { action: 'block', kind: 'disabled', reason: 'kept on disk' })
  })

  t.test('redis without WAYGATE_REDIS_URL is refused', async t => {
    const cwd = tempDir(t)
    t.throws(() => createEngineFromEnv({ cwd, configFile: false, variables: { WAYGATE_BACKEND: 'redis' } }),
      { code: 'WG_ERR_CONFIG_INVALID', message: /redis backend needs WAYGATE_REDIS_URL.*WAYGATE_BACKEND from the environment/ })
    t.throws(() => createEngineFromEnv({ cwd, configFile: false, variables: {}, backend: 'redis' }),
      { code: 'WG_ERR_CONFIG_INVALID', message: /needs WAYGATE_REDIS_URL.*options\.backend/ })
  })

  t.test('postgres without WAYGATE_POSTGRES_URL is refused; a bad URL is named, never echoed', async t => {
    const cwd = tempDir(t)
    t.throws(() => createEngineFromEnv({ cwd, configFile: false, variables: { WAYGATE_BACKEND: 'postgres' } }),
      { code: 'WG_ERR_CONFIG_INVALID', message: /postgres backend needs WAYGATE_POSTGRES_URL.*WAYGATE_BACKEND from the environment/ })
    const err = (() => {
      try {
        loadWaygateConfig({ cwd, configFile: false, variables: { WAYGATE_BACKEND: 'postgres', WAYGATE_POSTGRES_URL: 'mysql://root:hunter2@db/app' } })
      } catch (caught) {
        return caught as Error & { code?: string }
      }
      return null
    })()
    t.match(err, { code: 'WG_ERR_CONFIG_INVALID', message: /WAYGATE_POSTGRES_URL from the environment must be a postgres:\/\/ or postgresql:\/\/ URL/ })
    t.notMatch(err?.message ?? '', /hunter2/, 'the password is not echoed')
    const config = loadWaygateConfig({ cwd, configFile: false, variables: { WAYGATE_BACKEND: 'POSTGRES', WAYGATE_POSTGRES_URL: 'postgresql://app@/waygate?host=/run/postgresql' } })
    t.match(config, { backend: 'postgres', postgresUrl: 'postgresql://app@/waygate?host=/run/postgresql', sources: { postgresUrl: 'env' } })
  })

  t.test('backendFactories plug a backend in and get the resolved config', async t => {
    const cwd = tempDir(t)
    const seen: WaygateConfig[] = []
    const plugged = createMemoryBackend()
    const engine = createEngineFromEnv({
      cwd,
      configFile: false,
      variables: { WAYGATE_BACKEND: 'redis', WAYGATE_REDIS_URL: 'redis://cache:6379/1' },
      resyncIntervalMs: 0,
      backendFactories: {
        redis: config => {
          seen.push(config)
          return plugged
        }
      }
    })
    t.teardown(() => engine.close())
    t.equal(engine.backend, plugged)
    t.equal(seen.length, 1)
    t.match(seen[0], { backend: 'redis', redisUrl: 'redis://cache:6379/1', env: 'dev' })
  })

  t.test('a factory overrides a built-in backend of the same name', async t => {
    const cwd = tempDir(t)
    const plugged = createMemoryBackend()
    const engine = createEngineFromEnv({ cwd, configFile: false, variables: {}, resyncIntervalMs: 0, backendFactories: { memory: () => plugged } })
    t.teardown(() => engine.close())
    t.equal(engine.backend, plugged)
  })

  t.test('a factory that returns no backend is an option error', async t => {
    const cwd = tempDir(t)
    t.throws(() => createEngineFromEnv({ cwd, configFile: false, variables: {}, backendFactories: { memory: () => null as never } }),
      { code: 'WG_ERR_OPTIONS_INVALID', message: /backendFactories\.memory/ })
  })

  t.test('a backend given as is wins and WAYGATE_BACKEND is not read', async t => {
    const cwd = tempDir(t)
    const backend = createMemoryBackend()
    const engine = createEngineFromEnv({ cwd, configFile: false, variables: { WAYGATE_BACKEND: 'mongo', WAYGATE_ENV: 'qa' }, backend, resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    t.equal(engine.backend, backend)
    t.equal(engine.env, 'qa')
  })

  t.test('engine options are passed through', async t => {
    const cwd = tempDir(t)
    const engine = createEngineFromEnv({ cwd, configFile: false, variables: {}, now: () => 42, resyncIntervalMs: 0 })
    t.teardown(() => engine.close())
    t.equal(engine.now(), 42)
    t.throws(() => createEngineFromEnv({ cwd, configFile: false, variables: {}, resyncIntervalMs: -5 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  })
})
