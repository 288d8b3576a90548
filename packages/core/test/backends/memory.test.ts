import t from 'tap'
import { createMemoryBackend } from '@waygate/core'
import { backendContract } from '@waygate/core/testing'

backendContract(t, {
  name: 'memory backend',
  create: options => createMemoryBackend(options),
  revisions: true
})

t.test('rejects invalid options', async t => {
  t.throws(() => createMemoryBackend({ maxAuditEntries: 0 }), { code: 'WG_ERR_OPTIONS_INVALID' })
  t.throws(() => createMemoryBackend({ now: 5 as unknown as () => number }), { code: 'WG_ERR_OPTIONS_INVALID', message: /now must be a function/ })
})
