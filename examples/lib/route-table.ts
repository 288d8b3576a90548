import type { RouteState, WaygateEngine } from '@waygate/core'

/** What a request to a route in `state` gets right now, in a few words. */
export function describeAnswer (engine: WaygateEngine, state: RouteState): string {
  const global = engine.getGlobal()
  const exempt = global.exemptPaths.includes(state.key) || global.exemptPaths.includes(state.path)
  if (global.enabled && !exempt && (!state.forceActive || global.includeForceActive)) {
    return '503 MAINTENANCE_MODE (global maintenance)'
  }
  if (state.forceActive) return '200 always (force-active)'
  let answer: string
  switch (state.status) {
    case 'maintenance':
      answer = '503 MAINTENANCE_MODE'
      break
    case 'disabled':
      answer = '503 ROUTE_DISABLED'
      break
    case 'env_gated':
      answer = state.allowedEnvs.includes(engine.env)
        ? `200 (only in ${state.allowedEnvs.join(', ')})`
        : `404 (only in ${state.allowedEnvs.join(', ')}; this is ${engine.env})`
      break
    case 'deprecated':
      answer = '200 + Deprecation, Sunset, Link headers'
      break
    default:
      answer = '200'
  }
  const window = state.window
  if (window !== null && state.status !== 'maintenance') {
    answer += `; 503 from ${window.start} to ${window.end ?? 'an operator enables it'}`
  }
  return answer
}

/** A plain-text table of every route the engine knows and what it answers. */
export function formatRouteTable (engine: WaygateEngine): string {
  const rows = engine.listRoutes().map(state => [`${state.method ?? '*'} ${state.path}`, state.status, describeAnswer(engine, state)])
  const header = ['route', 'status', 'answers']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: string[]) => '  ' + cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join('   ')
  return [line(header), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n')
}
