import t from 'tap'
import { jsonText, printable } from '../src/safe-text.js'
import { startHostile } from './helpers/hostile.js'
import { sandbox } from './helpers/server.js'

// What a hostile server can put in front of the operator: terminal control sequences in any text
// it sends (reasons, keys, users, error messages).

const HOSTILE = [
  '\u001b[2J\u001b[H', // clear the screen, cursor home
  '\u001b]0;pwned\u0007', // OSC: retitle the terminal, ended by BEL
  '\u001b]8;;https://evil.example\u001b\\link\u001b]8;;\u001b\\', // OSC 8 hyperlink, ended by ST
  'all good\rFAKE', // CR: overwrite what was printed
  'line\nGET:/fake  ACTIVE', // a fake table line
  '\u009b31mred\u009b0m', // C1 CSI
  '\u009d0;title\u009c', // C1 OSC ... ST
  'back\bspace\u007f', // BS, DEL
  'nul\u0000', // NUL
  'bidi \u202egnp.exe\u202c', // right-to-left override
  'sep\u2028arator' // Unicode line separator
]

// every C0 control but the newline ending a line, DEL, every C1 control, bidi controls, separators
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

t.test('printable() escapes every control character, visibly, and keeps the rest', async t => {
  for (const [i, text] of HOSTILE.entries()) t.notMatch(printable(text), UNSAFE, `hostile text ${i}`)
  t.equal(printable('\u001b[2J'), '\\x1b[2J')
  t.equal(printable('a\rb\nc\td'), 'a\\rb\\nc\\td')
  t.equal(printable('\u009b31m'), '\\x9b31m')
  t.equal(printable('\u202e'), '\\u202e')
  t.equal(printable('café 日本 ✓ -> "quoted" \\ back'), 'café 日本 ✓ -> "quoted" \\ back')
})

t.test('jsonText() is JSON that parses back to the same value, with no raw control character', async t => {
  const value = { reasons: HOSTILE, [HOSTILE[0]!]: 1 }
  const text = jsonText(value)
  t.same(JSON.parse(text), value)
  t.notMatch(text.replace(/\n/g, ''), UNSAFE)
})

function route (i: number, text: string): Record<string, unknown> {
  return {
    key: `GET:/r${i}${text}`,
    path: `/r${i}`,
    method: 'GET',
    service: null,
    status: 'maintenance',
    reason: text,
    allowedEnvs: [],
    window: null,
    sunset: null,
    successor: null,
    forceActive: false,
    updatedAt: new Date().toISOString(),
    updatedBy: `user${text}`
  }
}

t.test('server text reaches the terminal escaped: tables, details, the audit log, errors, --debug', async t => {
  const routes = HOSTILE.map((text, i) => route(i, text))
  const hostile = await startHostile(t, (req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const path = req.url.split('?')[0]
    if (path === '/waygate/api/routes') return send(200, routes)
    if (path === '/waygate/api/global') return send(200, { enabled: true, reason: HOSTILE.join(' '), exemptPaths: HOSTILE, includeForceActive: false, since: null })
    if (path === '/waygate/api/audit') {
      return send(200, HOSTILE.map((text, i) => ({
        id: `id${i}${text}`, timestamp: new Date().toISOString(), key: `GET:/r${i}`, service: null, action: `disable${text}`, actor: text, platform: 'cli', reason: text, previousStatus: 'active', newStatus: 'disabled'
      })))
    }
    send(400, { error: { code: 'WG_ERR_VALIDATION', message: `bad ${HOSTILE.join(' ')}` } })
  })
  const box = await sandbox(t, { WAYGATE_SERVER_URL: hostile.adminUrl, WAYGATE_TOKEN: 'wg1.x.y' })
  const [status, global, log, failure, debug] = await Promise.all([
    box.waygate(['status']),
    box.run(['global']),
    box.run(['log']),
    box.run(['disable', 'GET:/x']),
    box.run(['disable', 'GET:/x', '--debug'])
  ])
  for (const [name, result] of Object.entries({ status, global, log, failure, debug })) {
    t.notMatch(result.stdout.replace(/\n/g, ''), UNSAFE, `${name}: stdout`)
    t.notMatch(result.stderr.replace(/\n/g, ''), UNSAFE, `${name}: stderr`)
  }
  t.equal(status.code, 0)
  t.equal(status.stdout.split('\n').filter(line => line.startsWith('GET:/')).length, HOSTILE.length, 'a line per route, none made up by the server')
  t.match(status.stdout, 'all good\\rFAKE')
  t.match(status.stdout, '\\x1b]0;pwned\\x07')
  t.equal(log.code, 0)
  t.equal(failure.code, 1)
  t.match(failure.stderr, /^error: bad \\x1b\[2J/)
  t.equal(failure.stderr.split('\n').length, 3, 'one error line and one hint line')

  // --json keeps the values exactly, JSON-escaped
  const asJson = await box.run(['status', '--json'])
  t.same(JSON.parse(asJson.stdout), routes)
  t.notMatch(asJson.stdout.replace(/\n/g, ''), UNSAFE)
  const failedJson = await box.run(['disable', 'GET:/x', '--json'])
  t.equal(JSON.parse(failedJson.stderr).error.message, `bad ${HOSTILE.join(' ')}`)
  t.notMatch(failedJson.stderr.replace(/\n$/, ''), UNSAFE)
})
