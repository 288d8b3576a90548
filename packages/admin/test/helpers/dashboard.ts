import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { USER } from './app.js'

/** A signed-in browser: its session cookie and the CSRF token its pages carry. */
export interface Browser {
  cookie: string
  csrf: string
}

/** The `name=value` part of the session cookie a response sets, or null. */
export function sessionCookie (res: LightMyRequestResponse): string | null {
  const header = res.headers['set-cookie']
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header]
  const line = all.find(c => c.startsWith('waygate_session='))
  return line === undefined ? null : line.split(';')[0]!
}

/** The Set-Cookie line of the session cookie, attributes included. */
export function sessionCookieLine (res: LightMyRequestResponse): string {
  const header = res.headers['set-cookie']
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return all.find(c => c.startsWith('waygate_session=')) ?? ''
}

/** The CSRF token in a page's meta tag. */
export function csrfOf (html: string): string {
  const match = /<meta name="waygate-csrf" content="([^"]+)">/.exec(html)
  if (match === null) throw new Error('no CSRF token in the page')
  return match[1]!
}

export function form (values: Record<string, string>): string {
  return new URLSearchParams(values).toString()
}

export const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' }

/** Signs in through the login form and loads the routes page for the CSRF token. */
export async function signIn (app: FastifyInstance, credentials = USER): Promise<Browser> {
  const res = await app.inject({ method: 'POST', url: '/waygate/login', headers: FORM_HEADERS, payload: form(credentials) })
  const cookie = sessionCookie(res)
  if (res.statusCode !== 303 || cookie === null) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  const page = await app.inject({ url: '/waygate/', headers: { cookie } })
  return { cookie, csrf: csrfOf(page.body) }
}

/** Posts a dashboard action form as a browser without the script would. */
export function postAction (app: FastifyInstance, browser: Browser, values: Record<string, string>, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/waygate/action',
    headers: { ...FORM_HEADERS, cookie: browser.cookie, ...headers },
    payload: form({ _csrf: browser.csrf, ...values })
  })
}
