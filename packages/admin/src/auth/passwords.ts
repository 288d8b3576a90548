import { randomBytes, scrypt, timingSafeEqual, createHmac } from 'node:crypto'

const N = 16384
const R = 8
const P = 1
const KEY_LENGTH = 32

function scryptAsync (password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { N: n, r, p, maxmem: 256 * n * r }, (err, key) => {
      if (err === null) resolve(key)
      else reject(err)
    })
  })
}

/**
 * Hashes a password for the `auth` option: `scrypt$N$r$p$<salt base64>$<hash base64>`.
 *
 * @example
 * auth: { username: 'admin', password: await hashPassword('s3cret') }
 */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, N, R, P)
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`
}

/** True when `stored` is a hash produced by {@link hashPassword}. */
export function isPasswordHash (stored: string): boolean {
  return /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(stored)
}

// a per-process key so plain-text comparisons take the same time whatever the lengths
const compareKey = randomBytes(32)

function digest (value: string): Buffer {
  return createHmac('sha256', compareKey).update(value).digest()
}

/** Compares two strings in constant time. */
export function safeEqual (a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b))
}

/** Checks a password against a plain or hashed stored value, in constant time. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  if (!isPasswordHash(stored)) return safeEqual(password, stored)
  const [, n, r, p, salt, hash] = stored.split('$') as [string, string, string, string, string, string]
  const expected = Buffer.from(hash, 'base64')
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64'), Number(n), Number(r), Number(p))
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}
