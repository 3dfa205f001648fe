# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report's inputs, checked: every field it reads from the play, or an error naming host and field.

PRIVATE to the sysops.fleet collection. Pure standard library.

The fleet report's inputs are other modules' results passed through a play
(and templated by hand sometimes), so every field it uses is read here and
a malformed one is refused with the sweeper or host and the field named,
before anything is written or mailed. A fleet of 10,000 hosts brings
100,000 filesystems: the common case (a number that is a number) is
checked by type first, and the message is only made when something is wrong.

``sweeps`` and ``disk_reports`` may also come as JSON text (``| to_json``):
Ansible copies a module's arguments twice before the module runs, which
for 10,000 disk reports costs seconds and hundreds of megabytes; a string
is copied for free.
"""

from __future__ import annotations

import json
import math
import socket
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import _targets, _text

STATUSES = ("ok", "warn", "crit")
_BYTES = ("size_bytes", "used_bytes", "avail_bytes")
_PERCENT = ("use_pct", "inode_pct")
REASON_MAX = 300  # characters of a reason kept in the report (error texts can be pages)
MAX_SWEPT = 1 << 20  # addresses one sweeper's alive_ranges or dead_ranges may stand for (10.0.0.0/8 is refused)
MESH_MAX_HOSTS = 2000  # hosts of one mesh: 4,000,000 pairs; a larger fleet meshes a group of its hosts
FLOAT_MAX = sys.float_info.max  # a number the report computes with must fit a float (10**400 does not)
_NUMERIC_TEXT_MAX = 40  # characters of a number given as text ("91", "1048576", "2.5"): more is no number we read
_MAPPED = bytes(10) + b"\xff\xff"  # the first 12 bytes of an IPv4-mapped IPv6 address (::ffff:192.0.2.1)


class FleetError(ValueError):
    """The inputs to the fleet report are not what the play should pass."""


class _Bad(Exception):
    """One field is wrong: ``field`` (``.use_pct``) and what is wrong; the caller says where it is."""

    def __init__(self, field: str, text: str):
        super().__init__(text)
        self.field, self.text = field, text


def address_key(address: str) -> Tuple[int, int, str]:
    """Sort addresses numerically (IPv4 before IPv6), names last.

    ``inet_pton`` rather than a full parse: a merged /16 sorts 65,000 of them.
    """
    for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return (version, int.from_bytes(socket.inet_pton(family, address), "big"), address)
        except (OSError, ValueError, TypeError):
            continue
    return (9, 0, str(address))


def canonical(address: Any) -> Optional[str]:
    """*address* in its one spelling, or None when it is no IP address; every address the report reads goes through it.

    Sweeps, ``addresses`` and the state file are compared as text, so
    ``2001:DB8::1``, ``2001:db8:0:0::0001`` and ``2001:db8::1`` must be one
    address: IPv6 is written as ``inet_ntop`` writes it (lower case, no
    leading zeros, the longest run of zero groups as ``::``), as ping_sweep
    does; an IPv4-mapped address (``::ffff:192.0.2.1``) is its IPv4 address;
    an IPv6 zone (``%eth0``) is dropped, as ping_sweep's results have none.
    IPv4 is the dotted quad (``inet_pton`` refuses leading zeros: octal or not?).
    """
    if not isinstance(address, str):
        return None
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, address))
    except (OSError, ValueError):
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0])
    except (OSError, ValueError):
        return None
    if packed[:12] == _MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def kind(value: Any) -> str:
    """What *value* is, for a message: short, one line, and safe for any size of integer or string."""
    if isinstance(value, str):
        return f"a string ({shown(repr(value), 80)})"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, (list, dict)):
        return type(value).__name__
    return f"{type(value).__name__} {shown(repr(value), 80)}"


def shown(text: str, limit: int = 0, words: bool = False) -> str:
    """Outside text as one printable line, escaped once.

    A name disk_report read from a host is shown escaped already (a line
    break in a mount point arrives as ``\\n``): printable text is kept as
    it is, so the fleet report shows it as the disk report does, only cut
    to *limit*. Text that is not printable (passed by hand, a raw error
    text) goes through ``_text.printable``, or ``_text.words`` for a message
    whose line breaks are just blanks.
    """
    if not text.isprintable():
        return _text.words(text, limit) if words else _text.printable(text, limit)
    if limit and len(text) > limit:
        return text[:limit - 1] + _text.ELLIPSIS
    return text


def decoded(value: Any, option: str) -> Any:
    """*value*, or the data in it when it is JSON text of an object (what ``| to_json`` makes of a dict)."""
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else _text.words(str(exc), 120)
        raise FleetError(f"{option}: JSON text that does not parse ({detail}{where}); pass the results as a "
                         f"dict, or as JSON text made with | to_json") from None


def names(value: Any, where: str, what: str = "host names", one: str = "a host name") -> List[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise FleetError(f"{where}: expected a list of {what}, got {kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise FleetError(f"{where}[{index}]: expected {one}, got {kind(item)}")
    return list(value)


def reasons(value: Any) -> Dict[str, str]:
    """host -> why it failed or could not be reached, each one line of printable text (``shown``).

    A reason is an error text from the host or from ssh (a module's
    message, sudo's complaint, a refused connection), so it may hold line
    breaks, terminal escapes or a whole traceback: the report keeps one
    readable line of it, of at most REASON_MAX characters.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FleetError(f"failure_reasons: expected a dict of host -> reason, got {kind(value)}")
    found = {}
    for host, reason in value.items():
        if not isinstance(host, str) or not host.strip():
            raise FleetError(f"failure_reasons: expected host names as keys, got {kind(host)}")
        if not isinstance(reason, str):
            raise FleetError(f"failure_reasons[{host!r}]: expected a string (why the host failed), got {kind(reason)}")
        found[host] = shown(reason, REASON_MAX, words=True)
    return found


def _addresses(value: Any, where: str) -> List[str]:
    """A sweep's alive or dead list, each address in its one spelling (``canonical``)."""
    found = names(value, where, "addresses", "an address")
    clean = []
    for index, item in enumerate(found):
        address = canonical(item)
        if address is None:
            raise FleetError(f"{where}[{index}]: {shown(repr(item), 80)} is not an IP address (ping_sweep lists "
                             f"addresses in alive and dead)")
        clean.append(address)
    return clean


def _swept(result: Mapping[str, Any], key: str, where: str) -> List[str]:
    """A sweep's alive or dead addresses: its list when it has one, else its ranges (a large sweep's only form)."""
    if key in result or f"{key}_ranges" not in result:
        return _addresses(result.get(key), f"{where}.{key}")
    ranges = names(result[f"{key}_ranges"], f"{where}.{key}_ranges", "ranges", "a range")
    try:
        found = _targets.expand(ranges, f"{where}.{key}_ranges", MAX_SWEPT)
    except _targets.TargetError as exc:
        raise FleetError(f"{exc} (ping_sweep writes {key}_ranges as 192.0.2.1-5,9)") from None
    if any(":" in entry for entry in ranges):  # IPv4 comes out of expand in its one spelling already
        found = [canonical(address) or address for address in found]
    return found


def _sweep_names(result: Mapping[str, Any], where: str) -> Dict[str, str]:
    """address -> the name it was swept as: ``names`` of the compact result, else from ``hosts`` (details)."""
    found: Dict[str, Any] = {}
    if result.get("names") is not None:
        if not isinstance(result["names"], Mapping):
            raise FleetError(f"{where}.names: expected a dict of address -> name, got {kind(result['names'])}")
        found = {address: (name, f"{where}.names[{address!r}]") for address, name in result["names"].items()}
    else:
        hosts = result.get("hosts") or {}
        if not isinstance(hosts, Mapping):
            raise FleetError(f"{where}.hosts: expected a dict of address -> entry, got {kind(hosts)}")
        found = {address: (entry.get("name") if isinstance(entry, Mapping) else None,
                           f"{where}.hosts[{address!r}].name") for address, entry in hosts.items()}
    clean = {}
    for address, (name, field_name) in found.items():
        if name is not None and not isinstance(name, str):
            raise FleetError(f"{field_name}: expected a string, got {kind(name)}")
        if name:
            clean[canonical(address) or str(address)] = name
    return clean


def check_sweeps(sweeps: Any) -> Dict[str, Dict[str, Any]]:
    """sweeper -> its alive and dead addresses and their names, checked."""
    sweeps = decoded(sweeps, "sweeps")
    if not isinstance(sweeps, Mapping):
        raise FleetError(f"sweeps: expected a dict of sweeper -> ping_sweep result, got {kind(sweeps)}")
    clean: Dict[str, Dict[str, Any]] = {}
    for sweeper, result in sweeps.items():
        where = f"sweeps[{sweeper!r}]"
        if not isinstance(result, Mapping) or ("alive" not in result and "alive_ranges" not in result):
            raise FleetError(f"{where} is not a ping_sweep result (no 'alive' or 'alive_ranges' list)")
        clean[str(sweeper)] = {"alive": _swept(result, "alive", where), "dead": _swept(result, "dead", where),
                               "names": _sweep_names(result, where), "loss": _sweep_loss(result, where)}
    return clean


def _sweep_loss(result: Mapping[str, Any], where: str) -> Dict[str, float]:
    """address -> the share of its probes lost, in percent, from count mode's ``stats`` (empty without them)."""
    stats = result.get("stats")
    if stats is None:
        return {}
    if not isinstance(stats, Mapping):
        raise FleetError(f"{where}.stats: expected a dict of address -> count-mode numbers, got {kind(stats)}")
    loss = {}
    for address, entry in stats.items():
        # pylint: disable-next=unidiomatic-typecheck
        value = entry.get("loss_pct") if type(entry) is dict else None  # what ping_sweep gives: checked fast
        if (type(value) is float or type(value) is int) and 0 <= value <= 100:  # pylint: disable=C0123
            loss[canonical(address) or address] = float(value)
        else:
            value = _slow_loss(entry, f"{where}.stats[{shown(repr(address), 80)}]")
            if value is not None:
                loss[canonical(address) or str(address)] = value
    return loss


def _slow_loss(entry: Any, where: str) -> Optional[float]:
    """One stats entry's loss_pct that is not a plain number from 0 to 100: read, or refused naming the field."""
    if not isinstance(entry, Mapping):
        raise FleetError(f"{where}: expected a dict (sent, received, loss_pct), got {kind(entry)}")
    try:
        value = number(entry.get("loss_pct"), "")
    except _Bad as bad:
        raise FleetError(f"{where}.loss_pct: {bad.text}") from None
    if value is not None and value > 100.0:
        raise FleetError(f"{where}.loss_pct: expected a number from 0 to 100 or null, got {kind(entry['loss_pct'])}")
    return value


def mesh_addresses(value: Any) -> Dict[str, str]:
    """host -> the address the other hosts probe (the ``addresses`` option), each an IP address of its own.

    The mesh finds a host in the sweeps by this address, both in their one
    spelling (``canonical``); so a name (which the sweeps do not list) or an
    address two hosts share would misplace every cell of the matrix: both
    are refused.
    """
    value = decoded(value, "addresses")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FleetError(f"addresses: expected a dict of host -> the address the other hosts probe, got {kind(value)}")
    if len(value) > MESH_MAX_HOSTS:
        raise FleetError(f"addresses: {len(value)} hosts, more than the {MESH_MAX_HOSTS} one mesh holds; "
                         f"mesh a group of them (fleet_mesh_group in playbooks/site.yml)")
    found: Dict[str, str] = {}
    owner: Dict[str, str] = {}
    for host, address in value.items():
        if not isinstance(host, str) or not host.strip():
            raise FleetError(f"addresses: expected host names as keys, got {kind(host)}")
        where = f"addresses[{shown(repr(host), 80)}]"
        if not isinstance(address, str):
            raise FleetError(f"{where}: expected an IP address (the one the other hosts probe), got {kind(address)}")
        spelled = canonical(address.strip())
        if spelled is None:
            raise FleetError(f"{where}: {shown(repr(address), 80)} is not an IP address; give the address the other "
                             f"hosts probe (fleet_mesh_address in playbooks/site.yml), as ping_sweep lists it")
        if spelled in owner:
            raise FleetError(f"addresses: {shown(repr(owner[spelled]), 80)} and {shown(repr(host), 80)} both have "
                             f"{spelled}; each host needs an address of its own")
        owner[spelled] = host
        found[host] = spelled
    return found


def check_disk_reports(disks: Any) -> Dict[str, List[Any]]:
    """host -> its disk report's filesystems (not yet checked one by one: ``filesystems`` does that)."""
    disks = decoded(disks, "disk_reports")
    if not isinstance(disks, Mapping):
        raise FleetError(f"disk_reports: expected a dict of host -> disk_report result, got {kind(disks)}")
    found = {}
    for host, report in disks.items():
        rows = report.get("filesystems") if isinstance(report, Mapping) else None
        if not isinstance(rows, list):
            raise FleetError(f"disk_reports[{host!r}] is not a disk_report result (no 'filesystems' list)")
        found[str(host)] = rows
    return found


def filesystems(host: str, rows: List[Any]) -> List[Dict[str, Any]]:
    """One host's filesystems, each checked and normalised; FleetError names the host, the index and the field."""
    clean = []
    for index, fs in enumerate(rows):
        try:
            clean.append(filesystem(fs))
        except _Bad as bad:
            raise FleetError(f"disk_reports[{host!r}].filesystems[{index}]{bad.field}: {bad.text}") from None
    return clean


def filesystem(fs: Any) -> Dict[str, Any]:
    """One filesystem as the report uses it: numbers checked, reasons one line each (``_Bad`` if wrong).

    What disk_report returns (plain dicts, ints, floats, strings) passes the
    quick check; anything else takes the field-by-field one, which says what
    is wrong. A fleet of 10,000 hosts brings 100,000 of them.
    """
    return _quick(fs) or _checked(fs)


def _quick(fs: Any) -> Optional[Dict[str, Any]]:
    """The row when every field has the exact type and range disk_report gives it, else None (check it slowly)."""
    # pylint: disable=unidiomatic-typecheck,too-many-boolean-expressions
    if type(fs) is not dict:
        return None
    get = fs.get
    mount, device, fstype, size, used, avail, use, inode, status, reasons, error, forecast = (
        get("mount"), get("device"), get("fstype"), get("size_bytes"), get("used_bytes"), get("avail_bytes"),
        get("use_pct"), get("inode_pct"), get("status"), get("reasons"), get("error"), get("forecast"))
    if not (type(mount) is str and mount and (device is None or type(device) is str)
            and (fstype is None or type(fstype) is str) and (error is None or type(error) is str)
            and (size is None or type(size) is int and 0 <= size <= FLOAT_MAX)
            and (used is None or type(used) is int and 0 <= used <= FLOAT_MAX)
            and (avail is None or type(avail) is int and 0 <= avail <= FLOAT_MAX)
            and (use is None or (type(use) is int or type(use) is float) and 0 <= use <= 100)
            and (inode is None or (type(inode) is int or type(inode) is float) and 0 <= inode <= 100)
            and (status is None or status in STATUSES) and (not reasons or type(reasons) is list)):
        return None
    days = rate = None
    if forecast is not None:
        if type(forecast) is not dict:
            return None
        days, rate = forecast.get("days_to_full"), forecast.get("rate_per_day")
        if not ((days is None or type(days) is float and 0 <= days <= FLOAT_MAX)
                and (rate is None or type(rate) is float and -FLOAT_MAX <= rate <= FLOAT_MAX)):
            return None
    return {"mount": mount, "device": device, "fstype": fstype, "size_bytes": size, "used_bytes": used,
            "avail_bytes": avail, "use_pct": None if use is None else float(use),
            "inode_pct": None if inode is None else float(inode), "status": status,
            "reasons": _fs_reasons(reasons) if reasons else [], "error": error, "days_to_full": days,
            "rate_per_day": rate}


def _checked(fs: Any) -> Dict[str, Any]:
    """The row, field by field: numbers given as text are read, and what is wrong raises ``_Bad`` naming it."""
    if not isinstance(fs, Mapping):
        raise _Bad("", f"expected a filesystem (a dict with mount, use_pct, ...), got {kind(fs)}")
    get = fs.get
    mount = get("mount")
    if not isinstance(mount, str) or not mount:
        raise _Bad(".mount", f"expected a mount point, got {kind(mount)}")
    row: Dict[str, Any] = {"mount": mount, "device": _optional_text(get("device"), ".device"),
                           "fstype": _optional_text(get("fstype"), ".fstype")}
    for key in _BYTES:
        row[key] = number(get(key), "." + key, integer=True)
    for key in _PERCENT:
        row[key] = number(get(key), "." + key, high=100.0)
    status = get("status")
    if status is not None and status not in STATUSES:
        raise _Bad(".status", f"expected one of {', '.join(STATUSES)} (or null), got {kind(status)}")
    row["status"] = status
    row["reasons"] = _fs_reasons(get("reasons"))
    row["error"] = _optional_text(get("error"), ".error")
    forecast = get("forecast")
    if forecast is None:
        row["days_to_full"] = row["rate_per_day"] = None
    elif isinstance(forecast, Mapping):
        row["days_to_full"] = number(forecast.get("days_to_full"), ".forecast.days_to_full")
        row["rate_per_day"] = number(forecast.get("rate_per_day"), ".forecast.rate_per_day", low=-FLOAT_MAX)
    else:
        raise _Bad(".forecast", f"expected a dict (disk_report's forecast) or null, got {kind(forecast)}")
    return row


def _optional_text(value: Any, field: str) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise _Bad(field, f"expected a string or null, got {kind(value)}")


def _fs_reasons(value: Any) -> List[str]:
    """Why disk_report gave the status (``inode use 99% is at or above crit 90%``), each one printable line."""
    if value is None or value == []:
        return []
    if not isinstance(value, list):
        raise _Bad(".reasons", f"expected a list of strings (disk_report's reasons) or null, got {kind(value)}")
    for index, reason in enumerate(value):
        if not isinstance(reason, str):
            raise _Bad(f".reasons[{index}]", f"expected a string, got {kind(reason)}")
    return [shown(reason, REASON_MAX, words=True) for reason in value]


def number(value: Any, field: str, low: float = 0.0, high: float = FLOAT_MAX, integer: bool = False) -> Any:
    """A finite number from *low* to *high* (numeric text too: templating makes it), or None; ``_Bad`` otherwise.

    Integers are compared exactly, never converted first: ``10**400`` is
    refused as too large instead of overflowing a float.
    """
    kind_of = type(value)
    if kind_of is int:
        if low <= value <= high:
            return value if integer else float(value)
    elif kind_of is float:
        if low <= value <= high and (not integer or value.is_integer()):  # NaN fails every comparison
            return int(value) if integer else value
    elif value is None:
        return None
    elif kind_of is str:
        parsed = _numeric_text(value)
        if parsed is not None:
            try:
                return number(parsed, field, low, high, integer)
            except _Bad:
                pass
    too_big = " (too large for a float)" if kind_of is int and abs(value) > FLOAT_MAX else ""
    raise _Bad(field, f"expected {_expected(low, high, integer)} or null, got {kind(value)}{too_big}")


def _numeric_text(text: str) -> Optional[float]:
    """The number in *text* ("91", "2.5", "1048576"), or None; never an overflow, never a 5,000-digit parse."""
    text = text.strip()
    if not text or len(text) > _NUMERIC_TEXT_MAX:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _expected(low: float, high: float, integer: bool) -> str:
    what = "a whole number" if integer else "a number"
    if high < FLOAT_MAX:
        return f"{what} from {low:g} to {high:g}"
    return f"{what} of at least {low:g}" if low > -FLOAT_MAX else what
