#!/usr/bin/env bash
# Builds Hopper, starts the server on the embedded store (127.0.0.1:7480, data in ./hopper-data),
# runs a few jobs through it with an exec worker (one succeeds, one fails into the dead-letter
# queue and is retried), shows the result, and leaves the server running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p hopper
hopper=./target/release/hopper
export HOPPER_URL=${HOPPER_URL:-http://127.0.0.1:7480}

"$hopper" server &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$hopper" queues ls >/dev/null 2>&1 && break
  sleep 0.1
done

echo; echo "== enqueue three jobs"
"$hopper" enqueue greet --args '{"name": "world"}'
"$hopper" enqueue greet --args '{"name": "Hopper"}' --priority 10
"$hopper" enqueue flaky --args '{}' --max-attempts 2

echo; echo "== run an exec worker for a few seconds (greet echoes; flaky always fails)"
"$hopper" worker --exec --command 'greet=echo hello {name}' --command 'flaky=false' &
worker=$!
sleep 4
kill -TERM "$worker"; wait "$worker"

echo; echo "== what happened"
"$hopper" jobs ls
"$hopper" queues ls

echo; echo "== retry the dead-letter queue (it will fail again: the command is 'false')"
"$hopper" queues retry default

echo
echo "Hopper is running: API at $HOPPER_URL/v1, metrics at $HOPPER_URL/metrics. Ctrl-C stops it."
wait "$server"
