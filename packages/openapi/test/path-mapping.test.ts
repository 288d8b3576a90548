import t from 'tap'
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import { toOpenApiPath } from '../src/index.js'
import { documentBase, isUnderPrefix, PatternIndex } from '../src/path-mapping.js'

const PATTERNS = [
  '/',
  '/users',
  '/users/:id',
  '/users/:userId/posts/:postId',
  '/files/:name(^\\d+).png',
  '/range/:from(^\\d+)-:to(^\\d+)',
  '/pair/:a-:b',
  '/static/*',
  '/user::watch',
  '/anon/(^\\d+)',
  '/nested/:n(^(a|b)+$)'
]

t.test('renders every pattern exactly as @fastify/swagger writes it in its document', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 't', version: '1' } } })
  for (const url of PATTERNS) app.get(url, async () => ({}))
  await app.ready()
  const written = Object.keys((app.swagger() as { paths: object }).paths).sort()
  t.same(PATTERNS.map(toOpenApiPath).sort(), written)
})

t.test('documented examples', async t => {
  t.equal(toOpenApiPath('/users/:id'), '/users/{id}')
  t.equal(toOpenApiPath('/files/:name(^\\d+).png'), '/files/{name}.png')
  t.equal(toOpenApiPath('/static/*'), '/static/{*}')
  t.equal(toOpenApiPath('/user::watch'), '/user:watch')
  t.equal(toOpenApiPath('/a/(x)/(y)'), '/a/{regexp1}/{regexp2}')
})

t.test('reads base paths from servers (OpenAPI 3) and basePath (Swagger 2)', async t => {
  t.same(documentBase({ openapi: '3.0.3', servers: [{ url: 'https://api.example.com/api' }, { url: '/v2' }, { url: 'http://localhost:3000' }] }),
    { swagger2: false, basePaths: ['/api', '/v2'] })
  t.same(documentBase({ openapi: '3.0.3', servers: [{ url: '{scheme}://x.io/{base}', variables: { scheme: { default: 'https' }, base: { default: 'svc' } } }] }),
    { swagger2: false, basePaths: ['/svc'] })
  t.same(documentBase({ openapi: '3.0.3', servers: [{ url: 'not a url' }, null, { url: 3 }] }), { swagger2: false, basePaths: [] })
  t.same(documentBase({ swagger: '2.0', basePath: '/api' }), { swagger2: true, basePaths: ['/api'] })
  t.same(documentBase({ swagger: '2.0', basePath: '/' }), { swagger2: true, basePaths: [] })
})

t.test('finds the patterns behind a document path, stripped forms first', async t => {
  const index = new PatternIndex(['/api/users/:id', '/users/:id', '/api/files/:n(^\\d+)', '/other'], { swagger2: false, basePaths: ['/api'] })
  t.same(index.patternsOf('/users/{id}'), ['/api/users/:id', '/users/:id'])
  t.same(index.patternsOf('/api/users/{id}'), ['/api/users/:id'], 'stripBasePath: false documents')
  t.same(index.patternsOf('/files/{n}'), ['/api/files/:n(^\\d+)'])
  t.same(index.patternsOf('/other'), ['/other'])
  t.same(index.patternsOf('/nowhere'), [])
  const swagger2 = new PatternIndex(['/api', '/api/x'], { swagger2: true, basePaths: ['/api'] })
  t.same(swagger2.patternsOf('/'), ['/api'], 'Swagger 2 keeps a leading slash')
})

t.test('prefixes cover themselves and what lies below, nothing else', async t => {
  t.ok(isUnderPrefix('/waygate', '/waygate'))
  t.ok(isUnderPrefix('/waygate/api/routes', '/waygate'))
  t.ok(isUnderPrefix('/waygate/api/routes', '/waygate/'))
  t.notOk(isUnderPrefix('/waygateway', '/waygate'))
  t.notOk(isUnderPrefix('/users', '/waygate'))
  t.ok(isUnderPrefix('/anything', '/'))
})
