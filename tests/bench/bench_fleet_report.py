# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: fleet_report at 1,000 to 20,000 hosts, the module process as Ansible runs it.

    .venv/bin/python tests/bench/bench_fleet_report.py [--hosts 1000,5000,10000,20000] [--repeat 3]
                                                       [--dict-too 1000,5000,10000] [--keep DIR]
                                                       [--playbook 10000] [--playbook-repeat 1]

The inputs are tests/bench/fleet_scale.py's: per host 8 to 12 filesystems as
disk_report returns them (reasons, forecasts), four sweepers a quarter of
the addresses each (as ranges), 1 % of the hosts unreachable and 0.5 %
failed with their reasons. For each size, as medians of --repeat rounds:

* **module**: ``python fleet_report.py ARGS`` (what Ansible runs once the
  AnsiballZ wrapper is unpacked) with the inputs as playbooks/site.yml
  passes them (the sweeps as JSON text, the disk reports as the
  disk_columns filter's JSON text): wall time, CPU (user + sys, ``wait4``)
  and peak RSS (its VmHWM, read as it exits) of that process;
* **text**, in the same round: the same module with the disk reports as
  JSON text in ``disk_reports`` (as site.yml passed them before
  disk_columns), and the ratio of the module's CPU to it;
* **reference**, in the same round: a module with the same argument_spec
  that reads the same arguments and returns at once (AnsibleModule's own
  cost: reading, copying, checking and logging the arguments), and the
  ratio of the module to it;
* **build**: ``_fleet.run`` in this process on the columns (parse the JSON
  text, check, merge, render text and HTML, write the files): what the
  module adds;
* with --dict-too, the module given the inputs as dicts (the way a play
  passed them before site.yml used ``| to_json``): Ansible deep-copies a
  dict argument twice before the module starts.

With --playbook N (10,000 by default), the whole ``ansible-playbook`` command
at N hosts, as the user times it: playbooks/site.yml's fleet_report task
exactly as site.yml has it (its templates and vars, read from the file), on
an inventory of N hosts whose registered results (``fleet_disk``,
``fleet_sweep``, ``fleet_failure``, ``fleet_reach``) are the same fleet's, given
as host variables by an inventory script (no host is contacted: the task runs
once, on localhost). Wall time and CPU of the command and all it started,
against a reference in the same round: the same inventory and one ``debug``
task (loading the 10,000 hosts). What lies between the two is what the fleet
report adds to the user's command: templating the arguments on the
controller, passing them, the module, its result. Run this file from a
checkout of an older commit to compare (it reads that checkout's site.yml).

Then the growth from 5,000 to 20,000 hosts (4x the hosts: n log n is
4.65x, quadratic 16x) and the goals of issue 19: 10,000 hosts in at most
2 s and 500 MB in the module process. Nothing is mailed (send=never);
the report files go to a temporary directory (kept with --keep). The load
average is printed: other jobs on the machine move wall times, CPU less.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
sys.path[:0] = [HERE, COLLECTIONS]

import fleet_scale  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _fleet_columns  # noqa: E402  pylint: disable=C0413

MODULE = os.path.join(ROOT, "plugins", "modules", "fleet_report.py")
# The reference: fleet_report's argument_spec, and nothing else.
NULL_MODULE = """
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sysops.fleet.plugins.module_utils import _mail_delivery
spec = dict(sweeps=dict(type="raw", default={}), disk_reports=dict(type="raw", default={}),
            disk_columns=dict(type="raw", default={}),
            hosts=dict(type="list", elements="str", default=[]), unreachable=dict(type="list", elements="str", default=[]),
            failed=dict(type="list", elements="str", default=[]), failure_reasons=dict(type="dict", default={}),
            addresses=dict(type="raw", default={}), report_dir=dict(type="path", required=True), state_file=dict(type="path"), top=dict(type="int", default=10),
            send=dict(type="str", default="auto"), subject=dict(type="str", default="Fleet report"),
            **_mail_delivery.MAIL_ARGUMENT_SPEC)
AnsibleModule(argument_spec=spec, supports_check_mode=True).exit_json(changed=False)
"""
GOAL_HOSTS, GOAL_SECONDS, GOAL_MB = 10000, 2.0, 500


# The peak RSS of a process is read from its own /proc/self/status (VmHWM) as it exits: wait4's ru_maxrss
# would count this benchmark's own memory, which the child had before its exec.
PEAK = ("import atexit, runpy, sys\n"
        "def peak():\n"
        "    with open('/proc/self/status') as status:\n"
        "        sys.stderr.write(next(l for l in status if l.startswith('VmHWM:')))\n"
        "atexit.register(peak)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def run_process(module: str, args: str, env: Dict[str, str]) -> Dict[str, float]:
    """Run one module process to its end: wall seconds, CPU seconds (its own, from wait4) and peak RSS in MB."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", PEAK, module, args], stdout=out, stderr=err, env=env)
        unused_pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text, problem = out.read(), err.read().decode()
    result = json.loads(text or b"{}")
    if os.waitstatus_to_exitcode(status) != 0 or result.get("failed") or "VmHWM:" not in problem:
        raise RuntimeError(f"{module} failed ({status}): {result.get('msg') or problem[-2000:]}")
    peak_kb = int(problem.split("VmHWM:", 1)[1].split()[0])
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": peak_kb / 1024}


def compact(data: Dict) -> str:
    """JSON text as playbooks/site.yml makes it: ``to_json(separators=(',', ':'))``."""
    return json.dumps(data, separators=(",", ":"))


def arguments(inputs: Dict, report_dir: str, form: str) -> Dict:
    """fleet_report's arguments, the disk reports in *form*: ``columns`` (site.yml now: the disk_columns filter's
    JSON text), ``text`` (disk_reports as JSON text, site.yml before) or ``dict``."""
    args = dict(inputs, report_dir=report_dir, send="never")
    if form != "dict":
        args["sweeps"] = compact(inputs["sweeps"])
    if form == "columns":
        args["disk_columns"] = _fleet_columns.dumps(_fleet_columns.columns(args.pop("disk_reports")))
    elif form == "text":
        args["disk_reports"] = compact(inputs["disk_reports"])
    return args


def args_file(path: str, inputs: Dict, report_dir: str, form: str) -> float:
    """Write Ansible's module arguments for *inputs*; their size in MB."""
    data = json.dumps({"ANSIBLE_MODULE_ARGS": arguments(inputs, report_dir, form)})
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(data)
    return len(data) / 1e6


def in_process(inputs: Dict, report_dir: str) -> Dict[str, float]:
    """What the module adds to AnsibleModule: _fleet.run on the columns (parse, check, merge, render, write)."""
    options = arguments(inputs, report_dir, "columns")
    wall, cpu = time.perf_counter(), time.process_time()
    result = _fleet.run(options)
    if result["error"]:
        raise RuntimeError(result["error"])
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def median(rounds: List[Dict[str, float]]) -> Dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def measure(count: int, repeat: int, dict_too: bool, work: str, env: Dict[str, str]) -> Dict:
    inputs = fleet_scale.fleet(count)
    filesystems = sum(len(r["filesystems"]) for r in inputs["disk_reports"].values())
    report_dir = os.path.join(work, f"reports-{count}")
    paths = {form: os.path.join(work, f"args-{count}-{form}.json") for form in ("columns", "text", "dict")}
    size = args_file(paths["columns"], inputs, report_dir, "columns")
    text_size = args_file(paths["text"], inputs, report_dir + "-text", "text")
    null = os.path.join(work, "null_module.py")
    row = {"hosts": count, "filesystems": filesystems, "args_mb": size, "text_mb": text_size}
    rounds: Dict[str, List] = {"module": [], "reference": [], "build": [], "text": [], "dict": []}
    if dict_too:
        args_file(paths["dict"], inputs, report_dir + "-dict", "dict")
    for unused in range(repeat):
        rounds["reference"].append(run_process(null, paths["columns"], env))
        rounds["module"].append(run_process(MODULE, paths["columns"], env))
        rounds["text"].append(run_process(MODULE, paths["text"], env))
        rounds["build"].append(in_process(inputs, report_dir + "-inproc"))
        if dict_too:
            rounds["dict"].append(run_process(MODULE, paths["dict"], env))
    for key, values in rounds.items():
        if values:
            row[key] = median(values)
    return row


SITE = os.path.join(ROOT, "playbooks", "site.yml")
FLEET_TASK = "Merge everything into one fleet report on the controller"
INVENTORY_SCRIPT = """#!{python}
import sys
if "--host" in sys.argv:
    sys.stdout.write("{{}}")
else:
    with open({path!r}, encoding="utf-8") as handle:
        sys.stdout.write(handle.read())
"""


def site_tasks() -> List[Dict]:
    """site.yml's fleet_report task and the tasks of its play before it (the host lists), as the file has them."""
    with open(SITE, encoding="utf-8") as handle:
        plays = yaml.safe_load(handle)
    for play in plays:
        names = [task.get("name") for task in play.get("tasks", [])]
        if FLEET_TASK in names:
            return play["tasks"][:names.index(FLEET_TASK) + 1]
    raise RuntimeError(f"{SITE} has no task named {FLEET_TASK!r}")


def disk_result(report: Dict) -> Dict:
    """What disk_report registers for a host: its filesystems and the rest of its result."""
    return {"changed": False, "filesystems": report["filesystems"], "text": "", "warnings": [],
            "mail": {"sent": False, "recipients": [], "reason": "send=never"}}


def playbook_files(count: int, work: str) -> Dict[str, str]:
    """An inventory script for *count* hosts with the fleet's registered results, site.yml's task, a reference."""
    inputs = fleet_scale.fleet(count)
    hostvars: Dict[str, Dict] = {host: {} for host in inputs["hosts"]}
    for host, report in inputs["disk_reports"].items():
        hostvars[host]["fleet_disk"] = disk_result(report)
    for host in inputs["failed"]:
        hostvars[host]["fleet_failure"] = inputs["failure_reasons"][host]
    for host in inputs["unreachable"]:
        hostvars[host]["fleet_reach"] = {"unreachable": True, "msg": inputs["failure_reasons"][host]}
    sweepers = list(inputs["sweeps"])
    for sweeper, result in inputs["sweeps"].items():
        hostvars[sweeper] = {"fleet_sweep": dict(result, changed=False)}
    variables = {"fleet_watcher": False, "fleet_mail_send": "never", "fleet_report_dir": os.path.join(work, f"play-{count}")}
    data = {"all": {"hosts": list(hostvars), "vars": variables}, "sweepers": {"hosts": sweepers},
            "_meta": {"hostvars": hostvars}}
    paths = {"data": os.path.join(work, f"inventory-{count}.json"), "inventory": os.path.join(work, f"inventory-{count}.py"),
             "site": os.path.join(work, "fleet_task.yml"), "reference": os.path.join(work, "reference.yml")}
    with open(paths["data"], "w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"))
    with open(paths["inventory"], "w", encoding="utf-8") as handle:
        handle.write(INVENTORY_SCRIPT.format(python=sys.executable, path=paths["data"]))
    os.chmod(paths["inventory"], 0o755)
    play = {"name": "One fleet report, on the controller", "hosts": "all", "gather_facts": False}
    with open(paths["site"], "w", encoding="utf-8") as handle:
        json.dump([dict(play, tasks=site_tasks())], handle)
    with open(paths["reference"], "w", encoding="utf-8") as handle:
        json.dump([dict(play, tasks=[{"name": "Nothing", "ansible.builtin.debug": {"msg": "loaded"},
                                      "run_once": True, "delegate_to": "localhost"}])], handle)
    return paths


def run_playbook(playbook: str, inventory: str, env: Dict[str, str]) -> Dict[str, float]:
    """One whole ansible-playbook command: wall seconds, and CPU of it and everything it started (wait4)."""
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, playbook]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        unused_pid, status, unused_usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    children = os.times()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{playbook} failed ({status}): {text[-3000:]}")
    return {"wall": wall, "cpu_total": children.children_user + children.children_system}


def measure_playbook(count: int, repeat: int, work: str, env: Dict[str, str]) -> Dict:
    """The whole command at *count* hosts, site.yml's fleet task against the reference, medians of *repeat*."""
    paths = playbook_files(count, work)
    rounds: Dict[str, List] = {"site": [], "reference": []}
    for unused in range(repeat):
        for key in ("reference", "site"):
            before = os.times()
            took = run_playbook(paths[key], paths["inventory"], env)
            took["cpu"] = took.pop("cpu_total") - (before.children_user + before.children_system)
            rounds[key].append(took)
    return {"hosts": count, "site": median(rounds["site"]), "reference": median(rounds["reference"])}


def playbook_table(row: Dict) -> None:
    site, ref = row["site"], row["reference"]
    print(f"\nansible-playbook at {row['hosts']:,} hosts (site.yml's fleet_report task, the whole command): "
          f"{site['wall']:.2f} s wall ({site['cpu']:.2f} s CPU); reference (same inventory, one debug task) "
          f"{ref['wall']:.2f} s ({ref['cpu']:.2f} s CPU); the fleet report adds {site['wall'] - ref['wall']:.2f} s "
          f"wall ({site['cpu'] - ref['cpu']:.2f} s CPU); x reference (wall) {site['wall'] / ref['wall']:.2f}")


def table(rows: List[Dict]) -> None:
    print("\n| hosts | filesystems | args (disk_columns; disk_reports as text) | module process, disk_columns: wall (CPU) "
          "| peak RSS | reference: wall (CPU), RSS | × reference (wall, CPU) "
          "| module process, disk_reports as JSON text: wall (CPU), RSS | columns ÷ text (CPU) "
          "| build in-process: wall (CPU) | dicts: wall (CPU), RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        m, ref, b, t = r["module"], r["reference"], r["build"], r["text"]
        dicts = f"{r['dict']['wall']:.2f} s ({r['dict']['cpu']:.2f} s), {r['dict']['rss']:.0f} MB" if "dict" in r else "-"
        print(f"| {r['hosts']:,} | {r['filesystems']:,} | {r['args_mb']:.0f} MB; {r['text_mb']:.0f} MB "
              f"| {m['wall']:.2f} s ({m['cpu']:.2f} s) | {m['rss']:.0f} MB "
              f"| {ref['wall']:.2f} s ({ref['cpu']:.2f} s), {ref['rss']:.0f} MB "
              f"| {m['wall'] / ref['wall']:.2f}, {m['cpu'] / ref['cpu']:.2f} "
              f"| {t['wall']:.2f} s ({t['cpu']:.2f} s), {t['rss']:.0f} MB | {m['cpu'] / t['cpu']:.2f} "
              f"| {b['wall']:.2f} s ({b['cpu']:.2f} s) | {dicts} |")


def growth(rows: List[Dict]) -> None:
    by = {r["hosts"]: r for r in rows}
    if 5000 in by and 20000 in by:
        nlogn = 20000 * math.log(20000) / (5000 * math.log(5000))
        for what, key in (("module process", "module"), ("build in-process", "build"),
                          ("module process, disk_reports as text", "text")):
            for unit in ("wall", "cpu"):
                ratio = by[20000][key][unit] / by[5000][key][unit]
                print(f"growth 5,000 -> 20,000 hosts ({what}, {unit}): {ratio:.2f}x "
                      f"(linear 4.00x, n log n {nlogn:.2f}x, quadratic 16x): "
                      f"{'no worse than n log n' if ratio <= nlogn else 'WORSE than n log n'}")
    if GOAL_HOSTS in by:
        m = by[GOAL_HOSTS]["module"]
        ok = m["wall"] <= GOAL_SECONDS and m["rss"] <= GOAL_MB
        print(f"goal at {GOAL_HOSTS:,} hosts (<= {GOAL_SECONDS:g} s, <= {GOAL_MB} MB in the module process): "
              f"{m['wall']:.2f} s wall, {m['cpu']:.2f} s CPU, {m['rss']:.0f} MB: "
              + ("met" if ok else "met in CPU time, NOT in wall time (the wall time waited for a loaded CPU)"
                 if m["cpu"] <= GOAL_SECONDS and m["rss"] <= GOAL_MB else "NOT met"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="1000,5000,10000,20000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dict-too", default="", help="host counts at which to time dict arguments too")
    parser.add_argument("--keep", help="keep the arguments and reports in this directory")
    parser.add_argument("--playbook", default="10000", help="host counts at which to time the whole ansible-playbook "
                                                            "command (empty: none)")
    parser.add_argument("--playbook-repeat", type=int, default=1)
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",") if n]
    dict_counts = {int(n) for n in args.dict_too.split(",") if n}
    work = args.keep or tempfile.mkdtemp(prefix="bench-fleet-report-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "null_module.py"), "w", encoding="utf-8") as handle:
        handle.write(NULL_MODULE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS] + sys.path), PYTHONDONTWRITEBYTECODE="1")
    rows, plays = [], []
    play_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                    ANSIBLE_HOST_KEY_CHECKING="False")
    try:
        for count in counts:
            print(f"--- {count:,} hosts (load average {os.getloadavg()[0]:.1f})", flush=True)
            rows.append(measure(count, args.repeat, count in dict_counts, work, env))
            r = rows[-1]
            print(f"    module {r['module']['wall']:.2f} s ({r['module']['cpu']:.2f} s CPU, {r['module']['rss']:.0f} MB), "
                  f"reference {r['reference']['wall']:.2f} s, build {r['build']['wall']:.2f} s", flush=True)
        for count in [int(n) for n in args.playbook.split(",") if n]:
            print(f"--- ansible-playbook at {count:,} hosts (load average {os.getloadavg()[0]:.1f})", flush=True)
            plays.append(measure_playbook(count, args.playbook_repeat, work, play_env))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if rows:
        table(rows)
        growth(rows)
    for row in plays:
        playbook_table(row)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
