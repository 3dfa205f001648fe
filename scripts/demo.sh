#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the safe
# local default: a ping sweep of loopback addresses from this machine, first
# as a playbook, then as an ad hoc call with the short module name.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"
bash "$ROOT/scripts/setup.sh"
export PATH="$ROOT/.venv/bin:$PATH"

log "playbook: ansible-playbook playbooks/sweep.yml (loopback 127.0.0.1-254)"
ansible-playbook playbooks/sweep.yml

log "ad hoc: ansible localhost -m ping_sweep -a 'targets=127.0.0.1-3'"
ansible localhost -m ping_sweep -a 'targets=127.0.0.1-3'
log "done. Try: source .venv/bin/activate; ansible-doc ping_sweep"
