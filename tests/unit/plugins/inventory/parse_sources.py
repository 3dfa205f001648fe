# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse inventory sources with the real sysops.fleet.sweep plugin, the way ansible-inventory loads it.

    python parse_sources.py COLLECTIONS_PATH SOURCE...

Prints one JSON object per source, in order, as a JSON list: ``hosts``
(name -> variables) and ``groups`` (name -> hosts), or ``error`` and
``error_type`` when the plugin refused the source; ``sweeps`` counts the
calls of the core's sweep, so a test can tell a cached answer from a new
sweep; ``warnings`` holds what the plugin warned about. A process of its own: Ansible's collection loader must own the
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
    real_run = _sweep.run

    def counted(options, *args, **kwargs):
        sweeps.append(options.targets)
        return real_run(options, *args, **kwargs)

    _sweep.run = counted
    warnings = []
    real_warning = plugin.display.warning

    def warned(msg, *args, **kwargs):
        warnings.append(msg)
        return real_warning(msg, *args, **kwargs)

    plugin.display.warning = warned
    out = []
    for source in sys.argv[2:]:
        inventory = InventoryData()
        before = len(sweeps)
        del warnings[:]
        try:
            if not plugin.verify_file(source):
                raise AnsibleError(f"verify_file refused {source}")
            plugin.parse(inventory, DataLoader(), source)
            plugin.update_cache_if_changed() if plugin.get_option("cache") else None
        except AnsibleError as exc:
            out.append({"error": exc.message, "error_type": type(exc).__name__, "sweeps": len(sweeps) - before,
                        "warnings": list(warnings)})
            continue
        out.append({
            "hosts": {name: {k: v for k, v in host.vars.items() if k not in ("inventory_file", "inventory_dir")}
                      for name, host in inventory.hosts.items()},
            "groups": {name: sorted(h.name for h in group.hosts) for name, group in inventory.groups.items()},
            "sweeps": len(sweeps) - before,
            "warnings": list(warnings),
        })
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
