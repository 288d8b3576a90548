import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createMemoryBackend, signWebhookBody } from '@waygate/core'
import { isEntryPoint } from '../lib/serve.js'
import { build, escapeHtml, OPS_ACTOR, type LoggedDelivery } from '../webhooks.js'

const SECRET = 'test-webhook-secret-0123'

/** The app listening on 127.0.0.1 (the receivers are called over HTTP), closed when the test ends. */
async function listening (t: { teardown: (fn: () => unknown) => void }): Promise<FastifyInstance> {
  const app = await build({ backend: createMemoryBackend(), secret: SECRET, retryDelayMs: 20 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

async function deliveries (app: FastifyInstance, count: number): Promise<LoggedDelivery[]> {
  const deadline = Date.now() + 3000
  for (;;) {
    const log = (await app.inject('/webhook-log.json')).json() as LoggedDelivery[]
    if (log.length >= count || Date.now() > deadline) return log
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

t.test('a change reaches the three receivers, each in its own shape', async t => {
  const app = await listening(t)
  const res = await app.inject({ method: 'POST', url: '/ops/routes/disable', payload: { key: 'GET:/orders', reason: 'hotfix' } })
  t.equal(res.statusCode, 200)
  t.equal((await app.inject('/orders')).statusCode, 503)

  const log = await deliveries(app, 3)
  t.equal(log.length, 3)
  const by = (receiver: string) => log.find(entry => entry.receiver === receiver)!
  t.match(by('generic'), {
    summary: 'disable',
    verified: true,
    payload: { event: 'disable', key: 'GET:/orders', reason: 'hotfix', actor: OPS_ACTOR, state: { key: 'GET:/orders', status: 'disabled' } }
  })
  t.same(Object.keys(by('generic').payload as object).sort(), ['actor', 'event', 'key', 'reason', 'state', 'timestamp'])
  t.match(by('slack'), {
    summary: 'Route disabled: GET:/orders (hotfix)',
    payload: { blocks: [{ type: 'section', text: { type: 'mrkdwn', text: /\*Route disabled\*: `GET:\/orders`\n>hotfix/ } }, { type: 'context' }] }
  })
  t.match(by('custom'), { summary: 'disable', payload: { source: 'waygate', event: 'disable', route: 'GET:/orders', status: 'disabled', reason: 'hotfix', by: OPS_ACTOR } })
})

t.test('global maintenance reaches the generic and Slack receivers; the custom one asked for route events only', async t => {
  const app = await listening(t)
  await app.inject({ method: 'POST', url: '/ops/global/on' })
  const log = await deliveries(app, 2)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.same((await deliveries(app, 2)).map(e => e.receiver).sort(), ['generic', 'slack'])
  t.match(log.find(e => e.receiver === 'generic'), { payload: { event: 'global_maintenance_on', key: '*', state: { enabled: true, exemptPaths: ['/health'] } } })
  t.equal((await app.inject('/orders')).statusCode, 503)
  t.equal((await app.inject('/webhook-log')).statusCode, 200, 'the log stays reachable under global maintenance')
})

t.test('the log page escapes everything a payload carries', async t => {
  const app = await listening(t)
  await app.inject({ method: 'POST', url: '/ops/routes/maintenance', payload: { key: 'GET:/orders', reason: '<script>alert(1)</script> & "quotes"' } })
  await deliveries(app, 3)
  const page = await app.inject('/webhook-log')
  t.match(page.headers['content-type'], /^text\/html/)
  t.notMatch(page.body, /<script>/, 'no markup from a reason gets through')
  t.ok(page.body.includes(escapeHtml('<script>alert(1)</script> & \\"quotes\\"')), 'the reason shows, escaped (inside the payload\'s JSON)')
  t.match(page.body, /signature ok/)
  t.match(page.body, /<meta http-equiv="refresh" content="5">/)
})

t.test('the generic receiver refuses a delivery whose signature does not match', async t => {
  const app = await listening(t)
  const body = JSON.stringify({ event: 'disable', key: 'GET:/orders' })
  const forged = await app.inject({ method: 'POST', url: '/webhooks/generic', headers: { 'content-type': 'application/json', 'x-waygate-signature': signWebhookBody(body, 'another-secret-0123456789') }, payload: body })
  t.equal(forged.statusCode, 401)
  const unsigned = await app.inject({ method: 'POST', url: '/webhooks/generic', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(unsigned.statusCode, 401)
  const genuine = await app.inject({ method: 'POST', url: '/webhooks/generic', headers: { 'content-type': 'application/json', 'x-waygate-signature': signWebhookBody(body, SECRET) }, payload: body })
  t.equal(genuine.statusCode, 200)
  const notJson = await app.inject({ method: 'POST', url: '/webhooks/custom', headers: { 'content-type': 'application/json' }, payload: '[1' })
  t.equal(notJson.statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/webhooks/slack', headers: { 'content-type': 'application/json' }, payload: '{"blocks":[]}' })).statusCode, 400, 'Slack wants a text')
  t.same((await app.inject('/webhook-log.json')).json().map((e: LoggedDelivery) => e.receiver), ['generic'], 'only the genuine one is logged')
})

t.test('bad /ops input is a 4xx; built without listening, nothing is delivered and nothing listens', async t => {
  const app = await build({ backend: createMemoryBackend(), secret: SECRET })
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'POST', url: '/ops/routes/explode', payload: { key: 'GET:/orders' } })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/ops/routes/disable', payload: { key: 'GET:/nope' } })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/ops/routes/enable', payload: { key: 'GET:/payments' } })).statusCode, 200)
  t.equal(app.server.listening, false)
  t.same((await app.inject('/webhook-log.json')).json(), [])
  t.match((await app.inject('/webhook-log')).body, /No deliveries yet/)
  t.equal(isEntryPoint(new URL('../webhooks.ts', import.meta.url).href), false, 'importing the example does not start it')
})
