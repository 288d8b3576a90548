import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { CLI } from '../lib/cli.js'

// The demo's banner and the root README tell a fresh clone to run the CLI as
// `npx -y pnpm@… -s waygate …`: that is the root package.json's `waygate` script, run here as pnpm
// would run it (from the repository root), so a moved file or a renamed script fails a test.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

interface RootPackage { packageManager: string, scripts: Record<string, string> }

async function rootPackage (): Promise<RootPackage> {
  return JSON.parse(await readFile(new URL('package.json', `file://${ROOT}`), 'utf8')) as RootPackage
}

/** The script's command line with the arguments after it, as pnpm appends them. */
async function script (args: string[]): Promise<{ stdout: string, stderr: string }> {
  const line = (await rootPackage()).scripts.waygate
  if (line === undefined) throw new Error('no waygate script in the root package.json')
  const [command, ...rest] = line.split(/\s+/)
  if (command !== 'node') throw new Error(`the waygate script should start with node: ${line}`)
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('WAYGATE_') && name !== 'NODE_OPTIONS' && name !== 'NODE_V8_COVERAGE') env[name] = value
  }
  return run(process.execPath, [...rest, ...args], { cwd: ROOT, env, timeout: 30_000 })
}

t.test('the root waygate script runs the CLI from the repository root', async t => {
  const [version, help] = await Promise.all([script(['--version']), script(['--help'])])
  const cli = JSON.parse(await readFile(new URL('packages/cli/package.json', `file://${ROOT}`), 'utf8')) as { version: string }
  t.equal(version.stdout, `${cli.version}\n`)
  t.match(help.stdout, /^Usage: waygate \[options\] \[command\]/)
  t.match(help.stdout, /\n {2}check \[options\]/)
})

t.test('the banners\' CLI command is that script, with the pinned pnpm', async t => {
  const pkg = await rootPackage()
  const match = /^npx -y (pnpm@[\d.]+) -s (\S+)$/.exec(CLI)
  t.ok(match, CLI)
  t.equal(match?.[1], pkg.packageManager, 'the pnpm the repository pins')
  t.ok(pkg.scripts[match?.[2] ?? ''], `a root script named ${match?.[2]}`)
  const readme = await readFile(new URL('README.md', `file://${ROOT}`), 'utf8')
  t.ok(readme.includes(`${CLI} status`), 'the README shows it')
})
