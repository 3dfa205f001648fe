# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_report in mesh mode: ``addresses`` checked, ``mesh`` and ``findings`` returned, the reports led by them.

The module runs as Ansible runs it (a process reading its arguments as
JSON), mailing to a real SMTP server on 127.0.0.1 where a test says so.
"""

import email
import email.policy

import ansible_runner
import html_check
import module_runner
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _fleet_inputs
from ansible_collections.sysops.fleet.plugins.modules import fleet_report

HOSTS = ["web1", "web2", "web3", "db1", "db2", "app1"]
ADDRESSES = {h: f"192.0.2.{i}" for i, h in enumerate(HOSTS, 1)}


def mesh_sweeps(silent=(), not_sweeping=(), loss=None):
    """Each host's ping_sweep of the others' addresses; *silent* (from, to) pairs got no answer."""
    sweeps = {}
    for a in HOSTS:
        if a in not_sweeping:
            continue
        alive = [ADDRESSES[b] for b in HOSTS if b != a and (a, b) not in silent]
        dead = [ADDRESSES[b] for b in HOSTS if b != a and (a, b) in silent]
        sweeps[a] = {"alive": alive, "dead": dead, "names": {}}
        if loss:
            sweeps[a]["stats"] = {ADDRESSES[b]: {"sent": 10, "received": 10 - int(loss.get((a, b), 0) / 10),
                                                 "loss_pct": float(loss.get((a, b), 0))} for b in HOSTS if b != a}
    return sweeps


def cut_between(side):
    return {(a, b) for a in HOSTS for b in HOSTS if (a in side) != (b in side)}


def test_a_cut_and_a_down_host_are_named_first_in_the_text_and_returned(tmp_path):
    silent = cut_between({"db1", "db2"}) | {(a, "app1") for a in HOSTS}
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, report_dir=str(tmp_path / "r"), send="never",
                                               hosts=HOSTS, unreachable=["app1"], addresses=ADDRESSES,
                                               sweeps=mesh_sweeps(silent, not_sweeping={"app1"}))
    assert rc == 0, out
    assert [(f["kind"], f["hosts"]) for f in out["findings"]] == [
        ("down", ["app1"]), ("cut", ["db1", "db2", "web1", "web2", "web3"])]
    assert out["findings"][1]["sides"] == [["web1", "web2", "web3"], ["db1", "db2"]]
    assert out["mesh"]["hosts"] == ["web1", "web2", "web3", "db1", "db2", "app1"]
    assert out["mesh"]["rows"][0] == "-ooxxx" and out["mesh"]["rows"][5] == "?????-"
    assert out["report"]["status"] == "crit" and out["report"]["summary"]["findings"] == 2  # app1 unreachable
    assert "mesh" not in out["report"] and "findings" not in out["report"], "returned once, at the top"
    lines = out["text"].splitlines()
    assert lines[3] == "Mesh findings (2), 6 hosts, 5 probing, 25 pairs measured:"
    assert lines[4].startswith("  DOWN     app1: silent to all 5 hosts that probed it")
    assert lines[5] == ("  CUT      split in 2: web1, web2, web3 | db1, db2: no host reaches one on another side, "
                        "either way")
    assert lines.index("Filesystems not ok (0), worst first:") > lines.index(lines[5])
    matrix = out["text"].split("between the sides of a cut):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert matrix == ["  web1 -oo|xx|x", "  web2 o-o|xx|x", "  web3 oo-|xx|x", "       --------",
                      "  db1  xxx|-o|x", "  db2  xxx|o-|x", "       --------", "  app1 ???|??|-"]


def test_a_lossy_host_in_count_mode_is_named_with_its_loss(tmp_path):
    loss = {(a, "web2"): 40 for a in HOSTS}
    result = _fleet.run({"report_dir": str(tmp_path), "send": "never", "hosts": HOSTS, "addresses": ADDRESSES,
                         "sweeps": mesh_sweeps(loss=loss)})
    assert [(f["kind"], f["at"], f["loss_pct"]) for f in result["findings"]] == [("lossy", "web2", 40.0)]
    assert "  LOSSY    at web2: 5 pairs lose 40% of their probes (median): app1 -> web2 40%" in result["text"]
    assert result["mesh"]["loss"]["web1"] == {"web2": 40.0}


def test_without_addresses_nothing_changes(tmp_path):
    result = _fleet.run({"report_dir": str(tmp_path), "send": "never", "hosts": HOSTS,
                         "sweeps": mesh_sweeps({("web1", "web2")})})
    assert result["mesh"] is None and result["findings"] == []
    assert "Mesh" not in result["text"] and "Mesh" not in (tmp_path / "fleet-report.html").read_text()


def test_a_healthy_mesh_says_so_and_mails_nothing_on_alert(tmp_path, smtpd):
    server = smtpd()
    result = _fleet.run({"report_dir": str(tmp_path), "hosts": HOSTS, "addresses": ADDRESSES,
                         "sweeps": mesh_sweeps(), "mail_to": ["ops@example.com"], "mail_from": "fleet@example.com",
                         "send": "on_alert", "smtp_host": "127.0.0.1", "smtp_port": server.port})
    assert result["findings"] == [] and not server.messages
    assert "Mesh findings (0), 6 hosts, 6 probing, 30 pairs measured:\n  none: 30 of 30 pairs answered" in result["text"]


def test_a_finding_is_an_alert_mailed_with_its_count_in_the_subject(tmp_path, smtpd):
    server = smtpd()
    result = _fleet.run({"report_dir": str(tmp_path), "hosts": HOSTS, "addresses": ADDRESSES,
                         "sweeps": mesh_sweeps({(a, "web3") for a in HOSTS}), "mail_to": ["ops@example.com"],
                         "mail_from": "fleet@example.com", "send": "on_alert", "smtp_host": "127.0.0.1",
                         "smtp_port": server.port})
    assert [f["kind"] for f in result["findings"]] == ["one_way"]
    message = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert message["Subject"] == "[WARN] Fleet report: 1 mesh finding", "web3 swept: up, for the mesh and the lists"
    page = html_check.parse(message.get_body(("html",)).get_content())[0]
    headings = [" ".join(h.text.split()) for h in page.find_all("h2")]
    assert headings[0].startswith("Mesh findings (1)") and headings[1] == "Mesh: who reaches whom"
    row = html_check.rows(html_check.table_after(page, "Mesh findings"))[0]
    assert [td.text for td in row.kids("td")] == [
        "ONE-WAY", "at web3: app1, db1, db2, web1, web2 cannot reach web3, which reaches them"]


def test_a_prober_that_swept_is_no_address_down_the_lists_agree_with_the_mesh(tmp_path):
    """Before: B's 127.0.0.12 was under "Addresses down" (A found it silent, nobody else probed it) while the
    mesh said B swept. A host that produced a sweep is up; H3, silent to both, without a sweep and unreachable for
    Ansible, stays down."""
    addresses = {"A": "127.0.0.11", "B": "127.0.0.12", "H1": "127.0.0.21", "H2": "127.0.0.22", "H3": "127.0.0.23"}
    sweeps = {"A": {"alive": ["127.0.0.21"], "dead": ["127.0.0.12", "127.0.0.22", "127.0.0.23"]},
              "B": {"alive": ["127.0.0.11", "127.0.0.21", "127.0.0.22"], "dead": ["127.0.0.23"]}}
    options = {"report_dir": str(tmp_path / "reports"), "send": "never", "hosts": sorted(addresses),
               "unreachable": ["H3"], "addresses": addresses, "sweeps": sweeps}
    rc, out = ansible_runner.adhoc("sysops.fleet.fleet_report", options, tmp_path)
    assert rc == 0, out
    assert [(f["kind"], f["hosts"], f.get("at")) for f in out["findings"]] == [
        ("down", ["H3"], None), ("one_way", ["A", "B"], None)]
    report = out["report"]
    assert report["down"] == ["127.0.0.23"] and report["down_ranges"] == ["127.0.0.23"]
    assert report["summary"]["addresses_down"] == 1 and report["summary"]["addresses_alive"] == 4
    assert section(out["text"], "Addresses down") == ["  127.0.0.23"]
    page = html_check.parse((tmp_path / "reports" / "fleet-report.html").read_text())[0]
    assert [td.text for row in html_check.rows(html_check.table_after(page, "Addresses down (1)"))
            for td in row.kids("td")][:1] == ["127.0.0.23"]
    state = (tmp_path / "reports" / "fleet-state.json").read_text()
    assert '"127.0.0.12"' in state and '"127.0.0.23"' not in state, "B stays alive for the next run"


def section(text, title):
    return text.split(f"\n{title}", 1)[1].split("\n\n", 1)[0].splitlines()[1:]


# ---- hostile addresses: a clear message naming the host, nothing written, nothing mailed ----------

HOSTILE = [
    ({"addresses": "web1"}, "addresses: expected a dict of host -> the address the other hosts probe, "
                            "got a string ('web1')"),
    ({"addresses": '{"web1": '}, "addresses: JSON text that does not parse"),
    ({"addresses": {"web1": 7}}, "addresses['web1']: expected an IP address (the one the other hosts probe), got int 7"),
    ({"addresses": {"web1": ["192.0.2.1"]}}, "addresses['web1']: expected an IP address (the one the other hosts "
                                             "probe), got list"),
    ({"addresses": {"web1": "web1.example.com"}}, "addresses['web1']: 'web1.example.com' is not an IP address; give "
                                                  "the address the other hosts probe (fleet_mesh_address"),
    ({"addresses": {"web1": "192.0.2.300"}}, "addresses['web1']: '192.0.2.300' is not an IP address"),
    ({"addresses": {"web1": "192.0.2.1", "web2": "192.0.2.1"}},
     "addresses: 'web1' and 'web2' both have 192.0.2.1; each host needs an address of its own"),
    ({"addresses": {"web1": "2001:db8::1", "web2": "2001:DB8:0::1"}}, "'web1' and 'web2' both have 2001:db8::1"),
    ({"addresses": {" ": "192.0.2.1"}}, "addresses: expected host names as keys, got a string (' ')"),
    ({"addresses": {"web1\n\x1b[2J": "nope\n"}}, "addresses['web1\\n\\x1b[2J']: 'nope\\n' is not an IP address"),
    ({"addresses": {f"h{i}": f"10.0.{i // 256}.{i % 256}" for i in range(2001)}},
     "addresses: 2001 hosts, more than the 2000 one mesh holds; mesh a group of them (fleet_mesh_group"),
    ({"sweeps": {"s1": {"alive": [], "dead": [], "stats": "lots"}}},
     "sweeps['s1'].stats: expected a dict of address -> count-mode numbers, got a string ('lots')"),
    ({"sweeps": {"s1": {"alive": [], "dead": [], "stats": {"192.0.2.1": {"loss_pct": 150}}}}},
     "sweeps['s1'].stats['192.0.2.1'].loss_pct: expected a number from 0 to 100 or null, got int 150"),
    ({"sweeps": {"s1": {"alive": [], "dead": [], "stats": {"192.0.2.1": {"loss_pct": "much"}}}}},
     "sweeps['s1'].stats['192.0.2.1'].loss_pct: expected a number"),
    ({"sweeps": {"s1": {"alive": [], "dead": [], "stats": {"192.0.2.1": 5}}}},
     "sweeps['s1'].stats['192.0.2.1']: expected a dict (sent, received, loss_pct), got int 5"),
]


@pytest.mark.parametrize("args,message", HOSTILE, ids=[m[:50] for _a, m in HOSTILE])
def test_hostile_mesh_input_fails_clearly_and_writes_and_sends_nothing(tmp_path, smtpd, args, message):
    server = smtpd()
    options = {"report_dir": str(tmp_path / "reports"), "mail_to": ["ops@example.com"],
               "mail_from": "fleet@example.com", "send": "always", "smtp_host": "127.0.0.1",
               "smtp_port": server.port, "smtp_timeout": 5, "spool_dir": str(tmp_path / "spool")}
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, **dict(options, **args))
    assert rc == 1 and out["failed"] and message in out["msg"], out
    assert "\n" not in out["msg"] and "\x1b" not in out["msg"], "one printable line"
    assert not (tmp_path / "reports").exists(), "nothing written, no state saved"
    assert server.handler.connections == 0, "nothing mailed"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=40), st.integers(), st.none()),
                                 max_size=6),
                 st.dictionaries(st.text(min_size=1, max_size=12), st.ip_addresses().map(str), max_size=6),
                 st.text(max_size=30)))
def test_any_addresses_value_is_either_checked_clean_or_refused_with_a_fleet_error(value):
    try:
        found = _fleet_inputs.mesh_addresses(value)
    except _fleet_inputs.FleetError as exc:
        assert str(exc).startswith("addresses") and str(exc).isprintable()
        return
    if isinstance(value, dict):
        assert set(found) == set(value)
    assert len(set(found.values())) == len(found), "each host an address of its own"


def test_a_host_ansible_reached_is_never_down_however_silent_to_pings(tmp_path):
    """An outside tester: a host outside the mesh group (it does not sweep) whose firewall drops pings read
    "DOWN ... silent to all hosts that probed it" and sat under "Addresses down", while the host table a few lines
    below said Ansible reached it. Up, its pings dropped: NO PING (warn), and its address is no address down."""
    addresses = {"A": "127.0.0.11", "B": "127.0.0.12", "H3": "127.0.0.23"}
    sweeps = {"A": {"alive": ["127.0.0.12"], "dead": ["127.0.0.23"]},
              "B": {"alive": ["127.0.0.11"], "dead": ["127.0.0.23"]}}
    options = {"report_dir": str(tmp_path / "reports"), "send": "never", "hosts": sorted(addresses),
               "addresses": addresses, "sweeps": sweeps}
    rc, out = ansible_runner.adhoc("sysops.fleet.fleet_report", options, tmp_path)
    assert rc == 0, out
    assert out["findings"] == [{"kind": "down", "hosts": ["H3"], "probed_by": 2, "answers_ansible": True}]
    assert out["report"]["down"] == [] and out["report"]["summary"]["addresses_alive"] == 3
    assert "NO PING  H3: silent to all 2 hosts that probed it, but Ansible reached it: up, and pings to it are " \
        "dropped (a firewall on it or on its way in)" in out["text"]
    assert "  DOWN " not in out["text"] and section(out["text"], "Addresses down") == ["  none"]
    page = html_check.parse((tmp_path / "reports" / "fleet-report.html").read_text())[0]
    row = html_check.rows(html_check.table_after(page, "Mesh findings"))[0]
    assert [td.text for td in row.kids("td")][0] == "NO PING"
