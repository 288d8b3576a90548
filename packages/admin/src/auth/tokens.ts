import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { isServiceName } from '@waygate/core'

/** Who a token was issued for. `api` tokens come from a plain REST login. */
export type TokenPlatform = 'cli' | 'dashboard' | 'sdk' | 'api'

/** What a token carries. */
export interface TokenClaims {
  /** The user. */
  sub: string
  plat: TokenPlatform
  /** Issued at, epoch seconds. */
  iat: number
  /** Expires at, epoch seconds. */
  exp: number
  /** Unique id, the handle for revocation. */
  jti: string
  /** Credential version of the user at issue time; the token dies when it no longer matches. */
  cv?: string
  /** The service the token is scoped to: it may use only that service's SDK endpoints. */
  svc?: string
  /**
   * `service`: a service token an operator issued (`waygate token create`), with `svc` set. It is
   * bound to no user's password, only to its expiry and its revocation.
   */
  kind?: 'service'
}

const PREFIX = 'wg1'

function b64url (data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
}

/** Signs and verifies waygate tokens: `wg1.<claims>.<HMAC-SHA256>`, all base64url. */
export interface TokenSigner {
  sign(user: string, platform: TokenPlatform, ttlSeconds: number, now: number, credentialVersion?: string, service?: string, kind?: 'service'): { token: string, claims: TokenClaims }
  /** Returns the claims of a well-formed, correctly signed, unexpired token, else null. */
  verify(token: string, now: number): TokenClaims | null
}

/** A random secret for when none is configured. */
export function randomSecret (): string {
  return randomBytes(32).toString('base64url')
}

export function createTokenSigner (secret: string): TokenSigner {
  const mac = (data: string): Buffer => createHmac('sha256', secret).update(data).digest()
  return {
    sign (user, platform, ttlSeconds, now, credentialVersion, service, kind) {
      const iat = Math.floor(now / 1000)
      const claims: TokenClaims = { sub: user, plat: platform, iat, exp: iat + ttlSeconds, jti: randomUUID() }
      if (credentialVersion !== undefined) claims.cv = credentialVersion
      if (service !== undefined) claims.svc = service
      if (kind !== undefined) claims.kind = kind
      const body = `${PREFIX}.${b64url(JSON.stringify(claims))}`
      return { token: `${body}.${b64url(mac(body))}`, claims }
    },
    verify (token, now) {
      if (typeof token !== 'string' || token.length > 4096) return null
      const parts = token.split('.')
      if (parts.length !== 3 || parts[0] !== PREFIX) return null
      const body = `${parts[0]}.${parts[1]}`
      // compared as text: only the exact canonical base64url spelling of the MAC is accepted
      const given = Buffer.from(parts[2]!)
      const expected = Buffer.from(b64url(mac(body)))
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
      let claims: TokenClaims
      try {
        claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'))
      } catch {
        return null
      }
      if (typeof claims !== 'object' || claims === null || typeof claims.sub !== 'string' || typeof claims.exp !== 'number' ||
          typeof claims.jti !== 'string' || !['cli', 'dashboard', 'sdk', 'api'].includes(claims.plat) ||
          (claims.cv !== undefined && typeof claims.cv !== 'string') || (claims.svc !== undefined && !isServiceName(claims.svc)) ||
          (claims.kind !== undefined && (claims.kind !== 'service' || claims.svc === undefined))) return null
      if (claims.exp * 1000 <= now) return null
      return claims
    }
  }
}
