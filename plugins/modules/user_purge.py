#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: user_purge
short_description: Stop everything a user runs and remove what it left scheduled, so the account can be deleted
version_added: "0.1.0"
description:
  - Run before M(ansible.builtin.user) with C(state=absent), so that nothing of the
    account survives it. The C(sysops.fleet.watcher) role uses it to uninstall the watcher by the daemon's uid,
    never by what that user wrote (a pidfile it could have replaced).
  - >-
    B(Processes:) every process of the user is killed by one C(kill) of pid -1 with C(SIGKILL), made as that user, which the
    kernel delivers to all of them at once. A process that keeps forking to new pids (each generation alive for
    a millisecond, too short for any list of pids) cannot outrun it, since a fork racing with it fails. The task
    checks C(/proc) afterwards, tries again until O(timeout), and fails naming any process still there.
  - >-
    B(Containers:) rootful containers share the kernel's uids (an image that runs as uid 999 runs as the same uid as
    the first system user C(useradd --system) makes). A process of the uid in another PID namespace made by a
    privileged process is a container's. While one is there nothing is signalled and the task fails naming them
    (killing the user would kill them too; sparing them would leave the user a place to hide, since it may signal
    and ptrace them), unless O(containers=kill).
  - >-
    B(Borrowers:) the kill as the uid also reaches a process of another user whose saved uid is the uid (root
    that switched to it with C(setreuid) or C(setresuid)). While one is there nothing is signalled and the task
    fails naming them (RV(borrowers)). A root daemon that only changes its effective uid for a moment, as
    C(cron) does, keeps root as its saved uid and is never touched.
  - >-
    B(Leftovers) (O(leftovers=true)): the user's crontab and C(at) jobs (which would start it again); its entries
    in C(/tmp), C(/var/tmp), C(/dev/shm) and C(/run/lock), at the top and inside the world-writable directories
    below them that are not its own (such as C(/tmp/.X11-unix), where a set-uid file it left would let anyone
    act as the uid's next owner; a walk at most 8 directories deep, following no link, never leaving the
    filesystem); its POSIX message queues (found through a C(mqueue) mount in a private mount namespace, so
    whether or not C(/dev/mqueue) is mounted); its System V IPC objects; its mail spool; and its persistent
    keyring (C(KEYCTL_GET_PERSISTENT), see the persistent-keyring(7) manual page), which is invalidated. All of these a later
    account given the same uid would otherwise inherit.
  - >-
    B(Trees) (O(paths), and every leftover directory) are removed without recursion and with one directory open
    at a time, so a tree of any depth (thousands of nested directories, paths longer than C(PATH_MAX)) goes; no
    link is followed (a link is removed as a link) and a mount point inside is an error, nothing under it
    touched. An error names the path.
  - >-
    With O(program), only processes whose command line runs that program are stopped, and no leftover is
    removed, for an account that also runs other things.
  - A user that does not exist is nothing to do beyond removing O(paths).
author:
  - sysops.fleet maintainers (@sysops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Lists the processes and leftovers that would be removed; signals and removes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux (C(/proc), pidfds).
options:
  name:
    description:
      - The user, by name or uid.
      - Root and the user this module runs as are refused without O(program).
    type: str
    required: true
  program:
    description:
      - Only stop processes whose command line has this path as one of its arguments (compared as text; never
        looked up).
      - Without it, every process of the user is stopped.
    type: path
  leftovers:
    description:
      - Also remove the user's crontab, C(at) jobs, temporary files, System V IPC objects and mail spool.
      - Ignored (nothing is removed) with O(program).
    type: bool
    default: true
  paths:
    description:
      - Files and directory trees to remove once the processes are stopped, with or without O(program),
        typically the directories the user could write (its state, log and run directories).
      - Each must be an absolute path; one that does not exist is nothing to do. The directories above each are
        trusted (they should be root's); the path itself may be a link, which is removed, not followed.
    type: list
    elements: path
    default: []
    version_added: "0.1.0"
  containers:
    description:
      - What to do while processes of the user's uid run in containers (another PID namespace made by a privileged
        process, in this host's user namespace), which rootful containers share with the host.
      - V(fail) signals nothing and fails naming them; V(kill) kills them with the user's own.
    type: str
    choices: [fail, kill]
    default: fail
    version_added: "0.1.0"
  timeout:
    description: Seconds to freeze and kill every process before the task fails.
    type: float
    default: 30
"""

EXAMPLES = r"""
- name: Stop everything the watcher's system user runs, then delete the user
  sysops.fleet.user_purge:
    name: sysops-fleet

- name: The account is now unused
  ansible.builtin.user:
    name: sysops-fleet
    state: absent

- name: Stop only the watcher, in an account that runs other things too
  sysops.fleet.user_purge:
    name: nobody
    program: /srv/watcher/opt/sysops-fleet/bin/fleet-watcher
"""

RETURN = r"""
uid:
  description: The user's uid; null when the user does not exist.
  returned: always
  type: int
  sample: 998
killed:
  description: The processes killed (or, in check mode, that would be), with their command lines.
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4242, "command": "/usr/bin/python3 -I /opt/sysops-fleet/bin/fleet-watcher start"}]
borrowers:
  description:
    - When the task failed because processes of other users (root's) hold the uid as their saved uid (they
      switched to it with C(setreuid) or C(setresuid)), which the kill as the uid would reach too; nothing was
      signalled.
  returned: failure
  type: list
  elements: dict
  sample: [{"pid": 6161, "command": "/usr/sbin/some-daemon", "state": "S"}]
  version_added: "0.1.0"
containers:
  description:
    - When the task failed because processes of the uid run in containers (and O(containers=fail)), those
      processes; nothing was signalled.
  returned: failure
  type: list
  elements: dict
  sample: [{"pid": 5151, "command": "postgres -D /var/lib/postgresql/data", "state": "S"}]
  version_added: "0.1.0"
passes:
  description: How many rounds of killing it took until no process of the user was left.
  returned: always
  type: int
  sample: 2
crontab:
  description: Whether the user had a crontab, now removed.
  returned: always
  type: bool
  sample: true
at_jobs:
  description: The numbers of the user's C(at) jobs removed.
  returned: always
  type: list
  elements: str
  sample: ["12"]
removed:
  description:
    - Temporary files and directories (also those inside world-writable directories, such as
      V(/tmp/.X11-unix/x)), POSIX message queues (V(mqueue /NAME)), System V IPC objects (V(ipc -m 32768)),
      mail spool and O(paths) removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["/tmp/sysops-fleet-cache", "/run/lock/x.lock", "mqueue /alerts", "ipc -m 32768"]
keyring:
  description:
    - >-
      What became of the user's persistent keyring, with O(leftovers) and without O(program), in words that
      begin with V(invalidated) (and say how many keys it held), V(refused by the kernel) (and why),
      V(not supported on) (a machine whose C(keyctl) system call this module does not know) or
      V(not looked at in check mode) (asking for it would create it). Empty when not looked at.
    - A kernel that refuses is reported here, not a failure.
  returned: always
  type: str
  sample: "invalidated (1 key(s) in it)"
"""

import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _account


def _entry(name):
    try:
        return pwd.getpwuid(int(name)) if str(name).isdigit() else pwd.getpwnam(name)
    except KeyError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            program=dict(type="path"),
            leftovers=dict(type="bool", default=True),
            paths=dict(type="list", elements="path", default=[]),
            timeout=dict(type="float", default=_account.DEFAULT_TIMEOUT),
            containers=dict(type="str", choices=["fail", "kill"], default="fail"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, uid=None, killed=[], passes=0, crontab=False, at_jobs=[], removed=[], keyring="")
    if not 0 < params["timeout"] <= 3600:
        module.fail_json(msg=f"timeout must be more than 0 and at most 3600 seconds, got {params['timeout']:g}",
                         **result)
    for path in params["paths"]:
        if not path.startswith("/") or path.rstrip("/") == "":
            module.fail_json(msg=f"paths: {path!r} is not an absolute path below / (give the full path)", **result)
    entry = _entry(params["name"])
    if entry is None:
        try:
            result["removed"] = _account.remove_paths(params["paths"], module.check_mode)
        except _account.AccountError as exc:
            module.fail_json(msg=f"paths: {exc}", **result)
        result["changed"] = bool(result["removed"])
        module.exit_json(**result)
    result["uid"] = entry.pw_uid
    program = params["program"]
    try:
        if module.check_mode:
            if entry.pw_uid == 0 and program is None:
                raise _account.AccountError("refusing to stop every process of root (give a program to stop "
                                            "only that one)")
            result["killed"] = _account.describe(_account.processes_to_stop(entry, program, params["containers"]))
        else:
            stopped = _account.stop_processes(entry, program, params["timeout"], params["containers"])
            result.update(killed=stopped.killed, passes=stopped.passes)
            if stopped.left:
                module.fail_json(msg=f"{len(stopped.left)} process(es) of {entry.pw_name} still run after "
                                 f"{params['timeout']:g}s of SIGKILL (stuck in the kernel?): "
                                 + "; ".join(f"pid {p['pid']} ({p['state']}) {p['command']}" for p in stopped.left),
                                 left=stopped.left, **result)
        if params["leftovers"] and program is None:
            result.update(_account.remove_schedules(entry.pw_name, module.check_mode))
            result["removed"] = _account.remove_leftovers(entry.pw_uid, entry.pw_name, module.check_mode)
            result["keyring"] = _account.invalidate_persistent_keyring(entry.pw_uid, module.check_mode)
        result["removed"] += _account.remove_paths(params["paths"], module.check_mode)
    except _account.ContainerError as exc:
        module.fail_json(msg=str(exc), containers=exc.processes, **result)
    except _account.BorrowerError as exc:
        module.fail_json(msg=str(exc), borrowers=exc.processes, **result)
    except _account.AccountError as exc:
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or ''}: {exc.strerror or exc}", **result)
    result["changed"] = bool(result["killed"] or result["crontab"] or result["at_jobs"] or result["removed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
