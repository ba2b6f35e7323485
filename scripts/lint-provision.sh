#!/usr/bin/env bash
# Lints what scripts/provision/ ships, with tools nobody here wrote:
#   - shellcheck on every provisioning script and the walkthrough rehearsal;
#   - the systemd unit through systemd's own `systemd-analyze verify`;
#   - the cloud-init user-data parsed as YAML (PyYAML), its embedded files
#     equal to the scripts;
#   - the Dockerfile parsed by Docker's own parser (PyPI `dockerfile`, the
#     buildkit parser) and held to: multi-stage, a non-root USER, STOPSIGNAL,
#     HEALTHCHECK, an exec-form ENTRYPOINT; built when a docker daemon answers.
# Installs shellcheck and python3-venv (Debian) and the two Python packages
# (PyPI, into target/lint-venv) when missing. Exit 0 = clean.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v systemd-analyze >/dev/null || need+=(systemd)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== shellcheck"
shellcheck -x scripts/provision/*.sh scripts/provision/handover-service scripts/walkthrough.sh

echo "== systemd unit"
UNIT_DIR=$(mktemp -d)
trap 'rm -rf "$UNIT_DIR"' EXIT
sed 's/@NOFILE@/65536/' scripts/provision/handover-example-app.service >"$UNIT_DIR/handover-example-app.service"
# The binary is installed by provision.sh, not here: that one complaint is
# expected; any other line (an unknown key, a bad value) is a finding.
findings=$(systemd-analyze verify --man=no "$UNIT_DIR/handover-example-app.service" 2>&1 |
  grep -v 'Command /usr/local/bin/example-app is not executable' || true)
if [ -n "$findings" ]; then
  echo "$findings" >&2
  exit 1
fi
echo "  handover-example-app.service: clean"

VENV=target/lint-venv
if ! "$VENV/bin/python" -c 'import yaml, dockerfile' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pyyaml 'dockerfile==3.4.0'
fi

echo "== cloud-init user-data"
for role in app store; do
  scripts/provision/cloud-init.sh --role "$role" --rate 1000 >"$VENV/user-data-$role.yaml"
  "$VENV/bin/python" - "$VENV/user-data-$role.yaml" "$role" <<'PY'
import base64, pathlib, sys, yaml
path, role = sys.argv[1], sys.argv[2]
text = pathlib.Path(path).read_text()
assert text.startswith("#cloud-config\n"), "user-data must start with #cloud-config"
doc = yaml.safe_load(text)
assert set(doc) <= {"package_update", "packages", "write_files", "runcmd"}, sorted(doc)
assert ("postgresql" in doc["packages"]) == (role == "store"), doc["packages"]
for f in doc["write_files"]:
    name = pathlib.Path(f["path"]).name
    body = base64.b64decode(f["content"])
    assert body == pathlib.Path("scripts/provision", name).read_bytes(), f"{name} differs"
assert doc["runcmd"][0][0] == "/opt/handover/provision/tune.sh", doc["runcmd"]
print(f"  {role}: {len(doc['write_files'])} files, packages {', '.join(doc['packages'])}")
PY
done

echo "== Dockerfile"
"$VENV/bin/python" - scripts/provision/Dockerfile <<'PY'
import sys, dockerfile
cmds = dockerfile.parse_file(sys.argv[1])
kinds = [c.cmd.upper() for c in cmds]
froms = [c for c in cmds if c.cmd.upper() == "FROM"]
assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
last = max(i for i, k in enumerate(kinds) if k == "FROM")
final = cmds[last:]
users = [c.value[0] for c in final if c.cmd.upper() == "USER"]
assert users and users[-1] not in ("root", "0"), f"the runtime stage runs as non-root, got {users}"
assert any(c.cmd.upper() == "STOPSIGNAL" for c in final), "STOPSIGNAL"
assert any(c.cmd.upper() == "HEALTHCHECK" for c in final), "HEALTHCHECK"
entry = [c for c in final if c.cmd.upper() == "ENTRYPOINT"]
assert entry and entry[-1].json, "ENTRYPOINT in exec form (signals reach the app, not a shell)"
print(f"  {len(cmds)} instructions, {len(froms)} stages, user {users[-1]}")
PY
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  echo "== docker build"
  docker build -q -f scripts/provision/Dockerfile -t handover/example-app:lint .
else
  echo "== docker build: skipped (no container runtime answers here; the Dockerfile was parsed and checked)"
fi
echo "== provisioning lint clean"
