import { MAX_REASON_LENGTH, type GlobalMaintenance, type MutationOptions, type RouteState, type WaygateEngine } from '@waygate/core'
import { WG_ERR_REQUEST_INVALID } from '../errors.js'
import { resolveWhen } from '../params.js'

/** One input of a confirmation form. */
export interface FieldSpec {
  name: string
  label: string
  kind: 'text' | 'textarea' | 'checkbox'
  required?: boolean
  hint?: string
  placeholder?: string
  maxLength: number
}

/** Form values as the dashboard reads them: every field a trimmed string. */
export type FormValues = Record<string, string>

type Who = Omit<MutationOptions, 'all'>

/** An operator action the dashboard offers, with its confirmation form. */
export interface ActionSpec<Target> {
  id: string
  /** Button text in a table row or card. */
  label: string
  /** Heading of the confirmation dialog. */
  title: string
  /** What confirming does, in one sentence. */
  description: string
  /** Text of the confirming button. */
  submit: string
  tone: 'ok' | 'warn' | 'danger' | 'info' | 'neutral'
  fields: FieldSpec[]
  /** Whether a row or card shows this action for the target's current state. */
  offer(target: Target): boolean
  /** Values the form starts with. */
  prefill(target: Target): FormValues
}

export interface RouteActionSpec extends ActionSpec<RouteState> {
  /** Calls the engine, the same operation the REST API calls. */
  run(engine: WaygateEngine, key: string, values: FormValues, who: Who): Promise<unknown>
}

export interface GlobalActionSpec extends ActionSpec<GlobalMaintenance> {
  run(engine: WaygateEngine, values: FormValues, who: Who): Promise<unknown>
}

const WHEN_HINT = 'A duration from now (30m, 2h, 1d) or an ISO 8601 time such as 2030-06-01T02:00Z.'
const reasonField: FieldSpec = { name: 'reason', label: 'Reason', kind: 'text', maxLength: MAX_REASON_LENGTH, hint: 'Shown to callers and kept in the audit log.' }

function when (values: FormValues, name: string, engine: WaygateEngine): number | undefined {
  const value = values[name] ?? ''
  return value === '' ? undefined : resolveWhen(value, name, engine.now())
}

function required (values: FormValues, name: string, label: string): string {
  const value = values[name] ?? ''
  if (value === '') throw new WG_ERR_REQUEST_INVALID(`${label.toLowerCase()} is required`)
  return value
}

function list (value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter(Boolean)
}

const none = (): FormValues => ({})
const optional = (values: FormValues, name: string): string | undefined => values[name] === '' ? undefined : values[name]

export const ROUTE_ACTIONS: readonly RouteActionSpec[] = [
  {
    id: 'enable',
    label: 'Enable',
    title: 'Enable route',
    description: 'The route answers normally again: any maintenance, disablement, environment gate, deprecation or window is cleared.',
    submit: 'Enable',
    tone: 'ok',
    fields: [],
    offer: state => state.status !== 'active' || state.window !== null || state.reason !== '',
    prefill: none,
    run: (engine, key, _values, who) => engine.enable(key, who)
  },
  {
    id: 'maintenance',
    label: 'Maintenance',
    title: 'Put route in maintenance',
    description: 'Callers get 503 MAINTENANCE_MODE. With an end, the route answers normally again from then on; with a later start, it stays as it is until then.',
    submit: 'Start maintenance',
    tone: 'warn',
    fields: [
      reasonField,
      { name: 'start', label: 'Start (optional)', kind: 'text', maxLength: 64, placeholder: 'now', hint: WHEN_HINT },
      { name: 'end', label: 'End (optional)', kind: 'text', maxLength: 64, placeholder: 'until someone enables it', hint: WHEN_HINT }
    ],
    offer: () => true,
    prefill: none,
    run: (engine, key, values, who) => engine.setMaintenance(key, {
      ...who, reason: values.reason ?? '', start: when(values, 'start', engine), end: when(values, 'end', engine)
    })
  },
  {
    id: 'disable',
    label: 'Disable',
    title: 'Disable route',
    description: 'Callers get 503 ROUTE_DISABLED until someone enables the route, or until the time you give.',
    submit: 'Disable',
    tone: 'danger',
    fields: [
      reasonField,
      { name: 'until', label: 'Until (optional)', kind: 'text', maxLength: 64, placeholder: 'until someone enables it', hint: WHEN_HINT }
    ],
    offer: () => true,
    prefill: none,
    run: (engine, key, values, who) => engine.disable(key, { ...who, reason: values.reason ?? '', until: when(values, 'until', engine) })
  },
  {
    id: 'env',
    label: 'Env gate',
    title: 'Restrict route to environments',
    description: 'The route answers only in the listed environments; anywhere else it looks absent (404).',
    submit: 'Set environments',
    tone: 'info',
    fields: [
      { name: 'envs', label: 'Environments', kind: 'text', required: true, maxLength: 1000, placeholder: 'dev, staging', hint: 'Separated by commas or spaces.' },
      reasonField
    ],
    offer: () => true,
    prefill: state => ({ envs: state.allowedEnvs.join(', ') }),
    run: (engine, key, values, who) => {
      const envs = list(required(values, 'envs', 'Environments'))
      return engine.setEnvOnly(key, envs, { ...who, reason: values.reason ?? '' })
    }
  },
  {
    id: 'schedule',
    label: 'Schedule',
    title: 'Schedule a maintenance window',
    description: 'The route is in maintenance from start to end, and answers as it does now outside the window.',
    submit: 'Schedule',
    tone: 'neutral',
    fields: [
      { name: 'start', label: 'Start', kind: 'text', required: true, maxLength: 64, placeholder: '2h', hint: WHEN_HINT },
      { name: 'end', label: 'End', kind: 'text', required: true, maxLength: 64, placeholder: '3h', hint: WHEN_HINT },
      reasonField
    ],
    offer: () => true,
    prefill: none,
    run: (engine, key, values, who) => {
      const now = engine.now()
      return engine.schedule(key, {
        ...who,
        reason: values.reason ?? '',
        start: resolveWhen(required(values, 'start', 'Start'), 'start', now),
        end: resolveWhen(required(values, 'end', 'End'), 'end', now)
      })
    }
  },
  {
    id: 'cancel',
    label: 'Cancel window',
    title: 'Cancel the maintenance window',
    description: 'The window is removed; the route keeps its current status.',
    submit: 'Cancel window',
    tone: 'neutral',
    fields: [],
    offer: state => state.window !== null,
    prefill: none,
    run: (engine, key, _values, who) => engine.cancelSchedule(key, who)
  },
  {
    id: 'deprecate',
    label: 'Deprecate',
    title: 'Deprecate route',
    description: 'The route keeps answering, with Deprecation, Sunset and Link headers telling callers to move on.',
    submit: 'Deprecate',
    tone: 'neutral',
    fields: [
      { name: 'sunset', label: 'Sunset (optional)', kind: 'text', maxLength: 64, placeholder: '2030-01-01', hint: 'When the route goes away: ' + WHEN_HINT },
      { name: 'successor', label: 'Successor (optional)', kind: 'text', maxLength: 2048, placeholder: '/v2/users', hint: 'URL or path of the replacement.' },
      { name: 'afterSunset', label: 'Answer 410 Gone after the sunset', kind: 'checkbox', maxLength: 5 },
      reasonField
    ],
    offer: state => state.status !== 'deprecated',
    prefill: none,
    run: (engine, key, values, who) => engine.deprecate(key, {
      ...who,
      reason: values.reason ?? '',
      successor: optional(values, 'successor'),
      sunset: when(values, 'sunset', engine),
      ...(values.afterSunset === 'on' ? { afterSunset: 'gone' as const } : {})
    })
  },
  {
    id: 'brownout',
    label: 'Brownout',
    title: 'Plan a brownout',
    description: 'From start to end the deprecated route answers 410 Gone (ROUTE_BROWNOUT), so that its remaining callers notice before the sunset.',
    submit: 'Plan brownout',
    tone: 'warn',
    fields: [
      { name: 'start', label: 'Start', kind: 'text', required: true, maxLength: 64, placeholder: '1h', hint: WHEN_HINT },
      { name: 'end', label: 'End', kind: 'text', required: true, maxLength: 64, placeholder: '75m', hint: WHEN_HINT },
      { ...reasonField, hint: 'Shown to callers in the 410 body and kept in the audit log.' }
    ],
    offer: state => state.status === 'deprecated',
    prefill: none,
    run: (engine, key, values, who) => {
      const now = engine.now()
      return engine.scheduleBrownout(key, {
        ...who,
        reason: values.reason ?? '',
        start: resolveWhen(required(values, 'start', 'Start'), 'start', now),
        end: resolveWhen(required(values, 'end', 'End'), 'end', now)
      })
    }
  },
  {
    id: 'cancel-brownouts',
    label: 'Cancel brownouts',
    title: 'Cancel the planned brownouts',
    description: 'Every planned brownout of the route is removed; it keeps serving, deprecated.',
    submit: 'Cancel brownouts',
    tone: 'neutral',
    fields: [],
    offer: state => state.status === 'deprecated' && (state.brownouts ?? []).length > 0,
    prefill: none,
    run: (engine, key, _values, who) => engine.cancelBrownouts(key, who)
  }
]

const globalFields: FieldSpec[] = [
  reasonField,
  { name: 'exemptPaths', label: 'Exempt paths', kind: 'textarea', maxLength: 20_000, placeholder: '/health\nGET:/status', hint: 'One route key per line (/pattern or METHOD:/pattern); they keep answering.' },
  { name: 'includeForceActive', label: 'Include force-active routes', kind: 'checkbox', maxLength: 5 }
]

function globalPrefill (global: GlobalMaintenance): FormValues {
  return { reason: global.reason, exemptPaths: global.exemptPaths.join('\n'), includeForceActive: global.includeForceActive ? 'on' : '' }
}

function turnOn (engine: WaygateEngine, values: FormValues, who: Who): Promise<GlobalMaintenance> {
  return engine.enableGlobalMaintenance({
    ...who,
    reason: values.reason ?? '',
    exemptPaths: list(values.exemptPaths),
    includeForceActive: values.includeForceActive !== undefined && values.includeForceActive !== ''
  })
}

export const GLOBAL_ACTIONS: readonly GlobalActionSpec[] = [
  {
    id: 'global-on',
    label: 'Turn on…',
    title: 'Turn global maintenance on',
    description: 'Every route answers 503 MAINTENANCE_MODE, except the exempt paths and, unless included, force-active routes. The admin stays reachable.',
    submit: 'Turn on global maintenance',
    tone: 'danger',
    fields: globalFields,
    offer: global => !global.enabled,
    prefill: globalPrefill,
    run: turnOn
  },
  {
    id: 'global-edit',
    label: 'Edit…',
    title: 'Edit global maintenance',
    description: 'Global maintenance stays on, with this reason, these exempt paths and this force-active choice.',
    submit: 'Save',
    tone: 'neutral',
    fields: globalFields,
    offer: global => global.enabled,
    prefill: globalPrefill,
    run: turnOn
  },
  {
    id: 'global-off',
    label: 'Turn off…',
    title: 'Turn global maintenance off',
    description: 'Routes answer according to their own states again.',
    submit: 'Turn off',
    tone: 'ok',
    fields: [],
    offer: global => global.enabled,
    prefill: none,
    run: (engine, _values, who) => engine.disableGlobalMaintenance(who)
  }
]

export function routeAction (id: string): RouteActionSpec | undefined {
  return ROUTE_ACTIONS.find(a => a.id === id)
}

export function globalAction (id: string): GlobalActionSpec | undefined {
  return GLOBAL_ACTIONS.find(a => a.id === id)
}

/**
 * Reads a form body into trimmed strings, keeping only the fields an action knows. A repeated
 * field keeps its first value; a value longer than the field allows is refused.
 */
export function readForm (body: unknown, fields: readonly FieldSpec[]): FormValues {
  const source = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const values: FormValues = {}
  for (const field of fields) {
    let value = source[field.name]
    if (Array.isArray(value)) value = value[0]
    if (value === undefined || value === null) continue
    if (typeof value !== 'string') throw new WG_ERR_REQUEST_INVALID(`${field.name}: expected text`)
    const text = value.trim()
    if (text.length > field.maxLength) throw new WG_ERR_REQUEST_INVALID(`${field.label.toLowerCase()}: at most ${field.maxLength} characters`)
    values[field.name] = text
  }
  return values
}
