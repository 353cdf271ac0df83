#!/usr/bin/env bash
# Runs every test of the repository: the Rust workspace (unit, conformance, end-to-end, crash and
# shutdown tests against the real binary). Needs only the Rust toolchain; installs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Tests start real servers and real worker processes; keep the machine responsive.
export RUST_BACKTRACE=1

echo "== building"
cargo build --workspace --all-targets --locked

if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first: nextest does not run them, and its summary should close the output.
  cargo test --workspace --doc --locked
  cargo nextest run --workspace --locked --no-fail-fast --failure-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
