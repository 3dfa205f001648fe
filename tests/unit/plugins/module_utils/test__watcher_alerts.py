# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Alerts that do not cry wolf: the watcher in the loopback lab, with a real SMTP server and real sweeps.

* 1,000 rounds with a watched host that loses 20 % of its probes (nftables random drop in a namespace
  the test makes): no alert mail. The rounds are driven directly (``watcher_rounds.py``: the real
  ``Watcher.check_once``, back to back, inside the namespace), not waited for.
* A host that stops answering, and answers again: the real daemon (``fleet-watcher run``, one round a
  second) mails the problem within 3 rounds and the recovery within 3.
* A filesystem (a real tmpfs) hovering around its warn threshold: ``fleet-watcher check`` rounds mail
  one alert with the default clear margin.

Each has a control run with the old rule (alert on every change, one probe and one retry, no margin) that
does send the mails, so the tests can fail. The SMTP server listens on 127.0.0.1 of the namespace the
watcher runs in (the test's own, or the host's for the disk test, which needs no lab).
"""

import contextlib
import email
import email.policy
import json
import mailbox
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _metrics, _watcher

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..")))
import lab  # noqa: E402  pylint: disable=wrong-import-position
from polling import wait_for  # noqa: E402  pylint: disable=wrong-import-position
from prometheus import parse, promtool  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_watcher.__file__), "..", "..", "..", "..", ".."))
needs_lab = pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft")),
                               reason="the loopback lab needs root, ip and nft")
pytestmark = pytest.mark.alone  # round-trip times, loss and rounds measured against the lab's clock
OLD_RULE = "count = 1\nretries = 1\ndown_after = 1\nwindow = 1\nclear_after = 1\n"


@contextlib.contextmanager
def mail_server(directory, netns=None):
    """tests' smtp_server.py as a program on 127.0.0.1 (of *netns*), writing to a Maildir: (port, maildir)."""
    maildir, port_file = os.path.join(directory, "maildir"), os.path.join(directory, "smtp.port")
    argv = [sys.executable, os.path.join(HERE, "smtp_server.py"), "--maildir", maildir, "--port-file", port_file]
    with subprocess.Popen(lab.netns_argv(netns, argv) if netns else argv) as proc:
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file):
                assert proc.poll() is None and time.monotonic() < deadline, "the SMTP server did not start"
                time.sleep(0.05)
            with open(port_file, encoding="ascii") as handle:
                yield int(handle.read()), maildir
        finally:
            proc.terminate()
            proc.wait(10)


def subjects(maildir):
    """The subjects of the mails received, in order of arrival."""
    if not os.path.isdir(maildir):
        return []
    found = []
    for message in mailbox.Maildir(maildir, create=False):
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        found.append((int(parsed["X-Test-Sequence"]), str(parsed["Subject"])))
    return [subject for _n, subject in sorted(found)]


def settings(directory, body):
    """watcher.ini in *directory* with its state there (as root reads it: root's file, no other writer)."""
    os.makedirs(os.path.join(directory, "lib"), exist_ok=True)
    path = os.path.join(directory, "watcher.ini")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(f"""
            [watcher]
            interval = 1
            pidfile = {directory}/run/watcher.pid
            log_file = {directory}/log/watcher.log
            state_dir = {directory}/lib
            """) + textwrap.dedent(body))
    os.chmod(path, 0o600)
    return path


def mail(port):
    return f"\n[mail]\nto = ops@example.com\nfrom = watcher@example.com\nsmtp_host = 127.0.0.1\nsmtp_port = {port}\n"


def drive(directory, ns, config, rounds):
    """*rounds* rounds of the real Watcher inside *ns* (watcher_rounds.py); its record."""
    out = os.path.join(directory, "rounds.json")
    argv = [sys.executable, os.path.join(HERE, "watcher_rounds.py"), COLLECTIONS, config, str(rounds), out]
    proc = subprocess.run(lab.netns_argv(ns, argv), capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out, encoding="utf-8") as handle:
        return json.load(handle)


@needs_lab
def test_a_host_losing_20_percent_sends_no_alert_in_1000_rounds(tmp_path):
    """With the defaults (4 probes a round; down after 3 of the last 5 rounds; clear after 2): no mail.
    Spacing and timeout are shortened (loopback answers in microseconds) so the 1,000 rounds take a minute.
    The old rule, on the same lab, mails within 200 rounds: the test can fail."""
    with lab.lossy({20: [2]}) as ns, mail_server(str(tmp_path), ns) as (port, maildir):
        textfile = tmp_path / "textfile"
        textfile.mkdir()
        hosts = "[hosts]\nwatch = 127.0.0.2 127.0.0.3\nspacing = 0.01\ntimeout = 0.05\n"
        disks = "[disk]\ninclude_mounts = /nonexistent-sysops-fleet-test\n"  # the mails counted are the hosts'
        config = settings(str(tmp_path / "new"), hosts + disks + mail(port) + f"[metrics]\ntextfile_dir = {textfile}\n")
        record = drive(str(tmp_path / "new"), ns, config, 1000)
        sent = subjects(maildir)
        dropped = lab.dropped(ns).get("127.0.0.2", 0)
        old = settings(str(tmp_path / "old"), hosts + OLD_RULE + disks + mail(port))
        drive(str(tmp_path / "old"), ns, old, 200)  # the old rule, for the mails it sends
        control_sent = subjects(maildir)[len(sent):]
    rounds = record["rounds"]
    print(f"\n1000 rounds driven in {record['seconds']:.0f} s; rounds seen down: "
          f"{sum(1 for r in rounds if r['hosts']['127.0.0.2'][0] == 'down')}; old rule, 200 rounds: "
          f"{len(control_sent)} mails")
    assert all(r["ok"] for r in rounds), [r["problems"] for r in rounds if not r["ok"]][:3]
    assert sent == [] and not any(r["changes"] for r in rounds), sent
    assert all(r["hosts"]["127.0.0.2"][1] == "up" for r in rounds)
    host = record["state"]["hosts"]["127.0.0.2"]
    assert host["probes"]["sent"] == 4000 and host["probes"]["sent"] - host["probes"]["received"] == dropped
    assert 0.17 < dropped / 4000 < 0.23, "the lab lost about 20 %"
    prom = (textfile / _metrics.TEXTFILE_NAME).read_text()
    assert promtool("check", "metrics", stdin=prom).returncode == 0, prom[:2000]
    found = parse(prom)
    labels = frozenset({("host", "127.0.0.2"), ("address", "127.0.0.2")})
    assert found[("sysops_fleet_host_probes_sent_total", labels)] == 4000
    assert found[("sysops_fleet_host_probes_received_total", labels)] == 4000 - dropped
    assert found[("sysops_fleet_host_probe_rtt_seconds_count", labels)] == 4000 - dropped
    assert len(control_sent) >= 2 and any("problem: 127.0.0.2 down" in s for s in control_sent), control_sent


def rounds_until(state_file, started_after, host, status):
    """How many rounds that started after *started_after* (state's last_check) it took until *host* was
    alerted *status*: read from the state file the daemon writes after every round."""
    seen = {}

    def check():
        try:
            with open(state_file, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            return None
        when = state.get("last_check") or 0
        if when > started_after:
            seen[when] = state["hosts"].get(host, {}).get("status")
        reached = [w for w, s in seen.items() if s == status]
        return len([w for w in seen if w <= min(reached)]) if reached else None
    return wait_for(check, 30, f"{host} {status}")


def entry_point(directory):
    entry = os.path.join(directory, "fleet-watcher")
    with open(entry, "w", encoding="utf-8") as handle:
        handle.write(f"import sys\nsys.path.insert(0, {COLLECTIONS!r})\n"
                     "from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli\n"
                     "_watcher_cli.entry_point()\n")
    return entry


@needs_lab
def test_the_daemon_mails_a_stopped_host_within_3_rounds_and_its_recovery_within_3(tmp_path):
    with lab.lossy({}) as ns, mail_server(str(tmp_path), ns) as (port, maildir):
        config = settings(str(tmp_path), "[hosts]\nwatch = 127.0.0.2\nspacing = 0.02\ntimeout = 0.2\n"
                          "[disk]\ninclude_mounts = /nonexistent-sysops-fleet-test\n" + mail(port))
        state_file = str(tmp_path / "lib" / "state.json")
        argv = [sys.executable, entry_point(str(tmp_path)), "--config", config, "run", "--log-file", "-"]
        with subprocess.Popen(lab.netns_argv(ns, argv), stderr=subprocess.PIPE, text=True) as daemon:
            try:
                wait_for(lambda: os.path.exists(state_file), 30, "the first round")
                time.sleep(2.5)  # a few good rounds
                silenced = time.time()
                lab.silence(ns, "127.0.0.2")
                down_after = rounds_until(state_file, silenced, "127.0.0.2", "down")
                wait_for(lambda: len(subjects(maildir)) == 1, 20, "the problem mail")
                answered = time.time()
                lab.speak(ns, "127.0.0.2")
                up_after = rounds_until(state_file, answered, "127.0.0.2", "up")
                wait_for(lambda: len(subjects(maildir)) == 2, 20, "the recovery mail")
            finally:
                daemon.terminate()
                log = daemon.communicate(timeout=30)[1]
    mails = subjects(maildir)
    assert "problem: 127.0.0.2 down" in mails[0] and "recovery: 127.0.0.2 up" in mails[1], mails
    assert down_after <= 3 and up_after <= 3, (down_after, up_after, log[-2000:])
    print(f"\nproblem mailed in round {down_after} after the host stopped, recovery in round {up_after}")


TMPFS_ROUNDS = r"""
set -e
mount -t tmpfs -o size=100m sysops-fleet-osc "$FS"
size=$(( $(stat -f -c %b "$FS") * $(stat -f -c %S "$FS") ))
for i in $(seq 1 $ROUNDS); do
    # 78.5 % and 79.5 % of the size: df's Use% (rounded up) says 79 (ok) and 80 (warn, at warn = 80)
    if [ $((i % 2)) -eq 1 ]; then share=795; else share=785; fi
    rm -f "$FS/fill"
    head -c $((size * share / 1000)) /dev/zero > "$FS/fill"
    "$PYTHON" "$ENTRY" --config "$CONFIG" check --json > /dev/null
done
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="mounting a tmpfs in a mount namespace of its own needs root and unshare")
@pytest.mark.parametrize("margin,most", [("", 1), ("0", 12)])
def test_a_filesystem_hovering_around_warn_is_mailed_once(tmp_path, margin, most):
    """12 fleet-watcher check rounds on a real tmpfs, alternately at 79.5 % and 78.5 % (df: 80 % and 79 %)
    with warn = 80: one mail with the default clear margin; with clear_margin = 0 (no hysteresis, as before)
    every round changes and mails."""
    fs = tmp_path / "fs"
    fs.mkdir()
    with mail_server(str(tmp_path)) as (port, maildir):
        body = (f"[disk]\nwarn = 80\ncrit = 95\ninclude_mounts = {fs}\n"
                + (f"clear_margin = {margin}\n" if margin else "") + mail(port))
        config = settings(str(tmp_path), body)
        env = dict(os.environ, FS=str(fs), ROUNDS="12", PYTHON=sys.executable, ENTRY=entry_point(str(tmp_path)),
                   CONFIG=config)
        run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", TMPFS_ROUNDS], env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        mails = subjects(maildir)
    assert mails and "problem" in mails[0] and f"{fs} warn" in mails[0], mails
    assert len(mails) == most, mails
