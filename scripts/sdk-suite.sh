#!/usr/bin/env bash
# Runs the centrifuge JS SDK's OWN test suite (jest) against a Herald server started from this repo.
# Not part of `npm test`: it needs the SDK's source, which this repo does not contain. Results and the reasons
# for each failing group: docs/sdk-compatibility.md.
#
# 1. Get the SDK source yourself, at the tag of the SDK version Herald pins (packages/server/package.json,
#    devDependencies.centrifuge): clone the centrifugal/centrifuge-js repository and check out that tag, e.g.
#      git clone <centrifuge-js repository> /tmp/centrifuge-js && git -C /tmp/centrifuge-js checkout 5.8.0
# 2. Run:  scripts/sdk-suite.sh /tmp/centrifuge-js [jest arguments...]
#      scripts/sdk-suite.sh /tmp/centrifuge-js                                  # the whole suite
#      scripts/sdk-suite.sh /tmp/centrifuge-js src/centrifuge.test.ts -t websocket
#      scripts/sdk-suite.sh /tmp/centrifuge-js src/recovery.test.ts src/getstate.test.ts src/delta.test.ts
#
# The suite expects Centrifugo on localhost:8000 with its file centrifugo_test.json (insecure client mode,
# HMAC secret "secret", HTTP API key "test-api-key", namespaces with history, recovery and fossil delta).
# Herald reads that file through HERALD_CONFIG (a copy: the shared poll proxies' host.docker.internal becomes
# 127.0.0.1, nothing else changes) and warns about the Centrifugo features it lacks.
# Environment: SKIP_BUILD=1 skips `npm run build`; PER_FILE=1 runs one jest process per test file (the map tests'
# stray timers then cannot fail tests of other files); HERALD_LOG_LEVEL (default warn); the Herald log goes to
# $HERALD_LOG (default: a temp file, printed on failure to start).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdk="${1:-}"
if [[ -z "$sdk" || ! -f "$sdk/package.json" || ! -f "$sdk/centrifugo_test.json" ]]; then
  echo "usage: $0 <centrifuge-js checkout> [jest args...]  (see the comment at the top of this script)" >&2
  exit 2
fi
shift
sdk="$(cd "$sdk" && pwd)"

pinned="$(node -p "require('$here/packages/server/package.json').devDependencies.centrifuge")"
have="$(node -p "require('$sdk/package.json').version")"
if [[ "$pinned" != "$have" ]]; then
  echo "warning: the checkout is centrifuge $have, Herald pins $pinned: check out tag $pinned for a like-for-like run" >&2
fi

if [[ -z "${SKIP_BUILD:-}" ]]; then (cd "$here" && npm run build --silent); fi

if [[ ! -d "$sdk/node_modules/jest" ]]; then
  # The SDK's lockfile is yarn's; npm resolves the same devDependencies from the registry.
  (cd "$sdk" && npm install --no-audit --no-fund --ignore-scripts --legacy-peer-deps)
fi

# The suite's tests hard-code ws://localhost:8000 and http://localhost:8000/api.
if node -e "require('net').connect(8000,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"; then
  echo "port 8000 is in use: stop what listens there (the suite needs localhost:8000)" >&2
  exit 1
fi

# The suite's shared poll tests start their refresh backend on ports 3010/3011 of this machine; its config names it
# http://host.docker.internal:3010 (Centrifugo runs in Docker there). A copy with that host as 127.0.0.1 is the only
# change made to the file.
config="$(mktemp -t herald-sdk-config.XXXXXX.json)"
sed 's#//host\.docker\.internal:#//127.0.0.1:#g' "$sdk/centrifugo_test.json" >"$config"

log="${HERALD_LOG:-$(mktemp -t herald-sdk-suite.XXXXXX.log)}"
WS_PORT=8000 HERALD_HOST=127.0.0.1 HERALD_CONFIG="$config" HERALD_LOG_LEVEL="${HERALD_LOG_LEVEL:-warn}" \
  node "$here/packages/server/dist/cli/main.js" serve >"$log" 2>&1 &
herald_pid=$!
trap 'kill "$herald_pid" 2>/dev/null || true; wait "$herald_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
  if curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1; then break; fi
  if ! kill -0 "$herald_pid" 2>/dev/null; then echo "Herald did not start:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.2
done
echo "Herald (pid $herald_pid) on 127.0.0.1:8000 with $sdk/centrifugo_test.json (as $config); log: $log"

cd "$sdk"
set +e
if [[ -n "${PER_FILE:-}" ]]; then
  # One jest process per test file: a failing file's stray timers cannot fail tests of the next file.
  status=0
  files=("$@")
  if [[ ${#files[@]} -eq 0 ]]; then mapfile -t files < <(ls src/*.test.ts); fi
  for f in "${files[@]}"; do
    echo "=== $f"
    npx jest --forceExit --verbose "$f" || status=1
  done
else
  npx jest --forceExit --verbose "$@"
  status=$?
fi
set -e
echo "SDK suite exit status: $status (expected failures are listed in docs/sdk-compatibility.md)"
exit "$status"
