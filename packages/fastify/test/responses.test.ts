import t from 'tap'
import { buildApp, fakeClock } from './helpers/app.js'

const ok = async () => ({ ok: true })

function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

t.test('a per-route factory beats the plugin-wide one, which beats the built-in', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/own', {
      config: {
        waygate: {
          maintenance: { reason: '<script>alert(1)</script>' },
          response: (request, reply, block) => {
            reply.type('text/html')
            return `<h1>Back soon</h1><p>${escapeHtml(block.reason)}</p><small>${block.path}</small>`
          }
        }
      }
    }, ok)
    app.get('/shared', { config: { waygate: { maintenance: { reason: 'sync' } } } }, ok)
    app.get('/builtin', { config: { waygate: { disabled: { reason: 'gone' } } } }, ok)
  }, {
    plugin: {
      responses: {
        maintenance: async (request, reply, block) => {
          await new Promise(resolve => setImmediate(resolve))
          return { down: true, reason: block.reason, kind: block.kind }
        }
      }
    }
  })
  const own = await app.inject('/own')
  t.equal(own.statusCode, 503, 'the preset status stays unless the factory changes it')
  t.match(own.headers['content-type'], /text\/html/)
  t.equal(own.body, '<h1>Back soon</h1><p>&#60;script&#62;alert(1)&#60;/script&#62;</p><small>/own</small>')

  const shared = await app.inject('/shared')
  t.equal(shared.statusCode, 503)
  t.same(shared.json(), { down: true, reason: 'sync', kind: 'maintenance' })

  t.equal((await app.inject('/builtin')).json().error.code, 'ROUTE_DISABLED', 'no disabled factory: built-in')
})

t.test('a factory may redirect, send plain text or set its own status', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/status', { config: { waygate: { forceActive: true } } }, ok)
    app.get('/orders', {
      config: { waygate: { maintenance: { reason: 'upgrade' }, response: (request, reply) => reply.redirect('/status', 302) } }
    }, ok)
    app.get('/legacy', {
      config: {
        waygate: {
          disabled: { reason: 'Retired' },
          response: (request, reply, block) => { reply.code(410).type('text/plain').send(`Gone. ${block.reason}`) }
        }
      }
    }, ok)
  })
  const redirect = await app.inject('/orders')
  t.equal(redirect.statusCode, 302)
  t.equal(redirect.headers.location, '/status')
  const gone = await app.inject('/legacy')
  t.equal(gone.statusCode, 410)
  t.equal(gone.body, 'Gone. Retired')
})

t.test('a throwing or rejecting factory falls back to the built-in response, never a 500', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/sync', { config: { waygate: { maintenance: { reason: 'a' }, response: () => { throw new Error('boom') } } } }, ok)
    app.get('/async', { config: { waygate: { disabled: { reason: 'b' }, response: async () => { throw new Error('boom') } } } }, ok)
    app.get('/nothing', { config: { waygate: { disabled: { reason: 'c' }, response: () => undefined } } }, ok)
  })
  const sync = await app.inject('/sync')
  t.equal(sync.statusCode, 503)
  t.equal(sync.json().error.code, 'MAINTENANCE_MODE')
  const asyncRes = await app.inject('/async')
  t.equal(asyncRes.statusCode, 503)
  t.equal(asyncRes.json().error.code, 'ROUTE_DISABLED')
  const nothing = await app.inject('/nothing')
  t.equal(nothing.json().error.code, 'ROUTE_DISABLED', 'a factory that sends nothing is a fallback too')
})

t.test('factories learn the retry time of a window and global maintenance uses the maintenance factory', async t => {
  const clock = fakeClock()
  const seen: unknown[] = []
  const { app, engine } = await buildApp(t, app => {
    app.get('/w', { config: { waygate: { maintenance: { reason: 'w', end: new Date(clock.now() + 90_000) } } } }, ok)
    app.get('/x', ok)
  }, {
    engine: { now: clock.now },
    plugin: {
      responses: {
        maintenance: (request, reply, block) => { seen.push(block); return { custom: block.retryAfterSeconds } }
      }
    }
  })
  const res = await app.inject('/w')
  t.equal(res.headers['retry-after'], '90', 'the Retry-After header is set for factories too')
  t.same(res.json(), { custom: 90 })
  t.match(seen[0], { kind: 'maintenance', key: 'GET:/w', reason: 'w', path: '/w', global: false, retryAt: new Date(clock.now() + 90_000).toISOString() })

  await engine.enableGlobalMaintenance({ reason: 'all down' })
  const unmatched = await app.inject('/missing')
  t.equal(unmatched.statusCode, 503)
  t.same(unmatched.json(), { custom: null })
  t.match(seen[1], { kind: 'maintenance', key: '*', global: true, path: '/missing' })
})

t.test('an envGated factory replaces the silent 404', async t => {
  const { app } = await buildApp(t, app => {
    app.get('/debug', { config: { waygate: { envOnly: ['dev'] } } }, ok)
  }, {
    engine: { env: 'production' },
    plugin: { responses: { envGated: (request, reply) => { reply.code(403); return { error: 'not in this environment' } } } }
  })
  const res = await app.inject('/debug')
  t.equal(res.statusCode, 403)
  t.same(res.json(), { error: 'not in this environment' })
})
