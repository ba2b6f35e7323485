#!/bin/sh
# Kernel and limits tuning for a host that serves (or drives) the planned
# load, sized from the rate and the client timeout, persisted in
# /etc/sysctl.d/60-handover.conf and /etc/security/limits.d/60-handover.conf.
#
#   tune.sh --rate N [--timeout SECS] [--check] [--dry-run] [--prefix DIR]
#
# --check    print each setting against its target; exit 1 if one is short
# --dry-run  print the files it would write; change nothing
# --prefix   write the files under DIR and apply only the per-network-namespace
#            keys (net.core.*, net.ipv4.*): for rehearsals in namespaces
# `migrator preflight` measures the same settings and names this script as the fix.
set -eu
die() { echo "tune.sh: $*" >&2; exit 2; }
RATE="" TIMEOUT=10 MODE=apply PREFIX=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=${2:-}; shift 2 ;;
    --timeout) TIMEOUT=${2:-}; shift 2 ;;
    --check) MODE=check; shift ;;
    --dry-run) MODE=dry; shift ;;
    --prefix) PREFIX=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
case "$RATE" in ''|*[!0-9]*) die "--rate: a whole number of requests per second is needed" ;; esac
case "$TIMEOUT" in ''|*[!0-9]*) die "--timeout: whole seconds" ;; esac
[ "$RATE" -gt 0 ] || die "--rate must be above 0"

clamp() { v=$1; [ "$v" -lt "$2" ] && v=$2; [ "$v" -gt "$3" ] && v=$3; echo "$v"; }
# A timeout's worth of arrivals may wait in a listen queue.
BACKLOG=$(clamp $((RATE * TIMEOUT)) 4096 65535)
# Every in-flight request may hold a socket; plenty of room for the rest.
NOFILE=$(clamp $((RATE * TIMEOUT * 2 + 1024)) 65536 1048576)
# Both directions through a proxy, and a minute of new connections.
CONNTRACK=$(clamp $(((RATE * TIMEOUT * 2 + RATE * 60) * 2)) 262144 4194304)
CT=/proc/sys/net/netfilter/nf_conntrack_max

# key target kind: kind ge (measured >= target), le, eq, range (span >= target)
settings() {
  echo "net.core.somaxconn $BACKLOG ge"
  echo "net.ipv4.tcp_max_syn_backlog $BACKLOG ge"
  echo "net.ipv4.ip_local_port_range 1024-65535 range"
  echo "net.ipv4.tcp_tw_reuse 1 eq"
  echo "net.ipv4.tcp_fin_timeout 15 le"
  echo "net.ipv4.tcp_keepalive_time 60 le"
  echo "net.ipv4.tcp_keepalive_intvl 10 le"
  echo "net.ipv4.tcp_keepalive_probes 6 le"
  if [ -r "$CT" ]; then echo "net.netfilter.nf_conntrack_max $CONNTRACK ge"; fi
}
value() { tr -s ' \t' ' ' <"/proc/sys/$(echo "$1" | tr . /)" 2>/dev/null || echo "?"; }
sysctl_file() {
  echo "# written by handover scripts/provision/tune.sh --rate $RATE --timeout $TIMEOUT"
  settings | while read -r k t _; do echo "$k = $(echo "$t" | tr - ' ')"; done
}
limits_file() {
  echo "# written by handover scripts/provision/tune.sh --rate $RATE --timeout $TIMEOUT"
  for who in '*' root; do
    echo "$who soft nofile $NOFILE"
    echo "$who hard nofile $NOFILE"
  done
}

case $MODE in
check)
  short=0
  printf '%-32s %-14s %-14s %s\n' SETTING MEASURED TARGET RESULT
  settings >"${TMPDIR:-/tmp}/tune.$$"
  while read -r k t kind; do
    m=$(value "$k")
    ok=yes
    case $kind in
      ge) [ "$m" != "?" ] && [ "$m" -ge "$t" ] || ok=no ;;
      le) [ "$m" != "?" ] && [ "$m" -le "$t" ] || ok=no ;;
      eq) [ "$m" = "$t" ] || ok=no ;;
      range) lo=${m% *} hi=${m#* }
             [ "$m" != "?" ] && [ $((hi - lo)) -ge $((65535 - 1024)) ] || ok=no ;;
    esac
    if [ $ok = yes ]; then r=ok; else r=SHORT; short=1; fi
    printf '%-32s %-14s %-14s %s\n' "$k" "$m" "$t" "$r"
  done <"${TMPDIR:-/tmp}/tune.$$"
  rm -f "${TMPDIR:-/tmp}/tune.$$"
  # shellcheck disable=SC3045 # dash and bash both have ulimit -H
  m=$(ulimit -Hn)
  if [ "$m" = unlimited ] || [ "$m" -ge "$NOFILE" ]; then r=ok; else r=SHORT; short=1; fi
  printf '%-32s %-14s %-14s %s\n' "nofile (hard, this shell)" "$m" "$NOFILE" "$r"
  exit $short
  ;;
dry)
  echo "# ${PREFIX}/etc/sysctl.d/60-handover.conf"; sysctl_file
  echo "# ${PREFIX}/etc/security/limits.d/60-handover.conf"; limits_file
  exit 0
  ;;
esac

[ "$(id -u)" = 0 ] || die "needs root (or use --dry-run / --check)"
mkdir -p "$PREFIX/etc/sysctl.d" "$PREFIX/etc/security/limits.d"
sysctl_file >"$PREFIX/etc/sysctl.d/60-handover.conf"
limits_file >"$PREFIX/etc/security/limits.d/60-handover.conf"
if [ -z "$PREFIX" ]; then
  sysctl -q -p /etc/sysctl.d/60-handover.conf
else
  settings | while read -r k t _; do
    case $k in net.core.*|net.ipv4.*) sysctl -q -w "$k=$(echo "$t" | tr - ' ')" ;; esac
  done
fi
echo "tuned for $RATE/s (timeout ${TIMEOUT}s): backlog $BACKLOG, nofile $NOFILE"
