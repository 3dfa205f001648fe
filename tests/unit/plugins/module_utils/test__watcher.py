# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The watcher: settings, state changes, alerts to a real local SMTP server, history, and the
fleet-watcher command run as a real daemon."""

import contextlib
import datetime
import email
import email.policy
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import (_disk, _history, _mail_spool, _metrics, _pidfile, _sizes,
                                                                   _watcher, _watcher_cli)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtp_server import SmtpServer  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_watcher.__file__), "..", "..", "..", "..", ".."))


def free_port():
    """A loopback port nobody listens on (a mail server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_settings(tmp_path, body="", **sections):
    defaults = {"interval": "5", "pidfile": f"{tmp_path}/run/watcher.pid", "log_file": f"{tmp_path}/log/watcher.log",
                "state_dir": f"{tmp_path}/lib"}
    lines = [f"{k} = {v}" for k, v in defaults.items() if f"{k} =" not in body]
    text = "[watcher]\n" + "\n".join(lines) + "\n" + textwrap.dedent(body)
    path = tmp_path / "watcher.ini"
    path.write_text(text)
    for directory in ("lib", "log"):
        (tmp_path / directory).mkdir(exist_ok=True)
    return str(path)


# The alert rule of one round (as before the K-of-N rule): a test of mail or the spool need not wait three rounds.
ONE_ROUND = "down_after = 1\nwindow = 1\nclear_after = 1\n"


def mail_section(port, to="ops@example.com"):
    return textwrap.dedent(f"""
        [mail]
        to = {to}
        from = watcher@example.com
        smtp_host = 127.0.0.1
        smtp_port = {port}
        smtp_timeout = 5
        """)


def fs(mount, pct, avail=1000):
    used = pct * 10
    return _disk.Filesystem(device="/dev/test", fstype="ext4", mount=mount, size_bytes=1000, used_bytes=used,
                            avail_bytes=avail, use_pct=pct, inodes_total=100, inodes_used=1, inode_pct=1)


class FakeDisks:
    """Stands in for _disk.read_filesystems: the test sets the use of each mount."""

    def __init__(self, **mounts):
        self.mounts = {"/" + k if k != "root" else "/": v for k, v in mounts.items()}

    def __call__(self, selection, timeout, workers):
        return [fs(m, pct) for m, pct in self.mounts.items()]


class FakeSweep:
    """Stands in for _sweep.sweep: the test says which hosts answer."""

    def __init__(self, up):
        self.up = dict(up)

    def __call__(self, targets, **kwargs):
        return {"hosts": {t: {"alive": self.up[t], "rtt_ms": 0.1 if self.up[t] else None} for t in targets}}


# ---- settings ----------------------------------------------------------------------------------

def test_settings_are_read_and_validated_by_the_disk_report_code(tmp_path):
    path = write_settings(tmp_path, """
        user = nobody
        umask = 027
        [disk]
        warn = 70
        crit = 85
        free_crit = 1G
        exclude_mounts = /boot, /snap/*
        [hosts]
        watch = 127.0.0.1, 127.0.0.2
          localhost
        timeout = 0.5
        method = ping
        [mail]
        to = ops@example.com, Night Shift <night@example.com>
        smtp_host = 127.0.0.1
        smtp_port = 2525
        smtp_password = 100%secret
        smtp_username = bot
        smtp_security = starttls
        """)
    settings = _watcher.load_settings(path)
    assert settings.interval == 5 and settings.user == "nobody" and settings.umask == 0o027
    assert settings.hosts == ["127.0.0.1", "127.0.0.2", "localhost"]
    assert settings.host_timeout == 0.5 and settings.host_method == "ping"
    report = settings.report
    assert report.limits.warn == 70 and report.limits.crit == 85 and report.limits.free_crit == 1024 ** 3
    assert report.selection.exclude_mounts == ("/boot", "/snap/*")
    assert [a.addr_spec for a in report.mail.mail_to] == ["ops@example.com", "night@example.com"]
    assert report.mail.smtp.port == 2525 and report.mail.smtp.password == "100%secret"
    assert report.spool_dir == f"{tmp_path}/lib/spool"
    assert settings.state_file == f"{tmp_path}/lib/state.json"


@pytest.mark.parametrize("body, message", [
    ("interval = 0\n", "interval must be between 1 and 86400"),
    ("umask = 999\n", "umask must be octal"),
    ("pidfile = run/w.pid\n", "pidfile must be an absolute path"),
    ("[disk]\nwarn = 95\ncrit = 90\n", "warn (95%) must not be above crit (90%)"),
    ("[mail]\nto = not an address\n", "mail_to"),
    ("[hosts]\nmethod = carrier-pigeon\n", "method must be one of"),
    ("[typo]\nx = 1\n", "unknown section(s) typo"),
    ("[mail]\nsmtp_validate_certs = maybe\n", "smtp_validate_certs must be true or false"),
])
def test_bad_settings_name_the_option(tmp_path, body, message):
    path = write_settings(tmp_path, body)
    with pytest.raises(_watcher.WatcherConfigError) as err:
        _watcher.load_settings(path)
    assert message in str(err.value)


def test_a_missing_settings_file_says_so(tmp_path):
    with pytest.raises(_watcher.WatcherConfigError, match="does not exist"):
        _watcher.load_settings(str(tmp_path / "nope.ini"))


# ---- state changes -----------------------------------------------------------------------------

def test_disk_alerts_only_when_the_status_changes(tmp_path):
    settings = _watcher.load_settings(write_settings(tmp_path, "[disk]\nwarn = 80\ncrit = 90\n"))
    disks = FakeDisks(root=50, var=85)
    watcher = _watcher.Watcher(settings, reader=disks, sweeper=FakeSweep({}))
    first = watcher.check_once()
    assert [(c.name, c.old, c.new) for c in first] == [("/var", "ok", "warn")], "already warn at start: one alert"
    assert watcher.check_once() == [], "no change, no alert"
    disks.mounts["/var"] = 95
    assert [(c.name, c.old, c.new, c.worse) for c in watcher.check_once()] == [("/var", "warn", "crit", True)]
    disks.mounts["/var"] = 40
    back = watcher.check_once()
    assert [(c.name, c.old, c.new, c.worse) for c in back] == [("/var", "crit", "ok", False)]
    assert "back below its thresholds" in back[0].line()


def test_state_survives_a_restart_so_alerts_are_not_repeated(tmp_path):
    settings = _watcher.load_settings(write_settings(tmp_path, "[hosts]\nwatch = 127.0.0.1 127.0.0.9\n"))
    sweep = FakeSweep({"127.0.0.1": True, "127.0.0.9": False})
    for _round in range(2):
        assert _watcher.Watcher(settings, reader=FakeDisks(root=1), sweeper=sweep).check_once() == []
    changes = _watcher.Watcher(settings, reader=FakeDisks(root=1), sweeper=sweep).check_once()
    assert [(c.name, c.new) for c in changes] == [("127.0.0.9", "down")], "the third silent round, across restarts"
    again = _watcher.Watcher(settings, reader=FakeDisks(root=1), sweeper=sweep)
    assert again.check_once() == []
    sweep.up["127.0.0.9"] = True
    assert again.check_once() == [], "one good round does not clear it"
    assert [(c.name, c.old, c.new) for c in again.check_once()] == [("127.0.0.9", "down", "up")]
    state = json.loads((tmp_path / "lib" / "state.json").read_text())
    assert state["hosts"]["127.0.0.9"]["status"] == "up" and state["disks"]["/"]["status"] == "ok"


def test_one_failing_check_does_not_stop_the_other(tmp_path):
    settings = _watcher.load_settings(write_settings(tmp_path, "[hosts]\nwatch = 127.0.0.9\n" + ONE_ROUND))

    def broken_reader(*args):
        raise _disk.DiskError("cannot read the mount table")

    changes = _watcher.Watcher(settings, reader=broken_reader, sweeper=FakeSweep({"127.0.0.9": False})).check_once()
    assert [c.name for c in changes] == ["127.0.0.9"]


def test_real_hosts_on_loopback_are_up(tmp_path):
    settings = _watcher.load_settings(write_settings(tmp_path, "[hosts]\nwatch = 127.0.0.1 localhost\n"))
    watcher = _watcher.Watcher(settings)
    assert watcher.check_once() == [] or all(c.kind == "disk" for c in watcher.check_once())
    assert {h["status"] for h in watcher.state["hosts"].values()} == {"up"}


# ---- alerts and the spool ----------------------------------------------------------------------

def test_alerts_are_mailed_and_spooled_while_the_server_is_down(tmp_path):
    with SmtpServer() as server:
        port = server.port
        path = write_settings(tmp_path, "[hosts]\nwatch = 127.0.0.9\n" + ONE_ROUND + mail_section(port))
        sweep = FakeSweep({"127.0.0.9": False})
        watcher = _watcher.Watcher(_watcher.load_settings(path), reader=FakeDisks(root=1), sweeper=sweep)
        watcher.check_once()
        assert len(server.messages) == 1
        message = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
        assert "problem: 127.0.0.9 down" in message["Subject"]
        assert message["To"] == "ops@example.com"
        assert "host 127.0.0.9: up -> down" in message.get_body(("plain",)).get_content()
    # the server is gone: the recovery alert goes to the spool
    sweep.up["127.0.0.9"] = True
    watcher.check_once()
    spool = tmp_path / "lib" / "spool"
    assert len(_mail_spool.listing(str(spool))) == 1
    assert watcher.state["spool_pending"] == 1
    # the server is back on the same port: the next round delivers the spool without a new alert
    with SmtpServer(port=port) as server:
        assert watcher.check_once() == []
        assert len(server.messages) == 1
        assert "recovery: 127.0.0.9 up" in email.message_from_bytes(server.messages[0].data, policy=email.policy.default)["Subject"]
    assert _mail_spool.listing(str(spool)) == []


def test_an_alert_spooled_longer_than_spool_lifetime_days_is_given_up(tmp_path):
    """[mail] spool_lifetime_days reaches the watcher's deliveries: a spooled alert the server never takes
    becomes a dead letter, and the spool is empty again. Checked: 0 or 366 is refused naming the setting."""
    down = free_port()
    body = "[hosts]\nwatch = 127.0.0.9\n" + ONE_ROUND + mail_section(down) + "spool_lifetime_days = 0.00002\n"
    settings = _watcher.load_settings(write_settings(tmp_path, body))
    assert settings.report.mail.spool_lifetime_days == 0.00002
    watcher = _watcher.Watcher(settings, reader=FakeDisks(root=1), sweeper=FakeSweep({"127.0.0.9": False}))
    watcher.check_once()
    spool = str(tmp_path / "lib" / "spool")
    assert len(_mail_spool.listing(spool)) == 1
    time.sleep(2.0)
    watcher.check_once()
    assert _mail_spool.listing(spool) == [] and watcher.state["spool_pending"] == 0
    [dead] = _mail_spool.undelivered(spool)
    assert "not delivered within spool_lifetime_days=2e-05" in dead["reason"] and "connection refused" in dead["reason"]
    for bad in ("0", "366", "5d"):
        with pytest.raises(_watcher.WatcherConfigError) as refused:
            _watcher.load_settings(write_settings(tmp_path, mail_section(down) + f"spool_lifetime_days = {bad}\n"))
        assert str(refused.value) == ("[disk]/[mail]: spool_lifetime_days must be a number of days, more than 0 and "
                                      f"at most 365, got '{bad}'")


def test_no_recipients_means_log_only(tmp_path):
    settings = _watcher.load_settings(write_settings(tmp_path, "[hosts]\nwatch = 127.0.0.9\n" + ONE_ROUND))
    watcher = _watcher.Watcher(settings, reader=FakeDisks(root=1), sweeper=FakeSweep({"127.0.0.9": False}))
    assert len(watcher.check_once()) == 1
    assert not (tmp_path / "lib" / "spool").exists()


# ---- the daily report with the fill rate ------------------------------------------------------

def test_the_daily_report_adds_the_fill_rate_and_mails_it(tmp_path):
    with SmtpServer() as server:
        settings = _watcher.load_settings(write_settings(tmp_path, mail_section(server.port)))
        now = datetime.datetime.now(datetime.timezone.utc).astimezone()
        root = [f for f in _disk.read_filesystems() if f.mount == "/"] or _disk.read_filesystems()[:1]
        mount = root[0].mount
        used, avail = root[0].used_bytes, root[0].avail_bytes
        start = now.timestamp() - _history.DAY
        _history.save(settings.history_file, {mount: [(start + h * 3600, used - (24 - h) * 2 ** 20, avail + (24 - h) * 2 ** 20)
                                                      for h in range(24)]})
        outcome = _watcher.daily_report(settings, now=now)
        assert not outcome.error and outcome.changed
        assert "Fill rate (from" in outcome.result["report"]
        rate = next(f for f in outcome.result["filesystems"] if f["mount"] == mount)["forecast"]["rate_per_day"]
        assert abs(rate - 24 * 2 ** 20) < 2 ** 20, rate  # 1 MiB an hour (the disk itself may move a little)
        assert f"{mount}: +{_sizes.human(rate, 'B')}/day" in outcome.result["report"]
        message = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
        assert re.fullmatch(r"\[(OK|WARN|CRIT)\] Nightly Disk Usage Report for .+: .+", message["Subject"]), message["Subject"]
        assert "Fill rate" in message.get_body(("html",)).get_content()


def test_the_daily_report_is_spooled_when_the_server_is_down(tmp_path):
    settings = _watcher.load_settings(write_settings(tmp_path, mail_section(free_port())))
    outcome = _watcher.daily_report(settings)
    assert "could not be mailed" in outcome.error and "spooled to" in outcome.error
    assert len(_mail_spool.listing(settings.report.spool_dir)) == 1


# ---- the fleet-watcher command, for real ---------------------------------------------------

@pytest.fixture
def fleet_watcher(tmp_path):
    """Run fleet-watcher as the role installs it: an entry script calling the CLI module."""
    script = tmp_path / "fleet-watcher"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {COLLECTIONS!r})
        from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli
        _watcher_cli.entry_point(default_config={str(tmp_path / 'watcher.ini')!r})
        """))
    started = []

    def run(*args, timeout=60):
        result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                                timeout=timeout, check=False)
        return result

    yield run
    pid = _pidfile.read_pid(str(tmp_path / "run" / "watcher.pid"))
    if pid:
        started.append(pid)
    for pid in started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_start_status_stop_as_init_scripts_do(tmp_path, fleet_watcher):
    write_settings(tmp_path, "[hosts]\nwatch = 127.0.0.1\n")
    assert fleet_watcher("status").returncode == 3
    started = fleet_watcher("start")
    assert started.returncode == 0, started.stderr
    assert "fleet-watcher started (pid" in started.stdout
    pid = _pidfile.read_pid(str(tmp_path / "run" / "watcher.pid"))
    assert wait_for((tmp_path / "lib" / "state.json").exists)
    status = fleet_watcher("status", "--json")
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["running"] and data["pid"] == pid and data["hosts"]["127.0.0.1"]["status"] == "up"
    again = fleet_watcher("start")
    assert again.returncode == 1 and f"already running (pid {pid}" in again.stderr
    quiet = fleet_watcher("start", "--if-not-running")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    stopped = fleet_watcher("stop")
    assert stopped.returncode == 0 and f"stopped (pid {pid})" in stopped.stdout
    assert not (tmp_path / "run" / "watcher.pid").exists()
    assert fleet_watcher("status").returncode == 3
    log = (tmp_path / "log" / "watcher.log").read_text()
    assert "started: pid" in log and "stopping (signal 15)" in log


def test_a_killed_daemon_shows_as_dead_and_the_keepalive_restarts_it(tmp_path, fleet_watcher):
    write_settings(tmp_path)
    assert fleet_watcher("start").returncode == 0
    pid = _pidfile.read_pid(str(tmp_path / "run" / "watcher.pid"))
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: _pidfile.running_pid(str(tmp_path / "run" / "watcher.pid")) is None)
    status = fleet_watcher("status")
    assert status.returncode == 1 and "pidfile" in status.stdout
    keepalive = fleet_watcher("start", "--if-not-running")
    assert keepalive.returncode == 0
    new = _pidfile.read_pid(str(tmp_path / "run" / "watcher.pid"))
    assert new != pid and fleet_watcher("status").returncode == 0
    assert wait_for(lambda: f"took over the stale pidfile {tmp_path}/run/watcher.pid of pid {pid}"
                    in (tmp_path / "log" / "watcher.log").read_text())


def test_reload_rereads_the_settings(tmp_path, fleet_watcher):
    path = write_settings(tmp_path)
    assert fleet_watcher("reload").returncode == 7
    assert fleet_watcher("start").returncode == 0
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("[hosts]\nwatch = 127.0.0.1\n")
    assert fleet_watcher("reload").returncode == 0
    assert wait_for(lambda: "reloaded settings from" in (tmp_path / "log" / "watcher.log").read_text())
    assert wait_for(lambda: "127.0.0.1" in json.loads(fleet_watcher("status", "--json").stdout)["hosts"])


def test_a_bad_settings_file_is_refused_in_the_terminal(tmp_path, fleet_watcher):
    write_settings(tmp_path, "interval = soon\n")
    result = fleet_watcher("start")
    assert result.returncode == 6 and "interval must be a number" in result.stderr
    assert not (tmp_path / "run" / "watcher.pid").exists()


def test_one_shot_check_report_and_sweep(tmp_path, fleet_watcher):
    write_settings(tmp_path, "[disk]\nwarn = 1\ncrit = 100\n[hosts]\nwatch = 127.0.0.1\n")
    check = fleet_watcher("check", "--json")
    assert check.returncode == 0, check.stderr
    assert any(c["new"] == "warn" for c in json.loads(check.stdout)["changes"])
    report = fleet_watcher("report", "--check")
    assert report.returncode == 0 and "Nightly Disk Usage Report" in report.stdout and "Fill rate" in report.stdout
    sweep = fleet_watcher("sweep", "127.0.0.1-2")
    assert sweep.returncode == 0
    assert "127.0.0.1 is alive" in sweep.stdout and "2 alive, 0 silent" in sweep.stdout
    default = fleet_watcher("sweep", "--json")
    assert json.loads(default.stdout)["alive"] == ["127.0.0.1"]


def test_run_in_the_foreground_for_systemd(tmp_path):
    path = write_settings(tmp_path)
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli; "
         "_watcher_cli.entry_point(sys.argv[2:])", COLLECTIONS, "--config", path, "run", "--log-file", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: _pidfile.running_pid(str(tmp_path / "run" / "watcher.pid")) == proc.pid)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, out + err
        assert "started: pid" in err and "stopped" in err, "with --log-file - the log goes to stderr (the journal)"
        assert not (tmp_path / "run" / "watcher.pid").exists()
    finally:
        proc.kill()
        proc.wait()


def test_cli_parser_knows_every_command():
    parser = _watcher_cli.parser()
    for command in _watcher_cli.COMMANDS:
        assert parser.parse_args([command]).command == command


# ---- a round that fails shows, everywhere an operator looks --------------------------------------

def test_a_failing_round_shows_in_status_metrics_and_the_log_and_its_alert_is_not_lost(tmp_path, caplog):
    """The host check fails (no probe method), the metrics cannot be written, and the alert meets an error
    nobody planned for (an smtp_host that is no valid IDNA name: UnicodeError before any packet, as "unknown
    encoding: idna" did on a Python the daemon's user could not read): the round says what failed, and the
    alert waits in the spool."""
    textfile = tmp_path / "textfile"  # missing: the metrics cannot be written
    body = (f"[disk]\nwarn = 80\ncrit = 90\n[hosts]\nwatch = 127.0.0.1\n[metrics]\ntextfile_dir = {textfile}\n"
            + mail_section(25).replace("smtp_host = 127.0.0.1", "smtp_host = a..b"))
    settings = _watcher.load_settings(write_settings(tmp_path, body))

    def no_probe(targets, **kwargs):
        raise OSError(1, "no ICMP socket and no ping for this user")
    watcher = _watcher.Watcher(settings, reader=FakeDisks(root=95), sweeper=no_probe)
    with caplog.at_level("INFO", logger="fleet-watcher"):
        changes = watcher.check_once()
    assert [(c.name, c.new) for c in changes] == [("/", "crit")]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(e.startswith("host check failed") for e in errors), errors
    assert any("cannot write the metrics" in e for e in errors), errors
    assert len(_mail_spool.listing(settings.report.mail.spool_dir)) == 1, "the alert waits in the spool"
    state = _watcher.load_state(settings.state_file)
    assert state["last_round"]["ok"] is False and len(state["last_round"]["problems"]) == 2, state["last_round"]
    args = _watcher_cli.parser().parse_args(["status"])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        _watcher_cli.cmd_status(args, settings)
    assert "last round FAILED (2 problem(s)" in out.getvalue() and "host check failed" in out.getvalue()
    textfile.mkdir()
    caplog.clear()
    with caplog.at_level("INFO", logger="fleet-watcher"):
        watcher.check_once()
    found = (textfile / _metrics.TEXTFILE_NAME).read_text()
    assert 'sysops_fleet_watcher_check_success{check="metrics"} 0' in found, "its last write had failed"
    assert 'sysops_fleet_watcher_check_success{check="host"} 0' in found
    assert 'sysops_fleet_watcher_check_success{check="mail"} 1' in found, "spooled is not lost"
    again = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not again, "a lasting problem is logged again only after an hour"


def test_a_probe_that_fails_now_and_then_is_no_alert_until_it_fails_down_after_rounds_in_a_row(tmp_path):
    """An outside tester: a mount whose probe timed out 1 round in 20 (a busy NFS server) made 98 alert changes in
    1,000 rounds (ok -> crit -> ok). A failed probe is crit only after down_after (3) failed rounds in a row."""
    failing = set(range(5, 1000, 20)) | {400, 401, 402, 403}  # now and then, and once four rounds in a row

    class Flaky:
        round = 0

        def __call__(self, selection, timeout, workers):
            Flaky.round += 1
            if Flaky.round - 1 in failing:
                return [_disk.Filesystem(device="/dev/test", fstype="nfs", mount="/srv",
                                         error="df did not answer within 5s (timed out)")]
            return [fs("/srv", 40)]
    watcher = _watcher.Watcher(_watcher.load_settings(write_settings(tmp_path)), reader=Flaky(),
                               sweeper=FakeSweep({}))
    changes = []
    for number in range(1000):
        changes += [(number, c.old, c.new) for c in watcher.check_disks(1000.0 + number)]
        if number == 5:
            state = watcher.state["disks"]["/srv"]
            assert state["status"] == "ok" and state["failed_rounds"] == 1
            assert "probe failed 1 round(s) in a row (crit after 3)" in state["reasons"]
    assert changes == [(402, "ok", "crit"), (404, "crit", "ok")], changes


def test_a_large_watch_lists_state_is_read_back_and_an_unreadable_one_is_said(tmp_path, caplog):
    """An outside tester: watching a /16 wrote a 33 MB state that the 16 MiB read limit then refused: every
    alert forgotten at each restart, without a word. The limit follows the watch list; a state that still
    cannot be read is logged."""
    settings = _watcher.load_settings(write_settings(tmp_path, "interval = 86400\n[hosts]\nwatch = 127.0.0.0/16\n"))
    hosts = {f"127.0.{i // 256}.{i % 256}": {"status": "down", "since": 1.0, "seen": "ddd" * 20, "pad": "x" * 200}
             for i in range(1, 65535)}
    with open(settings.state_file, "w", encoding="utf-8") as handle:
        json.dump({"disks": {}, "hosts": hosts}, handle)
    assert os.path.getsize(settings.state_file) > _watcher.STATE_MAX_BYTES
    watcher = _watcher.Watcher(settings, reader=FakeDisks(root=1), sweeper=FakeSweep({}))
    assert len(watcher.state["hosts"]) == 65534 and watcher.state["hosts"]["127.0.9.9"]["status"] == "down"
    (tmp_path / "small").mkdir()
    small = _watcher.load_settings(write_settings(tmp_path / "small", "[hosts]\nwatch = 127.0.0.1\n"))
    with caplog.at_level("WARNING", logger="fleet-watcher"):
        assert _watcher.load_state(settings.state_file, _watcher.state_limit(small)) == {"disks": {}, "hosts": {}}
    assert "cannot read the state" in caplog.text and "every alert forgotten" in caplog.text
