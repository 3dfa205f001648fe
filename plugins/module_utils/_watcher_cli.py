# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``fleet-watcher`` command: start, stop, status, run, check, report, sweep.

PRIVATE to the sysops.fleet collection. Pure standard library.

The watcher role installs the core as a plain package next to a tiny entry
script that calls ``main()``; everything the command does lives here and
in the core it calls (``_daemon``, ``_watcher``, ``_sweep``, ``_report``).

Exit codes follow the LSB init-script conventions: ``status`` exits 0
when running, 1 when dead with a pidfile left behind, 3 when not running
and 4 when it cannot tell; ``start`` exits 6 when the settings are wrong
and 1 when the daemon is already running (0 with ``--if-not-running``);
``reload`` exits 7 when nothing runs.

Run by root (cron's ``@reboot``, the role, logrotate's ``postrotate``), the
command reads only a settings file that root alone can change, makes the
daemon's top directories where root alone could have made them, and then
hands the command to the daemon's user (``[watcher] user``): the same
program, executed anew as that user with nothing of root's, waited for at
most a deadline per command (``_handoff``). So the pidfile, log, state,
history and spool are only ever touched, and the daemon only ever
signalled, by that user, and a user who stops its own processes can delay
root by that deadline at most. ``stop`` and ``status`` also take
``--pidfile`` and ``--user``, which need no settings file at all, so a
broken one never keeps a daemon from being stopped. ``start`` runs the
self-test (``_selftest``) first: a daemon that could not do its rounds is
not started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import signal
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from . import _command, _daemon, _fanout, _files, _handoff, _pidfile, _privilege, _sd_notify, _selftest, _sweep, _targets, _watcher

DEFAULT_CONFIG = "/etc/sysops-fleet/watcher.ini"
CONFIG_ENV = "FLEET_WATCHER_CONFIG"
PROG = "fleet-watcher"
LOG_FORMAT = "%(asctime)s " + PROG + "[%(process)d] %(levelname)s %(message)s"

EXIT_RUNNING, EXIT_DEAD_PIDFILE, EXIT_NOT_RUNNING, EXIT_UNKNOWN = 0, 1, 3, 4
EXIT_NOT_CONFIGURED, EXIT_RELOAD_NOT_RUNNING = 6, 7


def _say(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # "fleet-watcher status --json | head"
        pass


def _complain(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def _logging(stream=None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _program() -> str:
    """This command's own script: a pid is signalled only if its command line runs this file."""
    return os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""


def _daemon_user(settings: _watcher.Settings) -> Optional[pwd.struct_passwd]:
    """The user the daemon runs as: ``[watcher] user``, else whoever controls the pidfile's directory.

    None when that is root (a daemon run as root, in directories only root controls).
    """
    try:
        if settings.user:
            entry: Optional[pwd.struct_passwd] = _privilege.user_entry(settings.user)
        else:
            owner = _privilege.trust_boundary(os.path.dirname(settings.pidfile))
            entry = _privilege.user_entry(owner[0]) if owner else None
    except _privilege.PrivilegeError as exc:
        raise _watcher.WatcherConfigError(f"[watcher] user: {exc.strerror}") from None
    return None if entry is None or entry.pw_uid == 0 else entry


def _top_directories(settings: _watcher.Settings) -> Sequence[tuple]:
    return ((settings.state_dir, 0o750), (os.path.dirname(settings.log_file), 0o750),
            (os.path.dirname(settings.pidfile), 0o755))


def _prepare_directories(settings: _watcher.Settings, entry: Optional[pwd.struct_passwd]) -> None:
    """Make the daemon's top directories if missing: as root for *entry*, where root alone controls the parent.

    A directory is made only where root alone controls its parent, so the
    name cannot be swapped for a link between mkdir and chown, and handed
    over through its descriptor. Everything below them is the user's. Not
    root: this user's own directories, made by itself.
    """
    for directory, mode in _top_directories(settings):
        try:
            if os.geteuid() != 0:
                os.makedirs(directory, mode, exist_ok=True)
            elif entry is not None:
                _privilege.make_directory_for(directory, entry, mode)
            elif _privilege.trust_boundary(directory) is None:
                os.makedirs(directory, mode, exist_ok=True)
        except _privilege.PrivilegeError:
            raise
        except OSError as exc:
            raise _privilege.PrivilegeError(exc.errno, f"cannot make {directory}: {exc.strerror}") from None


def _program_argv(settings: _watcher.Settings, argv: Sequence[str]) -> List[str]:
    """This very command line, for the program run anew as the daemon's user (the settings named explicitly)."""
    program = _program()
    head = [program] if os.access(program, os.X_OK) and os.path.isfile(program) else [sys.executable, program]
    config = [] if settings.path.startswith("(") else ["--config", settings.path]
    return head + config + list(argv)


def _deadline(args, settings: _watcher.Settings) -> float:
    """How long root waits for a command handed to the daemon's user: long enough for its work, never forever."""
    probe = 2 * settings.report.probe_timeout
    mail = 2 * settings.report.mail.smtp.timeout
    hosts = settings.sweep_seconds()  # count x spacing, or every retry's timeout
    stop = getattr(args, "timeout", 10.0) + 20
    if args.command == "sweep":
        return _sweep_deadline(args, settings)
    return {"status": 15.0, "reload": 15.0, "stop": stop, "start": 30 + probe, "selftest": 30 + probe,
            "restart": stop + 30 + probe, "check": 30 + probe + hosts + mail, "report": 30 + probe + mail,
            }.get(args.command, 600.0)


def _sweep_deadline(args, settings: _watcher.Settings) -> float:
    """What ``sweep`` may take: its sending at the default rate, every retry's wait, count x spacing, plus a minute.

    Counted from the targets as written (nothing resolved: root looks nothing up for
    the user); a name counts as one address. At most the hour one sweep may send for.
    """
    try:
        targets = _targets.parse_all(args.targets or (settings.hosts if settings else []), "targets",
                                     max_hosts=_targets.DEFAULT_MAX_HOSTS)
    except (_targets.TargetError, ValueError):
        return 60.0  # refused by the child at once
    probing = max(args.count, 1) * max(args.spacing, 0.0) + (max(args.retries, 0) + 1) * max(args.timeout, 0.0)
    return min(60.0 + _targets.size_of(targets) / _sweep.DEFAULT_RATE + probing, 3600.0 + probing)


def _hand_off(args, settings: _watcher.Settings, entry: pwd.struct_passwd, argv: Sequence[str]) -> int:
    """As root: run this command as the daemon's user, executed anew, and wait for it at most ``_deadline``.

    Root gives it nothing of its own (``_handoff``) and never waits on it
    unboundedly: that user can stop or kill its own processes at will.
    ``run`` (the foreground daemon) replaces this process instead.
    """
    child = _program_argv(settings, argv)
    unknown = EXIT_UNKNOWN if args.command == "status" else 1
    if args.command == "run":
        try:
            _handoff.exec_as(entry, child, keep_env=_sd_notify.VARIABLES)
        except OSError as exc:
            _complain(f"the daemon's user {entry.pw_name} cannot run {child[0]}: {exc.strerror or exc}")
            return EXIT_NOT_CONFIGURED
    deadline = _deadline(args, settings)
    outcome = _handoff.hand_off(entry, child, deadline)
    if outcome.exec_error:
        _complain(f"the daemon's user {entry.pw_name} cannot run {child[0]}: {outcome.exec_error}. The program and "
                  f"its interpreter must be readable and executable by that user (the role's watcher_python: a "
                  f"Python outside /root, such as /usr/bin/python3)")
        return EXIT_UNKNOWN if args.command == "status" else EXIT_NOT_CONFIGURED
    if outcome.timed_out:
        _complain(f"'{PROG} {args.command}' run as {entry.pw_name} did not finish within {deadline:g}s "
                  f"(stopped or stuck; that user can stop its own processes): killed")
        return unknown
    if outcome.code < 0:
        _complain(f"'{PROG} {args.command}' run as {entry.pw_name} was ended by signal {-outcome.code}")
        return unknown
    return outcome.code


# ---- daemon control --------------------------------------------------------------------------

def cmd_start(args, settings: _watcher.Settings) -> int:
    """Start the daemon once it passed the self-test (``selftest``): a daemon that cannot work never starts."""
    if args.if_not_running and _running(settings):
        return 0
    failures = _selftest.run(settings)
    if failures:
        for failure in failures:
            _complain(f"self-test failed: {failure}")
        _complain("not started: fix the above (as the daemon's user it must run, read and write these)")
        return EXIT_NOT_CONFIGURED
    daemon = _daemon.Daemon(settings.pidfile, log_file=settings.log_file, umask=settings.umask, detach=True,
                            program=_program())
    try:
        pid = daemon.open()
    except _pidfile.AlreadyRunning as exc:
        if args.if_not_running:
            return 0
        _complain(f"not started: {exc}")
        return 1
    if pid:
        if not args.quiet:
            _say(f"{PROG} started (pid {pid}, log {settings.log_file})")
        return 0
    return _serve(daemon, settings, args.config)


def _running(settings: _watcher.Settings) -> bool:
    """Whether this daemon runs: a pidfile held by something else is not it (start takes that over)."""
    try:
        return _pidfile.holder(settings.pidfile, program=_program()) is not None
    except _pidfile.PidFileError:
        return False


def cmd_run(args, settings: _watcher.Settings) -> int:
    """The foreground daemon for systemd (Type=notify: READY, WATCHDOG, STOPPING) and containers."""
    notifier = _sd_notify.Notifier.from_environment()  # before anything runs a child that could inherit it
    log_file = None if args.log_file == "-" else (args.log_file or settings.log_file)
    daemon = _daemon.Daemon(settings.pidfile, log_file=log_file, umask=settings.umask, detach=False,
                            program=_program())
    try:
        daemon.open()
    except _pidfile.AlreadyRunning as exc:
        _complain(f"not started: {exc}")
        return 1
    return _serve(daemon, settings, args.config, notifier)


def _serve(daemon: _daemon.Daemon, settings: _watcher.Settings, config_path: str,
           notifier: Optional[_sd_notify.Notifier] = None) -> int:
    _logging()
    log = logging.getLogger(PROG)
    if daemon.pidfile.stale_pid:
        log.info("took over the stale pidfile %s of pid %d", settings.pidfile, daemon.pidfile.stale_pid)
    for what in daemon.pidfile.replaced:
        log.warning("put aside what was not this daemon's pidfile: %s", what)
    try:
        watcher = _watcher.Watcher(settings)
        watcher.run(daemon, reload_settings=lambda: _watcher.load_settings(config_path), notifier=notifier)
    except Exception:  # noqa: BLE001 - the log is the daemon's only voice
        log.exception("the watcher died")
        return 1
    finally:
        daemon.close()
    log.info("stopped")
    return 0


def cmd_stop(args, settings: _watcher.Settings) -> int:
    try:
        pid = _pidfile.stop(settings.pidfile, timeout=args.timeout, program=_program())
    except _pidfile.PidFileError as exc:
        _complain(str(exc))
        return 1
    if not args.quiet:
        _say(f"{PROG} stopped (pid {pid})" if pid else f"{PROG} is not running")
    return 0


def cmd_restart(args, settings: _watcher.Settings) -> int:
    """Stop, then start; a pidfile that is not this daemon's does not keep it from starting (start takes it over)."""
    code = cmd_stop(args, settings)
    if code and _running(settings):
        return code
    args.if_not_running = False
    return cmd_start(args, settings)


def cmd_reload(args, settings: _watcher.Settings) -> int:
    try:
        pid = _pidfile.signal_daemon(settings.pidfile, signal.SIGHUP, program=_program())
    except _pidfile.PidFileError as exc:
        _complain(str(exc))
        return 1
    if pid is None:
        _complain("not running, nothing to reload")
        return EXIT_RELOAD_NOT_RUNNING
    if not args.quiet:
        _say(f"{PROG} (pid {pid}) reloads its settings and reopens its log")
    return 0


def status_of(settings: _watcher.Settings) -> Dict[str, Any]:
    """What ``status`` reports, as data: running or not, and the last round's results."""
    pid = _pidfile.holder(settings.pidfile, program=_program())
    stale = pid is None and os.path.lexists(settings.pidfile)
    code = EXIT_RUNNING if pid is not None else (EXIT_DEAD_PIDFILE if stale else EXIT_NOT_RUNNING)
    state = _watcher.load_state(settings.state_file, _watcher.state_limit(settings))
    last = state.get("last_check")
    return {"running": pid is not None, "pid": pid or None, "pidfile": settings.pidfile, "stale_pidfile": stale,
            "code": code, "settings": settings.path, "log_file": settings.log_file,
            "last_check": last, "last_check_age_s": round(time.time() - last, 1) if last is not None else None,
            "disks": state.get("disks", {}), "hosts": state.get("hosts", {}),
            "spool_pending": state.get("spool_pending") or 0, "last_round": state.get("last_round")}


def cmd_status(args, settings: _watcher.Settings) -> int:
    try:
        status = status_of(settings)
    except _pidfile.PidFileError as exc:
        if args.json:
            _say(json.dumps({"running": None, "code": EXIT_UNKNOWN, "error": str(exc)}))
        else:
            _complain(f"status unknown: {exc}")
        return EXIT_UNKNOWN
    if args.json:
        _say(json.dumps(status, indent=1, sort_keys=True))
        return status["code"]
    if status["running"]:
        line = f"{PROG} is running (pid {status['pid']})"
    elif status["stale_pidfile"]:
        line = f"{PROG} is not running, but its pidfile {settings.pidfile} is left (a crash? the next start takes it over)"
    else:
        line = f"{PROG} is not running"
    _say(line)
    if status["last_check"]:
        disks = status["disks"]
        hosts = status["hosts"]
        _say(f"last check {status['last_check_age_s']:g}s ago: "
             f"{_counts(d['status'] for d in disks.values())} filesystem(s), "
             f"{_counts(h['status'] for h in hosts.values())} host(s), {status['spool_pending']} mail(s) spooled")
    last_round = status["last_round"] if isinstance(status["last_round"], dict) else {}
    if last_round.get("ok") is False:
        problems = [p for p in last_round.get("problems") or [] if isinstance(p, str)]
        _say(f"last round FAILED ({len(problems)} problem(s), see {settings.log_file}):")
        for problem in problems[:20]:
            _say(f"  {problem}")
    return status["code"]


def _counts(statuses) -> str:
    found: Dict[str, int] = {}
    for status in statuses:
        found[status] = found.get(status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(found.items())) or "0"


# ---- one-shot commands ---------------------------------------------------------------------

def cmd_selftest(args, settings: _watcher.Settings) -> int:
    """Everything a round needs, tried as the daemon's user (run as root, it is handed to that user)."""
    failures = _selftest.run(settings)
    for failure in failures:
        _say(f"FAILED: {failure}")
    if not failures and not args.quiet:
        _say(f"{PROG} self-test passed as {_user_name()}: mail, directories, probes and disks work")
    return 1 if failures else 0


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def cmd_check(args, settings: _watcher.Settings) -> int:
    """One round now, in the foreground (it shares the daemon's state, so alerts are not repeated)."""
    _logging()
    watcher = _watcher.Watcher(settings)
    changes = watcher.check_once()
    if args.json:
        _say(json.dumps({"changes": [c.__dict__ for c in changes], "state": watcher.state}, indent=1, sort_keys=True))
    else:
        for change in changes:
            _say(change.line())
        _say(f"{len(changes)} change(s)")
    return 0


def cmd_report(args, settings: _watcher.Settings) -> int:
    """The daily disk report (the disk_report module's code), mailed or spooled, with fill rates.

    It is also kept, the latest one, in ``state_dir/daily-report.txt``, so
    that a host without mail recipients has it somewhere to read.
    """
    _logging()
    outcome = _watcher.daily_report(settings, check_mode=args.check)
    if not args.check:
        path = os.path.join(settings.state_dir, _watcher.DAILY_REPORT)
        try:
            _files.write_atomic(path, outcome.result["report"], 0o640)
        except OSError as exc:
            _complain(f"cannot keep the report in {path}: {exc.strerror or exc}")
    if args.json:
        _say(json.dumps(dict(outcome.result, changed=outcome.changed, error=outcome.error), indent=1, default=str))
    elif not args.quiet:
        _say(outcome.result["report"].rstrip("\n"))
        _say(f"mail: {outcome.result['mail']['reason']}")
    for warning in outcome.warnings:
        _complain(warning)
    if outcome.error:
        _complain(outcome.error)
        return 1
    return 0


def cmd_sweep(args, settings: Optional[_watcher.Settings]) -> int:
    """The ping sweep (the ping_sweep module's code), printed the classic way: "is alive" or "didn't find a response".

    With ``--count`` above 1 each line also says how many probes came back and the median round trip.
    """
    targets = args.targets or (settings.hosts if settings else [])
    if not targets:
        _complain("nothing to sweep: give targets, or watch hosts in the settings file")
        return 2
    result = _sweep.sweep(targets, exclude=args.exclude, timeout=args.timeout, retries=args.retries,
                          method=args.method, workers=args.workers, count=args.count, spacing=args.spacing)
    if args.json:
        _say(json.dumps(result, indent=1, sort_keys=True))
        return 0
    for address, entry in result["hosts"].items():
        line = f"{address} is alive" if entry["alive"] else f"{address} didn't find a response"
        if "sent" in entry:
            line += f" ({entry['received']}/{entry['sent']} answered, {entry['loss_pct']:g}% lost"
            line += f", median {entry['rtt_ms']:g} ms)" if entry["rtt_ms"] is not None else ")"
        _say(line)
    summary = result["summary"]
    _say(f"swept {summary['total']} address(es) in {summary['elapsed_s']:g}s: "
         f"{summary['alive']} alive, {summary['dead']} silent ({summary['method']})")
    return 0


# ---- the command line ------------------------------------------------------------------------

def _without_settings(command: argparse.ArgumentParser) -> None:
    command.add_argument("--pidfile", help="use this pidfile and read no settings file (a broken one included)")
    command.add_argument("--user", help="with --pidfile, as root: the daemon's user to act as")


def parser(default_config: str = DEFAULT_CONFIG) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description="The sysops.fleet watcher: disk and host alerts, "
                                  "the daily disk report, and the ping sweep.")
    top.add_argument("--config", "-c", default=os.environ.get(CONFIG_ENV) or default_config,
                     help=f"settings file (default: ${CONFIG_ENV} or {default_config})")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    start = sub.add_parser("start", help="start the daemon in the background")
    start.add_argument("--if-not-running", action="store_true",
                       help="do nothing, quietly and successfully, when it already runs (for cron)")
    start.add_argument("--quiet", "-q", action="store_true")
    stop = sub.add_parser("stop", help="stop the daemon (SIGTERM; SIGKILL after --timeout)")
    stop.add_argument("--timeout", type=float, default=10.0)
    stop.add_argument("--quiet", "-q", action="store_true")
    _without_settings(stop)
    restart = sub.add_parser("restart", help="stop, then start")
    restart.add_argument("--timeout", type=float, default=10.0)
    restart.add_argument("--quiet", "-q", action="store_true")
    reload_ = sub.add_parser("reload", help="reload the settings and reopen the log (SIGHUP)")
    reload_.add_argument("--quiet", "-q", action="store_true")
    status = sub.add_parser("status", help="is it running? exit 0 running, 1 dead with pidfile, 3 stopped, 4 unknown")
    status.add_argument("--json", action="store_true")
    _without_settings(status)
    run = sub.add_parser("run", help="run in the foreground (systemd Type=notify, containers)")
    run.add_argument("--log-file", help="log here instead of the settings' log_file; '-' keeps stderr")
    check = sub.add_parser("check", help="one round of checks now, in the foreground")
    check.add_argument("--json", action="store_true")
    report = sub.add_parser("report", help="the daily disk report: mail it (or spool it) and print it")
    report.add_argument("--check", action="store_true", help="build and print it, send nothing, write nothing")
    report.add_argument("--json", action="store_true")
    report.add_argument("--quiet", "-q", action="store_true", help="print nothing unless it fails (for cron)")
    selftest = sub.add_parser("selftest", help="try, as the daemon's user, everything a round needs; send nothing")
    selftest.add_argument("--quiet", "-q", action="store_true", help="print only what failed")
    sweep = sub.add_parser("sweep", help="ping sweep TARGETS (default: the watched hosts)")
    sweep.add_argument("targets", nargs="*", help="addresses, CIDRs, ranges (10.0.0.1-20) or host names")
    sweep.add_argument("--exclude", action="append", default=[])
    sweep.add_argument("--timeout", type=float, default=1.0)
    sweep.add_argument("--retries", type=int, default=1)
    sweep.add_argument("--count", type=int, default=1, help="probes per address (loss and round-trip statistics)")
    sweep.add_argument("--spacing", type=float, default=1.0, help="seconds between two probes to one address")
    sweep.add_argument("--method", choices=_sweep.METHODS, default="auto")
    sweep.add_argument("--workers", type=int)
    sweep.add_argument("--json", action="store_true")
    return top


COMMANDS = {"start": cmd_start, "stop": cmd_stop, "restart": cmd_restart, "reload": cmd_reload,
            "status": cmd_status, "run": cmd_run, "check": cmd_check, "report": cmd_report, "sweep": cmd_sweep,
            "selftest": cmd_selftest}


def _settings_for(args) -> Optional[_watcher.Settings]:
    """The settings the command works with; None for a sweep with no settings file."""
    if getattr(args, "pidfile", None):
        if not os.path.isabs(args.pidfile):
            raise _watcher.WatcherConfigError(f"--pidfile must be an absolute path, got {args.pidfile!r}")
        return _watcher.Settings(path="(--pidfile)", pidfile=args.pidfile, user=args.user or None,
                                 state_dir=os.path.join(os.path.dirname(args.pidfile), "(none)"))
    try:
        return _watcher.load_settings(args.config, trusted=os.geteuid() == 0)
    except _watcher.WatcherConfigError:
        if args.command == "sweep" and not os.path.exists(args.config):
            return None
        raise


def main(argv: Optional[Sequence[str]] = None, default_config: str = DEFAULT_CONFIG) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(default_config).parse_args(argv)
    try:
        settings = _settings_for(args)
        if settings is not None:
            entry = _daemon_user(settings) if os.geteuid() == 0 else None
            if args.command in ("start", "restart", "run", "selftest"):
                _prepare_directories(settings, entry)
            if entry is not None:
                return _hand_off(args, settings, entry, argv)
    except (_watcher.WatcherConfigError, _privilege.PrivilegeError) as exc:
        _complain(str(exc))
        return EXIT_UNKNOWN if args.command == "status" else EXIT_NOT_CONFIGURED
    except KeyboardInterrupt:
        _complain(f"interrupted: '{PROG} {args.command}' run as the daemon's user was killed")
        return 130
    try:
        return COMMANDS[args.command](args, settings)
    except (_daemon.DaemonError, _pidfile.PidFileError, _watcher.WatcherConfigError) as exc:
        _complain(str(exc))
        return 1
    except (ValueError, _command.CommandError, _fanout.FanOutError, OSError) as exc:
        _complain(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


def entry_point(argv: Optional[List[str]] = None, default_config: str = DEFAULT_CONFIG) -> None:
    """What the installed ``fleet-watcher`` script calls: run and exit with the command's code."""
    raise SystemExit(main(argv, default_config))
