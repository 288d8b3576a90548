/** Version of @waygate/cli, printed by `waygate version`. Kept in step with package.json. */
export const CLI_VERSION = '0.1.0'
