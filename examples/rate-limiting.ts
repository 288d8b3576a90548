/**
 * Rate limiting example: every key strategy, algorithm and option, managed live from the
 * dashboard, the REST API or the CLI.
 *
 *   pnpm --filter @waygate/examples rate-limiting
 *
 *   GET /public/posts      10/minute per client address (the default key)
 *   GET /fixed|/sliding|/moving|/bucket   5/minute with each algorithm
 *   GET /burst             5/minute + burst 3: 8 requests before the first 429
 *   GET /users/me          100/minute per user (X-User header stands in for real auth);
 *                          no user: exempt. /users/strict refuses them, /users/fallback counts by address
 *   GET /data              50/minute per X-API-Key (by address without one)
 *   GET /search            5/minute shared by every caller
 *   GET /reports           by plan (X-Plan header): free 10/minute, pro 100/minute, enterprise unlimited
 *   GET /internal/metrics  10/minute, but loopback and private ranges are exempt
 *   GET /checkout          in maintenance: 503 first, no quota used
 *   GET /health            never limited
 *
 *   waygate login admin && waygate rl list
 *   waygate rl set GET:/public/posts 20/minute     raise a limit live (stored, survives restarts)
 *   waygate rl reset GET:/public/posts             clear its counters
 *   waygate rl hits                                the blocked requests
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { createEngineFromEnv, type RateLimitStore, type WaygateBackend } from '@waygate/core'
import { waygate } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface RateLimitingExampleOptions {
  backend?: WaygateBackend
  /** Counters; default a memory store (use createRedisRateLimitStore() for several instances). */
  store?: RateLimitStore
  logger?: boolean | { level: string }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set from the X-User header: a stand-in for your authentication. */
    user?: { id: string }
    /** Set from the X-Plan header: a stand-in for the caller's subscription. */
    plan?: string
  }
}

/** Builds the app without listening, so tests can `inject()` into it. */
export async function build (options: RateLimitingExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const engine = createEngineFromEnv({
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    logger: app.log.child({ name: 'waygate' })
  })
  await app.register(waygate, { engine, closeEngine: true, rateLimit: { store: options.store } })

  // stand-in authentication: a real app would read a session or a verified token
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const user = request.headers['x-user']
    if (typeof user === 'string' && user !== '') request.user = { id: user }
    const plan = request.headers['x-plan']
    if (typeof plan === 'string') request.plan = plan
  })

  const ok = (name: string) => async () => ({ route: name })

  app.get('/public/posts', { config: { waygate: { rateLimit: '10/minute' } } }, async () => ({ posts: ['hello', 'world'] }))

  for (const algorithm of ['fixed_window', 'sliding_window', 'moving_window', 'token_bucket'] as const) {
    const path = { fixed_window: '/fixed', sliding_window: '/sliding', moving_window: '/moving', token_bucket: '/bucket' }[algorithm]
    app.get(path, { config: { waygate: { rateLimit: { limit: '5/minute', algorithm } } } }, async () => ({ algorithm }))
  }

  app.get('/burst', { config: { waygate: { rateLimit: { limit: '5/minute', burst: 3 } } } }, async () => ({ base: '5/minute', burst: 3 }))

  app.get('/users/me', { config: { waygate: { rateLimit: { limit: '100/minute', key: 'user' } } } },
    async (request) => ({ user: request.user?.id ?? null }))
  app.get('/users/strict', { config: { waygate: { rateLimit: { limit: '100/minute', key: 'user', onMissingKey: 'block' } } } },
    async (request) => ({ user: request.user?.id ?? null }))
  app.get('/users/fallback', { config: { waygate: { rateLimit: { limit: '100/minute', key: 'user', onMissingKey: 'fallback_ip' } } } },
    async (request) => ({ user: request.user?.id ?? null }))

  app.get('/data', { config: { waygate: { rateLimit: { limit: '50/minute', key: 'api_key' } } } }, async () => ({ data: [1, 2, 3] }))

  app.get('/search', { config: { waygate: { rateLimit: { limit: '5/minute', key: 'global' } } } }, async () => ({ results: [] }))

  app.get('/reports', {
    config: {
      waygate: {
        rateLimit: { tiers: { free: '10/minute', pro: '100/minute', enterprise: 'unlimited' }, key: 'user', onMissingKey: 'fallback_ip' }
      }
    }
  }, async (request) => ({ plan: request.plan ?? 'free', reports: [] }))

  app.get('/internal/metrics', {
    config: { waygate: { rateLimit: { limit: '10/minute', exemptIps: ['127.0.0.1', '::1', '10.0.0.0/8', '192.168.0.0/16'] } } }
  }, async () => ({ requests: 42 }))

  app.get('/checkout', {
    config: { waygate: { maintenance: { reason: 'Payment processor upgrade' }, rateLimit: '5/minute' } }
  }, ok('checkout'))

  app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ status: 'ok' }))

  await app.register(waygateAdmin, { auth: { username: 'admin', password: 'secret' }, secretKey: process.env.WAYGATE_SECRET_KEY })
  return app
}

if (isEntryPoint(import.meta.url)) {
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`
waygate rate limiting example on ${url}

  for i in $(seq 1 9); do curl -s -o /dev/null -w '%{http_code} ' ${url}/burst; done; echo
  curl -i ${url}/public/posts                          (RateLimit and RateLimit-Policy headers)
  curl -H 'X-User: alice' ${url}/users/me
  curl -H 'X-API-Key: k1' ${url}/data
  curl -H 'X-User: bob' -H 'X-Plan: pro' ${url}/reports

Dashboard: ${url}/waygate/rate-limits  (admin / secret)
CLI:       waygate config set-url ${url}/waygate && waygate login admin && waygate rl list
Ctrl-C stops.
`)
}
