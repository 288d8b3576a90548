import { GLOBAL_KEY, isServiceName, type Platform, type WaygateEngine } from '@waygate/core'
import { REVOKED_NAMESPACE, WG_ERR_REQUEST_INVALID, type DashboardServiceTokens, type ServiceTokenInfo as AdminServiceTokenInfo, type TokenClaims } from '@waygate/admin'

/** Where the metadata of service tokens is kept (id = the token's jti); the tokens themselves never are. */
export const SERVICE_TOKENS_NAMESPACE = 'waygate:service-tokens'

/** Lifetime of a token created without one: 365 days. */
export const DEFAULT_TOKEN_SECONDS = 365 * 86_400
/** The longest lifetime a token may have: five years (leap days included). */
export const MAX_TOKEN_SECONDS = 5 * 366 * 86_400
/** How long the metadata of a token is kept after it expired, so `token list` still shows it. */
const KEPT_AFTER_EXPIRY_MS = 30 * 86_400_000

/**
 * A service token as operators see it, never the token itself: the admin's own declaration, which
 * the dashboard's tokens page reads.
 */
export type ServiceTokenInfo = AdminServiceTokenInfo

/**
 * The service tokens of a Waygate Server: created by operators, one service each, revocable. The
 * shape the admin's dashboard takes (`fleet.tokens`): `create` signs a token with the svc claim
 * (plat 'sdk'), stores its metadata durably and audits token_created; `list` never returns a
 * token, newest first; `revoke` is durable and immediate on every server instance (open streams of
 * that token close), audits token_revoked, and answers null for an unknown id.
 */
export type ServiceTokens = DashboardServiceTokens

/** What {@link createServiceTokens} needs of the admin it is mounted in. */
export interface ServiceTokensDeps {
  engine: WaygateEngine
  /** The admin's signer for service tokens (`AdminContext.issueServiceToken`). */
  issue(service: string, ttlSeconds: number): { token: string, claims: TokenClaims }
}

interface StoredToken {
  service: string
  name: string
  createdAt: string
  expiresAt: string
  createdBy: string
  revokedAt: string | null
  revokedBy?: string
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 365 * 86_400 }

/** What `expires` looks like in the API: a whole number and one of s, m, h, d, w, y. */
export const TOKEN_DURATION_PATTERN = '^\\s*\\d{1,9}\\s*[smhdwy]\\s*$'

/** Seconds of a lifetime such as `365d`, `12h`, `30m`; a 400 when it is none, or past five years. */
export function parseTokenDuration (text: string): number {
  const match = /^\s*(\d{1,9})\s*([smhdwy])\s*$/.exec(text)
  if (match === null) throw new WG_ERR_REQUEST_INVALID(`expires "${text.slice(0, 50)}": expected a duration such as 365d, 12h or 30m`)
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2]!]!
  if (seconds < 60 || seconds > MAX_TOKEN_SECONDS) throw new WG_ERR_REQUEST_INVALID(`expires "${text.slice(0, 50)}": a token lives from a minute to five years`)
  return seconds
}

function infoOf (id: string, value: unknown): ServiceTokenInfo | null {
  const v = value as Partial<StoredToken> | null
  if (v === null || typeof v !== 'object' || typeof v.service !== 'string' || typeof v.createdAt !== 'string' || typeof v.expiresAt !== 'string') return null
  return {
    id,
    service: v.service,
    name: typeof v.name === 'string' ? v.name : '',
    createdAt: v.createdAt,
    expiresAt: v.expiresAt,
    createdBy: typeof v.createdBy === 'string' ? v.createdBy : '',
    revokedAt: typeof v.revokedAt === 'string' ? v.revokedAt : null
  }
}

/**
 * Service tokens: signed by the admin's token signer (claims `svc`, `kind: 'service'`, platform
 * sdk), so they reach only their service's SDK endpoints and live until they expire or are revoked,
 * whatever happens to the password of the operator who created them. Their metadata lives in the
 * backend (`waygate:service-tokens`); revoking one writes the same revocation record a logout does,
 * which every server process on the backend checks on each request and which closes the token's
 * open streams.
 */
export function createServiceTokens (deps: ServiceTokensDeps): ServiceTokens {
  const { engine, issue } = deps
  const iso = (ms: number): string => new Date(ms).toISOString()

  async function audit (action: 'token_created' | 'token_revoked', info: ServiceTokenInfo, actor: string, platform: Platform): Promise<void> {
    await engine.recordChange({
      id: `${action}:${info.id}`,
      timestamp: iso(engine.now()),
      key: GLOBAL_KEY,
      service: info.service,
      action,
      actor,
      platform,
      reason: `token ${info.id}${info.name === '' ? '' : ` "${info.name}"`}, expires ${info.expiresAt}`,
      previousStatus: null,
      newStatus: null
    })
  }

  return {
    async create (input, actor, platform = 'dashboard') {
      const { service } = input
      if (typeof service !== 'string' || !isServiceName(service)) {
        throw new WG_ERR_REQUEST_INVALID(`service "${String(service).slice(0, 100)}" cannot name a service (lowercase letters, digits, . _ -; no HTTP method)`)
      }
      const name = input.name ?? ''
      if (typeof name !== 'string' || name.length > 100 || !/^[^\p{Cc}]*$/u.test(name)) {
        throw new WG_ERR_REQUEST_INVALID('name: up to 100 characters, no control characters')
      }
      const ttl = input.expiresIn ?? DEFAULT_TOKEN_SECONDS
      if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_TOKEN_SECONDS) {
        throw new WG_ERR_REQUEST_INVALID('expiresIn: whole seconds, from a minute to five years')
      }
      const { token, claims } = issue(service, ttl)
      const stored: StoredToken = {
        service,
        name: name.trim(),
        createdAt: iso(engine.now()),
        expiresAt: iso(claims.exp * 1000),
        createdBy: actor,
        revokedAt: null
      }
      await engine.backend.putRecord(SERVICE_TOKENS_NAMESPACE, claims.jti, stored, { expiresAt: claims.exp * 1000 + KEPT_AFTER_EXPIRY_MS })
      const info = infoOf(claims.jti, stored)!
      await audit('token_created', info, actor, platform)
      return { token, info }
    },

    async list (filter = {}) {
      const records = await engine.backend.listRecords(SERVICE_TOKENS_NAMESPACE)
      const out: ServiceTokenInfo[] = []
      for (const record of records) {
        const info = infoOf(record.id, record.value)
        if (info !== null && (filter.service === undefined || info.service === filter.service)) out.push(info)
      }
      return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id))
    },

    async revoke (id, actor, platform = 'dashboard') {
      const record = await engine.backend.getRecord(SERVICE_TOKENS_NAMESPACE, id)
      const info = record === null ? null : infoOf(id, record.value)
      if (info === null) return null
      if (info.revokedAt !== null) return info
      const expiresAt = Date.parse(info.expiresAt)
      // the revocation first: from this write on, every server process refuses the token and closes its streams
      if (expiresAt > engine.now()) {
        await engine.backend.putRecord(REVOKED_NAMESPACE, id, { user: `service:${info.service}`, service: info.service }, { expiresAt })
      }
      const revoked: ServiceTokenInfo = { ...info, revokedAt: iso(engine.now()) }
      const { id: _id, ...fields } = revoked
      await engine.backend.putRecord(SERVICE_TOKENS_NAMESPACE, id, { ...fields, revokedBy: actor },
        record!.expiresAt === null ? undefined : { expiresAt: record!.expiresAt })
      await audit('token_revoked', revoked, actor, platform)
      return revoked
    }
  }
}
