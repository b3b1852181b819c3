#!/usr/bin/env python3
"""Parse-only rate of Python's standard `email` package over the benchmark corpus (the same
files bench_mail_parse reads), for bench/mail/run.sh.

Usage: python_parse.py CORPUS_DIR [--repeat N]

Per message, what a ticket needs, as parse_mail gives it: message_from_bytes with
policy.default; Subject, From, To, Cc, Message-ID, In-Reply-To, References and Date read
(decoded); every leaf part's content decoded (get_content(): text to str in its charset,
the rest to bytes) and the SHA-256 of every part that is not text/plain or text/html.
The files are read into memory first; only parsing is timed. Prints key=value lines, the
median of N passes after one warm-up pass, and how many decoded subjects differ from the
subjects the generator composed.
"""

import argparse
import email
import email.policy
import hashlib
import statistics
import sys
import time


def parse(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(m["subject"] or "")
    for name in ("from", "to", "cc", "message-id", "in-reply-to", "references", "date"):
        value = m[name]
        if value is not None:
            str(value)
    attachments = 0
    for part in m.walk():
        if part.is_multipart():
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError, KeyError):  # an unknown charset, a broken part
            content = part.get_payload(decode=True) or b""
        if part.get_content_type() not in ("text/plain", "text/html"):
            if isinstance(content, str):
                content = content.encode("utf-8", "surrogateescape")
            elif not isinstance(content, bytes):  # message/rfc822: the embedded message
                content = content.as_bytes()
            hashlib.sha256(content).hexdigest()
            attachments += 1
    return subject, attachments


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    messages = []
    with open(args.dir + "/manifest.tsv", encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[1] == "big":
                continue
            with open(args.dir + "/" + fields[0], "rb") as m:
                messages.append((m.read(), fields[5]))
    total = sum(len(raw) for raw, _ in messages)
    times = []
    wrong = attachments = 0
    for run in range(args.repeat + 1):
        wrong = attachments = 0
        start = time.perf_counter()
        for raw, expected in messages:
            subject, n = parse(raw)
            attachments += n
            wrong += subject != expected
        if run > 0:  # the first pass warms up
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    print("python_version=%s" % sys.version.split()[0])
    print("messages=%d bytes=%d" % (len(messages), total))
    print("python_seconds=%.4f python_msgs_per_s=%.1f python_mb_per_s=%.2f" % (
        seconds, len(messages) / seconds, total / seconds / 1e6))
    print("python_attachments=%d python_subjects_wrong=%d" % (attachments, wrong))


if __name__ == "__main__":
    main()
