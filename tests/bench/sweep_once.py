# SPDX-License-Identifier: GPL-3.0-or-later
"""One sweep through the collection's core, as ping_sweep runs it; prints the alive set as JSON.

Run by bench_sweep.py inside the lab namespace; not a test by itself.

``--floor`` measures the process-spawn floor of ``method=ping``: the very same sweep (dealing to
workers, ``_command.run_many``, concurrency, parsing), with each ``ping`` replaced by a process
that takes as long as ping takes for that address in the lab: ``true`` for one that answers,
``sleep TIMEOUT`` for one the lab silences. What is left between the two is ping itself.
"""

import argparse
import json
import os
import resource
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from ansible_collections.sysops.fleet.plugins.module_utils import _sweep  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="socket")
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--floor", action="store_true", help="spawn true/sleep instead of ping (method=ping)")
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()
    if args.floor:
        import lab  # pylint: disable=import-outside-toplevel

        answering = set().union(*(lab.expected_alive(t) for t in args.targets))
        true, sleep = shutil.which("true"), shutil.which("sleep")

        def stand_in(_ping, address, timeout):
            return [true] if address in answering else [sleep, f"{timeout:g}"]

        _sweep.ping_argv = stand_in
    result = _sweep.sweep(args.targets, method=args.method, timeout=args.timeout, retries=0, rate=0)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers and every process they reaped
    json.dump({"alive": result["alive"], "elapsed_s": result["summary"]["elapsed_s"],
               "children_cpu_s": children.ru_utime + children.ru_stime}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
