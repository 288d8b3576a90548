import Fastify, { type FastifyInstance } from 'fastify'
import { createEngine, createMemoryBackend, type EngineOptions, type WaygateEngine } from '@waygate/core'
import { waygate, type WaygatePluginOptions } from '@waygate/fastify'

/** A clock tests move by hand. */
export function fakeClock (start = Date.parse('2026-06-01T12:00:00.000Z')) {
  let t = start
  return {
    now: () => t,
    set: (ms: number) => { t = ms },
    advance: (ms: number) => { t += ms }
  }
}

export interface TestApp {
  app: FastifyInstance
  engine: WaygateEngine
}

/**
 * Builds a Fastify app with waygate registered before `routes` runs, and closes it at teardown.
 */
export async function buildApp (
  t: { teardown: (fn: () => unknown) => void },
  routes: (app: FastifyInstance) => void,
  options: { engine?: EngineOptions, plugin?: Omit<WaygatePluginOptions, 'engine'> } = {}
): Promise<TestApp> {
  const engine = createEngine({ backend: createMemoryBackend(), ...options.engine })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(waygate, { engine, closeEngine: true, ...options.plugin })
  routes(app)
  await app.ready()
  return { app, engine }
}
