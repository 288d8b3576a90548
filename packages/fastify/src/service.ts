import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createEngine, createRemoteBackend, type RemoteBackendOptions } from '@waygate/core'
import { WG_ERR_PLUGIN_OPTIONS_INVALID } from './errors.js'
import { waygate, type WaygatePluginOptions } from './plugin.js'

/** Options of {@link waygateService}: where the Waygate Server is, who this service is, and the plugin's own options. */
export interface WaygateServiceOptions extends Omit<WaygatePluginOptions, 'engine' | 'closeEngine'>,
  Partial<Omit<RemoteBackendOptions, 'logger'>> {
  /** The Waygate Server's URL. Default `WAYGATE_SERVER_URL`. */
  serverUrl?: string
  /** This service's name on the server. Default `WAYGATE_SERVICE`. */
  service?: string
  /** A token for the server. Default `WAYGATE_TOKEN` (when no credentials are given here). */
  token?: string
  /** With `password`: log in to the server. Default `WAYGATE_USERNAME` / `WAYGATE_PASSWORD`. */
  username?: string
  password?: string
  /** The environment this process runs in, for env-gated routes. Default `WAYGATE_ENV`, else `dev`. */
  env?: string
  /** Where the environment variables are read from. Default `process.env`. */
  variables?: Record<string, string | undefined>
}

const nonEmpty = (value: string | undefined): string | undefined => value === undefined || value.trim() === '' ? undefined : value

/** Resolves the options against the environment: explicit options beat variables. */
function resolveOptions (options: WaygateServiceOptions): { remote: RemoteBackendOptions, env: string | undefined, plugin: WaygatePluginOptions } {
  const {
    variables = process.env, env, serverUrl, service, token, username, password,
    responses, ignorePrefixes, unmanagedRoutes, rateLimit, metrics, callers, ...remoteRest
  } = options
  const problems: string[] = []
  const url = serverUrl ?? nonEmpty(variables.WAYGATE_SERVER_URL)
  const name = service ?? nonEmpty(variables.WAYGATE_SERVICE)
  if (url === undefined) problems.push('serverUrl: required (the Waygate Server, e.g. http://127.0.0.1:8001), or set WAYGATE_SERVER_URL')
  if (name === undefined) problems.push('service: required (this service\'s name, e.g. payments-service), or set WAYGATE_SERVICE')
  // credentials given here replace those of the environment as a whole
  const explicit = token !== undefined || username !== undefined || password !== undefined
  const credentials = explicit
    ? { token, username, password }
    : { token: nonEmpty(variables.WAYGATE_TOKEN), username: nonEmpty(variables.WAYGATE_USERNAME), password: nonEmpty(variables.WAYGATE_PASSWORD) }
  if ((credentials.username === undefined) !== (credentials.password === undefined)) {
    problems.push('username and password: give both (or WAYGATE_USERNAME and WAYGATE_PASSWORD), or a token')
  }
  if (problems.length > 0) throw new WG_ERR_PLUGIN_OPTIONS_INVALID(`waygateService: ${problems.join('; ')}`)
  const remote: RemoteBackendOptions = { ...remoteRest, serverUrl: url!, service: name! }
  for (const [key, value] of Object.entries(credentials)) {
    if (value !== undefined) remote[key as 'token' | 'username' | 'password'] = value
  }
  const plugin: WaygatePluginOptions = {}
  if (responses !== undefined) plugin.responses = responses
  if (ignorePrefixes !== undefined) plugin.ignorePrefixes = ignorePrefixes
  if (unmanagedRoutes !== undefined) plugin.unmanagedRoutes = unmanagedRoutes
  if (rateLimit !== undefined) plugin.rateLimit = rateLimit
  if (metrics !== undefined) plugin.metrics = metrics
  if (callers !== undefined) plugin.callers = callers
  return { remote, env: env ?? nonEmpty(variables.WAYGATE_ENV), plugin }
}

async function waygateServicePlugin (fastify: FastifyInstance, options: WaygateServiceOptions): Promise<void> {
  const { remote, env, plugin } = resolveOptions(options)
  const logger = fastify.log.child({ name: 'waygate' })
  let backend
  try {
    backend = createRemoteBackend({ ...remote, logger })
  } catch (err) {
    throw new WG_ERR_PLUGIN_OPTIONS_INVALID(`waygateService: ${(err as Error).message}`)
  }
  const engine = createEngine(env === undefined ? { backend, logger } : { backend, env, logger })
  await fastify.register(waygate, { ...plugin, engine, closeEngine: true })
}

/**
 * Attaches a Fastify service to a Waygate Server: registers the `waygate` plugin on an engine
 * whose backend is the server (see `createRemoteBackend`). Route config, guards, rate limits,
 * custom responses and `app.waygate.*` work as with an embedded engine; state comes from the
 * server's stream and mutations go to the server. Registration waits for the first snapshot up to
 * `readyTimeoutMs` (2 s), then serves the declared states (or the cache file) until it comes.
 *
 * @example
 * await app.register(waygateService, { serverUrl: 'http://127.0.0.1:8001', service: 'payments-service', token })
 */
export const waygateService = fp(waygateServicePlugin, { fastify: '5.x', name: '@waygate/fastify-service' })
