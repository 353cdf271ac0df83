#!/usr/bin/env bash
# Starts everything the example needs: builds Hopper, starts `hopper server` on
# 127.0.0.1:7480 (data in target/python-app-data), installs the Python SDK in
# target/python-venv, and runs a Python worker for tasks.py until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --locked -p hopper
venv=target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./sdks/python

export HOPPER_URL=${HOPPER_URL:-http://127.0.0.1:7480}
./target/release/hopper server --data-dir target/python-app-data &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  ./target/release/hopper queues ls >/dev/null 2>&1 && break
  sleep 0.1
done

echo "Hopper is at $HOPPER_URL. Run the producer in another terminal:"
echo "    target/python-venv/bin/python examples/python-app/producer.py"
cd examples/python-app
"../../$venv/bin/hopper-py" worker tasks --concurrency 20
