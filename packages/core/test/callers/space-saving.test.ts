import t from 'tap'
import { createSpaceSaving, mergeSummaries, type SketchSummary } from '@waygate/core'

/** A deterministic generator (mulberry32), so every run sees the same stream. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A Zipf-like stream over `distinct` callers (rank r drawn with weight 1 / r^s), shuffled so the
 * heavy callers are not first; every caller appears at least once.
 */
function zipfStream (distinct: number, length: number, s: number, seed: number): string[] {
  const rand = random(seed)
  const cdf = new Float64Array(distinct)
  let sum = 0
  for (let r = 1; r <= distinct; r++) {
    sum += 1 / Math.pow(r, s)
    cdf[r - 1] = sum
  }
  const out: string[] = []
  for (let r = 0; r < distinct; r++) out.push(`caller-${r}`)
  while (out.length < length) {
    const u = rand() * sum
    let lo = 0
    let hi = distinct - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    out.push(`caller-${lo}`)
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const x = out[i]!
    out[i] = out[j]!
    out[j] = x
  }
  return out
}

function exactTop (stream: readonly string[], n: number): Array<[string, number]> {
  const counts = new Map<string, number>()
  for (const id of stream) counts.set(id, (counts.get(id) ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, n)
}

t.test('finds the exact top 10 of 10^5 distinct callers in a skewed stream, with 200 slots', async t => {
  const stream = zipfStream(100_000, 1_000_000, 1.1, 42)
  const sketch = createSpaceSaving(200)
  let at = 0
  for (const id of stream) sketch.add(id, at++)
  t.equal(sketch.total, stream.length)
  t.equal(sketch.size, 200, 'memory bounded: never more slots than its capacity')
  const exact = exactTop(stream, 10)
  const top = sketch.entries().slice(0, 10)
  t.same(top.map(e => e.id), exact.map(e => e[0]), 'the same ten callers, in the same order')
  const bound = stream.length / 200
  const exactCounts = new Map(exactTop(stream, 100_000))
  for (const e of sketch.entries()) {
    const truth = exactCounts.get(e.id) ?? 0
    t.ok(e.count >= truth, `${e.id}: the count never underestimates`)
    if (e.count - truth > e.error) t.fail(`${e.id}: overestimate ${e.count - truth} beyond its error ${e.error}`)
    if (e.error > bound) t.fail(`${e.id}: error ${e.error} above N/k = ${bound}`)
  }
  t.comment(`top caller ${exact[0]![0]} ${exact[0]![1]} times; tenth ${exact[9]![1]}; N/k = ${bound}`)
})

t.test('every caller above N/k holds a slot, whatever the order', async t => {
  // adversarial order: the heavy ids arrive last, after 10^5 one-off ids
  const sketch = createSpaceSaving(100)
  let at = 0
  for (let i = 0; i < 100_000; i++) sketch.add(`once-${i}`, at++)
  for (let round = 0; round < 2000; round++) for (const id of ['a', 'b', 'c']) sketch.add(id, at++)
  const ids = sketch.entries().slice(0, 3).map(e => e.id).sort()
  t.same(ids, ['a', 'b', 'c'])
  t.equal(sketch.size, 100)
})

t.test('lastSeen is the time of the latest request and clear() empties the slots', async t => {
  const sketch = createSpaceSaving(2)
  sketch.add('x', 10)
  sketch.add('y', 20)
  sketch.add('x', 30)
  t.same(sketch.entries().map(e => [e.id, e.count, e.lastSeen]), [['x', 2, 30], ['y', 1, 20]])
  sketch.add('z', 40)
  // z takes y's slot, inheriting its count as error; on equal counts the latest seen comes first
  t.same(sketch.entries().map(e => [e.id, e.count, e.error]), [['z', 2, 1], ['x', 2, 0]])
  sketch.clear()
  t.equal(sketch.size, 0)
  t.equal(sketch.total, 0)
  t.same(sketch.entries(), [])
})

t.test('merging two halves of a stream finds what one sketch of the whole finds, within N/k', async t => {
  const stream = zipfStream(100_000, 400_000, 1.1, 7)
  const halves = [createSpaceSaving(200), createSpaceSaving(200)]
  stream.forEach((id, i) => halves[i % 2]!.add(id, i))
  const summaries: SketchSummary[] = halves.map(h => ({ total: h.total, capacity: h.capacity, entries: h.entries() }))
  const merged = mergeSummaries(summaries, 10)
  t.equal(merged.total, stream.length)
  const exact = exactTop(stream, 10)
  t.same(merged.callers.map(c => c.id), exact.map(e => e[0]))
  for (const [i, c] of merged.callers.entries()) {
    t.ok(Math.abs(c.count - exact[i]![1]) <= c.error, `${c.id}: within its error`)
    t.ok(c.error <= stream.length / 200, `${c.id}: error within N/k`)
  }
})
