import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '.tap/**', 'test-artifacts/**']
  }),
  {
    rules: {
      // TypeBox's idiom: a schema const and its Static type share one name
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
