import t from 'tap'
import { keyPart, MAX_KEY_PART_LENGTH, propertyPath, readPath } from '@waygate/core'

t.test('keyPart: strings as they are, long ones hashed, numbers as strings, the rest missing', async t => {
  t.equal(keyPart('user-1'), 'user-1')
  t.equal(keyPart('x'.repeat(MAX_KEY_PART_LENGTH)), 'x'.repeat(MAX_KEY_PART_LENGTH))
  const long = keyPart('k'.repeat(10_000))
  t.match(long, /^sha256:[\w-]{43}$/)
  t.equal(keyPart('k'.repeat(10_000)), long, 'stable')
  t.not(keyPart('j'.repeat(10_000)), long)
  t.equal(keyPart(42), '42')
  t.equal(keyPart(42n), '42')
  for (const missing of ['', undefined, null, Number.NaN, {}, ['a'], true]) t.equal(keyPart(missing), undefined, String(missing))
})

t.test('readPath reads nested properties and stops where they end', async t => {
  const request = { user: { id: 7, profile: null }, plan: 'pro' }
  t.equal(readPath(request, propertyPath('user.id')), 7)
  t.equal(readPath(request, propertyPath('plan')), 'pro')
  t.equal(readPath(request, propertyPath('user.profile.name')), undefined)
  t.equal(readPath(request, propertyPath('missing.id')), undefined)
  t.equal(readPath(request, propertyPath('plan.length')), undefined, 'no property of a primitive')
  t.equal(readPath(undefined, propertyPath('a')), undefined)
})
