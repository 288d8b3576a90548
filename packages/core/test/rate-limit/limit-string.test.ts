import t from 'tap'
import { formatLimit, limitStringError, parseLimit } from '@waygate/core'

const S = 1000
const M = 60 * S
const H = 60 * M
const D = 24 * H

t.test('parses N/unit and N per [M] unit in every spelling', async t => {
  const cases: Array<[string, number, number]> = [
    ['100/minute', 100, M],
    ['100/minutes', 100, M],
    ['10/second', 10, S],
    ['10/seconds', 10, S],
    ['10/s', 10, S],
    ['10/sec', 10, S],
    ['5/m', 5, M],
    ['5/min', 5, M],
    ['7/hour', 7, H],
    ['7/hours', 7, H],
    ['7/h', 7, H],
    ['1000/day', 1000, D],
    ['1000/days', 1000, D],
    ['1000/d', 1000, D],
    ['1000 per day', 1000, D],
    ['5 per 10 minutes', 5, 10 * M],
    ['5 per 1 minute', 5, M],
    ['30/5m', 30, 5 * M],
    ['30/5 minutes', 30, 5 * M],
    ['  20 / Minute ', 20, M],
    ['20 PER HOUR', 20, H],
    ['1/365 days', 1, 365 * D]
  ]
  for (const [text, limit, windowMs] of cases) t.same(parseLimit(text), { limit, windowMs }, text)
})

t.test('parses unlimited in any case', async t => {
  t.same(parseLimit('unlimited'), { unlimited: true })
  t.same(parseLimit(' Unlimited '), { unlimited: true })
})

t.test('rejects anything else with a coded 400 error quoting the string', async t => {
  const bad: Array<[unknown, RegExp]> = [
    ['100/minit', /"100\/minit" has an unknown unit "minit"/],
    ['100', /"100" is not a limit/],
    ['minute', /is not a limit/],
    ['0/minute', /between 1 and 1000000000/],
    ['2000000000/minute', /between 1 and/],
    ['-5/minute', /is not a limit/],
    ['1.5/minute', /is not a limit/],
    ['5 per 0 minutes', /empty window/],
    ['1/366 days', /longer than 365 days/],
    ['10/minute/extra', /is not a limit/],
    ['10 every minute', /is not a limit/],
    ['', /is not a limit/],
    [`1/${'m'.repeat(100)}`, /too long/],
    [10, /number 10 is not a limit string/],
    [null, /null is not a limit string/],
    [['10/minute'], /an array is not a limit string/]
  ]
  for (const [text, message] of bad) {
    t.throws(() => parseLimit(text), { code: 'WG_ERR_RATE_LIMIT_INVALID', statusCode: 400, message }, String(text))
    t.match(limitStringError(text), message)
  }
  t.equal(limitStringError('10/minute'), null)
  t.match(limitStringError('10/fortnight'), /unit of second, minute, hour or day \(or s, m, h, d\), or "unlimited"/, 'the message says what is expected')
})

t.test('formats a limit back into its canonical string', async t => {
  t.equal(formatLimit(parseLimit('100/m')), '100/minute')
  t.equal(formatLimit(parseLimit('5 per 10 minutes')), '5 per 10 minutes')
  t.equal(formatLimit(parseLimit('5 per 90 seconds')), '5 per 90 seconds')
  t.equal(formatLimit(parseLimit('5 per 120 minutes')), '5 per 2 hours')
  t.equal(formatLimit(parseLimit('1/1 day')), '1/day')
  t.equal(formatLimit(parseLimit('unlimited')), 'unlimited')
})
