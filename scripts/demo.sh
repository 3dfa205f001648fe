#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the safe
# local default (inventory/localhost.yml): playbooks/site.yml on this machine
# only: the watcher installed for the current user under ~/sysops-fleet-demo
# (their own crontab), a disk report, a loopback sweep (127.0.0.1-254) and
# the merged fleet report in .build/reports. Then an ad hoc sweep with the
# short module name.
#   scripts/demo.sh          install and run
#   scripts/demo.sh remove   remove the demo watcher again (files, crontab, process)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"
bash "$ROOT/scripts/setup.sh"
export PATH="$ROOT/.venv/bin:$PATH"

if [ "${1:-}" = remove ]; then
    log "removing the demo watcher: ansible-playbook playbooks/watcher.yml -e watcher_state=absent"
    ansible-playbook playbooks/watcher.yml -e watcher_state=absent
    exit 0
fi

log "ansible-playbook playbooks/site.yml (localhost only, loopback sweep)"
ansible-playbook playbooks/site.yml

log "ad hoc: ansible localhost -m ping_sweep -a 'targets=127.0.0.1-3'"
ansible localhost -m ping_sweep -a 'targets=127.0.0.1-3'

cat >&2 <<MSG
[sysops.fleet] done. Where to look:
  fleet report:   $ROOT/.build/reports/fleet-report.txt (and .html)
  watcher:        $HOME/sysops-fleet-demo/opt/sysops-fleet/bin/fleet-watcher status
  watcher log:    $HOME/sysops-fleet-demo/var/log/sysops-fleet/watcher.log
  cron entries:   crontab -l
  docs:           source .venv/bin/activate; ansible-doc ping_sweep; ansible-doc -t role sysops.fleet.watcher
Remove the demo watcher again with: ./scripts/demo.sh remove
MSG
