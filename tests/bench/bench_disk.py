# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the disk report (no mail) against ``df -P`` on this machine.

    .venv/bin/python tests/bench/bench_disk.py [--repeat 50] [--extra-mounts 0,50,200]

Times, as medians over --repeat runs:

* ``df -P`` and ``df -P; df -Pi`` (the two commands that print what one
  report holds), run as commands from Python;
* the report in-process - ``_disk.read_filesystems`` (mount table, one
  ``df`` call for the local filesystems plus one per hung-prone mount,
  each with a timeout) plus
  ``_report.build`` (statuses, text and HTML) - with the default
  selection and with every type selected (the same mounts ``df -P`` shows);
* the same report as a whole command (``python3 -c``), interpreter start-up
  and imports included (bytecode cached in a temp directory, as on a target).

and prints the ratio of each to ``df -P``; the target is the in-process
report at no more than 2x ``df -P``. With --extra-mounts (root only), each
round adds that many small tmpfs mounts in a private mount namespace that
vanishes with this process, to show how both scale. It also checks that
the numbers equal df's. Nothing is mailed; no network is used.
"""

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _report  # noqa: E402

CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 1 << 18
ALL_TYPES = _disk.Selection(exclude_fstypes=())
REPORT_CODE = ("import sys; sys.path.insert(0, {path!r}); "
               "from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _report; "
               "_report.build(_disk.read_filesystems(), _report.Thresholds(), 'bench')")


def median_ms(func, repeat):
    func()  # warm caches (page cache, imports, regex compilation)
    times = []
    for unused in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def command(argv, env=None):
    environ = dict(os.environ, LC_ALL="C", **(env or {}))
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=environ)


def python_command(pycache):
    """The report as a fresh interpreter runs it, with bytecode cached (outside the checkout) as on a target."""
    env = {"PYTHONPYCACHEPREFIX": pycache, "PYTHONDONTWRITEBYTECODE": ""}
    return command([sys.executable, "-c", REPORT_CODE.format(path=COLLECTIONS)], env)


def in_process(selection):
    return lambda: _report.build(_disk.read_filesystems(selection), _report.Thresholds(), "bench")


def same_as_df():
    """True when every filesystem we report has df -P's numbers (retried while the disk is busy)."""
    for attempt in range(20):
        before = subprocess.run(["df", "-P"], capture_output=True, text=True, check=True).stdout
        ours = _disk.read_filesystems(ALL_TYPES)
        after = subprocess.run(["df", "-P"], capture_output=True, text=True, check=True).stdout
        if before != after:
            time.sleep(0.05)  # the disk is busy: wait for a quiet moment, as the unit test does
            continue
        rows = {" ".join(line.split()[5:]): line.split()[1:5] for line in before.splitlines()[1:]}
        return all(rows.get(fs.mount) == [str(-(-fs.size_bytes // 1024)), str(-(-fs.used_bytes // 1024)),
                                          str(-(-fs.avail_bytes // 1024)), f"{fs.use_pct}%"] for fs in ours)
    return False


def add_tmpfs_mounts(first, count, base, mounted):
    """*count* more mounted filesystems, visible only in this process's private mount namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    for n in range(first, first + count):
        path = os.path.join(base, f"m{n}")
        os.makedirs(path, exist_ok=True)
        if libc.mount(b"benchfs", path.encode(), b"tmpfs", 0, b"size=1m") != 0:
            raise OSError(ctypes.get_errno(), f"mount tmpfs on {path}")
        mounted.append(path)


def remove_mounts(mounted):
    libc = ctypes.CDLL(None, use_errno=True)
    for path in mounted:
        libc.umount2(path.encode(), 2)  # MNT_DETACH


def private_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot make a private mount namespace (needs root)")


def measure(repeat, extra, pycache):
    df_ms = median_ms(command(["df", "-P"]), repeat)
    both_ms = median_ms(lambda: (command(["df", "-P"])(), command(["df", "-Pi"])()), repeat)
    rows = [("df -P", df_ms), ("df -P; df -Pi", both_ms),
            ("report in-process, default selection", median_ms(in_process(_disk.Selection()), repeat)),
            ("report in-process, every type (as df -P)", median_ms(in_process(ALL_TYPES), repeat)),
            ("report as a command (python3 -c, bytecode cached)", median_ms(python_command(pycache), max(5, repeat // 5)))]
    filesystems = (len(_disk.read_filesystems()), len(_disk.read_filesystems(ALL_TYPES)))
    return extra, filesystems, df_ms, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--extra-mounts", default="0", help="comma-separated counts of tmpfs mounts to add (root)")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.extra_mounts.split(",")})
    if any(counts) and os.geteuid() != 0:
        print("--extra-mounts needs root (a private mount namespace)", file=sys.stderr)
        return 2
    results, mounted = [], []
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as base:
        if any(counts):
            private_namespace()
        try:
            for count in counts:
                add_tmpfs_mounts(len(mounted), count - len(mounted), base, mounted)
                results.append(measure(args.repeat, count, os.path.join(base, "pycache")))
            ok = same_as_df()
        finally:
            remove_mounts(mounted)
    print(f"numbers identical to df -P: {ok}")
    print("| extra mounts | reported (default / all types) | what | median ms | x df -P |")
    print("| ---: | --- | --- | ---: | ---: |")
    for extra, (default, every), df_ms, rows in results:
        for name, ms in rows:
            print(f"| {extra} | {default} / {every} | {name} | {ms:.2f} | {ms / df_ms:.2f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
