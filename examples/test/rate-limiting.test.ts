import t from 'tap'
import { createMemoryBackend } from '@waygate/core'
import { build } from '../rate-limiting.js'

t.test('the rate limiting example answers as documented', async t => {
  const app = await build({ backend: createMemoryBackend() })
  t.teardown(() => app.close())
  const codes = async (url: string, n: number, headers: Record<string, string> = {}, remoteAddress = '203.0.113.7') => {
    const out: number[] = []
    for (let i = 0; i < n; i++) out.push((await app.inject({ url, headers, remoteAddress })).statusCode)
    return out
  }
  t.same(await codes('/burst', 9), [200, 200, 200, 200, 200, 200, 200, 200, 429], '5/minute + burst 3')
  for (const path of ['/fixed', '/sliding', '/moving', '/bucket']) t.same(await codes(path, 6), [200, 200, 200, 200, 200, 429], path)
  t.same(await codes('/users/me', 3), [200, 200, 200], 'no user: exempt')
  t.same(await codes('/users/strict', 1), [429], 'no user: refused')
  t.same(await codes('/search', 6, {}, '198.51.100.1'), [200, 200, 200, 200, 200, 429])
  t.same(await codes('/search', 1, {}, '198.51.100.2'), [429], 'one counter shared by everyone')
  t.same(await codes('/reports', 11, { 'x-user': 'u1', 'x-plan': 'free' }).then(c => c.slice(-2)), [200, 429], 'free: 10/minute')
  t.same(await codes('/reports', 20, { 'x-user': 'u2', 'x-plan': 'enterprise' }).then(c => [...new Set(c)]), [200], 'enterprise: unlimited')
  t.same(await codes('/internal/metrics', 12, {}, '10.1.2.3').then(c => [...new Set(c)]), [200], 'private ranges are exempt')
  t.same(await codes('/checkout', 7), [503, 503, 503, 503, 503, 503, 503], 'maintenance answers first and uses no quota')
  const posts = await app.inject({ url: '/public/posts', remoteAddress: '192.0.2.1' })
  t.equal(posts.headers['ratelimit-policy'], '"route";q=10;w=60')
  t.match(posts.headers.ratelimit, /^"route";r=9;t=\d+$/)

  await app.waygateRateLimits.setPolicy({ key: 'GET:/public/posts', limits: ['1/minute'] }, { actor: 'example-test' })
  t.same(await codes('/public/posts', 2, {}, '192.0.2.9'), [200, 429], 'a runtime policy applies at once')
  t.ok(app.waygateRateLimits.blocked().length > 0, 'refusals are logged')
})
