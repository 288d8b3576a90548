import type { AuditEntry, GlobalMaintenance, RouteState } from '../models.js'
import { routeState as buildRouteState } from './builders.js'
import { defaultGlobalMaintenance } from '../models.js'
import type { BackendChange, BackendRecord, BackendSnapshot, Update, WaygateBackend } from '../backends/types.js'
import { createEngine } from '../engine.js'

/**
 * The part of a test object the contract uses. tap's `Test` satisfies it; so does any runner
 * with the same assertions, since the contract imports no test framework.
 */
export interface BackendContractTest {
  test (name: string, fn: (t: BackendContractTest) => Promise<void>): PromiseLike<unknown>
  equal (found: unknown, wanted: unknown, ...message: [] | [string]): unknown
  same (found: unknown, wanted: unknown, ...message: [] | [string]): unknown
  match (found: unknown, wanted: unknown, ...message: [] | [string]): unknown
  ok (value: unknown, ...message: [] | [string]): unknown
  /** Runs `fn` when the test ends, whatever its outcome. */
  teardown (fn: () => unknown): unknown
}

/** Options the contract passes to `create`; a backend must honour them. */
export interface BackendContractCreateOptions {
  /** How many audit entries the backend keeps. Absent: the backend's default. */
  maxAuditEntries?: number
  /** The clock records expire by, epoch ms. Absent: real time (`Date.now`). */
  now?: () => number
}

/** Options of {@link backendContract}. */
export interface BackendContractOptions {
  /** Names the group of tests, e.g. `'file backend'`. */
  name: string
  /**
   * Returns a new backend over empty storage, each call its own. The contract calls `init()` if
   * the backend has one and closes the backend when the test ends.
   */
  create: (options: BackendContractCreateOptions) => Promise<WaygateBackend> | WaygateBackend
  /** How long to wait for something a backend delivers asynchronously. Default 2000 ms. */
  changeTimeoutMs?: number
  /**
   * The backend keeps revisions: every stored change of a route, global maintenance or a record
   * carries the next value of a counter that only grows, and `load()` reports the revision it
   * read at (and an epoch), so an engine never rolls back a change. Runs the ordering tests,
   * an engine over the backend included. Default false: a backend without revisions still works,
   * with the engine applying every change as it comes.
   */
  revisions?: boolean
}

const BASE_TIME = Date.parse('2025-03-01T12:00:00.000Z')
/** An expiry that real time does not reach while the tests run. */
const FAR_FUTURE = Date.parse('2100-01-01T00:00:00.000Z')

function at (minutes: number): string {
  return new Date(BASE_TIME + minutes * 60_000).toISOString()
}

function routeState (key: string, fields: Partial<RouteState> = {}): RouteState {
  return buildRouteState(key, { updatedAt: at(0), updatedBy: 'contract', ...fields })
}

function auditEntry (id: string, fields: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id,
    timestamp: at(0),
    key: 'GET:/contract',
    service: null,
    action: 'disable',
    actor: 'alice',
    platform: 'api',
    reason: '',
    previousStatus: 'active',
    newStatus: 'disabled',
    ...fields
  }
}

function ids (entries: readonly AuditEntry[]): string[] {
  return entries.map(e => e.id)
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** A clock the tests move by hand, so expiry is tested without sleeping. */
function manualClock (start = BASE_TIME): { now: () => number, set: (to: number) => void } {
  let time = start
  return { now: () => time, set: to => { time = to } }
}

/**
 * What a call rejects with, undefined when it resolves. A synchronous throw is reported as a
 * failure of its own: callers chain `.catch()` on what a backend returns.
 */
async function rejection (call: () => Promise<unknown>): Promise<unknown> {
  let pending: Promise<unknown>
  try {
    pending = call()
  } catch (err) {
    return new Error(`threw synchronously instead of rejecting: ${String(err)}`)
  }
  try {
    await pending
  } catch (err) {
    return err
  }
  return undefined
}

function recordIds (records: readonly BackendRecord[]): string[] {
  return records.map(r => r.id)
}

/** A change without its revision, for comparing what was announced whatever the backend counts. */
function withoutRevision (change: BackendChange): BackendChange {
  if (!('revision' in change)) return change
  const { revision: _revision, ...rest } = change
  return rest as BackendChange
}

/** The revision of a change, or undefined when it has none. */
function revisionOf (change: BackendChange): number | undefined {
  return 'revision' in change ? change.revision : undefined
}

/**
 * The behaviour every {@link WaygateBackend} must have, as a tap-style test suite: run it against
 * a custom backend to check that the engine can rely on it.
 *
 * ```ts
 * import t from 'tap'
 * import { backendContract } from '@waygate/core/testing'
 * backendContract(t, { name: 'my backend', create: options => createMyBackend(options) })
 * ```
 */
export function backendContract (t: BackendContractTest, options: BackendContractOptions): PromiseLike<unknown> {
  const changeTimeoutMs = options.changeTimeoutMs ?? 2000

  async function open (t: BackendContractTest, createOptions: BackendContractCreateOptions = {}): Promise<WaygateBackend> {
    const backend = await options.create(createOptions)
    t.teardown(() => backend.close())
    await backend.init?.()
    return backend
  }

  async function waitFor (condition: () => boolean): Promise<boolean> {
    const deadline = Date.now() + changeTimeoutMs
    while (!condition()) {
      if (Date.now() >= deadline) return false
      await sleep(10)
    }
    return true
  }

  /**
   * Follows the changes a backend announces, without their revisions (tested on their own) and
   * without reload requests, which a backend may send at any time.
   */
  function record (backend: WaygateBackend): { changes: BackendChange[], stop: () => void } {
    const changes: BackendChange[] = []
    const stop = backend.subscribe(change => { if (change.type !== 'resync') changes.push(withoutRevision(change)) })
    return { changes, stop }
  }

  function set (state: RouteState, audit?: AuditEntry) {
    return (): Update<RouteState> => audit === undefined ? { next: state } : { next: state, audit }
  }

  return t.test(options.name, async t => {
    t.test('load() of an empty store has no routes and no global maintenance', async t => {
      const backend = await open(t)
      const snapshot = await backend.load()
      t.same(snapshot.routes, [])
      t.same(snapshot.global ?? defaultGlobalMaintenance(), defaultGlobalMaintenance(), 'global is null or the default')
      t.equal(await backend.getRoute('GET:/missing'), null)
      t.same(await backend.listAudit(), [])
    })

    t.test('updateRoute creates a state, resolves it and records its audit entry', async t => {
      const backend = await open(t)
      const state = routeState('GET:/users', { status: 'disabled', reason: 'migration' })
      const entry = auditEntry('a1', { key: 'GET:/users' })
      let seen: RouteState | null | undefined
      const stored = await backend.updateRoute('GET:/users', current => {
        seen = current
        return { next: state, audit: entry }
      })
      t.equal(seen, null, 'the updater sees no current state')
      t.same(stored, state, 'resolves the stored state')
      t.same(await backend.getRoute('GET:/users'), state)
      t.same((await backend.load()).routes, [state])
      t.same(await backend.listAudit(), [entry], 'the audit entry was written with the state')
    })

    t.test('updateRoute hands the stored state to the updater and replaces it', async t => {
      const backend = await open(t)
      const first = routeState('POST:/orders', { status: 'maintenance', reason: 'one' })
      await backend.updateRoute('POST:/orders', set(first, auditEntry('b1', { key: 'POST:/orders' })))
      let seen: RouteState | null | undefined
      const second = routeState('POST:/orders', { status: 'active', reason: 'two', updatedBy: 'bob' })
      const stored = await backend.updateRoute('POST:/orders', current => {
        seen = current
        return { next: second, audit: auditEntry('b2', { key: 'POST:/orders', action: 'enable' }) }
      })
      t.same(seen, first, 'the updater sees the stored state')
      t.same(stored, second)
      t.same(await backend.getRoute('POST:/orders'), second)
      t.same(ids(await backend.listAudit()), ['b2', 'b1'], 'newest entry first')
    })

    t.test('an updater returning undefined writes nothing and records no audit', async t => {
      const backend = await open(t)
      const state = routeState('GET:/a', { reason: 'kept' })
      await backend.updateRoute('GET:/a', set(state))
      const { changes } = record(backend)
      t.same(await backend.updateRoute('GET:/a', () => undefined), state, 'resolves the unchanged state')
      t.equal(await backend.updateRoute('GET:/none', () => undefined), null, 'resolves null for a missing key')
      t.same(await backend.getRoute('GET:/a'), state)
      t.equal(await backend.getRoute('GET:/none'), null, 'no state was created')
      t.same(await backend.listAudit(), [])
      await sleep(50)
      t.same(changes, [], 'no change announced')
    })

    t.test('an updater that throws rejects with its error and writes nothing', async t => {
      const backend = await open(t)
      const state = routeState('GET:/a', { reason: 'kept' })
      await backend.updateRoute('GET:/a', set(state))
      const boom = new Error('updater refused')
      for (const key of ['GET:/a', 'GET:/none']) {
        let caught: unknown
        try {
          await backend.updateRoute(key, () => { throw boom })
        } catch (err) {
          caught = err
        }
        t.equal(caught, boom, `rejects with the updater's own error (${key})`)
      }
      const globalBoom = new Error('global updater refused')
      let caught: unknown
      try {
        await backend.updateGlobal(() => { throw globalBoom })
      } catch (err) {
        caught = err
      }
      t.equal(caught, globalBoom, 'updateGlobal rejects with the updater\'s own error')
      t.same(await backend.getRoute('GET:/a'), state)
      t.equal(await backend.getRoute('GET:/none'), null)
      t.same((await backend.load()).global ?? defaultGlobalMaintenance(), defaultGlobalMaintenance())
      t.same(await backend.listAudit(), [])
    })

    t.test('registerRoutes adds missing states only and resolves the keys it added', async t => {
      const backend = await open(t)
      const existing = routeState('GET:/a', { status: 'disabled', reason: 'set by an operator' })
      await backend.updateRoute('GET:/a', set(existing))
      const added = await backend.registerRoutes([
        routeState('GET:/a'),
        routeState('GET:/b'),
        routeState('/c', { status: 'maintenance' })
      ])
      t.same([...added].sort(), ['/c', 'GET:/b'])
      t.same(await backend.getRoute('GET:/a'), existing, 'a stored state is never overwritten')
      t.same(await backend.getRoute('GET:/b'), routeState('GET:/b'))
      t.same(await backend.getRoute('/c'), routeState('/c', { status: 'maintenance' }))
      t.same(await backend.registerRoutes([routeState('GET:/b', { status: 'disabled' })]), [], 'nothing added the second time')
      t.same(await backend.getRoute('GET:/b'), routeState('GET:/b'))
      t.equal((await backend.load()).routes.length, 3)
    })

    t.test('deleteRoute removes a state and tells whether it existed', async t => {
      const backend = await open(t)
      await backend.registerRoutes([routeState('GET:/a'), routeState('GET:/b')])
      t.equal(await backend.deleteRoute('GET:/a'), true)
      t.equal(await backend.deleteRoute('GET:/a'), false, 'already gone')
      t.equal(await backend.deleteRoute('GET:/never'), false)
      t.equal(await backend.getRoute('GET:/a'), null)
      t.same((await backend.load()).routes, [routeState('GET:/b')], 'other states are kept')
    })

    t.test('updateGlobal starts from the default and stores what the updater returns', async t => {
      const backend = await open(t)
      let seen: GlobalMaintenance | undefined
      t.same(await backend.updateGlobal(current => { seen = current; return undefined }), defaultGlobalMaintenance())
      t.same(seen, defaultGlobalMaintenance(), 'the updater sees the default before any write')
      const on: GlobalMaintenance = { enabled: true, reason: 'upgrade', exemptPaths: ['/health', 'GET:/status'], includeForceActive: false, since: at(5) }
      const entry = auditEntry('g1', { key: '*', action: 'global_maintenance_on', previousStatus: 'active', newStatus: 'maintenance' })
      t.same(await backend.updateGlobal(() => ({ next: on, audit: entry })), on, 'resolves the stored value')
      t.same((await backend.load()).global, on)
      t.same(await backend.listAudit(), [entry])
      const off = { ...on, enabled: false, since: null }
      t.same(await backend.updateGlobal(current => {
        seen = current
        return { next: off }
      }), off)
      t.same(seen, on, 'the updater sees the stored value')
      t.same((await backend.load()).global, off)
      t.same(await backend.updateGlobal(() => undefined), off, 'undefined keeps the stored value')
      t.equal((await backend.listAudit()).length, 1, 'no audit without an entry')
    })

    t.test('appendAudit refuses a second entry with the same id', async t => {
      const backend = await open(t)
      const entry = auditEntry('dup', { reason: 'first' })
      t.equal(await backend.appendAudit(entry), true)
      t.equal(await backend.appendAudit({ ...entry, reason: 'second' }), false, 'resolves false on a duplicate id')
      t.equal(await backend.appendAudit(auditEntry('other')), true)
      t.same(await backend.listAudit(), [auditEntry('other'), entry], 'the first entry is kept, once')
    })

    t.test('listAudit returns entries newest first and applies every filter', async t => {
      const backend = await open(t)
      const entries = [
        auditEntry('e1', { timestamp: at(1), key: 'GET:/a', action: 'disable', actor: 'alice' }),
        auditEntry('e2', { timestamp: at(2), key: 'GET:/b', action: 'enable', actor: 'bob', service: 'billing' }),
        auditEntry('e3', { timestamp: at(3), key: 'GET:/a', action: 'maintenance_on', actor: 'bob' }),
        auditEntry('e4', { timestamp: at(4), key: '*', action: 'global_maintenance_on', actor: 'alice' }),
        auditEntry('e5', { timestamp: at(5), key: 'GET:/a', action: 'enable', actor: 'carol', service: 'billing' }),
        auditEntry('e6', { timestamp: at(6), key: 'GET:/b', action: 'disable', actor: 'alice' })
      ]
      for (const entry of entries) await backend.appendAudit(entry)
      t.same(ids(await backend.listAudit()), ['e6', 'e5', 'e4', 'e3', 'e2', 'e1'])
      t.same(await backend.listAudit({ key: 'GET:/a' }), [entries[4], entries[2], entries[0]], 'by key, whole entries')
      t.same(ids(await backend.listAudit({ service: 'billing' })), ['e5', 'e2'], 'by service')
      t.same(ids(await backend.listAudit({ action: 'enable' })), ['e5', 'e2'], 'by action')
      t.same(ids(await backend.listAudit({ actor: 'alice' })), ['e6', 'e4', 'e1'], 'by actor')
      t.same(ids(await backend.listAudit({ since: at(4) })), ['e6', 'e5', 'e4'], 'since is inclusive')
      t.same(ids(await backend.listAudit({ until: at(3) })), ['e2', 'e1'], 'until is exclusive')
      t.same(ids(await backend.listAudit({ since: at(2), until: at(5) })), ['e4', 'e3', 'e2'])
      t.same(ids(await backend.listAudit({ before: 'e4' })), ['e3', 'e2', 'e1'], 'before: older than the cursor')
      t.same(ids(await backend.listAudit({ limit: 2 })), ['e6', 'e5'], 'limit')
      t.same(ids(await backend.listAudit({ key: 'GET:/a', actor: 'bob' })), ['e3'], 'filters combine')
      const pages: string[][] = []
      let before: string | undefined
      for (;;) {
        const page = await backend.listAudit(before === undefined ? { limit: 4 } : { limit: 4, before })
        if (page.length === 0) break
        pages.push(ids(page))
        before = page[page.length - 1]!.id
      }
      t.same(pages, [['e6', 'e5', 'e4', 'e3'], ['e2', 'e1']], 'pages with before + limit')
    })

    t.test('listAudit returns 100 entries unless asked for more', async t => {
      const backend = await open(t)
      for (let i = 1; i <= 105; i++) await backend.appendAudit(auditEntry(`n${i}`, { timestamp: at(i) }))
      const page = await backend.listAudit()
      t.equal(page.length, 100)
      t.equal(page[0]?.id, 'n105')
      t.equal((await backend.listAudit({ limit: 500 })).length, 105)
    })

    t.test('the audit trail keeps the newest maxAuditEntries entries', async t => {
      const backend = await open(t, { maxAuditEntries: 5 })
      for (let i = 1; i <= 6; i++) await backend.appendAudit(auditEntry(`c${i}`, { timestamp: at(i) }))
      await backend.updateRoute('GET:/a', set(routeState('GET:/a'), auditEntry('c7', { timestamp: at(7) })))
      await backend.updateGlobal(() => ({ next: defaultGlobalMaintenance(), audit: auditEntry('c8', { timestamp: at(8), key: '*' }) }))
      t.same(ids(await backend.listAudit({ limit: 100 })), ['c8', 'c7', 'c6', 'c5', 'c4'])
    })

    t.test('values are copies: changing what goes in or comes out does not change the store', async t => {
      const backend = await open(t)
      const input = routeState('GET:/a', { allowedEnvs: ['prod'] })
      await backend.registerRoutes([input])
      input.allowedEnvs.push('dev')
      input.reason = 'changed after registerRoutes'
      const next = routeState('GET:/b', { allowedEnvs: ['prod'] })
      const entry = auditEntry('x1', { reason: 'original' })
      const stored = await backend.updateRoute('GET:/b', () => ({ next, audit: entry }))
      next.reason = 'changed after updateRoute'
      entry.reason = 'changed after updateRoute'
      stored!.allowedEnvs.push('out')
      const loose = auditEntry('x2', { reason: 'original' })
      await backend.appendAudit(loose)
      loose.reason = 'changed after appendAudit'
      const global = await backend.updateGlobal(() => ({ next: { ...defaultGlobalMaintenance(), exemptPaths: ['/health'] } }))
      global.exemptPaths.push('/mutated')

      const got = await backend.getRoute('GET:/a')
      got!.reason = 'mutated result'
      const snapshot = await backend.load()
      for (const state of snapshot.routes) state.allowedEnvs.push('mutated')
      snapshot.global!.exemptPaths.push('/mutated')
      const listed = await backend.listAudit()
      for (const e of listed) e.reason = 'mutated'
      await backend.updateRoute('GET:/a', current => {
        current!.reason = 'mutated inside an updater that changes nothing'
        return undefined
      })

      t.same(await backend.getRoute('GET:/a'), routeState('GET:/a', { allowedEnvs: ['prod'] }))
      t.same(await backend.getRoute('GET:/b'), routeState('GET:/b', { allowedEnvs: ['prod'] }))
      t.same((await backend.load()).global, { ...defaultGlobalMaintenance(), exemptPaths: ['/health'] })
      t.same((await backend.listAudit()).map(e => e.reason), ['original', 'original'])
    })

    t.test('putRecord stores records that getRecord and listRecords return', async t => {
      const backend = await open(t)
      const token = { jti: 'abc', revokedBy: 'alice', scopes: ['admin', 'read'], meta: { n: 1.5, ok: true, none: null } }
      t.equal(await backend.putRecord('tokens', 'b', token), undefined, 'resolves nothing')
      await backend.putRecord('tokens', 'a', 'plain text', { expiresAt: FAR_FUTURE })
      await backend.putRecord('tokens', 'B', null)
      await backend.putRecord('tokens', '__proto__', [1, 'two', false])
      t.same(await backend.getRecord('tokens', 'b'), { id: 'b', value: token, expiresAt: null }, 'no expiresAt: null')
      t.same(await backend.getRecord('tokens', 'a'), { id: 'a', value: 'plain text', expiresAt: FAR_FUTURE })
      t.same(await backend.getRecord('tokens', 'B'), { id: 'B', value: null, expiresAt: null }, 'a null value is a record, not a missing one')
      t.same(await backend.getRecord('tokens', '__proto__'), { id: '__proto__', value: [1, 'two', false], expiresAt: null }, 'any id is data, even __proto__')
      t.equal(await backend.getRecord('tokens', 'missing'), null)
      t.equal(await backend.getRecord('other', 'b'), null)
      t.same(recordIds(await backend.listRecords('tokens')), ['B', '__proto__', 'a', 'b'], 'sorted by id in code unit order')
      t.same((await backend.listRecords('tokens'))[3], { id: 'b', value: token, expiresAt: null }, 'whole records')
      t.same(await backend.listRecords('empty'), [])
      await backend.putRecord('tokens', 'past', 1, { expiresAt: Date.now() - 60_000 })
      t.equal(await backend.getRecord('tokens', 'past'), null, 'without a clock given, real time decides expiry')
      const longest = 'n'.repeat(200)
      await backend.putRecord(longest, longest, 0)
      t.same(await backend.getRecord(longest, longest), { id: longest, value: 0, expiresAt: null }, '200 characters are allowed')
    })

    t.test('putRecord replaces a record, value and expiry', async t => {
      const backend = await open(t)
      await backend.putRecord('policies', 'p1', { limit: 10 }, { expiresAt: FAR_FUTURE })
      t.same(await backend.getRecord('policies', 'p1'), { id: 'p1', value: { limit: 10 }, expiresAt: FAR_FUTURE })
      await backend.putRecord('policies', 'p1', { limit: 20 })
      t.same(await backend.getRecord('policies', 'p1'), { id: 'p1', value: { limit: 20 }, expiresAt: null }, 'a put without expiresAt keeps the record for good')
      await backend.putRecord('policies', 'p1', { limit: 30 }, { expiresAt: FAR_FUTURE + 1 })
      t.same(await backend.listRecords('policies'), [{ id: 'p1', value: { limit: 30 }, expiresAt: FAR_FUTURE + 1 }], 'one record per id')
    })

    t.test('deleteRecord removes a record and tells whether it existed', async t => {
      const backend = await open(t)
      await backend.putRecord('tokens', 'a', 1)
      await backend.putRecord('tokens', 'b', 2)
      t.equal(await backend.deleteRecord('tokens', 'a'), true)
      t.equal(await backend.deleteRecord('tokens', 'a'), false, 'already gone')
      t.equal(await backend.deleteRecord('tokens', 'never'), false)
      t.equal(await backend.deleteRecord('nowhere', 'b'), false)
      t.equal(await backend.getRecord('tokens', 'a'), null)
      t.same(await backend.listRecords('tokens'), [{ id: 'b', value: 2, expiresAt: null }], 'other records are kept')
      await backend.putRecord('tokens', 'a', 'again')
      t.same(await backend.getRecord('tokens', 'a'), { id: 'a', value: 'again', expiresAt: null }, 'a deleted id can be stored again')
    })

    t.test('namespaces are isolated, whatever characters they hold', async t => {
      const backend = await open(t)
      await backend.putRecord('a', 'x', 'in a')
      await backend.putRecord('b', 'x', 'in b')
      // a backend joining namespace and id into one key must not confuse these
      await backend.putRecord('a:b', 'c', 'in a:b')
      await backend.putRecord('a', 'b:c', 'in a, id b:c')
      await backend.putRecord('a/b', 'c', 'in a/b')
      await backend.putRecord('a*', 'y', 'in a*')
      t.same(await backend.listRecords('a'), [
        { id: 'b:c', value: 'in a, id b:c', expiresAt: null },
        { id: 'x', value: 'in a', expiresAt: null }
      ], 'only the namespace\'s own records, none of a namespace it prefixes')
      t.same(await backend.listRecords('a:b'), [{ id: 'c', value: 'in a:b', expiresAt: null }])
      t.same(await backend.getRecord('a:b', 'c'), { id: 'c', value: 'in a:b', expiresAt: null })
      t.same(await backend.getRecord('a', 'b:c'), { id: 'b:c', value: 'in a, id b:c', expiresAt: null })
      t.equal(await backend.deleteRecord('a', 'x'), true)
      t.same(await backend.getRecord('b', 'x'), { id: 'x', value: 'in b', expiresAt: null }, 'deleting in one namespace leaves the same id in another')
      t.same(recordIds(await backend.listRecords('a*')), ['y'])
      t.same(recordIds(await backend.listRecords('a/b')), ['c'])
    })

    t.test('a record is gone from its expiresAt on, by the clock the backend was given', async t => {
      const clock = manualClock()
      const backend = await open(t, { now: clock.now })
      await backend.putRecord('tokens', 'short', 'soon gone', { expiresAt: BASE_TIME + 1000 })
      await backend.putRecord('tokens', 'kept', 'for good')
      clock.set(BASE_TIME + 999)
      t.same(await backend.getRecord('tokens', 'short'), { id: 'short', value: 'soon gone', expiresAt: BASE_TIME + 1000 }, 'there until the last millisecond')
      t.same(recordIds(await backend.listRecords('tokens')), ['kept', 'short'])
      clock.set(BASE_TIME + 1000)
      t.equal(await backend.getRecord('tokens', 'short'), null, 'gone at expiresAt')
      t.same(recordIds(await backend.listRecords('tokens')), ['kept'], 'not listed')
      t.equal(await backend.deleteRecord('tokens', 'short'), false, 'an expired record does not exist')

      clock.set(BASE_TIME + 5000)
      await backend.putRecord('tokens', 'short', 'fresh', { expiresAt: BASE_TIME + 6000 })
      t.same(await backend.getRecord('tokens', 'short'), { id: 'short', value: 'fresh', expiresAt: BASE_TIME + 6000 }, 'an expired id can be stored again')
      await backend.putRecord('tokens', 'short', 'already over', { expiresAt: BASE_TIME + 5000 })
      t.equal(await backend.getRecord('tokens', 'short'), null, 'a put that has already expired removes the record')
      await backend.putRecord('tokens', 'never', 'already over', { expiresAt: BASE_TIME })
      t.equal(await backend.getRecord('tokens', 'never'), null, 'and stores nothing')
      t.same(recordIds(await backend.listRecords('tokens')), ['kept'])
    })

    t.test('record values are copies: changing what goes in or comes out does not change the store', async t => {
      const backend = await open(t)
      const { changes } = record(backend)
      const value = { scopes: ['read'], nested: { level: 1 } }
      await backend.putRecord('tokens', 'a', value)
      value.scopes.push('changed after putRecord')
      value.nested.level = 2
      const got = await backend.getRecord('tokens', 'a')
      ;(got!.value as { scopes: string[] }).scopes.push('mutated result')
      const listed = await backend.listRecords('tokens')
      ;(listed[0]!.value as { nested: { level: number } }).nested.level = 3
      for (const change of changes) {
        if (change.type === 'record' && change.record !== null) (change.record.value as { scopes: string[] }).scopes.push('mutated event')
      }
      t.same(await backend.getRecord('tokens', 'a'), { id: 'a', value: { scopes: ['read'], nested: { level: 1 } }, expiresAt: null })
    })

    t.test('invalid record input rejects with WG_ERR_INPUT_INVALID and stores nothing', async t => {
      const backend = await open(t)
      const badKeys: Array<[unknown, string]> = [
        ['', 'an empty string'],
        ['x'.repeat(201), '201 characters'],
        [42, 'a number'],
        [null, 'null'],
        [undefined, 'undefined']
      ]
      for (const [bad, what] of badKeys) {
        const key = bad as string
        for (const [name, call] of [
          ['putRecord namespace', () => backend.putRecord(key, 'id', 1)],
          ['putRecord id', () => backend.putRecord('ns', key, 1)],
          ['getRecord namespace', () => backend.getRecord(key, 'id')],
          ['getRecord id', () => backend.getRecord('ns', key)],
          ['listRecords namespace', () => backend.listRecords(key)],
          ['deleteRecord namespace', () => backend.deleteRecord(key, 'id')],
          ['deleteRecord id', () => backend.deleteRecord('ns', key)]
        ] as Array<[string, () => Promise<unknown>]>) {
          t.match(await rejection(call), { code: 'WG_ERR_INPUT_INVALID' }, `${name}: ${what}`)
        }
      }
      const cycle: Record<string, unknown> = { a: 1 }
      cycle.self = cycle
      const badValues: Array<[unknown, string]> = [
        [() => 1, 'a function'],
        [undefined, 'undefined'],
        [10n, 'a BigInt'],
        [Symbol('s'), 'a symbol'],
        [Number.NaN, 'NaN'],
        [Number.POSITIVE_INFINITY, 'Infinity'],
        [new Date(BASE_TIME), 'a Date (JSON gives back a string)'],
        [new Map([['a', 1]]), 'a Map (JSON gives back {})'],
        [{ ok: true, nested: { fn: () => 1 } }, 'a function deep inside'],
        [{ gone: undefined }, 'an undefined property (JSON drops it)'],
        [[1, undefined], 'undefined in an array (JSON gives back null)'],
        [{ big: [1n] }, 'a BigInt deep inside'],
        [cycle, 'a cycle']
      ]
      for (const [value, what] of badValues) {
        t.match(await rejection(() => backend.putRecord('ns', 'id', value)), { code: 'WG_ERR_INPUT_INVALID' }, `value: ${what}`)
      }
      const badOptions: Array<[unknown, string]> = [
        [{ expiresAt: Number.NaN }, 'expiresAt NaN'],
        [{ expiresAt: Number.POSITIVE_INFINITY }, 'expiresAt Infinity'],
        [{ expiresAt: '2030-01-01' }, 'expiresAt a string'],
        [{ expiresAt: null }, 'expiresAt null'],
        ['soon', 'options a string']
      ]
      for (const [options, what] of badOptions) {
        t.match(await rejection(() => backend.putRecord('ns', 'id', 1, options as { expiresAt?: number })), { code: 'WG_ERR_INPUT_INVALID' }, what)
      }
      t.same(await backend.listRecords('ns'), [], 'nothing was stored')
    })

    t.test('record changes are announced before the write resolves', async t => {
      const clock = manualClock()
      const backend = await open(t, { now: clock.now })
      const { changes, stop } = record(backend)
      await backend.putRecord('tokens', 'a', { by: 'alice' }, { expiresAt: BASE_TIME + 1000 })
      t.same(changes, [{ type: 'record', namespace: 'tokens', id: 'a', record: { id: 'a', value: { by: 'alice' }, expiresAt: BASE_TIME + 1000 } }])

      changes.length = 0
      await backend.putRecord('tokens', 'a', { by: 'bob' })
      t.same(changes, [{ type: 'record', namespace: 'tokens', id: 'a', record: { id: 'a', value: { by: 'bob' }, expiresAt: null } }], 'a replaced record')

      changes.length = 0
      t.equal(await backend.deleteRecord('tokens', 'a'), true)
      t.equal(await backend.deleteRecord('tokens', 'a'), false)
      t.same(changes, [{ type: 'record', namespace: 'tokens', id: 'a', record: null }], 'a deletion, once')

      changes.length = 0
      await backend.putRecord('tokens', 'b', 1)
      await backend.putRecord('tokens', 'b', 2, { expiresAt: BASE_TIME })
      t.same(changes, [
        { type: 'record', namespace: 'tokens', id: 'b', record: { id: 'b', value: 1, expiresAt: null } },
        { type: 'record', namespace: 'tokens', id: 'b', record: null }
      ], 'a put that has already expired announces the removal')

      changes.length = 0
      await backend.putRecord('tokens', 'c', 1, { expiresAt: BASE_TIME - 1 })
      await backend.putRecord('tokens', 'd', 1, { expiresAt: BASE_TIME + 10 })
      clock.set(BASE_TIME + 10)
      t.equal(await backend.deleteRecord('tokens', 'd'), false)
      await backend.putRecord('tokens', 'e', 1)
      t.same(changes, [
        { type: 'record', namespace: 'tokens', id: 'd', record: { id: 'd', value: 1, expiresAt: BASE_TIME + 10 } },
        { type: 'record', namespace: 'tokens', id: 'e', record: { id: 'e', value: 1, expiresAt: null } }
      ], 'storing nothing announces nothing, and neither does expiry')

      stop()
      changes.length = 0
      await backend.putRecord('tokens', 'f', 1)
      await backend.deleteRecord('tokens', 'f')
      await sleep(100)
      t.same(changes, [], 'nothing arrives after unsubscribe')
    })

    t.test('subscribe announces this instance\'s changes before the write resolves', async t => {
      const backend = await open(t)
      const { changes, stop } = record(backend)
      const state = routeState('GET:/a', { status: 'disabled' })
      const entry = auditEntry('s1', { key: 'GET:/a' })
      await backend.updateRoute('GET:/a', set(state, entry))
      t.same(changes, [{ type: 'route', state }, { type: 'audit', entry }],
        'route and audit changes arrive before updateRoute resolves (the engine reads its snapshot right after)')

      changes.length = 0
      const on = { ...defaultGlobalMaintenance(), enabled: true, reason: 'upgrade' }
      const globalEntry = auditEntry('s2', { key: '*', action: 'global_maintenance_on' })
      await backend.updateGlobal(() => ({ next: on, audit: globalEntry }))
      t.same(changes, [{ type: 'global', global: on }, { type: 'audit', entry: globalEntry }])

      changes.length = 0
      const loose = auditEntry('s3')
      await backend.appendAudit(loose)
      await backend.appendAudit(loose)
      t.same(changes, [{ type: 'audit', entry: loose }], 'a refused duplicate is not announced')

      changes.length = 0
      await backend.registerRoutes([routeState('GET:/a'), routeState('GET:/b')])
      t.same(changes, [{ type: 'route', state: routeState('GET:/b') }], 'only added states are announced')

      changes.length = 0
      await backend.deleteRoute('GET:/b')
      await backend.deleteRoute('GET:/b')
      t.same(changes, [{ type: 'route_deleted', key: 'GET:/b' }])

      stop()
      changes.length = 0
      await backend.updateRoute('GET:/a', set(routeState('GET:/a'), auditEntry('s4')))
      await backend.updateGlobal(() => ({ next: defaultGlobalMaintenance() }))
      await sleep(100)
      t.same(changes, [], 'nothing arrives after unsubscribe')
    })

    t.test('a listener that throws does not stop other listeners or fail the write', async t => {
      const backend = await open(t)
      backend.subscribe(() => { throw new Error('listener bug') })
      const { changes } = record(backend)
      const state = routeState('GET:/a')
      t.same(await backend.updateRoute('GET:/a', set(state)), state)
      t.ok(await waitFor(() => changes.length > 0), 'the other listener got the change')
      t.same(changes, [{ type: 'route', state }])
    })

    t.test('50 concurrent updates of one route lose nothing', async t => {
      const backend = await open(t)
      const key = 'GET:/counter'
      await Promise.all(Array.from({ length: 50 }, (_, i) => backend.updateRoute(key, current => {
        const count = Number(current?.reason ?? '0') + 1
        return {
          next: routeState(key, { reason: String(count) }),
          audit: auditEntry(`inc-${i}`, { key, reason: String(count) })
        }
      })))
      t.equal((await backend.getRoute(key))?.reason, '50')
      const trail = await backend.listAudit({ key, limit: 1000 })
      t.equal(trail.length, 50, 'one audit entry per update')
      t.same(trail.map(e => e.reason), Array.from({ length: 50 }, (_, i) => String(50 - i)), 'each entry recorded with its own update')
    })

    if (options.revisions === true) {
      t.test('revisions: every stored change takes a higher revision, and load() reports the last', async t => {
        const clock = manualClock()
        const backend = await open(t, { now: clock.now })
        const revisions: Array<number | undefined> = []
        backend.subscribe(change => {
          if (change.type !== 'audit' && change.type !== 'resync') revisions.push(revisionOf(change))
        })
        const start = (await backend.load()).revision
        t.equal(typeof start, 'number', 'load() reports a revision, even of an empty store')
        await backend.updateRoute('GET:/a', set(routeState('GET:/a', { status: 'disabled' }), auditEntry('v1')))
        await backend.registerRoutes([routeState('GET:/b'), routeState('GET:/c')])
        await backend.updateGlobal(() => ({ next: { ...defaultGlobalMaintenance(), enabled: true } }))
        await backend.deleteRoute('GET:/c')
        await backend.putRecord('ns', 'r', 1)
        await backend.deleteRecord('ns', 'r')
        t.equal(revisions.length, 7, 'one change per route, global and record change')
        t.ok(revisions.every(r => typeof r === 'number' && Number.isInteger(r)), `each carries an integer revision: ${revisions.join(', ')}`)
        const numbers = revisions as number[]
        t.ok(numbers[0]! > start!, 'the first is above the revision of the empty store')
        for (let i = 1; i < numbers.length; i++) {
          t.ok(numbers[i]! >= numbers[i - 1]!, `revision ${numbers[i]} does not go back`)
        }
        t.ok(numbers[6]! > numbers[5]! && numbers[5]! > numbers[4]! && numbers[4]! > numbers[3]! && numbers[3]! > numbers[2]! && numbers[2]! > numbers[0]!,
          'separate writes take separate revisions (changes of one write may share one)')
        const snapshot = await backend.load()
        t.equal(snapshot.revision, numbers[6], 'load() reports the revision of the last change')
        t.equal(typeof snapshot.epoch, 'string', 'and the epoch the revisions count in')
        t.ok((snapshot.epoch ?? '').length > 0)

        const before = snapshot.revision!
        await backend.updateRoute('GET:/a', () => undefined)
        await backend.updateGlobal(() => undefined)
        await backend.registerRoutes([routeState('GET:/a')])
        t.equal(revisions.length, 7, 'a write that stores nothing announces nothing')
        const after = await backend.load()
        t.ok(after.revision! >= before, 'and the revision does not go back')
        t.equal(after.epoch, snapshot.epoch, 'the epoch stays')
      })

      t.test('revisions: a snapshot holds exactly the changes up to its revision', async t => {
        const backend = await open(t)
        let last = 0
        backend.subscribe(change => { last = revisionOf(change) ?? last })
        for (let i = 1; i <= 5; i++) {
          await backend.updateRoute('GET:/a', set(routeState('GET:/a', { reason: String(i) })))
          const snapshot = await backend.load()
          t.equal(snapshot.revision, last, `load ${i} reports the revision of the write before it`)
          t.equal(snapshot.routes.find(s => s.key === 'GET:/a')?.reason, String(i), 'and holds that write')
        }
      })

      t.test('revisions: an engine keeps a change applied while a load() is in flight', async t => {
        const inner = await open(t)
        let gate: Promise<void> | null = null
        let readDone = (): void => {}
        const gated: WaygateBackend = {
          ...inner,
          async load (): Promise<BackendSnapshot> {
            // taken when the load starts: a reload the backend asked for earlier is not held
            const waiting = gate
            gate = null
            const snapshot = await inner.load()
            if (waiting !== null) {
              readDone()
              await waiting
            }
            return snapshot
          },
          // the contract closes the backend itself
          async close () {}
        }
        const engine = createEngine({ backend: gated, resyncIntervalMs: 0 })
        t.teardown(() => engine.close())
        engine.declareRoute('GET', '/a')
        await engine.start()
        await engine.registerDeclaredRoutes()
        let openGate = (): void => {}
        gate = new Promise(resolve => { openGate = resolve })
        const read = new Promise<void>(resolve => { readDone = resolve })
        const reload = engine.resync()
        await read
        await engine.disable('GET:/a', { reason: 'during the load' })
        await engine.enableGlobalMaintenance({ reason: 'during the load' })
        openGate()
        await reload
        t.equal(engine.getState('GET:/a')?.status, 'disabled', 'the reload that read before the change does not roll it back')
        t.equal(engine.getGlobal().enabled, true, 'nor global maintenance')
        await engine.resync()
        t.equal(engine.getState('GET:/a')?.status, 'disabled', 'a later reload agrees')
        t.ok(engine.revision > 0, 'the engine holds the backend revision')
      })
    }

    // a backend with a webhook outbox (optional) stores deliveries with their change and hands each to one claimer at a time
    t.test('outbox (when the backend has one): deliveries are stored with their change, claimed once per lease, completed, failed, dead, retried', async t => {
      const backend = await open(t)
      const outbox = backend.outbox
      if (outbox === undefined) {
        t.ok(true, 'no outbox: the engine delivers from process memory')
        return
      }
      const delivery = (id: string, eventId: string) => ({
        id, eventId, event: 'disable', key: 'GET:/o', webhook: 'contract-hook', target: 'http://127.0.0.1/…', body: '{"event":"disable"}', createdAt: Date.now()
      })
      const first = delivery('a1'.repeat(16), 'outbox-1')
      await backend.updateRoute('GET:/o', () => ({ next: routeState('GET:/o', { status: 'disabled' }), audit: auditEntry('outbox-1', { key: 'GET:/o' }), deliveries: [first] }))
      await backend.updateRoute('GET:/o', () => ({ next: routeState('GET:/o', { status: 'disabled', reason: 'again' }), audit: auditEntry('outbox-1', { key: 'GET:/o' }), deliveries: [delivery('a2'.repeat(16), 'outbox-1')] }))
      await backend.updateRoute('GET:/o', () => undefined)
      t.equal(await outbox.pendingCount(), 1, 'one delivery: none for a known audit id, none for a write that stores nothing')
      t.equal(await backend.appendAudit(auditEntry('outbox-2', { key: 'GET:/o' }), [delivery('b1'.repeat(16), 'outbox-2')]), true)
      t.equal(await outbox.pendingCount(), 2, 'appendAudit stores its deliveries too')
      const now = Date.now()
      const lease = { webhooks: ['contract-hook'], now, leaseUntil: now + 60_000, limit: 1 }
      t.same((await outbox.claim({ ...lease, webhooks: ['another-hook'] })).claims, [], 'only deliveries of the given webhooks are claimed')
      const one = await outbox.claim(lease)
      t.equal(one.claims.length, 1, 'at most limit claims')
      t.match(one.claims[0], { attempts: 1, delivery: { id: first.id, eventId: 'outbox-1', body: first.body } }, 'oldest first, as written')
      const two = await outbox.claim({ ...lease, limit: 10 })
      t.same(two.claims.map(c => c.delivery.id), ['b1'.repeat(16)], 'a claimed delivery is not claimed again within its lease')
      const again = await outbox.claim({ ...lease, now: now + 60_000, leaseUntil: now + 120_000, limit: 10 })
      t.same(again.claims.map(c => [c.delivery.id, c.attempts]).sort(), [[first.id, 2], ['b1'.repeat(16), 2]], 'due again once the lease ended, attempts counted')
      t.equal(await outbox.complete(one.claims[0]!), false, 'a claim that ran out cannot complete')
      const [a, b] = [again.claims.find(c => c.delivery.id === first.id)!, again.claims.find(c => c.delivery.id !== first.id)!]
      t.equal(await outbox.complete(a), true, 'the current claim completes')
      t.equal(await outbox.fail(b, now + 5000, 'answered 503', now), true, 'a failure with a retry time')
      t.same((await outbox.claim({ ...lease, now: now + 4999, limit: 10 })).claims, [], 'not due before its retry time')
      const retry = await outbox.claim({ ...lease, now: now + 5000, limit: 10 })
      t.equal(retry.claims[0]?.attempts, 3, 'due at its retry time')
      t.equal(await outbox.fail(retry.claims[0]!, null, 'answered 410', now + 5000), true, 'a final failure')
      t.equal(await outbox.pendingCount(), 0, 'nothing pending')
      t.match(await outbox.listDead(), [{ attempts: 3, lastError: 'answered 410', failedAt: now + 5000, delivery: { id: 'b1'.repeat(16) } }], 'a dead letter')
      t.equal(await outbox.retryDead('b1'.repeat(16), now), true, 'retried')
      t.equal(await outbox.retryDead('b1'.repeat(16), now), false, 'no longer a dead letter')
      t.same(await outbox.listDead(), [])
      const back = await outbox.claim({ ...lease, limit: 10 })
      t.equal(back.claims[0]?.attempts, 1, 'pending again, its attempts starting over')
      await outbox.fail(back.claims[0]!, null, 'answered 410', now)
      t.equal(await outbox.deleteDead('b1'.repeat(16)), true, 'deleted')
      t.equal(await outbox.deleteDead('b1'.repeat(16)), false)
      t.same(await outbox.listDead(), [])
    })

    t.test('health() reports ok and close() resolves', async t => {
      const backend = await options.create({})
      await backend.init?.()
      t.match(await backend.health(), { ok: true })
      t.equal(typeof backend.kind, 'string')
      t.ok(backend.kind.length > 0, 'kind names the backend')
      const closed = backend.close().then(() => true)
      t.ok(await Promise.race([closed, sleep(changeTimeoutMs).then(() => false)]), 'close() resolves')
    })
  })
}
