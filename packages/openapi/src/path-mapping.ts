/**
 * From Fastify route patterns to the paths `@fastify/swagger` writes in its document.
 *
 * The mapping runs forward (pattern → document path), never backward: a document path such as
 * `/files/{name}.png` cannot tell whether its route was `/files/:name.png` or
 * `/files/:name(^\d+).png`, while every pattern renders to exactly one document path.
 */

const PARAM_CHAR = /[A-Za-z0-9_]/

/** Index just past the group opening at `start` (a `(`), or -1 when it never closes. */
function skipGroup (pattern: string, start: number): number {
  let depth = 0
  for (let i = start; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '(') depth++
    else if (c === ')' && --depth === 0) return i + 1
  }
  return -1
}

/**
 * Renders a Fastify route pattern the way `@fastify/swagger` renders it as a document path:
 * `:id` → `{id}`, a regex after a parameter is dropped (`:name(^\d+)` → `{name}`), an unnamed
 * regex becomes `{regexp1}`, `{regexp2}`…, `*` → `{*}` and `::` → a literal `:`.
 *
 * @example
 * toOpenApiPath('/users/:id')            // '/users/{id}'
 * toOpenApiPath('/files/:name(^\\d+).png') // '/files/{name}.png'
 * toOpenApiPath('/static/*')             // '/static/{*}'
 */
export function toOpenApiPath (pattern: string): string {
  let out = ''
  let unnamed = 0
  let i = 0
  while (i < pattern.length) {
    const c = pattern[i]!
    if (c === ':' && pattern[i + 1] === ':') {
      out += ':'
      i += 2
    } else if (c === ':') {
      let j = i + 1
      while (j < pattern.length && PARAM_CHAR.test(pattern[j]!)) j++
      let name = pattern.slice(i + 1, j)
      if (pattern[j] === '(') {
        const end = skipGroup(pattern, j)
        // an unterminated regex renders to nothing, as @fastify/swagger does
        if (end === -1) return out
        if (name === '') name = `regexp${++unnamed}`
        j = end
      }
      out += `{${name}}`
      i = j
    } else if (c === '(') {
      const end = skipGroup(pattern, i)
      if (end === -1) return out
      out += `{regexp${++unnamed}}`
      i = end
    } else if (c === '*') {
      out += '{*}'
      i++
    } else {
      out += c
      i++
    }
  }
  return out
}

/** What of a document decides how `@fastify/swagger` shortened route URLs. */
export interface DocumentBase {
  /** Swagger 2 documents prefix every path with a leading `/` after stripping. */
  swagger2: boolean
  /** Path prefixes `@fastify/swagger` strips from route URLs (its `stripBasePath`, on by default). */
  basePaths: string[]
}

function serverPath (server: unknown): string | null {
  if (server === null || typeof server !== 'object') return null
  const { url, variables } = server as { url?: unknown, variables?: Record<string, { default?: unknown } | undefined> }
  if (typeof url !== 'string') return null
  const resolved = url.replace(/\{([^{}]+)\}/g, (whole, name: string) => {
    const value = variables?.[name]?.default
    return typeof value === 'string' || typeof value === 'number' ? String(value) : whole
  })
  if (resolved[0] === '/') return resolved
  try {
    return new URL(resolved).pathname
  } catch {
    return null
  }
}

/** Reads the base paths of an OpenAPI 3 (`servers`) or Swagger 2 (`basePath`) document. */
export function documentBase (doc: Record<string, unknown>): DocumentBase {
  const swagger2 = typeof doc.swagger === 'string'
  const basePaths: string[] = []
  if (swagger2) {
    if (typeof doc.basePath === 'string' && doc.basePath !== '' && doc.basePath !== '/') basePaths.push(doc.basePath)
  } else if (Array.isArray(doc.servers)) {
    for (const server of doc.servers) {
      const path = serverPath(server)
      if (path !== null && path !== '/' && path !== '' && !basePaths.includes(path)) basePaths.push(path)
    }
  }
  return { swagger2, basePaths }
}

/**
 * Finds the Fastify patterns behind document paths. Built once per document and route list.
 * A pattern under a base path is indexed both shortened (what `stripBasePath: true`, the
 * default, writes) and whole (`stripBasePath: false`); the shortened form is preferred, since
 * clients call the server URL plus the document path.
 */
export class PatternIndex {
  readonly #stripped = new Map<string, string[]>()
  readonly #whole = new Map<string, string[]>()

  constructor (patterns: Iterable<string>, base: DocumentBase) {
    for (const pattern of new Set(patterns)) {
      add(this.#whole, toOpenApiPath(pattern), pattern)
      for (const basePath of base.basePaths) {
        if (!pattern.startsWith(basePath)) continue
        let rest = pattern.slice(basePath.length)
        if (base.swagger2 && rest[0] !== '/') rest = '/' + rest
        add(this.#stripped, toOpenApiPath(rest), pattern)
      }
    }
  }

  /** The Fastify patterns a document path may stand for, most likely first. */
  patternsOf (docPath: string): string[] {
    const stripped = this.#stripped.get(docPath)
    const whole = this.#whole.get(docPath)
    if (stripped === undefined) return whole ?? []
    if (whole === undefined) return stripped
    return [...stripped, ...whole.filter(p => !stripped.includes(p))]
  }
}

function add (map: Map<string, string[]>, docPath: string, pattern: string): void {
  const list = map.get(docPath)
  if (list === undefined) map.set(docPath, [pattern])
  else if (!list.includes(pattern)) list.push(pattern)
}

/** True when `path` is `prefix` itself or lies below it (`/waygate` covers `/waygate/api`, not `/waygateway`). */
export function isUnderPrefix (path: string, prefix: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  if (p === '/' || p === '') return true
  return path === p || path.startsWith(p + '/')
}
