#!/usr/bin/env bash
# disk_report against a real SMTP server (aiosmtpd on 127.0.0.1, an ephemeral
# port, writing to a Maildir that the playbooks read back):
#   report.yml  the numbers against df -P, check mode, the mail, bad input, a
#               recipient refused for good (dead letter), a trickling server
#               (smtp_timeout bounds the whole conversation, under mitogen too)
#   spool.yml   server stopped: the task fails and spools; server back on the
#               same port: the next run delivers the spooled message first
#   hung.yml    inside tests/unit/.../hung_mount.py: a FUSE mount whose server
#               never answers (a stale NFS stand-in) in a private mount
#               namespace; the report still finishes, the mount reported hung
# Everything is made in a temp directory and removed on exit, the SMTP server
# is stopped by its pid. Only 127.0.0.1 is ever contacted. Needs root for the
# hung mount (that part is skipped without /dev/fuse or root).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# From a clone the collection is four levels up; ansible-test copies only
# this target, so there it is found through ANSIBLE_COLLECTIONS_PATH.
COLL="$(cd "$HERE/../../../.." && pwd)"
[ -f "$COLL/galaxy.yml" ] || COLL="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/sysops/fleet"
HELPERS="$COLL/tests/unit/plugins/module_utils"
WORK="$(mktemp -d /tmp/disk-report-it.XXXXXX)"
SERVER=""
SLOW=""
cd "$HERE"

stop_server() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=""
    fi
}
stop_slow() {
    if [ -n "$SLOW" ]; then
        kill "$SLOW" 2>/dev/null || true
        wait "$SLOW" 2>/dev/null || true
        SLOW=""
    fi
}
cleanup() { stop_server; stop_slow; rm -rf "$WORK"; }
trap cleanup EXIT

start_server() {  # start_server [PORT]: aiosmtpd writing to $WORK/maildir; sets PORT
    rm -f "$WORK/port"
    python "$HELPERS/smtp_server.py" --maildir "$WORK/maildir" --port-file "$WORK/port" --port "${1:-0}" \
        --refuse gone@example.com &
    SERVER=$!
    for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
    [ -s "$WORK/port" ] || { echo "SMTP server did not start" >&2; exit 1; }
    PORT="$(cat "$WORK/port")"
}

start_slow() {  # a server trickling its greeting a byte at a time; sets SLOW_PORT
    python "$HELPERS/smtp_server.py" --slow trickle --port-file "$WORK/slow-port" &
    SLOW=$!
    for _ in $(seq 100); do [ -s "$WORK/slow-port" ] && break; sleep 0.1; done
    [ -s "$WORK/slow-port" ] || { echo "slow SMTP server did not start" >&2; exit 1; }
    SLOW_PORT="$(cat "$WORK/slow-port")"
}

playbook() {
    ansible-playbook -i inventory.yml "$@" -e "work=$WORK" -e "read_mail=$HERE/read_mail.py"
}

start_server
start_slow
echo "=== disk_report: report, check mode, mail read back, bad input, dead letter, deadline (SMTP on 127.0.0.1:$PORT)"
playbook report.yml -e "smtp_port=$PORT" -e "slow_port=$SLOW_PORT"

echo "=== disk_report under the mitogen strategy (modules run in-process)"
MITOGEN_DIR="$(python -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))')"
ANSIBLE_STRATEGY_PLUGINS="$MITOGEN_DIR/plugins/strategy" ANSIBLE_STRATEGY=mitogen_linear \
    ANSIBLE_DEPRECATION_WARNINGS=false playbook report.yml -e "smtp_port=$PORT" -e "slow_port=$SLOW_PORT" \
    -e "work_sub=mitogen"
stop_slow

echo "=== disk_report: server down -> spooled; server back -> spooled message delivered first"
stop_server
playbook spool.yml -e "smtp_port=$PORT" -e phase=down
start_server "$PORT"
playbook spool.yml -e "smtp_port=$PORT" -e phase=back

echo "=== disk_report with hung mounts (FUSE with no server, private mount namespace)"
set +e
started=$SECONDS
python "$HELPERS/hung_mount.py" --count 2 --dir "$WORK/hung" -- \
    ansible-playbook -i inventory.yml hung.yml -e "work=$WORK" -e probe_timeout=2
rc=$?
set -e
if [ $rc -eq 77 ]; then
    echo "SKIPPED: hung mounts need root and /dev/fuse"
elif [ $rc -ne 0 ]; then
    exit $rc
elif [ $((SECONDS - started)) -gt 90 ]; then
    echo "the play with hung mounts took $((SECONDS - started))s" >&2
    exit 1
fi
