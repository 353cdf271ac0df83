#!/usr/bin/env bash
# Runs the Python SDK's tests (sdks/python/tests) against the real `hopper` binary: the tests
# start their own servers and workers. Creates a virtualenv in target/python-venv (reused),
# installs the SDK as users do (`pip install ./sdks/python`) with pytest, and builds the binary
# unless HOPPER_BIN names one. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
echo "== installing sdks/python"
# pip rebuilds and reinstalls a local directory every time, so edits are always picked up.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest ./sdks/python

if [ -z "${HOPPER_BIN:-}" ]; then
  echo "== building hopper"
  cargo build -p hopper --locked --quiet
  export HOPPER_BIN="$PWD/target/debug/hopper"
fi

echo "== pytest"
cd sdks/python
exec "../../$venv/bin/python" -m pytest -q "$@"
