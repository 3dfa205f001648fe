# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real Prometheus tools for the metrics tests: a node_exporter started on 127.0.0.1, promtool, a parser.

node_exporter (Debian package prometheus-node-exporter) runs with the
textfile collector only, on a free loopback port, reading a directory of
the test's own; ``scrape()`` reads /metrics over HTTP. ``parse()`` reads
the text exposition format back, escapes and all, so a test compares what
Prometheus would store, not the text we wrote.
"""

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from typing import Dict, FrozenSet, Optional, Tuple

Sample = Tuple[str, FrozenSet[Tuple[str, str]]]
SETUP_HINT = "scripts/setup.sh installs it (Debian packages prometheus-node-exporter and prometheus)"


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"none of {', '.join(names)} is installed: {SETUP_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeExporter:
    """``with NodeExporter(directory) as exporter: exporter.scrape()``."""

    def __init__(self, directory: str, log: str):
        self.directory = directory
        self.port = free_port()
        self.log = log
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "NodeExporter":
        argv = [binary("prometheus-node-exporter", "node_exporter"), f"--web.listen-address=127.0.0.1:{self.port}",
                "--collector.disable-defaults", "--collector.textfile",
                f"--collector.textfile.directory={self.directory}"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
        deadline = time.monotonic() + 20
        while True:
            try:
                self.scrape_text()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    with open(self.log, encoding="utf-8", errors="replace") as log:
                        raise RuntimeError(f"node_exporter did not come up: {log.read()}") from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def scrape_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            return response.read().decode("utf-8")

    def scrape(self) -> Dict[Sample, float]:
        return parse(self.scrape_text())


def _labels(text: str, start: int) -> Tuple[Dict[str, str], int]:
    """Labels from ``{`` at *start*; the index after ``}``. Escapes as the format defines them."""
    labels: Dict[str, str] = {}
    i = start + 1
    while text[i] != "}":
        eq = text.index("=", i)
        name = text[i:eq].strip().lstrip(",").strip()
        assert text[eq + 1] == '"', text
        i, value = eq + 2, []
        while text[i] != '"':
            if text[i] == "\\":
                value.append({"n": "\n", "\\": "\\", '"': '"'}[text[i + 1]])
                i += 2
            else:
                value.append(text[i])
                i += 1
        labels[name] = "".join(value)
        i += 1
        while text[i] in ", ":
            i += 1
    return labels, i + 1


def parse(text: str) -> Dict[Sample, float]:
    """{(name, frozenset(labels)): value} of an exposition; comments skipped."""
    samples: Dict[Sample, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and brace < space:
            name = line[:brace]
            labels, end = _labels(line, brace)
            rest = line[end:]
        else:
            name, rest, labels = line[:space], line[space:], {}
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"twice: {line}"
        samples[key] = float(rest.split()[0])
    return samples


def promtool(*args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run([binary("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=60,
                          check=False, env=dict(os.environ, TZ="UTC"))
