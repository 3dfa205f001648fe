# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless Chromium for the report tests: a screenshot, the DOM it built, and a PNG's pixels (stdlib only).

Chromium only ever opens file:// pages here, with its background services
(updates, sync, QUIC, first-run pings) switched off. Run as root it also
gets a network namespace of its own (``unshare --net``: only a loopback
that is down), so nothing it does can reach another machine.
"""

import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from typing import List, Sequence, Tuple

BINARY = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "chromium is not installed (scripts/setup.sh installs Debian's chromium package)"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-breakpad", "--disable-domain-reliability", "--no-pings",
         "--hide-scrollbars", "--force-color-profile=srgb", "--force-device-scale-factor=1"]
TIMEOUT = 60.0


def _isolated() -> List[str]:
    """``unshare --net`` when it works here (root, and a kernel that lets us), else nothing."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return []
    probe = subprocess.run(["unshare", "--net", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
    return ["unshare", "--net"] if probe.returncode == 0 else []


PREFIX = _isolated()


def run(page: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium on ``file://PAGE`` with *args*, in a fresh profile removed afterwards; its whole group killed on timeout."""
    profile = tempfile.mkdtemp(prefix="sysops-fleet-chromium-")
    argv = PREFIX + [BINARY] + FLAGS + [f"--user-data-dir={profile}"] + list(args) + \
        ["file://" + os.path.abspath(page)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {TIMEOUT:g}s: {argv}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return subprocess.CompletedProcess(argv, proc.returncode, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


def screenshot(page: str, png: str, width: int, height: int) -> None:
    if os.path.exists(png):
        os.unlink(png)
    done = run(page, f"--screenshot={os.path.abspath(png)}", f"--window-size={width},{height}")
    assert done.returncode == 0 and os.path.isfile(png), f"no screenshot of {page}: {done.stderr[-2000:]}"


def dump_dom(page: str, width: int = 1024, height: int = 768) -> str:
    """The document as Chromium built it (after any script on the page ran), serialized."""
    done = run(page, "--dump-dom", f"--window-size={width},{height}")
    assert done.returncode == 0 and "<html" in done.stdout, f"no DOM of {page}: {done.stderr[-2000:]}"
    return done.stdout


# ---- PNG, read with zlib and struct ---------------------------------------------------------------

@dataclass
class Image:
    """An 8-bit RGB picture: ``rows[y]`` is the row's bytes, three per pixel."""

    width: int
    height: int
    rows: List[bytes]

    def pixel(self, x: int, y: int) -> Tuple[int, int, int]:
        row = self.rows[y]
        return row[3 * x], row[3 * x + 1], row[3 * x + 2]

    def colours(self, step: int = 1) -> "dict":
        """How many pixels (of every *step*-th row and column) have each colour."""
        counts: dict = {}
        for row in self.rows[::step]:
            for i in range(0, len(row), 3 * step):
                key = row[i:i + 3]
                counts[key] = counts.get(key, 0) + 1
        return {tuple(k): v for k, v in counts.items()}


def _chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in the {kind!r} chunk"
        yield kind, body
        pos += 12 + length


def _add(a: int, b: int, lows: int, highs: int) -> int:
    """Bytewise a + b mod 256 of two rows held as integers (no carry crosses a byte)."""
    return ((a & lows) + (b & lows)) ^ ((a ^ b) & highs)


def _unfilter(kind: int, line: bytes, prior: bytes, bpp: int) -> bytes:
    """Undo one row's PNG filter: None and Up and Sub on whole rows at once, Average and Paeth byte by byte."""
    size = len(line)
    if kind == 0:
        return line
    lows, highs = int.from_bytes(b"\x7f" * size, "big"), int.from_bytes(b"\x80" * size, "big")
    if kind == 2:
        return _add(int.from_bytes(line, "big"), int.from_bytes(prior, "big"), lows, highs).to_bytes(size, "big")
    if kind == 1:  # a prefix sum per channel: add the row to itself shifted by bpp, 2 bpp, 4 bpp...
        value, shift = int.from_bytes(line, "big"), bpp
        mask = (1 << (8 * size)) - 1
        while shift < size:
            value = _add(value, value >> (8 * shift), lows, highs) & mask
            shift *= 2
        return value.to_bytes(size, "big")
    out = bytearray(line)
    for i in range(size):
        left = out[i - bpp] if i >= bpp else 0
        up = prior[i]
        if kind == 3:
            out[i] = (out[i] + ((left + up) >> 1)) & 255
            continue
        corner = prior[i - bpp] if i >= bpp else 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        out[i] = (out[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
    return bytes(out)


def read_png(path: str) -> Image:
    """The pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes), as RGB."""
    with open(path, "rb") as handle:
        chunks = list(_chunks(handle.read()))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", "a PNG starts with IHDR and ends with IEND"
    width, height, depth, colour, unused_c, unused_f, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "the image data does not match the header's size"
    rows, prior = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        prior = _unfilter(raw[start], raw[start + 1:start + 1 + stride], prior, bpp)
        rows.append(prior if bpp == 3 else bytes(b for i, b in enumerate(prior) if i % 4 != 3))
    return Image(width, height, rows)


def near(colour: Sequence[int], target: str, tolerance: int = 6) -> bool:
    """Whether an (r, g, b) pixel is within *tolerance* of ``#rrggbb`` in every channel."""
    want = [int(target[i:i + 2], 16) for i in (1, 3, 5)]
    return all(abs(a - b) <= tolerance for a, b in zip(colour, want))
