# SPDX-License-Identifier: GPL-3.0-or-later
"""Print the messages of a Maildir (in order of arrival) or of a spool directory (*.eml) as JSON.

    read_mail.py DIR

Each message: subject, from, to, message_id, date, auto_submitted, the
content types of its parts, and the plain and HTML parts decoded.
"""

import email
import email.policy
import glob
import json
import mailbox
import os
import sys


def summary(msg):
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    return {
        "subject": msg["Subject"], "from": msg["From"], "to": msg["To"], "message_id": msg["Message-ID"],
        "date": msg["Date"], "auto_submitted": msg["Auto-Submitted"], "content_type": msg.get_content_type(),
        "parts": [part.get_content_type() for part in msg.iter_parts()],
        "text": plain.get_content().replace("\r\n", "\n") if plain else None,
        "html": html.get_content().replace("\r\n", "\n") if html else None,
    }


def read(directory):
    if os.path.isdir(os.path.join(directory, "new")):
        found = []
        for key in mailbox.Maildir(directory, create=False).keys():
            with open(os.path.join(directory, "new", key), "rb") as handle:
                found.append(email.message_from_binary_file(handle, policy=email.policy.default))
        return sorted(found, key=lambda m: int(m["X-Test-Sequence"]))
    messages = []
    for path in sorted(glob.glob(os.path.join(directory, "*.eml"))):
        with open(path, "rb") as handle:
            messages.append(email.message_from_binary_file(handle, policy=email.policy.default))
    return messages


if __name__ == "__main__":
    print(json.dumps([summary(m) for m in read(sys.argv[1])]))
