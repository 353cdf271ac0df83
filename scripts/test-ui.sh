#!/usr/bin/env bash
# Runs the web UI's browser tests (tests/ui) in real headless Chromium against a real
# `hopper server`, and saves screenshots of every page in light and dark to
# target/ui-screenshots/.
#
# Installs what is missing: Debian's chromium (as root, with apt-get) and the pinned
# playwright-core of tests/ui/package-lock.json into target/ui-node (`npm ci`; no browser is
# downloaded, the tests drive /usr/bin/chromium). Uses the binary HOPPER_BIN names, else builds
# it. Starts the server on a free loopback port with a temporary data directory and stops it
# (by its PID) when the tests end. Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
echo "== web ui"

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-ui: $CHROMIUM is missing: install Debian's chromium package (as root: apt-get install chromium)" >&2
    exit 1
  fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test-ui: node and npm are needed to run the browser tests" >&2
  exit 1
fi

# playwright-core lives under target/ so the repository stays clean; reinstalled whenever the
# committed lock file changes.
node_dir="$root/target/ui-node"
if ! cmp -s tests/ui/package-lock.json "$node_dir/package-lock.json" \
  || [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  echo "== installing playwright-core into target/ui-node"
  mkdir -p "$node_dir"
  cp tests/ui/package.json tests/ui/package-lock.json "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
export HOPPER_UI_NODE_MODULES="$node_dir/node_modules"

if [ -z "${HOPPER_BIN:-}" ]; then
  echo "== building hopper"
  cargo build -p hopper --locked --quiet
  HOPPER_BIN="$root/target/debug/hopper"
fi

export HOPPER_UI_SCREENSHOTS="$root/target/ui-screenshots"
rm -rf "$HOPPER_UI_SCREENSHOTS"
mkdir -p "$HOPPER_UI_SCREENSHOTS"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # A clean stop takes well under a second; do not hang CI on a stuck one.
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting hopper server (authentication on)"
# The UI is tested as production runs it: with API keys. A fresh admin key per run, installed
# at start the way automated setups do it.
HOPPER_UI_KEY="hop_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export HOPPER_UI_KEY
# Relaxed durability: the tests need no fsync per answer, and it keeps them quick.
NO_COLOR=1 HOPPER_ADMIN_KEY="$HOPPER_UI_KEY" "$HOPPER_BIN" server --bind 127.0.0.1:0 \
  --data-dir "$work/data" --durability relaxed >"$work/stdout" 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 300); do
  url="$(sed -n 's/^hopper listening on //p' "$work/stdout" | head -n1)"
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "test-ui: hopper server exited before listening; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "test-ui: hopper server did not announce its address within 30 s; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
export HOPPER_UI_URL="$url"
echo "   $url (log: server.log, shown on failure)"

echo "== browser tests"
status=0
node --test --test-reporter=spec --test-concurrency=1 "$@" tests/ui/*.test.js || status=$?
if [ "$status" != 0 ]; then
  echo "== hopper server log (last 60 lines)"
  tail -n 60 "$work/server.log"
  echo "test-ui: browser tests failed; screenshots (FAILED-*.png on failures) are in target/ui-screenshots/" >&2
else
  echo "   screenshots: target/ui-screenshots/"
fi
exit "$status"
