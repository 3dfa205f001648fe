# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/clean.sh decides what to remove; its decisions, tested alone, touching nothing real.

The tests source clean.sh in bash (its main() runs only when it is executed) and call its
functions with canned podman output, a fake ``podman`` and a fake ``crontab`` first on PATH
(they record what they were asked to do), a home directory, a demo prefix and an images lock
of their own. Nothing of this machine's podman, crontab or /run/lock is read or changed.

* an image is removed only if no container was made from it, and none while any run holds
  the images lock (the molecule run of another clone that failed with "Can't pull image");
* the demo's watcher is removed only if this clone installed it, and without .venv its
  daemon is stopped and its crontab entries (only those) removed;
* hold_images_lock holds the lock for as long as the process it names lives.
"""

import os
import subprocess
import textwrap
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLEAN = os.path.join(ROOT, "scripts", "clean.sh")
LIB = os.path.join(ROOT, "scripts", "lib.sh")


def bash(script, tmp_path, *args, env=None, check=True):
    """Run *script* in bash after sourcing clean.sh, with a home, PATH and images lock in *tmp_path*."""
    environ = dict(os.environ, HOME=str(tmp_path / "home"), SYSOPS_FLEET_IMAGES_LOCK=str(tmp_path / "images.lock"),
                   PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", **(env or {}))
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "bin").mkdir(exist_ok=True)
    proc = subprocess.run(["bash", "-c", f"source {CLEAN}\n{script}", "test", *args], env=environ,
                          capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def fake(tmp_path, name, body):
    """A fake command on the test's PATH that logs its arguments to tmp_path/NAME.log."""
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/bash\necho \"$*\" >> {tmp_path / (name + '.log')}\n{body}\n")
    path.chmod(0o755)


IMAGES = textwrap.dedent("""\
    localhost/sysops-fleet-molecule:bookworm 1111111111111111
    localhost/sysops-fleet-molecule:trixie 2222222222222222
    localhost/sysops-fleet-host:bookworm 3333333333333333
    docker.io/library/debian:12 4444444444444444""")


@pytest.mark.parametrize("containers,removable", [
    ("", ["localhost/sysops-fleet-molecule:bookworm", "localhost/sysops-fleet-molecule:trixie",
          "localhost/sysops-fleet-host:bookworm"]),
    ("localhost/sysops-fleet-molecule:trixie 2222222222222222",
     ["localhost/sysops-fleet-molecule:bookworm", "localhost/sysops-fleet-host:bookworm"]),
    ("sha256:333333333333 333333333333", ["localhost/sysops-fleet-molecule:bookworm", "localhost/sysops-fleet-molecule:trixie"]),
    ("docker.io/library/debian:12 4444444444444444\nlocalhost/sysops-fleet-host:bookworm 3333333333333333",
     ["localhost/sysops-fleet-molecule:bookworm", "localhost/sysops-fleet-molecule:trixie"]),
])
def test_an_image_a_container_was_made_from_is_never_removable(containers, removable, tmp_path):
    out = bash('removable_images "$1" "$2"', tmp_path, IMAGES, containers).stdout.split()
    assert out == removable


def podman_fake(tmp_path, containers=""):
    fake(tmp_path, "podman", textwrap.dedent(f"""\
        case "$1" in
            images) printf '%s\\n' {' '.join(repr(line) for line in IMAGES.splitlines())} ;;
            ps) printf '%s\\n' {repr(containers)} ;;
        esac"""))


def rmi_calls(tmp_path):
    log = tmp_path / "podman.log"
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("rmi")] if log.exists() else []


def test_images_no_container_uses_are_removed_while_no_run_holds_the_lock(tmp_path):
    podman_fake(tmp_path, "localhost/sysops-fleet-molecule:trixie 2222222222222222")
    proc = bash("remove_images", tmp_path)
    assert rmi_calls(tmp_path) == ["localhost/sysops-fleet-molecule:bookworm", "localhost/sysops-fleet-host:bookworm"]
    assert "kept image localhost/sysops-fleet-molecule:trixie: a container was made from it" in proc.stderr


def test_no_image_is_removed_while_a_run_of_any_clone_holds_the_lock(tmp_path):
    podman_fake(tmp_path)
    lock = tmp_path / "images.lock"
    holder = subprocess.Popen(["flock", "-s", str(lock), "sleep", "30"])
    try:
        for attempt in range(50):  # until the holder has it
            if subprocess.run(["flock", "-n", "-x", str(lock), "true"], check=False).returncode != 0:
                break
            time.sleep(0.1)
        proc = bash("remove_images", tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert rmi_calls(tmp_path) == []
    assert "kept the images: a run of some clone is using them" in proc.stderr


def test_hold_images_lock_holds_it_while_the_process_lives(tmp_path):
    """Also once the shell execs (its end of the holder's pipe closes): tail -f used to exit on that, freeing it."""
    lock = tmp_path / "images.lock"
    env = dict(os.environ, SYSOPS_FLEET_IMAGES_LOCK=str(lock))
    user = subprocess.Popen(["bash", "-c", f"source {LIB}; hold_images_lock $$; echo held; exec sleep 3"], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert user.stdout.readline().strip() == "held"
    time.sleep(1)  # the exec is done; tail saw its closed pipe within milliseconds when it wrote there
    assert user.poll() is None, "the process still runs"
    assert subprocess.run(["flock", "-n", "-x", str(lock), "true"], check=False).returncode != 0, "not held"
    user.wait()
    for attempt in range(40):  # tail --pid notices within a second or two
        if subprocess.run(["flock", "-n", "-x", str(lock), "true"], check=False).returncode == 0:
            return
        time.sleep(0.25)
    pytest.fail("the images lock is still held after the process that took it exited")


def install_demo(tmp_path, interpreter):
    """A demo prefix in the test's home whose program names *interpreter* on its first line."""
    prefix = tmp_path / "home" / "sysops-fleet-demo"
    program = prefix / "opt" / "sysops-fleet" / "bin" / "fleet-watcher"
    program.parent.mkdir(parents=True)
    (prefix / "run" / "sysops-fleet").mkdir(parents=True)
    program.write_text(f"#!{interpreter} -I\nimport sys\nopen({str(tmp_path / 'program.log')!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    return prefix


@pytest.mark.parametrize("interpreter,owner", [
    ("{clone}/.venv/bin/python", "this"),
    ("{clone}/.build/matrix/ansible-core-2.16/bin/python3", "this"),
    ("{clone}x/.venv/bin/python", "other"),
    ("/usr/bin/python3", "other"),
])
def test_the_demo_watcher_is_this_clones_only_if_its_interpreter_is_inside_it(interpreter, owner, tmp_path):
    clone = str(tmp_path / "clone")
    prefix = install_demo(tmp_path, interpreter.format(clone=clone))
    assert bash('demo_watcher_owner "$1" "$2"', tmp_path, str(prefix), clone).stdout.strip() == owner
    assert bash('demo_watcher_owner "$1/none" "$2"', tmp_path, str(prefix), clone).stdout.strip() == "none"


CRONTAB = textwrap.dedent("""\
    MAILTO=ops@example.com
    #Ansible: backup
    0 2 * * * /usr/local/bin/backup
    #Ansible: sysops.fleet watcher keepalive
    */5 * * * * {prefix}/opt/sysops-fleet/bin/fleet-watcher start --if-not-running --quiet
    #Ansible: sysops.fleet watcher at boot
    @reboot {prefix}/opt/sysops-fleet/bin/fleet-watcher start --if-not-running --quiet
    #Ansible: sysops.fleet watcher daily disk report
    30 6 * * * {prefix}/opt/sysops-fleet/bin/fleet-watcher report --quiet
    #Ansible: sysops.fleet watcher keepalive
    */5 * * * * {prefix}2/opt/sysops-fleet/bin/fleet-watcher start --if-not-running --quiet
    # a comment of the user's
    #Ansible: sysops.fleet watcher of another setup (kept: it names no program of this prefix)
""")
KEPT = textwrap.dedent("""\
    MAILTO=ops@example.com
    #Ansible: backup
    0 2 * * * /usr/local/bin/backup
    #Ansible: sysops.fleet watcher keepalive
    */5 * * * * {prefix}2/opt/sysops-fleet/bin/fleet-watcher start --if-not-running --quiet
    # a comment of the user's
    #Ansible: sysops.fleet watcher of another setup (kept: it names no program of this prefix)
""")


def test_only_the_demos_crontab_entries_are_dropped(tmp_path):
    prefix = "/home/ops/sysops-fleet-demo"
    out = bash('printf "%s" "$2" | crontab_without_demo "$1"', tmp_path, prefix, CRONTAB.format(prefix=prefix)).stdout
    assert out == KEPT.format(prefix=prefix)


def test_without_venv_the_demo_watcher_is_stopped_and_its_entries_and_files_removed(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    prefix = install_demo(tmp_path, "/usr/bin/env python3")  # runs the fake program wherever python3 is
    (prefix / "opt" / "sysops-fleet" / "bin" / "fleet-watcher").write_text(
        f"#!{clone}/.venv/bin/python -I\n" + (prefix / "opt" / "sysops-fleet" / "bin" / "fleet-watcher").read_text().split("\n", 1)[1])
    crontab_file = tmp_path / "crontab.txt"
    crontab_file.write_text(CRONTAB.format(prefix=prefix))
    fake(tmp_path, "crontab", textwrap.dedent(f"""\
        case "$1" in
            -l) cat {crontab_file} ;;
            -) cat > {crontab_file} ;;
            -r) rm -f {crontab_file} ;;
        esac"""))
    proc = bash('remove_demo_watcher "$1"', tmp_path, str(clone))
    assert "stopping the demo watcher" in proc.stderr
    assert (tmp_path / "program.log").read_text().split()[:2] == ["stop", "--pidfile"]
    assert crontab_file.read_text().rstrip("\n") == KEPT.format(prefix=prefix).rstrip("\n")
    assert not prefix.exists()


def test_a_demo_watcher_of_another_clone_is_left_alone(tmp_path):
    prefix = install_demo(tmp_path, "/elsewhere/clone/.venv/bin/python")
    fake(tmp_path, "crontab", "exit 99")
    proc = bash('remove_demo_watcher "$1"', tmp_path, str(tmp_path / "clone"))
    assert "another clone installed it" in proc.stderr
    assert prefix.exists() and not (tmp_path / "crontab.log").exists() and not (tmp_path / "program.log").exists()


def test_sourcing_clean_sh_runs_nothing(tmp_path):
    fake(tmp_path, "podman", "exit 0")
    fake(tmp_path, "crontab", "exit 0")
    bash("true", tmp_path)
    assert not (tmp_path / "podman.log").exists() and not (tmp_path / "crontab.log").exists()
