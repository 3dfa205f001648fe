#!/usr/bin/env bash
# Real pings in the loopback lab: a network namespace of our own in which
# nftables silences every 127.x address whose last octet is a multiple of 3.
# The sweeps run inside the namespace, so nothing leaves it; the namespace is
# removed on exit. Needs root, ip (iproute2) and nft (nftables).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# From a clone the collection is four levels up; ansible-test copies only
# this target, so there it is found through ANSIBLE_COLLECTIONS_PATH.
COLL="$(cd "$HERE/../../../.." && pwd)"
[ -f "$COLL/galaxy.yml" ] || COLL="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/sysops/fleet"
LAB="$COLL/tests/lab.py"
NS="fleet-it-$$"
python3 "$LAB" up "$NS"
trap 'python3 "$LAB" down "$NS"' EXIT

in_lab() { ip netns exec "$NS" "$@"; }
cd "$HERE"
export ANSIBLE_ROLES_PATH="$COLL/roles"

for method in socket ping; do
    echo "=== ping_sweep method=$method (linear strategy)"
    in_lab ansible-playbook -i inventory.yml sweep.yml -e "method=$method" "$@"
done

echo "=== ping_sweep with every CPU saturated by busy loops"
busy=()
for _cpu in $(seq $(( $(nproc) * 2 ))); do
    python3 -c 'while True: pass' &
    busy+=($!)
done
in_lab ansible-playbook -i inventory.yml busy.yml "$@" || { kill "${busy[@]}"; exit 1; }
kill "${busy[@]}"

echo "=== ping_sweep under the mitogen strategy (modules run in-process)"
MITOGEN_DIR="$(python -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))')"
for method in socket ping; do
    in_lab env ANSIBLE_STRATEGY_PLUGINS="$MITOGEN_DIR/plugins/strategy" ANSIBLE_STRATEGY=mitogen_linear \
        ANSIBLE_DEPRECATION_WARNINGS=false \
        ansible-playbook -i inventory.yml sweep.yml -e "method=$method" -e mitogen=true "$@"
done
