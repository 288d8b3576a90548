import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// The fixtures are compiled by the workspace's own TypeScript, as a user's app would be: they import
// '@waygate/fastify' (its source, through the workspace condition) and Fastify's real types.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'types')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

interface Diagnostic { file: string, line: number, code: string, text: string }

async function compileFixtures (): Promise<Diagnostic[]> {
  let output: string
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [tsc, '-p', join(fixtures, 'tsconfig.json'), '--pretty', 'false'], { cwd: fixtures })
    output = stdout
  } catch (err) {
    // tsc exits 2 when it reports errors; anything else (no output at all) is a broken setup
    output = (err as { stdout?: string }).stdout ?? ''
    if (output === '') throw err
  }
  const diagnostics: Diagnostic[] = []
  for (const line of output.split('\n')) {
    const m = /^(.*?)\((\d+),\d+\): error (TS\d+): (.*)$/.exec(line)
    if (m !== null) diagnostics.push({ file: m[1]!.replace(/^.*[\\/]/, ''), line: Number(m[2]), code: m[3]!, text: m[4]! })
  }
  return diagnostics
}

/** The `// expect TS<code>` marks of a fixture, as `line code`. */
function expectedErrors (file: string): string[] {
  return readFileSync(join(fixtures, file), 'utf8').split('\n').flatMap((text, i) => {
    const m = /\/\/ expect (TS\d+)\s*$/.exec(text)
    return m === null ? [] : [`${i + 1} ${m[1]}`]
  })
}

t.test('route config types', async t => {
  const diagnostics = await compileFixtures()
  const inFile = (file: string): Diagnostic[] => diagnostics.filter(d => d.file === file)

  t.test('valid declarations compile: the helper, satisfies, a typed constant, false, inline', async t => {
    t.same(inFile('must-compile.ts').map(d => `${d.line} ${d.code}: ${d.text}`), [])
  })

  t.test('a misspelt option is a compile error through waygateConfig() and satisfies', async t => {
    const expected = expectedErrors('must-fail.ts')
    t.ok(expected.length >= 8, 'the fixture marks its expected errors')
    t.same(inFile('must-fail.ts').map(d => `${d.line} ${d.code}`), expected, 'each marked line fails with its code, and no other')
    const typo = inFile('must-fail.ts').find(d => d.line === 10)
    t.match(typo?.text, /'forceActiv' does not exist in type 'WaygateRouteConfig'. Did you mean to write 'forceActive'\?/)
  })

  t.same(diagnostics.filter(d => d.file !== 'must-compile.ts' && d.file !== 'must-fail.ts'), [], 'no error outside the fixtures')
})
