import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { checkServerUrl, configDir, findDotfile, parseDotfile, resolveSettings, writeConfig } from '../src/config.js'
import { startHostile } from './helpers/hostile.js'
import { json, sandbox, startServer } from './helpers/server.js'

async function scratch (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('the config dir: WAYGATE_CONFIG_DIR, else XDG_CONFIG_HOME/waygate, else ~/.waygate', async t => {
  t.equal(configDir({ WAYGATE_CONFIG_DIR: '/c', XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/c')
  t.equal(configDir({ XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/x/waygate')
  t.equal(configDir({ XDG_CONFIG_HOME: '', HOME: '/h' }), '/h/.waygate')
})

t.test('the config file is written 0600, even over a looser file, in a directory made 0700 when the CLI creates it', async t => {
  const dir = await scratch(t)
  const path = join(dir, 'nested', 'deeper', 'config.json')
  const umask = process.umask(0) // a permissive umask must not loosen what the CLI creates
  t.teardown(() => process.umask(umask))
  await writeConfig(path, { serverUrl: 'http://x/waygate' })
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.equal((await stat(join(dir, 'nested', 'deeper'))).mode & 0o777, 0o700)
  t.equal((await stat(join(dir, 'nested'))).mode & 0o777, 0o700)
  await writeFile(path, '{}', { mode: 0o644 })
  await writeConfig(path, { serverUrl: 'http://x/waygate' })
  t.equal((await stat(path)).mode & 0o777, 0o600)
})

t.test('a config directory the CLI did not create keeps its mode: a shared 1777 directory, a 0755 one', async t => {
  const root = await scratch(t)
  for (const mode of [0o1777, 0o755, 0o750]) {
    const dir = join(root, mode.toString(8))
    await mkdir(dir)
    await chmod(dir, mode)
    await writeConfig(join(dir, 'config.json'), { serverUrl: 'http://x/waygate' })
    t.equal((await stat(dir)).mode & 0o7777, mode, `mode ${mode.toString(8)} kept`)
    t.equal((await stat(join(dir, 'config.json'))).mode & 0o777, 0o600)
  }
  // through the binary: WAYGATE_CONFIG_DIR names a shared directory
  const shared = join(root, 'shared')
  await mkdir(shared)
  await chmod(shared, 0o1777)
  const box = await sandbox(t, { WAYGATE_CONFIG_DIR: shared })
  const saved = await box.waygate(['config', 'set-url', 'http://127.0.0.1:9/waygate'])
  t.equal(saved.code, 0)
  t.equal((await stat(shared)).mode & 0o7777, 0o1777, 'the shared directory is still 1777')
  t.equal((await stat(join(shared, 'config.json'))).mode & 0o777, 0o600)
})

t.test('.waygate files: KEY=value lines, found upward, a directory of that name skipped', async t => {
  t.same(parseDotfile('# comment\nexport WAYGATE_SERVER_URL="http://a/waygate"\nWAYGATE_SERVICE = orders # inline\nnot a line\n'),
    { WAYGATE_SERVER_URL: 'http://a/waygate', WAYGATE_SERVICE: 'orders' })
  const root = await scratch(t)
  await mkdir(join(root, 'project', 'src', '.waygate'), { recursive: true }) // like ~/.waygate, the config dir
  await writeFile(join(root, 'project', '.waygate'), 'WAYGATE_SERVER_URL=http://dot/waygate\n')
  const found = await findDotfile(join(root, 'project', 'src'))
  t.equal(found?.path, join(root, 'project', '.waygate'))
  t.equal(found?.values.WAYGATE_SERVER_URL, 'http://dot/waygate')
  t.equal(await findDotfile(root), null)
})

t.test('server URL precedence: flag > WAYGATE_SERVER_URL > .waygate > config file > default', async t => {
  const root = await scratch(t)
  const env = { WAYGATE_CONFIG_DIR: join(root, 'config') }
  const cwd = join(root, 'work')
  await mkdir(cwd)
  const url = async (extra: Record<string, string> = {}, flag?: string) => (await resolveSettings({ serverUrl: flag, env: { ...env, ...extra }, cwd })).serverUrl
  t.equal(await url(), 'http://localhost:8000/waygate')
  await writeConfig(join(root, 'config', 'config.json'), { serverUrl: 'http://config/waygate' })
  t.equal(await url(), 'http://config/waygate')
  await writeFile(join(root, '.waygate'), 'WAYGATE_SERVER_URL=http://dot/waygate/\n')
  t.equal(await url(), 'http://dot/waygate')
  t.equal(await url({ WAYGATE_SERVER_URL: 'http://env/waygate' }), 'http://env/waygate')
  t.equal(await url({ WAYGATE_SERVER_URL: 'http://env/waygate' }, 'http://flag/waygate'), 'http://flag/waygate')
  await t.rejects(url({}, 'not a url'), { code: 'WG_ERR_CLI_USAGE' })
  await t.rejects(url({ WAYGATE_SERVER_URL: 'ftp://x' }), { code: 'WG_ERR_CLI_CONFIG', message: /WAYGATE_SERVER_URL/ })
  t.type(checkServerUrl('http://x/?q=1'), Error)
})

t.test('token precedence: WAYGATE_TOKEN > .waygate > the session saved for the URL in use', async t => {
  const root = await scratch(t)
  const env = { WAYGATE_CONFIG_DIR: join(root, 'config') }
  const session = { token: 'saved', user: 'admin', expiresAt: '2030-01-01T00:00:00Z' }
  await writeConfig(join(root, 'config', 'config.json'), { serverUrl: 'http://a/waygate', sessions: { 'http://a/waygate': session } })
  const token = async (extra: Record<string, string> = {}, flag?: string) => {
    const s = await resolveSettings({ serverUrl: flag, env: { ...env, ...extra }, cwd: root })
    return `${s.token} ${s.tokenSource}`
  }
  t.equal(await token(), 'saved config')
  t.equal(await token({}, 'http://b/waygate'), 'null null', 'a token saved for one server is never sent to another')
  await writeFile(join(root, '.waygate'), 'WAYGATE_TOKEN=from-file\n')
  t.equal(await token(), 'from-file dotfile')
  t.equal(await token({ WAYGATE_TOKEN: 'from-env' }, 'http://a/waygate'), 'from-env env')
  t.equal(await token({ WAYGATE_TOKEN: 'from-env', WAYGATE_SERVER_URL: 'http://a/waygate' }), 'from-env env')
})

t.test('WAYGATE_TOKEN applies only to a server URL from --server-url or WAYGATE_SERVER_URL', async t => {
  const root = await scratch(t)
  const env = { WAYGATE_CONFIG_DIR: join(root, 'config'), WAYGATE_TOKEN: 'operator-token' }
  const settings = (extra: Record<string, string> = {}, flag?: string) => resolveSettings({ serverUrl: flag, env: { ...env, ...extra }, cwd: root })
  t.match(await settings({}, 'http://flag/waygate'), { token: 'operator-token', tokenSource: 'env', tokenRefusal: null })
  t.match(await settings({ WAYGATE_SERVER_URL: 'http://env/waygate' }), { token: 'operator-token', tokenSource: 'env', tokenRefusal: null })
  // the default URL, a saved URL and a .waygate URL: the token is not bound to any of them
  t.match(await settings(), { serverUrlSource: 'default', token: null, tokenRefusal: { code: 'WG_ERR_CLI_TOKEN_UNBOUND' } })
  await writeConfig(join(root, 'config', 'config.json'), { serverUrl: 'http://config/waygate' })
  t.match(await settings(), { serverUrlSource: 'config', token: null, tokenRefusal: { code: 'WG_ERR_CLI_TOKEN_UNBOUND' } })
  await writeFile(join(root, '.waygate'), 'WAYGATE_SERVER_URL=http://dot/waygate\n')
  t.match(await settings(), { serverUrlSource: 'dotfile', token: null, tokenRefusal: { code: 'WG_ERR_CLI_TOKEN_UNBOUND', message: /\.waygate/ } })
})

t.test('a hostile .waygate never receives WAYGATE_TOKEN: the CLI refuses and says why', async t => {
  const capture = await startHostile(t)
  const box = await sandbox(t, { WAYGATE_TOKEN: 'wg1.operator.secret' })
  const repo = join(box.home, 'cloned-repo', 'src')
  await mkdir(repo, { recursive: true })
  await writeFile(join(box.home, 'cloned-repo', '.waygate'), `WAYGATE_SERVER_URL=${capture.adminUrl}\n`)
  const [human, asJson, logout] = await Promise.all([
    box.waygate(['status'], { cwd: repo }),
    box.run(['disable', 'GET:/payments', '--reason', 'x', '--json'], { cwd: repo }),
    box.run(['logout'], { cwd: repo })
  ])
  t.same(capture.requests, [], 'nothing at all reached the server the .waygate names')
  t.equal(human.code, 1)
  t.match(human.stderr, /^error: WAYGATE_TOKEN is only sent to a server URL given by --server-url or WAYGATE_SERVER_URL; this one comes from .*cloned-repo\/\.waygate: http:\/\/127\.0\.0\.1:\d+\/waygate\nhint: name the server with --server-url/)
  t.notMatch(human.stderr + human.stdout, 'wg1.operator.secret')
  t.equal(asJson.code, 1)
  t.match(JSON.parse(asJson.stderr), { error: { code: 'WG_ERR_CLI_TOKEN_UNBOUND' } })
  t.equal(logout.code, 1, 'logout does not send it there either')
  t.match(json(await box.run(['config', 'show', '--json'], { cwd: repo })), { tokenSource: null, tokenRefused: /only sent to a server URL given by/ }, 'config show says why')

  // the operator names the server: then the token goes where they said, whatever .waygate says
  const named = await box.run(['status', '--json', '--server-url', capture.adminUrl], { cwd: repo })
  t.equal(named.code, 0)
  t.equal(capture.requests[0]?.headers['x-waygate-token'], 'wg1.operator.secret')
})

t.test('the binary finds .waygate upward from its working directory, and WAYGATE_TOKEN beats the saved token', async t => {
  const server = await startServer(t)
  const box = await sandbox(t)
  // the saved URL is wrong; the project's .waygate is right
  await box.run(['config', 'set-url', 'http://127.0.0.1:9/waygate'])
  await writeFile(join(box.home, '.waygate'), `# this project's admin\nWAYGATE_SERVER_URL=${server.adminUrl}\n`)
  const deep = join(box.home, 'project', 'src')
  await mkdir(deep, { recursive: true })
  const login = await box.waygate(['login', 'admin', '--password', 'secret'], { cwd: deep })
  t.equal(login.code, 0)
  t.match(login.stdout, `logged in to ${server.adminUrl} as admin`)
  t.match(json(await box.run(['config', 'show', '--json'], { cwd: deep })), {
    serverUrl: server.adminUrl, serverUrlSource: 'dotfile', dotfile: join(box.home, '.waygate'), user: 'admin', tokenSource: 'config'
  })
  const [stored, overridden, fromEnvOnly] = await Promise.all([
    box.waygate(['status', '--json'], { cwd: deep }),
    box.run(['status'], { cwd: deep, env: { WAYGATE_TOKEN: 'wg1.not.valid', WAYGATE_SERVER_URL: server.adminUrl } }),
    box.run(['status', '--json', '--server-url', server.adminUrl], { env: { WAYGATE_CONFIG_DIR: join(box.home, 'empty'), WAYGATE_TOKEN: await server.token() } })
  ])
  t.equal(stored.code, 0, 'the saved token works')
  t.equal(overridden.code, 1, 'WAYGATE_TOKEN is used instead of the saved token')
  t.match(overridden.stderr, /hint: run: waygate login/)
  t.equal(fromEnvOnly.code, 0, 'WAYGATE_TOKEN alone is enough')
  t.equal(json(fromEnvOnly).length, 8)
})

t.test('logout revokes the token on the server and forgets it; --print-token saves nothing', async t => {
  const server = await startServer(t)
  const box = await sandbox(t, { WAYGATE_SERVER_URL: server.adminUrl })
  const printed = await box.run(['login', 'admin', '--password-stdin', '--print-token'], { input: 'secret\n' })
  t.match(printed.stdout, /^wg1\.\S+\n$/)
  t.match(json(await box.run(['config', 'show', '--json'])), { tokenSource: null }, 'nothing saved')

  await box.run(['login', 'admin', '--password-stdin'], { input: 'secret' })
  const config = JSON.parse(await readFile(join(box.configDir, 'config.json'), 'utf8'))
  const token = config.sessions[server.adminUrl].token as string
  const logout = await box.waygate(['logout', '--json'])
  t.same(json(logout), { serverUrl: server.adminUrl, revoked: true, forgotten: true })
  const [after, revoked, again] = await Promise.all([
    box.run(['status']),
    box.waygate(['status'], { env: { WAYGATE_TOKEN: token } }),
    box.run(['logout'])
  ])
  t.equal(after.code, 1)
  t.equal(revoked.code, 1)
  t.match(revoked.stderr, /revoked/, 'the old token is refused by the server')
  t.equal(again.stdout, `not logged in to ${server.adminUrl}\n`)
})

t.test('a server URL with a user name or password is refused from every source, never saved or echoed', async t => {
  const SECRET = 'hunter2secret'
  const urls = [
    `http://alice:${SECRET}@127.0.0.1:9/waygate`,
    `https://:${SECRET}@example.com/waygate`,
    `http://${SECRET}@127.0.0.1:9/waygate`,
    `http://al%69ce:${SECRET}%40x@127.0.0.1:9/waygate`,
    `http://alice:${SECRET}@/waygate`
  ]
  for (const url of urls) {
    const box = await sandbox(t)
    const configFile = join(box.configDir, 'config.json')
    const setUrl = await box.run(['config', 'set-url', url])
    t.equal(setUrl.code, 2, `set-url ${url}`)
    t.match(setUrl.stderr, /^error: the server URL must not contain a user name or password/)
    await t.rejects(stat(configFile), { code: 'ENOENT' }, 'nothing saved')
    const flag = await box.run(['status', '--server-url', url, '--debug'])
    t.equal(flag.code, 2, `--server-url ${url}`)
    const env = await box.run(['status', '--json'], { env: { WAYGATE_SERVER_URL: url } })
    t.equal(env.code, 1, `WAYGATE_SERVER_URL=${url}`)
    t.match(JSON.parse(env.stderr), { error: { code: 'WG_ERR_CLI_CONFIG', message: /WAYGATE_SERVER_URL: the server URL must not contain a user name or password/ } })
    await writeFile(join(box.home, '.waygate'), `WAYGATE_SERVER_URL=${url}\n`)
    const dot = await box.run(['config', 'show'])
    t.equal(dot.code, 1, `.waygate ${url}`)
    t.match(dot.stderr, /\.waygate: the server URL must not contain a user name or password/)
    await rm(join(box.home, '.waygate'))
    // a config file written before the CLI refused such URLs
    await mkdir(box.configDir, { recursive: true })
    await writeFile(configFile, JSON.stringify({ serverUrl: url }))
    const saved = await box.run(['status', '--debug'])
    t.equal(saved.code, 1, `saved ${url}`)
    t.match(saved.stderr, /hint: .*waygate config set-url/)
    const fixed = await box.run(['config', 'set-url', 'http://127.0.0.1:9/waygate'])
    t.equal(fixed.code, 0, 'set-url replaces it')
    t.notMatch(await readFile(configFile, 'utf8'), SECRET)
    for (const [name, result] of Object.entries({ setUrl, flag, env, dot, saved })) {
      t.notMatch(result.stdout + result.stderr, SECRET, `${name}: the password is not shown`)
    }
  }
})
