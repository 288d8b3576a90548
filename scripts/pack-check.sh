#!/usr/bin/env bash
# Packs every package as it would be published (prepack builds dist), installs the tarballs with npm
# into a scratch app outside the workspace, type-checks a consumer under the module settings users
# have (NodeNext, bundler with skipLibCheck: false, the old node10) and runs it with node.
# Usage: scripts/pack-check.sh   (needs node, npm, pnpm and the workspace's own dev dependencies)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tsc="$root/node_modules/typescript/bin/tsc"
work="$(mktemp -d "${TMPDIR:-/tmp}/waygate-pack-check.XXXXXX")"
[ -n "${PACK_CHECK_KEEP:-}" ] && echo "-- keeping $work" || trap 'rm -rf "$work"' EXIT
packages=(core fastify admin openapi cli server)
npm_install () { npm install --no-audit --no-fund --loglevel=error "$@"; }

echo "-- pack (prepack builds dist)"
for p in "${packages[@]}"; do
  (cd "$root/packages/$p" && pnpm pack --pack-destination "$work/tgz" >/dev/null)
done
ls "$work/tgz"
for p in "${packages[@]}"; do
  tgz=$(ls "$work"/tgz/waygate-"$p"-*.tgz)
  listing=$(tar -tzf "$tgz")
  for f in package/LICENSE package/README.md package/package.json package/dist/index.js package/dist/index.d.ts; do
    grep -qx "$f" <<<"$listing" || { echo "pack-check: $tgz lacks $f" >&2; exit 1; }
  done
  if tar -xzOf "$tgz" package/package.json | grep -q '"workspace:'; then
    echo "pack-check: $tgz still has a workspace: dependency" >&2; exit 1
  fi
done
tgz () { ls "$work"/tgz/waygate-"$1"-*.tgz; }

app="$work/app"
mkdir -p "$app"
cd "$app"
cat > package.json <<'JSON'
{ "name": "waygate-pack-check", "private": true, "type": "module" }
JSON

# A memory-only app: no ioredis anywhere (the server, which runs the Redis backend, depends on it)
echo "-- npm install (core, fastify, admin, openapi; no ioredis)"
npm_install "$(tgz core)" "$(tgz fastify)" "$(tgz admin)" "$(tgz openapi)" fastify@5 @types/node@20
[ ! -e node_modules/ioredis ] || { echo 'pack-check: ioredis got installed for a memory-only app' >&2; exit 1; }

cat > app.ts <<'TS'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import { createEngine, createMemoryBackend, createRedisBackend } from '@waygate/core'
import { waygate, waygateConfig } from '@waygate/fastify'
import { waygateAdmin } from '@waygate/admin'
import { applyWaygateToSpec } from '@waygate/openapi'

const require = createRequire(import.meta.url)
const loadedIoredis = (): boolean => Object.keys(require.cache).some(file => file.includes('/node_modules/ioredis/'))

const app = Fastify()
await app.register(waygate, { engine: createEngine({ backend: createMemoryBackend() }) })
app.get('/payments', { config: { waygate: waygateConfig({ maintenance: { reason: 'DB migration' } }) } }, async () => ({ payments: [] }))
app.get('/health', { config: { waygate: { forceActive: true } } }, async () => ({ ok: true }))
await app.ready()

const blocked = await app.inject('/payments')
assert.equal(blocked.statusCode, 503, blocked.body)
assert.equal((await app.inject('/health')).statusCode, 200)
await app.waygate.enable('GET:/payments', { actor: 'pack-check' })
assert.equal((await app.inject('/payments')).statusCode, 200)
assert.equal(typeof waygateAdmin, 'function')
assert.equal(typeof applyWaygateToSpec, 'function')
await app.close()

assert.equal(loadedIoredis(), false, 'importing @waygate/core loaded ioredis')
if (process.env.EXPECT_IOREDIS === 'absent') {
  assert.throws(() => createRedisBackend({ url: 'redis://127.0.0.1:1' }),
    (err: { code?: string, message?: string }) => err.code === 'WG_ERR_OPTIONS_INVALID' && /install ioredis/.test(err.message ?? ''))
}
console.log('pack-check app: ok')
TS
cat > server.ts <<'TS'
import { createWaygateServer } from '@waygate/server'
import { CLI_VERSION } from '@waygate/cli'

export const server: typeof createWaygateServer = createWaygateServer
export const cliVersion: string = CLI_VERSION
TS

tsconfig () { # module moduleResolution skipLibCheck files... [extra options json]
  local module=$1 resolution=$2 skip=$3 files=$4 extra=${5:-}
  cat > tsconfig.json <<JSON
{ "compilerOptions": { "module": "$module", "moduleResolution": "$resolution", "target": "ES2022",
  "lib": ["ES2023"], "types": ["node"], "strict": true, "skipLibCheck": $skip, "outDir": "out",
  "noEmit": false $extra }, "files": $files }
JSON
}

echo "-- tsc NodeNext (skipLibCheck: true), then node"
tsconfig NodeNext NodeNext true '["app.ts"]'
node "$tsc" -p tsconfig.json
EXPECT_IOREDIS=absent node out/app.js

echo "-- npm install (cli, server: ioredis comes with the server)"
npm_install "$(tgz cli)" "$(tgz server)"
for p in waygate waygate-server; do npx --no-install "$p" --help >/dev/null || { echo "pack-check: $p --help failed" >&2; exit 1; }; done

echo "-- tsc NodeNext (skipLibCheck: false)"
tsconfig NodeNext NodeNext false '["app.ts", "server.ts"]'
node "$tsc" -p tsconfig.json --noEmit
echo "-- tsc module ESNext, moduleResolution bundler (skipLibCheck: false)"
tsconfig ESNext bundler false '["app.ts", "server.ts"]'
node "$tsc" -p tsconfig.json --noEmit
echo "-- tsc module ESNext, moduleResolution node (node10, top-level types)"
tsconfig ESNext node false '["app.ts", "server.ts"]' ', "ignoreDeprecations": "6.0", "esModuleInterop": true'
node "$tsc" -p tsconfig.json --noEmit
echo "-- node (with ioredis installed)"
node out/app.js
echo "pack-check: ok"
