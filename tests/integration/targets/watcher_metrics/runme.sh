#!/usr/bin/env bash
# The watcher role's metrics setting, without installing the watcher: watcher.ini.j2 rendered
# with the role's own defaults and vars and read by fleet-watcher's settings code; the role's
# input checks for watcher_textfile_dir; its removal of the metrics file. Everything happens
# in a temporary directory of its own. (The daemon writing the file, read back by a real
# node_exporter, is tests/unit/plugins/module_utils/test__metrics.py.)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COLL="$(cd "$HERE/../../../.." && pwd)"
[ -f "$COLL/galaxy.yml" ] || COLL="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/sysops/fleet"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/settings.yml" <<SETTINGS
watcher_root: $WORK/root
watcher_user: root
watcher_textfile_dir: $WORK/textfile
SETTINGS
cd "$HERE"
ansible-playbook -i inventory.yml role_metrics.yml -e "work=$WORK" -e "collection=$COLL" \
    -e "collections_root=${ANSIBLE_COLLECTIONS_PATH%%:*}" "$@"
