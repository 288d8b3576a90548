import t from 'tap'
import { createTrafficRecorder, OUTCOME_INDEX, startTrafficPublisher, type TrafficPush } from '@waygate/core'

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

t.test('export and absorb: another process sums two routes\' rings bucket by bucket, old buckets dropped', async t => {
  const c = clock()
  const a = createTrafficRecorder({ now: c.now }).route('GET:/x')
  const b = createTrafficRecorder({ now: c.now }).route('GET:/x')
  a.add(OUTCOME_INDEX.passed)
  c.advance(2 * 60_000)
  a.add(OUTCOME_INDEX.passed)
  b.add(OUTCOME_INDEX.passed)
  b.add(OUTCOME_INDEX.disabled)
  t.same(a.export('hour').map(row => row[0]), [T0 / 60_000, T0 / 60_000 + 2], 'the minutes with a request, oldest first')
  const sum = createTrafficRecorder({ now: c.now }).route('GET:/x')
  const columns = Object.values(OUTCOME_INDEX)
  for (const r of [a, b]) {
    sum.absorb('hour', r.export('hour'), columns)
    sum.absorb('day', r.export('day'), columns)
  }
  t.same(sum.report('hour').buckets.slice(-3).map(x => x.requests), [1, 0, 3])
  t.same(sum.report('hour').totals.outcomes.disabled, 1)
  t.same(sum.report('day').buckets[287]!.outcomes, { passed: 3, disabled: 1 }, 'the day\'s bucket holds all four')
  t.equal(sum.totals('day').requests, 4)
  // an outcome another version knows and this one does not is skipped (-1)
  const other = createTrafficRecorder({ now: c.now }).route('GET:/y')
  other.absorb('hour', [[T0 / 60_000 + 2, 3, 7]], [OUTCOME_INDEX.passed, -1])
  t.same(other.totals('hour'), { requests: 3, blocked: 0 })
  // a bucket older than the hour, or not yet begun, is no part of the range
  other.absorb('hour', [[T0 / 60_000 - 70, 5], [T0 / 60_000 + 9, 5]], [OUTCOME_INDEX.passed])
  t.same(other.totals('hour'), { requests: 3, blocked: 0 })
  c.advance(61 * 60_000)
  t.same(sum.export('hour'), [], 'an hour later, nothing left in the hour')
  t.equal(sum.export('day').length, 1, 'the day still has it')
})

t.test('the marker changes with each request and stays put without one', async t => {
  const c = clock()
  const route = createTrafficRecorder({ now: c.now }).route('GET:/m')
  t.equal(route.marker(), '', 'no request: no marker')
  route.add(OUTCOME_INDEX.passed)
  const first = route.marker()
  t.equal(route.marker(), first)
  route.add(OUTCOME_INDEX.passed)
  t.not(route.marker(), first)
  const second = route.marker()
  c.advance(5 * 60_000)
  t.equal(route.marker(), second, 'minutes passing without requests do not change it')
})

t.test('the publisher sends the routes counted since the last report that got through, and all of them now and then', async t => {
  const c = clock()
  const recorder = createTrafficRecorder({ now: c.now })
  const pushes: TrafficPush[] = []
  let fail = false
  const errors: unknown[] = []
  const publisher = startTrafficPublisher({
    traffic: recorder,
    intervalMs: 3_600_000,
    fullEvery: 3,
    include: key => key !== '*',
    publish: async push => {
      if (fail) throw new Error('server away')
      pushes.push(push)
    },
    onError: err => errors.push(err)
  })
  const sent = () => pushes.at(-1)?.routes.map(r => r.key).sort()
  recorder.route('GET:/quiet')
  recorder.route('*').add(OUTCOME_INDEX.passed)
  recorder.route('GET:/a').add(OUTCOME_INDEX.passed)
  recorder.route('GET:/b').add(OUTCOME_INDEX.maintenance)
  await publisher.flush()
  t.same(sent(), ['GET:/a', 'GET:/b'], 'the first report: every route with a request (not the excluded, not the quiet)')
  t.same(pushes[0]!.outcomes.slice(0, 3), ['passed', 'deprecated', 'maintenance'], 'with the name of each column')
  t.same(pushes[0]!.routes.find(r => r.key === 'GET:/b')!.hour, [[T0 / 60_000, 0, 0, 1, 0, 0, 0, 0, 0, 0]])
  recorder.route('GET:/a').add(OUTCOME_INDEX.passed)
  await publisher.flush()
  t.same(sent(), ['GET:/a'], 'then only what changed')
  await publisher.flush()
  t.equal(pushes.length, 2, 'nothing changed: nothing sent')
  await publisher.flush()
  t.same(sent(), ['GET:/a', 'GET:/b'], 'every third report goes whole')

  fail = true
  recorder.route('GET:/b').add(OUTCOME_INDEX.passed)
  await publisher.flush()
  t.equal(errors.length, 1, 'a failed report is reported')
  fail = false
  recorder.route('GET:/a').add(OUTCOME_INDEX.passed)
  await publisher.flush()
  t.same(sent(), ['GET:/a', 'GET:/b'], 'after a failure the next report goes whole')
  recorder.route('GET:/b').add(OUTCOME_INDEX.passed)
  await publisher.close()
  t.same(sent(), ['GET:/b'], 'close() sends what is left')
  await publisher.close()
  t.equal(pushes.length, 5, 'once')
})
