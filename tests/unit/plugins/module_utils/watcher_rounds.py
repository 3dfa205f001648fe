# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive watcher rounds back to back: the real ``Watcher``, the real sweep, the real mail, no interval waits.

    python watcher_rounds.py COLLECTIONS CONFIG ROUNDS OUT.json

Run by the alert tests inside a lab namespace (``ip netns exec``), beside an
SMTP server the test started there. Each round is ``Watcher.check_once()``,
exactly what the daemon's loop calls every ``interval`` seconds; calling it
in a loop is what makes a thousand rounds take a minute instead of a day.
Writes, per round, the alert changes and each watched host's level (what
the round saw) and status (what is alerted), and the time it all took.
"""

import json
import sys
import time


def main() -> int:
    collections, config, rounds, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sys.path.insert(0, collections)
    from ansible_collections.sysops.fleet.plugins.module_utils import _watcher  # pylint: disable=import-outside-toplevel

    watcher = _watcher.Watcher(_watcher.load_settings(config))
    record = []
    started = time.monotonic()
    for _round in range(rounds):
        changes = watcher.check_once()
        record.append({"changes": [[c.kind, c.name, c.old, c.new] for c in changes],
                       "hosts": {k: [h.get("level"), h["status"]] for k, h in watcher.state["hosts"].items()},
                       "ok": watcher.state["last_round"]["ok"], "problems": watcher.state["last_round"]["problems"]})
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"rounds": record, "seconds": time.monotonic() - started, "state": watcher.state}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
