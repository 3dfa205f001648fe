# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sysops.fleet.sweep inventory plugin, loaded by Ansible's own plugin loader (parse_sources.py).

Real sweeps of loopback addresses, which all answer outside the lab; the
loopback lab (silent hosts, counted probes, ansible-inventory) is
tests/integration/targets/inventory_sweep.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.sysops.fleet.plugins.inventory import sweep

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..")))
import lab  # noqa: E402  pylint: disable=wrong-import-position

needs_lab = pytest.mark.skipif(os.geteuid() != 0, reason="the loopback lab needs root (network namespaces)")
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(sweep.__file__), "..", "..", "..", "..", ".."))


def write(tmp_path, config, name="source"):
    """*config* plus the plugin key, written as NAME.sweep.yml; its path."""
    path = tmp_path / f"{name}.sweep.yml"
    path.write_text(yaml.safe_dump(dict({"plugin": "sysops.fleet.sweep"}, **config)))
    return str(path)


def parse(tmp_path, *configs, netns=None):
    """Parse each config (a dict, written as sourceN.sweep.yml, or a path) in one process; the results in order.

    With *netns*, inside that network namespace of the loopback lab (where a name lookup cannot leave).
    """
    paths = [write(tmp_path, c, f"source{i}") if isinstance(c, dict) else c for i, c in enumerate(configs)]
    argv = [sys.executable, os.path.join(HERE, "parse_sources.py"), COLLECTIONS, *paths]
    proc = subprocess.run(lab.netns_argv(netns, argv) if netns else argv,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_only_sweep_config_files_are_taken(tmp_path):
    plugin = sweep.InventoryModule()
    for name, wanted in (("lab.sweep.yml", True), ("lab.sweep.yaml", True), ("lab.yml", False),
                         ("sweep.yml", False), ("lab.sweep.yml.bak", False), ("lab.sweep.json", False)):
        (tmp_path / name).write_text("plugin: sysops.fleet.sweep\n")
        assert plugin.verify_file(str(tmp_path / name)) is wanted, name
    assert plugin.verify_file(str(tmp_path / "missing.sweep.yml")) is False


def test_hosts_variables_and_constructed_groups(tmp_path):
    [out] = parse(tmp_path, {
        "targets": ["127.0.0.1-6", "localhost"], "exclude": ["127.0.0.5"], "hostnames": "name", "rate": 0,
        "compose": {"octet": "ansible_host.split('.')[-1] | int"},
        "keyed_groups": [{"key": "'odd' if (octet | int) % 2 else 'even'", "prefix": "parity"}],
        "groups": {"named": "sweep_name is defined"},
    })
    assert "error" not in out, out
    hosts = out["hosts"]
    assert sorted(hosts) == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.6", "localhost"]
    assert hosts["localhost"]["ansible_host"] == "127.0.0.1" and hosts["localhost"]["sweep_name"] == "localhost"
    assert all(h["ansible_host"] == name for name, h in hosts.items() if name != "localhost")
    assert all(isinstance(h["sweep_rtt_ms"], float) and 0 <= h["sweep_rtt_ms"] < 1000 for h in hosts.values())
    assert max(h["sweep_rtt_ms"] for h in hosts.values()) > 0
    assert out["groups"]["parity_odd"] == ["127.0.0.3", "localhost"]
    assert out["groups"]["parity_even"] == ["127.0.0.2", "127.0.0.4", "127.0.0.6"]
    assert out["groups"]["named"] == ["localhost"]


def test_hosts_are_named_by_address_unless_told_otherwise(tmp_path):
    [out] = parse(tmp_path, {"targets": ["localhost", "127.0.0.2"]})
    assert sorted(out["hosts"]) == ["127.0.0.1", "127.0.0.2"]
    assert out["hosts"]["127.0.0.1"]["sweep_name"] == "localhost"


def test_strict_makes_a_broken_compose_an_error(tmp_path):
    lenient, strict = parse(tmp_path, {"targets": ["127.0.0.1"], "compose": {"x": "no_such_var + 1"}},
                            {"targets": ["127.0.0.1"], "compose": {"x": "no_such_var + 1"}, "strict": True})
    assert "x" not in lenient["hosts"]["127.0.0.1"]
    assert "Could not set x for host 127.0.0.1" in strict["error"]


# ansible-core's own messages for its config checks: (2.19 and later, 2.16 to 2.18) wordings.
PLUGIN_SETTING = "plugin_type: inventory plugin: ansible_collections.sysops.fleet.plugins.inventory.sweep setting: "
BAD_OPTIONS = [
    ({"targets": ["127.0.0.1;reboot"]}, "targets: '127.0.0.1;reboot' contains ';'"),
    ({"targets": ["$(id)"]}, "targets: '$(id)' contains"),
    ({"targets": ["127.0.0.1 127.0.0.2"]}, "contains ' '"),
    ({"targets": ["0.0.0.0/0"]}, "'0.0.0.0/0' is the whole address space"),
    ({"targets": ["10.0.0.0/7"]}, "'10.0.0.0/7' has 33554430 addresses, more than max_hosts=65536"),
    ({"targets": ["127.0.0.1-300"]}, "the last octet 300 is larger than 255"),
    ({"targets": ["127.0.0.300"]}, "'127.0.0.300' is not a valid address"),
    ({"targets": []}, "targets: give at least one address"),
    ({"targets": ["127.0.0.1"], "exclude": ["127.0.0.0/24"]}, "nothing to sweep: every target is excluded"),
    ({"targets": ["127.0.0.1"], "exclude": ["127.0.0.1|x"]}, "exclude: '127.0.0.1|x' contains '|'"),
    ({"targets": ["127.0.0.1"], "timeout": 0}, "timeout must be more than 0 and at most 60 seconds"),
    ({"targets": ["127.0.0.1"], "timeout": 61}, "timeout must be more than 0 and at most 60 seconds, got 61"),
    ({"targets": ["127.0.0.1"], "timeout": "soon"}, ("Config 'timeout'", "setting: timeout (from Direct)")),
    ({"targets": ["127.0.0.1"], "retries": -1}, "retries must be between 0 and 10, got -1"),
    ({"targets": ["127.0.0.1"], "rate": -5}, "rate must be 0 (no cap) or a finite positive number of probes per second, got -5.0"),
    ({"targets": ["127.0.0.1"], "workers": 0}, "workers must be between 1 and 256, got 0"),
    ({"targets": ["127.0.0.1"], "concurrency": 0}, "concurrency must be at least 1, got 0"),
    ({"targets": ["127.0.0.1"], "max_hosts": 0}, "max_hosts must be at least 1, got 0"),
    ({"targets": ["127.0.0.1"], "count": 0}, "count must be between 1 and 10000 probes per address, got 0"),
    ({"targets": ["127.0.0.1"], "count": 10001}, "count must be between 1 and 10000 probes per address, got 10001"),
    ({"targets": ["127.0.0.1"], "spacing": 0}, "spacing must be between 0.002 and 60 seconds"),
    ({"targets": ["127.0.0.1"], "spacing": "nan"}, "spacing must be between 0.002 and 60 seconds"),
    ({"targets": ["127.0.0.0/16"], "count": 100}, "count=100 for 65534 addresses is 6553400 probes, more than the "
                                                  "4194304 one sweep may send"),
    ({"targets": ["127.0.0.1"], "count": 100, "spacing": 60}, "count=100 at spacing=60 would take about 1.7 hours"),
    ({"targets": ["127.0.0.1"], "method": "nmap"},
     ("Invalid value 'nmap' for config 'method'", f'Invalid value "nmap" for configuration option "{PLUGIN_SETTING}method "')),
    ({"targets": ["127.0.0.1"], "hostnames": "fqdn"},
     ("Invalid value 'fqdn' for config 'hostnames'", f'Invalid value "fqdn" for configuration option "{PLUGIN_SETTING}hostnames "')),
    ({"targets": ["127.0.0.1"], "retires": 2}, "unknown option 'retires' (did you mean 'retries'?)"),
    ({"targets": ["127.0.0.1"], "keyed-groups": []}, "unknown option 'keyed-groups' (did you mean 'keyed_groups'?)"),
    ({"exclude": ["127.0.0.1"]}, ("Required config 'targets'", f"required configuration {PLUGIN_SETTING}targets")),
]


def test_bad_options_are_refused_with_a_message_naming_them(tmp_path):
    outs = parse(tmp_path, *(case[0] for case in BAD_OPTIONS))
    wrong = []
    for index, ((options, message), out) in enumerate(zip(BAD_OPTIONS, outs)):
        source = str(tmp_path / f"source{index}.sweep.yml")
        wordings = message if isinstance(message, tuple) else (message,)
        if out.get("error_type") != "AnsibleParserError" or not any(m in out["error"] for m in wordings) \
                or not out["error"].startswith(source + ": ") or out["sweeps"] > 1:
            wrong.append(f"{options}: wanted {message!r}, got {out}")
    assert not wrong, "\n".join(wrong)


def test_a_file_for_another_plugin_is_not_ours(tmp_path):
    path = tmp_path / "other.sweep.yml"
    path.write_text("plugin: community.general.nmap\naddress: 127.0.0.1\n")
    [out] = parse(tmp_path, str(path))
    assert "Incorrect plugin name in file: community.general.nmap" in out["error"]


def cached(tmp_path, **extra):
    return dict({"targets": ["127.0.0.1-3"], "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
                 "cache_connection": str(tmp_path / "cache")}, **extra)


def test_the_cache_answers_until_the_sweep_options_change(tmp_path):
    path = write(tmp_path, cached(tmp_path))
    first, second = parse(tmp_path, path, path)
    assert first["sweeps"] == 1 and second["sweeps"] == 0
    assert second["hosts"] == first["hosts"]
    write(tmp_path, cached(tmp_path, targets=["127.0.0.1-2"]))
    [other] = parse(tmp_path, path)
    assert other["sweeps"] == 1 and sorted(other["hosts"]) == ["127.0.0.1", "127.0.0.2"]
    write(tmp_path, cached(tmp_path, targets=["127.0.0.1-2"], groups={"first": "ansible_host == '127.0.0.1'"}))
    [grouped] = parse(tmp_path, path)
    assert grouped["sweeps"] == 0, "compose and groups are applied to the cached answer, no new sweep"
    assert grouped["groups"]["first"] == ["127.0.0.1"]


TAMPERED = [
    lambda e: e["hosts"].append({"address": "{{ lookup('pipe', 'id') }}", "rtt_ms": 1.0, "name": None}),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": "{{ 7 * 6 }}", "name": None}),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": 1.0, "name": "x; rm -rf /"}),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": 1.0, "name": "{{ lookup('pipe', 'id') }}"}),
    lambda e: e["hosts"].append("127.0.0.9"),
    lambda e: e.update(hosts="127.0.0.9"),
    lambda e: e.update(format=99),
    lambda e: e.update(format=1),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": 1.0, "name": None, "sent": 3, "received": 4,
                                 "loss_pct": 0.0, "rtt": None}),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": 1.0, "name": None, "sent": 3, "received": 3,
                                 "loss_pct": "{{ 7 * 6 }}", "rtt": None}),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": 1.0, "name": None, "sent": 3, "received": 3,
                                 "loss_pct": 0.0, "rtt": {"min": "{{ lookup('pipe', 'id') }}"}}),
    lambda e: e["hosts"].append({"address": "127.0.0.9", "rtt_ms": float("nan"), "name": None}),
]


def test_a_tampered_cache_is_not_believed(tmp_path):
    paths = [write(tmp_path, cached(tmp_path / str(i)), f"source{i}") for i in range(len(TAMPERED))]
    assert all(out["sweeps"] == 1 for out in parse(tmp_path, *paths))
    for index, tamper in enumerate(TAMPERED):
        [cache_file] = [tmp_path / str(index) / "cache" / n for n in os.listdir(tmp_path / str(index) / "cache")]
        wrapper = json.loads(cache_file.read_text())
        # ansible-core 2.19 and later wrap the entry in {"__payload__": its JSON}; 2.16-2.18 store it as is
        entry = json.loads(wrapper["__payload__"]) if "__payload__" in wrapper else wrapper
        tamper(entry)
        if "__payload__" in wrapper:
            wrapper["__payload__"] = json.dumps(entry)
        cache_file.write_text(json.dumps(wrapper if "__payload__" in wrapper else entry))
    for index, out in enumerate(parse(tmp_path, *paths)):
        assert out["sweeps"] == 1, f"case {index}: a cache entry that is not plain data is swept again"
        assert sorted(out["hosts"]) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"], f"case {index}: {out}"


def test_documentation_covers_every_option_and_the_fragments():
    doc = yaml.safe_load(sweep.DOCUMENTATION)
    assert doc["name"] == "sweep" and doc["version_added"]
    assert set(doc["options"]) == {"plugin", "hostnames"}, "the sweep's options come from the sysops.fleet.sweep fragment"
    assert all(o.get("description") and o.get("type") for o in doc["options"].values())
    assert doc["extends_documentation_fragment"] == ["sysops.fleet.sweep", "ansible.builtin.constructed",
                                                     "ansible.builtin.inventory_cache"]
    examples = [yaml.safe_load(sweep.EXAMPLES)] + [  # the first file, and the ones indented after "#"
        yaml.safe_load("\n".join(line[4:] for line in block.splitlines()[1:]))
        for block in re.findall(r"^# \S+\.sweep\.yml: .*\n(?:#   .*\n?)+", sweep.EXAMPLES, re.M)]
    assert len(examples) == 4
    for example in examples:
        assert example["plugin"] == "sysops.fleet.sweep" and example["targets"]


def test_count_mode_gives_every_host_its_loss_and_round_trip_statistics(tmp_path):
    [out] = parse(tmp_path, {"targets": ["127.0.0.1-3"], "count": 4, "spacing": 0.01, "rate": 0,
                             "groups": {"clean": "sweep_loss_pct == 0", "steady": "sweep_rtt.stddev < 100"}})
    assert "error" not in out, out
    for host in out["hosts"].values():
        assert host["sweep_sent"] == 4 and host["sweep_received"] == 4 and host["sweep_loss_pct"] == 0
        stats = host["sweep_rtt"]
        assert 0 < stats["min"] <= stats["median"] <= stats["p90"] <= stats["max"] < 1000
        assert host["sweep_rtt_ms"] == stats["median"]
    assert out["groups"]["clean"] == out["groups"]["steady"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def test_count_mode_is_cached_with_its_numbers(tmp_path):
    path = write(tmp_path, cached(tmp_path, count=3, spacing=0.01))
    first, second = parse(tmp_path, path, path)
    assert first["sweeps"] == 1 and second["sweeps"] == 0
    assert second["hosts"] == first["hosts"] and second["hosts"]["127.0.0.1"]["sweep_sent"] == 3


@needs_lab
def test_an_exclude_name_that_does_not_resolve_is_warned_about(tmp_path):
    """As the module warns. In the lab namespace (loopback only) the name's lookup cannot leave the machine."""
    with lab.lab() as ns:
        [out] = parse(tmp_path, {"targets": ["127.0.0.1-2"], "exclude": ["no-such-host.invalid", "127.0.0.2"]},
                      netns=ns)
    assert sorted(out["hosts"]) == ["127.0.0.1"], out
    assert any("exclude: 'no-such-host.invalid' does not resolve, so it excludes nothing" in w
               for w in out["warnings"]), out["warnings"]
