import t from 'tap'
import { hashPassword } from '@waygate/admin'
import { createCredentialCheck } from '../src/auth/users.js'

async function median (times: number, fn: () => Promise<unknown>): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < times; i++) {
    const started = performance.now()
    await fn()
    samples.push(performance.now() - started)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)]!
}

t.test('every failed login costs one password hash when any user is hashed, plain users included', async t => {
  const check = createCredentialCheck([
    { username: 'alice', password: await hashPassword('alice-pw') },
    { username: 'bob', password: 'bob-pw' },
    { username: 'carol', password: 'carol-pw' }
  ])!
  const failures: Record<string, () => Promise<unknown>> = {
    'hashed user, wrong password': () => check('alice', 'nope'),
    'plain user, wrong password': () => check('bob', 'nope'),
    'other plain user, empty-ish password': () => check('carol', 'x'),
    'unknown user': () => check('mallory', 'nope'),
    'unknown user, long name': () => check('m'.repeat(200), 'nope')
  }
  for (const fail of Object.values(failures)) t.equal(await fail(), null)
  const times: Record<string, number> = {}
  for (const [name, fail] of Object.entries(failures)) times[name] = await median(7, fail)
  const slowest = Math.max(...Object.values(times))
  for (const [name, time] of Object.entries(times)) {
    // a hash takes tens of ms, a plain comparison well under one: a class that skips the hash stands out
    t.ok(time > slowest * 0.4, `${name}: ${time.toFixed(1)} ms vs slowest ${slowest.toFixed(1)} ms`)
  }
  t.equal(await check('bob', 'bob-pw'), 'bob', 'plain users still log in')
  t.equal(await check('alice', 'alice-pw'), 'alice')
})
