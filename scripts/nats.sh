#!/usr/bin/env bash
# Throwaway NATS JetStream servers for tests and benchmarks (Debian's
# `nats-server`, installed when missing).
#   scripts/nats.sh start DIR      one server with JetStream in DIR; prints its
#                                  URL (also in DIR/url): nats://user:pass@host:port
#   scripts/nats.sh cluster DIR    three servers n1..n3 clustered over loopback
#                                  (an R3 stream survives one down); prints
#                                  nats://user:pass@h:p1,h:p2,h:p3
#   scripts/nats.sh kill DIR N     kill -9 node N (1..3; 1 for a single server);
#                                  N may be `leader:STREAM`: the node leading
#                                  that stream (printed), the one whose loss hurts
#   scripts/nats.sh restart DIR N  start node N again on its ports and data
#                                  (N may be `all`: every node that is down)
#   scripts/nats.sh stop DIR [N]   stop every node of DIR (or node N, which may be
#                                  `leader:STREAM`) by its pid with SIGTERM: a
#                                  leader hands its streams over as it goes (DIR
#                                  is left for the caller to remove)
# A store URL is the printed URL plus `/STREAM`. If DIR already holds servers,
# `start`/`cluster` start any stopped node again and print the same URL.
# Env: NATS_LISTEN (default 127.0.0.1) - the address the servers listen on.
set -euo pipefail

die() { echo "nats.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: nats.sh start|cluster|stop DIR | kill|restart|stop DIR N"
CMD="$1"
DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
HOST="${NATS_LISTEN:-127.0.0.1}"
LIB="$(cd "$(dirname "$0")" && pwd)/lib"

if ! command -v nats-server >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "nats-server is not installed and installing it needs root"
  echo "nats.sh: installing nats-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq nats-server >/dev/null
fi

# A port free now (scripts/lib/free_port.py: below the ephemeral range).
free_port() {
  python3 "$LIB/free_port.py" 2>/dev/null || echo $((10000 + RANDOM % 20000))
}

# Picks node N's ports: client, monitoring and (in a cluster) route.
write_config() {
  local d="$DIR/n$1"
  mkdir -p "$d/data"
  free_port >"$d/port"
  free_port >"$d/http"
  free_port >"$d/route"
}

# Writes node N's config file (the password is in it: mode 600).
render_config() {
  local n="$1" nodes="$2" pass="$3" d="$DIR/n$1" routes="" i
  {
    echo "server_name: n$n"
    echo "listen: $HOST:$(cat "$d/port")"
    echo "http: 127.0.0.1:$(cat "$d/http")"
    echo "jetstream { store_dir: \"$d/data\" }"
    echo "authorization { user: handover, password: \"$pass\" }"
    if [ "$nodes" -gt 1 ]; then
      for i in $(seq 1 "$nodes"); do
        [ "$i" = "$n" ] || routes="$routes, \"nats-route://$HOST:$(cat "$DIR/n$i/route")\""
      done
      echo "cluster { name: handover, listen: $HOST:$(cat "$d/route"), routes: [${routes#, }] }"
    fi
  } >"$d/server.conf"
  chmod 600 "$d/server.conf"
}

running() { [ -s "$DIR/n$1/pid" ] && kill -0 "$(cat "$DIR/n$1/pid")" 2>/dev/null; }

start_node() {
  local n="$1" d="$DIR/n$1"
  [ -s "$d/server.conf" ] || die "$DIR has no node $n"
  running "$n" && return 0
  rm -f "$d/pid"
  setsid nats-server -c "$d/server.conf" -P "$d/pid" -l "$d/server.log" </dev/null >/dev/null 2>&1 &
}

# True once node N answers /healthz (JetStream ready: in a cluster, a meta
# leader is known and the node's streams are current), false after LIMIT
# seconds (default 10) or as soon as the node has exited.
ready() {
  local n="$1" limit="${2:-10}" port status started=$SECONDS
  port="$(cat "$DIR/n$n/http")"
  while (( SECONDS - started < limit )); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
      # Bounded: whatever holds the port may never answer.
      if read -r -t 2 status <&3 && [[ "$status" == *" 200"* ]]; then exec 3>&-; return 0; fi
      exec 3>&-
    fi
    # Exited (given at least a second, SECONDS being whole, to write its
    # pid file): no point waiting on.
    if (( SECONDS - started >= 2 )) && ! running "$n"; then break; fi
    sleep 0.05
  done
  return 1
}

# A restarted node is current once its streams have caught up (after a lost
# quorum, once their leader is elected again): a CI run saw that take over
# 10 s ("stream ... is not current"), so a restart waits up to 30 s.
RESTART_LIMIT=30
wait_ready() {
  ready "$1" "$RESTART_LIMIT" && return 0
  tail -20 "$DIR/n$1/server.log" >&2 || true
  die "node $1 not ready within ${RESTART_LIMIT}s"
}

# A node of a new cluster that could not bind its ports gets new ones for
# every node (routes name each other's ports), up to three tries.
bind_failed() { grep -qs 'address already in use' "$DIR/n$1/server.log"; }

nodes() { cat "$DIR/nodes"; }

# Picks ports and writes every node's config and the URL.
configure() {
  local count="$1" pass i urls=""
  pass="$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)"
  for i in $(seq 1 "$count"); do write_config "$i"; done
  for i in $(seq 1 "$count"); do render_config "$i" "$count" "$pass"; done
  for i in $(seq 1 "$count"); do urls="$urls,$HOST:$(cat "$DIR/n$i/port")"; done
  printf 'nats://handover:%s@%s\n' "$pass" "${urls#,}" >"$DIR/url"
  chmod 600 "$DIR/url"
  echo "$count" >"$DIR/nodes"
}

create() {
  local count="$1" i try fresh=0 lost
  if [ ! -s "$DIR/nodes" ]; then configure "$count"; fresh=1; fi
  [ "$(nodes)" = "$count" ] || die "$DIR holds $(nodes) node(s), not $count"
  for try in 1 2 3; do
    for i in $(seq 1 "$count"); do start_node "$i"; done
    lost=""
    for i in $(seq 1 "$count"); do ready "$i" || { lost="$i"; break; }; done
    [ -z "$lost" ] && { cat "$DIR/url"; return 0; }
    if [ "$fresh" = 1 ] && [ "$try" -lt 3 ] && bind_failed "$lost"; then
      echo "nats.sh: node $lost found a port taken; new ports for all (try $((try + 1)))" >&2
      for i in $(seq 1 "$count"); do stop_node "$i" TERM; done
      rm -rf "$DIR"/n*
      configure "$count"
      continue
    fi
    tail -20 "$DIR/n$lost/server.log" >&2 || true
    # A new cluster that failed is not left running: the caller gets no
    # URL and so would never stop it.
    if [ "$fresh" = 1 ]; then
      for i in $(seq 1 "$count"); do stop_node "$i" TERM; done
    fi
    die "node $lost not ready within 10s"
  done
}

stop_node() {
  local n="$1" sig="$2" pid i
  running "$n" || return 0
  pid="$(cat "$DIR/n$n/pid")"
  kill "-$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$DIR/n$n/pid"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/n$n/pid"
}

# The node leading STREAM, asked of any node's monitoring port (/jsz).
leader_of() {
  local stream="$1" i name
  for i in $(seq 1 "$(nodes)"); do
    running "$i" || continue
    name="$(python3 - "$(cat "$DIR/n$i/http")" "$stream" <<'PY' 2>/dev/null || true
import json, sys, urllib.request
port, stream = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(f"http://127.0.0.1:{port}/jsz?accounts=true&streams=true", timeout=5) as r:
    jsz = json.load(r)
for acc in jsz.get("account_details") or []:
    for s in acc.get("stream_detail") or []:
        if s.get("name") == stream and (s.get("cluster") or {}).get("leader"):
            print(s["cluster"]["leader"])
PY
)"
    [ -n "$name" ] && { echo "${name#n}"; return 0; }
  done
  die "no node knows a leader of stream $stream"
}

node_arg() {
  [ $# -ge 3 ] || die "usage: nats.sh $CMD DIR N"
  [ -s "$DIR/nodes" ] || die "$DIR holds no servers"
  if [[ "$3" == leader:* ]]; then leader_of "${3#leader:}"; return 0; fi
  [[ "$3" =~ ^[0-9]+$ ]] && [ "$3" -ge 1 ] && [ "$3" -le "$(nodes)" ] || die "no node $3 in $DIR"
  echo "$3"
}

case "$CMD" in
start) create 1 ;;
cluster) create 3 ;;
kill) n="$(node_arg "$@")"; echo "$n"; stop_node "$n" KILL ;;
restart)
  if [ "${3:-}" = all ]; then
    [ -s "$DIR/nodes" ] || die "$DIR holds no servers"
    for i in $(seq 1 "$(nodes)"); do start_node "$i"; done
    for i in $(seq 1 "$(nodes)"); do wait_ready "$i"; done
  else
    n="$(node_arg "$@")"; start_node "$n"; wait_ready "$n"
  fi
  ;;
stop)
  if [ $# -ge 3 ]; then
    n="$(node_arg "$@")"; echo "$n"; stop_node "$n" TERM
  else
    [ -s "$DIR/nodes" ] || exit 0
    for i in $(seq 1 "$(nodes)"); do stop_node "$i" TERM; done
  fi
  ;;
*) die "unknown command $CMD (start|cluster|kill|restart|stop)" ;;
esac
