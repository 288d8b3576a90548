import t from 'tap'
import { createMemoryBackend, defaultGlobalMaintenance } from '@waygate/core'
import type { EngineEvent, SyncStatus, WaygateBackend } from '@waygate/core'
import { auditEntry, routeState } from '@waygate/core/testing'
import { setup } from './helpers/engine.js'
import { startReceiver } from './helpers/webhook-receiver.js'

t.test('applyRemoteUpdate writes next only while the stored state is base', async t => {
  const { engine, events } = await setup(t)
  const receiver = await startReceiver(t)
  engine.addWebhook(receiver.url)
  const key = 'payments-service:GET:/api/payments'
  const first = routeState(key, { service: 'payments-service' })

  const created = await engine.applyRemoteUpdate(key, { base: null, next: first, audit: auditEntry('c1', { key, action: 'enable' }) })
  t.same(created, first, 'absent and base null: written')
  t.same(engine.getState(key), first, 'the engine holds it at once')

  const disabled = { ...first, status: 'disabled' as const, reason: 'fraud' }
  const entry = auditEntry('c2', { key, service: 'payments-service', platform: 'sdk', actor: 'payments-service' })
  await engine.applyRemoteUpdate(key, { base: { ...first }, next: disabled, audit: entry })
  t.equal(engine.getState(key)?.status, 'disabled')
  t.match((await engine.listAudit({ key }))[0], { id: 'c2', platform: 'sdk', actor: 'payments-service' }, 'the audit entry is stored with the write')
  const changed = events.filter(e => e.type === 'route_changed')
  t.match(changed.at(-1), { type: 'route_changed', key, stored: disabled, revision: Number })

  // base with the same fields in another order is the same state
  const reordered = Object.fromEntries(Object.entries(disabled).reverse()) as typeof disabled
  await engine.applyRemoteUpdate(key, { base: reordered, next: { ...disabled, reason: 'still fraud' } })
  t.equal(engine.getState(key)?.reason, 'still fraud', 'base is compared as canonical JSON, whatever the key order')

  const stale = await engine.applyRemoteUpdate(key, { base: first, next: { ...first, status: 'maintenance' } }).catch((err: unknown) => err)
  t.match(stale, { code: 'WG_ERR_CONFLICT', statusCode: 409, current: { key, status: 'disabled', reason: 'still fraud' } },
    'a stale base is refused with the stored state')
  t.equal(engine.getState(key)?.status, 'disabled', 'and nothing was written')

  const absent = await engine.applyRemoteUpdate('orders-service:GET:/x', { base: routeState('orders-service:GET:/x'), next: routeState('orders-service:GET:/x') })
    .catch((err: unknown) => err)
  t.match(absent, { code: 'WG_ERR_CONFLICT', current: null }, 'a base for a state that is not stored is a conflict with current null')

  await t.rejects(engine.applyRemoteUpdate(key, { base: null, next: routeState('GET:/other') }), { code: 'WG_ERR_INPUT_INVALID' },
    'next must be the state of the key')

  const delivered = await receiver.waitFor(2)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(receiver.received.length, 2, 'the webhooks heard of the two writes with an audit entry, once each')
  t.match(delivered.map(r => r.json), [{ event: 'enable', key, state: { status: 'active' } }, { event: 'disable', key, actor: 'payments-service', state: { status: 'disabled' } }])
})

t.test('applyRemoteGlobal compares and sets global maintenance', async t => {
  const { engine } = await setup(t)
  const on = { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade', since: '2030-01-01T00:00:00.000Z' }
  t.same(await engine.applyRemoteGlobal({ base: null, next: on, audit: auditEntry('g1', { key: '*', action: 'global_maintenance_on' }) }), on,
    'base null stands for the default when none is stored')
  t.equal(engine.getGlobal().enabled, true)
  t.match(await engine.applyRemoteGlobal({ base: defaultGlobalMaintenance(), next: defaultGlobalMaintenance() }).catch((err: unknown) => err),
    { code: 'WG_ERR_CONFLICT', current: on })
  await engine.applyRemoteGlobal({ base: on, next: defaultGlobalMaintenance() })
  t.equal(engine.getGlobal().enabled, false)
  t.match((await engine.listAudit({ key: '*' }))[0], { id: 'g1' })
})

t.test('registerRoutes stores states of keys not stored yet and resolves those it added', async t => {
  const { engine } = await setup(t)
  const a = routeState('orders-service:GET:/api/cart', { service: 'orders-service' })
  const b = routeState('orders-service:GET:/api/orders', { service: 'orders-service', status: 'disabled' })
  t.same(await engine.registerRoutes([a, b]), [a.key, b.key])
  t.same(await engine.registerRoutes([{ ...a, status: 'maintenance' }]), [], 'a stored state is never overwritten')
  t.equal(engine.getState(a.key)?.status, 'active')
  t.same(engine.storedSnapshot().routes.map(s => s.key), [a.key, b.key])
})

t.test('events carry revisions; status carries the backend sync status when it has one', async t => {
  const sync: SyncStatus = {
    state: 'connected',
    source: 'server',
    revision: 7,
    epoch: 'e1',
    lastSync: '2030-01-01T00:00:00.000Z',
    staleSeconds: null,
    reconnects: 0,
    serverUrl: 'http://127.0.0.1:8001',
    service: 'payments-service'
  }
  const backend: WaygateBackend = { ...createMemoryBackend(), kind: 'remote', syncStatus: () => sync }
  const { engine, events } = await setup(t, { backend })
  t.same((await engine.status()).sync, sync)
  const { engine: plain } = await setup(t)
  t.notOk('sync' in await plain.status(), 'absent for a storage backend')

  engine.declareRoute('GET', '/a', { maintenance: { start: '2030-01-01T01:00:00.000Z', end: '2030-01-01T02:00:00.000Z' } })
  await engine.registerDeclaredRoutes()
  await engine.enableGlobalMaintenance()
  await engine.backend.putRecord('ns', 'id', 1)
  await engine.backend.deleteRoute('GET:/a')
  const ordered = events.filter((e): e is Extract<EngineEvent, { revision: number | null }> => 'revision' in e)
  t.same(ordered.map(e => [e.type, e.revision]), [['route_changed', 1], ['global_changed', 2], ['record_changed', 3], ['route_removed', 4]])
  t.match(ordered[0], { stored: { window: { start: '2030-01-01T01:00:00.000Z' } } }, 'stored is the state as stored')
  t.equal(engine.revision, 4)
})
