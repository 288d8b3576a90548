import { WG_ERR_RATE_LIMIT_INVALID } from './errors.js'

// Scratch space for parsing one IPv6 address at a time: no allocation per request
const scratch = new Uint16Array(8)

/**
 * Parses a dotted-quad IPv4 address between `start` and `end` into an unsigned 32-bit number;
 * -1 when it is not one. Strict: four decimal parts of 0–255 without leading zeros.
 */
export function parseIpv4 (s: string, start = 0, end = s.length): number {
  let value = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1
      value = value * 256 + part
      part = 0
      digits = 0
      dots++
      continue
    }
    if (c < 48 || c > 57) return -1
    if (digits > 0 && part === 0) return -1
    part = part * 10 + c - 48
    digits++
    if (part > 255) return -1
  }
  if (digits === 0 || dots !== 3) return -1
  return value * 256 + part
}

function hexDigit (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/**
 * Parses an IPv6 address (with `::`, an IPv4 tail, a `%zone` ignored) into eight 16-bit
 * groups. Resolves whether it is one.
 */
export function parseIpv6 (s: string, out: Uint16Array): boolean {
  let end = s.indexOf('%')
  if (end < 0) end = s.length
  if (end === 0) return false
  let groups = 0
  let gap = -1
  let i = 0
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false
    gap = 0
    i = 2
  }
  while (i < end) {
    if (groups === 8) return false
    let value = 0
    let digits = 0
    let j = i
    for (; j < end; j++) {
      const h = hexDigit(s.charCodeAt(j))
      if (h < 0) break
      if (++digits > 4) return false
      value = value * 16 + h
    }
    if (j < end && s.charCodeAt(j) === 46) {
      if (groups > 6) return false
      const v4 = parseIpv4(s, i, end)
      if (v4 < 0) return false
      out[groups++] = v4 >>> 16
      out[groups++] = v4 & 0xffff
      break
    }
    if (digits === 0) return false
    out[groups++] = value
    if (j === end) break
    if (s.charCodeAt(j) !== 58) return false
    j++
    if (j < end && s.charCodeAt(j) === 58) {
      if (gap >= 0) return false
      gap = groups
      j++
    } else if (j === end) {
      return false
    }
    i = j
  }
  if (gap < 0) return groups === 8
  if (groups === 8) return false
  const tail = groups - gap
  for (let k = 0; k < tail; k++) out[7 - k] = out[groups - 1 - k] as number
  for (let k = gap; k < 8 - tail; k++) out[k] = 0
  return true
}

function isV4Mapped (g: Uint16Array): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff
}

function mappedV4 (g: Uint16Array): number {
  return ((g[6] as number) * 65536) + (g[7] as number)
}

function formatIpv4 (n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/**
 * The rate limit key of a client address. IPv4 stays as it is; an IPv4-mapped IPv6 address
 * (`::ffff:1.2.3.4`) becomes its IPv4 address; any other IPv6 address stands for its /64 network
 * (`2001:db8:0:1::/64`), since one subscriber usually holds a whole /64 and could otherwise
 * rotate through 2^64 keys. Anything that is not an IPv6 address is returned unchanged.
 */
export function ipKey (ip: string): string {
  if (ip.indexOf(':') < 0) return ip
  if (ip.startsWith('::ffff:') && ip.indexOf('.', 7) > 0) return ip.slice(7)
  if (!parseIpv6(ip, scratch)) return ip
  if (isV4Mapped(scratch)) return formatIpv4(mappedV4(scratch))
  return `${(scratch[0] as number).toString(16)}:${(scratch[1] as number).toString(16)}:${(scratch[2] as number).toString(16)}:${(scratch[3] as number).toString(16)}::/64`
}

/** Tells whether an address is in a list of addresses and networks. */
export type IpMatcher = (ip: string) => boolean

interface V6Rule {
  groups: Uint16Array
  prefix: number
}

type ParsedRule = { v4: true, net: number, prefix: number } | { v4: false, groups: Uint16Array, prefix: number }

function parseRule (rule: string): ParsedRule | string {
  if (typeof rule !== 'string' || rule.length === 0 || rule.length > 64) return `${JSON.stringify(rule)} is not an IP address or CIDR`
  const slash = rule.indexOf('/')
  const address = slash < 0 ? rule : rule.slice(0, slash)
  let prefix = -1
  if (slash >= 0) {
    const bits = rule.slice(slash + 1)
    if (!/^\d{1,3}$/.test(bits)) return `"${rule}" has an invalid prefix length`
    prefix = Number(bits)
  }
  const v4 = parseIpv4(address)
  if (v4 >= 0) {
    if (prefix > 32) return `"${rule}" has a prefix longer than 32 bits`
    const p = prefix < 0 ? 32 : prefix
    return { v4: true, net: (v4 & mask4(p)) >>> 0, prefix: p }
  }
  const groups = new Uint16Array(8)
  if (address.includes('%') || !parseIpv6(address, groups)) return `"${rule}" is not an IP address or CIDR`
  if (prefix > 128) return `"${rule}" has a prefix longer than 128 bits`
  const p = prefix < 0 ? 128 : prefix
  if (p >= 96 && isV4Mapped(groups)) return { v4: true, net: (mappedV4(groups) & mask4(p - 96)) >>> 0, prefix: p - 96 }
  return { v4: false, groups, prefix: p }
}

function mask4 (prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** Why an `exemptIps` entry is invalid, or null when it is an address or a CIDR (IPv4 or IPv6). */
export function ipRuleError (rule: string): string | null {
  const parsed = parseRule(rule)
  return typeof parsed === 'string' ? parsed : null
}

function matchV6 (rules: V6Rule[], g: Uint16Array): boolean {
  for (const rule of rules) {
    const whole = rule.prefix >>> 4
    let k = 0
    while (k < whole && g[k] === rule.groups[k]) k++
    if (k < whole) continue
    const bits = rule.prefix & 15
    if (bits === 0) return true
    const m = (0xffff << (16 - bits)) & 0xffff
    if (((g[k] as number) & m) === ((rule.groups[k] as number) & m)) return true
  }
  return false
}

/**
 * Compiles addresses and CIDRs (`127.0.0.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`) into a
 * matcher. An IPv4 address and its IPv4-mapped IPv6 form match the same entries; host bits of a
 * network are ignored (`10.1.2.3/8` is `10.0.0.0/8`). Throws `WG_ERR_RATE_LIMIT_INVALID` listing
 * every bad entry.
 */
export function createIpMatcher (rules: readonly string[]): IpMatcher {
  const v4Nets: number[] = []
  const v4Masks: number[] = []
  const v6: V6Rule[] = []
  const errors: string[] = []
  rules.forEach((rule, i) => {
    const parsed = parseRule(rule)
    if (typeof parsed === 'string') errors.push(`/exemptIps/${i}: ${parsed}`)
    else if (parsed.v4) {
      v4Nets.push(parsed.net)
      v4Masks.push(mask4(parsed.prefix))
    } else {
      v6.push({ groups: parsed.groups, prefix: parsed.prefix })
    }
  })
  if (errors.length > 0) throw new WG_ERR_RATE_LIMIT_INVALID(errors.join('; '))
  if (rules.length === 0) return () => false
  const n4 = v4Nets.length

  function matchV4 (address: number): boolean {
    for (let i = 0; i < n4; i++) {
      if (((address & (v4Masks[i] as number)) >>> 0) === v4Nets[i]) return true
    }
    return false
  }

  return function isExemptIp (ip: string): boolean {
    if (typeof ip !== 'string') return false
    if (ip.indexOf(':') < 0) {
      const address = parseIpv4(ip)
      if (address < 0) return false
      if (matchV4(address)) return true
      if (v6.length === 0) return false
      scratch.fill(0, 0, 5)
      scratch[5] = 0xffff
      scratch[6] = address >>> 16
      scratch[7] = address & 0xffff
      return matchV6(v6, scratch)
    }
    if (!parseIpv6(ip, scratch)) return false
    if (isV4Mapped(scratch) && matchV4(mappedV4(scratch))) return true
    return matchV6(v6, scratch)
  }
}
