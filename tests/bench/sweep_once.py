# SPDX-License-Identifier: GPL-3.0-or-later
"""One sweep through the collection's core, as ping_sweep runs it; prints the alive set as JSON.

Run by bench_sweep.py inside the lab namespace; not a test by itself.
"""

import argparse
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

from ansible_collections.sysops.fleet.plugins.module_utils import _sweep  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="socket")
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()
    result = _sweep.sweep(args.targets, method=args.method, timeout=args.timeout, retries=0, rate=0)
    json.dump({"alive": result["alive"], "elapsed_s": result["summary"]["elapsed_s"]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
