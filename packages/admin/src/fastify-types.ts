import type { RateLimiter, TrafficRecorder, WaygateEngine } from '@waygate/core'

// The admin reads what @waygate/fastify decorates and sets what @fastify/swagger reads, without
// depending on either: these declarations match theirs, so they merge when both are present.
declare module 'fastify' {
  interface FastifyInstance {
    waygate: WaygateEngine
    waygateRateLimits: RateLimiter
    waygateTraffic: TrafficRecorder
  }
  interface FastifySchema {
    hide?: boolean
    tags?: readonly string[]
    description?: string
    summary?: string
  }
}
