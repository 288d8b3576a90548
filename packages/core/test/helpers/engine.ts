import { createEngine, createMemoryBackend } from '@waygate/core'
import type { EngineEvent, EngineOptions, WaygateBackend, WaygateEngine } from '@waygate/core'
import { createClock, type FakeClock } from './clock.js'

/** The part of a tap test the helpers need. */
export interface Teardown {
  teardown: (fn: () => unknown) => void
}

export interface Setup {
  engine: WaygateEngine
  clock: FakeClock
  backend: WaygateBackend
  events: EngineEvent[]
}

/**
 * A started engine on a fake clock (default 2030-01-01T00:00:00Z) over a memory backend unless
 * one is given, closed when the test ends. Every event it publishes lands in `events`.
 */
export async function setup (t: Teardown, options: EngineOptions & { clock?: FakeClock } = {}): Promise<Setup> {
  const clock = options.clock ?? createClock()
  const backend = options.backend ?? createMemoryBackend()
  const engine = createEngine({ now: clock.now, resyncIntervalMs: 0, ...options, backend })
  t.teardown(() => engine.close())
  const events: EngineEvent[] = []
  engine.subscribe(event => { events.push(event) })
  await engine.start()
  return { engine, clock, backend, events }
}
