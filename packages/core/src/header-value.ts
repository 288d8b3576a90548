// C0 controls (CR, LF, NUL, TAB…), space, DEL, C1 controls, and the brackets a Link value is written in
// eslint-disable-next-line no-control-regex
const NOT_IN_URL = /[\u0000-\u0020\u007f-\u009f<>]/
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]+/g
// what Node accepts in a header value; anything else makes writeHead throw ERR_INVALID_CHAR
const HEADER_SAFE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/
// an RFC 9110 token, what Node accepts as a header name
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * The form of a successor URL or path that can go in a `Link` header: non-ASCII characters
 * percent-encoded as UTF-8 (an IRI becomes its URI), or null when it holds what no URL may
 * (control characters, whitespace, DEL, angle brackets, unpaired surrogates).
 */
export function encodeSuccessor (value: string): string | null {
  if (NOT_IN_URL.test(value)) return null
  try {
    return value.replace(NON_ASCII, encodeURIComponent)
  } catch {
    // encodeURIComponent throws URIError on an unpaired surrogate
    return null
  }
}

/**
 * Whether Node would send this header (a token name; a value of visible ASCII, space, tab and
 * Latin-1 only, or a number, or a list of those) rather than throw ERR_INVALID_CHAR.
 */
export function isSendableHeader (name: string, value: unknown): boolean {
  if (!HEADER_NAME.test(name)) return false
  if (Array.isArray(value)) return value.every(v => isSendableHeader(name, v))
  return typeof value === 'number' || (typeof value === 'string' && HEADER_SAFE.test(value))
}
