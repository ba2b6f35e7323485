#!/bin/sh
# Provisions a host for the two-droplet walkthrough (docs/walkthrough.md), on
# a fresh Debian/Ubuntu host or one that exists already. cloud-init.sh wraps
# the same script as user-data.
#
#   provision.sh app --instance NAME [--listen ADDR:PORT (0.0.0.0:80)] [--binary PATH]
#                    [--rate N] [--timeout SECS] [--prefix DIR] [--dry-run]
#       the example app: its binary (--binary: a release build copied here;
#       default: $BIN_SRC or ./example-app), the handover-service control
#       script, the systemd unit (LimitNOFILE from the rate), the environment
#       file (0600; the store URL comes from $HANDOVER_STORE, never an
#       argument) and tune.sh's kernel settings.
#   provision.sh store --allow CIDR [--allow CIDR]... [--rate N] [--no-install]
#                    [--dry-run]
#       PostgreSQL with a dedicated role and database `shop`, reachable from
#       the CIDRs given; the role's password comes from $HANDOVER_DB_PASSWORD.
#       --no-install: the server runs already; connect with libpq's PG* env.
#
# --prefix DIR installs under DIR and does not touch systemd or users (a
# rehearsal in network namespaces). --dry-run prints what it would do.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "provision.sh: $*" >&2; exit 2; }
say() { echo "== $*"; }
[ $# -ge 1 ] || die "usage: provision.sh app|store [options] (see --help)"
ROLE=$1; shift
case "$ROLE" in app|store) ;; -h|--help) sed -n '2,24p' "$0"; exit 0 ;; *) die "unknown role $ROLE (app or store)" ;; esac

INSTANCE="" LISTEN="0.0.0.0:80" BINARY=${BIN_SRC:-./example-app} RATE=1000 TIMEOUT=10
PREFIX="" DRY="" INSTALL=yes ALLOW=""
while [ $# -gt 0 ]; do
  case "$1" in
    --instance) INSTANCE=${2:-}; shift 2 ;;
    --listen) LISTEN=${2:-}; shift 2 ;;
    --binary) BINARY=${2:-}; shift 2 ;;
    --rate) RATE=${2:-}; shift 2 ;;
    --timeout) TIMEOUT=${2:-}; shift 2 ;;
    --prefix) PREFIX=${2:-}; shift 2 ;;
    --allow) ALLOW="$ALLOW ${2:-}"; shift 2 ;;
    --no-install) INSTALL=no; shift ;;
    --dry-run) DRY=yes; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
case "$RATE" in ''|*[!0-9]*) die "--rate: a whole number" ;; esac
run() { if [ -n "$DRY" ]; then echo "+ $*"; else "$@"; fi; }

app() {
  case "$INSTANCE" in ''|*[!A-Za-z0-9._-]*) die "--instance: a name of letters, digits, . _ - (what X-Instance will say)" ;; esac
  case "$LISTEN" in *:[0-9]*) ;; *) die "--listen: ADDR:PORT" ;; esac
  [ -n "${HANDOVER_STORE:-}" ] || die "HANDOVER_STORE is not set: export the store URL (postgres://shop:…@store:5432/shop or sqlite:/var/lib/handover/events.db)"
  [ -n "$DRY" ] || [ -x "$BINARY" ] || die "--binary $BINARY is not an executable (build it: cargo build --release -p example-app)"
  [ -n "$PREFIX" ] || [ -n "$DRY" ] || [ "$(id -u)" = 0 ] || die "needs root (or --prefix DIR)"
  NOFILE=$((RATE * TIMEOUT * 2 + 1024)); [ $NOFILE -lt 65536 ] && NOFILE=65536
  BIN_DIR=$PREFIX/usr/local/bin ETC=$PREFIX/etc/handover
  RUN_DIR=${PREFIX:+$PREFIX/run}; RUN_DIR=${RUN_DIR:-/run/handover}
  say "example-app $INSTANCE on $LISTEN (nofile $NOFILE)"
  run mkdir -p "$BIN_DIR" "$ETC" "$PREFIX/etc/systemd/system"
  run install -m 0755 "$BINARY" "$BIN_DIR/example-app"
  run install -m 0755 "$HERE/handover-service" "$BIN_DIR/handover-service"
  if [ -n "$DRY" ]; then
    echo "+ write $ETC/example-app.env (0600; HANDOVER_STORE not shown)"
  else
    umask 077
    {
      echo "# written by provision.sh; 0600: HANDOVER_STORE may hold a password"
      echo "HANDOVER_LISTEN=$LISTEN"
      echo "HANDOVER_INSTANCE=$INSTANCE"
      echo "HANDOVER_STORE=$HANDOVER_STORE"
      echo "BIN=$BIN_DIR/example-app"
      echo "NOFILE=$NOFILE"
      echo "RUN_DIR=$RUN_DIR"
    } >"$ETC/example-app.env"
    umask 022
    sed "s/@NOFILE@/$NOFILE/" "$HERE/handover-example-app.service" \
      >"$PREFIX/etc/systemd/system/handover-example-app.service"
  fi
  run "$HERE/tune.sh" --rate "$RATE" --timeout "$TIMEOUT" ${PREFIX:+--prefix "$PREFIX"}
  if [ -z "$PREFIX" ] && [ -d /run/systemd/system ]; then
    id handover >/dev/null 2>&1 || run useradd --system --home-dir /var/lib/handover --shell /usr/sbin/nologin handover
    run systemctl daemon-reload
    run systemctl enable handover-example-app.service
  fi
  say "done: start it with handover-service start (the migrator does it for B)"
}

# sql_literal: stdin as one SQL string literal.
sql_literal() { printf "'%s'" "$(sed "s/'/''/g")"; }

store() {
  [ -n "${HANDOVER_DB_PASSWORD:-}" ] || die "HANDOVER_DB_PASSWORD is not set: the shop role's password comes from the environment"
  [ -n "$ALLOW" ] || die "--allow CIDR: which addresses (A and B) may connect"
  for c in $ALLOW; do case "$c" in */*) ;; *) die "--allow $c: a CIDR (203.0.113.11/32)" ;; esac; done
  if [ "$INSTALL" = yes ]; then
    [ -n "$DRY" ] || [ "$(id -u)" = 0 ] || die "needs root"
    say "PostgreSQL"
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    PSQL="runuser -u postgres -- psql -qAtX -v ON_ERROR_STOP=1"
  else
    PSQL="psql -qAtX -v ON_ERROR_STOP=1 -d ${PGDATABASE:-postgres}"
  fi
  say "role and database shop, reachable from$ALLOW"
  if [ -n "$DRY" ]; then
    echo "+ CREATE ROLE shop LOGIN PASSWORD '***'; CREATE DATABASE shop OWNER shop; pg_hba: host shop shop CIDR scram-sha-256"
    return 0
  fi
  pw=$(printf '%s' "$HANDOVER_DB_PASSWORD" | sql_literal)
  # Through stdin, so the password is never on a command line (ps shows those).
  $PSQL <<SQL
SET password_encryption = 'scram-sha-256';
SELECT 'CREATE ROLE shop LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shop')\gexec
ALTER ROLE shop PASSWORD $pw;
SELECT 'CREATE DATABASE shop OWNER shop' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'shop')\gexec
ALTER SYSTEM SET listen_addresses = '*';
SQL
  hba=$($PSQL -c 'SHOW hba_file')
  for c in $ALLOW; do
    line="host shop shop $c scram-sha-256"
    if [ "$INSTALL" = yes ]; then
      runuser -u postgres -- sh -c "grep -qxF '$line' '$hba' || echo '$line' >>'$hba'"
    else
      grep -qxF "$line" "$hba" 2>/dev/null || echo "$line" >>"$hba"
    fi
  done
  if [ "$INSTALL" = yes ]; then
    run systemctl restart postgresql
  else
    $PSQL -c 'SELECT pg_reload_conf()' >/dev/null
  fi
  say "done: store URL postgres://shop:\$HANDOVER_DB_PASSWORD@$(hostname -I 2>/dev/null | cut -d' ' -f1):5432/shop"
}

"$ROLE"
