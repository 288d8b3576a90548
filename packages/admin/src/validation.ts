import { Ajv, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

// ajv-formats is CommonJS; its default export arrives wrapped depending on the loader
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as
  unknown as (ajv: Ajv) => Ajv

/**
 * The admin API is strict: a body with a wrong type or an unknown field is refused, not coerced
 * or trimmed. Query strings and URL parameters arrive as text, so only they are coerced.
 */
export function createAdminValidatorCompiler (): FastifySchemaCompiler<unknown> {
  const strict = addFormats(new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: true, strict: false }))
  const coercing = addFormats(new Ajv({ allErrors: false, coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false }))
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing
    return ajv.compile(schema as object) as ValidateFunction
  }
}
