import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { run, type Io } from '../src/index.js'
import { startServer } from './helpers/server.js'

// run() in-process, with a pretend terminal: what the real binary cannot be tested for without a pty.

interface Captured { io: Io, stdin: PassThrough & { isTTY?: boolean, setRawMode?: (mode: boolean) => void }, out: () => string, err: () => string, rawModes: boolean[] }

async function terminal (t: Test, env: Record<string, string>, options: { tty?: boolean, raw?: boolean } = {}): Promise<Captured> {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-run-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let out = ''
  let err = ''
  const rawModes: boolean[] = []
  const stdin: Captured['stdin'] = new PassThrough()
  if (options.raw === true) {
    stdin.isTTY = true
    stdin.setRawMode = (mode: boolean) => { rawModes.push(mode) }
  }
  const io: Io = {
    stdout: { write: (s: string) => { out += s } },
    stderr: { write: (s: string) => { err += s } },
    stdin,
    env: { WAYGATE_CONFIG_DIR: join(dir, 'config'), ...env },
    cwd: dir,
    isTTY: options.tty ?? true
  }
  return { io, stdin, out: () => out, err: () => err, rawModes }
}

t.test('on a terminal, a bare path matching several methods asks before changing them all', async t => {
  const server = await startServer(t)
  const env = { WAYGATE_SERVER_URL: server.adminUrl, WAYGATE_TOKEN: await server.token() }

  const no = await terminal(t, env)
  no.stdin.write('n\n')
  t.equal(await run(['disable', '/payments', '--reason', 'x'], no.io), 1)
  t.equal(no.err(), '/payments matches 2 routes:\n  GET:/payments\n  POST:/payments\nApply to all 2? [y/N] error: cancelled: nothing changed\n')
  t.equal(server.engine.getState('POST:/payments')?.status, 'active')

  const yes = await terminal(t, env)
  yes.stdin.write('y\n')
  t.equal(await run(['disable', '/payments', '--reason', 'x'], yes.io), 0)
  t.match(yes.out(), /GET:\/payments .*DISABLED[\s\S]*POST:\/payments .*DISABLED/)
  t.equal(server.engine.getState('POST:/payments')?.status, 'disabled')
})

t.test('login on a terminal asks for the user, then the password without echoing it', async t => {
  const server = await startServer(t)
  const term = await terminal(t, { WAYGATE_SERVER_URL: server.adminUrl }, { raw: true })
  // a typo fixed with backspace on the way
  term.stdin.write('admin\nsecx\u007fret\r')
  t.equal(await run(['login'], term.io), 0)
  t.equal(term.err(), 'User: Password for admin: \n', 'only the questions, never the password')
  t.same(term.rawModes, [true, false], 'raw mode on for the password, then off again')
  t.match(term.out(), /logged in to .* as admin/)
  const config = JSON.parse(await readFile(join(term.io.env.WAYGATE_CONFIG_DIR!, 'config.json'), 'utf8'))
  t.match(config.sessions[server.adminUrl], { user: 'admin', token: /^wg1\./ })

  const cancelled = await terminal(t, { WAYGATE_SERVER_URL: server.adminUrl }, { raw: true })
  cancelled.stdin.write('\u0003')
  t.equal(await run(['login', 'admin'], cancelled.io), 130, 'Ctrl-C cancels')
})

t.test('colour only on a terminal, without NO_COLOR, and never in --json', async t => {
  const server = await startServer(t)
  const env = { WAYGATE_SERVER_URL: server.adminUrl, WAYGATE_TOKEN: await server.token() }
  const tty = await terminal(t, env)
  await run(['status'], tty.io)
  t.match(tty.out(), '\u001b[33mMAINTENANCE\u001b[39m')
  t.ok(tty.out().startsWith('\u001b[1mROUTE\u001b[22m  '), 'the header is bold')
  const noColor = await terminal(t, { ...env, NO_COLOR: '1' })
  await run(['status'], noColor.io)
  t.notMatch(noColor.out(), '\u001b[')
  const pipe = await terminal(t, env, { tty: false })
  await run(['status'], pipe.io)
  t.notMatch(pipe.out(), '\u001b[')
  const asJson = await terminal(t, env)
  await run(['status', '--json'], asJson.io)
  t.notMatch(asJson.out(), '\u001b[')
})

t.test('--version and help succeed', async t => {
  const version = await terminal(t, {})
  t.equal(await run(['--version'], version.io), 0)
  t.equal(version.out(), '0.1.0\n')
  const help = await terminal(t, {})
  t.equal(await run(['help', 'disable'], help.io), 0)
  t.match(help.out(), /Usage: waygate disable \[options\] <route>[\s\S]*--until <when>/)
})
