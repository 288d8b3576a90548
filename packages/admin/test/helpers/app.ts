import Fastify, { type FastifyInstance } from 'fastify'
import { createEngine, createMemoryBackend, type EngineOptions, type WaygateEngine } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin, type WaygateAdminOptions } from '@waygate/admin'

export const SECRET = 'test-secret-key-0123456789'
export const USER = { username: 'admin', password: 'secret' }

export interface AdminApp {
  app: FastifyInstance
  engine: WaygateEngine
  logs: string[]
  /** Logs in and returns the token. */
  login(platform?: 'cli' | 'sdk' | 'api'): Promise<string>
}

/**
 * An app with waygate, a few routes and the admin at /waygate (admin / secret), closed at teardown.
 */
export async function buildAdminApp (
  t: { teardown: (fn: () => unknown) => void },
  options: { engine?: EngineOptions, admin?: Partial<WaygateAdminOptions>, routes?: (app: FastifyInstance) => void } = {}
): Promise<AdminApp> {
  const logs: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(line) } } } })
  const engine = createEngine({ backend: createMemoryBackend(), ...options.engine })
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true })
  const ok = async () => ({ ok: true })
  if (options.routes !== undefined) {
    options.routes(app)
  } else {
    app.get('/health', { config: { waygate: { forceActive: true } } }, ok)
    app.get('/payments', { config: { waygate: { maintenance: { reason: 'DB migration' } } } }, ok)
    app.post('/payments', ok)
    app.get('/users/:id', ok)
    app.get('/v1/users', { config: { waygate: { deprecated: { successor: '/v2/users' } } } }, ok)
  }
  await app.register(waygateAdmin, { auth: USER, secretKey: SECRET, ...options.admin })
  await app.ready()
  return {
    app,
    engine,
    logs,
    async login (platform = 'cli') {
      const res = await app.inject({ method: 'POST', url: '/waygate/api/auth/login', payload: { ...USER, platform } })
      if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
      return res.json().token as string
    }
  }
}

/** Percent-encodes a route key for a URL. */
export const enc = (key: string): string => encodeURIComponent(key)
