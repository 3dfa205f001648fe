#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test of the collection:
#   unit         pytest tests/unit (real processes, real ping to loopback, real SMTP servers)
#   integration  ansible-test integration: every target under tests/integration/targets
#                (real sweeps inside a network namespace made and removed by the test; root)
#   attack       the watcher's privilege boundary: a real root system install on this
#                machine, attacked as the daemon's own user (tests/attack; root)
#   adhoc        the short module name from the repo root, and the built collection
#                tarball installed and used by its FQCN
#   lint         ansible-lint, production profile
#   sanity       ansible-test sanity, on every Python the collection claims that this
#                machine has (scripts/ansible_test.sh)
#   galaxy       galaxy-importer (Galaxy's own import checks, offline, its ansible-test
#                step off) on the built collection tarball
#   docs         the docs site built by antsibull-docs, offline, without a warning (tests/docs/build.py)
#   matrix       every other ansible-core of tests/matrix/versions.txt (venvs made by setup.sh):
#                ansible-test sanity with each claimed version; the demo and the ad hoc sweep
#                from the built tarball with each version, the newest and Debian 12's 2.14
#                included (tests/matrix/demo.py); unit, integration and adhoc with the oldest
#                claimed version (the steps above are the newest's)
#   molecule     the watcher role's scenarios exactly as a molecule user runs them: in a
#                clean environment, "source .venv/bin/activate && cd roles/watcher &&
#                molecule test --all" (root, podman; images built with debootstrap)
#   fleet        playbooks/site.yml over SSH (an ordinary user, become, pipelining) on podman
#                containers running sshd on an internal network made by the test, one stopped,
#                one whose sudo is refused; linear and mitogen (tests/fleet/run.py; root, podman);
#                then mesh mode on two networks joined by a router, 20 faults drawn with a seed,
#                each labelled exactly (tests/fleet/mesh_faults.py)
# Prints one line per step and ends with "N passed, N failed".
#
# Usage: scripts/test.sh [STEP [ARG...]]...      (default: every step, in the order above)
# Words after a step name, up to the next step name, go to that step:
#   scripts/test.sh unit tests/unit/plugins/module_utils/test__mail.py -k starttls   (pytest)
#   scripts/test.sh integration ping_sweep                                          (targets)
#   scripts/test.sh sanity --test pylint                                            (ansible-test)
#   scripts/test.sh molecule systemd                                                (scenarios)
#   scripts/test.sh fleet --strategy linear                                         (tests/fleet/run.py)
#   scripts/test.sh matrix 2.16 2.17 --only=sanity,demo          (versions, checks; default: all)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
. "$ROOT/scripts/lib.sh"

ALL_STEPS=(unit integration attack adhoc lint sanity galaxy docs matrix molecule fleet)

bash "$ROOT/scripts/setup.sh" || die "setup failed"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0

need_root() { [ "$(id -u)" -eq 0 ] || { log "$1 needs root ($2)"; return 1; }; }

# pytest_workers PYTHON ARG...: "-n N --dist loadfile" when pytest-xdist is there and the arguments
# choose no -n of their own. Most unit tests wait (on timeouts, deadlines, real servers and
# daemons) rather than compute, so SYSOPS_FLEET_UNIT_WORKERS (default 4) files at a time take a
# fraction of the time one at a time takes, even on 2 cores. A file's tests stay on one worker
# (its module fixtures made once); every lab, user, server and directory a test makes is its own.
pytest_workers() {
    local python="$1" arg; shift
    for arg in "$@"; do case "$arg" in -n|-n*|--numprocesses*|-p*xdist*) return 0 ;; esac; done
    "$python" -c "import xdist" 2>/dev/null || return 0
    [ "${SYSOPS_FLEET_UNIT_WORKERS:-4}" -gt 1 ] && echo "-n ${SYSOPS_FLEET_UNIT_WORKERS:-4} --dist loadfile"
}

# pytest_deadline PYTHON: "--timeout N --timeout-method signal" when pytest-timeout is there. A test
# that hangs fails after SYSOPS_FLEET_TEST_TIMEOUT seconds (default 900; the slowest take about
# 3 minutes beside CI's lanes) with its traceback, instead of holding its lane until CI's own
# deadline kills the whole run with no word of which test it was.
pytest_deadline() {
    "$1" -c "import pytest_timeout" 2>/dev/null || return 0
    echo "--timeout ${SYSOPS_FLEET_TEST_TIMEOUT:-900} --timeout-method signal"
}

# unit_tests PYTHON ARG...: pytest over ARG; with workers (pytest_workers), the tests marked "alone"
# (timed to the millisecond, or reading numbers other tests change) run after the others, one at a
# time (UNIT_ALONE=0: not at all). "No test collected" in one of the two runs is no failure.
unit_tests() {
    local python="$1" workers deadline rc=0; shift
    read -r -a workers <<<"$(pytest_workers "$python" "$@")"
    read -r -a deadline <<<"$(pytest_deadline "$python")"
    set -- "${deadline[@]}" "$@"
    local arg; for arg in "$@"; do [ "$arg" = -m ] && workers=(); done  # a marker of the caller's: one run
    if [ ${#workers[@]} -eq 0 ]; then "$python" -m pytest -q -p no:cacheprovider "$@"; return; fi
    "$python" -m pytest -q -p no:cacheprovider "${workers[@]}" -m "not alone" "$@" || rc=$?
    [ $rc -eq 5 ] && rc=0
    [ "${UNIT_ALONE:-1}" = 0 ] && return $rc
    # They time our sweep to the millisecond while CI's other lanes keep both cores busy: as root,
    # ahead of those lanes in the scheduler's queue (nice -10), as a sweep an operator runs would be.
    local nice=()
    [ "$(id -u)" -eq 0 ] && nice=(nice -n -10)
    log "the tests that run alone (pytest -m alone${nice[*]:+, ${nice[*]}})"
    "${nice[@]}" "$python" -m pytest -q -p no:cacheprovider -m alone "$@"
    local alone=$?
    [ $alone -eq 5 ] && alone=0
    [ $rc -eq 0 ] && [ $alone -eq 0 ]
}

# step_alone: the unit tests marked alone, one at a time (the whole run starts with them, before any
# other lane runs: they time our sweep to the millisecond, which a machine whose two cores are busy
# with other lanes cannot give them; the unit step then runs the others only).
step_alone() {
    local nice=() rc
    [ "$(id -u)" -eq 0 ] && nice=(nice -n -10)
    local deadline; read -r -a deadline <<<"$(pytest_deadline python)"
    "${nice[@]}" python -m pytest -q -p no:cacheprovider "${deadline[@]}" -m alone tests/unit "$@"
    rc=$?
    [ $rc -eq 5 ] && rc=0
    return $rc
}

step_unit() {
    local arg paths=0
    for arg in "$@"; do [ -e "${arg%%::*}" ] && paths=1; done
    [ $paths -eq 1 ] || set -- tests/unit "$@"
    unit_tests python "$@"
}

step_integration() {
    need_root "the integration tests" "network namespaces" || return 1
    bash "$ROOT/scripts/ansible_test.sh" integration "$@"
}

step_attack() {
    need_root "the attack suite" "a root system install on this machine" || return 1
    local deadline; read -r -a deadline <<<"$(pytest_deadline python)"
    python -m pytest -q -p no:cacheprovider "${deadline[@]}" tests/attack "$@"
}

step_adhoc() {
    local out tmp python
    python="$(dirname "$(command -v ansible)")/python"  # the controller's (.venv's, or a matrix venv's)
    out="$(ansible localhost -m ping_sweep -a 'targets=127.0.0.1' 2>&1)" || { echo "$out"; return 1; }
    if ! grep -q '"alive": \[' <<<"$out" || ! grep -q '127.0.0.1' <<<"$out"; then echo "$out"; return 1; fi
    tmp="$(mktemp -d)"
    # (a RETURN trap is global in bash: it removes itself, or it would fire on every later return)
    trap 'rm -rf "$tmp"; trap - RETURN' RETURN
    ansible-galaxy collection build --output-path "$tmp" --force >/dev/null || return 1
    out="$(cd "$tmp" && export ANSIBLE_COLLECTIONS_PATH="$tmp/installed" &&
        ansible-galaxy collection install --force -p "$tmp/installed" "$tmp"/sysops-fleet-*.tar.gz >/dev/null &&
        ansible localhost -c local -i localhost, -e ansible_python_interpreter="$python" \
            -m sysops.fleet.ping_sweep -a 'targets=127.0.0.1-3 method=ping' 2>&1)" || { echo "$out"; return 1; }
    grep -q '"total": 3' <<<"$out" || { echo "$out"; return 1; }
}

step_lint() { ansible-lint --profile production --strict "$@"; }

step_sanity() { bash "$ROOT/scripts/ansible_test.sh" sanity "$@"; }

step_galaxy() { python "$ROOT/tests/galaxy/import_check.py" "$@"; }

step_docs() { python "$ROOT/tests/docs/build.py" "$@"; }

MATRIX_FILE="$ROOT/tests/matrix/versions.txt"
MATRIX_CHECKS=(sanity demo unit integration adhoc)

# matrix_default_checks VERSION TIER OLDEST NEWEST: what the matrix runs for that version.
# The newest is .venv, whose sanity, unit, integration and adhoc are the steps of those names.
matrix_default_checks() {
    case "$1:$2" in
        "$3":claimed) echo sanity demo unit integration adhoc ;;
        "$4":claimed|*:compat) echo demo ;;
        *) echo sanity demo ;;
    esac
}

# matrix_check CHECK VERSION VENV TIER TARBALL OLDEST: one check with one ansible-core.
matrix_check() {
    local check="$1" version="$2" venv="$3" tier="$4" tarball="$5" oldest="$6" outside=() pythons=()
    [ "$tier" = compat ] && outside=(--unsupported-ok)
    # Sanity between the oldest and the newest: every test of that version, the tests that run once
    # per Python (compile, import) with the venv's Python only. The oldest and the newest (the
    # sanity step) run them with every Python on the machine: what a Python accepts does not
    # change with the ansible-core in between, and CI's 90 minutes hold only so many runs.
    [ "$version" != "$oldest" ] && pythons=(--python "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')")
    case "$check" in
        sanity) SYSOPS_FLEET_VENV="$venv" bash "$ROOT/scripts/ansible_test.sh" sanity "${pythons[@]}" ;;
        demo) "$ROOT/.venv/bin/python" "$ROOT/tests/matrix/demo.py" --bin "$venv/bin" --tarball "$tarball" \
                  --expect-version "$version" "${outside[@]}" ;;
        # With an older ansible-core, the unit tests that go through ansible-core: not those of the
        # core (tests/unit/plugins/module_utils, standard library only, none imports ansible or runs
        # an ansible command: the same with any version), nor those marked alone (they time our own
        # sweep; the unit step runs them with the newest, alone, not beside the system lane).
        unit) PATH="$venv/bin:$PATH" UNIT_ALONE=0 unit_tests "$venv/bin/python" tests/unit \
                  --ignore=tests/unit/plugins/module_utils ;;
        integration) need_root "the integration tests" "network namespaces" \
                         && SYSOPS_FLEET_VENV="$venv" bash "$ROOT/scripts/ansible_test.sh" integration ;;
        adhoc) PATH="$venv/bin:$PATH" step_adhoc ;;
    esac
}

# step_matrix [VERSION...] [--only=CHECK[,CHECK...]]: of the versions (default: all of
# tests/matrix/versions.txt), the checks matrix_default_checks gives (--only keeps those named;
# one word, since a check's name alone would start the step of that name). A version whose venv
# setup.sh could not make (no Python in its range on this machine) is skipped, saying so.
step_matrix() {
    local word versions=() checks=() oldest newest version pymin pymax tier venv check tmp rc=0 results=() started
    for word in "$@"; do
        if [[ "$word" == --only=* ]]; then
            IFS=, read -r -a checks <<<"${word#--only=}"
            for check in "${checks[@]}"; do
                [[ " ${MATRIX_CHECKS[*]} " == *" $check "* ]] || { log "matrix: no check '$check' (${MATRIX_CHECKS[*]})"; return 1; }
            done
        elif matrix_lines "$MATRIX_FILE" | grep -q "^$word "; then versions+=("$word")
        else log "matrix: '$word' is neither a version of $MATRIX_FILE nor --only=CHECK,... (${MATRIX_CHECKS[*]})"; return 1
        fi
    done
    oldest="$(matrix_oldest "$MATRIX_FILE")" newest="$(matrix_newest "$MATRIX_FILE")"
    tmp="$(mktemp -d)"
    ansible-galaxy collection build --output-path "$tmp" "$ROOT" >/dev/null || { rm -rf "$tmp"; return 1; }
    while read -r version pymin pymax tier; do
        [ ${#versions[@]} -eq 0 ] || [[ " ${versions[*]} " == *" $version "* ]] || continue
        venv="$(matrix_venv "$ROOT" "$version")"
        [ "$version" = "$newest" ] && venv="$ROOT/.venv"
        if [ ! -x "$venv/bin/ansible" ]; then
            results+=("$version: SKIPPED (no venv: this machine has no Python $pymin-$pymax; see scripts/setup.sh)")
            continue
        fi
        for check in $(matrix_default_checks "$version" "$tier" "$oldest" "$newest"); do
            [ ${#checks[@]} -eq 0 ] || [[ " ${checks[*]} " == *" $check "* ]] || continue
            log "---- matrix: ansible-core $version ($tier): $check"
            started=$SECONDS
            if matrix_check "$check" "$version" "$venv" "$tier" "$tmp"/sysops-fleet-*.tar.gz "$oldest" < /dev/null; then
                results+=("$version $check: passed ($((SECONDS - started))s)")
            else
                results+=("$version $check: FAILED ($((SECONDS - started))s)"); rc=1
            fi
        done
    done < <(matrix_lines "$MATRIX_FILE")
    rm -rf "$tmp"
    log "---- matrix:"
    printf '[sysops.fleet]   %s\n' "${results[@]}" >&2
    return $rc
}

step_molecule() {
    need_root "the molecule scenarios" "rootful podman, debootstrap" || return 1
    local scenarios="--all" name
    if [ $# -gt 0 ]; then scenarios=""; for name in "$@"; do scenarios+=" -s $name"; done; fi
    hold_images_lock $$  # scripts/clean.sh of any clone keeps the images while this runs
    # As a user runs it: a clean environment (no variable of this script's), the venv's
    # activate, the role's directory. Only what setup.sh provides may make it pass.
    env -i HOME="$HOME" USER="$(id -un)" LOGNAME="$(id -un)" TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "source .venv/bin/activate && cd roles/watcher && molecule test $scenarios"
}

step_fleet() {
    need_root "the fleet scenario" "rootful podman" || return 1
    hold_images_lock $$  # scripts/clean.sh of any clone keeps the images while this runs
    local rc=0
    "$ROOT/.venv/bin/python" "$ROOT/tests/fleet/run.py" "$@" || rc=1
    if [ $# -eq 0 ]; then step_mesh || rc=1; fi
    return $rc
}

# step_mesh: the mesh fault test, 20 faults drawn with a seed (SYSOPS_FLEET_MESH_SEED, default 22), each
# labelled exactly. Part of the fleet step; the whole run gives it to the system lane after the attack
# suite (its containers run no watcher, so no daemon's uid is shared with the host's tests).
step_mesh() {
    need_root "the mesh fault test" "rootful podman" || return 1
    hold_images_lock $$
    "$ROOT/.venv/bin/python" "$ROOT/tests/fleet/mesh_faults.py" --seed "${SYSOPS_FLEET_MESH_SEED:-22}" --faults 20
}

is_step() { local s; for s in "${ALL_STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# Split the command line into steps and their arguments.
STEPS=() ARGS=()
for word in "$@"; do
    if is_step "$word"; then STEPS+=("$word"); ARGS+=(""); continue; fi
    [ ${#STEPS[@]} -gt 0 ] || die "unknown step '$word'; steps: ${ALL_STEPS[*]}"
    ARGS[-1]+="$(printf '%q ' "$word")"
done
if [ ${#STEPS[@]} -eq 0 ]; then STEPS=("${ALL_STEPS[@]}"); for _ in "${STEPS[@]}"; do ARGS+=(""); done; fi

# run_steps INDEX...: the steps of those indexes, one after the other; each ends in a line
# "---- STEP passed|FAILED (Ns)" and a word "STEP:ok" or "STEP:failed" on fd 3 (the tally).
run_steps() {
    local i step started step_args
    for i in "$@"; do
        step="${STEPS[$i]}"
        step_args=()
        eval "step_args=(${ARGS[$i]})"
        if [ -e "$BUDGET_SPENT" ]; then
            log "---- $step not run: the run's time budget is spent"; echo "$step:failed" >&3; continue
        fi
        log "---- $step${step_args[*]:+ ${step_args[*]}}"
        started=$SECONDS
        if "step_$step" "${step_args[@]}"; then
            log "---- $step passed ($((SECONDS - started))s)"; echo "$step:ok" >&3
        else
            log "---- $step FAILED ($((SECONDS - started))s)"; echo "$step:failed" >&3
        fi
    done
}

# The whole run's time budget. CI stops a run after 90 minutes and keeps none of the lanes' logs
# then: a hang anywhere hid which step and command it was. SYSOPS_FLEET_BUDGET seconds after the
# start (default 5100; the whole run takes about 65 minutes on a quiet 2-core machine), the
# watcher lists every command still running with its age, stops them (their steps fail), no
# further step starts, and the lanes' logs are printed as after any run.
BUDGET_SPENT="$ROOT/.build/budget-spent"
rm -f "$BUDGET_SPENT"
descendants() { local child; for child in $(pgrep -P "$1"); do echo "$child"; descendants "$child"; done; }
watch_budget() {
    local run="$1" budget="${SYSOPS_FLEET_BUDGET:-5100}" mine pid cmd stop=()
    while [ "$SECONDS" -lt "$budget" ]; do sleep 5 >/dev/null 2>&1; done
    : >"$BUDGET_SPENT"
    mine=" $BASHPID $(descendants "$BASHPID" | tr '\n' ' ') "
    log "the run has taken ${budget}s (SYSOPS_FLEET_BUDGET; CI stops it at 5400s): no further step starts," \
        "and these commands still running are stopped (their steps fail):"
    for pid in $(descendants "$run"); do
        case "$mine" in *" $pid "*) continue ;; esac
        cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || continue
        [ "$cmd" = "$(tr '\0' ' ' <"/proc/$run/cmdline")" ] && continue  # the lanes' shells: they report
        printf '  pid %s, running %ss: %.300s\n' "$pid" "$(ps -o etimes= -p "$pid" | tr -d ' ')" "$cmd" >&2
        stop+=("$pid")
    done
    [ ${#stop[@]} -gt 0 ] || return 0
    kill -TERM "${stop[@]}" 2>/dev/null
    sleep 15
    kill -KILL "${stop[@]}" 2>/dev/null
    return 0
}
watch_budget $$ &
budget_watcher=$!
trap 'kill "$budget_watcher" 2>/dev/null' EXIT

# The whole run (no step named) first runs the unit tests marked alone (step_alone), then four lanes
# at once, so CI's time is the longest lane's, not the sum (2 cores; much of every lane waits on deadlines, servers, pings, sshd and containers):
#   system      attack (a root system install of the watcher on this machine), then the fleet
#               step's mesh fault test (podman containers that run no watcher)
#   containers  molecule, fleet (without its mesh): podman containers (their own images, networks,
#               names, and system uids apart from the host's)
#   ansible     integration, adhoc, and the matrix's demo, unit, integration and adhoc
#               (ansible-test in a tree of its own, SYSOPS_FLEET_TEST_TREE: a run deletes the
#               copy it finds)
#   main        unit, lint, sanity, galaxy, docs, and the matrix's sanity
# The other lanes' output goes to .build/lane-NAME.log, printed when all are done.
# SYSOPS_FLEET_LANES=0, or naming steps, runs them one after the other in the order given.
lane_of() {
    case "$1" in
        attack) echo system ;;
        molecule|fleet) echo containers ;;
        integration|adhoc) echo ansible ;;
        *) echo main ;;
    esac
}
tally="$(mktemp)"
lanes=() lane_logs=()
# start_lane NAME INDEX...: run_steps in the background, its output in .build/lane-NAME.log.
start_lane() {
    local name="$1" i; shift
    [ $# -gt 0 ] || return 0
    lane_logs+=("$ROOT/.build/lane-$name.log")
    log "the $name lane ($(for i in "$@"; do printf '%s ' "${STEPS[$i]}"; done)) runs beside the others; its output: ${lane_logs[-1]}"
    (
        [ "$name" = ansible ] && export SYSOPS_FLEET_TEST_TREE="$ROOT/.build/ansible-test-lane"
        run_steps "$@"
    ) 3>>"$tally" >"${lane_logs[-1]}" 2>&1 &
    lanes+=("$!")
}
if [ "$#" -eq 0 ] && [ "${SYSOPS_FLEET_LANES:-1}" != 0 ]; then
    system=() containers=() ansible=() main=()
    for i in "${!STEPS[@]}"; do
        if [ "${STEPS[$i]}" = matrix ]; then  # split: its sanity in main, the rest in ansible
            ARGS[i]="--only=sanity"; main+=("$i")
            ansible+=("${#STEPS[@]}"); STEPS+=(matrix); ARGS+=("--only=demo,unit,integration,adhoc")
            continue
        fi
        if [ "${STEPS[$i]}" = fleet ]; then  # split: run.py in containers, the mesh after the attack suite
            ARGS[i]="--strategy both"; containers+=("$i")
            system+=("${#STEPS[@]}"); STEPS+=(mesh); ARGS+=("")
            continue
        fi
        case "$(lane_of "${STEPS[$i]}")" in
            system) system+=("$i") ;;
            containers) containers+=("$i") ;;
            ansible) ansible+=("$i") ;;
            *) main+=("$i") ;;
        esac
    done
    # The unit tests marked alone first, on a machine nothing else of ours runs on (step_alone);
    # the unit step in the main lane then runs the others.
    alone=${#STEPS[@]}; STEPS+=(alone); ARGS+=("")
    run_steps "$alone" 3>>"$tally"
    export UNIT_ALONE=0
    start_lane system "${system[@]}"
    start_lane containers "${containers[@]}"
    start_lane ansible "${ansible[@]}"
    run_steps "${main[@]}" 3>>"$tally"
    wait "${lanes[@]}"
    for lane_log in "${lane_logs[@]}"; do
        log "==== the output of $lane_log"
        cat "$lane_log" >&2
    done
else
    run_steps "${!STEPS[@]}" 3>>"$tally"
fi
passed="$(grep -c ':ok$' "$tally")" failed="$(grep -c ':failed$' "$tally")"
failures=()
while IFS=: read -r step result; do [ "$result" = failed ] && failures+=("$step"); done <"$tally"
rm -f "$tally"
[ "$failed" -eq 0 ] || log "failed steps: ${failures[*]}"
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
