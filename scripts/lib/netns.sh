# shellcheck shell=bash
# Test hosts on one machine: each host is a network namespace with one veth
# leg on a bridge that lives in its own "switch" namespace, so nothing is
# added to the machine's own network and every address is one the test made.
#
# Addresses come from TEST-NET-1 (192.0.2.0/24, RFC 5737): reserved for
# examples, never a real host, and only reachable inside these namespaces.

HO_NS_PREFIX=${HO_NS_PREFIX:-ho}
HO_NET=${HO_NET:-192.0.2}
HO_SWITCH="${HO_NS_PREFIX}-switch"

# netns_up NAME OCTET: create host namespace PREFIX-NAME at HO_NET.OCTET.
netns_up() {
  local name=$1 octet=$2 ns="${HO_NS_PREFIX}-$1"
  ip netns list | grep -qw "$HO_SWITCH" || {
    ip netns add "$HO_SWITCH"
    ip -n "$HO_SWITCH" link add br0 type bridge
    ip -n "$HO_SWITCH" link set br0 up
    ip -n "$HO_SWITCH" link set lo up
  }
  ip netns add "$ns"
  ip link add "h-$name" netns "$ns" type veth peer name "s-$name" netns "$HO_SWITCH"
  ip -n "$HO_SWITCH" link set "s-$name" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$HO_NET.$octet/24" dev "h-$name"
  ip -n "$ns" link set "h-$name" up
}

# netns_down: delete every namespace this file created (and so their veths).
netns_down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^${HO_NS_PREFIX}-" || true); do
    # Processes still inside keep the namespace alive; end only those.
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

# netns_exec NAME CMD...: run CMD inside host NAME.
netns_exec() {
  local ns="${HO_NS_PREFIX}-$1"; shift
  ip netns exec "$ns" "$@"
}

# hosts_up: the five hosts of the two-host scripts (store, a, b, edge and the
# client) at HO_NET.10 to .14; sets STORE_IP A_IP B_IP EDGE_IP CLIENT_IP.
hosts_up() {
  STORE_IP=$HO_NET.10 A_IP=$HO_NET.11 B_IP=$HO_NET.12 EDGE_IP=$HO_NET.13 CLIENT_IP=$HO_NET.14
  netns_up store 10
  netns_up a 11
  netns_up b 12
  netns_up edge 13
  netns_up client 14
}

# stop_pids PID...: SIGTERM, up to 5 s each to exit, then SIGKILL.
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
