// Text from the server is shown to an operator at a terminal: a control character in a reason or
// an error message must not clear the screen, retitle the window, move the cursor back over what
// was printed or draw lines of its own.

// C0 controls, DEL, C1 controls (U+0080 to U+009F: a UTF-8 terminal may read U+009B as CSI), the
// bidirectional overrides and isolates, and the Unicode line and paragraph separators
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escape (char: string): string {
  const named = NAMED[char]
  if (named !== undefined) return named
  const code = char.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/** `text` with every control character written out visibly (`\x1b`, `\r`, `\u202e`). */
export function printable (text: string): string {
  return text.replace(UNSAFE, escape)
}

/**
 * `value` with every string in it (object keys too) made printable: what human output is built
 * from, so no table cell or detail line carries a control character.
 */
export function printableDeep<T> (value: T): T {
  if (typeof value === 'string') return printable(value) as T
  if (Array.isArray(value)) return value.map(item => printableDeep(item)) as T
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) copy[printable(key)] = printableDeep(item)
    return copy as T
  }
  return value
}

// what JSON.stringify leaves raw but a terminal may act on
const JSON_UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * JSON text of `value` (indented when `indent` is given) that parses back to the same value and
 * holds no raw control character: JSON.stringify escapes C0 controls, this escapes the rest.
 */
export function jsonText (value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_UNSAFE, char => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
