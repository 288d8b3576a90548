import { withoutService } from './parse.js'

/** Route state as the admin API answers it (camelCase, see DESIGN.md). */
export interface RouteState {
  key: string
  path: string
  method: string | null
  service: string | null
  status: string
  reason: string
  allowedEnvs: string[]
  window: { start: string, end: string | null, reason: string } | null
  sunset: string | null
  successor: string | null
  deprecatedAt?: string | null
  disabledUntil?: string | null
  forceActive: boolean
  updatedAt: string
  updatedBy: string
}

/** Global maintenance as the admin API answers it. */
export interface GlobalMaintenance {
  enabled: boolean
  reason: string
  exemptPaths: string[]
  includeForceActive: boolean
  since: string | null
  /** When it turns itself off; absent or null: when turned off. */
  end?: string | null
}

/** One audit entry as the admin API answers it. */
export interface AuditEntry {
  id: string
  timestamp: string
  key: string
  path?: string
  service: string | null
  action: string
  actor: string
  platform: string
  reason: string
  previousStatus: string | null
  newStatus: string | null
}

/** ANSI styling that is a no-op when colour is off. */
export interface Style {
  enabled: boolean
  bold(text: string): string
  dim(text: string): string
  red(text: string): string
  green(text: string): string
  yellow(text: string): string
  cyan(text: string): string
  magenta(text: string): string
}

const sgr = (on: number, off: number) => (text: string) => `\u001b[${on}m${text}\u001b[${off}m`

/** Colours only when `enabled`. */
export function createStyle (enabled: boolean): Style {
  const plain = (text: string): string => text
  return {
    enabled,
    bold: enabled ? sgr(1, 22) : plain,
    dim: enabled ? sgr(2, 22) : plain,
    red: enabled ? sgr(31, 39) : plain,
    green: enabled ? sgr(32, 39) : plain,
    yellow: enabled ? sgr(33, 39) : plain,
    cyan: enabled ? sgr(36, 39) : plain,
    magenta: enabled ? sgr(35, 39) : plain
  }
}

/** Colour is for people at a terminal: a TTY, NO_COLOR unset, TERM not dumb. */
export function colourWanted (isTTY: boolean, env: Record<string, string | undefined>): boolean {
  return isTTY && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb'
}

/** A status word as shown to people: `MAINTENANCE`, coloured by severity. */
export function statusWord (status: string | null, style: Style): string {
  if (status === null) return '-'
  const word = status.toUpperCase()
  switch (status) {
    case 'active': return style.green(word)
    case 'maintenance': return style.yellow(word)
    case 'disabled': return style.red(word)
    case 'env_gated': return style.cyan(word)
    case 'deprecated': return style.magenta(word)
    default: return word
  }
}

/** `2h`, `1h 30m`, `3d 4h`, `45s`: a compact duration, rounded to the minute above one minute. */
export function compactDuration (ms: number): string {
  const abs = Math.abs(ms)
  if (abs < 60_000) return `${Math.round(abs / 1000)}s`
  const minutes = Math.round(abs / 60_000)
  if (minutes < 60) return `${minutes}m`
  const hours = Math.floor(minutes / 60)
  if (hours < 24) return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`
  const days = Math.floor(hours / 24)
  return hours % 24 === 0 ? `${days}d` : `${days}d ${hours % 24}h`
}

/**
 * `in 2h`, `5m ago`, `just now`; a date (YYYY-MM-DD) when more than 45 days away, where a
 * relative time stops helping.
 */
export function relativeTime (when: string | number | null | undefined, now: number): string {
  if (when === null || when === undefined) return '-'
  const t = typeof when === 'number' ? when : Date.parse(when)
  if (Number.isNaN(t)) return String(when)
  const diff = t - now
  if (Math.abs(diff) < 5_000) return 'just now'
  if (Math.abs(diff) > 45 * 86_400_000) return new Date(t).toISOString().slice(0, 10)
  return diff > 0 ? `in ${compactDuration(diff)}` : `${compactDuration(diff)} ago`
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

/** Length as seen on a terminal (ANSI colour codes take no room). */
export function visibleLength (text: string): number {
  return [...text.replace(ANSI, '')].length
}

/** An aligned table: two spaces between columns, no trailing blanks. */
export function table (header: string[], rows: string[][], style: Style): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map(r => visibleLength(r[i] ?? ''))))
  const line = (cells: string[]): string => cells
    .map((cell, i) => i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell)))
    .join('  ')
    .replace(/\s+$/, '')
  return [line(header.map(h => style.bold(h))), ...rows.map(line)].join('\n')
}

/** `label  value` lines with the labels aligned. */
export function keyValues (pairs: Array<[string, string]>, style: Style): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${style.dim(k.padEnd(width))}  ${v}`).join('\n')
}

/** What else matters about a route beyond its status: windows, end times, envs, sunset. */
export function routeNotes (route: RouteState, now: number): string {
  const notes: string[] = []
  if (route.forceActive) notes.push('force-active')
  if (route.window !== null) {
    const start = Date.parse(route.window.start)
    const end = route.window.end === null ? 'until enabled' : relativeTime(route.window.end, now)
    if (start > now) notes.push(`window ${relativeTime(start, now)} → ${end}`)
    else notes.push(route.window.end === null ? 'until enabled' : `until ${end}`)
  }
  if (route.status === 'disabled' && route.disabledUntil !== null && route.disabledUntil !== undefined) {
    notes.push(`until ${relativeTime(route.disabledUntil, now)}`)
  }
  if (route.allowedEnvs.length > 0) notes.push(`envs ${route.allowedEnvs.join(',')}`)
  if (route.status === 'deprecated') {
    if (route.sunset !== null) notes.push(`sunset ${relativeTime(route.sunset, now)}`)
    if (route.successor !== null) notes.push(`successor ${route.successor}`)
  }
  return notes.join('; ')
}

/** The reason to show: the route's, else that of its maintenance window. */
export function routeReason (route: RouteState): string {
  return route.reason !== '' ? route.reason : route.window?.reason ?? ''
}

/** The routes table of `waygate status` and of every mutation. */
export function routesTable (routes: RouteState[], style: Style, now: number): string {
  const withService = routes.some(r => r.service !== null)
  const header = [...(withService ? ['SERVICE'] : []), 'ROUTE', 'STATUS', 'UPDATED', 'BY', 'REASON', 'NOTES']
  const rows = routes.map(r => [
    ...(withService ? [r.service ?? '-'] : []),
    // the service has its column: the key as the service knows it
    withService ? withoutService(r.key, r.service) : r.key,
    statusWord(r.status, style),
    relativeTime(r.updatedAt, now),
    r.updatedBy,
    routeReason(r) || '-',
    routeNotes(r, now)
  ])
  return table(header, rows, style)
}

/** One route in full, for `waygate status ROUTE`. */
export function routeDetails (route: RouteState, style: Style, now: number): string {
  const pairs: Array<[string, string]> = [
    ['route', style.bold(route.key)],
    ['status', statusWord(route.status, style)],
    ['reason', routeReason(route) || '-']
  ]
  if (route.service !== null) pairs.push(['service', route.service])
  if (route.window !== null) {
    pairs.push(['window', `${relativeTime(route.window.start, now)} → ${route.window.end === null ? 'until enabled' : relativeTime(route.window.end, now)} (${route.window.start} → ${route.window.end ?? 'open'})`])
  }
  if (route.disabledUntil !== null && route.disabledUntil !== undefined) pairs.push(['disabled until', `${relativeTime(route.disabledUntil, now)} (${route.disabledUntil})`])
  if (route.allowedEnvs.length > 0) pairs.push(['envs', route.allowedEnvs.join(', ')])
  if (route.sunset !== null) pairs.push(['sunset', `${relativeTime(route.sunset, now)} (${route.sunset})`])
  if (route.successor !== null) pairs.push(['successor', route.successor])
  if (route.forceActive) pairs.push(['force-active', 'yes: immune to changes, except global maintenance with --include-force-active'])
  pairs.push(['updated', `${relativeTime(route.updatedAt, now)} by ${route.updatedBy}`])
  return keyValues(pairs, style)
}

/** Global maintenance, for `waygate global`; with `label`, a service's (`maintenance of payments-service`). */
export function globalDetails (global: GlobalMaintenance, style: Style, now: number, label = 'global maintenance'): string {
  const pairs: Array<[string, string]> = [
    [label, global.enabled ? style.yellow('ON') : style.green('OFF')]
  ]
  if (global.enabled) {
    pairs.push(['reason', global.reason || '-'])
    pairs.push(['since', relativeTime(global.since, now)])
    if (typeof global.end === 'string') pairs.push(['ends', `${relativeTime(global.end, now)} (${global.end})`])
    pairs.push(['force-active routes', global.includeForceActive ? 'blocked too' : 'still answer'])
  }
  pairs.push(['exempt', global.exemptPaths.length > 0 ? global.exemptPaths.join(', ') : '-'])
  return keyValues(pairs, style)
}

/** The audit table of `waygate log`. */
export function auditTable (entries: AuditEntry[], style: Style, now: number): string {
  const withService = entries.some(e => e.service !== null)
  const header = ['WHEN', ...(withService ? ['SERVICE'] : []), 'ACTOR', 'VIA', 'ACTION', 'ROUTE', 'CHANGE', 'REASON']
  const rows = entries.map(e => [
    relativeTime(e.timestamp, now),
    ...(withService ? [e.service ?? '-'] : []),
    e.actor,
    e.platform,
    e.action,
    e.key === '*' ? (e.service === null ? '(global)' : '(service)') : withService ? withoutService(e.key, e.service) : e.key,
    e.previousStatus === e.newStatus ? statusWord(e.newStatus, style) : `${statusWord(e.previousStatus, style)} → ${statusWord(e.newStatus, style)}`,
    e.reason || '-'
  ])
  return table(header, rows, style)
}
