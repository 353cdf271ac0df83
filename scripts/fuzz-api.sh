#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API: runs schemathesis (pinned below) against the
# /openapi.json of a real `hopper server` and fails when any answer is a 5xx (only schemathesis'
# `not_a_server_error` check runs: the schema describes bodies loosely, so conformance checks
# would report the schema, not the server).
#
#   scripts/fuzz-api.sh [HOPPER_BINARY] [extra schemathesis run arguments...]
#
# HOPPER_BINARY defaults to target/debug/hopper (build it first: cargo build -p hopper).
# Installs schemathesis into the virtualenv target/fuzz-venv when it is missing or another
# version. Starts the server on a free loopback port (port 0, the address read from its
# announcement line) over a temporary data directory, and stops it (by its PID) and removes
# the directory when done.
#
# Environment:
#   HOPPER_FUZZ_TOKEN     admin key (hop_<16 hex>_<64 hex>) installed at start and sent as
#                         `Authorization: Bearer`; a random one when unset. The run is always
#                         authenticated: on an open server the first key schemathesis creates
#                         through POST /v1/keys would turn authentication on and every later
#                         request would only test the 401.
#   HOPPER_FUZZ_EXAMPLES  cases per operation and phase (default 30)
#   HOPPER_FUZZ_MAX_TIME  time budget of the main schemathesis run, in seconds (default 80;
#                         key revocation gets 10 more)
#   HOPPER_FUZZ_SEED      seed, to replay a run (schemathesis prints the seed it used)
#
# Bounded to about two minutes on two cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

schemathesis_version="4.32.5"
bin="${1:-target/debug/hopper}"
shift || true
examples="${HOPPER_FUZZ_EXAMPLES:-30}"
max_time="${HOPPER_FUZZ_MAX_TIME:-80}"

if [ ! -x "$bin" ]; then
  echo "fuzz-api: $bin is not an executable; build it first (cargo build -p hopper)" >&2
  exit 1
fi

venv="$root/target/fuzz-venv"
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null || true)" != "schemathesis, version $schemathesis_version" ]; then
  echo "== installing schemathesis $schemathesis_version into target/fuzz-venv"
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$schemathesis_version"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # A clean stop takes well under a second; do not hang on a stuck one.
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

token="${HOPPER_FUZZ_TOKEN:-hop_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"

echo "== starting $bin server"
# Relaxed durability: nothing here must survive a power loss, and fsyncs would eat the budget.
NO_COLOR=1 HOPPER_ADMIN_KEY="$token" "$bin" server --bind 127.0.0.1:0 \
  --data-dir "$work/data" --durability relaxed >"$work/stdout" 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 300); do
  url="$(sed -n 's/^hopper listening on //p' "$work/stdout" | head -n1)"
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "fuzz-api: hopper server exited before listening; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "fuzz-api: hopper server did not announce its address within 30 s; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
healthy=""
for _ in $(seq 100); do
  if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then
    healthy=1
    break
  fi
  sleep 0.1
done
if [ -z "$healthy" ]; then
  echo "fuzz-api: $url/healthz did not answer 200 within 10 s; server log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "   $url"

# A valid lease with a large wait_ms long-polls up to 60 s on an empty queue: correct, but it
# would spend the budget waiting. Such waits are cut to 100 ms before the request goes out.
cat >"$work/hooks.py" <<'EOF'
import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if case.operation.path == "/v1/leases" and isinstance(body, dict):
        wait = body.get("wait_ms")
        if isinstance(wait, int) and not isinstance(wait, bool) and 100 < wait <= 60_000:
            body["wait_ms"] = 100
EOF

seed_args=()
if [ -n "${HOPPER_FUZZ_SEED:-}" ]; then
  seed_args=(--seed "$HOPPER_FUZZ_SEED")
fi

# One schemathesis run over the operations its extra arguments select, for $1 seconds at most.
# The event streams (SSE and WebSocket) never end an answer: every call would run into the
# request timeout, so they are always left out.
fuzz() {
  local budget="$1"
  shift
  # Run from the temporary directory: schemathesis keeps a cache in its working directory.
  (cd "$work" && SCHEMATHESIS_HOOKS="$work/hooks.py" "$venv/bin/schemathesis" run "$url/openapi.json" \
    --checks not_a_server_error \
    --max-examples "$examples" \
    --max-time "$budget" \
    --request-timeout 20 \
    --exclude-path /v1/events \
    --exclude-path /v1/events/ws \
    --generation-database none \
    --header "Authorization: Bearer $token" \
    --no-color \
    "${seed_args[@]}" \
    "$@")
}

status=0
# Schemathesis reads key ids from answers (GET /v1/keys, GET /v1/session) and revokes them,
# its own key included, after which every request is a 401. So revoking is fuzzed last, on
# its own.
echo "== schemathesis: every operation but key revocation (not_a_server_error; $examples examples per operation, at most ${max_time}s)"
fuzz "$max_time" --exclude-path '/v1/keys/{id}/revoke' "$@" || status=$?
echo "== schemathesis: key revocation (at most 10s)"
fuzz 10 --include-path '/v1/keys/{id}/revoke' "$@" || status=$?

if ! curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then
  echo "fuzz-api: the server stopped answering /healthz during the run" >&2
  [ "$status" != 0 ] || status=1
fi
if [ "$status" != 0 ]; then
  echo "== hopper server log (last 60 lines)"
  tail -n 60 "$work/server.log"
  echo "fuzz-api: schemathesis failed (exit $status); the requests are listed above" >&2
fi
exit "$status"
