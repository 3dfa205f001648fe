#!/usr/bin/env bash
# The fleet proof (issue 5): playbooks/site.yml over a real fleet of podman
# containers, connected to with containers.podman.podman (no SSH), on an
# internal podman network of the test's own. Packets go only to the
# containers' own addresses on that network (sweep_targets lists exactly
# them; watcher_watch_hosts is empty).
#
#   scenario (default)  4 containers fleettest-1..4; fleettest-4 is stopped
#            before the play. Run 1 checks: the watcher runs on fleettest-1..3,
#            the sweep by fleettest-1 found exactly the 3 live addresses alive
#            and fleettest-4's down, the merged report lists all 4 hosts and
#            marks fleettest-4 unreachable, and the fleet report's "filling
#            fastest" forecasts: each live container's /srv/fleet-data (a 64 MiB
#            tmpfs) was seeded with a sample dated a day ago and then really
#            grew by 8, 16 or 24 MiB (fleettest-1, -2, -3), so its fill rate is
#            that a day, it is full in available / rate days, and fleettest-3
#            fills fastest. Run 2 checks: no new or vanished address, the same
#            forecasts, nothing changed but the fleet report task. Run 3 makes
#            disk_report fail on fleettest-3 (thresholds it refuses): the report
#            must list fleettest-3 as FAILED and fleettest-4 as UNREACHABLE.
#   bench    wall time of one play over 1, 4 and 8 live containers at
#            --forks ${FLEET_FORKS:-8} (fresh containers each, first run;
#            FLEET_BENCH_AGAIN=1 adds a second, converged run).
#
# Always removes its containers (fleettest-*) and its network (fleettest-net).
# Usage: scripts/fleet.sh [scenario|bench]        (needs root: rootful podman)
# Environment: FLEET_FORKS (8), FLEET_SUBNET (10.89.77.0/28), FLEET_SUITE (bookworm: the Debian
# release of the hosts), FLEET_KEEP=1 keeps the temp dir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"

MODE="${1:-scenario}"
VENV="${SYSOPS_FLEET_VENV:-$ROOT/.venv}"
SUITE="${FLEET_SUITE:-bookworm}"
IMAGE="localhost/sysops-fleet-host:$SUITE"
NET=fleettest-net
SUBNET="${FLEET_SUBNET:-10.89.77.0/28}"
FORKS="${FLEET_FORKS:-8}"
PREFIX=fleettest-
DATA=/srv/fleet-data

[ "$(id -u)" -eq 0 ] || die "the fleet test needs root (rootful podman, debootstrap)"
for tool in podman runc python3; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
[ -x "$VENV/bin/ansible-playbook" ] || die "no ansible-playbook in $VENV: run scripts/setup.sh first"
export PATH="$VENV/bin:$PATH"
PODMAN_COLLECTIONS="$ROOT/.build/ansible/collections"
[ -f "$PODMAN_COLLECTIONS/ansible_collections/containers/podman/plugins/connection/podman.py" ] \
    || die "containers.podman is not unpacked in $PODMAN_COLLECTIONS: run scripts/setup.sh"
[ -e "$ROOT/.build/collections/ansible_collections/sysops/fleet" ] || die "no .build/collections: run scripts/setup.sh first"

# --- podman settings: as for the molecule scenarios (scripts/lib.sh), in our own temp dir ---
TMP="$(mktemp -d /tmp/fleettest.XXXXXX)"
CONTAINERS_STARTED=()
NET_CREATED=0
cleanup() {
    local rc=$?
    set +e
    for c in "${CONTAINERS_STARTED[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
    [ "$NET_CREATED" -eq 1 ] && podman network rm -f "$NET" >/dev/null 2>&1
    if [ "${FLEET_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_podman_conf "$TMP/containers.conf" scripts/fleet.sh
export CONTAINERS_CONF="$TMP/containers.conf"

# --- the image -------------------------------------------------------------------------
bash "$ROOT/scripts/build_image.sh" host "$SUITE"

# --- the network and the containers ----------------------------------------------------
ip_of() { podman inspect --format "{{ (index .NetworkSettings.Networks \"$NET\").IPAddress }}" "$1"; }

make_network() {
    if podman network exists "$NET"; then
        die "network $NET exists already (a previous run that was killed?): podman network rm $NET"
    fi
    podman network create --internal --subnet "$SUBNET" "$NET" >/dev/null
    NET_CREATED=1
}

# start_fleet N: containers fleettest-1..N; fills IPS[name]
declare -A IPS=()
start_fleet() {
    local n=$1 i name
    for i in $(seq 1 "$n"); do
        name="${PREFIX}$i"
        podman container exists "$name" && die "container $name exists already: podman rm -f $name"
        CONTAINERS_STARTED+=("$name")
        # $DATA: a small filesystem of the container's own for disk_report to report and forecast
        # (the inventory includes it by name: tmpfs is skipped by default as pseudo, and so is the
        # container's overlay root). Nothing else writes to it, so its growth is exactly ours.
        podman run -d --name "$name" --hostname "$name" --network "$NET" --init \
            --sysctl 'net.ipv4.ping_group_range=0 2147483647' \
            --mount "type=tmpfs,destination=$DATA,tmpfs-size=64m" \
            "$IMAGE" /usr/sbin/cron -f >/dev/null
    done
    for i in $(seq 1 "$n"); do
        name="${PREFIX}$i"
        IPS[$name]="$(ip_of "$name")"
        [[ "${IPS[$name]}" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no address for $name on $NET: '${IPS[$name]}'"
        log "$name: ${IPS[$name]}"
    done
}

remove_fleet() {
    local c
    for c in "${CONTAINERS_STARTED[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
    CONTAINERS_STARTED=()
    IPS=()
}

# write_inventory N FILE [FAILING]: all N hosts; fleettest-1 sweeps exactly their addresses;
# host FAILING gets thresholds that disk_report refuses (warn above crit), so a task fails there
write_inventory() {
    local n=$1 file=$2 failing=${3:-} i name targets=""
    for i in $(seq 1 "$n"); do targets+="${targets:+, }\"${IPS[${PREFIX}$i]}\""; done
    {
        echo "# Written by scripts/fleet.sh"
        echo "all:"
        echo "  hosts:"
        for i in $(seq 1 "$n"); do
            echo "    ${PREFIX}$i:"
            echo "      ansible_connection: containers.podman.podman"
            echo "      ansible_python_interpreter: /usr/bin/python3"
            if [ "${PREFIX}$i" = "$failing" ]; then
                echo "      fleet_disk_warn: 95"
                echo "      fleet_disk_crit: 90"
            fi
        done
        echo "  vars:"
        echo "    watcher_service_manager: cron"
        echo "    watcher_watch_hosts: []"
        echo "    fleet_disk_send: never"
        echo "    fleet_disk_include_mounts: [$DATA]"
        echo "    fleet_report_dir: \"$TMP/reports\""
        echo "    fleet_state_file: \"$TMP/reports/fleet-state.json\""
        echo "  children:"
        echo "    sweepers:"
        echo "      hosts:"
        echo "        ${PREFIX}1:"
        echo "          sweep_targets: [$targets]"
    } > "$file"
}

export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections:$PODMAN_COLLECTIONS"
export ANSIBLE_CALLBACK_PLUGINS="$ROOT/tests/fleet/callback_plugins"
export ANSIBLE_CALLBACKS_ENABLED=fleet_record
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0 ANSIBLE_PIPELINING=true
export ANSIBLE_HOST_KEY_CHECKING=false

# run_play NAME: one site.yml run; output in $TMP/NAME.log, record in $TMP/NAME.json; sets PLAY_RC, PLAY_SECS
run_play() {
    local name=$1 started
    started=$(date +%s.%N)
    set +e
    FLEET_RECORD="$TMP/$name.json" ansible-playbook playbooks/site.yml -i "$TMP/inventory.yml" --forks "$FORKS" \
        > "$TMP/$name.log" 2>&1
    PLAY_RC=$?
    set -e
    PLAY_SECS=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")
    [ -f "$TMP/$name.json" ] || { tail -n 40 "$TMP/$name.log" >&2; die "$name: the play wrote no record (log above)"; }
}

show_recap() { sed -n '/PLAY RECAP/,$p' "$TMP/$1.log" >&2; }

scenario() {
    local failed=0 i name grow hostspecs=()
    make_network
    start_fleet 4
    write_inventory 4 "$TMP/inventory.yml"
    log "stopping ${PREFIX}4 before the play"
    podman stop -t 0 "${PREFIX}4" >/dev/null
    for i in 1 2 3; do
        grow=$((i * 8 << 20))
        hostspecs+=("${PREFIX}$i=${IPS[${PREFIX}$i]},grow=$grow")
        # the watcher's history (where site.yml's disk_report reads and adds samples)
        podman exec -i "${PREFIX}$i" python3 - "$DATA" /var/lib/sysops-fleet/history.json "$grow" \
            < "$ROOT/tests/fleet/seed_history.py" | sed "s/^/  ${PREFIX}$i: /"
    done
    hostspecs+=("${PREFIX}4=${IPS[${PREFIX}4]},down")

    for run in first second; do
        log "site.yml, $run run (--forks $FORKS)"
        run_play "$run"
        log "$run run: ansible-playbook rc=$PLAY_RC in ${PLAY_SECS}s"
        show_recap "$run"
        # fleettest-4 is stopped, so the play cannot exit 0. containers.podman.podman reports a
        # stopped container as a failed task (rc 2: "can only create exec sessions on running
        # containers"), not as unreachable (rc 4); check_fleet.py checks that only fleettest-4 failed.
        if [ "$PLAY_RC" -ne 2 ] && [ "$PLAY_RC" -ne 4 ]; then
            tail -n 60 "$TMP/$run.log" >&2
            log "FAIL: $run run: ansible-playbook exited $PLAY_RC (expected 2 or 4: fleettest-4 is down)"
            failed=1
        fi
        if [ "$run" = first ]; then
            for i in 1 2 3; do
                name="${PREFIX}$i"
                if podman exec "$name" /opt/sysops-fleet/bin/fleet-watcher status >"$TMP/status-$name" 2>&1; then
                    echo "  [ok] fleet-watcher status exits 0 in $name"
                else
                    echo "  [FAIL] fleet-watcher status in $name: $(tr '\n' ' ' < "$TMP/status-$name")"
                    failed=1
                fi
            done
        fi
        python3 "$ROOT/tests/fleet/check_fleet.py" "$run" "$TMP/$run.json" "$TMP/reports" \
            "$TMP/reports/fleet-state.json" "$DATA" "${hostspecs[@]}" || failed=1
    done
    echo "--- fleet-report.txt (second run) ---"
    cat "$TMP/reports/fleet-report.txt"

    # third run: fleettest-3 is reached but its disk report fails: FAILED in the report, not UNREACHABLE
    log "site.yml, failing run: ${PREFIX}3 gets thresholds disk_report refuses"
    write_inventory 4 "$TMP/inventory.yml" "${PREFIX}3"
    hostspecs=("${hostspecs[0]}" "${hostspecs[1]}" "${PREFIX}3=${IPS[${PREFIX}3]},fail" "${hostspecs[3]}")
    run_play failing
    log "failing run: ansible-playbook rc=$PLAY_RC in ${PLAY_SECS}s"
    show_recap failing
    if [ "$PLAY_RC" -ne 2 ]; then
        tail -n 60 "$TMP/failing.log" >&2
        log "FAIL: failing run: ansible-playbook exited $PLAY_RC (expected 2: a task failed)"
        failed=1
    fi
    python3 "$ROOT/tests/fleet/check_fleet.py" failing "$TMP/failing.json" "$TMP/reports" \
        "$TMP/reports/fleet-state.json" "$DATA" "${hostspecs[@]}" || failed=1
    sed -n '/^Hosts:/,/^$/p' "$TMP/reports/fleet-report.txt"
    [ "$failed" -eq 0 ] || die "the fleet scenario FAILED (see the [FAIL] lines above)"
    log "the fleet scenario passed"
}

bench() {
    local n r rows=()
    make_network
    for n in ${FLEET_BENCH_SIZES:-1 4 8}; do
        start_fleet "$n"
        write_inventory "$n" "$TMP/inventory.yml"
        rm -rf "$TMP/reports"
        run_play "bench-$n"
        [ "$PLAY_RC" -eq 0 ] || { tail -n 40 "$TMP/bench-$n.log" >&2; die "bench: play over $n host(s) exited $PLAY_RC"; }
        rows+=("$n $PLAY_SECS")
        # second, converged run: the steady-state cost
        if [ "${FLEET_BENCH_AGAIN:-0}" = 1 ]; then
            run_play "bench-$n-again"
            [ "$PLAY_RC" -eq 0 ] || { tail -n 40 "$TMP/bench-$n-again.log" >&2; die "bench: 2nd play over $n host(s) exited $PLAY_RC"; }
            rows[-1]+=" $PLAY_SECS"
        else
            rows[-1]+=" -"
        fi
        log "bench: $n host(s): ${rows[-1]}"
        remove_fleet
    done
    printf '%-6s %-16s %-16s %s\n' hosts "first run (s)" "second run (s)" "forks"
    local hosts first second
    for r in "${rows[@]}"; do
        read -r hosts first second <<<"$r"
        printf '%-6s %-16s %-16s %s\n' "$hosts" "$first" "$second" "$FORKS"
    done
}

case "$MODE" in
    scenario) scenario ;;
    bench) bench ;;
    *) die "usage: scripts/fleet.sh [scenario|bench]" ;;
esac
