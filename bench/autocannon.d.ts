// Minimal typings for the part of autocannon 9's programmatic API the benchmark uses
// (autocannon ships no types and @types/autocannon is not installed).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  export interface Options {
    url: string
    connections?: number
    /** Seconds. */
    duration?: number
    /** ms between samples (default 1000); a run ends at the first sample after its duration. */
    sampleInt?: number
    /** Requests per second over all connections; unlimited when absent. */
    overallRate?: number
    pipelining?: number
    /** Seconds before a request counts as timed out. */
    timeout?: number
    method?: string
    headers?: Record<string, string>
    /** Requests each connection cycles through; `onResponse` sees each answer's status and body. */
    requests?: Array<{ method?: string, path: string, onResponse?: (status: number, body: string) => void }>
    /** Called with every connection's client: its `response` event gives (status, bytes, ms). */
    setupClient?: (client: EventEmitter) => void
  }

  export interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    p50: number
    p90: number
    p97_5: number
    p99: number
    total: number
  }

  export interface Result {
    url: string
    /** Seconds, measured. */
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    resets: number
    '2xx': number
    '5xx': number
    statusCodeStats: Record<string, { count: number }>
    /** Milliseconds. */
    latency: Histogram & { totalCount: number }
    requests: Histogram & { sent: number }
  }

  export interface Instance extends EventEmitter {
    stop(): void
  }

  function autocannon (options: Options, callback: (err: Error | null, result: Result) => void): Instance
  export default autocannon
}
