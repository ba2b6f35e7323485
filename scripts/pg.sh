#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks.
#   scripts/pg.sh start DIR   initdb into DIR/data, start on a free port, create
#                             database `handover`, print its URL (also in DIR/url);
#                             if DIR already holds a stopped cluster, start it
#                             again on its port (a store restart in tests)
#   scripts/pg.sh stop DIR    stop it (DIR is left for the caller to remove)
# Installs Debian's `postgresql` when initdb/pg_ctl are missing. As root, the
# server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Env: PG_LISTEN (default 127.0.0.1) - the addresses the server listens on.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: pg.sh start|stop DIR"
CMD="$1"
DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
LIB="$(cd "$(dirname "$0")" && pwd)/lib"

find_bin() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  [ -n "$d" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  return 1
}

BIN="$(find_bin || true)"
if [ -z "$BIN" ]; then
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and installing it needs root"
  echo "pg.sh: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >/dev/null
  BIN="$(find_bin)" || die "postgresql installed but pg_ctl not found"
fi

# Run a PostgreSQL binary as the right user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$CMD" in
start)
  if [ -e "$DIR/data/PG_VERSION" ]; then
    [ -s "$DIR/url" ] && [ -s "$DIR/port" ] || die "$DIR holds a cluster without url/port"
    PORT="$(cat "$DIR/port")"
    if ! as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-p $PORT -k $DIR -c listen_addresses=${PG_LISTEN:-127.0.0.1} -c max_connections=200 -c fsync=on -c synchronous_commit=on" \
        start >/dev/null || { tail -20 "$DIR/server.log" >&2; die "pg_ctl start failed"; }
    fi
    cat "$DIR/url"
    exit 0
  fi
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$DIR"
    # The postgres user must be able to reach DIR: grant search (x) only on
    # ancestors that lack it (e.g. a 0700 mktemp -d parent).
    d="$(dirname "$DIR")"
    while [ "$d" != "/" ]; do
      runuser -u postgres -- test -x "$d" 2>/dev/null || chmod o+x "$d"
      d="$(dirname "$d")"
    done
  fi
  chmod 700 "$DIR"
  PORT="$(python3 "$LIB/free_port.py" 2>/dev/null || echo $((10000 + RANDOM % 20000)))"
  PASS="$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)"
  printf '%s\n' "$PASS" >"$DIR/pwfile"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DIR/pwfile"; fi
  as_pg "$BIN/initdb" -D "$DIR/data" -U handover --pwfile="$DIR/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  rm -f "$DIR/pwfile"
  # Any address may connect with the password (two-host tests use their own subnets).
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$DIR/data/pg_hba.conf"
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=${PG_LISTEN:-127.0.0.1} -c max_connections=200 -c fsync=on -c synchronous_commit=on" \
    start >/dev/null || { cat "$DIR/server.log" >&2; die "pg_ctl start failed"; }
  echo "$PORT" >"$DIR/port"
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U handover -d postgres -qAt \
    -c "CREATE DATABASE handover" >/dev/null || die "createdb failed"
  URL="postgres://handover:$PASS@127.0.0.1:$PORT/handover"
  printf '%s\n' "$URL" >"$DIR/url"
  chmod 600 "$DIR/url"
  echo "$URL"
  ;;
stop)
  [ -e "$DIR/data/PG_VERSION" ] || exit 0
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  ;;
*) die "unknown command $CMD (start|stop)" ;;
esac
