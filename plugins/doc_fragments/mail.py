# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Mail options shared by every module that mails a report (disk_report, fleet_report)."""

    DOCUMENTATION = r"""
options:
  mail_to:
    description:
      - Recipients, one address per entry, as V(ops@example.com) or V(Ops <ops@example.com>).
    type: list
    elements: str
    default: []
  mail_from:
    description:
      - The sender address. Defaults to the remote user at the managed host's name, for example
        V(root@web1).
    type: str
  smtp_host:
    description:
      - The mail server, as seen from the managed host.
    type: str
    default: localhost
  smtp_port:
    description:
      - The mail server's port. Defaults to 25 for O(smtp_security=none), 587 for V(starttls) and
        465 for V(ssl). Between 1 and 65535.
    type: int
  smtp_security:
    description:
      - V(none) talks plain SMTP (the usual local mail server on port 25).
      - V(starttls) connects in plain text and upgrades with STARTTLS; if the server does not offer
        it the task fails and nothing is sent in plain text.
      - V(ssl) speaks TLS from the first byte (SMTPS, port 465).
    type: str
    choices: [none, starttls, ssl]
    default: none
  smtp_username:
    description:
      - Log in with this user name (SMTP AUTH). Needs O(smtp_password).
    type: str
  smtp_password:
    description:
      - The password for O(smtp_username). Refused with O(smtp_security=none) unless
        O(smtp_allow_plaintext_auth=true).
    type: str
  smtp_allow_plaintext_auth:
    description:
      - Allow sending O(smtp_password) over an unencrypted connection. Only for a trusted path,
        such as a mail server on the same host.
    type: bool
    default: false
  smtp_validate_certs:
    description:
      - Verify the server's TLS certificate and host name, as Python's C(ssl.create_default_context) does.
      - Set to V(false) only for a server whose certificate you cannot fix; the connection is then
        encrypted but not authenticated.
    type: bool
    default: true
  smtp_ca_file:
    description:
      - A PEM file of CA certificates to trust for the server's certificate, instead of the
        system's. The C(SSL_CERT_FILE) environment variable is honoured too.
    type: path
  smtp_timeout:
    description:
      - Seconds the whole conversation with the mail server may take, from looking up O(smtp_host) and
        connecting to the last answer (TLS, login, and every queued message included). A server that
        answers slowly, even one byte at a time, cannot hold the task longer.
      - When it runs out, what was not sent stays queued in O(spool_dir) and the task says so.
      - RFC 5321 gives a server 10 minutes to answer the end of a message. If the timeout runs out while
        waiting for that answer, the server may have taken the message - it stays queued and is sent
        again, so its recipients may get it twice (RV(sysops.fleet.disk_report#module:mail.uncertain)).
        Set O(smtp_timeout=600) or more to wait as long as the RFC allows.
      - Every answer of the server is bounded too (100 lines, 64 KiB); a server that sends more, or
        something that is no SMTP reply, ends the conversation with a message that says what it sent.
      - More than 0, at most 3600.
    type: float
    default: 30
  spool_dir:
    description:
      - The mail queue - messages that could not be sent yet, kept until a later run sends them.
      - Defaults to V(/var/spool/sysops-fleet) for root (root's own, mode 0700) and to
        C($XDG_STATE_HOME/sysops-fleet/spool) (C(~/.local/state/sysops-fleet/spool)) for other users.
        It used to be the watcher's spool, V(/var/lib/sysops-fleet/spool) (see the changelog).
      - Created with mode 0700 when first needed; each message is a complete C(.eml) file (mode 0600)
        that starts with its envelope, written atomically and fsynced.
      - C(dead/) below it holds dead letters (refused for good, with the server's answer, or given up after
        O(spool_lifetime_days)) and C(quarantine/) the files that could not be read as a message (with a
        C(.why) file). Neither is retried; reports list them until they are removed. Move a dead letter
        back into O(spool_dir) to send it again.
      - Run as root with a O(spool_dir) that another user controls (the watcher's
        V(/var/lib/sysops-fleet/spool), owned by its user), root still holds the conversation with the mail
        server itself and sends this run's message; only what it could not deliver is written there, as that
        user, within 10 seconds. The messages that user has queued are not sent with root's settings - that
        user's own runs (the watcher) send them. The task warns so.
    type: path
  spool_lifetime_days:
    description:
      - Days a message may wait in O(spool_dir), counted from when it was first queued. A message still not
        delivered after that (deferred by the server, never answered, or the server unreachable) is given up,
        kept as a dead letter with the last reason it was not delivered, reported in
        RV(sysops.fleet.disk_report#module:mail.dead_letters) and listed by later reports.
      - 5 days, as Postfix's C(maximal_queue_lifetime) and sendmail's C(Timeout.queuereturn); RFC 5321
        asks for at least 4-5 days.
      - More than 0, at most 365.
    type: float
    default: 5
"""
