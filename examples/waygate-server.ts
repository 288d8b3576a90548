/**
 * The Waygate Server of the two server examples: one process that owns the route state of every
 * service, with the dashboard at `/` and the REST API the CLI uses at `/api/...`.
 *
 *   pnpm --filter @waygate/examples waygate-server          → http://127.0.0.1:8001 (admin / secret)
 *   WAYGATE_BACKEND=file WAYGATE_FILE_PATH=./server-state.json pnpm --filter @waygate/examples waygate-server
 *   WAYGATE_BACKEND=redis WAYGATE_REDIS_URL=redis://127.0.0.1:6379 ...   (several server instances, one truth)
 *
 * Then start the services, each in its own terminal:
 *   pnpm --filter @waygate/examples service                 (the single-service example, port 8000)
 *   pnpm --filter @waygate/examples payments-service        (multi-service, port 8000)
 *   pnpm --filter @waygate/examples orders-service          (multi-service, port 8002)
 *
 * Human sessions (dashboard, CLI) last an hour; the tokens services log in for last a year, as in
 * the seeds. Set WAYGATE_SECRET_KEY (16+ characters) so tokens survive a restart of the server.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { createEngineFromEnv, type WaygateBackend } from '@waygate/core'
import { createWaygateServer } from '@waygate/server'
import { CLI, CLI_NOTE } from './lib/cli.js'
import { exampleLogger, isEntryPoint, serve } from './lib/serve.js'

export interface ServerExampleOptions {
  /** Where state lives. Default: what `WAYGATE_BACKEND` (`WAYGATE_FILE_PATH`, `WAYGATE_REDIS_URL`) selects, memory if unset. */
  backend?: WaygateBackend
  /** Fastify's logger option. Default: no logging. */
  logger?: FastifyServerOptions['logger']
}

/** The backend `WAYGATE_BACKEND` and friends select, the way the demo picks its own. */
function backendFromEnv (): WaygateBackend {
  // createEngineFromEnv knows the variables and the .waygate file; the server only needs its backend
  return createEngineFromEnv().backend
}

/** Builds the server without listening, so tests can `inject()` into it. */
export async function build (options: ServerExampleOptions = {}): Promise<FastifyInstance> {
  return createWaygateServer({
    backend: options.backend ?? backendFromEnv(),
    auth: { username: 'admin', password: 'secret' },
    secretKey: process.env.WAYGATE_SECRET_KEY,
    tokenExpiry: 3600, // dashboard and CLI: one hour
    sdkTokenExpiry: 31_536_000, // services: one year
    logger: options.logger ?? false
  })
}

if (isEntryPoint(import.meta.url)) {
  if (process.env.PORT === undefined) process.env.PORT = '8001'
  const app = await build({ logger: exampleLogger() })
  const url = await serve(app)
  console.log(`
Waygate Server on ${url}   (backend: ${app.waygate.backend.kind})

Dashboard: ${url}/          (admin / secret)
CLI:       ${CLI} config set-url ${url}
           ${CLI} login admin
           ${CLI} services
           ${CLI} status
           ${CLI_NOTE}
Services:  pnpm --filter @waygate/examples service               (single service)
           pnpm --filter @waygate/examples payments-service      (multi-service)
           pnpm --filter @waygate/examples orders-service

Ctrl-C stops.
`)
}
