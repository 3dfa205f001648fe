# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""One declaration of the sweep's options: the doc fragment, the core's spec, the module, the inventory, the watcher."""

import configparser

import yaml

from ansible_collections.sysops.fleet.plugins.doc_fragments import sweep as fragment
from ansible_collections.sysops.fleet.plugins.inventory import sweep as inventory
from ansible_collections.sysops.fleet.plugins.module_utils import _fanout, _sweep_options, _watcher
from ansible_collections.sysops.fleet.plugins.modules import ping_sweep

DOCUMENTED = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


def test_the_fragment_documents_exactly_the_spec_with_its_types_and_defaults():
    assert set(DOCUMENTED) == set(_sweep_options.SPEC)
    for name, spec in _sweep_options.SPEC.items():
        doc = DOCUMENTED[name]
        assert doc["type"] == spec["type"], name
        assert doc.get("elements") == spec.get("elements"), name
        assert doc.get("choices") == spec.get("choices"), name
        assert bool(doc.get("required")) == bool(spec.get("required")), name
        if spec["type"] == "float":
            assert float(doc["default"]) == spec["default"], name
        else:
            assert doc.get("default") == spec.get("default"), name
        assert doc["description"], name


def test_the_dataclass_defaults_are_the_specs():
    options = _sweep_options.SweepOptions()
    for name, spec in _sweep_options.SPEC.items():
        if not spec.get("required"):
            assert getattr(options, name) == spec.get("default"), name
    assert _sweep_options.MAX_WORKERS == _fanout.MAX_WORKERS


def test_the_module_and_the_inventory_take_the_options_from_the_fragment_only():
    module_doc = yaml.safe_load(ping_sweep.DOCUMENTATION)
    assert "sysops.fleet.sweep" in module_doc["extends_documentation_fragment"]
    assert set(module_doc["options"]) == {"details", "list_limit"}, "the module documents only its own options"
    inventory_doc = yaml.safe_load(inventory.DOCUMENTATION)
    assert "sysops.fleet.sweep" in inventory_doc["extends_documentation_fragment"]
    assert not set(inventory_doc["options"]) & set(_sweep_options.SPEC)
    assert set(inventory.SWEEP_OPTIONS) == set(_sweep_options.SPEC)


def test_the_watcher_reads_every_option_under_its_name(tmp_path):
    """[hosts] takes every key of the spec (watch for targets), refused with the core's message."""
    section = {"watch": "127.0.0.1", "exclude": "127.0.0.2", "timeout": "0.5", "retries": "2", "count": "5",
               "spacing": "0.1", "method": "socket", "workers": "2", "concurrency": "10", "rate": "50",
               "max_hosts": "10"}
    assert set(section) == set(_sweep_options.keys(_watcher.HOST_NAMES))
    parser = configparser.ConfigParser()
    parser.read_dict({"hosts": section})
    options = _sweep_options.from_text(parser["hosts"], "[hosts]", _watcher.HOST_NAMES)
    assert options == _sweep_options.SweepOptions(targets=["127.0.0.1"], exclude=["127.0.0.2"], timeout=0.5,
                                                  retries=2, count=5, spacing=0.1, method="socket", workers=2,
                                                  concurrency=10, rate=50.0, max_hosts=10)
