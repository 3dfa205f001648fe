#!/usr/bin/env bash
# The sysops.fleet.sweep inventory plugin, run by ansible-inventory inside the
# loopback lab: a network namespace of our own in which nftables silences every
# 127.x address whose last octet is a multiple of 3. An nftables counter in the
# namespace counts every echo request sent, so the test knows when a parse
# probed and when the inventory cache answered. Nothing leaves the namespace,
# which is removed on exit. Needs root, ip (iproute2), nft (nftables), setpriv (util-linux).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# From a clone the collection is four levels up; ansible-test copies only
# this target, so there it is found through ANSIBLE_COLLECTIONS_PATH.
COLL="$(cd "$HERE/../../../.." && pwd)"
[ -f "$COLL/galaxy.yml" ] || COLL="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/sysops/fleet"
LAB="$COLL/tests/lab.py"
NS="fleet-inv-$$"
WORK="$(mktemp -d)"
python3 "$LAB" up "$NS"
trap 'python3 "$LAB" down "$NS"; rm -rf "$WORK"' EXIT
cd "$HERE"

in_lab() { ip netns exec "$NS" "$@"; }
CIDR=127.80.0.0/24
EXCLUDE=127.80.0.250-254
# 1..249 probed once each; the 83 silent ones (multiples of 3) once more (retries: 1)
FIRST_SWEEP=$((249 + 83))
ALL_SILENT=$((249 * 2))

# Every echo request is counted before anything may drop it (priority -100); "silence"
# (priority -10) drops them all when the test wants every host gone.
in_lab nft add counter inet lab probes
in_lab nft add chain inet lab count '{ type filter hook input priority -100; policy accept; }'
in_lab nft add rule inet lab count ip protocol icmp icmp type echo-request counter name probes
in_lab nft add chain inet lab silence '{ type filter hook input priority -10; policy accept; }'
silence_all() { in_lab nft add rule inet lab silence ip protocol icmp icmp type echo-request drop; }
answer_again() { in_lab nft flush chain inet lab silence; }
# Echo requests counted since the last call (the counter is read and zeroed at once).
probes_sent() {
    in_lab nft -j reset counter inet lab probes \
        | python3 -c 'import json, sys; print(next(o["counter"]["packets"] for o in json.load(sys.stdin)["nftables"] if "counter" in o))'
}
expect_probes() {  # expect_probes N WHAT
    local sent
    sent="$(probes_sent)"
    if [ "$sent" != "$1" ]; then echo "FAIL: $2: $sent echo requests, expected $1"; exit 1; fi
    echo "ok: $2: $sent echo requests"
}
check() {  # check list|graph FILE [checker options]
    python3 "$HERE/check_inventory.py" "$1" "$2" --lab "$LAB" --cidr "$CIDR" --exclude "$EXCLUDE" "${@:3}"
}
timed() {  # timed LABEL COMMAND...: runs it, prints its wall time
    local start end
    start="$(date +%s.%N)"
    "${@:2}"
    end="$(date +%s.%N)"
    python3 -c "import sys; print(f'time: {sys.argv[1]}: {float(sys.argv[3]) - float(sys.argv[2]):.2f}s')" "$1" "$start" "$end"
}
export ANSIBLE_INVENTORY_CACHE_CONNECTION="$WORK/cache"
probes_sent >/dev/null

echo "=== the first parse sweeps the lab: exactly the hosts that answer, their variables and groups"
timed "ansible-inventory --list, sweeping (/24, timeout 0.5 s, 1 retry)" \
    in_lab ansible-inventory -i lab.sweep.yml --list --output "$WORK/first.json"
check list "$WORK/first.json"
expect_probes $FIRST_SWEEP "the first parse"

echo "=== the second parse is served from the cache: the same hosts, not one probe"
timed "ansible-inventory --graph, from the cache" \
    in_lab ansible-inventory -i lab.sweep.yml --graph --output "$WORK/cached.txt"
check graph "$WORK/cached.txt"
expect_probes 0 "a parse from the cache"

echo "=== every host silenced: the cache still answers with the hosts it swept"
silence_all
in_lab ansible-inventory -i lab.sweep.yml --list --output "$WORK/cached.json"
check list "$WORK/cached.json"
expect_probes 0 "a parse from the cache while every host is silent"

echo "=== without the cache every parse sweeps: no host answers now"
in_lab ansible-inventory -i nocache.sweep.yml --list --output "$WORK/nocache.json"
check list "$WORK/nocache.json" --silent
expect_probes $ALL_SILENT "a parse with cache: false"

echo "=== --flush-cache sweeps again and stores the new answer"
if ansible-inventory --help | grep -q -- --flush-cache; then
    in_lab ansible-inventory -i lab.sweep.yml --flush-cache --list --output "$WORK/flushed.json"
else  # ansible-core before 2.19: only ansible-playbook has --flush-cache; the list then comes from the cache
    printf -- '- hosts: localhost\n  gather_facts: false\n  tasks: []\n' > "$WORK/nothing.yml"
    in_lab ansible-playbook -i lab.sweep.yml --flush-cache "$WORK/nothing.yml" >/dev/null
    in_lab ansible-inventory -i lab.sweep.yml --list --output "$WORK/flushed.json"
fi
check list "$WORK/flushed.json" --silent
expect_probes $ALL_SILENT "a parse with --flush-cache"
in_lab ansible-inventory -i lab.sweep.yml --list --output "$WORK/after-flush.json"
check list "$WORK/after-flush.json" --silent
expect_probes 0 "the parse after --flush-cache"
answer_again

echo "=== a cached sweep made with other options is not used"
cp lab.sweep.yml "$WORK/moving.sweep.yml"
in_lab ansible-inventory -i "$WORK/moving.sweep.yml" --list --output "$WORK/moving1.json"
check list "$WORK/moving1.json"
expect_probes $FIRST_SWEEP "a new source"
sed -i 's/^exclude: .*/exclude: [127.80.0.200-254]/' "$WORK/moving.sweep.yml"
in_lab ansible-inventory -i "$WORK/moving.sweep.yml" --list --output "$WORK/moving2.json"
python3 "$HERE/check_inventory.py" list "$WORK/moving2.json" --lab "$LAB" --cidr "$CIDR" --exclude 127.80.0.200-254
expect_probes $((199 + 66)) "the same source with another exclude"

# one_line FILE: the file's text with the lines joined back (ansible-core before 2.19 wraps a
# warning or error at 80 columns, after a hyphen too, wherever the temporary path before it ends).
one_line() { python3 -c 'import re, sys; print(re.sub(r"\s*\n\s*", " ", re.sub(r"-\n", "-", open(sys.argv[1]).read())))' "$1"; }

echo "=== names: a host named as its target, an unresolvable name is a warning (no DNS server in the lab)"
in_lab ansible-inventory -i names.sweep.yml --list --output "$WORK/names.json" 2>"$WORK/names.err"
python3 - "$WORK/names.json" "$WORK/names.err" <<'PY'
import json, re, sys
sys.path.insert(0, ".")
from check_inventory import unwrap
hostvars = unwrap(json.load(open(sys.argv[1])))["_meta"]["hostvars"]
# ansible-core before 2.19 wraps a warning at 80 columns, after a hyphen too (textwrap): join
# the lines back, so the message matches whatever the length of the temporary path before it.
errors = re.sub(r"\s*\n\s*", " ", re.sub(r"-\n", "-", open(sys.argv[2]).read()))
assert sorted(hostvars) == ["127.80.0.1", "127.80.0.2", "localhost"], sorted(hostvars)
assert hostvars["localhost"]["ansible_host"] == "127.0.0.1", hostvars["localhost"]
assert hostvars["localhost"]["sweep_name"] == "localhost", hostvars["localhost"]
assert "sweep_name" not in hostvars["127.80.0.1"], hostvars["127.80.0.1"]
assert "no-such-host.invalid: the name does not resolve" in errors, errors
print("ok: localhost named as given, 127.80.0.3 silent, no-such-host.invalid a warning")
PY
expect_probes 4 "the names sweep (127.0.0.1, 127.80.0.1-3, no retries)"

echo "=== bad options: a clear error naming the option, and nothing sent"
bad() {  # bad 'YAML LINES' 'EXPECTED MESSAGE'
    printf 'plugin: sysops.fleet.sweep\n%s\n' "$1" > "$WORK/bad.sweep.yml"
    if ANSIBLE_INVENTORY_UNPARSED_FAILED=true in_lab ansible-inventory -i "$WORK/bad.sweep.yml" --list \
            >/dev/null 2>"$WORK/bad.err"; then
        echo "FAIL: $1: ansible-inventory succeeded"; exit 1
    fi
    # EXPECTED may give ansible-core's own words as they are before and since 2.19: "OLD || NEW"
    local text found=0
    while IFS= read -r text; do
        one_line "$WORK/bad.err" | grep -qF "$text" && found=1
    done < <(printf '%s\n' "${2// || /$'\n'}")
    [ $found = 1 ] || { echo "FAIL: $1: no '$2' in:"; cat "$WORK/bad.err"; exit 1; }
    echo "ok: '$1' -> $2"
}
bad $'targets: [127.80.0.1]\ntimeout: 0' "bad.sweep.yml: timeout must be more than 0 and at most 60 seconds"
bad $'targets: [127.80.0.1]\nretries: 11' "retries must be between 0 and 10, got 11"
bad $'targets: [127.80.0.1]\nmethod: icmp' \
    "Invalid value \"icmp\" for configuration option || Invalid value 'icmp' for config 'method'"
bad $'targets: [127.80.0.1]\ntimout: 2' "unknown option 'timout' (did you mean 'timeout'?)"
bad "targets: [127.0.0.0/8]" "targets: '127.0.0.0/8' has 16777214 addresses, more than max_hosts=65536"
bad "targets: ['127.80.0.1;reboot']" "targets: '127.80.0.1;reboot' contains ';'"
bad $'targets: [127.80.0.1]\nexclude: [127.80.0.0/24]' "nothing to sweep: every target is excluded"
bad "exclude: [127.80.0.1]" "No setting was provided for required configuration || Required config 'targets'"
expect_probes 0 "the bad configurations"

echo "=== no privilege, no ping run: ICMP datagram sockets that ping_group_range allows"
# A process without a single capability (no CAP_NET_RAW, no CAP_DAC_OVERRIDE): what an ordinary
# user or an execution environment's container has. (Its uid stays 0 because the controller's
# Python lives under /root, which no other user may read.) -vvv says which method swept.
no_privilege() {
    in_lab setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all \
        env ANSIBLE_INVENTORY_UNPARSED_FAILED=true "$@"
}
in_lab sysctl -q -w net.ipv4.ping_group_range="0 2147483647"
no_privilege ansible-inventory -i nocache.sweep.yml --list --output "$WORK/unprivileged.json" -vvv \
    > "$WORK/unprivileged.log" 2>&1 || { cat "$WORK/unprivileged.log"; exit 1; }
grep -q "answered (method socket" "$WORK/unprivileged.log" \
    || { echo "FAIL: not swept over ICMP sockets:"; cat "$WORK/unprivileged.log"; exit 1; }
check list "$WORK/unprivileged.json"
expect_probes $FIRST_SWEEP "the sweep without privileges"

echo "=== neither ICMP sockets nor ping: the error says why, nothing is sent"
in_lab sysctl -q -w net.ipv4.ping_group_range="1 0"
unusable() {  # unusable WHAT EXPECTED... : the parse fails and its error holds every EXPECTED text
    local what="$1" text
    shift
    if no_privilege ansible-inventory -i nocache.sweep.yml --list >/dev/null 2>"$WORK/unusable.err"; then
        echo "FAIL: $what: the parse succeeded"; exit 1
    fi
    for text in "$@"; do
        one_line "$WORK/unusable.err" | grep -qF "$text" || { echo "FAIL: $what: no '$text' in:"; cat "$WORK/unusable.err"; exit 1; }
    done
    echo "ok: $what: $(grep -o 'nocache.sweep.yml: .*' "$WORK/unusable.err" | head -1)"
}
# ping is there but may not run without a capability (its file capability is beyond the bounding set)
unusable "ping not permitted" "nocache.sweep.yml: no address could be probed (ping)" "/usr/bin/ping"
# no ping at all: /dev/null over it, in this namespace's own mount table only
no_privilege() {
    # shellcheck disable=SC2016 # "$@" and $(command -v ping) are the inner shell's
    in_lab sh -c 'mount --bind /dev/null "$(command -v ping)" && exec setpriv --inh-caps=-all \
        --ambient-caps=-all --bounding-set=-all env "$@"' sh ANSIBLE_INVENTORY_UNPARSED_FAILED=true "$@"
}
unusable "ping missing" "ping" "iputils-ping"
expect_probes 0 "the sweeps that could not start"
