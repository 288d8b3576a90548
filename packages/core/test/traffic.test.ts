import t from 'tap'
import { createTrafficRecorder, OUTCOME_INDEX } from '@waygate/core'

const T0 = Date.parse('2026-06-01T12:00:00.000Z')

function clock (start = T0) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

t.test('counts requests and blocked requests by outcome in the current minute bucket', async t => {
  const c = clock(T0 + 10_000)
  const recorder = createTrafficRecorder({ now: c.now })
  const route = recorder.route('GET:/users')
  for (let i = 0; i < 5; i++) route.add(OUTCOME_INDEX.passed)
  route.add(OUTCOME_INDEX.maintenance)
  route.add(OUTCOME_INDEX.rate_limited)
  route.add(OUTCOME_INDEX.rate_limited)
  const hour = route.report('hour')
  t.equal(hour.buckets.length, 60)
  t.equal(hour.bucketSeconds, 60)
  const last = hour.buckets[59]!
  t.equal(last.start, '2026-06-01T12:00:00.000Z', 'the last bucket holds now')
  t.same(last, { start: last.start, requests: 8, blocked: 3, outcomes: { passed: 5, maintenance: 1, rate_limited: 2 } })
  t.equal(hour.totals.requests, 8)
  t.equal(hour.totals.blocked, 3)
  t.equal(hour.totals.outcomes.deprecated, 0, 'totals list every outcome')
  t.same(route.totals('hour'), { requests: 8, blocked: 3 })
  const day = route.report('day')
  t.equal(day.buckets.length, 288)
  t.equal(day.bucketSeconds, 300)
  t.same(day.buckets[287]!.outcomes, { passed: 5, maintenance: 1, rate_limited: 2 })
  t.equal(recorder.route('GET:/users'), route, 'one counter per route key')
})

t.test('buckets roll over with the clock, and a ring slot reused an hour later starts from zero', async t => {
  const c = clock()
  const recorder = createTrafficRecorder({ now: c.now })
  const route = recorder.route('GET:/orders')
  route.add(OUTCOME_INDEX.passed)
  c.advance(60_000)
  route.add(OUTCOME_INDEX.disabled)
  route.add(OUTCOME_INDEX.disabled)
  let hour = route.report('hour')
  t.same(hour.buckets.slice(-2).map(b => [b.requests, b.blocked]), [[1, 0], [2, 2]], 'one bucket per minute')
  t.equal(hour.buckets[58]!.start, '2026-06-01T12:00:00.000Z')

  // 4 more minutes: the five-minute bucket of 12:05 begins
  c.advance(4 * 60_000)
  route.add(OUTCOME_INDEX.passed)
  const day = route.report('day')
  t.same(day.buckets.slice(-2).map(b => b.requests), [3, 1], '12:00-12:05 then 12:05-12:10')

  // at 13:01 the 12:01 slot is reused: its two refusals are gone
  c.advance(56 * 60_000)
  route.add(OUTCOME_INDEX.global_maintenance)
  hour = route.report('hour')
  t.equal(hour.totals.requests, 2, 'only the last hour: the 12:05 request and this one')
  t.equal(hour.buckets[59]!.requests, 1)
  t.equal(hour.buckets[59]!.outcomes.global_maintenance, 1)
  t.same(route.totals('hour'), { requests: 2, blocked: 1 })

  // a day later nothing is left in either range
  c.advance(25 * 3_600_000)
  t.same(route.totals('hour'), { requests: 0, blocked: 0 })
  t.same(route.totals('day'), { requests: 0, blocked: 0 })
  t.equal(route.report('day').totals.requests, 0)
})

t.test('the version changes when a request is counted or the minute turns', async t => {
  const c = clock()
  const recorder = createTrafficRecorder({ now: c.now })
  const v0 = recorder.version()
  recorder.route('GET:/a').add(OUTCOME_INDEX.passed)
  t.equal(recorder.version(), v0, 'recomputed at most every 5 s')
  c.advance(5000)
  const v1 = recorder.version()
  t.not(v1, v0, 'a request was counted')
  c.advance(5000)
  t.equal(recorder.version(), v1, 'stable while nothing happens')
  c.advance(60_000)
  t.not(recorder.version(), v1)
  t.same(recorder.keys(), ['GET:/a'])
  t.equal(recorder.get('GET:/b'), undefined)
})
