import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

/** The package's `public/` folder, beside `src/` and `dist/`. */
export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url))

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml'
}

const FILES = ['dashboard.css', 'dashboard.js', 'favicon.svg']

interface Asset {
  body: Buffer
  type: string
  hash: string
}

/** URLs of the assets, each with its content hash so browsers may cache it for good. */
export type AssetUrls = Record<'css' | 'js' | 'icon', string>

/**
 * Serves the dashboard's few static files from memory: read once at startup, with an ETag, and
 * cached for a year when asked for by their hashed URL (any change gives a new URL).
 */
export async function registerAssets (fastify: FastifyInstance, prefix: string): Promise<AssetUrls> {
  const assets = new Map<string, Asset>()
  for (const name of FILES) {
    const body = await readFile(PUBLIC_DIR + name)
    assets.set(name, { body, type: TYPES[name.slice(name.lastIndexOf('.'))]!, hash: createHash('sha256').update(body).digest('base64url').slice(0, 16) })
  }

  fastify.get<{ Params: { name: string }, Querystring: { v?: string } }>('/assets/:name', {
    config: { waygate: false },
    schema: { hide: true }
  }, async (request, reply) => {
    const asset = assets.get(request.params.name)
    if (asset === undefined) {
      return reply.code(404).type('text/plain; charset=utf-8').send('Not found')
    }
    const etag = `"${asset.hash}"`
    reply.header('etag', etag)
    reply.header('cache-control', request.query.v === asset.hash ? 'public, max-age=31536000, immutable' : 'no-cache')
    if (request.headers['if-none-match'] === etag) return reply.code(304).send()
    return reply.type(asset.type).send(asset.body)
  })

  const url = (name: string): string => `${prefix}/assets/${name}?v=${assets.get(name)!.hash}`
  return { css: url('dashboard.css'), js: url('dashboard.js'), icon: url('favicon.svg') }
}
