# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report merge: tables of sweep and disk results in, one report out."""

import datetime
import json

import html_check
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _files, _fleet, _fleet_inputs, _fleet_render

NOW = datetime.datetime(2026, 11, 27, 6, 0, tzinfo=datetime.timezone.utc)


def sweep(alive, dead, names=None):
    hosts = {a: {"alive": True} for a in alive}
    hosts.update({a: {"alive": False} for a in dead})
    for address, name in (names or {}).items():
        hosts[address]["name"] = name
    return {"alive": alive, "dead": dead, "hosts": hosts}


def fs(mount, use_pct, status="ok", days=None, avail=1 << 30):
    entry = {"mount": mount, "device": "/dev/x", "fstype": "ext4", "size_bytes": 10 << 30,
             "used_bytes": 1, "avail_bytes": avail, "use_pct": use_pct, "inode_pct": 1.0, "status": status}
    if days is not None:
        entry["forecast"] = {"days_to_full": days, "rate_per_day": float(1 << 20)}
    return entry


def test_an_address_alive_for_any_sweeper_is_alive_and_order_is_numeric():
    merged = _fleet.merge_sweeps(_fleet_inputs.check_sweeps({
        "sweeper-b": sweep(["10.0.0.10"], ["10.0.0.9", "10.0.0.2"]),
        "sweeper-a": sweep(["10.0.0.9", "fd00::1"], ["10.0.0.100"], names={"10.0.0.9": "db"}),
    }))
    assert merged["alive"] == ["10.0.0.9", "10.0.0.10", "fd00::1"]
    assert merged["down"] == ["10.0.0.2", "10.0.0.100"]
    assert merged["names"] == {"10.0.0.9": "db"}
    assert merged["swept_by"]["10.0.0.2"] == "sweeper-b"


def test_the_compact_sweep_result_gives_its_names_too():
    compact = {"alive": ["10.0.0.9"], "dead": ["10.0.0.7"], "names": {"10.0.0.9": "db"}, "errors": {}}
    merged = _fleet.merge_sweeps(_fleet_inputs.check_sweeps({"s": compact}))
    assert merged["names"] == {"10.0.0.9": "db"} and merged["down"] == ["10.0.0.7"]
    with pytest.raises(_fleet.FleetError, match=r"sweeps\['s'\]\.names\['10.0.0.9'\]: expected a string"):
        _fleet_inputs.check_sweeps({"s": dict(compact, names={"10.0.0.9": 7})})


def test_a_large_sweep_given_as_ranges_merges_like_its_lists():
    listed = {"alive": ["10.0.0.1", "10.0.0.2", "10.0.1.7"], "dead": ["10.0.0.3", "10.0.1.8"], "names": {}}
    ranged = {"alive_ranges": ["10.0.0.1-2", "10.0.1.7"], "dead_ranges": ["10.0.0.3", "10.0.1.8"], "names": {}}
    other = {"alive": ["10.0.1.8"], "dead": [], "names": {}}
    want = _fleet.merge_sweeps(_fleet_inputs.check_sweeps({"a": listed, "b": other}))
    got = _fleet.merge_sweeps(_fleet_inputs.check_sweeps({"a": ranged, "b": other}))
    assert got == want
    assert got["alive"] == ["10.0.0.1", "10.0.0.2", "10.0.1.7", "10.0.1.8"] and got["down"] == ["10.0.0.3"]


def test_first_run_is_the_baseline_then_new_and_vanished_are_reported():
    disks = {"web1": {"filesystems": [fs("/", 50.0)]}}
    first = _fleet.build({"s": sweep(["10.0.0.1", "10.0.0.2"], [])}, disks, ["web1"], now=NOW)
    assert first["report"]["first_run"] and first["report"]["new"] == [] and first["report"]["vanished"] == []
    previous = json.loads(json.dumps(first["state"]))
    second = _fleet.build({"s": sweep(["10.0.0.2", "10.0.0.3"], ["10.0.0.1"])}, disks, ["web1"],
                          previous=previous, now=NOW)
    assert second["report"]["new"] == ["10.0.0.3"]
    assert second["report"]["vanished"] == ["10.0.0.1"]
    assert second["report"]["down"] == ["10.0.0.1"]
    same = _fleet.build({"s": sweep(["10.0.0.2", "10.0.0.3"], ["10.0.0.1"])}, disks, ["web1"],
                        previous=second["state"], now=NOW)
    assert same["report"]["new"] == [] and same["report"]["vanished"] == []


def test_fullest_and_fastest_filling_across_the_fleet():
    disks = {
        "a": {"filesystems": [fs("/", 91.0, "crit", days=3.5), fs("/var", 10.0)]},
        "b": {"filesystems": [fs("/", 85.0, "warn"), fs("/data", 60.0, days=1.25)]},
    }
    report = _fleet.build({}, disks, ["a", "b", "c"], unreachable=["c"], top=3, now=NOW)["report"]
    assert [(f["host"], f["mount"]) for f in report["fullest"]] == [("a", "/"), ("b", "/"), ("b", "/data")]
    assert [(f["host"], f["mount"], f["days_to_full"]) for f in report["forecasts"]] == [
        ("b", "/data", 1.25), ("a", "/", 3.5)]
    assert [(a["host"], a["status"]) for a in report["alerts"]] == [("a", "crit"), ("b", "warn")]
    assert [(h["host"], h["reachable"], h["disk_status"]) for h in report["hosts"]] == [
        ("a", True, "crit"), ("b", True, "warn"), ("c", False, None)]
    assert report["summary"]["unreachable"] == 1 and report["summary"]["alerts"] == 2


def test_text_and_html_say_the_same_things():
    disks = {"a": {"filesystems": [fs("/", 91.0, "crit", days=3.5)]}}
    built = _fleet.build({"s": sweep(["10.0.0.1"], ["10.0.0.7"], names={"10.0.0.7": "<db>"})}, disks,
                         ["a", "b"], unreachable=["b"], now=NOW, previous={"alive": ["10.0.0.7"]})
    text = _fleet_render.text(built["report"])
    page = _fleet_render.html(built["report"])
    assert "10.0.0.7 (<db>)" in text and "UNREACHABLE" in text and "+1.0M/day, full in 3.5 days" in text
    assert "Vanished addresses:\n  10.0.0.7" in text and "New addresses:\n  10.0.0.1" in text
    root = html_check.parse(page)[0]
    assert [[td.text for td in r.kids("td")] for r in html_check.rows(html_check.table_after(root, "Vanished"))] == [
        ["10.0.0.7", "<db>"]]
    assert "&lt;db&gt;" in page and "<db>" not in page
    assert "width:91%" in page and "#c62828" in page and "+1.0M/day, full in 3.5 days" in root.text


def test_a_host_that_failed_a_task_is_failed_not_unreachable():
    disks = {"a": {"filesystems": [fs("/", 50.0)]}}
    report = _fleet.build({}, disks, ["a", "b", "c", "d"], unreachable=["c", "d"], failed=["b", "d"], now=NOW)["report"]
    rows = {h["host"]: h for h in report["hosts"]}
    assert [(h, rows[h]["reachable"], rows[h]["failed"]) for h in "abcd"] == [
        ("a", True, False), ("b", True, True), ("c", False, False), ("d", False, False)]
    assert report["failed"] == ["b"] and report["unreachable"] == ["c", "d"], "unreachable wins over failed"
    assert report["summary"]["failed"] == 1 and report["summary"]["unreachable"] == 2
    text = _fleet_render.text(report)
    assert "4 hosts (2 unreachable, 1 failed, 0 crit, 0 warn, 0 without a disk report, 1 ok)" in text
    hosts = text.split("Hosts, worst first:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[:2] for line in hosts] == [["c", "UNREACHABLE"], ["d", "UNREACHABLE"], ["b", "FAILED"],
                                                    ["a", "reachable"]], "worst first, as in the HTML"
    page = _fleet_render.html(report)
    hosts = html_check.rows(html_check.table_after(html_check.parse(page)[0], "Hosts"))
    assert [[td.text for td in r.kids("td")] for r in hosts] == [
        ["UNREACHABLE", "c", "UNREACHABLE", "not reported"], ["UNREACHABLE", "d", "UNREACHABLE", "not reported"],
        ["FAILED", "b", "FAILED", "not reported"], ["OK", "a", "reachable", "ok"]]
    assert "4 hosts (2 unreachable, 1 failed, 0 crit, 0 warn, 0 without a disk report, 1 ok)" in page


def test_failed_and_unreachable_hosts_are_listed_with_why():
    disks = {"a": {"filesystems": [fs("/", 50.0)]}}
    reasons = {"b": "Gather facts: Missing sudo password", "c": "Report this host's disks: warn (95%) must not be "
               "above crit (90%)", "d": "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.2 "
               "port 1: Connection refused"}
    report = _fleet.build({}, disks, ["a", "b", "c", "d", "e"], unreachable=["d", "e"], failed=["b"],
                          failure_reasons=reasons, now=NOW)["report"]
    rows = {h["host"]: h for h in report["hosts"]}
    assert report["failed"] == ["b", "c"], "a host with a reason is failed even when not in failed"
    assert report["unreachable"] == ["d", "e"], "a host with a reason that is unreachable stays unreachable"
    assert [(h, rows[h]["failed"], rows[h]["reason"]) for h in "abcde"] == [
        ("a", False, None), ("b", True, reasons["b"]), ("c", True, reasons["c"]), ("d", False, reasons["d"]),
        ("e", False, None)]
    hosts = _fleet_render.text(report).split("Hosts, worst first:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert hosts == ["  d                        UNREACHABLE  disks not reported",
                     "      reason: " + reasons["d"],
                     "  e                        UNREACHABLE  disks not reported",
                     "  b                        FAILED       disks not reported",
                     "      reason: Gather facts: Missing sudo password",
                     "  c                        FAILED       disks not reported",
                     "      reason: Report this host's disks: warn (95%) must not be above crit (90%)",
                     "  a                        reachable    disks ok"]
    page = _fleet_render.html(report)
    table = html_check.rows(html_check.table_after(html_check.parse(page)[0], "Hosts"))
    cells = [(r.kids("td")[1].text, r.kids("td")[2].text) for r in table]
    assert cells == [("d", "UNREACHABLE" + reasons["d"]), ("e", "UNREACHABLE"), ("b", "FAILED" + reasons["b"]),
                     ("c", "FAILED" + reasons["c"]), ("a", "reachable")]


def test_a_reason_is_one_line_of_text_and_escaped_in_html():
    hostile = "sudo: <b>no</b>\r\n\x1b[31mTraceback (most recent call last):\n\tFile \"x\"\x00 " + "x" * 400
    report = _fleet.build({}, {}, ["h"], failure_reasons={"h": hostile}, now=NOW)["report"]
    reason = report["hosts"][0]["reason"]
    assert reason.startswith('sudo: <b>no</b> \\x1b[31mTraceback (most recent call last): File "x"\\x00 xxx')
    assert len(reason) == _fleet_inputs.REASON_MAX and reason.endswith("x\u2026") and reason.isprintable()
    assert _fleet_render.text(report).count("\n      reason: sudo: <b>no</b> \\x1b[31m") == 1
    page = _fleet_render.html(report)
    assert "&lt;b&gt;no&lt;/b&gt;" in page and "<b>no</b>" not in page and "\x1b" not in page


def good_fs(**changes):
    entry = fs("/", 50.0)
    entry.update(changes)
    return entry


# Hostile inputs: each is refused naming the sweeper or host and the field, never a traceback.
HOSTILE = [
    ({"s": {"nope": 1}}, {}, "sweeps['s'] is not a ping_sweep result (no 'alive' or 'alive_ranges' list)"),
    ({"s1": {"alive_ranges": "127.0.0.1"}}, {}, "sweeps['s1'].alive_ranges: expected a list of ranges, got a string"),
    ({"s1": {"alive_ranges": ["web1"]}}, {}, "sweeps['s1'].alive_ranges: 'web1' is a host name; only addresses"),
    ({"s1": {"alive_ranges": ["10.0.0.0/8"]}}, {},
     "sweeps['s1'].alive_ranges: '10.0.0.0/8' brings the total to 16777214 addresses, more than max_hosts=1048576"),
    ({"s1": {"alive_ranges": [], "dead_ranges": ["127.0.0.1-3,999"]}}, {},
     "sweeps['s1'].dead_ranges: '127.0.0.1-3,999': the last octet 999 is larger than 255 (ping_sweep writes"),
    ({"s1": {"alive_ranges": ["127.0.0.1;reboot"]}}, {}, "sweeps['s1'].alive_ranges: '127.0.0.1;reboot' contains ';'"),
    ("s1", {}, "sweeps: expected a dict of sweeper -> ping_sweep result, got a string ('s1')"),
    ({"s1": {"alive": "127.0.0.1"}}, {}, "sweeps['s1'].alive: expected a list of addresses, got a string ('127.0.0.1')"),
    ({"s1": {"alive": ["127.0.0.1"], "dead": "10.0.0.1"}}, {}, "sweeps['s1'].dead: expected a list of addresses"),
    ({"s1": {"alive": ["web1"]}}, {}, "sweeps['s1'].alive[0]: 'web1' is not an IP address"),
    ({"s1": {"alive": [7]}}, {}, "sweeps['s1'].alive[0]: expected an address, got int 7"),
    ({"s1": {"alive": [], "hosts": ["127.0.0.1"]}}, {}, "sweeps['s1'].hosts: expected a dict of address -> entry"),
    ({"s1": {"alive": [], "hosts": {"127.0.0.1": {"name": ["x"]}}}}, {},
     "sweeps['s1'].hosts['127.0.0.1'].name: expected a string"),
    ({}, ["web1"], "disk_reports: expected a dict of host -> disk_report result, got list"),
    ({}, {"h": {"filesystems": "x"}}, "disk_reports['h'] is not a disk_report result (no 'filesystems' list)"),
    ({}, {"web1": {"filesystems": ["/"]}}, "disk_reports['web1'].filesystems[0]: expected a filesystem"),
    ({}, {"web1": {"filesystems": [good_fs(mount=None)]}}, "disk_reports['web1'].filesystems[0].mount: expected a mount point"),
    ({}, {"web1": {"filesystems": [good_fs(status="purple")]}},
     "disk_reports['web1'].filesystems[0].status: expected one of ok, warn, crit (or null), got a string ('purple')"),
    ({}, {"web1": {"filesystems": [good_fs(use_pct="lots")]}},
     "disk_reports['web1'].filesystems[0].use_pct: expected a number from 0 to 100 or null, got a string ('lots')"),
    ({}, {"web1": {"filesystems": [good_fs(use_pct=float("nan"))]}}, "filesystems[0].use_pct: expected a number from 0"),
    ({}, {"web1": {"filesystems": [good_fs(use_pct=130)]}}, "filesystems[0].use_pct: expected a number from 0 to 100"),
    ({}, {"web1": {"filesystems": [good_fs(use_pct=True)]}}, "filesystems[0].use_pct: expected a number"),
    ({}, {"web1": {"filesystems": [good_fs(avail_bytes="10G")]}},
     "disk_reports['web1'].filesystems[0].avail_bytes: expected a whole number of at least 0 or null, got a string ('10G')"),
    ({}, {"web1": {"filesystems": [good_fs(size_bytes=-1)]}}, "filesystems[0].size_bytes: expected a whole number"),
    ({}, {"web1": {"filesystems": [good_fs(used_bytes=1.5)]}}, "filesystems[0].used_bytes: expected a whole number"),
    ({}, {"web1": {"filesystems": [good_fs(device=["sda"])]}}, "filesystems[0].device: expected a string or null"),
    ({}, {"web1": {"filesystems": [good_fs(forecast="soon")]}}, "filesystems[0].forecast: expected a dict"),
    ({}, {"web1": {"filesystems": [good_fs(forecast={"days_to_full": "never"})]}},
     "disk_reports['web1'].filesystems[0].forecast.days_to_full: expected a number"),
    ({}, {"web1": {"filesystems": [good_fs(forecast={"rate_per_day": float("inf")})]}},
     "filesystems[0].forecast.rate_per_day: expected a number"),
    ({}, {"web1": {"filesystems": [good_fs(size_bytes=10 ** 400)]}},
     "disk_reports['web1'].filesystems[0].size_bytes: expected a whole number of at least 0 or null, got an integer "
     "of 401 digits (too large for a float)"),
    ({}, {"web1": {"filesystems": [good_fs(inode_pct=-10 ** 5000)]}},
     "filesystems[0].inode_pct: expected a number from 0 to 100 or null, got an integer of 5001 digits (too large"),
    ({}, {"web1": {"filesystems": [good_fs(used_bytes="9" * 400)]}},
     "filesystems[0].used_bytes: expected a whole number of at least 0 or null, got a string ('99999"),
    ({}, {"web1": {"filesystems": [good_fs(forecast={"days_to_full": 10 ** 309})]}},
     "filesystems[0].forecast.days_to_full: expected a number of at least 0 or null, got an integer of 310 digits"),
    ({}, {"web1": {"filesystems": [good_fs(reasons="use 95%")]}},
     "filesystems[0].reasons: expected a list of strings (disk_report's reasons) or null, got a string ('use 95%')"),
    ({}, {"web1": {"filesystems": [good_fs(reasons=["ok", 3])]}}, "filesystems[0].reasons[1]: expected a string, got int 3"),
    ({}, {"web1": {"filesystems": [good_fs(error=["x"])]}}, "filesystems[0].error: expected a string or null, got list"),
    ({}, '{"web1": {"filesystems": [}', "disk_reports: JSON text that does not parse (Expecting value at line 1 "
                                        "column 27); pass the results as a dict, or as JSON text made with | to_json"),
    ({}, '["web1"]', "disk_reports: expected a dict of host -> disk_report result, got a string ('[\"web1\"]')"),
    ('{"s1": {"alive": "127.0.0.1"}}', {}, "sweeps['s1'].alive: expected a list of addresses, got a string"),
]


@pytest.mark.parametrize("sweeps,disks,message", HOSTILE, ids=[m[:60] for _s, _d, m in HOSTILE])
def test_hostile_inputs_are_refused_naming_the_host_and_field(sweeps, disks, message):
    with pytest.raises(_fleet.FleetError) as refused:
        _fleet.build(sweeps, disks, [])
    assert message in str(refused.value)


@pytest.mark.parametrize("kwargs,message", [
    ({"hosts": "web1,web2"}, "hosts: expected a list of host names, got a string ('web1,web2')"),
    ({"unreachable": [None]}, "unreachable[0]: expected a host name, got NoneType None"),
    ({"failed": "web3"}, "failed: expected a list of host names"),
    ({"failure_reasons": ["web3"]}, "failure_reasons: expected a dict of host -> reason, got list"),
    ({"failure_reasons": {"web3": 2}}, "failure_reasons['web3']: expected a string (why the host failed), got int 2"),
    ({"failure_reasons": {"web3": None}}, "failure_reasons['web3']: expected a string"),
    ({"failure_reasons": {"": "x"}}, "failure_reasons: expected host names as keys, got a string ('')"),
    ({"top": 0}, "top must be a whole number of at least 1, got 0"),
    ({"top": True}, "top must be a whole number of at least 1, got True"),
])
def test_hostile_host_lists_are_refused_by_name(kwargs, message):
    args = {"hosts": [], "unreachable": (), "failed": (), "top": 10, "failure_reasons": None}
    args.update(kwargs)
    with pytest.raises(_fleet.FleetError) as refused:
        _fleet.build({}, {}, args["hosts"], unreachable=args["unreachable"], top=args["top"], failed=args["failed"],
                     failure_reasons=args["failure_reasons"])
    assert message in str(refused.value)


def test_numbers_given_as_text_by_templating_are_read_as_numbers():
    disks = {"web1": {"filesystems": [good_fs(use_pct="91", avail_bytes="1024", status="crit",
                                              forecast={"days_to_full": "2.5", "rate_per_day": "1048576"})]}}
    report = _fleet.build({}, disks, ["web1"], now=NOW)["report"]
    assert report["fullest"][0]["use_pct"] == 91.0 and report["fullest"][0]["avail_bytes"] == 1024
    assert report["forecasts"][0]["days_to_full"] == 2.5


def test_state_file_round_trip_and_corruption(tmp_path):
    path = tmp_path / "state.json"
    assert _fleet.load_state(str(path)) is None
    assert _files.write_if_changed(str(path), json.dumps({"alive": ["10.0.0.1"]}))
    assert not _files.write_if_changed(str(path), json.dumps({"alive": ["10.0.0.1"]}))
    assert _fleet.load_state(str(path)) == {"alive": ["10.0.0.1"]}
    path.write_text("{broken")
    with pytest.raises(_fleet.FleetError, match="cannot be read"):
        _fleet.load_state(str(path))
    path.write_text("[]")
    with pytest.raises(_fleet.FleetError, match="no 'alive' list"):
        _fleet.load_state(str(path))


def test_a_large_down_list_is_reported_as_ranges_and_named_ones_stay_listed(tmp_path):
    down = [f"10.9.{i // 200}.{i % 200 + 1}" for i in range(2000)]
    sweep = {"alive": ["10.9.20.1"], "dead": down, "names": {"10.9.0.5": "printer"}}
    result = _fleet.run({"sweeps": {"s": sweep}, "disk_reports": {}, "hosts": ["s"], "report_dir": str(tmp_path),
                         "send": "never", "top": 10})
    report, text = result["report"], result["text"]
    assert report["summary"]["addresses_down"] == 2000
    assert "down" not in report, "above LIST_LIMIT the list stays out of the result"
    assert report["down_ranges"] == [f"10.9.{n}.1-200" for n in range(10)]
    assert "  10.9.0.5 (printer)\n  10.9.0.1-4,6-200\n  10.9.1.1-200\n" in text
    html = (tmp_path / "fleet-report.html").read_text(encoding="utf-8")
    assert "10.9.0.1-4,6-200" in html and "printer" in html and ">10.9.0.7<" not in html
    small = _fleet.run({"sweeps": {"s": {"alive": [], "dead": down[:3]}}, "disk_reports": {}, "hosts": ["s"],
                        "report_dir": str(tmp_path / "small"), "send": "never", "top": 10})
    assert small["report"]["down"] == down[:3] and small["report"]["down_ranges"] == ["10.9.0.1-3"]
    assert "  10.9.0.1\n  10.9.0.2\n  10.9.0.3\n" in small["text"]


def test_json_text_gives_the_same_report_as_the_dicts_it_holds():
    """What site.yml passes (``| to_json``: Ansible copies a dict argument twice, a string not at all)."""
    disks = {"a": {"filesystems": [fs("/", 91.0, "crit", days=3.5)]}, "b": {"filesystems": [fs("/", 5.0)]}}
    sweeps = {"s": sweep(["10.0.0.1"], ["10.0.0.7"], names={"10.0.0.7": "db"})}
    as_dicts = _fleet.build(sweeps, disks, ["a", "b"], now=NOW)
    as_text = _fleet.build(json.dumps(sweeps), json.dumps(disks), ["a", "b"], now=NOW)
    assert as_text == as_dicts


# ---- properties: whatever a host holds, the text report keeps its lines ---------------------------

OUTSIDE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(str.strip)


@settings(max_examples=200, deadline=None)
@given(host=OUTSIDE, mount=OUTSIDE, name=OUTSIDE, reason=OUTSIDE, why=OUTSIDE)
def test_any_name_or_reason_stays_on_its_own_line_of_printable_text(host, mount, name, reason, why):
    """Host names, mount points, address names and reasons from outside: never a line more, never a control char."""
    def report(h, m, n, r, w):
        disks = {h: {"filesystems": [dict(fs(m, 95.0, "crit"), reasons=[w]), fs("/", 5.0)]}}
        sweeps = {"s": sweep(["10.0.0.1"], ["10.0.0.7"], names={"10.0.0.7": n})}
        built = _fleet.build(sweeps, disks, [h, "down"], unreachable=["down"], failure_reasons={"down": r},
                             previous={"alive": ["10.0.0.7"]}, now=NOW)
        return _fleet_render.text(built["report"])

    plain = report("h", "/m", "n", "r", "w")
    text = report(host, mount, name, reason, why)
    assert all(line.isprintable() for line in text.split("\n"))
    assert len(text.split("\n")) == len(plain.split("\n"))


NUMBERS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 300, max_value=10 ** 5000),
                    st.floats(), st.text(max_size=50), st.from_regex(r"\A-?[0-9]{1,400}(\.[0-9]{1,5})?\Z"),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["size_bytes", "used_bytes", "avail_bytes", "use_pct", "inode_pct", "status", "mount",
                              "device", "reasons", "error", "forecast"]),
       value=NUMBERS, days=NUMBERS, rate=NUMBERS)
def test_any_value_of_any_field_is_read_or_refused_by_name_never_a_crash(field, value, days, rate):
    """Whatever a play passes, the answer is a report or a FleetError naming host and field: no OverflowError."""
    row = good_fs(forecast={"days_to_full": days, "rate_per_day": rate})
    row[field] = value
    try:
        built = _fleet.build({}, {"web1": {"filesystems": [row]}}, ["web1"], now=NOW)
    except _fleet.FleetError as exc:
        assert str(exc).startswith("disk_reports['web1'].filesystems[0]."), exc
        assert len(str(exc)) < 400 and str(exc).isprintable()
        return
    _fleet_render.text(built["report"])
    _fleet_render.html(built["report"])
