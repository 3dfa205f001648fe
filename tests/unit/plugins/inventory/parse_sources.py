# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse inventory sources with the real sysops.fleet.sweep plugin, the way ansible-inventory loads it.

    python parse_sources.py COLLECTIONS_PATH SOURCE...

Prints one JSON object per source, in order, as a JSON list: ``hosts``
(name -> variables) and ``groups`` (name -> hosts), or ``error`` and
``error_type`` when the plugin refused the source; ``sweeps`` counts the
calls of the core's sweep, so a test can tell a cached answer from a new
sweep. A process of its own: Ansible's collection loader must own the
``ansible_collections`` package, which the pytest process already imported
as a plain one.
"""

import json
import os
import sys

from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader


def main() -> int:
    init_plugin_loader([os.path.abspath(sys.argv[1])])
    plugin = inventory_loader.get("sysops.fleet.sweep")
    from ansible_collections.sysops.fleet.plugins.module_utils import _sweep  # pylint: disable=import-outside-toplevel

    sweeps = []
    real_sweep = _sweep.sweep

    def counted(*args, **kwargs):
        sweeps.append(kwargs.get("targets", args[:1]))
        return real_sweep(*args, **kwargs)

    _sweep.sweep = counted
    out = []
    for source in sys.argv[2:]:
        inventory = InventoryData()
        before = len(sweeps)
        try:
            if not plugin.verify_file(source):
                raise AnsibleError(f"verify_file refused {source}")
            plugin.parse(inventory, DataLoader(), source)
            plugin.update_cache_if_changed() if plugin.get_option("cache") else None
        except AnsibleError as exc:
            out.append({"error": exc.message, "error_type": type(exc).__name__, "sweeps": len(sweeps) - before})
            continue
        out.append({
            "hosts": {name: {k: v for k, v in host.vars.items() if k not in ("inventory_file", "inventory_dir")}
                      for name, host in inventory.hosts.items()},
            "groups": {name: sorted(h.name for h in group.hosts) for name, group in inventory.groups.items()},
            "sweeps": len(sweeps) - before,
        })
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
