# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""watcher_files as Ansible runs it (a separate process), on real files in a temp directory.

As root (the role's case) the owner tests use the real user ``nobody``; the
hostile cases are what someone with write access to one of the directories
could leave there: links in place of files and directories, FIFOs, and
options that must be refused before anything is written.
"""

import base64
import os
import pwd
import stat
import threading

import pytest
import yaml

import module_runner
from ansible_collections.sysops.fleet.plugins.modules import watcher_files

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def run(tmp_path, check=False, diff=False, **args):
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    rc, out, unused = module_runner.run_module(watcher_files, tmp_path, **args)
    return rc, out


def layout(root):
    return dict(
        parents=[str(root / "p"), str(root / "p" / "q")],
        directories=[{"path": str(root / "p" / "q" / "bin"), "mode": "0755"},
                     {"path": str(root / "p" / "q" / "etc"), "mode": "0750"}],
        files=[{"path": str(root / "p" / "q" / "bin" / "prog"), "content": base64.b64encode(b"\x00\x01prog").decode(),
                "encoding": "base64", "mode": "0755"},
               {"path": str(root / "p" / "q" / "etc" / "w.ini"), "content": "interval = 5\n", "mode": "0640",
                "diff": True}],
        links=[{"path": str(root / "p" / "prog"), "target": str(root / "p" / "q" / "bin" / "prog")}],
    )


def test_puts_everything_in_place_then_changes_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = layout(root)
    rc, out = run(tmp_path, **args)
    assert rc == 0 and out["changed"], out
    q = root / "p" / "q"
    assert out["changed_paths"] == [str(root / "p"), str(q), str(q / "bin"), str(q / "etc"), str(q / "bin" / "prog"),
                                    str(q / "etc" / "w.ini"), str(root / "p" / "prog")]
    assert (q / "bin" / "prog").read_bytes() == b"\x00\x01prog"
    assert stat.S_IMODE((q / "bin" / "prog").stat().st_mode) == 0o755
    assert stat.S_IMODE((q / "etc").stat().st_mode) == 0o750
    assert stat.S_IMODE((q / "etc" / "w.ini").stat().st_mode) == 0o640
    assert os.readlink(root / "p" / "prog") == str(q / "bin" / "prog")
    rc, out = run(tmp_path, **args)
    assert rc == 0 and out["changed"] is False and out["changed_paths"] == [], out


def test_check_mode_reports_and_touches_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    rc, out = run(tmp_path, check=True, **layout(root))
    assert rc == 0 and out["changed"] and len(out["changed_paths"]) == 7, out
    assert list(root.iterdir()) == []


def test_only_the_mode_changed_keeps_the_content_and_reports_the_file(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = layout(root)
    run(tmp_path, **args)
    ini = root / "p" / "q" / "etc" / "w.ini"
    os.chmod(ini, 0o666)
    inode = ini.stat().st_ino
    rc, out = run(tmp_path, **args)
    assert rc == 0 and out["changed_paths"] == [str(ini)], out
    assert stat.S_IMODE(ini.stat().st_mode) == 0o640 and ini.stat().st_ino == inode


def test_diff_shows_the_old_and_new_text_of_files_that_ask_for_it(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = layout(root)
    run(tmp_path, **args)
    ini = root / "p" / "q" / "etc" / "w.ini"
    ini.write_text("interval = 60\nan older, longer file\n")
    rc, out = run(tmp_path, diff=True, **args)
    assert rc == 0, out
    assert out["diff"] == [{"before_header": str(ini), "after_header": str(ini),
                            "before": "interval = 60\nan older, longer file\n", "after": "interval = 5\n"}]


def test_a_link_planted_in_place_of_a_file_is_replaced_never_followed(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = layout(root)
    run(tmp_path, **args)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.chmod(victim, 0o600)
    ini = root / "p" / "q" / "etc" / "w.ini"
    ini.unlink()
    ini.symlink_to(victim)
    rc, out = run(tmp_path, **args)
    assert rc == 0 and out["changed_paths"] == [str(ini)], out
    assert not ini.is_symlink() and ini.read_text() == "interval = 5\n"
    assert victim.read_text() == "precious\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600


def test_a_fifo_in_place_of_a_file_is_replaced_without_blocking(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = layout(root)
    run(tmp_path, **args)
    ini = root / "p" / "q" / "etc" / "w.ini"
    ini.unlink()
    os.mkfifo(ini)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=run(tmp_path, **args)))
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the module so the test run can end, then fail
        with open(ini, "wb"):
            pass
        worker.join(30)
        pytest.fail("the module blocked on a FIFO")
    rc, out = result["out"]
    assert rc == 0 and out["changed_paths"] == [str(ini)], out
    assert stat.S_ISREG(os.lstat(ini).st_mode) and ini.read_text() == "interval = 5\n"


def test_a_link_in_place_of_a_directory_is_refused_and_its_target_untouched(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (root / "p" / "q").mkdir(parents=True)
    (root / "p" / "q" / "bin").symlink_to(elsewhere)
    rc, out = run(tmp_path, **layout(root))
    assert rc == 1, out
    assert out["msg"] == f"{root}/p/q/bin is a symbolic link, not a directory: remove it or choose another path"
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700 and list(elsewhere.iterdir()) == []


def test_a_file_in_place_of_a_link_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = layout(root)
    (root / "p").mkdir()
    (root / "p" / "prog").write_text("not a link\n")
    rc, out = run(tmp_path, **args)
    assert rc == 1, out
    assert out["msg"] == f"{root}/p/prog is a regular file, not a symbolic link: remove it to let the link be made"
    assert (root / "p" / "prog").read_text() == "not a link\n"


def test_a_file_whose_directory_is_missing_is_left_out_when_asked(tmp_path):
    rc, out = run(tmp_path, files=[{"path": str(tmp_path / "no-logrotate.d" / "sysops-fleet"), "content": "x\n",
                                    "mode": "0644", "only_if_directory_exists": True}])
    assert rc == 0 and out["changed"] is False, out
    assert out["absent_directories"] == [str(tmp_path / "no-logrotate.d" / "sysops-fleet")]
    assert not (tmp_path / "no-logrotate.d").exists()


def test_remove_takes_a_tree_and_a_link_but_not_what_the_link_points_to(tmp_path):
    old = tmp_path / "lib"
    (old / "sysops_fleet_core").mkdir(parents=True)
    (old / "sysops_fleet_core" / "_command.py").write_text("# old\n")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data").write_text("kept\n")
    (old / "sysops_fleet_core" / "escape").symlink_to(keep)
    link = tmp_path / "link"
    link.symlink_to(keep)
    rc, out = run(tmp_path, remove=[str(old), str(link), str(tmp_path / "never-was")])
    assert rc == 0 and out["changed_paths"] == [str(old), str(link)], out
    assert not os.path.lexists(old) and not os.path.lexists(link)
    assert (keep / "data").read_text() == "kept\n"


@as_root
def test_owner_and_group_are_set_and_a_wrong_owner_is_put_right(tmp_path):
    nobody = pwd.getpwnam("nobody")
    path = tmp_path / "owned"
    entry = {"path": str(path), "content": "x\n", "mode": "0640", "owner": "nobody", "group": str(nobody.pw_gid)}
    rc, out = run(tmp_path, files=[entry], directories=[{"path": str(tmp_path / "d"), "owner": "nobody"}])
    assert rc == 0, out
    assert (path.stat().st_uid, path.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert (tmp_path / "d").stat().st_uid == nobody.pw_uid
    os.chown(path, 0, 0)
    rc, out = run(tmp_path, files=[entry])
    assert rc == 0 and out["changed_paths"] == [str(path)], out
    assert path.stat().st_uid == nobody.pw_uid


HOSTILE = [
    ({"files": [{"content": "x", "mode": "rwx"}]}, "{f}: mode must be octal such as '0644', got 'rwx'"),
    ({"files": [{"content": "x", "mode": "0x1ff"}]}, "{f}: mode must be octal such as '0644', got '0x1ff'"),
    ({"files": [{"content": "x", "mode": "-1"}]}, "{f}: mode '-1' is out of range"),
    ({"files": [{"content": "x"}]}, "missing required arguments: mode found in files"),
    ({"files": [{"content": "x", "mode": "17777"}]}, "{f}: mode '17777' is out of range"),
    ({"files": [{"content": "not base64!", "encoding": "base64", "mode": "0644"}]}, "{f}: content is not valid base64"),
    ({"files": [{"content": "x", "mode": "0644", "owner": "no-such-user-sysops"}]},
     "{f}: owner 'no-such-user-sysops' does not exist"),
    ({"files": [{"content": "x", "mode": "0644", "group": "no-such-group-sysops"}]},
     "{f}: group 'no-such-group-sysops' does not exist"),
    ({"directories": [{"path": "relative/dir"}]}, "'relative/dir' is not an absolute path: give every path from /"),
    ({"links": [{"path": "rel-link", "target": "/x"}]}, "'rel-link' is not an absolute path: give every path from /"),
]


@pytest.mark.parametrize("bad,message", HOSTILE, ids=[m.split(": ")[-1][:40] for _b, m in HOSTILE])
def test_hostile_input_is_refused_before_anything_is_written(tmp_path, bad, message):
    target = tmp_path / "out" / "file"
    first = {"path": str(tmp_path / "out"), "mode": "0755"}
    args = {"directories": [first] + bad.get("directories", []), "links": bad.get("links", []),
            "files": [{"path": str(tmp_path / "good"), "content": "written first?\n", "mode": "0644"}]
            + [dict({"path": str(target)}, **f) for f in bad.get("files", [])]}
    rc, out = run(tmp_path, **args)
    assert rc == 1, out
    assert out["msg"] == message.format(f=target)
    assert out.get("changed_paths", []) == []  # (Ansible's own argument checks return no changed_paths)
    assert not (tmp_path / "out").exists() and not (tmp_path / "good").exists()


def test_documentation_lists_every_option_of_the_argument_spec():
    doc = yaml.safe_load(watcher_files.DOCUMENTATION)
    assert set(doc["options"]) == {"parents", "directories", "files", "links", "remove"}
    assert set(doc["options"]["files"]["suboptions"]) == {"path", "content", "encoding", "mode", "owner", "group",
                                                          "only_if_directory_exists", "diff"}
    returned = yaml.safe_load(watcher_files.RETURN)
    assert set(returned) == {"changed_paths", "absent_directories"}
