# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The watch loop: settings, disk and host checks, state changes, alerts, history.

PRIVATE to the sysops.fleet collection. Pure standard library.

Every ``interval`` seconds the watcher reads the disks (``_disk``, assessed
by ``_report.assess``), probes the watched hosts (``_sweep.sweep``),
compares with the state it saved last time and mails an alert only for
what *changed* (ok -> warn, warn -> crit, crit -> ok, up -> down, down ->
up). The state survives restarts, so restarting the daemon does not repeat
alerts. Each round also delivers mail left in the spool once the server
answers again, and records a disk-use sample for the daily report's fill
rate (``_history``). With ``[metrics] textfile_dir`` each round also writes
its findings for node_exporter's textfile collector (``_metrics``).

Settings come from an INI file (``watcher.ini``) whose mail and disk
options are named as the ``disk_report`` module's, and are validated by
the same function (``_report.config_from_options``).
"""

from __future__ import annotations

import configparser
import dataclasses
import datetime
import difflib
import html
import json
import logging
import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import (_alert_rules, _disk, _fanout, _files, _history, _lookup, _mail, _mail_delivery, _mail_spool,
               _metrics, _numbers, _privilege, _report, _sd_notify, _sweep, _sweep_options, _targets, _text)

LOG = logging.getLogger("fleet-watcher")
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86400.0
STATE_FILE = "state.json"
HISTORY_FILE = "history.json"
DAILY_REPORT = "daily-report.txt"  # the latest daily report, in state_dir
SEVERITY = {"ok": 0, "warn": 1, "crit": 2}
HOST_SEVERITY = {level: rank for rank, level in enumerate(_alert_rules.HOST_LEVELS)}
REPEAT_LOG = 3600.0  # a problem that lasts is logged again this often (status and metrics show it every round)
# While a sweep runs the watchdog is petted until SWEEP_SLACK x its estimate + SWEEP_GRACE seconds: a sweep that
# has not ended by then is hung, and systemd must see the silence and restart the daemon.
SWEEP_SLACK = 2.0
SWEEP_GRACE = 5.0
DELIVERY_GRACE = 10.0  # seconds a delivery may take beyond its conversation and the spool's waits (files, fork)
# [hosts] names the sweep's targets "watch"; every other key of the sweep's spec keeps its name there.
HOST_NAMES = {"targets": "watch"}
# The watcher's own defaults where they differ from the sweep's (measured: docs/watcher.md, "Alerts that do not cry wolf").
HOST_DEFAULTS = {"count": 4}
HOST_RULE_KEYS = ("down_after", "window", "clear_after", "loss_warn", "loss_crit", "rtt_warn", "rtt_crit")
HOST_SECTION = "host "  # [host NAME]: thresholds for one watched host


def delivery_seconds(smtp_timeout: float) -> float:
    """How long one delivery may take: its conversation, the spool's lock, another user's spool worker, slack."""
    return smtp_timeout + _mail_spool.LOCK_WAIT + _mail_delivery.OWNER_WAIT + DELIVERY_GRACE


class DeliveryHung(RuntimeError):
    """A delivery outlived ``delivery_seconds`` and was ended."""


class WatcherConfigError(ValueError):
    """The watcher's settings file is missing, unreadable or wrong; the message names the option."""


@dataclass
class Settings:
    """Everything the watcher needs, validated."""

    path: str
    interval: float = 60.0
    pidfile: str = "/run/sysops-fleet/watcher.pid"
    log_file: str = "/var/log/sysops-fleet/watcher.log"
    state_dir: str = "/var/lib/sysops-fleet"
    user: Optional[str] = None
    umask: int = 0o022
    sweep: _sweep_options.SweepOptions = field(
        default_factory=lambda: _sweep_options.SweepOptions(**HOST_DEFAULTS))  # type: ignore[arg-type]
    debounce: _alert_rules.Debounce = field(default_factory=_alert_rules.Debounce)
    host_limits: _alert_rules.HostLimits = field(default_factory=_alert_rules.HostLimits)
    limits_by_host: Dict[str, _alert_rules.HostLimits] = field(default_factory=dict)  # [host NAME] sections
    disk_margin: float = _alert_rules.DEFAULT_DISK_MARGIN
    sample_every: float = _history.DEFAULT_SAMPLE_EVERY
    keep_days: float = _history.DEFAULT_KEEP_DAYS
    rate_window: float = _history.DEFAULT_WINDOW
    textfile_dir: str = ""  # node_exporter's textfile directory; empty: no metrics
    report: _report.Config = field(default_factory=lambda: _report.config_from_options({}))

    @property
    def hosts(self) -> List[str]:
        return self.sweep.targets

    @property
    def host_timeout(self) -> float:
        return self.sweep.timeout

    @property
    def host_retries(self) -> int:
        return self.sweep.retries

    @property
    def host_method(self) -> str:
        return self.sweep.method

    @property
    def estimated_method(self) -> str:
        """The method a round's estimate counts with: ``auto`` as socket (the cheaper: only what is surely too
        long is refused), else the one set."""
        return "socket" if self.sweep.method == "auto" else self.sweep.method

    def watched_addresses(self) -> int:
        """The addresses of the watch list as written less ``exclude``, nothing resolved (a name counts as one)."""
        try:
            return _targets.size_after(self.sweep.targets, self.sweep.exclude, "[hosts] watch")
        except _targets.TargetError:
            return len(self.sweep.targets)

    def sweep_seconds(self, longest: bool = False) -> float:
        """How long one round's sweep takes: the sweep's own estimate (``SweepOptions.estimate``). *longest*: with
        method auto, the slower of the two it may pick (what the watchdog must allow, not what is refused)."""
        methods = ("socket", "ping") if longest and self.sweep.method == "auto" else (self.estimated_method,)
        return max(self.sweep.estimate(max(1, self.watched_addresses()), m).seconds for m in methods)

    def limits_for(self, key: str, address: str) -> _alert_rules.HostLimits:
        """The thresholds of one watched host: its [host NAME] section (by name, else address), else [hosts]'."""
        return self.limits_by_host.get(key) or self.limits_by_host.get(address) or self.host_limits

    @property
    def state_file(self) -> str:
        return os.path.join(self.state_dir, STATE_FILE)

    @property
    def history_file(self) -> str:
        return os.path.join(self.state_dir, HISTORY_FILE)


def _words(text: str) -> List[str]:
    """A list option: entries separated by commas, blanks or new lines."""
    return [w for w in re.split(r"[\s,]+", text.strip()) if w]


def _lines(text: str) -> List[str]:
    """A list option whose entries may hold blanks (mail addresses with names): one per line or comma."""
    return [w.strip() for w in re.split(r"[\n,]+", text) if w.strip()]


def _number(section: configparser.SectionProxy, name: str, default: float, low: float, high: float) -> float:
    raw = section.get(name, "").strip()
    if not raw:
        return default
    value = _numbers.decimal_number(raw, f"[{section.name}] {name}", WatcherConfigError)
    if not low <= value <= high:
        raise WatcherConfigError(f"[{section.name}] {name} must be between {low:g} and {high:g}, "
                                 f"got {_text.printable(raw, 40)}")
    return value


def _whole(section: configparser.SectionProxy, name: str, default: int, low: int, high: int) -> int:
    """A count (rounds, percent, a port): ``4.9`` is refused, not cut to 4 (the operator meant something else)."""
    raw = section.get(name, "").strip()
    if not raw:
        return default
    value = _numbers.whole_number(raw, f"[{section.name}] {name}", WatcherConfigError)
    if not low <= value <= high:
        raise WatcherConfigError(f"[{section.name}] {name} must be between {low} and {high}, got {value}")
    return value


def _boolean(section: configparser.SectionProxy, name: str, default: bool) -> bool:
    if not section.get(name, "").strip():
        return default
    try:
        return section.getboolean(name)
    except ValueError:
        raise WatcherConfigError(f"[{section.name}] {name} must be true or false, got {section.get(name)!r}") from None


def _trusted_text(path: str) -> str:
    """The settings as root reads them: a regular file only root can change, in a directory likewise.

    The settings say which user the daemon runs as and where its files
    are; if that user could change them, root would act on the user's word.
    """
    fd = _files.open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise WatcherConfigError(
                f"settings file {path} can be changed by a user other than root (owner uid {st.st_uid}, mode "
                f"{stat.S_IMODE(st.st_mode):04o}): as root, fleet-watcher reads only settings that root alone "
                f"can change (owner root, not writable by group or others)")
        try:
            boundary = _privilege.trust_boundary(os.path.dirname(os.path.abspath(path)))
        except _privilege.PrivilegeError as exc:
            boundary, why = (-1, -1), exc.strerror
        else:
            why = f"it lies in a directory that uid {boundary[0]} controls" if boundary else ""
        if boundary is not None:
            raise WatcherConfigError(f"settings file {path} can be replaced by a user other than root ({why}): "
                                     f"as root, fleet-watcher reads only settings that root alone can change")
        return handle.read(1 << 20).decode("utf-8")


def load_settings(path: str, trusted: bool = False) -> Settings:
    """Read and validate ``watcher.ini``; WatcherConfigError says which option is wrong.

    *trusted* (root): the file must be one that root alone can change.
    """
    try:
        text = _trusted_text(path) if trusted else _files.read_text(path, 1 << 20)
    except FileNotFoundError:
        raise WatcherConfigError(f"settings file {path} does not exist (give --config PATH)") from None
    except PermissionError:
        raise WatcherConfigError(f"settings file {path} is not readable by this user "
                                 f"(it holds secrets: mode 0640, group of the watcher's user)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WatcherConfigError(f"cannot read settings file {path}: {exc}") from None
    return settings_from_text(text, path)


def settings_from_text(text: str, path: str, on_target: bool = True) -> Settings:
    """The settings a file holding *text* at *path* gives: what ``load_settings`` checks, for text not yet written
    (the role checks the file it would write before it touches the host). Not *on_target* (the controller):
    ``smtp_ca_file`` names a file of the target's, left for the daemon there to check."""
    parser = configparser.ConfigParser(interpolation=None, default_section="__defaults__")
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise WatcherConfigError(f"cannot read settings file {path}: {exc}") from None
    sections = ("watcher", "disk", "hosts", "mail", "history", "metrics")
    for name in sections:
        if not parser.has_section(name):
            parser.add_section(name)
    unknown = set(parser.sections()) - set(sections) - {n for n in parser.sections() if n.startswith(HOST_SECTION)}
    if unknown:
        raise WatcherConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    main, disk, hosts, mail, hist, metrics = (parser[n] for n in sections)
    umask_text = main.get("umask", "022").strip() or "022"
    if not re.fullmatch(r"[0-7]{1,4}", umask_text):  # int(text, 8) also took '+5', '1_0', '0o22' and other digits
        raise WatcherConfigError(f"[watcher] umask must be octal such as 022 (the digits 0-7), got "
                                 f"{_numbers.shown(umask_text)}")
    umask = int(umask_text, 8)
    if not 0 <= umask <= 0o777:
        raise WatcherConfigError(f"[watcher] umask must be between 000 and 777, got {umask_text!r}")
    settings = Settings(
        path=os.path.abspath(path),
        interval=_number(main, "interval", 60.0, MIN_INTERVAL, MAX_INTERVAL),
        pidfile=_absolute(main, "pidfile", Settings.pidfile),
        log_file=_absolute(main, "log_file", Settings.log_file),
        state_dir=_absolute(main, "state_dir", Settings.state_dir),
        user=main.get("user", "").strip() or None,
        umask=umask,
        sample_every=_number(hist, "sample_every", _history.DEFAULT_SAMPLE_EVERY, 1, _history.DAY),
        keep_days=_number(hist, "keep_days", _history.DEFAULT_KEEP_DAYS, 1, 366),
        rate_window=_number(hist, "window", _history.DEFAULT_WINDOW, 600, 366 * _history.DAY),
        textfile_dir=_absolute(metrics, "textfile_dir", "") if metrics.get("textfile_dir", "").strip() else "",
    )
    _host_settings(settings, parser)
    settings.disk_margin = _number(disk, "clear_margin", _alert_rules.DEFAULT_DISK_MARGIN, 0, 50)
    settings.report = _report_config(disk, mail, settings.state_dir, on_target)
    limits = settings.report.limits
    lowest = min(limits.warn, limits.inode_warn)
    if settings.disk_margin >= lowest:  # a warn that could only clear below 0 % would never clear
        if disk.get("clear_margin", "").strip():
            raise WatcherConfigError(f"[disk] clear_margin ({settings.disk_margin:g}) must be below the lowest warn "
                                     f"threshold ({lowest:g}): a status clears only clear_margin points under its "
                                     "threshold, so it would never clear")
        settings.disk_margin = lowest / 2  # the default margin, under a warn as low as 1 (alert on everything)
    return settings


def _host_settings(settings: Settings, parser: configparser.ConfigParser) -> None:
    """[hosts]: the sweep's options (the core's one spec, ``watch`` for targets) and the alert rules;
    [host NAME]: thresholds for one watched host. WatcherConfigError names the key and the section."""
    hosts = parser["hosts"]
    known = set(_sweep_options.keys(HOST_NAMES)) | set(HOST_RULE_KEYS)
    for key in sorted(set(hosts) - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        raise WatcherConfigError(f"[hosts] unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                 + f"; the keys are {', '.join(sorted(known))}")
    try:
        settings.sweep = _sweep_options.from_text({k: v for k, v in hosts.items() if k != "targets"}, "[hosts]",
                                                  HOST_NAMES, HOST_DEFAULTS)
        settings.debounce = _alert_rules.Debounce(
            down_after=_whole(hosts, "down_after", _alert_rules.DEFAULT_DOWN_AFTER, 1, _alert_rules.MAX_WINDOW),
            window=_whole(hosts, "window", _alert_rules.DEFAULT_WINDOW, 1, _alert_rules.MAX_WINDOW),
            clear_after=_whole(hosts, "clear_after", _alert_rules.DEFAULT_CLEAR_AFTER, 1,
                               _alert_rules.MAX_WINDOW)).check()
        settings.host_limits = _alert_rules.limits_from(hosts, "[hosts]")
        for name in parser.sections():
            if name.startswith(HOST_SECTION):
                key, limits = _host_section(parser[name], name, settings)
                if key in settings.limits_by_host:
                    raise WatcherConfigError(f"[{name}] is the host of another [host ...] section ({key}, "
                                             "written another way): keep one section per host")
                settings.limits_by_host[key] = limits
    except (ValueError, _targets.TargetError) as exc:
        raise WatcherConfigError(str(exc)) from None
    _loss_needs_count(settings)
    try:  # the watch list, refused now (not at the first round) if it can never be swept
        _targets.parse_all(settings.sweep.targets, "[hosts] watch", settings.sweep.max_hosts)
        _targets.parse_all(settings.sweep.exclude, "[hosts] exclude")
    except _targets.TargetError as exc:
        raise WatcherConfigError(str(exc)) from None
    _round_fits(settings)


def _round_fits(settings: Settings) -> None:
    """Refuse a sweep that would take an hour, or a round that would not end before the next is due.

    A round longer than the interval runs straight into the next one, and
    under systemd it would outlast the watchdog every round. The estimate is
    the sweep's own (``SweepOptions.estimate``: rate, count x spacing,
    timeout and retries, concurrency x workers, method=ping's process per
    address), for the watch list as written (a name counts as one address).
    """
    if not settings.hosts:
        return
    addresses, method = settings.watched_addresses(), settings.estimated_method
    try:
        settings.sweep.check_size(addresses, method)
    except _sweep_options.SweepError as exc:
        raise WatcherConfigError(f"[hosts] {exc}") from None
    found = settings.sweep.estimate(addresses, method)
    if found.seconds >= settings.interval:
        raise WatcherConfigError(
            f"[hosts] {found.bound}: not less than [watcher] interval = {settings.interval:g} s, so every round "
            f"would run into the next (and outlast a systemd watchdog). {found.fix[0].upper() + found.fix[1:]}, "
            f"or raise interval")


def _loss_needs_count(settings: Settings) -> None:
    """A loss threshold needs count 2 or more (one probe a round: a host either answers or is down), and enough
    probes in the window to tell it apart from chance (``_alert_rules.resolvable``): refused otherwise."""
    sections = [("[hosts]", settings.host_limits)]
    sections += [(f"[{HOST_SECTION}{k}]", v) for k, v in settings.limits_by_host.items()]
    for where, limits in sections:
        for key in ("loss_warn", "loss_crit"):
            if settings.sweep.count <= 1 and getattr(limits, key, None) is not None:
                raise WatcherConfigError(f"{where} {key} needs [hosts] count of 2 or more probes a round (count is "
                                         f"{settings.sweep.count}: a host either answers or is down); set count, "
                                         f"or remove {key}")
        try:
            _alert_rules.resolvable(limits, settings.sweep.count, where)
        except _alert_rules.RuleError as exc:
            raise WatcherConfigError(str(exc)) from None


def _host_section(section: configparser.SectionProxy, name: str, settings: Settings):
    """One [host NAME] section: NAME as watched (a name of ``watch``, or an address it covers) and its thresholds."""
    where = f"[{name}]"
    host = name[len(HOST_SECTION):].strip()
    extra = sorted(set(section) - {"loss_warn", "loss_crit", "rtt_warn", "rtt_crit"})
    if extra:
        raise WatcherConfigError(f"{where} unknown key {extra[0]!r}; a [host NAME] section takes loss_warn, loss_crit, "
                                 "rtt_warn and rtt_crit")
    target = _targets.parse(host, where)
    watched = _targets.parse_all(settings.sweep.targets, "[hosts] watch")
    if isinstance(target, _targets.Name):
        covered = any(isinstance(t, _targets.Name) and t.name == target.name for t in watched)
        key = target.name
    else:
        covered = target.first == target.last and any(
            isinstance(t, _targets.Span) and t.version == target.version and t.first <= target.first <= t.last
            for t in watched)
        key = _targets.address_text(target.version, target.first)
    if not covered:
        raise WatcherConfigError(f"{where}: {host!r} is not one watched host of [hosts] watch (a name given there, "
                                 "or one address it covers)")
    return key, _alert_rules.limits_from(section, where, settings.host_limits)


def _absolute(section: configparser.SectionProxy, name: str, default: str) -> str:
    value = section.get(name, "").strip() or default
    if not os.path.isabs(value):
        raise WatcherConfigError(f"[{section.name}] {name} must be an absolute path, got {value!r}")
    return value


def _report_config(disk: configparser.SectionProxy, mail: configparser.SectionProxy, state_dir: str,
                   on_target: bool = True) -> _report.Config:
    """The disk_report Config from the [disk] and [mail] sections, validated by the module's own code."""
    options: Dict[str, Any] = {}
    for name in ("warn", "crit", "inode_warn", "inode_crit"):
        if disk.get(name, "").strip():
            options[name] = _whole(disk, name, 0, 1, 100)
    for name in ("free_warn", "free_crit"):
        options[name] = disk.get(name, "").strip() or None
    for name in ("include_mounts", "exclude_mounts", "exclude_fstypes"):
        if disk.get(name, "").strip():
            options[name] = _words(disk[name])
    options["probe_timeout"] = _number(disk, "probe_timeout", _disk.DEFAULT_PROBE_TIMEOUT, 0.1, _disk.MAX_PROBE_TIMEOUT)
    options["mail_to"] = _lines(mail.get("to", ""))
    for option, key in (("mail_from", "from"), ("subject", "subject"), ("send", "send"), ("smtp_host", "smtp_host"),
                        ("smtp_security", "smtp_security"), ("smtp_username", "smtp_username"),
                        ("smtp_password", "smtp_password"), ("smtp_ca_file", "smtp_ca_file")):
        value = mail.get(key, "").strip()
        if value and (on_target or option != "smtp_ca_file"):
            options[option] = value
    if mail.get("smtp_port", "").strip():
        options["smtp_port"] = _whole(mail, "smtp_port", 25, 1, 65535)
    options["smtp_timeout"] = _number(mail, "smtp_timeout", 30.0, 0.1, 3600)
    options["smtp_validate_certs"] = _boolean(mail, "smtp_validate_certs", True)
    options["smtp_allow_plaintext_auth"] = _boolean(mail, "smtp_allow_plaintext_auth", False)
    options["spool_dir"] = mail.get("spool_dir", "").strip() or os.path.join(state_dir, "spool")
    options["spool_lifetime_days"] = mail.get("spool_lifetime_days", "").strip() or None  # checked with the rest
    try:
        return _report.config_from_options(options)
    except ValueError as exc:
        raise WatcherConfigError(f"[disk]/[mail]: {exc}") from None


# ---- state -------------------------------------------------------------------------------------

STATE_MAX_BYTES = 16 << 20


STATE_BYTES_PER_HOST = 1024  # a watched host's entry is about 500 bytes (its rounds, counts, loss memory)
STATE_LIMIT = 512 << 20


def state_limit(settings: "Settings") -> int:
    """The most bytes the state file may hold for these settings: 16 MiB, or 1 KiB a watched host more (a /16
    wrote 33 MB that the 16 MiB limit then refused to read: every alert forgotten at each restart)."""
    return min(STATE_LIMIT, max(STATE_MAX_BYTES, settings.watched_addresses() * STATE_BYTES_PER_HOST + (1 << 20)))


def load_state(path: str, limit: int = STATE_MAX_BYTES) -> Dict[str, Any]:
    """The state saved by the last round; empty if there is none (first start) or it is unreadable (logged).

    Read as ``_files.read_text`` does, at most *limit* bytes: a link or a FIFO in its place is not followed
    or blocked on. Whatever does not have the shape a round writes (a disk or host entry that is no mapping
    with a text status, a count that is no number) is left out, so that no reader trips on it.
    """
    try:
        data = json.loads(_files.read_text(path, limit))
    except FileNotFoundError:
        return {"disks": {}, "hosts": {}}
    except (OSError, ValueError, RecursionError) as exc:
        LOG.warning("cannot read the state %s (%s): starting afresh, every alert forgotten", path,
                    _text.printable(str(exc), 200))
        return {"disks": {}, "hosts": {}}
    if not isinstance(data, dict):
        return {"disks": {}, "hosts": {}}
    for key in ("disks", "hosts"):
        entries = data.get(key)
        data[key] = {name: entry for name, entry in entries.items()
                     if isinstance(entry, dict) and isinstance(entry.get("status"), str)} \
            if isinstance(entries, dict) else {}
    for key in ("last_check", "spool_pending"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            data[key] = None
    if data.get("last_round") is not None and not isinstance(data.get("last_round"), dict):
        data["last_round"] = None
    return data


def save_json(path: str, data: Any) -> None:
    """Atomically: a reader (``status --json``) never sees half a file."""
    _files.write_atomic(path, json.dumps(data, indent=1, sort_keys=True))


@dataclass
class Change:
    """One state change worth an alert."""

    kind: str   # "disk" or "host"
    name: str   # mount point or address
    old: str
    new: str
    detail: str = ""

    @property
    def worse(self) -> bool:
        order = HOST_SEVERITY if self.kind == "host" else SEVERITY
        return order.get(self.new, 0) > order.get(self.old, 0)

    def line(self) -> str:
        what = f"filesystem {self.name}" if self.kind == "disk" else f"host {self.name}"
        text = f"{what}: {self.old} -> {self.new}"
        return f"{text} ({self.detail})" if self.detail else text


Sweeper = Callable[..., Dict[str, Any]]
Reader = Callable[..., List[_disk.Filesystem]]


class Watcher:
    """One watcher: its settings, its saved state, and what one round does."""

    def __init__(self, settings: Settings, sweeper: Sweeper = _sweep.sweep, reader: Reader = _disk.read_filesystems,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.sweeper = sweeper
        self.reader = reader
        self.clock = clock
        self.state = load_state(settings.state_file, state_limit(settings))
        self._rows: List[Dict[str, Any]] = []
        self._forecasts: List[_history.Forecast] = []
        self._metrics_error = ""
        self._notify_error = ""
        self._unsent: Optional[tuple] = None  # (message, sender, recipients) of an alert being delivered
        self._logged: Dict[str, float] = {}  # problem -> when it was last logged
        self._notifier: Optional[_sd_notify.Notifier] = None  # systemd's, while run() runs

    # ---- checks -------------------------------------------------------------------------------

    def check_disks(self, now: float) -> List[Change]:
        """Assess every filesystem; a change of status (ok/warn/crit) is a Change. WATCHDOG=1 while the probes
        run, for as long as they may take (``_disk.DISK_PASSES`` x probe_timeout and ``SWEEP_GRACE``): a mount
        that hangs df no longer silences a daemon whose WatchdogSec is shorter than two probe timeouts."""
        config = self.settings.report
        beat = self._heartbeat(_disk.DISK_PASSES * config.probe_timeout + SWEEP_GRACE)
        found = self.reader(config.selection, config.probe_timeout, config.workers,
                            **({"heartbeat": beat} if beat is not None else {}))
        for warning in getattr(found, "warnings", ()):  # mount-table lines that are no mount: never dropped silently
            LOG.warning("%s", warning)
        known = self.state["disks"]
        rows = []
        failing: Dict[str, int] = {}
        for fs in found:
            previous = known.get(fs.mount, {}).get("status", "ok")
            status, reasons = _alert_rules.disk_status(fs, config.limits, previous, self.settings.disk_margin)
            if fs.error:
                status, reasons, failing[fs.mount] = self._probe_failed(fs.mount, previous, status, reasons)
            row = fs.as_dict()
            row.update(status=status, reasons=reasons)
            rows.append(row)
        changes = []
        current = {}
        for row in rows:
            mount, status, reasons = row["mount"], row["status"], row["reasons"]
            old = known.get(mount, {}).get("status", "ok")
            since = known.get(mount, {}).get("since", now) if old == status else now
            current[mount] = {"status": status, "since": since, "use_pct": row["use_pct"],
                              "inode_pct": row["inode_pct"], "reasons": reasons}
            if mount in failing:
                current[mount]["failed_rounds"] = failing[mount]
            if old != status:
                changes.append(Change("disk", mount, old, status, "; ".join(reasons) or "back below its thresholds"))
        self.state["disks"] = current
        self._rows = rows
        self._record_history(rows, now)
        return changes

    def _probe_failed(self, mount: str, previous: str, status: str, reasons: List[str]) -> Tuple[str, List[str], int]:
        """A filesystem whose probe failed (timed out, df failed) this round: crit only once it failed
        ``down_after`` rounds in a row, as a host is down; until then it keeps its status, the failure in its
        reasons. A mount the watcher has not seen before is crit at once (``check`` run once says so). A probe
        that times out 1 round in 20 (a busy NFS server) made 98 alert changes in 1,000 rounds (an outside
        tester's finding)."""
        known = self.state["disks"].get(mount)
        before = known.get("failed_rounds", 0) if isinstance(known, dict) else 0
        rounds = (before if isinstance(before, int) and not isinstance(before, bool) and before >= 0 else 0) + 1
        needed = self.settings.debounce.down_after
        if rounds >= needed or known is None or previous not in _report.STATUSES:  # a mount new to it: at once
            return status, reasons, rounds
        return previous, reasons + [f"probe failed {rounds} round(s) in a row (crit after {needed})"], rounds

    def check_hosts(self, now: float) -> List[Change]:
        """Probe the watched hosts; a change of alerted status (up, warn, crit, down) is a Change.

        Each round is seen as up, warn, crit (a threshold of the host's) or
        down (nothing answered); the alerted status follows the rounds by
        ``_alert_rules.next_level`` (K of the last N rounds, clear after M).
        """
        if not self.settings.hosts:
            self.state["hosts"] = {}
            return []
        options = self.settings.sweep
        extra = {k: v for k, v in dataclasses.asdict(options).items() if k != "targets"}
        beat = self._sweep_heartbeat()
        if beat is not None:
            extra["heartbeat"] = beat
        result = self.sweeper(options.targets, keep_rtts=True, **extra)
        changes = []
        known = self.state["hosts"]
        current = {}
        for address, entry in result["hosts"].items():
            key = entry.get("name") or address
            current[key], change = self._host_round(key, address, entry, known.get(key, {}), now)
            if change is not None:
                changes.append(change)
        self.state["hosts"] = current
        return changes

    def _sweep_heartbeat(self) -> Optional[Callable[[], None]]:
        """WATCHDOG=1 while names are looked up and the sweep's workers probe, but only as long as both may
        take (the lookups' ``_lookup.bound``, then ``SWEEP_SLACK`` x the sweep's estimate + ``SWEEP_GRACE``): a
        round longer than ``WatchdogSec=`` lives, a hung sweep falls silent and systemd restarts the daemon."""
        sweep = self.settings.sweep
        lookups = _lookup.bound(_targets.names_in(sweep.targets, sweep.exclude))
        return self._heartbeat(lookups + SWEEP_SLACK * self.settings.sweep_seconds(longest=True) + SWEEP_GRACE)

    def _heartbeat(self, seconds: float) -> Optional[Callable[[], None]]:
        """A callable that sends WATCHDOG=1 once every half watchdog period, for *seconds* from now and no longer
        (what may take that long is hung after it, and systemd must hear the silence). None without a watchdog."""
        notifier = self._notifier
        every = notifier.watchdog_every if notifier is not None else None
        if not every:
            return None
        started = time.monotonic()
        until = started + seconds
        last = [started - every]  # the first call pets at once: what came before may have taken a while

        def beat() -> None:
            now = time.monotonic()
            if now - last[0] >= every and now <= until:
                last[0] = now
                self._notify(notifier, notifier.ping)
        return beat

    def _host_round(self, key: str, address: str, entry: Mapping[str, Any], old: Mapping[str, Any],
                    now: float) -> Tuple[Dict[str, Any], Optional[Change]]:
        """One watched host's state after this round, and the Change to alert on, if any."""
        rules = self.settings.debounce
        top = _sweep_options.MAX_COUNT
        sent = _alert_rules.counts(old.get("sent"), rules.window - 1, top) + [int(entry.get("sent", 1))]
        received = _alert_rules.counts(old.get("received"), rules.window - 1, top) + [
            int(entry.get("received", 1 if entry.get("alive") else 0))]
        in_a_row = _alert_rules.silence_needed(sent, received, self.settings.sweep.count, rules.down_after)
        keep = max(rules.window, rules.clear_after, in_a_row)
        loss = _alert_rules.pooled_loss(sent, received)
        limits = self.settings.limits_for(key, address)
        reasons: List[str] = []
        if entry.get("alive"):  # this round's RTT, K of N below; loss over the rounds' probes (judge_loss)
            level, reasons = limits.level(None, entry.get("rtt_ms"))
        else:
            level = "down"
        loss_level, memory = _alert_rules.judge_loss(old.get("loss_memory"), limits, sent[-1], received[-1])
        if loss_level != "up":
            reasons = reasons + [self._loss_reason(limits, loss_level, loss, len(sent))]
        seen = _alert_rules.remember(_alert_rules.seen_letters(old.get("seen"), keep), level, keep)
        previous = old.get("status") if old.get("status") in HOST_SEVERITY else "up"
        counted, seen = _alert_rules.advance(previous, seen, rules, in_a_row)
        status = max(counted, loss_level, key=_alert_rules.severity)  # down (the down rule's) is above both
        state: Dict[str, Any] = {"status": status, "since": old.get("since", now) if status == previous else now,
                                 "address": address, "rtt_ms": entry.get("rtt_ms"), "seen": seen, "level": level,
                                 "sent": sent, "received": received, "loss_pct": loss, "loss_memory": memory}
        if reasons:
            state["reasons"] = reasons
        if entry.get("error"):
            state["error"] = entry["error"]
        _metrics.count_round(state, old, entry)
        if status == previous:
            return state, None
        was = _alert_rules.judge_loss(old.get("loss_memory"), limits, 0, 0)[0]
        if status != "down" and _alert_rules.severity(status) < _alert_rules.severity(previous) \
                and _alert_rules.severity(loss_level) < _alert_rules.severity(was) == _alert_rules.severity(previous):
            threshold = limits.loss_warn if was == "warn" else limits.loss_crit
            detail = (f"loss back under {_alert_rules.LOSS_CLEAR:g} x loss_{was} {threshold:g}% by "
                      f"{_alert_rules.LOSS_EVIDENCE:g} probes or more ({loss:g}% of the last {len(sent)} rounds' probes)")
        else:
            detail = self._host_detail(entry, status, reasons, seen, status == loss_level != counted)
        return state, Change("host", key, previous, status, detail)

    @staticmethod
    def _loss_reason(limits: _alert_rules.HostLimits, level: str, loss: Optional[float], rounds: int) -> str:
        """Why the loss is at *level*: its threshold, and what the last rounds lost."""
        threshold = limits.loss_warn if level == "warn" else limits.loss_crit
        shown = "no probe sent" if loss is None else f"{loss:g}% of the last {rounds} rounds' probes"
        return f"at least {_alert_rules.LOSS_EVIDENCE:g} probes lost beyond loss_{level} {threshold:g}% ({shown})"

    def _host_detail(self, entry: Mapping[str, Any], status: str, reasons: Sequence[str], seen: str,
                     by_loss: bool = False) -> str:
        """Why a host's alerted status changed, in words for the alert mail."""
        rules = self.settings.debounce
        window = seen[-rules.window:]
        if entry.get("error"):
            return entry["error"]
        if status == "down":
            return f"no answer to ping in {window.count('d')} of the last {len(window)} rounds"
        if by_loss:
            return reasons[-1]
        if status in ("warn", "crit") and reasons:
            bad = sum(1 for letter in window if letter in "wc"[("warn", "crit").index(status):])
            return f"{status} or worse in {bad} of the last {len(window)} rounds; this round: " + "; ".join(reasons)
        return f"answers ping again ({rules.clear_after} good round(s) in a row)" if status == "up" \
            else f"{status} for {rules.clear_after} round(s) in a row"

    def _record_history(self, rows: Sequence[Dict[str, Any]], now: float) -> None:
        self._forecasts, warning = _history.update(self.settings.history_file, rows, now, self.settings.sample_every,
                                                   self.settings.keep_days, self.settings.rate_window)
        if warning:
            LOG.warning("%s", warning)

    # ---- one round ----------------------------------------------------------------------------

    def check_once(self) -> List[Change]:
        """Check disks and hosts, alert on changes, deliver the spool, save the state.

        A failing check is logged and does not stop the others; the
        SIGTERM that ``_fanout`` turns into Interrupted is re-raised.
        Whatever failed (a check, an alert neither sent nor spooled, the
        state, the metrics) is logged as an error and kept in the state as
        ``last_round``, which ``status`` shows and the metrics export.
        """
        now = self.clock()
        changes: List[Change] = []
        checks: Dict[str, bool] = {}
        problems: List[str] = []
        for name, check in (("disk", self.check_disks), ("host", self.check_hosts)):
            try:
                changes += check(now)
                checks[name] = True
            except _fanout.Interrupted:
                raise
            except (ValueError, OSError, _fanout.FanOutError) as exc:
                checks[name] = False
                problems.append(f"{name} check failed: {exc}")
        for change in changes:
            (LOG.warning if change.worse else LOG.info)("%s", change.line())
        self.state["last_check"] = now
        self.state["pid"] = os.getpid()
        delivery = self._deliver(changes, now, problems)
        checks["mail"] = not any(p.startswith(("alert", "spooled mail")) for p in problems)
        self.state["spool_pending"] = delivery.pending if delivery else len(self._spooled())
        if self.settings.textfile_dir:
            checks["metrics"] = not self._metrics_error  # the file can only tell how its previous write went
            if not self._write_metrics(now, checks):
                problems.append(f"cannot write the metrics to {self.settings.textfile_dir}: {self._metrics_error}")
        self.state["last_round"] = {"at": now, "ok": not problems, "problems": problems[:20]}
        try:
            save_json(self.settings.state_file, self.state)
        except OSError as exc:
            problems.append(f"cannot save the state {self.settings.state_file}: {exc.strerror or exc}")
        self._log_problems(problems)
        return changes

    def _log_problems(self, problems: Sequence[str]) -> None:
        """Each problem at ERROR when it appears, and again every ``REPEAT_LOG`` seconds while it lasts."""
        now = time.monotonic()
        for problem in problems:
            last = self._logged.get(problem)
            if last is None or now - last >= REPEAT_LOG:
                LOG.error("%s%s", problem, " (still)" if last is not None else "")
                self._logged[problem] = now
        for gone in set(self._logged) - set(problems):
            del self._logged[gone]

    def _deliver(self, changes: Sequence[Change], now: float, problems: List[str]) -> Optional[_mail_delivery.Delivery]:
        """Alert on *changes* (or flush the spool); what could not be done goes into *problems*, never an exception.

        An alert that can be neither mailed nor spooled is lost: that is a
        failed round, said as such. Anything unexpected on the way (an
        interpreter that cannot load a codec, say) is caught here, and the
        alert is spooled if it was built, so the next round can send it.
        """
        try:
            delivery = self.alert(changes, now) if changes else self.flush_spool()
        except _fanout.Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - one round's mail must not end the round, let alone the daemon
            if not changes:  # the spool's messages stay where they are, for the next round
                problems.append(f"spooled mail not sent: {type(exc).__name__}: {exc}")
                return None
            problems.append(f"alert not sent: {type(exc).__name__}: {exc}" + self._spool_unsent())
            return None
        if delivery is not None and changes and not delivery.sent and not delivery.spooled and delivery.error:
            problems.append(f"alert lost (neither mailed nor spooled): {delivery.error}")
        return delivery

    def _spool_unsent(self) -> str:
        """Queue the alert the last ``alert()`` built but could not deliver; what became of it, as a clause."""
        unsent, self._unsent = self._unsent, None
        if unsent is None:
            return " (it could not even be built, so it is lost)"
        raw, sender, recipients = unsent
        try:
            path = _mail_spool.add(self.settings.report.mail.spool_dir, raw, sender, recipients)
        except (OSError, ValueError) as exc:
            return f" (and it could not be spooled: {exc}; it is lost)"
        return f" (spooled to {path}: the next round sends it)"

    def _write_metrics(self, now: float, checks: Dict[str, bool]) -> bool:
        """This round's findings for node_exporter's textfile collector (``_metrics``); False if not written."""
        families = _metrics.watcher_metrics(
            self._rows if checks.get("disk") else [], self._forecasts,
            self.state["hosts"] if checks.get("host") else {}, now, self.state["spool_pending"], checks)
        try:
            _metrics.write_textfile(self.settings.textfile_dir, families)
        except (OSError, _metrics.MetricsError) as exc:
            self._metrics_error = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
            return False
        if self._metrics_error:
            LOG.info("metrics written to %s again", self.settings.textfile_dir)
        self._metrics_error = ""
        return True

    def _spooled(self) -> List[str]:
        try:
            return _mail_spool.listing(self.settings.report.mail.spool_dir)
        except OSError:
            return []

    def alert(self, changes: Sequence[Change], now: float) -> Optional[_mail_delivery.Delivery]:
        """Mail the changes (spooled first, then this alert); spooled if the server is away."""
        config = self.settings.report.mail
        if not config.mail_to or config.send == "never":
            return None
        worst = "problem" if any(c.worse for c in changes) else "recovery"
        subject = f"[fleet-watcher] {config.host}: {worst}: " + ", ".join(f"{c.name} {c.new}" for c in changes[:4])
        if len(changes) > 4:
            subject += f" and {len(changes) - 4} more"
        when = datetime.datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")
        text = f"fleet-watcher on {config.host} saw {len(changes)} change(s) at {when}:\n\n"
        text += "".join(f"  {c.line()}\n" for c in changes)
        body = "".join(f"<li>{html.escape(c.line())}</li>" for c in changes)
        html_body = (f"<!DOCTYPE html>\n<html><body><p>fleet-watcher on {html.escape(config.host)} saw "
                     f"{len(changes)} change(s) at {when}:</p><ul>{body}</ul></body></html>\n")
        message = _mail.build_message(config.mail_from, config.mail_to, _mail.clean_header(subject[:200]),
                                      text, html_body, domain=config.host, when=now)
        raw = message.as_bytes(policy=_mail.POLICY)
        self._unsent = (raw, config.mail_from.addr_spec, [a.addr_spec for a in config.mail_to])
        delivery = self._send(raw)
        self._unsent = None
        self._log_delivery(delivery, "alert")
        return delivery

    def flush_spool(self) -> Optional[_mail_delivery.Delivery]:
        """Send what the spool holds, if anything, now that the server may be back."""
        config = self.settings.report.mail
        if not config.mail_to or not self._spooled():
            return None
        delivery = self._send(None)
        self._log_delivery(delivery, "spool")
        return delivery

    def _send(self, raw: Optional[bytes]) -> _mail_delivery.Delivery:
        """``_mail_delivery.deliver`` in a worker process, WATCHDOG=1 meanwhile, ended at its bound.

        One conversation lasts at most ``smtp_timeout``; the spool's lock may be waited for and, as
        root beside another user's spool, that user's worker: ``delivery_seconds``. Past that the
        delivery is hung: its worker is killed, the round says so (the alert is spooled by the
        caller), and the watchdog hears nothing more from it (a tarpit holding every reply open up
        to smtp_timeout no longer silences a daemon whose WatchdogSec is shorter).
        """
        config = self.settings.report.mail
        seconds = delivery_seconds(config.smtp.timeout)
        [outcome] = _fanout.fan_out(
            lambda _task: _mail_delivery.deliver(raw, config.smtp, config.spool_dir, config.lifetime), [None], 1,
            timeout=seconds, heartbeat=self._heartbeat(seconds))
        if not outcome.ok:
            raise DeliveryHung(f"the delivery did not end within {seconds:g}s (smtp_timeout "
                               f"{config.smtp.timeout:g}s and the spool's waits): {outcome.error}")
        return outcome.value

    def _log_delivery(self, delivery: _mail_delivery.Delivery, what: str) -> None:
        config = self.settings.report.mail
        if delivery.spool_sent:
            LOG.info("delivered %d spooled message(s)", len(delivery.spool_sent))
        if delivery.sent:
            LOG.info("%s mailed", what)
        for warning in delivery.warnings + _mail_delivery.notices(delivery, config.smtp.where, config.spool_dir):
            LOG.warning("%s", warning)
        if delivery.error:
            LOG.warning("%s not mailed: %s%s", what, delivery.error,
                        f"; spooled to {delivery.spooled}" if delivery.spooled else "")

    # ---- the loop -----------------------------------------------------------------------------

    def run(self, daemon, reload_settings: Optional[Callable[[], Settings]] = None,
            notifier: Optional[_sd_notify.Notifier] = None) -> None:
        """Check every ``interval`` seconds until the daemon is asked to stop; reload on SIGHUP.

        Under systemd (``Type=notify``) *notifier* says READY once the loop starts (pidfile held,
        signals set, state loaded), WATCHDOG after every round, every half watchdog period
        while it waits and while the sweep runs (``_sweep_heartbeat``), and STOPPING on the way out.
        """
        notifier = notifier or _sd_notify.Notifier()
        self._notifier = notifier
        watched = self.settings.watched_addresses() if self.settings.hosts else 0
        LOG.info("started: pid %d, every %gs, %d watched host(s), settings %s", os.getpid(),
                 self.settings.interval, watched, self.settings.path)
        self._notify(notifier, notifier.ready, f"watching {watched} host(s) and the disks")
        if notifier.enabled:
            LOG.info("told systemd it is ready%s", f" (watchdog {notifier.watchdog:g}s)" if notifier.watchdog else "")
        while not daemon.stop_requested:
            if daemon.take_reload() and reload_settings is not None:
                self._reload(reload_settings)
            started = time.monotonic()
            try:
                changes = self.check_once()
            except _fanout.Interrupted:
                daemon.stop_requested = True
                break
            except Exception as exc:  # noqa: BLE001 - one bad round must not kill the daemon
                LOG.exception("check failed: %s", exc)
                changes = None
            self._notify(notifier, notifier.ping, self._status_line(changes))
            self._pause(daemon, notifier, max(0.0, self.settings.interval - (time.monotonic() - started)))
        LOG.info("stopping (signal %s)", daemon.stop_signal)
        self._notify(notifier, notifier.stopping, "stopping")

    def _pause(self, daemon, notifier: _sd_notify.Notifier, seconds: float) -> None:
        """Wait for the next round (or a signal), petting the watchdog every half period meanwhile."""
        every = notifier.watchdog_every
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or daemon.wait(min(left, every) if every else left):
                return
            if every and deadline - time.monotonic() > 0:
                self._notify(notifier, notifier.ping)

    def _status_line(self, changes: Optional[Sequence[Change]]) -> str:
        """The one line ``systemctl status`` shows: the last round's counts."""
        if changes is None:
            return f"last round at {time.strftime('%H:%M:%S')} failed (see the log)"
        disks = [d.get("status") for d in self.state.get("disks", {}).values()]
        hosts = [h.get("status") for h in self.state.get("hosts", {}).values()]
        bad_disks = sum(1 for d in disks if d in ("warn", "crit"))
        down = sum(1 for h in hosts if h == "down")
        lossy = sum(1 for h in hosts if h in ("warn", "crit"))
        over = f", {lossy} over a loss or round-trip threshold" if lossy else ""
        return (f"last round at {time.strftime('%H:%M:%S')}: {len(disks)} filesystem(s), {bad_disks} over a threshold; "
                f"{len(hosts)} host(s), {down} down{over}; {self.state.get('spool_pending', 0)} mail(s) spooled")

    def _notify(self, notifier: _sd_notify.Notifier, send: Callable[..., bool], *args: str) -> None:
        """Send one notification; a failure is logged once, not every round."""
        if not notifier.enabled:
            return
        sent = send(*args)
        if not sent and notifier.error and notifier.error != self._notify_error:
            LOG.error("%s", notifier.error)
        self._notify_error = "" if sent else notifier.error

    def _reload(self, reload_settings: Callable[[], Settings]) -> None:
        try:
            fresh = reload_settings()
        except WatcherConfigError as exc:
            LOG.error("reload failed, keeping the old settings: %s", exc)
            return
        moved = [n for n in ("pidfile", "log_file", "user", "umask") if getattr(fresh, n) != getattr(self.settings, n)]
        if moved:
            LOG.warning("reloaded, but %s only take(s) effect on restart", ", ".join(moved))
        if fresh.state_dir != self.settings.state_dir:
            self.state = load_state(fresh.state_file, state_limit(fresh))
        self.settings = fresh
        LOG.info("reloaded settings from %s (logs reopened)", fresh.path)


# ---- the daily report --------------------------------------------------------------------------

def daily_report(settings: Settings, check_mode: bool = False, now: Optional[datetime.datetime] = None) -> _report.Outcome:
    """The disk_report module's report with the fill rate of every filesystem, mailed or spooled.

    ``_report.run`` with the watcher's history file and history settings:
    the same report the module sends with ``history_file`` set.
    """
    config = dataclasses.replace(settings.report, history_file=settings.history_file,
                                 sample_every=settings.sample_every, keep_days=settings.keep_days,
                                 rate_window=settings.rate_window)
    return _report.run(config, check_mode=check_mode,
                       now=now or datetime.datetime.now(datetime.timezone.utc).astimezone())
