import type { GlobalMaintenance, RouteState } from './models.js'
import type { WebhookEvent, WebhookEventName } from './webhook-events.js'

/**
 * Turns an event into the JSON body of a delivery. Return `undefined` to send nothing to this
 * webhook for this event. A formatter that throws is logged and the delivery skipped.
 */
export type WebhookFormatter = (event: WebhookEvent) => unknown

/** The body the default formatter sends. */
export interface DefaultWebhookPayload {
  event: WebhookEventName
  key: string
  reason: string
  timestamp: string
  actor: string
  state: RouteState | GlobalMaintenance | null
}

/** The default body: `{ event, key, reason, timestamp, actor, state }`. */
export function defaultWebhookFormatter (event: WebhookEvent): DefaultWebhookPayload {
  return {
    event: event.event,
    key: event.key,
    reason: event.reason,
    timestamp: event.timestamp,
    actor: event.actor,
    state: event.state
  }
}

/** Escapes text for Slack's mrkdwn and plain text: `&`, `<` and `>`, so no input can mention `@channel` or forge a link. */
export function escapeSlackText (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

const SLACK_TITLES: Record<WebhookEventName, { emoji: string, title: string }> = {
  enable: { emoji: ':large_green_circle:', title: 'Route enabled' },
  disable: { emoji: ':red_circle:', title: 'Route disabled' },
  maintenance_on: { emoji: ':construction:', title: 'Maintenance on' },
  maintenance_off: { emoji: ':white_check_mark:', title: 'Maintenance off' },
  env_gate: { emoji: ':lock:', title: 'Route restricted to some environments' },
  deprecate: { emoji: ':warning:', title: 'Route deprecated' },
  global_maintenance_on: { emoji: ':rotating_light:', title: 'Global maintenance on' },
  global_maintenance_off: { emoji: ':white_check_mark:', title: 'Global maintenance off' },
  window_start: { emoji: ':construction:', title: 'Maintenance window started' },
  window_end: { emoji: ':white_check_mark:', title: 'Maintenance window ended' },
  rate_limit_policy_change: { emoji: ':traffic_light:', title: 'Rate-limit policy changed' }
}

/** Slack allows 3000 characters in a section's text. */
const SLACK_SECTION_LIMIT = 3000

function truncate (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

function isRoute (state: WebhookEvent['state']): state is RouteState {
  return state !== null && 'key' in state
}

/** Details worth a line under the title, already escaped. */
function details (event: WebhookEvent): string[] {
  const lines: string[] = []
  const state = event.state
  if (isRoute(state)) {
    if (event.event === 'env_gate' && state.allowedEnvs.length > 0) lines.push(`Only in: ${escapeSlackText(state.allowedEnvs.join(', '))}`)
    if (event.event === 'deprecate') {
      if (state.sunset !== null) lines.push(`Sunset: ${escapeSlackText(state.sunset)}`)
      if (state.successor !== null) lines.push(`Successor: ${escapeSlackText(state.successor)}`)
    }
    if ((event.event === 'maintenance_on' || event.event === 'window_start') && state.window?.end != null) {
      lines.push(`Until: ${escapeSlackText(state.window.end)}`)
    }
    if (event.event === 'disable' && state.disabledUntil !== null) lines.push(`Until: ${escapeSlackText(state.disabledUntil)}`)
  } else if (state !== null && event.event === 'global_maintenance_on' && state.exemptPaths.length > 0) {
    lines.push(`Still reachable: ${escapeSlackText(state.exemptPaths.join(', '))}`)
  }
  return lines
}

/** The body the Slack formatter sends: an incoming-webhook message with a plain-text fallback and blocks. */
export interface SlackWebhookPayload {
  text: string
  blocks: Array<
    | { type: 'section', text: { type: 'mrkdwn', text: string } }
    | { type: 'context', elements: Array<{ type: 'mrkdwn', text: string }> }
  >
}

/**
 * Formats events for a Slack incoming webhook (`https://hooks.slack.com/services/…`): a section
 * with the change, the route and the reason, and a context line with who, from where and when.
 * Every piece of text that comes from input is escaped for Slack.
 */
export function slackWebhookFormatter (event: WebhookEvent): SlackWebhookPayload {
  const { emoji, title } = SLACK_TITLES[event.event] ?? { emoji: ':information_source:', title: String(event.event) }
  const target = event.key === '*' ? 'the whole API' : `\`${escapeSlackText(event.key)}\``
  let text = `${emoji} *${title}*: ${target}`
  if (event.reason !== '') {
    // a blockquote line per reason line, so a newline cannot end the quote
    text += '\n' + escapeSlackText(event.reason).split('\n').map(line => `>${line}`).join('\n')
  }
  for (const line of details(event)) text += `\n${line}`
  const context = `by *${escapeSlackText(event.actor)}* via ${escapeSlackText(event.platform)} · ${escapeSlackText(event.timestamp)}`
  return {
    text: truncate(`${title}: ${event.key === '*' ? 'the whole API' : escapeSlackText(event.key)}${event.reason === '' ? '' : ` (${escapeSlackText(event.reason)})`}`, SLACK_SECTION_LIMIT),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: truncate(text, SLACK_SECTION_LIMIT) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: truncate(context, SLACK_SECTION_LIMIT) }] }
    ]
  }
}
