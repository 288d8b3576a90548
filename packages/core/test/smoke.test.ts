import t from 'tap'
import { createEngine } from '@waygate/core'

t.test('smoke', async t => {
  const engine = createEngine()
  await engine.start()
  const h = engine.declareRoute('GET', '/x', { maintenance: { reason: 'm' } })
  await engine.registerDeclaredRoutes()
  t.equal(engine.decide(h).action, 'block')
  await engine.enable('GET:/x')
  t.equal(engine.decide(h).action, 'pass')
  await engine.close()
})
