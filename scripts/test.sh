#!/usr/bin/env bash
# The test command of the README: installs what the tests need (PostgreSQL,
# iproute2, HAProxy and socat for the any-service test; for the walkthrough
# openssh-server, the shell linter (shellcheck), systemd-analyze and
# python3-venv; chromium for the HTML report's browser test, tmux for the
# live view's, nats-server for the JetStream store: scripts/nats.sh starts
# it), builds every binary the integration tests start, runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
# The walkthrough rehearsal: sshd in the test hosts; the provisioning lint.
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== building binaries"
cargo build --workspace --bins

echo "== running tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --profile ci "$@"
  cargo test --workspace --doc
  # The demo build (scripts/demo.sh): SQLite only, other stores refused.
  cargo nextest run -p example-app -p migrator --no-default-features --lib --profile ci "$@"
else
  cargo test --workspace "$@"
  cargo test -p example-app -p migrator --no-default-features --lib "$@"
fi
