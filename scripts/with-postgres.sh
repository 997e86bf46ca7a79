#!/usr/bin/env bash
# Runs a command against a throwaway Postgres cluster, then always stops and deletes it.
#
#   scripts/with-postgres.sh cargo test --test it
#
# If TEST_DATABASE_URL is already set, the command runs against that server instead and no
# cluster is started. Otherwise a cluster is created with initdb in a fresh temp folder (as the
# `postgres` user when run as root, since Postgres refuses to run as root), listening on a free
# loopback port with its unix socket inside the temp folder, and TEST_DATABASE_URL is exported.
#
# PG_FSYNC=off trades durability for speed (fine for tests; `make bench` keeps it on).
set -euo pipefail

if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
    exec "$@"
fi

find_pg_bin() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    local candidate
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$candidate/initdb" ]]; then
            echo "$candidate"
            return
        fi
    done
    echo "with-postgres: no initdb found (install the Debian 'postgresql' package)" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PG_BIN="$(find_pg_bin)"
PG_DIR="$(mktemp -d -t herald-pg.XXXXXX)"
PORT="$(free_port)"

as_pg() {
    if [[ "$(id -u)" == "0" ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cleanup() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap cleanup EXIT INT TERM

if [[ "$(id -u)" == "0" ]]; then
    chown postgres: "$PG_DIR"
fi

as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }

OPTS="-p $PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB"
if [[ "${PG_FSYNC:-on}" == "off" ]]; then
    OPTS="$OPTS -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -o "$OPTS" -w -t 60 start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; exit 1; }

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: throwaway cluster on port $PORT ($PG_BIN)" >&2
"$@"
