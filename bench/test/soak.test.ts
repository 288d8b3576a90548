// The chaos soak's 60-second version (`pnpm soak` runs 5 minutes): two instances on one Redis that
// is killed and restarted every 20 s under load and a change every 100 ms. Every check the soak
// makes must pass; its report is read back to show what was exercised.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startProcess } from '../../packages/core/src/testing/index.js'

const SOAK = fileURLToPath(new URL('../soak/run.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')
t.setTimeout(240_000)

t.test('60 s of chaos: no unexpected answer, nothing acknowledged lost, convergence within 2 s, RSS flat', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-soak-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'report.json')
  const soak = startProcess(t, 'soak', ['--conditions=@waygate/source', '--import', TSX, SOAK], {
    env: { SOAK_SECONDS: '60', SOAK_RATE: '150', SOAK_JSON: out }
  })
  const code = await soak.exited
  const { report, checks } = JSON.parse(await readFile(out, 'utf8')) as { report: any, checks: Array<[string, boolean]> }
  for (const [what, ok] of checks) t.ok(ok, what)
  t.equal(code, 0, 'the soak exits 0')
  t.ok(report.redisRestarts >= 2, `${report.redisRestarts} Redis restarts`)
  t.ok(report.requests.served > 60 * 150, `${report.requests.served} requests served`)
  t.ok(report.requests.blockedByWaygate > 0 && report.requests.ok > 0, 'routes were both open and blocked during the run')
  t.ok(report.mutations.acknowledged > 100 && report.mutations.refusedDuringOutage > 0, `${report.mutations.acknowledged} changes acknowledged, ${report.mutations.refusedDuringOutage} refused while Redis was down`)
  t.ok(report.mutations.slowestRefusalMs < 2000, `mutations fail fast during an outage (slowest ${report.mutations.slowestRefusalMs} ms)`)
  t.comment(JSON.stringify({ latencyMs: report.latencyMs, convergenceMs: report.convergenceMs, rssMb: report.rssMb }))
})
