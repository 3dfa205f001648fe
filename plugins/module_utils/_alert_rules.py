# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When a finding becomes an alert: K bad rounds of the last N, clear after M good ones, thresholds with a margin.

PRIVATE to the sysops.fleet collection. Pure standard library.

A watched host is seen each round as up, warn, crit (its median round-trip
time over a threshold) or down (no probe answered). Its *alerted* status
moves up only when at least ``down_after`` of the last ``window`` rounds
were that bad or worse (monit's "for N cycles", SmokePing's "3 times in a
row"), and back down only after ``clear_after`` rounds in a row below it:
one slow round is not an alert.

Loss is judged over probes, not rounds (a round of four probes can only
say 0, 25, 50, 75 or 100 %, so a threshold of 25 % would mean "one probe
lost"). Each loss threshold keeps a count of evidence (Page's CUSUM): below
it, every lost probe adds one and every probe sent takes away the
threshold's share; ``LOSS_EVIDENCE`` probes lost beyond the threshold raise
it. Raised, every probe sent adds half the threshold's share and every lost
one takes one away; ``LOSS_EVIDENCE`` probes fewer than half the threshold
would lose clear it (the hysteresis). A path losing at most half the
threshold never raises it, one losing twice the threshold raises it within
``LOSS_RESOLVE`` / threshold probes and keeps it (``resolvable`` refuses a
count too small to hold them in ``MAX_WINDOW`` rounds), and one anywhere in
between changes level at most a few times, not every few rounds. A host
whose path loses probes is down only after enough silent rounds in a row
that chance cannot explain them (``silence_needed``). A round in which the host answered
nothing is a *down* round, owned by the down rule: it never counts towards
loss, so an outage shorter than ``down_after`` rounds mails nothing.

A filesystem's status clears only ``margin`` percentage points below the
threshold it crossed (netdata's alarm hysteresis): a disk that hovers
around 80 % warns once, not every time it dips under.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _disk, _numbers, _report, _sizes

HOST_LEVELS = ("up", "warn", "crit", "down")  # in order of severity
_LETTER = {"up": "u", "warn": "w", "crit": "c", "down": "d"}
_LEVEL = {letter: level for level, letter in _LETTER.items()}
MAX_WINDOW = 60
# Defaults, from the measurements in docs/watcher.md ("Alerts that do not cry wolf", tests/bench/measure_alerting.py):
# with the watcher's 4 probes a round a path losing 20 % is silent in 0.2 % of rounds, and 3 such rounds of
# the last 5 make about 1e-4 alert mails in 1,000 rounds (the old one probe and one retry, alerting on every
# change: 77); a host that stops is alerted on its third silent round, and its recovery on the second good one.
DEFAULT_DOWN_AFTER = 3
DEFAULT_WINDOW = 5
DEFAULT_CLEAR_AFTER = 2
DEFAULT_DISK_MARGIN = 2.0  # percentage points: df rounds Use% up, so 1 point is rounding alone
# Loss (measured: tests/bench/measure_loss_flaps.py): a threshold is raised by LOSS_EVIDENCE probes lost beyond it
# and cleared by as many fewer than LOSS_CLEAR of it would lose. A path at half the threshold then raises it about
# once in millions of probes; one at twice the threshold raises it after LOSS_EVIDENCE / threshold probes on
# average and, 999 times in 1,000, before LOSS_RESOLVE / threshold (which the window must therefore hold).
LOSS_EVIDENCE = 10.0
LOSS_CLEAR = 0.5
LOSS_RESOLVE = 30.0


class RuleError(ValueError):
    """An alert setting out of range; the message names it."""


@dataclass(frozen=True)
class Debounce:
    """How many rounds make an alert: ``down_after`` of the last ``window``; ``clear_after`` good ones clear it."""

    down_after: int = DEFAULT_DOWN_AFTER
    window: int = DEFAULT_WINDOW
    clear_after: int = DEFAULT_CLEAR_AFTER

    def check(self, where: str = "[hosts]") -> "Debounce":
        if not 1 <= self.window <= MAX_WINDOW:
            raise RuleError(f"{where} window must be between 1 and {MAX_WINDOW} rounds, got {self.window}")
        if not 1 <= self.down_after <= self.window:
            raise RuleError(f"{where} down_after must be between 1 and window ({self.window}) rounds, "
                            f"got {self.down_after}")
        if not 1 <= self.clear_after <= MAX_WINDOW:
            raise RuleError(f"{where} clear_after must be between 1 and {MAX_WINDOW} rounds, got {self.clear_after}")
        return self


@dataclass(frozen=True)
class HostLimits:
    """Optional thresholds for a watched host: loss in percent, median round-trip time in ms (warn and crit)."""

    loss_warn: Optional[float] = None
    loss_crit: Optional[float] = None
    rtt_warn: Optional[float] = None
    rtt_crit: Optional[float] = None

    def check(self, where: str = "[hosts]") -> "HostLimits":
        for low, high, top, unit in (("loss_warn", "loss_crit", 100.0, "percent"),
                                     ("rtt_warn", "rtt_crit", 3.6e6, "milliseconds")):
            for name in (low, high):
                value = getattr(self, name)
                if value is not None and not 0 < value <= top:  # False for nan too
                    raise RuleError(f"{where} {name} must be more than 0 and at most {top:g} ({unit}), got {value}")
            if getattr(self, low) is not None and getattr(self, high) is not None \
                    and getattr(self, low) > getattr(self, high):
                raise RuleError(f"{where} {low} ({getattr(self, low):g}) must not be above {high} "
                                f"({getattr(self, high):g}): the host would turn crit before it warns")
        return self

    def level(self, loss_pct: Optional[float], rtt_ms: Optional[float]) -> Tuple[str, List[str]]:
        """up, warn or crit for an answering host, and why (the watcher gives one round's RTT and no loss here:
        loss is judged over many rounds' probes by ``judge_loss``)."""
        found: List[Tuple[int, str]] = []
        for value, warn, crit, what, unit in ((loss_pct, self.loss_warn, self.loss_crit, "loss", "%"),
                                              (rtt_ms, self.rtt_warn, self.rtt_crit, "median round trip", " ms")):
            if value is None:
                continue
            if crit is not None and value >= crit:
                found.append((2, f"{what} {value:g}{unit} is at or above crit {crit:g}{unit}"))
            elif warn is not None and value >= warn:
                found.append((1, f"{what} {value:g}{unit} is at or above warn {warn:g}{unit}"))
        level = max((item[0] for item in found), default=0)
        return HOST_LEVELS[level], [item[1] for item in found]


def resolvable(limits: HostLimits, count: int, where: str = "[hosts]") -> None:
    """Refuse a loss threshold that ``count`` probes a round cannot tell from chance within ``MAX_WINDOW`` rounds
    (RuleError says what to change).

    A path losing twice the threshold raises it within ``LOSS_RESOLVE`` /
    threshold probes, that is that many / count rounds, which must be at
    most ``MAX_WINDOW``. The down rule's ``window`` has no part in it: a
    window raised to hold the loss's probes turned "3 silent rounds of 5"
    into "3 of 60", and a lossy host flapped between its loss alert and down.
    """
    for key in ("loss_warn", "loss_crit"):
        threshold = getattr(limits, key)
        if threshold is None:
            continue
        most = MAX_WINDOW * 10000  # the most probes MAX_WINDOW rounds hold (count is at most 10000)
        if LOSS_RESOLVE * 100.0 / threshold > most:  # inf for a threshold of 1e-320: no ceil() of that
            raise RuleError(f"{where} {key} = {threshold:g} % cannot be told apart from chance by any count (it "
                            f"needs more than {most} probes): raise {key} to at least "
                            f"{LOSS_RESOLVE * 100.0 / most:g} %")
        need = int(math.ceil(round(LOSS_RESOLVE * 100.0 / threshold, 6)))
        if count * MAX_WINDOW >= need:
            continue
        raise RuleError(f"{where} {key} = {threshold:g} % cannot be told apart from chance with [hosts] count = "
                        f"{count}: a path losing twice {threshold:g} % is alerted after {need} probes at most, and "
                        f"one losing half of it never; at {count} a round that is {int(math.ceil(need / count))} "
                        f"rounds, more than {MAX_WINDOW}. Raise count to {int(math.ceil(need / MAX_WINDOW))}, or "
                        f"raise {key}")


def loss_rounds(threshold: float, count: int) -> int:
    """The rounds within which a path losing twice *threshold* raises it, 999 times in 1,000."""
    return int(math.ceil(math.ceil(round(LOSS_RESOLVE * 100.0 / threshold, 6)) / count))


def loss_memory(value: Any, threshold: float) -> Tuple[bool, float]:
    """A state's record of one loss threshold (threshold, raised, evidence), kept only if it is one of ours (the
    state is a file, and files change). For a changed threshold (a reload) the alert stays as it was and the
    evidence starts afresh: dropping a raised alert sent a recovery mail ("answers ping again") for a host that
    still lost half its probes, and the next round alerted again (an outside tester's finding)."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], (int, float)) \
            and not isinstance(value[0], bool) and isinstance(value[1], bool) \
            and isinstance(value[2], (int, float)) and not isinstance(value[2], bool) and 0 <= value[2] < LOSS_EVIDENCE:
        return (value[1], float(value[2])) if value[0] == threshold else (value[1], 0.0)
    return False, 0.0


def loss_step(raised: bool, evidence: float, threshold: float, sent: int, received: int) -> Tuple[bool, float]:
    """One round of one loss threshold (percent): whether it is raised after it, and the evidence so far.

    Not raised, the evidence is the probes lost beyond the threshold's
    share since the loss was last at or under it; raised, the probes lost
    fewer than ``LOSS_CLEAR`` of the share. ``LOSS_EVIDENCE`` of it turns
    the threshold over, and the count starts again from nothing.
    """
    lost = sent - received
    share = threshold / 100.0 * sent
    evidence = max(0.0, evidence + (LOSS_CLEAR * share - lost if raised else lost - share))
    if evidence >= LOSS_EVIDENCE:
        return not raised, 0.0
    return raised, evidence


def judge_loss(memory: Any, limits: HostLimits, sent: int, received: int) -> Tuple[str, Dict[str, list]]:
    """The host's loss level (up, warn or crit) after a round of *sent* probes, *received* answered, and the
    memory to keep for the next round. A round with nothing answered (the down rule's) changes nothing."""
    old = memory if isinstance(memory, dict) else {}
    kept: Dict[str, list] = {}
    level = "up"
    for name, threshold in (("warn", limits.loss_warn), ("crit", limits.loss_crit)):
        if threshold is None:
            continue
        raised, evidence = loss_memory(old.get(name), threshold)
        if 0 < received <= sent:
            raised, evidence = loss_step(raised, evidence, threshold, sent, received)
        kept[name] = [threshold, raised, round(evidence, 6)]
        if raised:
            level = name
    return level, kept


def severity(level: str) -> int:
    return HOST_LEVELS.index(level) if level in HOST_LEVELS else 0


def backs(seen: int, level: int) -> bool:
    """Whether a round seen at severity *seen* counts towards an alert at *level*.

    A down round counts only towards down: it says nothing of the loss or
    round trip of a path that answered (the down rule owns it), so two silent
    rounds and the lossy ones at their edges never add up to a loss alert.
    """
    down = HOST_LEVELS.index("down")
    return seen == down if level == down else level <= seen < down


SILENCE_CHANCE = 1e-5  # a lossy path's silence that is this unlikely to be chance is an outage


def silence_needed(sent: Sequence[int], received: Sequence[int], count: int, down_after: int) -> int:
    """Silent rounds in a row that make a host down, when its path loses probes: 0 for the K-of-N rule.

    A path that lost some probes in the rounds it answered (loss L among them)
    also loses all *count* probes of a round by chance, L^count of the time,
    and several such rounds in a window: counted K of N, a host at 50 % loss
    flapped between its loss alert and down. Down then takes as many silent
    rounds in a row as make that chance below ``SILENCE_CHANCE`` (at least
    ``down_after``; at 4 probes and 20 % loss that is ``down_after`` itself,
    at 50 % five rounds, at 2 probes and 50 % loss nine).
    """
    answered = [(s, r) for s, r in zip(sent, received) if 0 < r <= s]
    total = sum(s for s, _r in answered)
    lost = sum(s - r for s, r in answered)
    if not lost or not total or lost >= total:
        return 0
    rounds = math.ceil(math.log(SILENCE_CHANCE) / (max(1, count) * math.log(lost / total)))
    return min(max(down_after, int(rounds)), MAX_WINDOW)


def next_level(alerted: str, seen: str, rules: Debounce, in_a_row: int = 0) -> str:
    """The alerted level after the rounds *seen* (letters u/w/c/d, oldest first, this round last).

    Worse: the worst level that at least ``down_after`` of the last
    ``window`` rounds reached (``backs``). Better: after ``clear_after``
    rounds in a row below the alerted level, the worst of those rounds.
    With *in_a_row* (``silence_needed``: the host's path loses probes), down
    takes that many silent rounds in a row instead.
    """
    current = severity(alerted)
    window = [severity(_LEVEL.get(letter, "up")) for letter in seen[-rules.window:]]
    down = HOST_LEVELS.index("down")
    for level in range(len(HOST_LEVELS) - 1, current, -1):
        if level == down and in_a_row:
            if len(seen) >= in_a_row and set(seen[-in_a_row:]) == {"d"}:
                return "down"
            continue
        if sum(1 for s in window if backs(s, level)) >= rules.down_after:
            return HOST_LEVELS[level]
    recent = [severity(_LEVEL.get(letter, "up")) for letter in seen[-rules.clear_after:]]
    if len(recent) == rules.clear_after and all(s < current for s in recent):
        return HOST_LEVELS[max(recent)]
    return alerted


def advance(alerted: str, seen: str, rules: Debounce, in_a_row: int = 0) -> Tuple[str, str]:
    """``next_level``, and the rounds to remember: after a clear only the good rounds that cleared it, so the
    bad rounds before a recovery never count towards the next alert."""
    level = next_level(alerted, seen, rules, in_a_row)
    if severity(level) < severity(alerted):
        seen = seen[-rules.clear_after:]
    return level, seen


def remember(seen: str, level: str, keep: int) -> str:
    """*seen* with this round's *level* added, the last *keep* rounds only."""
    return (seen + _LETTER.get(level, "u"))[-keep:]


def pooled_loss(sent: Sequence[int], received: Sequence[int]) -> Optional[float]:
    """Loss in percent over several rounds' probes (shown and exported; ``judge_loss`` is what alerts);
    None when none was sent."""
    total = sum(sent)
    return round(100.0 * (total - sum(received)) / total, 3) if total else None


def seen_letters(value: Any, keep: int) -> str:
    """A state's record of rounds, kept only if it is letters of ours (the state is a file, and files change)."""
    if not isinstance(value, str) or any(c not in _LEVEL for c in value):
        return ""
    return value[-keep:]


def counts(value: Any, keep: int, top: int) -> List[int]:
    """A state's per-round probe counts, kept only if every one is a whole number in 0..top."""
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= top
                                              for v in value):
        return []
    return value[-keep:]


# ---- disks --------------------------------------------------------------------------------------

def relaxed_assess(fs: _disk.Filesystem, limits: _report.Thresholds, margin: float) -> Tuple[str, List[str]]:
    """``_report.assess`` with every threshold *margin* points easier to stay above (free bytes: margin % of
    the size more), which is where a filesystem already at that status stays."""
    if fs.error:
        return "crit", [fs.error]
    found: List[Tuple[int, str]] = []
    for pct, warn, crit, what in ((fs.use_pct, limits.warn, limits.crit, "use"),
                                  (fs.inode_pct, limits.inode_warn, limits.inode_crit, "inode use")):
        if pct is not None and pct > crit - margin:
            found.append((2, f"{what} {pct}% is not yet {margin:g} points below crit {crit}%"))
        elif pct is not None and pct > warn - margin:
            found.append((1, f"{what} {pct}% is not yet {margin:g} points below warn {warn}%"))
    extra = int(math.ceil((fs.size_bytes or 0) * margin / 100.0))
    avail = fs.avail_bytes
    for level, floor, name in ((2, limits.free_crit, "free_crit"), (1, limits.free_warn, "free_warn")):
        if avail is not None and floor is not None and avail < floor + extra:
            found.append((level, f"{_sizes.human(avail)} free is not yet {margin:g}% of the size above {name} "
                                 f"{_sizes.human(floor)}"))
            break
    level = max((item[0] for item in found), default=0)
    return _report.STATUSES[level], [item[1] for item in found]


def disk_status(fs: _disk.Filesystem, limits: _report.Thresholds, previous: str,
                margin: float) -> Tuple[str, List[str]]:
    """The status of a filesystem that was *previous*: as ``_report.assess``, but a status it had holds until
    it is *margin* points below the threshold that made it."""
    status, reasons = _report.assess(fs, limits)
    rank = _report.STATUSES.index
    if margin <= 0 or previous not in _report.STATUSES or rank(previous) <= rank(status):
        return status, reasons
    relaxed, why = relaxed_assess(fs, limits, margin)
    held = min(rank(previous), rank(relaxed))
    if held <= rank(status):
        return status, reasons
    return _report.STATUSES[held], reasons + [r for r in why if r not in reasons]


def limits_from(section: Mapping[str, str], where: str, base: Optional[HostLimits] = None) -> HostLimits:
    """Thresholds out of a settings section's text (``loss_warn = 5``); an empty or absent key keeps *base*'s."""
    values: Dict[str, Optional[float]] = dict(vars(base or HostLimits()))
    for name in ("loss_warn", "loss_crit", "rtt_warn", "rtt_crit"):
        raw = str(section.get(name, "") or "").strip()
        if not raw:
            continue
        if raw.lower() in ("off", "none"):
            values[name] = None
            continue
        text = raw[:-1] if name.startswith("loss") and raw.endswith("%") else raw
        try:
            values[name] = _numbers.decimal_number(text, f"{where} {name}", RuleError)
        except RuleError as exc:
            raise RuleError(str(exc).replace(" must be a number,", " must be a number or off,", 1)) from None
    return HostLimits(**values).check(where)
