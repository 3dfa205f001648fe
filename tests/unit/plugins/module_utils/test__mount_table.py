# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_mount_table: the mount table read exactly as the kernel writes it, checked against a writer that does what
fs/proc_namespace.c does, with any bytes (hypothesis), forged lines inside names, and a table of hostile names."""

import os

import hostile_mounts
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _mount_table, _text

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 master:4 - ext4 /dev/vda rw
50 27 0:45 / /mnt/my\040disk rw - xfs /dev/mapper/vg-my\134lv rw
51 27 0:46 / /srv rw - nfs4 nfs1:/export rw,vers=4.2
"""


# ---- the table as the kernel writes it --------------------------------------------------------

def test_mountinfo_is_parsed_with_escapes_optional_fields_and_bind_roots():
    table = _mount_table.parse_mountinfo(MOUNTINFO.encode())
    assert [m.mount for m in table.mounts] == ["/proc", "/", "/run/netns", "/mnt/my disk", "/srv"]
    disk = table.mounts[3]
    assert (disk.device, disk.fstype, disk.dev, disk.root) == ("/dev/mapper/vg-my\\lv", "xfs", "0:45", "/")
    assert table.mounts[2].root == "/run/netns" and table.mounts[2].dev == "254:0"
    assert table.unread == [] and table.warnings() == []


def test_proc_mounts_is_the_fallback(tmp_path):
    mounts_file = tmp_path / "mounts"
    mounts_file.write_bytes(b"/dev/sda1 / ext4 rw 0 0\nsrv:/x /mnt/a\\040b nfs rw 0 0\n")
    table = _mount_table.read_mounts(mountinfo=str(tmp_path / "missing"), mounts=str(mounts_file))
    assert [(m.device, m.mount, m.fstype) for m in table.mounts] == [("/dev/sda1", "/", "ext4"),
                                                                     ("srv:/x", "/mnt/a b", "nfs")]
    assert table.path == str(mounts_file) and table.unread == []


def test_no_mount_table_is_a_clear_error(tmp_path):
    with pytest.raises(_mount_table.MountTableError, match="cannot read the mount table"):
        _mount_table.read_mounts(mountinfo=str(tmp_path / "a"), mounts=str(tmp_path / "b"))


def test_the_real_mount_table_has_the_root_filesystem_and_no_line_it_cannot_read():
    table = _mount_table.read_mounts()
    assert "/" in [m.mount for m in table.mounts] and table.unread == []


# What the kernel writes (fs/proc_namespace.c), written again here to check the parser against:
# mangle() escapes space, tab, new line and backslash as \ooo and writes every other byte as it is.
def mangle(raw):
    return b"".join(b"\\%03o" % c if c in b" \t\n\\" else bytes((c,)) for c in raw)


def kernel_line(mount_point, root=b"/", fstype=b"ext4", source=b"/dev/vdb", dev=b"254:16", optional=(),
                mount_id=99, parent=1):
    """One line of /proc/self/mountinfo as show_mountinfo() writes it."""
    return b" ".join([b"%d" % mount_id, b"%d" % parent, dev, mangle(root), mangle(mount_point), b"rw,relatime",
                      *optional, b"-", mangle(fstype), mangle(source), b"rw,errors=remount-ro"]) + b"\n"


def kernel_mounts_line(mount_point, fstype=b"ext4", source=b"/dev/vdb"):
    """One line of /proc/self/mounts as show_vfsmnt() writes it."""
    return b" ".join([mangle(source), mangle(mount_point), mangle(fstype), b"rw,relatime", b"0", b"0"]) + b"\n"


REAL_LINES = (kernel_line(b"/proc", fstype=b"proc", source=b"proc", dev=b"0:21", mount_id=22, parent=27)
              + kernel_line(b"/", source=b"/dev/vda", dev=b"254:0", optional=(b"shared:1",), mount_id=27, parent=1)
              + kernel_line(b"/srv", source=b"/dev/vdb", dev=b"254:16", mount_id=28, parent=27))
REAL = [("/proc", "proc", "proc"), ("/", "/dev/vda", "ext4"), ("/srv", "/dev/vdb", "ext4")]

# Bytes that split a line or a field for str.splitlines() / str.split() but not for the kernel,
# and the kernel's own escaped four.
ODD_BYTES = [b" ", b"\t", b"\n", b"\\", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f", b"\x85",
             b"\xa0", "\u0085".encode(), "\u00a0".encode(), "\u2028".encode(), "\u2029".encode(), b"\xff", b"-",
             b"/", b"\\040", b"\\1"]
NAME_BYTES = st.lists(st.one_of(st.sampled_from(ODD_BYTES), st.binary(min_size=1, max_size=4)),
                      max_size=40).map(b"".join).map(lambda b: b.replace(b"\0", b""))


@settings(max_examples=500, deadline=None)
@given(mount_point=st.one_of(NAME_BYTES, st.binary(max_size=hostile_mounts.PATH_MAX - 1).map(lambda b: b.replace(b"\0", b""))),
       root=NAME_BYTES, fstype=NAME_BYTES.filter(bool), source=NAME_BYTES)
def test_any_mount_point_written_the_kernels_way_is_read_back_to_its_exact_bytes(mount_point, root, fstype, source):
    mount_point = (b"/" + mount_point)[:hostile_mounts.PATH_MAX - 1]
    table = _mount_table.parse_mountinfo(REAL_LINES + kernel_line(mount_point, b"/" + root, fstype, source) + REAL_LINES)
    assert table.unread == []
    assert [(m.mount, m.device, m.fstype) for m in table.mounts[:3] + table.mounts[4:]] == REAL * 2
    mine = table.mounts[3]
    assert (os.fsencode(mine.mount), os.fsencode(mine.root), os.fsencode(mine.fstype), os.fsencode(mine.device)) \
        == (mount_point, b"/" + root, fstype, source)
    assert mine.dev == "254:16"
    again = _mount_table.parse_mounts(kernel_mounts_line(mount_point, fstype, source))
    assert again.unread == [] and [(os.fsencode(m.mount), os.fsencode(m.fstype), os.fsencode(m.device))
                                   for m in again.mounts] == [(mount_point, fstype, source)]


def lines_of(data):
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=600),
                 st.lists(st.one_of(st.sampled_from([REAL_LINES, b"-", b" - ", b"1 2 3:4 ", b"/ ", b"\n", b"\\0"]),
                                    NAME_BYTES), max_size=30).map(b"".join)))
def test_any_bytes_are_read_without_raising_each_line_a_mount_or_a_counted_warning(data):
    for parse in (_mount_table.parse_mountinfo, _mount_table.parse_mounts):
        table = parse(data)
        assert len(table.mounts) + len(table.unread) == len(lines_of(data))
        assert [u.number for u in table.unread] == sorted({u.number for u in table.unread})
        for mount in table.mounts:
            assert mount.mount.startswith("/") and "\0" not in mount.mount
            assert all(value.isprintable() for value in mount.shown().values())
        warnings = table.warnings()
        assert len(warnings) == min(len(table.unread), 5) + (len(table.unread) > 5)
        assert all(w.isprintable() for w in warnings)


LINE_BREAKS = [b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85", "\u0085".encode(), "\u2028".encode(),
               "\u2029".encode(), b"\r\n"]
BLANKS = [b"\x1f", b"\x1c", b"\xa0", "\u00a0".encode(), "\u3000".encode(), "\u2003".encode(), b"\x0b", b" ", b"\t"]


@settings(max_examples=500, deadline=None)
@given(before=NAME_BYTES, after=NAME_BYTES, line_break=st.sampled_from(LINE_BREAKS), blank=st.sampled_from(BLANKS),
       target=st.sampled_from([b"/", b"/srv", b"/proc"]), fstype=st.sampled_from([b"tmpfs", b"ext4", b"proc"]))
def test_a_forged_line_inside_a_name_never_becomes_a_mount(before, after, line_break, blank, target, fstype):
    forged = blank.join([b"9999", b"1", b"0:1", b"/", target, b"rw", b"-", fstype, b"/dev/forged", b"rw"])
    name = b"/home/user/" + before + line_break + forged + line_break + after
    table = _mount_table.parse_mountinfo(REAL_LINES + kernel_line(name, source=b"fsname", fstype=b"fuse.x", dev=b"0:77"))
    assert table.unread == []
    assert [(m.mount, m.device, m.fstype) for m in table.mounts[:3]] == REAL
    assert len(table.mounts) == 4 and os.fsencode(table.mounts[3].mount) == name
    assert "/dev/forged" not in [m.device for m in table.mounts]
    assert [m.mount for m in _disk.visible(table.mounts)][:3] == ["/proc", "/", "/srv"]


@pytest.mark.parametrize("line,why", [
    (b"garbage line", "no ' - ' after the mount options"),
    (b"", "no ' - ' after the mount options"),
    (b"\x1b[2Jgarbage\r", "no ' - ' after the mount options"),
    (b"1 2 x:y / /z rw - ext4 /dev/q rw", "the mount IDs and MAJOR:MINOR are not numbers"),
    (b"1  2 3:4 / /z rw - ext4 /dev/q rw", "the mount IDs and MAJOR:MINOR are not numbers"),
    (b"1 2 3:4 / relative rw - ext4 /dev/q rw", "the mount point is not an absolute path"),
    (b"1 2 3:4 / /a\\000b rw - ext4 /dev/q rw", "the mount point holds a NUL byte"),
    (b"1 2 3:4 / /a rw - ext4", "fewer than three fields after ' - '"),
    (b"1 2 3:4 / /a rw -  /dev/q rw", "no filesystem type"),
])
def test_a_line_that_is_no_mount_is_a_warning_naming_it_escaped(line, why):
    table = _mount_table.parse_mountinfo(REAL_LINES + line + b"\n" + REAL_LINES)
    assert [(m.mount, m.device, m.fstype) for m in table.mounts] == REAL * 2
    assert [(u.number, u.why, u.line) for u in table.unread] == [(4, why, line)]
    assert table.warnings() == [f"/proc/self/mountinfo line 4 is not a mount as the kernel writes one ({why}), so a "
                                f"filesystem may be missing from the report: {_text.printable(line)}"]


def test_many_unread_lines_name_the_first_five_and_count_the_rest():
    table = _mount_table.parse_mountinfo(b"bad\n" * 8 + REAL_LINES, path="/proc/self/mountinfo")
    warnings = table.warnings()
    assert len(warnings) == 6 and "line 5 is not a mount" in warnings[4]
    assert warnings[5] == ("/proc/self/mountinfo: 3 more line(s) could not be read (8 in all), so filesystems "
                           "may be missing from the report")
    assert [m.mount for m in table.mounts] == ["/proc", "/", "/srv"]


@pytest.mark.parametrize("name,shown,why", hostile_mounts.NAMES)
def test_each_hostile_name_is_read_back_and_shown_as_the_table_says(name, shown, why):
    table = _mount_table.parse_mountinfo(kernel_line(b"/m/" + name, source=b"src-" + name))
    [mount] = table.mounts
    assert os.fsencode(mount.mount) == b"/m/" + name, why
    assert mount.shown() == {"mount": "/m/" + shown, "device": "src-" + shown, "fstype": "ext4"}
