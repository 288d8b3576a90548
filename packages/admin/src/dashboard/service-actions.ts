import { isServiceName, MAX_REASON_LENGTH, type GlobalMaintenance } from '@waygate/core'
import { WG_ERR_NOT_FOUND, WG_ERR_REQUEST_INVALID } from '../errors.js'
import type { ActionSpec, FieldSpec, FormValues } from './actions.js'
import type { DashboardFleet, FleetActor, ServiceTokenInfo } from './fleet.js'

// The actions of a Waygate Server's dashboard on a service as a whole and on service tokens. They
// use the dashboard's confirmation form and its POST /action, like the route actions.

export interface ServiceActionSpec extends ActionSpec<GlobalMaintenance> {
  run(fleet: DashboardFleet, service: string, values: FormValues, who: FleetActor): Promise<unknown>
}

export interface TokenActionSpec extends ActionSpec<ServiceTokenInfo> {
  run(fleet: DashboardFleet, id: string, values: FormValues, who: FleetActor): Promise<unknown>
}

const fields: FieldSpec[] = [
  { name: 'reason', label: 'Reason', kind: 'text', maxLength: MAX_REASON_LENGTH, hint: 'Shown to callers and kept in the audit log.' },
  {
    name: 'exemptPaths',
    label: 'Exempt paths',
    kind: 'textarea',
    maxLength: 20_000,
    placeholder: '/health\nGET:/status',
    hint: 'Route keys of this service, one per line (/pattern or METHOD:/pattern); they keep answering.'
  },
  { name: 'includeForceActive', label: 'Include force-active routes', kind: 'checkbox', maxLength: 5 }
]

function prefill (maintenance: GlobalMaintenance): FormValues {
  return { reason: maintenance.reason, exemptPaths: maintenance.exemptPaths.join('\n'), includeForceActive: maintenance.includeForceActive ? 'on' : '' }
}

function turnOn (fleet: DashboardFleet, service: string, values: FormValues, who: FleetActor): Promise<GlobalMaintenance> {
  return fleet.enableMaintenance(service, {
    reason: values.reason ?? '',
    exemptPaths: (values.exemptPaths ?? '').split(/[\s,]+/).filter(Boolean),
    includeForceActive: (values.includeForceActive ?? '') !== ''
  }, who)
}

export const SERVICE_ACTIONS: readonly ServiceActionSpec[] = [
  {
    id: 'service-on',
    label: 'Turn on…',
    title: 'Put the service in maintenance',
    description: 'Every route of this service answers 503 MAINTENANCE_MODE, except the exempt paths and, unless included, force-active routes. The other services are not affected.',
    submit: 'Start service maintenance',
    tone: 'danger',
    fields,
    offer: m => !m.enabled,
    prefill,
    run: turnOn
  },
  {
    id: 'service-edit',
    label: 'Edit…',
    title: 'Edit the service maintenance',
    description: 'The service stays in maintenance, with this reason, these exempt paths and this force-active choice.',
    submit: 'Save',
    tone: 'neutral',
    fields,
    offer: m => m.enabled,
    prefill,
    run: turnOn
  },
  {
    id: 'service-off',
    label: 'Turn off…',
    title: 'End the service maintenance',
    description: 'The routes of this service answer according to their own states again.',
    submit: 'End service maintenance',
    tone: 'ok',
    fields: [],
    offer: m => m.enabled,
    prefill: () => ({}),
    run: (fleet, service, _values, who) => fleet.disableMaintenance(service, who)
  }
]

export const TOKEN_ACTIONS: readonly TokenActionSpec[] = [
  {
    id: 'token-revoke',
    label: 'Revoke…',
    title: 'Revoke the service token',
    description: 'The token stops working at once, on every server instance: the service instances using it lose their stream and cannot reconnect with it. They keep serving from their last snapshot until they get a new token.',
    submit: 'Revoke token',
    tone: 'danger',
    fields: [],
    offer: info => info.revokedAt === null,
    prefill: () => ({}),
    run: async (fleet, id, _values, who) => {
      const revoked = await tokensOf(fleet).revoke(id, who.actor, who.platform)
      if (revoked === null) throw new WG_ERR_NOT_FOUND(`no service token with id ${id.slice(0, 100)}`)
      return revoked
    }
  }
]

export function serviceAction (id: string): ServiceActionSpec | undefined {
  return SERVICE_ACTIONS.find(a => a.id === id)
}

export function tokenAction (id: string): TokenActionSpec | undefined {
  return TOKEN_ACTIONS.find(a => a.id === id)
}

/** A service name from a form or a URL. */
export function checkService (name: string): string {
  if (!isServiceName(name)) throw new WG_ERR_REQUEST_INVALID(`"${String(name).slice(0, 100)}" cannot name a service (lowercase letters, digits, . _ -)`)
  return name
}

export function tokensOf (fleet: DashboardFleet): NonNullable<DashboardFleet['tokens']> {
  if (fleet.tokens === undefined) throw new WG_ERR_NOT_FOUND('this server has no service tokens')
  return fleet.tokens
}

const UNITS: Record<string, number> = { m: 60, h: 3600, d: 86_400, w: 7 * 86_400, y: 365 * 86_400 }
/** The longest lifetime a service token may get: five years. */
export const MAX_TOKEN_SECONDS = 5 * 365 * 86_400

/** `365d`, `12h`, `30m`, `2y`, `4w` → seconds; at most five years. */
export function tokenLifetime (value: string): number {
  const match = /^(\d{1,6})\s*([mhdwy])$/.exec(value.trim().toLowerCase())
  if (match === null) throw new WG_ERR_REQUEST_INVALID(`expires: expected a duration such as 365d, 12h, 30m or 2y, got "${value.slice(0, 40)}"`)
  const seconds = Number(match[1]) * UNITS[match[2]!]!
  if (seconds < 60) throw new WG_ERR_REQUEST_INVALID('expires: at least a minute')
  if (seconds > MAX_TOKEN_SECONDS) throw new WG_ERR_REQUEST_INVALID('expires: at most five years (5y)')
  return seconds
}
