# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The disk usage report: thresholds, statuses, and the text and HTML renderings.

PRIVATE to the sysops.fleet collection. Pure standard library.

``build()`` turns the filesystems read by ``_disk`` into a Report: each
filesystem gets a status (ok, warn, crit) with the reasons, ``alerts``
lists the ones that are not ok, ``text`` is a ``df -h``-style table and
``html`` the same table with a usage bar per filesystem coloured by status.
``run()`` is one whole report: read (``_disk``), assess and render, add
the fill rate of every filesystem from a history file (``_history``) when
the Config names one and the mail the spool could not deliver, then mail
it (``_mail_delivery``). The module and the watcher's ``report`` command
both call it with a Config from ``config_from_options()``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _disk, _history, _html, _mail_delivery, _sizes, _text

STATUSES = ("ok", "warn", "crit")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]?)(?:I?B)?\s*$", re.IGNORECASE)
MAX_SIZE = 1 << 70  # 1024E: a threshold above this is larger than any filesystem (and 10**400 overflows a float)
MAILER = "sysops.fleet disk_report"

Size = Union[int, float, str, None]


class ReportError(ValueError):
    """A threshold or report option is out of range; nothing was read or sent."""


def parse_size(value: Size, name: str) -> Optional[int]:
    """Bytes from ``10G``, ``512M``, ``1.5T`` or a plain number of bytes (units are powers of 1024)."""
    if value is None or value == "":
        return None
    shown = _shown(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ReportError(f"{name} must be a size such as 10G, 500M or a number of bytes, got {shown}")
    if isinstance(value, (int, float)):
        number, unit = value, ""
    else:
        match = _SIZE.match(value)
        if not match:
            raise ReportError(f"{name} must be a size such as 10G, 500M or a number of bytes, got {shown}")
        number, unit = float(match.group(1)), match.group(2).upper()
    if isinstance(number, float) and math.isnan(number):  # (an int is never NaN, and may not fit a float)
        raise ReportError(f"{name} must be a size such as 10G, 500M or a number of bytes, got {shown}")
    if number < 0:
        raise ReportError(f"{name} must not be negative, got {shown}")
    scale = 1024 ** (_sizes.UNITS.index(unit) + 1 if unit else 0)
    if number > MAX_SIZE // scale:  # compared before multiplying: 10**400 never becomes a float
        raise ReportError(f"{name} must be at most 1024E (larger than any filesystem), got {shown}")
    return int(number * scale)


def _shown(value: Any) -> str:
    """*value* for a message: its repr, cut short (a 400-digit number or a page of text is not repeated)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + _text.ELLIPSIS


@dataclass(frozen=True)
class Thresholds:
    """When a filesystem is warn or crit: use % and inode use % at or above, free bytes below."""

    warn: int = 80
    crit: int = 90
    inode_warn: int = 80
    inode_crit: int = 90
    free_warn: Optional[int] = None
    free_crit: Optional[int] = None

    def check(self) -> "Thresholds":
        for low, high in (("warn", "crit"), ("inode_warn", "inode_crit")):
            for name in (low, high):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
                    raise ReportError(f"{name} must be a whole percentage between 1 and 100, got {value!r}")
            if getattr(self, low) > getattr(self, high):
                raise ReportError(f"{low} ({getattr(self, low)}%) must not be above {high} ({getattr(self, high)}%): "
                                  f"a filesystem would turn crit before it warns")
        if self.free_warn is not None and self.free_crit is not None and self.free_warn < self.free_crit:
            raise ReportError(f"free_warn ({_sizes.human(self.free_warn)}) must not be below free_crit "
                              f"({_sizes.human(self.free_crit)}): the warning floor is the larger one")
        return self


def assess(fs: _disk.Filesystem, limits: Thresholds) -> Tuple[str, List[str]]:
    """The status of one filesystem and why; a filesystem that could not be probed is crit."""
    if fs.error:
        return "crit", [fs.error]
    found: List[Tuple[int, str]] = []
    for pct, warn, crit, what in ((fs.use_pct, limits.warn, limits.crit, "use"),
                                  (fs.inode_pct, limits.inode_warn, limits.inode_crit, "inode use")):
        if pct is not None and pct >= crit:
            found.append((2, f"{what} {pct}% is at or above crit {crit}%"))
        elif pct is not None and pct >= warn:
            found.append((1, f"{what} {pct}% is at or above warn {warn}%"))
    avail = fs.avail_bytes
    if avail is not None and limits.free_crit is not None and avail < limits.free_crit:
        found.append((2, f"{_sizes.human(avail)} free is below free_crit {_sizes.human(limits.free_crit)}"))
    elif avail is not None and limits.free_warn is not None and avail < limits.free_warn:
        found.append((1, f"{_sizes.human(avail)} free is below free_warn {_sizes.human(limits.free_warn)}"))
    level = max((item[0] for item in found), default=0)
    return STATUSES[level], [item[1] for item in found]


@dataclass
class Report:
    """One run's report: what the module returns and what the mail says."""

    host: str
    generated: datetime.datetime
    title: str
    filesystems: List[Dict[str, Any]] = field(default_factory=list)
    text: str = ""
    html: str = ""

    @property
    def alerts(self) -> List[Dict[str, Any]]:
        return [fs for fs in self.filesystems if fs["status"] != "ok"]

    @property
    def status(self) -> str:
        return max((fs["status"] for fs in self.filesystems), key=STATUSES.index, default="ok")


def assessed(filesystems: Sequence[_disk.Filesystem], limits: Thresholds) -> List[Dict[str, Any]]:
    """Each filesystem as a report row: its numbers plus ``status`` and ``reasons``."""
    rows = []
    for fs in filesystems:
        status, reasons = assess(fs, limits)
        row = fs.as_dict()
        row.update(status=status, reasons=reasons)
        rows.append(row)
    return rows


def build(filesystems: Sequence[_disk.Filesystem], limits: Thresholds, host: str,
          title: Optional[str] = None, now: Optional[datetime.datetime] = None) -> Report:
    """Assess every filesystem and render the report as text and HTML."""
    now = now or datetime.datetime.now(datetime.timezone.utc).astimezone()
    report = Report(host=host, generated=now, title=title or default_title(host),
                    filesystems=assessed(filesystems, limits))
    report.text = render_text(report)
    report.html = render_html(report)
    return report


def default_title(host: str) -> str:
    return f"Nightly Disk Usage Report for {host}"


def _pct(value: Optional[int]) -> str:
    return "-" if value is None else f"{value}%"


TEXT_COLUMNS = ("Filesystem", "Type", "Size", "Used", "Avail", "Use%", "Inodes", "IUse%", "Status", "Mounted on")
_LEFT = {"Filesystem", "Type", "Status", "Mounted on"}


def _cells(fs: Dict[str, Any]) -> List[str]:
    return [fs["device"], fs["fstype"], _sizes.human(fs["size_bytes"]), _sizes.human(fs["used_bytes"]),
            _sizes.human(fs["avail_bytes"]), _pct(fs["use_pct"]), _sizes.human(fs["inodes_total"]),
            _pct(fs["inode_pct"]), fs["status"], fs["mount"]]


def render_table(filesystems: Sequence[Dict[str, Any]]) -> str:
    """The ``df -h``-style table: text columns left-aligned, numbers right-aligned."""
    rows = [list(TEXT_COLUMNS)] + [_cells(fs) for fs in filesystems]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TEXT_COLUMNS))]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) if name in _LEFT else cell.rjust(w)
                 for cell, w, name in zip(row, widths, TEXT_COLUMNS)]
        cells[-1] = row[-1]  # no trailing blanks after the mount point
        lines.append(" ".join(cells))
    return "\n".join(lines)


def render_text(report: Report) -> str:
    """The plain part of the mail and the module's ``report``: title, table, alerts."""
    lines = [report.title, f"Generated {report.generated:%Y-%m-%d %H:%M:%S %Z}".rstrip(), ""]
    if report.filesystems:
        lines.append(render_table(report.filesystems))
    else:
        lines.append("No filesystem matched the selection.")
    lines.append("")
    if report.alerts:
        lines.append(f"Alerts ({len(report.alerts)}):")
        lines += [f"  {fs['status'].upper():4} {fs['mount']}: {'; '.join(fs['reasons'])}" for fs in report.alerts]
    else:
        lines.append("No alerts: every filesystem is below its thresholds.")
    return "\n".join(lines) + "\n"


HTML_COLUMNS = (_html.Column("Status"), _html.Column("Mounted on", mono=True), _html.Column("Filesystem", mono=True),
                _html.Column("Type"), _html.Column("Size", numeric=True), _html.Column("Used", numeric=True),
                _html.Column("Avail", numeric=True), _html.Column("Use%", numeric=True), _html.Column("Usage"),
                _html.Column("Inodes", numeric=True), _html.Column("IUse%", numeric=True))
ALERT_COLUMNS = (_html.Column("Status"), _html.Column("Mounted on", mono=True), _html.Column("Why"))


def _html_row(fs: Dict[str, Any]) -> _html.Row:
    device, fstype, size, used, avail, use, inodes, iuse, unused_status, mount = _cells(fs)
    return _html.Row([_html.badge(fs["status"]), mount, device, fstype, size, used, avail, use,
                      _html.usage_bar(fs["use_pct"], fs["status"]), inodes, iuse],
                     status=fs["status"], title="; ".join(fs["reasons"]))


def render_html(report: Report) -> str:
    """The HTML part: the table worst first, a usage bar per filesystem, the status as a word and a colour."""
    rows = _html.worst_first(report.filesystems, lambda fs: fs["status"])
    parts = [_html.heading(report.title, 1),
             _html.paragraph(f"Generated {report.generated:%Y-%m-%d %H:%M:%S %Z}".rstrip() + f" on {report.host}",
                             muted=True)]
    if rows:
        parts.append(_html.counted("filesystem", [fs["status"] for fs in rows], ", worst first"))
    parts.append(_html.table(HTML_COLUMNS, [_html_row(fs) for fs in rows],
                             empty="No filesystem matched the selection."))
    alerts = [_html.Row([_html.badge(fs["status"]), fs["mount"], "; ".join(fs["reasons"])], status=fs["status"])
              for fs in rows if fs["status"] != "ok"]
    if alerts:
        parts += [_html.heading(f"Alerts ({len(alerts)})"), _html.table(ALERT_COLUMNS, alerts)]
    elif rows:
        parts.append(_html.paragraph("No alerts: every filesystem is below its thresholds."))
    return _html.page(report.title, parts)


# ---- one run: read, assess, render, mail -------------------------------------------------------

@dataclass
class Config:
    """Everything one report run needs, validated: built by ``config_from_options``."""

    host: str
    mail: _mail_delivery.MailConfig
    selection: _disk.Selection = _disk.Selection()
    limits: Thresholds = Thresholds()
    probe_timeout: float = _disk.DEFAULT_PROBE_TIMEOUT
    workers: Optional[int] = None
    history_file: str = ""  # empty: no history, no fill rates
    sample_every: float = _history.DEFAULT_SAMPLE_EVERY
    keep_days: float = _history.DEFAULT_KEEP_DAYS
    rate_window: float = _history.DEFAULT_WINDOW

    @property
    def spool_dir(self) -> str:
        """Where this report's mail waits when it cannot be sent (the watcher makes it for its user)."""
        return self.mail.spool_dir


def _get(options: Mapping[str, Any], name: str, default: Any = None) -> Any:
    value = options.get(name)
    return default if value is None else value


def config_from_options(options: Mapping[str, Any], host: Optional[str] = None) -> Config:
    """Validate options named as the module's (missing or None = default) into a Config.

    Raises ValueError (ReportError, DiskError, MailConfigError) naming the
    option and what is wrong, before anything is read or sent.
    """
    host = host or socket.gethostname() or "localhost"
    selection = _disk.Selection(
        include_mounts=tuple(_get(options, "include_mounts", ())),
        exclude_mounts=tuple(_get(options, "exclude_mounts", ())),
        exclude_fstypes=tuple(_get(options, "exclude_fstypes", _disk.PSEUDO_FSTYPES)))
    selection.check()
    limits = Thresholds(
        warn=_get(options, "warn", 80), crit=_get(options, "crit", 90),
        inode_warn=_get(options, "inode_warn", 80), inode_crit=_get(options, "inode_crit", 90),
        free_warn=parse_size(options.get("free_warn"), "free_warn"),
        free_crit=parse_size(options.get("free_crit"), "free_crit")).check()
    return Config(
        host=host, selection=selection, limits=limits,
        probe_timeout=_disk.check_timeout(_get(options, "probe_timeout", _disk.DEFAULT_PROBE_TIMEOUT)),
        workers=_disk.check_workers(options.get("workers")),
        mail=_mail_delivery.config_from_options(options, host, default_subject=default_title(host)),
        history_file=options.get("history_file") or "")


@dataclass
class Outcome:
    """The result of one run: module return values, whether mail went out, the error if mail failed."""

    result: Dict[str, Any]
    changed: bool = False
    error: str = ""
    warnings: List[str] = field(default_factory=list)


def run(config: Config, check_mode: bool = False, now: Optional[datetime.datetime] = None) -> Outcome:
    """Read the filesystems, build the report and mail it (or spool it) as ``config.mail.send`` says.

    With ``config.history_file`` this reading is added to the history and
    every filesystem gets its fill rate (see ``add_fill_rates``). Mail the
    spool holds as dead letters or quarantined files is listed in the
    report ("Undelivered mail"). Check mode reads and reports as usual but
    never connects to a mail server nor writes the spool or the history.
    """
    filesystems = _disk.read_filesystems(config.selection, config.probe_timeout, config.workers)
    report = build(filesystems, config.limits, config.host, title=config.mail.subject, now=now)
    extra: Dict[str, Any] = {}
    warnings: List[str] = list(getattr(filesystems, "warnings", ()))  # mount-table lines that are no mount
    if config.history_file:
        extra, warning = add_fill_rates(report, config, write=not check_mode)
        warnings += [warning] if warning else []
    add_section(report, *_mail_delivery.undelivered_section(config.mail.spool_dir))
    outcome = mail_report(config, report, check_mode, extra)
    outcome.warnings[:0] = warnings
    if not filesystems:
        outcome.warnings.append("no filesystem matched include_mounts, exclude_mounts and exclude_fstypes")
    return outcome


def add_section(report: Report, text: str, html_part: str) -> None:
    """Append a section to the report's text and to its HTML page (before ``</body>``)."""
    if text:
        report.text += "\n" + text
    if html_part:
        report.html = report.html.replace("</body>", html_part + "</body>")


def add_fill_rates(report: Report, config: Config, write: bool = True) -> Tuple[Dict[str, Any], Optional[str]]:
    """Add this reading to ``config.history_file``; give every filesystem its ``forecast``.

    Each row of ``report.filesystems`` gets ``forecast`` (fill rate in bytes
    per day, days to full, when, and how much history that rests on; the
    rate is null until there is enough history). A "Fill rate" section is
    added to the text and HTML. Returns the extra result keys
    (``fill_rate``) and a warning when the history could not be saved.
    """
    now = report.generated.timestamp()
    found, warning = _history.update(config.history_file, report.filesystems, now, config.sample_every,
                                     config.keep_days, config.rate_window, write=write)
    forecasts = {f.mount: f for f in found}
    items = []
    for fs in report.filesystems:
        item = forecasts.get(fs["mount"])
        fs["forecast"] = None
        if item is not None:
            items.append(item)
            fs["forecast"] = {k: v for k, v in item.as_dict().items() if k not in ("mount", "avail_bytes")}
    if items:
        add_section(report, _history.render_text(items), _history.render_html(items))
    return {"fill_rate": [i.as_dict() for i in items]}, warning


def mail_report(config: Config, report: Report, check_mode: bool = False,
                extra: Optional[Dict[str, Any]] = None) -> Outcome:
    """Mail a built report as ``config.mail.send`` says, spooled earlier messages first; never raises for mail."""
    outcome = Outcome(result={"filesystems": report.filesystems, "alerts": report.alerts,
                              "report": report.text, "status": report.status, **(extra or {})})
    mail = dataclasses.replace(config.mail, subject=subject(config.mail.subject, report))
    mailing = _mail_delivery.mail_document(mail, report.text, report.html, alerting=bool(report.alerts),
                                           when=report.generated.timestamp(), check_mode=check_mode,
                                           what="the disk report", mailer=MAILER)
    outcome.result["mail"] = mailing.mail
    outcome.changed, outcome.error = mailing.changed, mailing.error
    if check_mode:  # changed says what a real run would do: send the report
        outcome.changed = _mail_delivery.decide(mail.send, mail.mail_to, bool(report.alerts))[0]
    outcome.warnings.extend(mailing.warnings)
    return outcome


def plural(count: int, noun: str, many: str = "") -> str:
    """``1 host``, ``2 hosts``; ``1 address``, ``3 addresses`` (*many* where adding an s is wrong)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def counted(count: int, noun: str, state: str, many: str = "") -> str:
    """``2 hosts crit``, ``1 filesystem warn``; empty for none (a subject lists only what is there)."""
    return f"{plural(count, noun, many)} {state}" if count else ""


def tagged_subject(status: str, base: str, counts: Sequence[str]) -> str:
    """``[CRIT] base: 2 hosts crit, 3 addresses down``: the worst status first, the counts after, as monit does."""
    return f"[{status.upper()}] {base}: {', '.join(counts)}"


def subject(base: str, report: Report) -> str:
    """The disk report's subject: ``[CRIT] Nightly Disk Usage Report for web1: 1 filesystem crit, 2 filesystems warn``.
    """
    statuses = [fs["status"] for fs in report.filesystems]
    counts = [counted(statuses.count("crit"), "filesystem", "crit"),
              counted(statuses.count("warn"), "filesystem", "warn")]
    counts = [c for c in counts if c] or [counted(len(statuses), "filesystem", "ok") or "no filesystem matched"]
    return tagged_subject(report.status, base, counts)
