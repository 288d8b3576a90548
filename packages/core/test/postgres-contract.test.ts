import t from 'tap'
import { createPostgresBackend } from '@waygate/core'
import { backendContract } from '@waygate/core/testing'
import { startPostgres } from './helpers/postgres.js'

const server = await startPostgres(t)
let schemas = 0

await backendContract(t, {
  name: 'postgres backend',
  create: options => createPostgresBackend({ connectionString: server.url }, { schema: `contract_${++schemas}`, ...options }),
  revisions: true
})
