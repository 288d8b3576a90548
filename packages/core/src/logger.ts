/** The subset of a pino logger waygate uses: objects first, message second. */
export interface WaygateLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const noop = (): void => {}

/** A logger that drops everything: the default outside Fastify. */
export const silentLogger: WaygateLogger = { debug: noop, info: noop, warn: noop, error: noop }

/**
 * Wraps a logger so that one message key is logged at most once per interval: a backend that is
 * down must not flood the logs at request rate.
 */
export function createThrottledWarn (logger: WaygateLogger, now: () => number, intervalMs = 30_000) {
  const last = new Map<string, number>()
  return function warn (key: string, obj: object, msg: string): void {
    const t = now()
    const previous = last.get(key)
    if (previous !== undefined && t - previous < intervalMs) return
    last.set(key, t)
    logger.warn(obj, msg)
  }
}
