#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: watcher_files
short_description: Put the watcher's directories, files and links in place in one round trip
version_added: "0.1.0"
description:
  - The part of the P(sysops.fleet.watcher#role) role that puts its files on a host, as one module call
    instead of one call (or two, for M(ansible.builtin.copy) and M(ansible.builtin.template)) per
    path, which is what made the role's rerun slow.
  - Each directory is made if missing and given its mode and owner; each file is written (to a temp
    file beside it, then renamed over it, mode and owner set through its descriptor) when its content,
    mode or owner differ; each link is pointed at its target.
  - A path is never followed where it is a symbolic link, and nothing is read from a FIFO; a directory
    entry that is a symbolic link is refused.
  - Meant for paths in directories only root (or the user Ansible runs as) controls; it is not a
    general replacement for M(ansible.builtin.copy).
author:
  - sysops.fleet maintainers (@sysops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change and changes nothing.
  diff_mode:
    support: partial
    details: Files with O(files[].diff=true) show their old and new text.
  platform:
    platforms: posix
options:
  parents:
    description:
      - Directories made first, in this order, if missing (mode 0755, owned by the user the module runs
        as); existing ones keep their owner and mode (a home directory among them, say).
    type: list
    elements: path
    default: []
  remove:
    description:
      - Paths removed last if present (directories with what they hold, never following a link), that is
        what earlier versions left.
    type: list
    elements: path
    default: []
  directories:
    description: Directories, made after O(parents), in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      mode:
        description: Mode (an octal string such as V("0750")); omitted, an existing directory keeps its own.
        type: raw
      owner:
        description: Owner (name or uid); omitted, it is not changed.
        type: str
      group:
        description: Group (name or gid); omitted, it is not changed.
        type: str
  files:
    description: Files, written after the directories.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: The content, as text or, with O(files[].encoding=base64), base64-encoded bytes.
        type: str
        required: true
      encoding:
        description: How O(files[].content) is given.
        type: str
        choices: [text, base64]
        default: text
      mode:
        description: Mode, such as V("0644").
        type: raw
        required: true
      owner:
        description: Owner (name or uid); omitted, the user the module runs as.
        type: str
      group:
        description: Group (name or gid); omitted, that user's primary group.
        type: str
      only_if_directory_exists:
        description:
          - Write the file only if its directory exists, else leave it out (reported in RV(absent_directories)),
            for example a logrotate file on a host without logrotate.
        type: bool
        default: false
      diff:
        description: Show the old and new text in diff mode (not for secrets or binary content).
        type: bool
        default: false
  links:
    description: Symbolic links, made last.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the link.
        type: path
        required: true
      target:
        description: What the link points to.
        type: str
        required: true
"""

EXAMPLES = r"""
- name: Put the watcher's files in place
  sysops.fleet.watcher_files:
    directories:
      - {path: /opt/sysops-fleet, mode: "0755", owner: root, group: root}
    files:
      - path: /opt/sysops-fleet/bin/fleet-watcher
        content: "{{ lookup('sysops.fleet.watcher_zipapp', interpreter='/usr/bin/python3', output='base64') }}"
        encoding: base64
        mode: "0755"
      - path: /etc/logrotate.d/sysops-fleet
        content: "{{ lookup('ansible.builtin.template', 'logrotate.j2') }}"
        mode: "0644"
        only_if_directory_exists: true
    links:
      - {path: /usr/local/bin/fleet-watcher, target: /opt/sysops-fleet/bin/fleet-watcher}
  register: placed
"""

RETURN = r"""
changed_paths:
  description: The paths that were (or, in check mode, would be) made or changed, in order.
  returned: always
  type: list
  elements: str
  sample: ["/etc/sysops-fleet/watcher.ini"]
absent_directories:
  description: Files left out because O(files[].only_if_directory_exists) was set and their directory is missing.
  returned: always
  type: list
  elements: str
  sample: ["/etc/logrotate.d/sysops-fleet"]
"""

import base64
import binascii
import grp
import os
import pwd
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _files


class Refused(Exception):
    """A path cannot be put in place safely; the message says why."""


def _mode(value, path):
    if value is None:
        return None
    try:
        mode = int(str(value), 8) if not isinstance(value, int) else value
    except ValueError:
        raise Refused(f"{path}: mode must be octal such as '0644', got {value!r}") from None
    if not 0 <= mode <= 0o7777:
        raise Refused(f"{path}: mode {value!r} is out of range")
    return mode


def _id(name, check_mode, path, kind):
    """The uid (kind "owner") or gid (kind "group") of *name*, a name or a number; None when not given."""
    if name is None:
        return None
    if str(name).isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if kind == "owner" else grp.getgrnam(name).gr_gid
    except KeyError:
        if check_mode:
            return -1  # made by an earlier task of this check-mode run: anything differs from it
        raise Refused(f"{path}: {kind} {name!r} does not exist") from None


def _uid(owner, check_mode, path):
    return _id(owner, check_mode, path, "owner")


def _gid(group, check_mode, path):
    return _id(group, check_mode, path, "group")


def _attributes_differ(st, mode, uid, gid):
    return ((mode is not None and stat.S_IMODE(st.st_mode) != mode)
            or (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid))


def _fix_attributes(fd, st, mode, uid, gid):
    if (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid):
        os.fchown(fd, uid if uid is not None else -1, gid if gid is not None else -1)
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)


def _absolute(path):
    if not os.path.isabs(path):
        raise Refused(f"{path!r} is not an absolute path: give every path from /")
    return path


def prepared_directory(entry, check_mode):
    """A directory entry with its mode and owner resolved (a bad one is refused before anything is done)."""
    path = _absolute(entry["path"])
    return dict(path=path, mode=_mode(entry.get("mode"), path), uid=_uid(entry.get("owner"), check_mode, path),
                gid=_gid(entry.get("group"), check_mode, path))


def directory(entry, check_mode):
    path, mode, uid, gid = entry["path"], entry["mode"], entry["uid"], entry["gid"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check_mode:
            os.mkdir(path, 0o700)
            _set_directory(path, mode if mode is not None else 0o755, uid, gid)
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{path} is {_files.kind_of(st.st_mode)}, not a directory: remove it or choose another path")
    if not _attributes_differ(st, mode, uid, gid):
        return False
    if not check_mode:
        _set_directory(path, mode, uid, gid)
    return True


def _set_directory(path, mode, uid, gid):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _fix_attributes(fd, os.fstat(fd), mode, uid, gid)
    finally:
        os.close(fd)


def parent(path, check_mode):
    if os.path.lexists(path):
        if not os.path.isdir(path):
            raise Refused(f"{path} is not a directory: remove it or choose another watcher_root")
        return False
    if not check_mode:
        os.mkdir(path, 0o755)
    return True


def removed(path, check_mode):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not check_mode:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)  # fd-based on Linux: links inside are removed, never followed
        else:
            os.unlink(path)
    return True


def prepared_file(entry, check_mode):
    """A file entry with its bytes, mode and owner resolved (a bad one is refused before anything is done)."""
    path = _absolute(entry["path"])
    if entry.get("encoding") == "base64":
        try:
            data = base64.b64decode(entry["content"], validate=True)
        except (binascii.Error, ValueError):
            raise Refused(f"{path}: content is not valid base64") from None
    else:
        data = entry["content"].encode("utf-8")
    mode = _mode(entry.get("mode"), path)
    if mode is None:
        raise Refused(f"{path}: a file needs a mode such as '0644'")
    uid = _uid(entry.get("owner"), check_mode, path)
    gid = _gid(entry.get("group"), check_mode, path)
    return dict(entry, path=path, data=data, mode=mode, uid=os.geteuid() if uid is None else uid,
                gid=os.getegid() if gid is None else gid)


def regular_file(entry, check_mode):
    """(changed, before text or None) for one prepared file entry; ``None`` changed means left out."""
    path, data, mode, uid, gid = entry["path"], entry["data"], entry["mode"], entry["uid"], entry["gid"]
    if entry.get("only_if_directory_exists") and not os.path.isdir(os.path.dirname(path)):
        return None, None
    try:
        fd = _files.open_regular(path)
    except FileNotFoundError:
        fd = None
    except _files.UnsafeFile:
        fd = None  # a link or a FIFO in its place is replaced, never followed
    before = None
    if fd is not None:
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            before = handle.read() if entry.get("diff") else handle.read(len(data) + 1)  # enough to compare
            if before == data:
                if not _attributes_differ(st, mode, uid, gid):
                    return False, before
                if not check_mode:
                    _fix_attributes(handle.fileno(), st, mode, uid, gid)
                return True, before
    if not check_mode:
        _files.write_atomic(path, data, mode, owner=(uid, gid))
    return True, before


def link(entry, check_mode):
    path, target = _absolute(entry["path"]), entry["target"]
    try:
        current = os.readlink(path)
    except FileNotFoundError:
        current = None
    except OSError:
        st = os.lstat(path)
        raise Refused(f"{path} is {_files.kind_of(st.st_mode)}, not a symbolic link: remove it to let the link be made")
    if current == target:
        return False
    if not check_mode:
        temp = f"{path}.tmp-{os.getpid()}"
        os.symlink(target, temp)
        os.replace(temp, path)
    return True


def _text(data):
    try:
        return data.decode("utf-8") if data is not None else ""
    except UnicodeDecodeError:
        return "(binary)"


def main():
    path_spec = dict(path=dict(type="path", required=True))
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[], options=dict(
                path_spec, mode=dict(type="raw"), owner=dict(type="str"), group=dict(type="str"))),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path_spec, content=dict(type="str", required=True), mode=dict(type="raw", required=True),
                encoding=dict(type="str", default="text", choices=["text", "base64"]), owner=dict(type="str"),
                group=dict(type="str"), only_if_directory_exists=dict(type="bool", default=False),
                diff=dict(type="bool", default=False))),
            links=dict(type="list", elements="dict", default=[], options=dict(
                path_spec, target=dict(type="str", required=True))),
            parents=dict(type="list", elements="path", default=[]),
            remove=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    check = module.check_mode
    changed, absent, diffs = [], [], []
    try:
        # every entry is checked (modes, owners, content, absolute paths) before anything is touched
        directories = [prepared_directory(entry, check) for entry in module.params["directories"]]
        files = [prepared_file(entry, check) for entry in module.params["files"]]
        for path in module.params["parents"] + [e["path"] for e in module.params["links"]] + module.params["remove"]:
            _absolute(path)
    except Refused as exc:
        module.fail_json(msg=str(exc), changed_paths=changed)
    try:
        for path in module.params["parents"]:
            if parent(path, check):
                changed.append(path)
        for entry in directories:
            if directory(entry, check):
                changed.append(entry["path"])
        for entry in files:
            done, before = regular_file(entry, check)
            if done is None:
                absent.append(entry["path"])
            elif done:
                changed.append(entry["path"])
                if entry.get("diff") and module._diff:  # pylint: disable=protected-access
                    diffs.append({"before_header": entry["path"], "after_header": entry["path"],
                                  "before": _text(before), "after": entry["content"]})
        for entry in module.params["links"]:
            if link(entry, check):
                changed.append(entry["path"])
        for path in module.params["remove"]:
            if removed(path, check):
                changed.append(path)
    except Refused as exc:
        module.fail_json(msg=str(exc), changed_paths=changed)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or ''}: {exc.strerror or exc}", changed_paths=changed)
    result = dict(changed=bool(changed), changed_paths=changed, absent_directories=absent)
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
