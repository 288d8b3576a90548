/**
 * The human-readable notices waygate adds to operation descriptions and summaries. Each notice
 * is one Markdown line with a fixed opening, so a later pass can find and replace it: applying
 * the transformer to its own output gives the same document.
 */

const MAINTENANCE_MARK = '> 🔧 **'
const DEPRECATED_MARK = '> ⚠️ **'
const NOTICE_LINE = /^> (?:🔧|⚠️) \*\*[^\n]*(?:\n\n|\n?$)/u

/** Prefix of a summary in maintenance: visible in Swagger UI's collapsed list. Plain text, no emoji font needed. */
export const SUMMARY_MARK = '[Maintenance]'

/** Makes operator text safe inside one Markdown line: no HTML, no emphasis, no line breaks. */
export function markdownText (text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]~|]/g, c => '\\' + c)
}

function sentence (text: string): string {
  return /[.!?]$/.test(text) ? text : text + '.'
}

export interface MaintenanceNotice {
  reason: string
  global: boolean
  /** When the maintenance is expected to end, ISO 8601, or null. */
  until: string | null
}

export interface DeprecationNotice {
  reason: string
  sunset: string | null
  successor: string | null
  /** Answers 410 Gone once the sunset has passed. */
  afterSunset?: boolean
  /** Planned brownouts not ended yet. */
  brownouts?: ReadonlyArray<{ start: string, end: string }>
  /** Why it answers 410 right now. */
  gone?: 'sunset' | 'brownout' | null
  goneUntil?: string | null
}

export function maintenanceNotice (notice: MaintenanceNotice): string {
  const title = notice.global ? 'Site-wide maintenance:**' : 'Maintenance:**'
  const reason = markdownText(notice.reason)
  let line = `${MAINTENANCE_MARK}${title} ${sentence(reason === '' ? 'temporarily unavailable' : reason)} Requests answer 503`
  line += notice.until === null ? ' until it ends.' : ` until ${notice.until}.`
  return line
}

export function deprecationNotice (notice: DeprecationNotice): string {
  const reason = markdownText(notice.reason)
  let line = `${DEPRECATED_MARK}Deprecated${reason === '' ? '.**' : ':**'}`
  if (reason !== '') line += ' ' + sentence(reason)
  if (notice.sunset !== null) line += ` Sunset: ${markdownText(notice.sunset)}.`
  if (notice.successor !== null) line += ` Use ${markdownText(notice.successor)} instead.`
  if (notice.gone === 'sunset') line += ' Past its sunset: requests answer 410 Gone.'
  else if (notice.gone === 'brownout') line += ` In a planned brownout: requests answer 410 Gone${notice.goneUntil == null ? '' : ` until ${markdownText(notice.goneUntil)}`}.`
  else if (notice.afterSunset === true) line += ' Requests will answer 410 Gone after the sunset.'
  const planned = (notice.brownouts ?? []).filter(b => notice.gone !== 'brownout' || b.end !== notice.goneUntil)
  if (planned.length > 0) line += ` Planned brownouts (410): ${planned.map(b => `${markdownText(b.start)} to ${markdownText(b.end)}`).join(', ')}.`
  return line
}

/** Removes waygate's notices from the start of a description. */
export function stripNotices (description: string): string {
  let rest = description
  for (let m = NOTICE_LINE.exec(rest); m !== null && m[0] !== ''; m = NOTICE_LINE.exec(rest)) {
    rest = rest.slice(m[0].length)
  }
  return rest
}

/** Puts notices in front of a description, separated as Markdown paragraphs. */
export function withNotices (notices: string[], description: string | undefined): string {
  const rest = description ?? ''
  return rest === '' ? notices.join('\n\n') : [...notices, rest].join('\n\n')
}

/** Removes the maintenance mark from a summary; undefined when nothing else was there. */
export function stripSummaryMark (summary: string): string | undefined {
  if (summary === SUMMARY_MARK) return undefined
  return summary.startsWith(SUMMARY_MARK + ' ') ? summary.slice(SUMMARY_MARK.length + 1) : summary
}

export function withSummaryMark (summary: string | undefined): string {
  return summary === undefined || summary === '' ? SUMMARY_MARK : `${SUMMARY_MARK} ${summary}`
}
