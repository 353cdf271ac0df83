#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests and prints the variables to use it.
# Source it from another script: it exports HOPPER_TEST_DATABASE_URL (a superuser URL on
# 127.0.0.1) and defines `stop_test_postgres`, which stops the cluster and deletes it.
#
# It installs Debian's `postgresql` package when no server binaries are found (CI machines
# start bare), runs the cluster as the unprivileged `postgres` user when started as root
# (PostgreSQL refuses to run as root), keeps everything under one temporary directory, and
# turns fsync off: these are tests, not benchmarks of durability.

find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && echo "$d"
  done | sort -V | tail -n 1
}

start_test_postgres() {
  local pgbin
  pgbin="$(find_pg_bin)"
  if [ -z "$pgbin" ]; then
    echo "== installing PostgreSQL (not found)"
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
      echo "PostgreSQL server binaries are missing; install the postgresql package" >&2
      return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pgbin="$(find_pg_bin)"
  fi
  PG_TEST_ROOT="$(mktemp -d /tmp/hopper-test-pg.XXXXXX)"
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres: "$PG_TEST_ROOT"
    run=(runuser -u postgres --)
  fi
  # A free loopback port: ask the kernel for one.
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "${run[@]}" "$pgbin/initdb" -D "$PG_TEST_ROOT/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$PG_TEST_ROOT/initdb.log" 2>&1
  "${run[@]}" "$pgbin/pg_ctl" -D "$PG_TEST_ROOT/data" -l "$PG_TEST_ROOT/server.log" -w -t 60 start \
    -o "-p $port -k $PG_TEST_ROOT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 -c shared_buffers=256MB" \
    >/dev/null
  PG_TEST_BIN="$pgbin"
  PG_TEST_RUN=("${run[@]}")
  export HOPPER_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "== PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') for tests on 127.0.0.1:$port"
}

stop_test_postgres() {
  if [ -n "${PG_TEST_ROOT:-}" ] && [ -d "$PG_TEST_ROOT" ]; then
    "${PG_TEST_RUN[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_ROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TEST_ROOT"
  fi
}
