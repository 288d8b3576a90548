import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { RateLimiter } from '@waygate/core'
import { buildAdminApp } from './helpers/app.js'
import { form, FORM_HEADERS, postAction, sessionCookie, signIn, type Browser } from './helpers/dashboard.js'

const ok = async () => ({ ok: true })

/**
 * `return` and `next` values no Location header may carry or no dashboard may send a browser to:
 * characters beyond ASCII (Latin-1 or not), controls, header splitting, other sites, backslashes.
 * Each is given as a suffix of a path under the prefix and, for the off-site ones, on its own.
 */
function hostile (prefix: string): string[] {
  return [
    `${prefix}/é`,
    `${prefix}/?q=é`,
    `${prefix}/audit?actor=ü`,
    `${prefix}/😀`,
    `${prefix}/?q=\u2028`,
    `${prefix}/\u0000`,
    `${prefix}/a\u0001b`,
    `${prefix}/\u007f`,
    `${prefix}/\r\nSet-Cookie: evil=1`,
    `${prefix}/\n`,
    `${prefix}/\tx`,
    '//evil.example',
    '//evil.example/waygate/',
    'https://evil.example',
    `https://evil.example${prefix}/`,
    '/\\evil.example',
    `${prefix}/\\evil`,
    `${prefix}/../../evil`,
    'javascript:alert(1)'
  ]
}

async function setup (t: { teardown: (fn: () => unknown) => void }, prefix: string) {
  const built = await buildAdminApp(t, {
    admin: { prefix },
    routes: app => {
      app.get('/payments', ok)
      app.get('/posts', { config: { waygate: { rateLimit: '5/minute' } } }, ok)
    }
  })
  const limiter = (built.app as unknown as { waygateRateLimits: RateLimiter }).waygateRateLimits
  return { ...built, limiter, browser: await signInAt(built.app, prefix) }
}

/** signIn from the helpers, for any prefix. */
async function signInAt (app: FastifyInstance, prefix: string): Promise<Browser> {
  if (prefix === '/waygate') return signIn(app)
  const res = await app.inject({ method: 'POST', url: `${prefix}/login`, headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'secret' }) })
  const cookie = sessionCookie(res)!
  const page = await app.inject({ url: `${prefix}/`, headers: { cookie } })
  return { cookie, csrf: /<meta name="waygate-csrf" content="([^"]+)">/.exec(page.body)![1]! }
}

/** A value as an assertion message can carry it (TAP output is line-based: no raw separators). */
const shown = (value: string) => JSON.stringify(value).replace(/[^\x20-\x7e]/gu, c => `\\u{${c.codePointAt(0)!.toString(16)}}`)

for (const prefix of ['/waygate', '']) {
  const home = `${prefix}/`

  t.test(`prefix "${prefix}": an action with a hostile return runs, then goes to the home page (never a 500, never off-site)`, async t => {
    const { app, engine, limiter, browser } = await setup(t, prefix)
    for (const value of hostile(prefix)) {
      const reason = `r${Math.random()}`
      const res = prefix === '/waygate'
        ? await postAction(app, browser, { action: 'disable', key: 'GET:/payments', reason, return: value })
        : await app.inject({ method: 'POST', url: '/action', headers: { ...FORM_HEADERS, cookie: browser.cookie }, payload: form({ _csrf: browser.csrf, action: 'disable', key: 'GET:/payments', reason, return: value }) })
      t.equal(res.statusCode, 303, `${shown(value)}: ${res.body.slice(0, 200)}`)
      t.equal(res.headers.location, home, shown(value))
      t.equal(engine.getState('GET:/payments')!.reason, reason, `${shown(value)}: the action ran`)

      const limits = `${1 + Math.floor(Math.random() * 1000)}/minute`
      const rl = await app.inject({
        method: 'POST',
        url: `${prefix}/rate-limits/action`,
        headers: { ...FORM_HEADERS, cookie: browser.cookie },
        payload: form({ _csrf: browser.csrf, action: 'rl-edit', key: 'GET:/posts', limits, return: value })
      })
      t.equal(rl.statusCode, 303, `rate limits ${shown(value)}: ${rl.body.slice(0, 200)}`)
      t.equal(rl.headers.location, `${prefix}/rate-limits`, `rate limits ${shown(value)}: back to the rate limit page`)
      t.same(limiter.policyFor('GET:/posts')!.policy.limits, [limits], `rate limits ${shown(value)}: the action ran`)
    }
  })

  t.test(`prefix "${prefix}": a confirmation form never carries a hostile return`, async t => {
    const { app, browser } = await setup(t, prefix)
    for (const value of hostile(prefix)) {
      for (const [url, fallback] of [
        [`${prefix}/confirm?${new URLSearchParams({ action: 'disable', key: 'GET:/payments', return: value })}`, home],
        [`${prefix}/rate-limits/confirm?${new URLSearchParams({ action: 'rl-edit', key: 'GET:/posts', return: value })}`, `${prefix}/rate-limits`]
      ] as const) {
        const res = await app.inject({ url, headers: { cookie: browser.cookie } })
        t.equal(res.statusCode, 200, `${shown(url)}: ${res.body.slice(0, 200)}`)
        t.match(res.body, `name="return" value="${fallback}"`, `${shown(value)} became ${fallback}`)
      }
    }
  })

  t.test(`prefix "${prefix}": sign-in with a hostile next goes to the home page`, async t => {
    const { app, browser } = await setup(t, prefix)
    for (const value of hostile(prefix)) {
      const login = await app.inject({ method: 'POST', url: `${prefix}/login`, headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'secret', next: value }) })
      t.equal(login.statusCode, 303, `POST login ${shown(value)}: ${login.body.slice(0, 200)}`)
      t.equal(login.headers.location, home, `POST login ${shown(value)}`)
      t.not(sessionCookie(login), null, 'signed in all the same')

      const wrong = await app.inject({ method: 'POST', url: `${prefix}/login`, headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'nope', next: value }) })
      t.equal(wrong.statusCode, 401, `wrong password ${shown(value)}`)
      t.match(wrong.body, `name="next" value="${home}"`, `wrong password ${shown(value)}: the form keeps the home page instead`)

      const url = `${prefix}/login?${new URLSearchParams({ next: value })}`
      const signedIn = await app.inject({ url, headers: { cookie: browser.cookie } })
      t.equal(signedIn.statusCode, 303, `GET login signed in ${shown(value)}: ${signedIn.body.slice(0, 200)}`)
      t.equal(signedIn.headers.location, home, `GET login signed in ${shown(value)}`)

      const page = await app.inject(url)
      t.equal(page.statusCode, 200, `GET login ${shown(value)}`)
      t.notMatch(page.body, 'name="next"', `GET login ${shown(value)}: the form does not keep it`)
    }
    // what the dashboard itself sends still works
    const kept = await app.inject({ method: 'POST', url: `${prefix}/login`, headers: FORM_HEADERS, payload: form({ username: 'admin', password: 'secret', next: `${prefix}/audit?actor=admin` }) })
    t.equal(kept.headers.location, `${prefix}/audit?actor=admin`)
  })
}

t.test('a page asked for with characters beyond ASCII sends a signed-out browser to sign in, encoded', async t => {
  const { app } = await buildAdminApp(t)
  const res = await app.inject('/waygate/audit?actor=%C3%A9')
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/waygate/login?next=%2Fwaygate%2Faudit%3Factor%3D%25C3%25A9')
})
