import t from 'tap'
import { buildAdminApp } from './helpers/app.js'

t.test('under global maintenance nothing under the admin prefix answers 503, whatever the method', async t => {
  const { app, engine } = await buildAdminApp(t)
  await engine.enableGlobalMaintenance({ reason: 'upgrade' })
  const methods = ['OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'QUERY', 'MKCOL', 'GET', 'HEAD', 'POST', 'DELETE']
  for (const method of methods) {
    for (const url of ['/waygate/', '/waygate/api/routes', '/waygate/api/nothing-here', '/waygate/assets/x.css', '/waygate/login?next=/waygate/']) {
      const res = await app.inject({ method: method as 'GET', url })
      t.not(res.statusCode, 503, `${method} ${url}: ${res.statusCode}`)
    }
    // paths that only look like the prefix are the app's, and under maintenance
    for (const url of ['/waygatex/a', '/nope', '/way/gate']) {
      const res = await app.inject({ method: method as 'GET', url })
      t.equal(res.statusCode, 503, `${method} ${url}`)
    }
  }
})
