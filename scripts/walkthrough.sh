#!/usr/bin/env bash
# The rehearsal of docs/walkthrough.md: the two-droplet walkthrough on one
# machine. The store, A, B, the edge (Cloudflare's stand-in) and your laptop
# (the client, where the migrator runs) each get a network namespace and a
# TEST-NET-1 address; A, B and the store run sshd with throwaway keys; the
# hosts are provisioned with scripts/provision/ over ssh; then the
# walkthrough's own docs/two-droplets.toml (addresses substituted) runs:
#
#   1. preflight refusals, each exit 2 with nothing changed: an ssh target
#      that does not answer, a changed host key, a token without DNS:Edit,
#      a record that is not proxied;
#   2. migrator preflight, then migrator run A → B (must pass, 0 lost);
#   3. the way back: the same plan with A and B swapped (must pass).
#
#   scripts/walkthrough.sh [--rate N] [--keep DIR]
#
# Needs root, iproute2, openssh-server, PostgreSQL (scripts/test.sh installs
# them). Cleans up every namespace, process, key and file it made, on every
# exit path. Env: WALKTHROUGH_REPORT (copy the A → B report there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RATE=100
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "walkthrough.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "walkthrough.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "walkthrough.sh: needs root (network namespaces)" >&2; exit 2; }
for t in ip sshd ssh ssh-keygen; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "walkthrough.sh: needs $t (scripts/test.sh installs it)" >&2; exit 2; }
done
SSHD=$(command -v sshd || echo /usr/sbin/sshd)

if [ -z "${HANDOVER_BIN_DIR:-}" ]; then
  cargo build --release --bins -q
  HANDOVER_BIN_DIR="$ROOT/target/release"
fi
BIN=$HANDOVER_BIN_DIR
for b in example-app edge migrator; do
  [ -x "$BIN/$b" ] || die "$BIN/$b not built"
done

export HO_NS_PREFIX="${HO_NS_PREFIX:-hw$$}"
# TEST-NET-3, the walkthrough's own addresses (only inside these namespaces),
# so what the rehearsal prints is what docs/walkthrough.md shows.
export HO_NET="${HO_NET:-203.0.113}"
# shellcheck source=scripts/lib/netns.sh
source "$ROOT/scripts/lib/netns.sh"

WORK=${KEEP:-$(mktemp -d /tmp/walkthrough.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK" # PostgreSQL's user must reach its directory below
PIDS=()
MADE_RUN_SSHD=""
cleanup() {
  local rc=$?
  set +e
  for h in a b; do
    [ -s "$WORK/$h/run/example-app.pid" ] && PIDS+=("$(cat "$WORK/$h/run/example-app.pid")")
  done
  for f in "$WORK"/ssh/sshd-*.pid; do [ -s "$f" ] && PIDS+=("$(cat "$f")"); done
  [ ${#PIDS[@]} -eq 0 ] || stop_pids "${PIDS[@]}"
  [ -e "$WORK/pg/data/PG_VERSION" ] && netns_exec store "$ROOT/scripts/pg.sh" stop "$WORK/pg"
  netns_down
  [ -n "$MADE_RUN_SSHD" ] && rmdir /run/sshd 2>/dev/null
  if [ $rc -ne 0 ]; then
    echo "walkthrough.sh: failed (exit $rc); logs:" >&2
    for f in "$WORK"/*.log "$WORK"/*/run/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  fi
  # The throwaway keys go with the work directory, unless --keep.
  [ -n "$KEEP" ] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NET=$HO_NET
hosts_up
echo "== hosts: store $STORE_IP, a $A_IP, b $B_IP, edge $EDGE_IP, client (your laptop) $CLIENT_IP"

echo "== sshd on store, a and b (throwaway keys)"
SSH_DIR=$WORK/ssh
mkdir -p "$SSH_DIR"
chmod 700 "$SSH_DIR"
ssh-keygen -q -t ed25519 -N '' -C walkthrough -f "$SSH_DIR/id_ed25519"
cp "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/authorized_keys"
[ -d /run/sshd ] || { mkdir -p /run/sshd; chmod 755 /run/sshd; MADE_RUN_SSHD=1; }
: >"$SSH_DIR/known_hosts"
for h in store a b; do
  ip_var="${h^^}_IP"
  ip=${!ip_var}
  ssh-keygen -q -t ed25519 -N '' -C "host-$h" -f "$SSH_DIR/host-$h"
  mkdir -p "$WORK/$h/usr/local/bin"
  cat >"$SSH_DIR/sshd-$h.conf" <<CONF
ListenAddress $ip:22
HostKey $SSH_DIR/host-$h
AuthorizedKeysFile $SSH_DIR/authorized_keys
PidFile $SSH_DIR/sshd-$h.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
# This "droplet"'s own /usr/local/bin and /etc/handover (the namespaces share
# one filesystem; a real droplet has its own).
SetEnv PATH=$WORK/$h/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HANDOVER_CONF=$WORK/$h/etc/handover/example-app.env
CONF
  netns_exec "$h" "$SSHD" -f "$SSH_DIR/sshd-$h.conf" -E "$WORK/sshd-$h.log"
  echo "$ip $(cut -d' ' -f1,2 "$SSH_DIR/host-$h.pub")" >>"$SSH_DIR/known_hosts"
done
SSH=(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$SSH_DIR/known_hosts" -i "$SSH_DIR/id_ed25519")
# on HOST CMD...: CMD on HOST over ssh, from your laptop. Secrets go in on stdin.
on() { local h=$1; shift; local ip_var; ip_var="${h^^}_IP"; netns_exec client "${SSH[@]}" "root@${!ip_var}" "$@"; }
for _ in $(seq 50); do on b true 2>/dev/null && break; sleep 0.1; done

echo "== PostgreSQL on the store host, provisioned over ssh"
SUPER_URL=$(PG_LISTEN=$STORE_IP netns_exec store "$ROOT/scripts/pg.sh" start "$WORK/pg")
PG_PORT=$(cat "$WORK/pg/port")
SUPER_PW=${SUPER_URL#postgres://handover:}; SUPER_PW=${SUPER_PW%%@*}
DB_PW=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
on store sh -s >"$WORK/provision-store.out" <<SH
export PGHOST=$STORE_IP PGPORT=$PG_PORT PGUSER=handover PGPASSWORD=$SUPER_PW HANDOVER_DB_PASSWORD=$DB_PW
exec $ROOT/scripts/provision/provision.sh store --no-install --allow $NET.0/24
SH
STORE_URL="postgres://shop:$DB_PW@$STORE_IP:$PG_PORT/shop"

for h in a b; do
  echo "== provision $h over ssh"
  on "$h" sh -s >"$WORK/provision-$h.out" <<SH
export HANDOVER_STORE='$STORE_URL'
exec $ROOT/scripts/provision/provision.sh app --instance $h --listen 0.0.0.0:80 \
  --binary $BIN/example-app --rate $RATE --prefix $WORK/$h
SH
done

echo "== start A"
on a handover-service start
for _ in $(seq 100); do
  netns_exec client bash -c "exec 3<>/dev/tcp/$A_IP/80" 2>/dev/null && break; sleep 0.1
done

echo "== the edge (Cloudflare's stand-in) on host edge"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
RO_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORK/edge.toml" <<TOML
api_listen = "$EDGE_IP:8000"
proxy_listen = "$EDGE_IP:80"
origin_port = 80
propagation = "1s"
idle_timeout = "2s"
state_file = "$WORK/edge-state.json"
tokens_env = "EDGE_TOKENS"
read_only_tokens_env = "EDGE_RO_TOKENS"
[[zones]]
name = "example.com"
[[zones.records]]
name = "shop.example.com"
type = "A"
content = "$A_IP"
proxied = true
ttl = 1
[[zones.records]]
name = "direct.example.com"
type = "A"
content = "$A_IP"
proxied = false
ttl = 300
TOML
EDGE_TOKENS=$TOKEN EDGE_RO_TOKENS=$RO_TOKEN ip netns exec "${HO_NS_PREFIX}-edge" "$BIN/edge" --config "$WORK/edge.toml" \
  >"$WORK/edge.out" 2>"$WORK/edge.log" &
PIDS+=("$!")
for _ in $(seq 300); do grep -q '"event":"listening"' "$WORK/edge.out" 2>/dev/null && break; sleep 0.1; done

# The walkthrough's plan, addresses substituted; the way back swaps A and B.
subst() {
  sed "s/203\.0\.113\.10/@S@/g; s/203\.0\.113\.11/@A@/g; s/203\.0\.113\.12/@B@/g" "$ROOT/docs/two-droplets.toml" |
    sed "s/@S@/$STORE_IP/g; s/@A@/$1/g; s/@B@/$2/g"
}
subst "$A_IP" "$B_IP" >"$WORK/two-droplets.toml"
subst "$B_IP" "$A_IP" >"$WORK/back.toml"
# What differs on one machine: the API is the edge, the public name resolves
# to it over plain HTTP, this run's keys and data directory, a shorter run.
COMMON=(--api-base "http://$EDGE_IP:8000/client/v4/" --target "http://shop.example.com/"
  --set "feeder.resolve={ \"shop.example.com\" = \"$EDGE_IP:80\" }"
  --set "ssh.identity=\"$SSH_DIR/id_ed25519\"" --set "ssh.known_hosts=\"$SSH_DIR/known_hosts\""
  --set "store.data_dir=\"$WORK/pg/data\""
  --rate "$RATE" --run-before-flip 4s --run-after-flip 3s)
migrator() {
  (cd "$WORK" && NO_COLOR=1 netns_exec client "$BIN/migrator" "$@")
}

# expect_refusal NAME TEXT ARGS...: exit 2, TEXT in the output, nothing changed.
expect_refusal() {
  local name=$1 text=$2; shift 2
  echo "== refused: $name"
  set +e
  migrator preflight --plan "$WORK/two-droplets.toml" "${COMMON[@]}" "$@" >"$WORK/refusal-$name.out" 2>&1
  local rc=$?
  set -e
  sed 's/^/   /' "$WORK/refusal-$name.out" | grep -i "refused\|error\|preflight:" | head -3 || true
  [ $rc -eq 2 ] || die "$name: exit $rc, expected 2"
  grep -q -- "$text" "$WORK/refusal-$name.out" || die "$name: the output does not say \"$text\""
  if grep -q -- "$TOKEN\|$RO_TOKEN\|$DB_PW\|$SUPER_PW" "$WORK/refusal-$name.out"; then die "$name: a secret was printed"; fi
  [ "$(on b handover-service status 2>/dev/null)" = stopped ] || die "$name: B was started"
}
export CLOUDFLARE_API_TOKEN=$TOKEN
expect_refusal ssh-unreachable "does not answer" --set "b.ssh=\"root@$NET.99\"" --set "ssh.connect_timeout=\"2s\""
ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/impostor"
sed "s|^$B_IP .*|$B_IP $(cut -d' ' -f1,2 "$SSH_DIR/impostor.pub")|" "$SSH_DIR/known_hosts" >"$SSH_DIR/known_hosts.changed"
expect_refusal host-key-changed "CHANGED" --set "ssh.known_hosts=\"$SSH_DIR/known_hosts.changed\""
CLOUDFLARE_API_TOKEN=$RO_TOKEN expect_refusal token-read-only "DNS:Edit"
expect_refusal not-proxied "not proxied" --set 'switch.record="direct.example.com"'

echo "== migrator preflight"
migrator preflight --plan "$WORK/two-droplets.toml" "${COMMON[@]}" | tee "$WORK/preflight.out"

# migrate NAME PLAN: a whole migrator run, output in WORK/NAME.{out,log,json};
# it must pass and print or write no secret.
migrate() {
  local name=$1 plan=$2 rc
  set +e
  migrator run --plan "$plan" "${COMMON[@]}" --report "$WORK/$name.json" \
    --workdir "$WORK" >"$WORK/$name.out" 2>"$WORK/$name.log"
  rc=$?
  set -e
  if [ "$name" = run ]; then cat "$WORK/run.out"; else tail -n 12 "$WORK/$name.out"; fi
  [ -n "${WALKTHROUGH_REPORT:-}" ] && [ "$name" = run ] && cp "$WORK/run.json" "$WALKTHROUGH_REPORT"
  [ $rc -eq 0 ] || die "migrator run ($name): exit $rc"
  if grep -q -- "$TOKEN\|$DB_PW\|$SUPER_PW" "$WORK/$name.out" "$WORK/$name.log" "$WORK/$name.json"; then
    die "$name: a secret was printed or written to the report"
  fi
}

echo "== migrator run: A → B"
migrate run "$WORK/two-droplets.toml"
echo "== the way back: B → A (the same plan, A and B swapped)"
migrate back "$WORK/back.toml"
echo "== walkthrough rehearsed: A → B and back, both passed"
