# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_disk: selection, one view per device, df's numbers, hung mounts, and the watcher's disk check against
hostile mounts made in a private mount namespace (the mount table itself: test__mount_table.py)."""

import email
import email.policy
import errno
import html
import json
import os
import re
import subprocess
import sys
import time

import hostile_mounts
import pytest
from prometheus import parse as parse_metrics, promtool

from ansible_collections.sysops.fleet.plugins.module_utils import _command, _disk, _fanout, _mount_table, _text
from ansible_collections.sysops.fleet.plugins.module_utils._mount_table import Mount

HERE = os.path.dirname(os.path.abspath(__file__))
HUNG_MOUNT = os.path.join(HERE, "hung_mount.py")
COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(list(
    __import__("ansible_collections.sysops.fleet", fromlist=["x"]).__path__)[0])))

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 master:4 - ext4 /dev/vda rw
50 27 0:45 / /mnt/my\040disk rw - xfs /dev/mapper/vg-my\134lv rw
51 27 0:46 / /srv rw - nfs4 nfs1:/export rw,vers=4.2
"""


def ceil_kib(n):
    return -(-n // 1024)


def df_mismatches(fs, blocks, inodes):
    """How a reported filesystem differs from df -P / df -Pi (empty when it is the same)."""
    wrong = []
    fstype, size, used, avail, pct = blocks[fs.mount][1:]
    if fstype != fs.fstype:
        wrong.append(f"type {fs.fstype} != {fstype}")
    for name, ours, theirs in (("size", ceil_kib(fs.size_bytes), size), ("used", ceil_kib(fs.used_bytes), used),
                               ("avail", ceil_kib(fs.avail_bytes), avail)):
        if str(ours) != theirs:
            wrong.append(f"{name} {ours} != {theirs}")
    if f"{fs.use_pct}%" != pct:
        wrong.append(f"use {fs.use_pct}% != {pct}")
    itotal, iused, ipct = (inodes[fs.mount][i] for i in (2, 3, 5))
    if (str(fs.inodes_total), str(fs.inodes_used)) != (itotal, iused):
        wrong.append(f"inodes {fs.inodes_total}/{fs.inodes_used} != {itotal}/{iused}")
    if ("-" if fs.inode_pct is None else f"{fs.inode_pct}%") != ipct:
        wrong.append(f"inode use {fs.inode_pct} != {ipct}")
    return wrong


# ---- selection ---------------------------------------------------------------------------------

@pytest.mark.parametrize("selection,expected", [
    (_disk.Selection(), ["/", "/run/netns", "/mnt/my disk", "/srv"]),
    (_disk.Selection(exclude_fstypes=()), ["/proc", "/", "/run/netns", "/mnt/my disk", "/srv"]),
    (_disk.Selection(exclude_fstypes=("nfs*", "proc")), ["/", "/run/netns", "/mnt/my disk"]),
    (_disk.Selection(exclude_mounts=("/mnt/*", "/run/*")), ["/", "/srv"]),
    (_disk.Selection(include_mounts=("/proc", "/srv")), ["/proc", "/srv"]),  # named: shown whatever the type
    (_disk.Selection(include_mounts=("/*",), exclude_mounts=("/srv",)), ["/proc", "/", "/run/netns", "/mnt/my disk"]),
])
def test_selection_by_mount_and_type_patterns(selection, expected):
    mounts = _mount_table.parse_mountinfo(MOUNTINFO.encode()).mounts
    assert [m.mount for m in mounts if selection.wanted(m)] == expected


def test_default_selection_skips_pseudo_and_memory_filesystems():
    for fstype in ("tmpfs", "devtmpfs", "proc", "sysfs", "overlay", "squashfs", "cgroup2", "devpts", "nsfs"):
        assert not _disk.Selection().wanted(Mount("x", fstype, "/x")), fstype
    for fstype in ("ext4", "xfs", "btrfs", "zfs", "nfs4", "cifs", "fuse.sshfs", "vfat"):
        assert _disk.Selection().wanted(Mount("x", fstype, "/x")), fstype


def test_empty_patterns_are_refused():
    with pytest.raises(_disk.DiskError, match="exclude_mounts: every entry must be a non-empty string"):
        _disk.read_filesystems(_disk.Selection(exclude_mounts=("",)), mounts=[])


def test_patterns_match_a_name_as_it_is_or_as_the_report_shows_it():
    odd = Mount("tmpfs", "tmpfs", "/mnt/a\x0bb\udcff")
    assert _disk.Selection(include_mounts=("/mnt/a\\x0bb\\xff",)).wanted(odd)
    assert _disk.Selection(include_mounts=("/mnt/a\x0bb*",)).wanted(odd)
    assert not _disk.Selection(include_mounts=("/*",), exclude_mounts=("/mnt/a\\x0b*",)).wanted(odd)
    assert not _disk.Selection(include_mounts=("/mnt/a\\x0bc",)).wanted(odd)


def test_an_overmounted_mount_point_is_reported_once_as_its_top_mount():
    mounts = [Mount("tmpfs", "tmpfs", "/mnt", dev="0:50"), Mount("/dev/sdb", "ext4", "/mnt", dev="8:16")]
    assert _disk.visible(mounts) == [mounts[1]]


# ---- one view per device, files and vanished mounts dropped -------------------------------------

def vfs(blocks=1000, bfree=400, bavail=300, files=100, ffree=60, is_dir=1, frsize=4096):
    return {"is_dir": is_dir, "frsize": frsize, "blocks": blocks, "bfree": bfree, "bavail": bavail,
            "files": files, "ffree": ffree}


def test_file_bind_mounts_and_duplicate_views_of_a_device_are_dropped():
    probed = [
        (Mount("/dev/vda", "ext4", "/run/netns", root="/run/netns", dev="254:0"), vfs(), None),
        (Mount("/dev/vda", "ext4", "/", dev="254:0"), vfs(), None),
        (Mount("/dev/vdb", "ext4", "/etc/hosts", root="/containers/1/hosts", dev="254:16"), vfs(is_dir=0), None),
        (Mount("/dev/vdb", "ext4", "/etc/resolv.conf", root="/containers/1/resolv", dev="254:16"), vfs(is_dir=0), None),
        (Mount("/dev/vdc", "xfs", "/data", root="/volumes/x/_data", dev="254:32"), vfs(), None),
        (Mount("/dev/sda2", "btrfs", "/home", root="/@home", dev="0:33"), vfs(), None),
        (Mount("/dev/sda2", "btrfs", "/h", root="/@", dev="0:32"), vfs(), None),
    ]
    kept = _disk.keep(probed)
    assert [(fs.device, fs.mount) for fs in kept] == [("/dev/vda", "/"), ("/dev/vdc", "/data"), ("/dev/sda2", "/h")]


def test_a_probed_view_wins_over_one_that_timed_out():
    probed = [(Mount("srv:/a", "nfs", "/a", dev="0:60"), None, "probe timed out after 1s"),
              (Mount("srv:/a", "nfs", "/mnt/a/long", dev="0:60"), vfs(), None)]
    assert [fs.mount for fs in _disk.keep(probed)] == ["/mnt/a/long"]


def test_vanished_and_empty_filesystems_are_dropped_and_other_errors_reported():
    probed = [(Mount("a", "ext4", "/gone", dev="1:1"), {"errno": errno.ENOENT}, None),
              (Mount("b", "ext4", "/empty", dev="1:2"), vfs(blocks=0, bfree=0, bavail=0), None),
              (Mount("c", "nfs", "/stale", dev="1:3"), {"errno": errno.ESTALE}, None),
              (Mount("d", "ext4", "/secret", dev="1:4"), {"errno": errno.EACCES}, None)]
    kept = _disk.keep(probed)
    assert [(fs.mount, fs.error) for fs in kept] == [
        ("/stale", "cannot read usage: Stale file handle"), ("/secret", "cannot read usage: Permission denied")]
    assert kept[0].size_bytes is None and kept[0].use_pct is None


def test_a_fuse_source_naming_a_real_device_never_hides_it():
    """fusermount -o fsname=/dev/vdb: the source is the user's word; only the kernel's device number joins views."""
    probed = [(Mount("/dev/vdb", "ext4", "/srv/data", dev="254:16"), vfs(), None),
              (Mount("/dev/vdb", "fuse.sshfs", "/t", dev="0:90"), vfs(blocks=10), None),
              (Mount("/dev/vdb", "fuseblk", "/u", dev="0:91"), vfs(blocks=20), None)]
    kept = _disk.keep(probed)
    assert [(fs.mount, fs.size_bytes) for fs in kept] == [("/srv/data", 4096000), ("/t", 40960), ("/u", 81920)]


# ---- the numbers -------------------------------------------------------------------------------

def test_usage_follows_df_reserved_blocks_and_rounding_up():
    fs = _disk.usage(Mount("/dev/x", "ext4", "/x"), vfs(blocks=1000, bfree=400, bavail=350, files=1000, ffree=999))
    assert (fs.size_bytes, fs.used_bytes, fs.avail_bytes) == (4096000, 2457600, 1433600)
    assert fs.use_pct == 64  # 600 / (600 + 350) = 63.2 -> 64, as df: reserved blocks count for nobody
    assert (fs.inodes_total, fs.inodes_used, fs.inode_pct) == (1000, 1, 1)


def test_a_filesystem_without_inode_counts_has_no_inode_percentage():
    fs = _disk.usage(Mount("/dev/x", "btrfs", "/x"), vfs(files=0, ffree=0))
    assert fs.inodes_total == 0 and fs.inode_pct is None


@pytest.mark.parametrize("part,whole,pct", [(0, 100, 0), (1, 1000, 1), (800, 1000, 80), (801, 1000, 81),
                                            (1000, 1000, 100), (5, 0, None)])
def test_percentages_round_up(part, whole, pct):
    assert _disk.ceil_pct(part, whole) == pct


@pytest.mark.alone  # other tests write files while df and the report are compared
def test_numbers_are_the_ones_df_prints_on_this_machine(df):
    """Every filesystem df -P shows (all types), with our numbers, compared when the disk is quiet."""
    for attempt in range(20):
        before, ibefore = df(), df(inodes=True)
        ours = _disk.read_filesystems(_disk.Selection(exclude_fstypes=()))
        after, iafter = df(), df(inodes=True)
        if (before, ibefore) == (after, iafter):
            break
        time.sleep(0.05)
    else:
        pytest.fail("df's numbers changed during every one of 20 attempts")
    assert ours and "/" in [fs.mount for fs in ours]
    for fs in ours:
        assert fs.mount in before, f"{fs.mount} is reported but df -P does not show it"
        assert fs.error is None
        assert df_mismatches(fs, before, ibefore) == [], fs.mount
    reported = {os.stat(fs.mount).st_dev for fs in ours}
    for mount in set(before) - {fs.mount for fs in ours}:
        st = os.stat(mount)
        assert not os.path.isdir(mount) or st.st_dev in reported, f"df shows {mount}, we do not"


def test_default_report_is_dfs_non_pseudo_filesystems(df):
    ours = {fs.mount for fs in _disk.read_filesystems()}
    wanted = {m for m, row in df().items() if _disk.Selection().wanted(Mount(row[0], row[1], m))}
    assert ours <= wanted and "/" in ours


# ---- hung mounts -------------------------------------------------------------------------------

def blocking_prober(hung):
    def prober(path):
        if path in hung:
            time.sleep(3600)  # a stale NFS server: the probe never returns
        return vfs()
    return prober


def test_a_probe_that_never_returns_is_reported_as_timed_out_in_bounded_time():
    mounts = [Mount("/dev/vda", "ext4", "/", dev="254:0"), Mount("nfs1:/a", "nfs4", "/mnt/a", dev="0:70"),
              Mount("nfs1:/b", "nfs4", "/mnt/b", dev="0:71"), Mount("/dev/vdb", "xfs", "/srv", dev="254:16")]
    started = time.monotonic()
    result = _disk.read_filesystems(timeout=0.5, mounts=mounts, prober=blocking_prober({"/mnt/a", "/mnt/b"}))
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"took {elapsed:.1f}s"  # both hung mounts wait in parallel: one worker each
    by_mount = {fs.mount: fs for fs in result}
    assert list(by_mount) == ["/", "/mnt/a", "/mnt/b", "/srv"]
    for hung in ("/mnt/a", "/mnt/b"):
        assert "timed out after 0.5s" in by_mount[hung].error and by_mount[hung].size_bytes is None
    assert by_mount["/srv"].error is None and by_mount["/srv"].size_bytes == 4096000


def test_a_probe_that_crashes_is_reported_not_raised():
    def prober(path):
        if path == "/bad":
            os._exit(3)
        return vfs()
    result = _disk.read_filesystems(mounts=[Mount("a", "ext4", "/bad", dev="1:1"), Mount("b", "ext4", "/ok", dev="1:2")],
                                    prober=prober, workers=1)
    assert "probe failed: worker process exited with code 3" in result[0].error
    assert result[1].error is None


def test_local_filesystems_share_one_task_network_mounts_get_their_own():
    mounts = [Mount("a", "ext4", "/", dev="1:1"), Mount("s:/x", "nfs4", "/x", dev="0:2"),
              Mount("b", "xfs", "/srv", dev="1:2"), Mount("h", "fuse.sshfs", "/h", dev="0:3")]
    assert _disk.batches(mounts) == [[0, 2], [1], [3]]
    assert [_disk.default_workers(n) for n in (1, 3, 9)] == [1, 3, 4]


def test_a_hung_local_filesystem_is_found_by_probing_the_batch_again_one_by_one():
    mounts = [Mount("/dev/vda", "ext4", "/", dev="254:0"), Mount("/dev/vdb", "ext4", "/dying", dev="254:16"),
              Mount("/dev/vdc", "xfs", "/srv", dev="254:32")]
    started = time.monotonic()
    result = _disk.read_filesystems(timeout=0.5, mounts=mounts, prober=blocking_prober({"/dying"}))
    assert time.monotonic() - started < 3  # the batch's timeout, then the lone retry's
    assert [(fs.mount, fs.error is None) for fs in result] == [("/", True), ("/dying", False), ("/srv", True)]
    assert "timed out after 0.5s" in result[1].error


@pytest.mark.parametrize("kwargs,message", [
    ({"timeout": 0}, "probe_timeout must be more than 0"),
    ({"timeout": 601}, "at most 600 seconds"),
    ({"workers": 0}, "workers must be between 1 and 256"),
])
def test_bad_numbers_are_refused(kwargs, message):
    with pytest.raises(_disk.DiskError, match=message):
        _disk.read_filesystems(mounts=[Mount("a", "ext4", "/", dev="1:1")], **kwargs)


def run_with_hung_mounts(tmp_path, count, code):
    """Run *code* in a child that sees *count* real hung FUSE mounts; skip where they cannot be made."""
    argv = [sys.executable, HUNG_MOUNT, "--count", str(count), "--dir", str(tmp_path), "--",
            sys.executable, "-c", code]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS] + sys.path))
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), time.monotonic() - started


REPORT_CODE = """
import json, os, time
from ansible_collections.sysops.fleet.plugins.module_utils import _disk
started = time.monotonic()
found = _disk.read_filesystems(timeout=1)
print(json.dumps({"elapsed": time.monotonic() - started, "hung": os.environ["HUNG_MOUNTS"].split(":"),
                  "filesystems": [fs.as_dict() for fs in found]}))
"""


def test_real_hung_fuse_mounts_do_not_hang_the_report(tmp_path):
    """Three FUSE mounts whose server never answers: statvfs blocks in the kernel, like stale NFS."""
    out, wall = run_with_hung_mounts(tmp_path, 3, REPORT_CODE)
    assert out["elapsed"] < 3, out["elapsed"]  # one timeout of 1 s, the three waited in parallel
    assert wall < 20
    by_mount = {fs["mount"]: fs for fs in out["filesystems"]}
    for hung in out["hung"]:
        assert by_mount[hung]["error"].startswith("probe timed out after 1s"), by_mount[hung]
        assert by_mount[hung]["fstype"] == "fuse.hung" and by_mount[hung]["size_bytes"] is None
    assert by_mount["/"]["error"] is None and by_mount["/"]["size_bytes"] > 0
    assert os.listdir(tmp_path) == []  # the helper removed its mount points


def test_fan_out_error_is_raised_for_no_workers(monkeypatch):
    def refuse(*args, **kwargs):
        raise _fanout.FanOutError("cannot start a worker process")
    monkeypatch.setattr(_fanout, "fan_out", refuse)
    with pytest.raises(_fanout.FanOutError):
        _disk.read_filesystems(mounts=[Mount("a", "ext4", "/", dev="1:1")], prober=_disk.probe)


# ---- the df probe ------------------------------------------------------------------------------

DF = ["/usr/bin/df", "-B1", "--output=size,used,avail,itotal,iused", "--", "/.", "/etc/hosts/.", "/srv/."]
HEADER = "   1B-blocks        Used       Avail   Inodes  IUsed"


def test_df_rows_and_error_lines_are_matched_to_their_mount_points():
    output = ("/usr/bin/df: /etc/hosts/.: Not a directory\n" + HEADER + "\n"
              "409600 245760 143360 1000 1\n4096000 0 4096000 - -\n")
    got = _disk.parse_df(output, DF, 1)
    assert got[1] == {"errno": errno.ENOTDIR}
    fs = _disk.usage(Mount("/dev/x", "ext4", "/"), got[0])
    assert (fs.size_bytes, fs.used_bytes, fs.avail_bytes, fs.use_pct) == (409600, 245760, 143360, 64)
    assert (fs.inodes_total, fs.inodes_used, fs.inode_pct) == (1000, 1, 1)
    srv = _disk.usage(Mount("/dev/y", "xfs", "/srv"), got[2])
    assert (srv.size_bytes, srv.inodes_total, srv.inode_pct) == (4096000, 0, None)


def test_df_negative_counts_are_clamped_as_statvfs_ones_are():
    got = _disk.parse_df(HEADER + "\n1000 -5 -20 10 3\n", DF[:5], 0)[0]
    fs = _disk.usage(Mount("/dev/x", "ext4", "/"), got)
    assert (fs.size_bytes, fs.used_bytes, fs.avail_bytes, fs.use_pct) == (1000, 0, 0, None)


@pytest.mark.parametrize("output,rc", [
    (HEADER + "\n1 0 1 1 0\n1 0 1 1 0\n", 0),                       # a row missing
    (HEADER + "\n1 0 1 1 0\n1 0 1 1 0\n1 0 1 1 0\n", 1),           # exit 1 and no error line
    ("df: /srv/.: Transport endpoint is not connected\n" + HEADER + "\n1 0 1 1 0\n1 0 1 1 0\n", 0),
    ("/usr/bin/df: /srv/.: something df made up\n1 0 1 1 0\n1 0 1 1 0\n", 1),
    ("/usr/bin/df: unrecognized option '--output=size'\nBusyBox v1.36 multi-call binary.\n", 1),
    ("1 0 1 1 0\n1 0 1\n", None),                                    # killed half-way
])
def test_df_output_that_cannot_be_matched_line_by_line_is_refused(output, rc):
    assert _disk.parse_df(output, DF, rc) is None


def test_one_mount_df_errors_are_understood_however_the_name_is_quoted():
    argv = DF[:4] + ["/mnt/a\nb/."]
    got = _disk.parse_df("df: '/mnt/a'$'\\n''b/.': Permission denied\n", argv, 1)
    assert got == [{"errno": errno.EACCES}]


FAKE_DF = """#!{python}
import sys, time
paths = sys.argv[sys.argv.index("--") + 1:]
print("   1B-blocks        Used       Avail   Inodes  IUsed")
for path in paths:
    if "hung" in path:
        time.sleep(3600)
    if "odd" in path:
        sys.exit("df: cannot read table of mounted file systems")
for path in paths:
    print("4096000 2457600 1433600 1000 1")
"""


@pytest.fixture
def fake_df(tmp_path):
    script = tmp_path / "df"
    script.write_text(FAKE_DF.format(python=sys.executable))
    script.chmod(0o755)
    return str(script)


@pytest.mark.alone  # a fake df that hangs, against the probe timeout
def test_df_probe_batches_local_mounts_and_retries_a_hung_batch_one_mount_per_call(fake_df, monkeypatch):
    calls = []
    real = _command.run_many

    def recording(argvs, **kwargs):
        argvs = list(argvs)
        calls.append([a[a.index("--") + 1:] for a in argvs])
        return real(argvs, **kwargs)
    monkeypatch.setattr(_command, "run_many", recording)
    mounts = [Mount("/dev/vda", "ext4", "/", dev="254:0"), Mount("/dev/vdb", "ext4", "/hung", dev="254:16"),
              Mount("s:/x", "nfs4", "/x", dev="0:2"), Mount("/dev/vdc", "xfs", "/srv", dev="254:32")]
    started = time.monotonic()
    results = _disk.df_probe_mounts(mounts, 0.5, df=fake_df)
    assert time.monotonic() - started < 4  # the batch's timeout, then the lone retry's
    assert calls == [[["/.", "/hung/.", "/srv/."], ["/x/."]], [["/."], ["/hung/."], ["/srv/."]]]
    assert results[1] == (None, _disk._describe("timed out", 0.5))
    for i in (0, 2, 3):
        assert results[i] == (_disk._df_row(["4096000", "2457600", "1433600", "1000", "1"]), None)


def test_a_df_answer_we_do_not_understand_falls_back_to_statvfs_workers(fake_df, tmp_path):
    odd = tmp_path / "odd"
    odd.mkdir()
    mounts = [Mount("/dev/vda", "ext4", "/", dev="254:0"), Mount("/dev/vdb", "ext4", str(odd), dev="254:16")]
    results = _disk.df_probe_mounts(mounts, 5, df=fake_df)
    assert results[0][0]["blocks"] == 4096000  # from df
    assert results[1][1] is None and results[1][0]["frsize"] > 1  # from statvfs (df's rows have frsize 1)


def test_without_df_the_report_uses_statvfs_workers(monkeypatch):
    def missing(name):
        raise _command.MissingBinaryError(name)
    monkeypatch.setattr(_command, "which", missing)
    used = []
    real = _fanout.fan_out
    monkeypatch.setattr(_fanout, "fan_out", lambda *args, **kwargs: used.append(1) or real(*args, **kwargs))
    result = _disk.read_filesystems(mounts=[Mount("/dev/vda", "ext4", "/", dev="254:0")])
    assert used and result[0].mount == "/" and result[0].size_bytes > 0


def test_the_default_probe_is_df_and_forks_no_python_worker(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("fan_out was called")
    monkeypatch.setattr(_fanout, "fan_out", refuse)
    result = _disk.read_filesystems(mounts=[Mount("/dev/vda", "ext4", "/", dev="254:0")])
    assert result[0].error is None and result[0].size_bytes > 0


# ---- the watcher's disk check against hostile mounts in a private mount namespace ----------------

HOSTILE_MOUNTS = os.path.join(HERE, "hostile_mounts.py")
# findmnt (util-linux, its own mountinfo parser) lists the table in the same namespace, odd bytes as \xHH
FINDMNT = 'LC_ALL=C findmnt -rn -o TARGET,SOURCE,FSTYPE > "$0" && exec "$@"'
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts in a private mount namespace need root")

WATCHER_CODE = """
import json, logging, sys, time
from ansible_collections.sysops.fleet.plugins.module_utils import _metrics, _report, _watcher
base, port, state = sys.argv[1:4]
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
mail = {"mail_to": ["ops@example.com"], "mail_from": "watcher@example.com", "smtp_host": "127.0.0.1",
        "smtp_port": int(port), "smtp_timeout": 5, "spool_dir": state + "/spool"} if port != "0" else {}
config = _report.config_from_options(dict(include_mounts=["/", base + "/*"], free_warn="1P", probe_timeout=1,
                                          **mail), host="web1")
watcher = _watcher.Watcher(_watcher.Settings(path=state + "/watcher.ini", state_dir=state, report=config))
now = time.time()
changes = watcher.check_disks(now)
delivery = watcher.alert(changes, now)
print(json.dumps({"state": watcher.state["disks"], "changes": [c.name for c in changes],
                  "sent": bool(delivery and delivery.sent),
                  "metrics": _metrics.render(_metrics.filesystem_metrics(watcher._rows, {}))}))
"""


def run_watcher_check(tmp_path, wrapper, port):
    """(the check's findings, its log) from WATCHER_CODE run under *wrapper*; skip where it cannot run."""
    state = tmp_path / "state"
    state.mkdir()
    argv = list(wrapper) + [sys.executable, "-c", WATCHER_CODE, str(tmp_path / "m"), str(port), str(state)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS] + sys.path))
    proc = subprocess.run(argv, capture_output=True, text=True, errors="surrogateescape", env=env, timeout=120,
                          check=False)
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def findmnt_shown(path, base):
    """The mount points findmnt listed at / and under *base*, as a report must show them."""
    def unhex(field):
        return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes((int(m.group(1), 16),)), field)
    under = os.fsencode(base) + b"/"
    targets = [unhex(line.split(b" ")[0]) for line in path.read_bytes().splitlines()]
    return {_text.printable(t) for t in targets if t == b"/" or t.startswith(under)}


@needs_root
def test_the_watchers_disk_check_keys_alerts_and_labels_hostile_mounts_by_their_escaped_names(tmp_path, smtpd):
    """Every filesystem of the table is a state key, an alert and a metrics label under its escaped name; the
    alert mail and the log carry no raw control character. Before: the non-UTF-8 and line-break names vanished
    or broke the mail, and / was keyed under the forged line's device."""
    server = smtpd()
    base = str(tmp_path / "m")
    wrapper = [sys.executable, HOSTILE_MOUNTS, "--dir", base, "--fuse", "--", "sh", "-c", FINDMNT,
               str(tmp_path / "findmnt")]
    found, log = run_watcher_check(tmp_path, wrapper, server.port)
    expected = findmnt_shown(tmp_path / "findmnt", base)
    assert len(expected) == len(hostile_mounts.plan(base, fuse=True)) + 1
    assert set(found["state"]) == expected and sorted(found["changes"]) == sorted(expected)
    fuse = found["state"][_text.printable(base) + "/fuse-\\rx"]
    assert fuse["status"] == "crit" and "timed out after 1s" in fuse["reasons"][0]
    assert all(line.isprintable() for line in log.splitlines()) and "is not a mount" not in log

    assert found["sent"] and len(server.messages) == 1
    msg = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert msg["Subject"].isprintable() and msg["Subject"].startswith("[fleet-watcher] web1: problem: ")
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    page = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert all(line.isprintable() for line in text.split("\n") + page.split("\n"))
    for name in expected:
        assert f"  filesystem {name}: ok -> " in text and html.escape(f"filesystem {name}: ok -> ") in page

    samples = parse_metrics(found["metrics"])
    assert {dict(labels)["mount"] for (name, labels) in samples if name.endswith("filesystem_status")} == expected
    assert all(line.isprintable() for line in found["metrics"].splitlines())
    checked = promtool("check", "metrics", stdin=found["metrics"])
    assert checked.returncode == 0, checked.stdout + checked.stderr


CRAFTED_TABLE = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /proc/$$/mountinfo && exec "$@"']


@needs_root
def test_the_watcher_logs_each_line_of_the_mount_table_it_cannot_read(tmp_path):
    with open("/proc/self/mountinfo", "rb") as handle:
        real = handle.read().split(b"\n")
    crafted = tmp_path / "mountinfo"
    crafted.write_bytes(b"\n".join(real[:1] + [b"\x1b[2Jnot a mount\r", b"1 2 3:4 / relative rw - ext4 x rw"]
                                   + real[1:]))
    found, log = run_watcher_check(tmp_path, CRAFTED_TABLE + [str(crafted)], 0)
    assert "/" in found["state"]
    assert ("WARNING /proc/self/mountinfo line 2 is not a mount as the kernel writes one (no ' - ' after the mount "
            "options), so a filesystem may be missing from the report: \\x1b[2Jnot a mount\\r") in log.splitlines()
    assert "/proc/self/mountinfo line 3 is not a mount as the kernel writes one (the mount point is not an " \
           "absolute path)" in log
