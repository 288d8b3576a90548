// Webhook dead letters in the admin: listed by the REST API and the dashboard, retried (and
// delivered) or deleted from either; bad ids are 4xx with the error envelope.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createFileBackend, createMemoryBackend } from '@waygate/core'
import { until } from '@waygate/core/testing'
import { startReceiver, type WebhookReceiver } from '../../core/test/helpers/webhook-receiver.js'
import { buildAdminApp, type AdminApp } from './helpers/app.js'
import { form, FORM_HEADERS, signIn } from './helpers/dashboard.js'

async function fileApp (t: { teardown: (fn: () => unknown) => void }, receiver: WebhookReceiver): Promise<AdminApp> {
  const dir = await mkdtemp(join(tmpdir(), 'waygate-dead-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return buildAdminApp(t, {
    engine: { backend: createFileBackend({ path: join(dir, 'state.json') }), webhooks: [{ url: `${receiver.url}/secret-token`, retries: 0 }] },
    routes: app => {
      app.get('/search&find', async () => ({ ok: true }))
      app.get('/payments', async () => ({ ok: true }))
    }
  })
}

/** Makes a change whose delivery the receiver refuses (500, no retries): a dead letter. */
async function deadLetter (a: AdminApp, token: string, key: string): Promise<Record<string, unknown> & { id: string }> {
  const before = (await list(a, token)).deadLetters.length
  const res = await a.app.inject({ method: 'POST', url: `/waygate/api/routes/${encodeURIComponent(key)}/disable`, headers: { authorization: `Bearer ${token}` }, payload: { reason: 'r' } })
  if (res.statusCode !== 200) throw new Error(`disable: ${res.statusCode} ${res.body}`)
  return until(async () => {
    const letters = (await list(a, token)).deadLetters
    return letters.length > before ? letters[0] : undefined
  }, 15_000, () => 'no dead letter')
}

async function list (a: AdminApp, token: string): Promise<{ durable: boolean, deadLetters: Array<Record<string, unknown> & { id: string }> }> {
  const res = await a.app.inject({ url: '/waygate/api/webhooks/dead-letters', headers: { authorization: `Bearer ${token}` } })
  if (res.statusCode !== 200) throw new Error(`list: ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('REST: a dead letter is listed, retried (then delivered) or deleted; bad or unknown ids are 4xx', async t => {
  const receiver = await startReceiver(t, { fallback: 500 })
  const a = await fileApp(t, receiver)
  const token = await a.login()
  const auth = { authorization: `Bearer ${token}` }

  t.equal((await a.app.inject({ url: '/waygate/api/webhooks/dead-letters' })).statusCode, 401, 'signed-in callers only')
  const letter = await deadLetter(a, token, 'GET:/payments')
  t.match(letter, {
    event: 'disable',
    key: 'GET:/payments',
    webhook: receiver.url.replace(/\/hook$/, '/…'),
    attempts: 1,
    lastError: 'answered 500',
    eventId: receiver.received[0]!.headers['x-waygate-delivery']
  }, 'what was sent, where (origin only), how often and why')
  t.notMatch(JSON.stringify(letter), /secret-token/, 'never the webhook\'s full URL')
  t.equal((await list(a, token)).durable, true)

  const bad = await a.app.inject({ method: 'POST', url: '/waygate/api/webhooks/dead-letters/nope/retry', headers: auth })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'WG_ERR_REQUEST_INVALID')
  const unknown = await a.app.inject({ method: 'POST', url: `/waygate/api/webhooks/dead-letters/${'0'.repeat(32)}/retry`, headers: auth })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().error.code, 'WG_ERR_NOT_FOUND')

  receiver.fallback = 200
  const retried = await a.app.inject({ method: 'POST', url: `/waygate/api/webhooks/dead-letters/${letter.id}/retry`, headers: auth })
  t.equal(retried.statusCode, 200)
  t.same(retried.json(), { retried: true })
  await receiver.waitFor(2, 15_000)
  t.equal(receiver.received[1]!.headers['x-waygate-delivery'], letter.eventId, 'delivered, with the same delivery id')
  await until(async () => (await list(a, token)).deadLetters.length === 0 ? true : undefined, 10_000, () => 'still a dead letter')
  t.equal((await a.app.inject({ method: 'POST', url: `/waygate/api/webhooks/dead-letters/${letter.id}/retry`, headers: auth })).statusCode, 404,
    'gone once retried')
  const audited = await a.app.inject({ url: '/waygate/api/audit?action=webhook_retry', headers: auth })
  t.match(audited.json(), [{ action: 'webhook_retry', key: 'GET:/payments', actor: 'admin', platform: 'cli', reason: `disable to ${String(letter.webhook)} (delivery ${String(letter.eventId)})` }],
    'the retry is audited: who, and what was sent where')

  receiver.fallback = 500
  const other = await deadLetter(a, token, 'GET:/search&find')
  const deleted = await a.app.inject({ method: 'DELETE', url: `/waygate/api/webhooks/dead-letters/${other.id}`, headers: auth })
  t.equal(deleted.statusCode, 200)
  t.same(deleted.json(), { deleted: true })
  t.same((await list(a, token)).deadLetters, [], 'deleted')
  t.match((await a.app.inject({ url: '/waygate/api/audit?action=webhook_delete', headers: auth })).json(), [{ key: 'GET:/search&find', actor: 'admin' }], 'audited')
  t.equal((await a.app.inject({ method: 'DELETE', url: `/waygate/api/webhooks/dead-letters/${other.id}`, headers: auth })).statusCode, 404)
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(receiver.received.length, 3, 'a deleted dead letter is not sent')
})

t.test('REST: a backend without an outbox says so and lists none', async t => {
  const a = await buildAdminApp(t, { engine: { backend: createMemoryBackend() } })
  const token = await a.login()
  t.same(await list(a, token), { durable: false, deadLetters: [] })
})

t.test('dashboard: the dead letter page lists them, escaped, and its retry form needs the session\'s CSRF token', async t => {
  const receiver = await startReceiver(t, { fallback: 500 })
  const a = await fileApp(t, receiver)
  const token = await a.login()
  const letter = await deadLetter(a, token, 'GET:/search&find')
  const browser = await signIn(a.app)

  const home = await a.app.inject({ url: '/waygate/', headers: { cookie: browser.cookie } })
  t.match(home.body, 'href="/waygate/dead-letters"', 'linked from the navigation')
  const page = await a.app.inject({ url: '/waygate/dead-letters', headers: { cookie: browser.cookie } })
  t.equal(page.statusCode, 200)
  t.match(page.body, `id="dl-${letter.id}"`, 'the dead letter is listed')
  t.match(page.body, '<code>GET:/search&amp;find</code>', 'escaped')
  t.match(page.body, 'answered 500')
  t.notMatch(page.body, 'secret-token', 'never the webhook\'s full URL')

  const forged = await a.app.inject({ method: 'POST', url: '/waygate/dead-letters/retry', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form({ id: letter.id }) })
  t.equal(forged.statusCode, 403, 'no CSRF token: refused')
  const badId = await a.app.inject({ method: 'POST', url: '/waygate/dead-letters/retry', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form({ _csrf: browser.csrf, id: '<x>' }) })
  t.equal(badId.statusCode, 400, 'a bad id is a 400 page')
  t.notMatch(badId.body, '<x>', 'not echoed raw')

  receiver.fallback = 200
  const retried = await a.app.inject({ method: 'POST', url: '/waygate/dead-letters/retry', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form({ _csrf: browser.csrf, id: letter.id }) })
  t.equal(retried.statusCode, 303)
  t.equal(retried.headers.location, '/waygate/dead-letters?done=retried')
  await receiver.waitFor(2, 15_000)
  t.match(receiver.received[1]!.json, { event: 'disable', key: 'GET:/search&find' }, 'delivered')
  await until(async () => (await list(a, token)).deadLetters.length === 0 ? true : undefined, 10_000, () => 'still a dead letter')
  const after = await a.app.inject({ url: '/waygate/dead-letters?done=retried', headers: { cookie: browser.cookie } })
  t.match(after.body, 'No dead letters')
  t.match(after.body, 'Sent again')
  t.match(await a.engine.listAudit({ action: 'webhook_retry' }), [{ actor: 'admin', platform: 'dashboard' }], 'audited as the dashboard\'s user')
})
