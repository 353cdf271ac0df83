#!/usr/bin/env bash
# Runs every test of the repository: formatting and lints, the Rust workspace (unit,
# conformance on both backends, end-to-end on both backends, cluster, crash and shutdown tests
# against the real binary), the Python SDK's tests and the web UI's browser tests. Needs the
# Rust toolchain, Python 3 and Node.js; it fuzzes the running server from its OpenAPI document
# (schemathesis, installed under target/); it starts a throwaway PostgreSQL server itself
# (installing Debian's package when missing) and installs Chromium the same way for the UI.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

source scripts/postgres.sh
start_test_postgres
trap stop_test_postgres EXIT

echo "== formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== building"
cargo build --workspace --all-targets --locked

# The Python SDK's tests run the binary just built. They come before the Rust tests so that
# the test runner's own summary closes the output.
# Schema-driven fuzzing of the running server from its own /openapi.json: no answer may be a
# 5xx (bounded to about two minutes).
echo "== api fuzzing"
./scripts/fuzz-api.sh "$PWD/target/debug/hopper"

echo "== python sdk"
HOPPER_BIN="$PWD/target/debug/hopper" ./scripts/test-python.sh
HOPPER_BIN="$PWD/target/debug/hopper" ./scripts/test-ui.sh

if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first: nextest does not run them, and its summary should close the output.
  cargo test --workspace --doc --locked
  cargo nextest run --workspace --locked --no-fail-fast --failure-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
