import { createHmac } from 'node:crypto'
import { isPasswordHash, safeEqual, verifyPassword } from './passwords.js'

/** One admin user. `password` is plain text or a hash from `hashPassword()`. */
export interface AdminUser {
  username: string
  password: string
}

/** A custom credential check. Return true (or the actor name to record) to accept, false to refuse. */
export interface Authenticator {
  authenticate(username: string, password: string): boolean | string | Promise<boolean | string>
}

/** What the `auth` option accepts; `false` leaves the admin open (development only). */
export type AuthOption = false | AdminUser | AdminUser[] | Authenticator

function isAuthenticator (value: unknown): value is Authenticator {
  return typeof value === 'object' && value !== null && typeof (value as Authenticator).authenticate === 'function'
}

/** Checks the `auth` option and lists what is wrong with it. */
export function authProblems (auth: unknown): string[] {
  if (auth === false || isAuthenticator(auth)) return []
  const users = Array.isArray(auth) ? auth : [auth]
  if (users.length === 0) return ['auth: at least one user is needed (or auth: false)']
  const problems: string[] = []
  const seen = new Set<string>()
  users.forEach((user, i) => {
    const where = Array.isArray(auth) ? `auth[${i}]` : 'auth'
    if (typeof user !== 'object' || user === null) {
      problems.push(`${where}: expected { username, password }, an array of them, { authenticate() } or false`)
      return
    }
    const { username, password } = user as Partial<AdminUser>
    if (typeof username !== 'string' || username.length === 0 || username.length > 200) problems.push(`${where}.username: a non-empty string is required`)
    else if (seen.has(username)) problems.push(`${where}.username: "${username}" is listed twice`)
    else seen.add(username)
    if (typeof password !== 'string' || password.length === 0) problems.push(`${where}.password: a non-empty string is required`)
  })
  return problems
}

// checked against when the user is unknown, so a wrong name costs as long as a wrong password
const DUMMY = 'waygate-no-such-user'

/** Turns the `auth` option into one credential check; null when the admin is open. */
export function createCredentialCheck (auth: AuthOption): ((username: string, password: string) => Promise<string | null>) | null {
  if (auth === false) return null
  if (isAuthenticator(auth)) {
    return async (username, password) => {
      const result = await auth.authenticate(username, password)
      if (result === true) return username
      return typeof result === 'string' && result.length > 0 ? result : null
    }
  }
  const users = new Map((Array.isArray(auth) ? auth : [auth]).map(u => [u.username, u.password]))
  // when any user is hashed, every check costs one hash, so that a plain user's wrong password
  // cannot be told from an unknown user's (or a hashed user's) by the time it takes
  const costHash = [...users.values()].find(isPasswordHash)
  return async (username, password) => {
    let match: string | null = null
    let matched = false
    for (const name of users.keys()) {
      // compare every name so the time does not depend on which one matched
      if (safeEqual(name, username)) { match = name; matched = true }
    }
    const stored = matched ? users.get(match!)! : DUMMY
    let ok: boolean
    if (isPasswordHash(stored)) {
      ok = await verifyPassword(password, stored)
    } else {
      if (costHash !== undefined) await verifyPassword(password, costHash)
      ok = safeEqual(password, stored)
    }
    return matched && ok ? match : null
  }
}

/**
 * What ties a token to its user's credentials: for configured users, a short HMAC (under the secret
 * key, so the token's readable claims reveal nothing about the password) of the name and the stored
 * password or hash. It changes when the password or its hash changes, and a user no longer configured
 * has none. Returns null for a user that is not configured, undefined when the auth option cannot
 * tell (an open admin, a custom authenticator).
 */
export function createCredentialVersions (auth: AuthOption, secret: string): (user: string) => string | null | undefined {
  if (auth === false || isAuthenticator(auth)) return () => undefined
  const versions = new Map<string, string>()
  for (const { username, password } of Array.isArray(auth) ? auth : [auth]) {
    versions.set(username, createHmac('sha256', secret).update(`waygate-credential:${username}\0${password}`).digest('base64url').slice(0, 22))
  }
  return user => versions.get(user) ?? null
}
