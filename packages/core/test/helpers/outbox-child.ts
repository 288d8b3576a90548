// Run by test/webhook-outbox.test.ts in its own process: an engine on a file or Redis backend with
// one webhook. `change` makes one change and says so, `serve` only starts (and delivers what the
// outbox holds); either way it then stays up until killed. Log lines go to stdout as JSON.
import { createEngine, createFileBackend, createRedisBackend, type WaygateLogger } from '@waygate/core'

const [kind, where, url, mode] = process.argv.slice(2)
if (kind === undefined || where === undefined || url === undefined || (mode !== 'change' && mode !== 'serve')) {
  throw new Error('usage: outbox-child <file|redis> <path|url> <webhook url> <change|serve>')
}
const number = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)

function line (level: string) {
  return (obj: object, msg?: string): void => { process.stdout.write(JSON.stringify({ level, msg, ...obj }) + '\n') }
}
const logger: WaygateLogger = { debug () {}, info: line('info'), warn: line('warn'), error: line('error') }

const backend = kind === 'file'
  ? createFileBackend({ path: where })
  : createRedisBackend({ url: where }, { keyPrefix: process.env.PREFIX ?? 'outbox' })
const engine = createEngine({
  backend,
  logger,
  resyncIntervalMs: 0,
  webhooks: [{
    url,
    retries: number('RETRIES', 5),
    retryDelayMs: number('RETRY_DELAY_MS', 200),
    timeoutMs: number('TIMEOUT_MS', 1000)
  }]
})
engine.declareRoute('GET', '/payments')
await engine.start()
await engine.registerDeclaredRoutes()
if (mode === 'change') {
  const [state] = await engine.disable('GET:/payments', { reason: process.env.REASON ?? 'crash test', actor: 'alice' })
  process.stdout.write(`changed ${state?.status ?? ''}\n`)
} else {
  process.stdout.write('started\n')
}
// stays up: the test kills it
setInterval(() => {}, 60_000)
