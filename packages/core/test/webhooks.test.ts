import t from 'tap'
import {
  createEngine,
  createEngineFromEnv,
  defaultWebhookFormatter,
  escapeSlackText,
  signWebhookBody,
  slackWebhookFormatter,
  verifyWebhookSignature,
  webhookEventOf,
  WEBHOOK_EVENTS
} from '@waygate/core'
import type { AuditEntry, WaygateEngine, WaygateLogger, WebhookEvent } from '@waygate/core'
import { auditEntry as buildAuditEntry, routeState } from '@waygate/core/testing'
import { createWebhookDispatcher } from '../src/webhooks.js'
import { createClock, HOUR, MINUTE } from './helpers/clock.js'
import { setup, type Teardown } from './helpers/engine.js'
import { refusingUrl, startReceiver } from './helpers/webhook-receiver.js'

const SECRET = 'whsec-0123456789abcdef'

interface LogLine { level: string, obj: Record<string, unknown>, msg: string }

function captureLogger (): WaygateLogger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  const log = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' }) }
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

async function waitFor (condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await sleep(5)
  }
  return true
}

/** A started engine (fake clock, memory backend) with a few declared routes. */
async function engineWithRoutes (t: Teardown, logger?: WaygateLogger): Promise<{ engine: WaygateEngine, clock: ReturnType<typeof createClock> }> {
  const clock = createClock()
  const { engine } = await setup(t, { clock, ...(logger === undefined ? {} : { logger }) })
  engine.declareRoute('GET', '/payments')
  engine.declareRoute('GET', '/orders')
  engine.declareRoute('GET', '/v1/users')
  await engine.registerDeclaredRoutes()
  return { engine, clock }
}

function event (fields: Partial<WebhookEvent> = {}): WebhookEvent {
  return {
    id: 'e1',
    event: 'disable',
    key: 'GET:/payments',
    reason: 'hotfix',
    timestamp: '2030-01-01T00:00:00.000Z',
    actor: 'alice',
    platform: 'cli',
    previousStatus: 'active',
    newStatus: 'disabled',
    state: null,
    ...fields
  }
}

t.test('the default payload is { event, key, reason, timestamp, actor, state }, one per change, in order', async t => {
  const receiver = await startReceiver(t)
  const { engine } = await engineWithRoutes(t)
  engine.addWebhook(receiver.url)
  const who = { actor: 'alice', platform: 'cli' as const }
  const [disabled] = await engine.disable('GET:/payments', { reason: 'hotfix', ...who })
  await engine.enable('GET:/payments', who)
  await engine.enable('GET:/payments', who) // already active: no change, nothing sent
  await engine.setMaintenance('GET:/orders', { reason: 'stock sync', ...who })
  await engine.enable('GET:/orders', who)
  await engine.setEnvOnly('GET:/orders', ['staging'], who)
  await engine.deprecate('GET:/v1/users', { successor: '/v2/users', sunset: '2031-01-01T00:00:00Z', ...who })
  const on = await engine.enableGlobalMaintenance({ reason: 'deploy', exemptPaths: ['/health'], ...who })
  await engine.disableGlobalMaintenance(who)
  const received = await receiver.waitFor(8)
  await sleep(50)
  t.equal(received.length, 8, 'a change that changes nothing sends nothing')
  t.same(received.map(r => (r.json as { event: string }).event), [
    'disable', 'enable', 'maintenance_on', 'maintenance_off', 'env_gate', 'deprecate', 'global_maintenance_on', 'global_maintenance_off'
  ])
  t.same(received[0]!.json, {
    event: 'disable',
    key: 'GET:/payments',
    reason: 'hotfix',
    timestamp: '2030-01-01T00:00:00.000Z',
    actor: 'alice',
    state: disabled
  }, 'the route\'s state after the change')
  t.same(received[6]!.json, { event: 'global_maintenance_on', key: '*', reason: 'deploy', timestamp: '2030-01-01T00:00:00.000Z', actor: 'alice', state: on })
  const audit = (await engine.listAudit({ limit: 100 })).reverse().filter(e => e.action !== 'register')
  t.same(received.map(r => r.headers['x-waygate-delivery']), audit.map(e => e.id), 'X-Waygate-Delivery is the audit entry id')
  t.match(received[0]!.headers, { 'content-type': 'application/json', 'x-waygate-event': 'disable', 'user-agent': /^waygate-webhooks/ })
  t.notOk(received[0]!.headers['x-waygate-signature'], 'unsigned without a secret')
})

t.test('a window sends window_start and window_end when it opens and closes; a timed disable sends enable when it ends', async t => {
  const receiver = await startReceiver(t)
  const { engine, clock } = await engineWithRoutes(t)
  engine.addWebhook(receiver.url)
  const start = clock.now() + HOUR
  await engine.schedule('GET:/orders', { start, end: start + HOUR, reason: 'reindex' })
  await engine.disable('GET:/payments', { until: clock.now() + MINUTE, reason: 'short' })
  await receiver.waitFor(1)
  await sleep(30)
  t.same(receiver.received.map(r => (r.json as { event: string }).event), ['disable'], 'scheduling a window for later sends nothing yet')

  clock.advance(MINUTE)
  await engine.runDueTransitions()
  clock.set(start)
  await engine.runDueTransitions()
  clock.set(start + HOUR)
  await engine.runDueTransitions()
  const received = await receiver.waitFor(4)
  const bodies = received.map(r => r.json as { event: string, key: string, reason: string, timestamp: string, actor: string, state: unknown })
  t.match(bodies[1], { event: 'enable', key: 'GET:/payments', reason: 'short', timestamp: new Date(start - HOUR + MINUTE).toISOString(), actor: 'scheduler' })
  t.match(bodies[1]!.state, { key: 'GET:/payments', status: 'active', disabledUntil: null })
  t.match(bodies[2], { event: 'window_start', key: 'GET:/orders', reason: 'reindex', timestamp: new Date(start).toISOString(), actor: 'scheduler' })
  t.match(bodies[2]!.state, { key: 'GET:/orders', status: 'maintenance', window: { reason: 'reindex' } })
  t.match(bodies[3], { event: 'window_end', key: 'GET:/orders', timestamp: new Date(start + HOUR).toISOString(), actor: 'scheduler' })
  t.match(bodies[3]!.state, { key: 'GET:/orders', status: 'active', window: null })
})

t.test('the Slack formatter sends blocks and a fallback text, with every input escaped', async t => {
  const receiver = await startReceiver(t)
  const { engine } = await engineWithRoutes(t)
  engine.addWebhook(receiver.url, { formatter: slackWebhookFormatter })
  await engine.disable('GET:/payments', { reason: '<!channel> & <https://evil.example|click>\nsecond line', actor: 'mallory <@U123>', platform: 'api' })
  const [delivery] = await receiver.waitFor(1)
  t.same(delivery!.json, {
    text: 'Route disabled: GET:/payments (&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;\nsecond line)',
    blocks: [
      {
        type: 'section',
        text: { type: 'mrkdwn', text: ':red_circle: *Route disabled*: `GET:/payments`\n>&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;\n>second line' }
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: 'by *mallory &lt;@U123&gt;* via api · 2030-01-01T00:00:00.000Z' }] }
    ]
  })
  t.notMatch(delivery!.body, /<!channel>|<@U123>/, 'nothing can ping a channel or a user')
  t.equal(escapeSlackText('a<b>&c'), 'a&lt;b&gt;&amp;c')
})

t.test('slack details: environments, sunset and successor, window end, exempt paths', async t => {
  const env = slackWebhookFormatter(event({ event: 'env_gate', reason: '', state: { ...engineState(), status: 'env_gated', allowedEnvs: ['dev', 'qa'] } }))
  t.match(env.blocks[0], { text: { text: ':lock: *Route restricted to some environments*: `GET:/payments`\nOnly in: dev, qa' } })
  const dep = slackWebhookFormatter(event({ event: 'deprecate', reason: '', state: { ...engineState(), sunset: '2031-01-01T00:00:00.000Z', successor: '/v2/<x>' } }))
  t.match(dep.blocks[0], { text: { text: /Sunset: 2031-01-01T00:00:00.000Z\nSuccessor: \/v2\/&lt;x&gt;$/ } })
  const global = slackWebhookFormatter(event({ event: 'global_maintenance_on', key: '*', reason: 'deploy', state: { enabled: true, reason: 'deploy', exemptPaths: ['/health'], includeForceActive: false, since: null } }))
  t.match(global.blocks[0], { text: { text: ':rotating_light: *Global maintenance on*: the whole API\n>deploy\nStill reachable: /health' } })
  t.equal(global.text, 'Global maintenance on: the whole API (deploy)')
  const long = slackWebhookFormatter(event({ reason: 'x'.repeat(5000) }))
  t.ok((long.blocks[0] as { text: { text: string } }).text.text.length <= 3000, 'within Slack\'s section limit')
})

function engineState () {
  return routeState('GET:/payments', { updatedBy: 'alice' })
}

t.test('custom formatters, events filters; a formatter returning undefined skips, one that throws is logged', async t => {
  const custom = await startReceiver(t)
  const filtered = await startReceiver(t)
  const broken = await startReceiver(t)
  const logger = captureLogger()
  const { engine } = await engineWithRoutes(t, logger)
  engine.addWebhook(custom.url, {
    formatter: e => e.event === 'enable' ? undefined : { source: 'waygate', what: `${e.event} ${e.key}`, by: e.actor, status: e.newStatus },
    headers: { Authorization: 'Bearer receiver-token' }
  })
  engine.addWebhook(filtered.url, { events: ['maintenance_on'] })
  engine.addWebhook(broken.url, { formatter: () => { throw new Error('formatter bug') } })
  await engine.disable('GET:/payments', { actor: 'bob' })
  await engine.enable('GET:/payments', { actor: 'bob' })
  await engine.setMaintenance('GET:/orders', { reason: 'sync', actor: 'bob' })
  const received = await custom.waitFor(2)
  t.same(received.map(r => r.json), [
    { source: 'waygate', what: 'disable GET:/payments', by: 'bob', status: 'disabled' },
    { source: 'waygate', what: 'maintenance_on GET:/orders', by: 'bob', status: 'maintenance' }
  ], 'undefined sent nothing for the enable')
  t.equal(received[0]!.headers.authorization, 'Bearer receiver-token', 'extra headers are sent')
  const [only] = await filtered.waitFor(1)
  t.match(only!.json, { event: 'maintenance_on', key: 'GET:/orders' })
  await sleep(50)
  t.equal(filtered.received.length, 1, 'only the events asked for')
  t.equal(broken.received.length, 0)
  t.equal(logger.lines.filter(l => l.msg.includes('formatter threw')).length, 3, 'each failure of the formatter is logged')
})

t.test('signed deliveries verify with the secret, and with nothing else', async t => {
  const receiver = await startReceiver(t)
  const { engine } = await engineWithRoutes(t)
  engine.addWebhook(receiver.url, { secret: SECRET })
  await engine.disable('GET:/payments', { reason: 'signed' })
  const [delivery] = await receiver.waitFor(1)
  const header = delivery!.headers['x-waygate-signature'] as string
  t.match(header, /^t=\d+,v1=[0-9a-f]{64}$/)
  t.ok(verifyWebhookSignature(delivery!.body, header, SECRET), 'the raw body and the secret verify')
  t.ok(verifyWebhookSignature(Buffer.from(delivery!.body), header, SECRET), 'as a Buffer too')
  t.notOk(verifyWebhookSignature(delivery!.body, header, 'another-secret-0123456789'), 'another secret does not')
  t.notOk(verifyWebhookSignature(delivery!.body.replace('signed', 'forged'), header, SECRET), 'a changed body does not')
  t.notOk(verifyWebhookSignature(delivery!.body, header, SECRET, 300, Date.now() + 301_000), 'a stale timestamp does not (replay)')
  t.ok(verifyWebhookSignature(delivery!.body, header, SECRET, 600, Date.now() + 301_000), 'within a wider tolerance it does')
  const t0 = Math.floor(Date.now() / 1000)
  const signed = signWebhookBody('{"a":1}', SECRET, t0)
  t.ok(verifyWebhookSignature('{"a":1}', `v1=${'0'.repeat(64)},${signed}`, SECRET), 'one matching v1 among several is enough (secret rotation)')
  for (const bad of [undefined, '', 'garbage', `t=${t0}`, `v1=${'a'.repeat(64)}`, `t=abc,v1=${'a'.repeat(64)}`, `t=${t0},v1=short`]) {
    t.notOk(verifyWebhookSignature('{"a":1}', bad, SECRET), `malformed header ${JSON.stringify(bad)}`)
  }
  t.notOk(verifyWebhookSignature('{"a":1}', signed, ''), 'an empty secret never verifies')
})

t.test('5xx, 429 and network errors are retried with backoff; 4xx is not', async t => {
  const flaky = await startReceiver(t, { answers: [500, 429, 503] })
  const picky = await startReceiver(t, { answers: [400] })
  const logger = captureLogger()
  const { engine } = await engineWithRoutes(t, logger)
  engine.addWebhook(flaky.url, { retryDelayMs: 20 })
  engine.addWebhook(picky.url, { retryDelayMs: 20 })
  await engine.disable('GET:/payments')
  const attempts = await flaky.waitFor(4)
  t.equal(new Set(attempts.map(a => a.headers['x-waygate-delivery'])).size, 1, 'the same delivery each time')
  const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at)
  t.ok(gaps[0]! >= 14 && gaps[1]! > gaps[0]! && gaps[2]! > gaps[1]!, `the pause grows (${gaps.map(g => g.toFixed(0)).join(', ')} ms)`)
  await sleep(200)
  t.equal(picky.received.length, 1, 'a 400 is final')
  t.equal(flaky.received.length, 4, 'the 4th attempt succeeded, so no 5th')
  const failures = logger.lines.filter(l => l.msg === 'waygate: webhook delivery failed')
  t.equal(failures.length, 1)
  t.match(failures[0]!.obj, { event: 'disable', key: 'GET:/payments', attempts: 1, status: 400, webhook: /^http:\/\/127\.0\.0\.1:\d+\/…$/ })
})

t.test('a dead receiver neither slows nor fails the change; the failure is logged once retries run out', async t => {
  const hanging = await startReceiver(t, { fallback: 'hang' })
  const refused = await refusingUrl()
  const logger = captureLogger()
  const { engine } = await engineWithRoutes(t, logger)
  const baseline = performance.now()
  await engine.disable('GET:/orders')
  const without = performance.now() - baseline
  engine.addWebhook(refused, { retries: 2, retryDelayMs: 10 })
  engine.addWebhook(hanging.url, { retries: 1, retryDelayMs: 10, timeoutMs: 150 })
  const started = performance.now()
  const [state] = await engine.disable('GET:/payments', { reason: 'still works' })
  const took = performance.now() - started
  t.match(state, { status: 'disabled', reason: 'still works' }, 'the change is made')
  // waiting for the hanging receiver would take its 150 ms timeout at least (twice, with the retry)
  t.ok(took < 150, `and does not wait for the receivers (${took.toFixed(2)} ms, ${without.toFixed(2)} ms without webhooks)`)
  t.ok(await waitFor(() => logger.lines.filter(l => l.msg === 'waygate: webhook delivery failed').length === 2))
  const failures = logger.lines.filter(l => l.msg === 'waygate: webhook delivery failed').map(l => l.obj)
  t.match(failures.find(f => f.attempts === 3), { detail: /fetch failed: .*ECONNREFUSED/ }, 'refused: 1 attempt + 2 retries')
  t.match(failures.find(f => f.attempts === 2), { detail: 'no answer within 150 ms' }, 'never answers: aborted after timeoutMs, 1 retry')
  t.equal(hanging.received.length, 2)
})

t.test('close() sends what is queued; what cannot go out in time is dropped and counted in one log line', async t => {
  const receiver = await startReceiver(t)
  const { engine } = await engineWithRoutes(t)
  engine.addWebhook(receiver.url)
  await engine.disable('GET:/payments')
  await engine.enable('GET:/payments')
  await engine.disable('GET:/orders')
  await engine.close()
  t.equal(receiver.received.length, 3, 'all three delivered before close() resolved')
  t.throws(() => engine.addWebhook(receiver.url), { code: 'WG_ERR_ENGINE_CLOSED' })

  const hanging = await startReceiver(t, { fallback: 'hang' })
  const logger = captureLogger()
  const dispatcher = createWebhookDispatcher({ logger })
  dispatcher.add(hanging.url, { timeoutMs: 10_000 })
  for (let i = 0; i < 3; i++) dispatcher.notify(auditEntry(`d${i}`), null)
  await hanging.waitFor(1)
  const started = performance.now()
  await dispatcher.close(150)
  t.ok(performance.now() - started < 3000, 'close() gives up after its timeout, not after the 10 s delivery timeout')
  t.same(logger.lines.map(l => [l.level, l.msg, l.obj.dropped]), [['warn', 'waygate: webhook deliveries dropped at close (receivers too slow)', 3]])
  dispatcher.notify(auditEntry('late'), null)
  t.equal(hanging.received.length, 1, 'nothing is sent after close')
})

function auditEntry (id: string, fields: Partial<AuditEntry> = {}): AuditEntry {
  return buildAuditEntry(id, { key: 'GET:/payments', ...fields })
}

t.test('the queue of a webhook is bounded: the oldest deliveries go first, with one warning', async t => {
  const hanging = await startReceiver(t, { fallback: 'hang' })
  const logger = captureLogger()
  const dispatcher = createWebhookDispatcher({ logger })
  t.teardown(() => dispatcher.close(10))
  dispatcher.add(hanging.url, { maxQueueSize: 2, retries: 0 })
  for (let i = 0; i < 10; i++) dispatcher.notify(auditEntry(`q${i}`), null)
  t.equal(logger.lines.filter(l => l.msg.includes('queue full')).length, 1, 'warned once, not per dropped delivery')
})

t.test('removing a webhook stops its deliveries', async t => {
  const receiver = await startReceiver(t)
  const { engine } = await engineWithRoutes(t)
  const remove = engine.addWebhook(receiver.url)
  await engine.disable('GET:/payments')
  await receiver.waitFor(1)
  remove()
  await engine.enable('GET:/payments')
  await sleep(50)
  t.equal(receiver.received.length, 1)
})

t.test('invalid webhook options are refused with every problem listed, the URL shown without its path', async t => {
  const { engine } = await engineWithRoutes(t)
  t.throws(() => engine.addWebhook('ftp://example.com/x'), { code: 'WG_ERR_OPTIONS_INVALID', message: /http:\/\/ or https:\/\// })
  t.throws(() => engine.addWebhook('not a url'), { code: 'WG_ERR_OPTIONS_INVALID' })
  const err = t.throws(() => engine.addWebhook('https://hooks.slack.com/services/T0/B0/SECRETPATH', {
    events: ['disable', 'nope' as never],
    secret: 'short',
    headers: { 'Bad Header': 'x', 'X-Ok': 'a\nb', 'Content-Length': '1' },
    timeoutMs: 0,
    retries: 11,
    formatter: 'slack' as never
  })) as Error
  t.match(err, { code: 'WG_ERR_OPTIONS_INVALID' })
  for (const part of [/formatter must be a function/, /unknown event "nope"/, /secret must be/, /header "Bad Header"/, /header X-Ok/, /header "Content-Length"/, /timeoutMs/, /retries/]) {
    t.match(err.message, part)
  }
  t.notMatch(err.message, /SECRETPATH|short/, 'neither the URL\'s path nor the secret is echoed')
  t.throws(() => createEngine({ webhooks: 'https://x.example' as never }), { code: 'WG_ERR_OPTIONS_INVALID' })
})

t.test('webhooks from options and from the environment', async t => {
  const generic = await startReceiver(t)
  const slack = await startReceiver(t)
  const extra = await startReceiver(t)
  const engine = createEngineFromEnv({
    configFile: false,
    resyncIntervalMs: 0,
    variables: { WAYGATE_WEBHOOK_URL: generic.url, WAYGATE_SLACK_WEBHOOK_URL: slack.url, WAYGATE_WEBHOOK_SECRET: SECRET },
    webhooks: [{ url: extra.url, events: ['enable'] }]
  })
  t.teardown(() => engine.close())
  engine.declareRoute('GET', '/payments')
  await engine.start()
  await engine.disable('GET:/payments', { reason: 'env' })
  await engine.enable('GET:/payments')
  const [first] = await generic.waitFor(2)
  t.match(first!.json, { event: 'disable', key: 'GET:/payments', reason: 'env' })
  t.ok(verifyWebhookSignature(first!.body, first!.headers['x-waygate-signature'], SECRET), 'signed with WAYGATE_WEBHOOK_SECRET')
  const [slackFirst] = await slack.waitFor(2)
  t.match(slackFirst!.json, { text: 'Route disabled: GET:/payments (env)', blocks: [{ type: 'section' }, { type: 'context' }] })
  t.ok(verifyWebhookSignature(slackFirst!.body, slackFirst!.headers['x-waygate-signature'], SECRET))
  const [enabled] = await extra.waitFor(1)
  t.match(enabled!.json, { event: 'enable' }, 'the webhooks option adds to the environment\'s')
  t.equal(extra.received.length, 1)
})

t.test('webhook variables are checked, and a bad secret is never echoed', async t => {
  const base = { configFile: false as const, resyncIntervalMs: 0 }
  t.throws(() => createEngineFromEnv({ ...base, variables: { WAYGATE_WEBHOOK_URL: 'https://a.example/x, ftp://b.example' } }),
    { code: 'WG_ERR_CONFIG_INVALID', message: /WAYGATE_WEBHOOK_URL from the environment must list http:\/\/ or https:\/\/ URLs; entry 2 is not one/ })
  t.throws(() => createEngineFromEnv({ ...base, variables: { WAYGATE_WEBHOOK_SECRET: 'tooshort' } }),
    { code: 'WG_ERR_CONFIG_INVALID', message: /^(?!.*tooshort).*WAYGATE_WEBHOOK_SECRET from the environment must be at least 16 characters/ })
  t.throws(() => createEngineFromEnv({ ...base, variables: {}, webhookUrls: 'https://a.example' as never }),
    { code: 'WG_ERR_OPTIONS_INVALID', message: /options\.webhookUrls must be an array/ })
  const engine = createEngineFromEnv({ ...base, variables: { WAYGATE_WEBHOOK_URL: 'https://a.example/1 https://b.example/2,https://c.example/3' } })
  t.teardown(() => engine.close())
  t.pass('several URLs, separated by spaces or commas')
})

t.test('webhookEventOf: which audit actions are sent, under which name', async t => {
  const cases: Array<[Partial<AuditEntry>, string | null]> = [
    [{ action: 'enable', previousStatus: 'disabled', newStatus: 'active' }, 'enable'],
    [{ action: 'enable', previousStatus: 'maintenance', newStatus: 'active' }, 'maintenance_off'],
    [{ action: 'disable_end', previousStatus: 'disabled', newStatus: 'active' }, 'enable'],
    [{ action: 'disable', newStatus: 'disabled' }, 'disable'],
    [{ action: 'maintenance_on', newStatus: 'maintenance' }, 'maintenance_on'],
    [{ action: 'schedule', previousStatus: 'active', newStatus: 'active' }, null],
    [{ action: 'schedule', previousStatus: 'active', newStatus: 'maintenance' }, 'maintenance_on'],
    [{ action: 'schedule_cancel', previousStatus: 'maintenance', newStatus: 'active' }, 'maintenance_off'],
    [{ action: 'schedule_cancel', previousStatus: 'active', newStatus: 'active' }, null],
    [{ action: 'env_gate' }, 'env_gate'],
    [{ action: 'deprecate' }, 'deprecate'],
    [{ action: 'window_start' }, 'window_start'],
    [{ action: 'window_end' }, 'window_end'],
    [{ action: 'global_maintenance_on' }, 'global_maintenance_on'],
    [{ action: 'global_maintenance_off' }, 'global_maintenance_off'],
    [{ action: 'global_exempt_add' }, null],
    [{ action: 'register' }, null],
    [{ action: 'rate_limit_set' }, 'rate_limit_policy_change'],
    [{ action: 'rate_limit_delete' }, 'rate_limit_policy_change'],
    [{ action: 'rate_limit_reset' }, null]
  ]
  for (const [fields, expected] of cases) {
    t.equal(webhookEventOf(auditEntry('x', fields)), expected, `${fields.action} ${fields.previousStatus ?? ''}→${fields.newStatus ?? ''}`)
  }
  t.ok(WEBHOOK_EVENTS.includes('rate_limit_policy_change'))
  t.same(defaultWebhookFormatter(event({ state: null })), { event: 'disable', key: 'GET:/payments', reason: 'hotfix', timestamp: '2030-01-01T00:00:00.000Z', actor: 'alice', state: null })
})
