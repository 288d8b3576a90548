/**
 * How the banners spell the `waygate` CLI: the repository's root script, which runs the CLI from
 * its sources, so the commands work from a fresh clone (`-s` keeps pnpm's header line out of the
 * output). Where `@waygate/cli` is installed, `waygate` alone does the same.
 */
export const CLI = 'npx -y pnpm@10.34.8 -s waygate'

/** The line under the CLI commands of a banner. */
export const CLI_NOTE = '(from the repository root; plain `waygate` where @waygate/cli is installed)'
