#!/usr/bin/env bash
# Runs every test of the repository: the Rust workspace (unit, conformance on both backends,
# end-to-end on both backends, cluster, crash and shutdown tests against the real binary) and
# the Python SDK's tests. Needs the Rust toolchain and Python 3; it starts a throwaway
# PostgreSQL server itself (installing Debian's package when missing) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

source scripts/postgres.sh
start_test_postgres
trap stop_test_postgres EXIT

echo "== building"
cargo build --workspace --all-targets --locked

# The Python SDK's tests run the binary just built. They come before the Rust tests so that
# the test runner's own summary closes the output.
echo "== python sdk"
HOPPER_BIN="$PWD/target/debug/hopper" ./scripts/test-python.sh

if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first: nextest does not run them, and its summary should close the output.
  cargo test --workspace --doc --locked
  cargo nextest run --workspace --locked --no-fail-fast --failure-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
