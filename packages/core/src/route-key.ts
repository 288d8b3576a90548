import { METHODS } from 'node:http'
import { WG_ERR_ROUTE_AMBIGUOUS, WG_ERR_ROUTE_KEY_INVALID, WG_ERR_ROUTE_NOT_FOUND } from './errors.js'

const KNOWN_METHODS = new Set(METHODS)

/** A route key split into its parts. `method` is null for a bare key (every method). */
export interface ParsedRouteKey {
  key: string
  method: string | null
  path: string
}

/** Builds the canonical key of a method and a Fastify route pattern. */
export function routeKey (method: string | null, path: string): string {
  return method === null ? path : `${method.toUpperCase()}:${path}`
}

/** True when `method` is an HTTP method Node knows (case-insensitive). */
export function isHttpMethod (method: string): boolean {
  return KNOWN_METHODS.has(method.toUpperCase())
}

/**
 * Parses `METHOD:/pattern` or `/pattern`. The method is case-insensitive and normalised to upper
 * case; the pattern keeps Fastify's syntax (`/users/:id`), so only the first colon can separate a
 * method.
 */
export function parseRouteKey (input: string): ParsedRouteKey {
  if (typeof input !== 'string' || input.length === 0) {
    throw new WG_ERR_ROUTE_KEY_INVALID(String(input), 'a key is METHOD:/pattern or /pattern')
  }
  if (input.length > 2048) {
    throw new WG_ERR_ROUTE_KEY_INVALID(input.slice(0, 64) + '…', 'longer than 2048 characters')
  }
  if (input[0] === '/') {
    return { key: input, method: null, path: input }
  }
  const colon = input.indexOf(':')
  if (colon <= 0 || input[colon + 1] !== '/') {
    throw new WG_ERR_ROUTE_KEY_INVALID(input, 'a key is METHOD:/pattern or /pattern')
  }
  const method = input.slice(0, colon).toUpperCase()
  if (!KNOWN_METHODS.has(method)) {
    throw new WG_ERR_ROUTE_KEY_INVALID(input, `unknown HTTP method "${input.slice(0, colon)}"`)
  }
  const path = input.slice(colon + 1)
  return { key: `${method}:${path}`, method, path }
}

/**
 * Resolves what an operator typed to the registered keys it names. A method key names itself; a
 * bare path names its own bare key if one is registered, else every method key on that pattern,
 * which is an error unless `all` is set and there are several.
 */
export function resolveRouteKeys (known: ReadonlySet<string> | ReadonlyMap<string, unknown>, input: string, all = false): string[] {
  const parsed = parseRouteKey(input)
  if (known.has(parsed.key)) return [parsed.key]
  if (parsed.method !== null) throw new WG_ERR_ROUTE_NOT_FOUND(parsed.key)
  const prefixLength = parsed.path.length
  const matches: string[] = []
  for (const key of known.keys()) {
    if (key[0] === '/') continue // a bare key, even one whose pattern contains ':/'
    const colon = key.indexOf(':/')
    if (colon > 0 && key.length - colon - 1 === prefixLength && key.endsWith(parsed.path)) matches.push(key)
  }
  if (matches.length === 0) throw new WG_ERR_ROUTE_NOT_FOUND(parsed.key)
  if (matches.length > 1 && !all) {
    const err = new WG_ERR_ROUTE_AMBIGUOUS(parsed.key, matches.sort().join(', '))
    Object.assign(err, { matches })
    throw err
  }
  return matches.sort()
}
