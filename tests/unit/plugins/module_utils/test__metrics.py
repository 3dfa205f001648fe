# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Metrics for Prometheus: the rendering, and the watcher's file read by a real node_exporter and promtool.

The end-to-end test runs ``fleet-watcher check`` inside the loopback lab
(127.x.x.3 is silent there) with two tmpfs filesystems of known size
mounted in the lab's own mount namespace, then scrapes node_exporter over
HTTP and compares every number with what the kernel says.
"""

import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _history, _mail_spool, _metrics, _watcher

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prometheus import NodeExporter, parse, promtool  # noqa: E402  pylint: disable=wrong-import-position

TESTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, TESTS)
import lab  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_metrics.__file__), "..", "..", "..", "..", ".."))
WATCHER_DOCS = os.path.join(TESTS, "..", "docs", "watcher.md")
MIB = 1 << 20
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and network namespaces need root")


def row(mount="/srv", **values):
    base = {"device": "/dev/sdb1", "fstype": "ext4", "mount": mount, "size_bytes": 1000, "used_bytes": 250,
            "avail_bytes": 700, "inodes_total": 100, "inodes_used": 10, "status": "ok", "error": None}
    base.update(values)
    return base


def forecast(mount="/srv", per_second=None, avail=700, days=None):
    """A forecast; with *days*, a steady one full in that many days, give or take one."""
    return _history.Forecast(mount=mount, rate_per_day=None if per_second is None else per_second * _history.DAY,
                             avail_bytes=avail, days_to_full=days, steady=days is not None,
                             days_to_full_low=None if days is None else days - 1,
                             days_to_full_high=None if days is None else days + 1)


def samples(families):
    return parse(_metrics.render(families))


def value(found, name, **labels):
    return found[(name, frozenset((k, str(v)) for k, v in labels.items()))]


# ---- the format ----------------------------------------------------------------------------------

def test_label_values_and_help_are_escaped_as_the_format_says():
    family = _metrics.Family("sysops_fleet_test", 'Help with a \\ backslash\nand a "quote".')
    family.add(1, mount='/mnt/we"ird\\name\nwith a line feed, comma, {braces} and ünïcode')
    text = _metrics.render([family])
    assert text.splitlines()[0] == '# HELP sysops_fleet_test Help with a \\\\ backslash\\nand a "quote".'
    assert text.splitlines()[2] == ('sysops_fleet_test{mount="/mnt/we\\"ird\\\\name\\nwith a line feed, comma, '
                                    '{braces} and ünïcode"} 1')
    assert parse(text) == {("sysops_fleet_test", frozenset({("mount", '/mnt/we"ird\\name\nwith a line feed, comma, '
                                                             "{braces} and ünïcode")})): 1.0}


def test_a_mount_point_that_is_not_utf8_stays_readable():
    family = _metrics.Family("sysops_fleet_test", "x")
    family.add(1, mount=b"/mnt/caf\xe9".decode("utf-8", "surrogateescape"))
    text = _metrics.render([family])
    assert 'mount="/mnt/caf\\\\udce9"' in text
    text.encode("utf-8")


@pytest.mark.parametrize("number, text", [
    (0, "0"), (1, "1"), (270553174016, "270553174016"), (0.25, "0.25"), (2.5e-05, "2.5e-05"),
    (True, "1"), (False, "0"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"),
])
def test_values_are_written_as_prometheus_parses_them(number, text):
    assert _metrics.format_value(number) == text


@pytest.mark.parametrize("build, message", [
    (lambda: [_metrics.Family("sysops-fleet-x", "x", samples=[({}, 1)])], "bad or repeated metric name"),
    (lambda: [_metrics.Family("a", "x", samples=[({}, 1)]), _metrics.Family("a", "y", samples=[({}, 2)])],
     "bad or repeated metric name 'a'"),
    (lambda: [_metrics.Family("a", "x", samples=[({"m": "/"}, 1), ({"m": "/"}, 2)])], "two samples with the labels"),
    (lambda: [_metrics.Family("a", "x", samples=[({"__name__": "b"}, 1)])], "bad label name '__name__'"),
    (lambda: [_metrics.Family("a", "x", samples=[({"mount-point": "/"}, 1)])], "bad label name 'mount-point'"),
    (lambda: [_metrics.Family("a", "x", kind="summary", samples=[({}, 1)])], "type 'summary' is not one of"),
])
def test_what_prometheus_would_refuse_is_refused_here(build, message):
    with pytest.raises(_metrics.MetricsError, match=re.escape(message)):
        _metrics.render(build())


def test_an_unknown_value_is_a_gap_not_a_number():
    family = _metrics.Family("sysops_fleet_test", "x")
    family.add(None, mount="/")
    assert _metrics.render([family]) == "\n", "no sample, and no HELP/TYPE for a metric with none"


# ---- what the watcher reports ----------------------------------------------------------------------

def test_filesystems_in_base_units_with_ratios_and_one_status():
    found = samples(_metrics.filesystem_metrics([row(status="warn")], {}))
    labels = {"mount": "/srv", "device": "/dev/sdb1", "fstype": "ext4"}
    assert value(found, "sysops_fleet_filesystem_size_bytes", **labels) == 1000
    assert value(found, "sysops_fleet_filesystem_used_bytes", **labels) == 250
    assert value(found, "sysops_fleet_filesystem_avail_bytes", **labels) == 700
    assert value(found, "sysops_fleet_filesystem_use_ratio", **labels) == 250 / 950, "as df's Use%: used/(used+avail)"
    assert value(found, "sysops_fleet_filesystem_inode_use_ratio", **labels) == 0.1
    assert [value(found, "sysops_fleet_filesystem_status", status=s, **labels) for s in ("ok", "warn", "crit")] == [0, 1, 0]


def test_a_filesystem_without_a_forecast_has_no_fill_rate_and_no_time_to_full():
    found = samples(_metrics.filesystem_metrics([row("/a"), row("/b"), row("/c"), row("/d"), row("/e")], {
        "/b": forecast("/b", per_second=None), "/c": forecast("/c", per_second=-3.0),
        "/d": forecast("/d", per_second=7.0, days=2.0), "/e": forecast("/e", per_second=7.0)}))
    names = {(name, dict(labels)["mount"]) for name, labels in found}
    rate, full = "sysops_fleet_filesystem_fill_rate_bytes_per_second", "sysops_fleet_filesystem_full_in_seconds"
    assert {m for n, m in names if n == rate} == {"/c", "/d", "/e"}, "/a has no history, /b too little"
    assert {m for n, m in names if n == full} == {"/d"}, "/c shrinks, /e does not grow steadily: no time to full"
    labels = {"device": "/dev/sdb1", "fstype": "ext4"}
    assert value(found, rate, mount="/c", **labels) == pytest.approx(-3.0)
    assert value(found, rate, mount="/d", **labels) == pytest.approx(7.0)
    assert value(found, full, mount="/d", **labels) == 2 * 86400, "the forecast's date, from its trend line"
    assert value(found, "sysops_fleet_filesystem_full_in_low_seconds", mount="/d", **labels) == 86400
    assert value(found, "sysops_fleet_filesystem_full_in_high_seconds", mount="/d", **labels) == 3 * 86400


def test_a_filesystem_that_could_not_be_read_is_crit_with_no_numbers():
    found = samples(_metrics.filesystem_metrics([row(size_bytes=None, used_bytes=None, avail_bytes=None,
                                                     inodes_total=None, inodes_used=None, status="crit",
                                                     error="df timed out after 5s")], {}))
    assert {key[0] for key in found} == {"sysops_fleet_filesystem_status"}
    assert value(found, "sysops_fleet_filesystem_status", mount="/srv", device="/dev/sdb1", fstype="ext4",
                 status="crit") == 1


def test_hosts_up_and_round_trip_in_seconds():
    found = samples(_metrics.host_metrics({
        "db1.example.com": {"status": "up", "address": "192.0.2.7", "rtt_ms": 0.5},
        "192.0.2.9": {"status": "down", "address": "192.0.2.9", "rtt_ms": None},
        "gone.example.com": {"status": "down", "address": "gone.example.com", "rtt_ms": None,
                             "error": "the name does not resolve"}}))
    assert value(found, "sysops_fleet_host_up", host="db1.example.com", address="192.0.2.7") == 1
    assert value(found, "sysops_fleet_host_up", host="192.0.2.9", address="192.0.2.9") == 0
    assert value(found, "sysops_fleet_host_up", host="gone.example.com", address="gone.example.com") == 0
    assert value(found, "sysops_fleet_host_rtt_seconds", host="db1.example.com", address="192.0.2.7") == 0.0005
    assert len([k for k in found if k[0] == "sysops_fleet_host_rtt_seconds"]) == 1, "no RTT for a host that is down"


def test_every_name_has_the_prefix_and_promtool_finds_nothing_to_lint():
    history = {"/srv": [(1000.0 + t * 900, 100 + t, 900 - t) for t in range(2 * 96 + 1)]}
    forecasts = _history.forecast(history, 1000.0 + 2 * 96 * 900, _history.DEFAULT_WINDOW)
    assert forecasts[0].days_to_full is not None
    families = _metrics.watcher_metrics([row(), row("/home", status="crit")], forecasts,
                                        {"127.0.0.1": {"status": "up", "address": "127.0.0.1", "rtt_ms": 0.02}},
                                        4600.0, 2, {"disk": True, "host": False})
    text = _metrics.render(families)
    names = {key[0] for key in parse(text)}
    assert all(n.startswith("sysops_fleet_") for n in names)
    assert {"sysops_fleet_filesystem_full_in_seconds", "sysops_fleet_watcher_last_round_timestamp_seconds",
            "sysops_fleet_mail_spooled_messages", "sysops_fleet_watcher_check_success"} <= names
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    bad = promtool("check", "metrics", stdin="# HELP rtt_milliseconds x\n# TYPE rtt_milliseconds gauge\nrtt_milliseconds 1\n")
    assert bad.returncode != 0 and "milliseconds" in bad.stdout + bad.stderr, "promtool's lint really runs"


# ---- the file, written atomically, read by node_exporter ------------------------------------------

def big_families(round_no, size=3000):
    """A large file (so a writer takes a while) whose first and last samples carry the round's number."""
    first = _metrics.Family("sysops_fleet_test_first", "x", samples=[({}, round_no)])
    middle = _metrics.Family("sysops_fleet_test_filler", "x",
                             samples=[({"mount": f"/mnt/{i:05d}" + "x" * 40}, i) for i in range(size)])
    last = _metrics.Family("sysops_fleet_test_last", "x", samples=[({}, round_no)])
    return [first, middle, last]


def test_a_scrape_never_sees_half_a_file(tmp_path):
    directory = tmp_path / "textfile"
    directory.mkdir()
    stop = threading.Event()
    rounds = []

    def writer():
        while not stop.is_set():
            rounds.append(len(rounds) + 1)
            _metrics.write_textfile(str(directory), big_families(rounds[-1]))

    with NodeExporter(str(directory), str(tmp_path / "node_exporter.log")) as exporter:
        _metrics.write_textfile(str(directory), big_families(0))
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            scrapes = [exporter.scrape() for _scrape in range(60)]
        finally:
            stop.set()
            thread.join()
    assert len(rounds) > 20, "the writer rewrote the file while node_exporter was scraped"
    for found in scrapes:
        assert found[("node_textfile_scrape_error", frozenset())] == 0
        first = found[("sysops_fleet_test_first", frozenset())]
        assert found[("sysops_fleet_test_last", frozenset())] == first, "the first and last sample of one file"
        assert len([k for k in found if k[0] == "sysops_fleet_test_filler"]) == 3000
    assert os.listdir(directory) == [_metrics.TEXTFILE_NAME], "no temp file left behind"
    assert stat.S_IMODE(os.stat(directory / _metrics.TEXTFILE_NAME).st_mode) == 0o644, "node_exporter's user reads it"


def test_only_prom_file_names_are_written(tmp_path):
    with pytest.raises(_metrics.MetricsError, match="only NAME.prom files"):
        _metrics.write_textfile(str(tmp_path), [], name="watcher.txt")
    with pytest.raises(FileNotFoundError, match="textfile directory .* does not exist"):
        _metrics.write_textfile(str(tmp_path / "missing"), [])
    assert not (tmp_path / "missing").exists(), "a missing directory is not made"


@needs_root
def test_root_writes_as_the_owner_of_the_textfile_directory_and_follows_no_link(tmp_path):
    top = pathlib.Path(tempfile.mkdtemp(prefix="sysops-fleet-textfile-"))  # not below pytest's 0700 directory
    os.chmod(top, 0o755)
    try:
        _owner_writes(top)
    finally:
        shutil.rmtree(top)


def _owner_writes(top):
    """As root, into TOP/textfile owned by nobody, where nobody planted a link to a root file and a FIFO."""
    directory = top / "textfile"
    directory.mkdir()
    secret = top / "root-secret"
    secret.write_text("root's\n")
    os.chown(directory, 65534, 65534)
    os.symlink(secret, directory / _metrics.TEXTFILE_NAME)
    path = _metrics.write_textfile(str(directory), big_families(1, size=3))
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 65534, "replaced by a regular file of the directory's owner"
    assert secret.read_text() == "root's\n" and os.stat(secret).st_uid == 0, "the link's target is untouched"
    assert "sysops_fleet_test_last 1" in (directory / _metrics.TEXTFILE_NAME).read_text()
    os.unlink(path)
    os.mkfifo(path)
    started = time.monotonic()
    _metrics.write_textfile(str(directory), big_families(2, size=3))
    assert time.monotonic() - started < 5, "a FIFO in its place is replaced, never opened"
    assert stat.S_ISREG(os.lstat(path).st_mode) and "sysops_fleet_test_last 2" in pathlib.Path(path).read_text()


# ---- the watcher's settings and round ----------------------------------------------------------------

def settings_file(tmp_path, body):
    for name in ("lib", "log", "run"):
        (tmp_path / name).mkdir(exist_ok=True)
    path = tmp_path / "watcher.ini"
    path.write_text(textwrap.dedent(f"""
        [watcher]
        interval = 5
        pidfile = {tmp_path}/run/watcher.pid
        log_file = {tmp_path}/log/watcher.log
        state_dir = {tmp_path}/lib
        """) + textwrap.dedent(body))
    return str(path)


def test_textfile_dir_is_off_by_default_and_must_be_absolute(tmp_path):
    assert _watcher.load_settings(settings_file(tmp_path, "")).textfile_dir == ""
    assert _watcher.load_settings(settings_file(tmp_path, "[metrics]\ntextfile_dir =\n")).textfile_dir == ""
    assert _watcher.load_settings(settings_file(tmp_path, "[metrics]\ntextfile_dir = /var/lib/node\n")).textfile_dir \
        == "/var/lib/node"
    with pytest.raises(_watcher.WatcherConfigError, match=r"\[metrics\] textfile_dir must be an absolute path"):
        _watcher.load_settings(settings_file(tmp_path, "[metrics]\ntextfile_dir = var/lib/node\n"))


class ListDisks:
    def __init__(self):
        self.fail = False

    def __call__(self, selection, timeout, workers):
        if self.fail:
            raise OSError(5, "cannot read the mount table")
        return []


def test_a_round_without_its_directory_logs_once_and_recovers(tmp_path, caplog):
    path = settings_file(tmp_path, f"[metrics]\ntextfile_dir = {tmp_path}/textfile\n")
    disks = ListDisks()
    watcher = _watcher.Watcher(_watcher.load_settings(path), reader=disks)
    with caplog.at_level("INFO", logger="fleet-watcher"):
        watcher.check_once()
        watcher.check_once()
        errors = [r.getMessage() for r in caplog.records if "cannot write the metrics" in r.getMessage()]
        assert len(errors) == 1 and "does not exist" in errors[0], errors
        (tmp_path / "textfile").mkdir()
        disks.fail = True
        watcher.check_once()
    assert any("metrics written to" in r.getMessage() for r in caplog.records)
    found = parse((tmp_path / "textfile" / _metrics.TEXTFILE_NAME).read_text())
    assert found[("sysops_fleet_watcher_check_success", frozenset({("check", "disk")}))] == 0
    assert found[("sysops_fleet_watcher_check_success", frozenset({("check", "host")}))] == 1
    assert not any(k[0].startswith("sysops_fleet_filesystem_") for k in found), "no stale disks after a failed check"


LAB_ROUND = r"""
set -e
mount -t tmpfs -o size=64m,nr_inodes=1024 sysops-fleet-a "$A"
mount -t tmpfs -o size=64m sysops-fleet-b "$B"
head -c 16777216 /dev/zero > "$A/fill"
"$PYTHON" "$ENTRY" --config "$CONFIG" check --json > "$OUT"
stat -f -c '%c %d' "$A" > "$INODES"
"""


@needs_root
def test_the_watcher_round_scraped_from_a_real_node_exporter(tmp_path):
    textfile, fs_a, fs_b = tmp_path / "textfile", tmp_path / "a", tmp_path / "b"
    for directory in (textfile, fs_a, fs_b):
        directory.mkdir()
    path = settings_file(tmp_path, f"""
        [disk]
        warn = 20
        crit = 90
        include_mounts = {fs_a} {fs_b}
        [hosts]
        watch = 127.0.0.1 127.0.0.3
        timeout = 0.3
        count = 3
        spacing = 0.01
        [metrics]
        textfile_dir = {textfile}
        """)
    settings = _watcher.load_settings(path)
    seeded = time.time() - 2 * 86400  # two days of steady growth, 4 MiB a day, up to the 16 MiB the round finds
    _history.save(settings.history_file, {str(fs_a): [(seeded + k * 900, 8 * MIB + k * MIB // 24, 56 * MIB - k * MIB // 24)
                                                      for k in range(2 * 96)]})
    _mail_spool.add(settings.report.mail.spool_dir, b"Subject: waiting\r\n\r\nfor the server\r\n", "watcher@localhost",
                    ["ops@example.com"])
    entry = tmp_path / "fleet-watcher"
    entry.write_text(f"import sys\nsys.path.insert(0, {COLLECTIONS!r})\n"
                     "from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli\n"
                     "_watcher_cli.entry_point()\n")
    env = dict(os.environ, A=str(fs_a), B=str(fs_b), PYTHON=sys.executable, ENTRY=str(entry), CONFIG=path,
               OUT=str(tmp_path / "check.json"), INODES=str(tmp_path / "inodes"))
    with lab.lab() as namespace:
        run = subprocess.run(lab.netns_argv(namespace, ["sh", "-c", LAB_ROUND]), env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    state = json.loads((tmp_path / "check.json").read_text())["state"]
    total, free = (int(n) for n in (tmp_path / "inodes").read_text().split())
    history = _history.load(settings.history_file)
    [expected] = _history.forecast({str(fs_a): history[str(fs_a)]}, history[str(fs_a)][-1][0])
    assert len(history[str(fs_a)]) == 2 * 96 + 1, "the round added its sample"
    prom = textfile / _metrics.TEXTFILE_NAME
    assert promtool("check", "metrics", stdin=prom.read_text()).returncode == 0

    with NodeExporter(str(textfile), str(tmp_path / "node_exporter.log")) as exporter:
        found = exporter.scrape()
    assert found[("node_textfile_scrape_error", frozenset())] == 0
    a = {"mount": str(fs_a), "device": "sysops-fleet-a", "fstype": "tmpfs"}
    b = {"mount": str(fs_b), "device": "sysops-fleet-b", "fstype": "tmpfs"}
    assert value(found, "sysops_fleet_filesystem_size_bytes", **a) == 64 * MIB
    assert value(found, "sysops_fleet_filesystem_used_bytes", **a) == 16 * MIB
    assert value(found, "sysops_fleet_filesystem_avail_bytes", **a) == 48 * MIB
    assert value(found, "sysops_fleet_filesystem_use_ratio", **a) == 0.25
    assert value(found, "sysops_fleet_filesystem_inode_use_ratio", **a) == pytest.approx((total - free) / total)
    assert value(found, "sysops_fleet_filesystem_used_bytes", **b) == 0
    assert value(found, "sysops_fleet_filesystem_status", status="warn", **a) == 1
    assert value(found, "sysops_fleet_filesystem_status", status="ok", **b) == 1
    rate = value(found, "sysops_fleet_filesystem_fill_rate_bytes_per_second", **a)
    assert rate == pytest.approx(expected.rate_per_day / 86400, rel=1e-9)
    assert rate * 86400 == pytest.approx(4 * MIB, rel=0.02), "4 MiB a day"
    full_in = value(found, "sysops_fleet_filesystem_full_in_seconds", **a)
    assert full_in == pytest.approx(expected.days_to_full * 86400, rel=1e-9)
    assert full_in / 86400 == pytest.approx(12, rel=0.05), "48 MiB left at 4 MiB a day"
    assert value(found, "sysops_fleet_filesystem_full_in_low_seconds", **a) <= full_in \
        <= value(found, "sysops_fleet_filesystem_full_in_high_seconds", **a)
    assert not [k for k in found if k[0].endswith(("fill_rate_bytes_per_second", "full_in_seconds"))
                and dict(k[1])["mount"] == str(fs_b)], "b has no history: no fill rate, no time to full"
    assert value(found, "sysops_fleet_host_up", host="127.0.0.1", address="127.0.0.1") == 1
    assert value(found, "sysops_fleet_host_up", host="127.0.0.3", address="127.0.0.3") == 0, "silent in the lab"
    assert value(found, "sysops_fleet_host_rtt_seconds", host="127.0.0.1", address="127.0.0.1") \
        == state["hosts"]["127.0.0.1"]["rtt_ms"] / 1000
    assert 0 < state["hosts"]["127.0.0.1"]["rtt_ms"] < 300
    assert ("sysops_fleet_host_rtt_seconds", frozenset({("host", "127.0.0.3"), ("address", "127.0.0.3")})) not in found
    one, three = {"host": "127.0.0.1", "address": "127.0.0.1"}, {"host": "127.0.0.3", "address": "127.0.0.3"}
    assert value(found, "sysops_fleet_host_probes_sent_total", **one) == 3 == value(found, "sysops_fleet_host_probes_sent_total", **three)
    assert value(found, "sysops_fleet_host_probes_received_total", **one) == 3
    assert value(found, "sysops_fleet_host_probes_received_total", **three) == 0
    assert value(found, "sysops_fleet_host_loss_ratio", **one) == 0 and value(found, "sysops_fleet_host_loss_ratio", **three) == 1
    assert value(found, "sysops_fleet_host_probe_rtt_seconds_count", **one) == 3
    assert value(found, "sysops_fleet_host_probe_rtt_seconds_bucket", le="+Inf", **one) == 3
    buckets = [value(found, "sysops_fleet_host_probe_rtt_seconds_bucket", le=le, **one) for le in ("0.0001", "0.001", "1")]
    assert buckets == sorted(buckets) and buckets[-1] == 3, "cumulative, every loopback answer within a second"
    assert value(found, "sysops_fleet_host_probe_rtt_seconds_sum", **one) == state["hosts"]["127.0.0.1"]["probes"]["rtt_sum_s"]
    assert 0 < state["hosts"]["127.0.0.1"]["probes"]["rtt_sum_s"] < 0.9
    assert value(found, "sysops_fleet_host_status", status="down", **three) == 0, "one silent round is no alert"
    assert value(found, "sysops_fleet_watcher_last_round_timestamp_seconds") == state["last_check"]
    assert value(found, "sysops_fleet_mail_spooled_messages") == 1
    assert value(found, "sysops_fleet_watcher_check_success", check="disk") == 1
    assert value(found, "sysops_fleet_watcher_check_success", check="host") == 1


# ---- the alert rules of docs/watcher.md ---------------------------------------------------------------

RULE_TESTS = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'sysops_fleet_filesystem_full_in_seconds{instance="web1:9100",mount="/var"}'
        values: '7200x90'
      - series: 'sysops_fleet_filesystem_full_in_seconds{instance="web1:9100",mount="/home"}'
        values: '172800x90'
      - series: 'sysops_fleet_watcher_last_round_timestamp_seconds{instance="web1:9100"}'
        values: '0+60x20 1200x70'
    alert_rule_test:
      - eval_time: 20m
        alertname: FilesystemFullInLessThanADay
        exp_alerts: []
      - eval_time: 45m
        alertname: FilesystemFullInLessThanADay
        exp_alerts:
          - exp_labels: {severity: warning, instance: "web1:9100", mount: /var}
            exp_annotations:
              summary: /var on web1:9100 is full in 2h 0m 0s at its fill rate
      - eval_time: 25m
        alertname: FleetWatcherSilent
        exp_alerts: []
      - eval_time: 45m
        alertname: FleetWatcherSilent
        exp_alerts:
          - exp_labels: {severity: warning, instance: "web1:9100"}
            exp_annotations:
              summary: fleet-watcher on web1:9100 has not finished a round for 25m 0s
"""


def documented_rules():
    """The alert rules as docs/watcher.md shows them (the yaml block after its 'prometheus rules' marker)."""
    with open(WATCHER_DOCS, encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"<!-- prometheus rules -->\s*```yaml\n(.*?)```", text, re.S)
    assert match, "docs/watcher.md has no prometheus rules block"
    return match.group(1)


def test_the_documented_alert_rules_are_valid_and_fire_when_they_should(tmp_path):
    (tmp_path / "rules.yml").write_text(documented_rules())
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    checked = promtool("check", "rules", str(tmp_path / "rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
