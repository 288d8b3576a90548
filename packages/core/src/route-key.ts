import { METHODS } from 'node:http'
import { WG_ERR_ROUTE_AMBIGUOUS, WG_ERR_ROUTE_KEY_INVALID, WG_ERR_ROUTE_NOT_FOUND } from './errors.js'

const KNOWN_METHODS = new Set(METHODS)
const KEY_SHAPE = 'a key is METHOD:/pattern or /pattern, optionally after service:'

/**
 * What a service name looks like: lower case letters, digits, `.`, `_`, `-`, 1 to 100 characters,
 * starting with a letter or digit. A name that is an HTTP method (`get`) is refused on top of this
 * (see {@link isServiceName}), so `get:/x` always reads as a method key. Use `SERVICE_NAME.source`
 * as a schema pattern.
 */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/

/**
 * A route key split into its parts. `method` is null for a bare key (every method); `service` is
 * null unless the key names a service (`payments:GET:/api/payments`).
 */
export interface ParsedRouteKey {
  /** The canonical key: `[service:]METHOD:/pattern` or `[service:]/pattern`. */
  key: string
  method: string | null
  path: string
  service: string | null
}

/**
 * Builds the canonical key of a method and a Fastify route pattern, qualified by `service` when one
 * is given. The service name is taken as is: check it with {@link isServiceName} where it comes
 * from outside.
 */
export function routeKey (method: string | null, path: string, service?: string | null): string {
  const key = method === null ? path : `${method.toUpperCase()}:${path}`
  return service === undefined || service === null ? key : `${service}:${key}`
}

/** True when `method` is an HTTP method Node knows (case-insensitive). */
export function isHttpMethod (method: string): boolean {
  return KNOWN_METHODS.has(method.toUpperCase())
}

/** True when `name` can name a service: it matches {@link SERVICE_NAME} and is no HTTP method. */
export function isServiceName (name: unknown): name is string {
  return typeof name === 'string' && SERVICE_NAME.test(name) && !KNOWN_METHODS.has(name.toUpperCase())
}

/** Why `name` cannot be a service name, for an error message. */
function serviceProblem (name: string): string {
  if (SERVICE_NAME.test(name)) return `service name "${name}" is an HTTP method`
  return `service name "${name.slice(0, 100)}" must match ${SERVICE_NAME.source}`
}

/** Parses the `METHOD:/pattern` or `/pattern` part of a key (`rest`); `input` is the whole key, for errors. */
function parseUnqualified (input: string, rest: string, service: string | null): ParsedRouteKey {
  if (rest[0] === '/') return { key: service === null ? rest : `${service}:${rest}`, method: null, path: rest, service }
  const colon = rest.indexOf(':')
  if (colon <= 0 || rest[colon + 1] !== '/') throw new WG_ERR_ROUTE_KEY_INVALID(input, KEY_SHAPE)
  const method = rest.slice(0, colon).toUpperCase()
  if (!KNOWN_METHODS.has(method)) {
    throw new WG_ERR_ROUTE_KEY_INVALID(input, `unknown HTTP method "${rest.slice(0, colon)}"`)
  }
  const path = rest.slice(colon + 1)
  const key = `${method}:${path}`
  return { key: service === null ? key : `${service}:${key}`, method, path, service }
}

/**
 * Parses `METHOD:/pattern` or `/pattern`, optionally qualified by a service:
 * `payments:GET:/api/payments`, `payments:/api/payments`. The method is case-insensitive and
 * normalised to upper case; the pattern keeps Fastify's syntax (`/users/:id`, `/a:b`): whatever
 * follows the first `/` is the pattern, so a colon in it never separates anything. Before the
 * pattern, a word that is an HTTP method is the method (`get:/x` is `GET:/x`), any other word is a
 * service name, which must pass {@link isServiceName}.
 */
export function parseRouteKey (input: string): ParsedRouteKey {
  if (typeof input !== 'string' || input.length === 0) {
    throw new WG_ERR_ROUTE_KEY_INVALID(String(input), KEY_SHAPE)
  }
  if (input.length > 2048) {
    throw new WG_ERR_ROUTE_KEY_INVALID(input.slice(0, 64) + '…', 'longer than 2048 characters')
  }
  if (input[0] === '/') {
    return { key: input, method: null, path: input, service: null }
  }
  const colon = input.indexOf(':')
  const slash = input.indexOf('/')
  if (colon <= 0 || (slash !== -1 && slash < colon)) throw new WG_ERR_ROUTE_KEY_INVALID(input, KEY_SHAPE)
  const head = input.slice(0, colon)
  if (KNOWN_METHODS.has(head.toUpperCase())) {
    // a method word is never a service name, so `GET:/x` and `get::/x` cannot be read as services
    return parseUnqualified(input, input, null)
  }
  if (!SERVICE_NAME.test(head)) {
    // `FETCH:/x` reads as a method key with a method nobody knows: say so, as before services
    throw new WG_ERR_ROUTE_KEY_INVALID(input, input[colon + 1] === '/' ? `unknown HTTP method "${head}"` : serviceProblem(head))
  }
  const rest = input.slice(colon + 1)
  const next = rest.indexOf(':')
  if (rest[0] !== '/' && next > 0) {
    const word = rest.slice(0, next)
    if (!KNOWN_METHODS.has(word.toUpperCase()) && SERVICE_NAME.test(word)) {
      throw new WG_ERR_ROUTE_KEY_INVALID(input, 'a key names at most one service')
    }
  }
  return parseUnqualified(input, rest, head)
}

/**
 * Qualifies a route key with a service: `qualifyKey('payments', 'get:/x')` is
 * `payments:GET:/x`. A key already qualified by the same service is returned canonical; by
 * another service, or with an invalid service name, it throws `WG_ERR_ROUTE_KEY_INVALID`.
 */
export function qualifyKey (service: string, key: string): string {
  if (!isServiceName(service)) throw new WG_ERR_ROUTE_KEY_INVALID(`${String(service)}:${key}`, serviceProblem(String(service)))
  const parsed = parseRouteKey(key)
  if (parsed.service !== null && parsed.service !== service) {
    throw new WG_ERR_ROUTE_KEY_INVALID(key, `the key names service "${parsed.service}", not "${service}"`)
  }
  return parsed.service === null ? `${service}:${parsed.key}` : parsed.key
}

/**
 * Splits a route key into its service (null when it names none) and the canonical unqualified key:
 * `unqualifyKey('payments:get:/x')` is `{ service: 'payments', key: 'GET:/x' }`. Throws
 * `WG_ERR_ROUTE_KEY_INVALID` for what is not a key.
 */
export function unqualifyKey (key: string): { service: string | null, key: string } {
  const parsed = parseRouteKey(key)
  return { service: parsed.service, key: parsed.service === null ? parsed.key : parsed.key.slice(parsed.service.length + 1) }
}

/** Parses a known key, or null when it is none (a stored key is matched exactly, never guessed at). */
function tryParse (key: string): ParsedRouteKey | null {
  try {
    return parseRouteKey(key)
  } catch {
    return null
  }
}

/**
 * Resolves what an operator typed to the registered keys it names. Known keys may be qualified by a
 * service. An exact hit of a known key names itself. Otherwise input naming a service looks inside
 * that service only, and input naming none looks in every service and among unqualified keys: a
 * method key matches that method on that pattern; a bare path matches, in each service (and among
 * unqualified keys), the bare key when one is registered there, else every method key on that
 * pattern. Several matches are `WG_ERR_ROUTE_AMBIGUOUS` (409, with `matches`) unless `all` is set;
 * none is `WG_ERR_ROUTE_NOT_FOUND` (404).
 */
export function resolveRouteKeys (known: ReadonlySet<string> | ReadonlyMap<string, unknown>, input: string, all = false): string[] {
  const parsed = parseRouteKey(input)
  if (known.has(parsed.key)) return [parsed.key]
  const matches: string[] = []
  // services (null: unqualified keys) whose bare key on the pattern is registered: it stands for them
  const bareIn = new Set<string | null>()
  for (const key of known.keys()) {
    // cheap filter before parsing: the key must end with the pattern
    if (!key.endsWith(parsed.path)) continue
    const candidate = tryParse(key)
    if (candidate === null || candidate.path !== parsed.path) continue
    if (parsed.service !== null && candidate.service !== parsed.service) continue
    if (parsed.method !== null) {
      if (candidate.method === parsed.method) matches.push(key)
    } else if (candidate.method === null) {
      bareIn.add(candidate.service)
      matches.push(key)
    } else {
      matches.push(key)
    }
  }
  const found = bareIn.size === 0
    ? matches
    : matches.filter(key => {
      const { service, method } = tryParse(key)!
      return method === null || !bareIn.has(service)
    })
  if (found.length === 0) throw new WG_ERR_ROUTE_NOT_FOUND(parsed.key)
  found.sort()
  if (found.length > 1 && !all) {
    const err = new WG_ERR_ROUTE_AMBIGUOUS(parsed.key, found.join(', '))
    Object.assign(err, { matches: found })
    throw err
  }
  return found
}
