import { isHttpMethod } from '@waygate/core'

/** A JSON object of a document. */
export type Json = Record<string, unknown>

export function isObject (value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Sets an own property, even one named `__proto__`. */
export function put (target: Json, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** The path item fields that hold an operation, besides other HTTP methods older documents use. */
const OPERATION_FIELDS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'query'])

/** True when a path item field holds an operation (`get`, `post`…, lower case). */
export function isOperationField (field: string): boolean {
  return OPERATION_FIELDS.has(field) || (field === field.toLowerCase() && isHttpMethod(field))
}

/** Every operation of a path item with its upper-case method, `additionalOperations` (OpenAPI 3.2) included. */
export function operationsOf (item: Json): Array<[string, Json]> {
  const ops: Array<[string, Json]> = []
  for (const [field, value] of Object.entries(item)) {
    if (field === 'additionalOperations' && isObject(value)) {
      for (const [method, op] of Object.entries(value)) if (isObject(op)) ops.push([method.toUpperCase(), op])
    } else if (isOperationField(field) && isObject(value)) {
      ops.push([field.toUpperCase(), value])
    }
  }
  return ops
}
