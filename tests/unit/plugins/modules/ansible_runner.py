# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run ``ansible`` and ``ansible-playbook`` as an operator does, and a real SMTP server beside them.

The commands are the ones of this interpreter's environment (.venv), run
from the repository root (its ansible.cfg), optionally inside a network
namespace of the loopback lab (tests/lab.py), where nothing they do can
leave the machine: facts gathering looks names up, and a lookup is a
packet. ``MaildirServer`` is tests/unit/.../smtp_server.py run as a
program (in the same namespace when given), writing what it receives to
a Maildir that the test reads back.
"""

import email
import json
import email.policy
import mailbox
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
SMTP_SERVER = os.path.join(ROOT, "tests", "unit", "plugins", "module_utils", "smtp_server.py")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")


def environment(tmp_path, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """This venv's Ansible with this clone's collection, no colours, temporary files in *tmp_path*."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS),
               ANSIBLE_DEPRECATION_WARNINGS="false", PYTHONWARNINGS="ignore")
    env.update(extra or {})
    return env


def mitogen_env() -> Dict[str, str]:
    """What selects mitogen's linear strategy (modules run in-process, in a threaded interpreter)."""
    import ansible_mitogen  # pylint: disable=import-outside-toplevel
    return {"ANSIBLE_STRATEGY_PLUGINS": os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def run(argv: Sequence[str], tmp_path, netns: Optional[str] = None, env: Optional[Dict[str, str]] = None,
        wrapper: Sequence[str] = (), timeout: float = 600) -> subprocess.CompletedProcess:
    """One ``ansible``/``ansible-playbook`` command from the repository root; output as text, never raises on rc.

    *wrapper* goes before the command (inside the namespace): e.g. a shell that mounts something first.
    """
    full = list(wrapper) + [os.path.join(BIN, argv[0])] + list(argv[1:])
    if netns:
        full = ["ip", "netns", "exec", netns] + full
    return subprocess.run(full, cwd=ROOT, env=environment(tmp_path, env), capture_output=True, text=True,
                          timeout=timeout, check=False)


class MaildirServer:
    """smtp_server.py as a program on 127.0.0.1 (of *netns* when given): ``port``, ``messages()``; stop() ends it."""

    def __init__(self, tmp_path, netns: Optional[str] = None, args: Sequence[str] = ()):
        self.maildir = str(tmp_path / "maildir")
        port_file = tmp_path / "smtp-port"
        argv = [sys.executable, SMTP_SERVER, "--maildir", self.maildir, "--port-file", str(port_file)] + list(args)
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the SMTP server did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def messages(self) -> List[email.message.EmailMessage]:
        """Every message received so far, in the order they arrived."""
        if not os.path.isdir(self.maildir):
            return []
        found = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
                 for m in mailbox.Maildir(self.maildir, create=False)]
        return sorted(found, key=lambda m: int(m["X-Test-Sequence"]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def plain(message) -> str:
    """The text part of a message as the report was written (line ends as in the file)."""
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def adhoc(module: str, args: Dict, tmp_path, check: bool = False, netns: Optional[str] = None):
    """``ansible localhost -m MODULE -a JSON [--check]``: (exit code, the module's result as Ansible printed it)."""
    argv = ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", module, "-a", json.dumps(args)]
    done = run(argv + (["--check"] if check else []), tmp_path, netns,
               env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_DISPLAY_FAILED_STDERR": "0"})
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "MODULE FAILURE" not in output, output[-3000:]
    marker = next((m for m in ("localhost | CHANGED => ", "localhost | SUCCESS => ", "localhost | FAILED! => ")
                   if m in done.stdout), None)
    assert marker, f"no result from ansible (rc {done.returncode}): {output[-3000:]}"
    return done.returncode, json.JSONDecoder().raw_decode(done.stdout.split(marker, 1)[1])[0]
