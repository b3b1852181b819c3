#!/usr/bin/env python3
"""Writes the mail test corpus: .eml files composed by Python's standard `email` package (a mail
library other programs use for real), plus manifest.json with what a correct parser must read
from each file. The expected values come from the inputs the messages were built from, never
from parsing the output, so the manifest is an independent oracle.

Usage: generate.py OUT_DIR

Deterministic: the PRNG that picks MIME boundaries is seeded and every date and id is fixed, so
two runs write identical bytes. Standard library only; nothing touches the network.
"""

import email.charset
import email.header
import email.headerregistry
import email.policy
import hashlib
import json
import random
import sys
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from io import BytesIO
from pathlib import Path

SMTP = email.policy.SMTP  # CRLF line ends, as mail travels
COMPAT_CRLF = email.policy.compat32.clone(linesep="\r\n")
DATE = "Tue, 03 Nov 2026 14:05:00 +0100"
DATE_EPOCH = 1793711100  # 2026-11-03T13:05:00Z

# A tiny valid PNG (1x1 transparent pixel) for the inline image.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body_bytes(part, policy) -> bytes:
    """The content of `part` exactly as the generator writes it inside its parent: the part
    flattened alone, minus its header block."""
    out = BytesIO()
    BytesGenerator(out, policy=policy).flatten(part, unixfrom=False)
    flat = out.getvalue()
    sep = policy.linesep.encode() * 2
    return flat[flat.index(sep) + len(sep):]


def attachment(filename, content_type, data, *, content_id="", is_inline=False):
    return {"filename": filename, "content_type": content_type, "size": len(data),
            "sha256": sha256(data), "content_id": content_id, "is_inline": is_inline}


class Corpus:
    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.entries = []

    def add(self, name, raw: bytes, *, subject, from_address, from_name="", message_id="",
            text, html=None, attachments=(), is_report=False, defects=False, to=(), cc=(),
            date=DATE_EPOCH, extra=None):
        path = self.out_dir / name
        path.write_bytes(raw)
        entry = {
            "file": name,
            "subject": subject,
            "from_address": from_address,
            "from_name": from_name,
            "message_id": message_id,
            "to": list(to),
            "cc": list(cc),
            "date": date,
            "has_html": html is not None,
            "html_sha256": sha256(html.encode()) if html is not None else "",
            "is_report": is_report,
            "attachments": list(attachments),
            "expect_defects": defects,
        }
        # Short bodies are compared as text (a failure shows the difference); long ones by hash.
        if len(text) <= 4000:
            entry["text"] = text
        else:
            entry["text_sha256"] = sha256(text.encode())
        entry.update(extra or {})
        self.entries.append(entry)

    def write_manifest(self):
        (self.out_dir / "manifest.json").write_text(
            json.dumps({"messages": self.entries}, ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8")


def base_message(subject, *, msgid=True, policy=SMTP, frm=("Ann Example", "ann@example.org"),
                 msgid_value=None):
    m = EmailMessage(policy=policy)
    m["From"] = email.headerregistry.Address(frm[0], addr_spec=frm[1]) if frm[0] else frm[1]
    m["To"] = "db-requests@example.org"
    m["Date"] = DATE
    if msgid:
        m["Message-ID"] = msgid_value or "<%s@example.org>" % subject.encode("utf-8").hex()[:24]
    m["Subject"] = subject
    return m


def generate(out_dir: Path):
    random.seed(20261103)  # MIME boundaries come from `random`
    c = Corpus(out_dir)

    # 1. Plain ASCII with every threading header.
    text = ("Hello team,\n\nplease grant read access on the reporting database to the new\n"
            "analyst account rpt-reader.\n\nThanks,\nAnn\n")
    m = EmailMessage(policy=SMTP)
    m["Return-Path"] = "<Ann@Example.org>"
    m["From"] = "Ann Example <Ann@Example.ORG>"
    m["To"] = "db-requests@example.org, Help Desk <help@example.org>"
    m["Cc"] = "Team Lead <lead@example.org>"
    m["Reply-To"] = "ann.replies@example.org"
    m["Date"] = DATE
    m["Message-ID"] = "<plain-ascii-1@mail.example.org>"
    m["In-Reply-To"] = "<case-0000042@slmhub.example.org>"
    m["References"] = "<root@example.org> <case-0000042@slmhub.example.org>"
    m["Subject"] = "Access request: reporting database"
    m.set_content(text)
    c.add("01-plain-ascii.eml", m.as_bytes(), subject="Access request: reporting database",
          from_address="ann@example.org", from_name="Ann Example",
          message_id="plain-ascii-1@mail.example.org", text=text,
          to=["db-requests@example.org", "help@example.org"], cc=["lead@example.org"],
          extra={"reply_to": "ann.replies@example.org", "return_path": "ann@example.org",
                 "in_reply_to": ["case-0000042@slmhub.example.org"],
                 "references": ["root@example.org", "case-0000042@slmhub.example.org"]})

    # 2. UTF-8 subject long enough to become several adjacent encoded words; UTF-8 body.
    subject = "Störung: Datenbank «prod» nicht erreichbar – bitte dringend prüfen ✓ 数据库"
    text = ("Grüße aus dem Rechenzentrum,\n\ndie Datenbank ist seit 09:00 nicht erreichbar.\n"
            "Fehlermeldung: »connection refused« — betrifft alle Nutzer.\n")
    m = base_message(subject, frm=("Zoë Müller", "zoe@example.org"))
    m.set_content(text)
    c.add("02-utf8-encoded-words.eml", m.as_bytes(), subject=subject,
          from_address="zoe@example.org", from_name="Zoë Müller",
          message_id=m["Message-ID"][1:-1], text=text, to=["db-requests@example.org"])

    # 3. ISO-8859-1 subject (Q encoding) and body (quoted-printable), composed the classic way.
    subject = "Anfrage: Zugriff auf Gerätedaten für Büro Zürich"
    text = "Sehr geehrte Damen und Herren,\n\nbitte schalten Sie den Zugriff für Frau Groß frei.\nDanke schön!\n"
    m = MIMEText(text, "plain", "iso-8859-1")
    m["From"] = email.header.Header("Jürgen Beispiel", "iso-8859-1").encode() + " <juergen@example.org>"
    m["To"] = "db-requests@example.org"
    m["Date"] = DATE
    m["Message-ID"] = "<latin1-3@example.org>"
    m["Subject"] = email.header.Header(subject, "iso-8859-1")
    c.add("03-iso-8859-1.eml", m.as_bytes(policy=COMPAT_CRLF), subject=subject,
          from_address="juergen@example.org", from_name="Jürgen Beispiel",
          message_id="latin1-3@example.org", text=text, to=["db-requests@example.org"])

    # 4. Shift_JIS subject (B encoding, split across words) and body (base64).
    sjis = email.charset.Charset("shift_jis")
    sjis.output_charset = "shift_jis"  # Python would otherwise convert to ISO-2022-JP
    sjis.output_codec = "shift_jis"
    sjis.body_encoding = email.charset.BASE64
    subject = "【障害報告】データベース接続エラーのお知らせ（本番環境）について"
    text = "お疲れ様です。\n本番データベースに接続できません。\n至急ご確認ください。\n"
    m = MIMEText(text, "plain", sjis)
    m["From"] = email.header.Header("山田 花子", sjis).encode() + " <hanako@example.org>"
    m["To"] = "db-requests@example.org"
    m["Date"] = DATE
    m["Message-ID"] = "<sjis-4@example.org>"
    m["Subject"] = email.header.Header(subject, sjis)
    c.add("04-shift-jis.eml", m.as_bytes(policy=COMPAT_CRLF), subject=subject,
          from_address="hanako@example.org", from_name="山田 花子",
          message_id="sjis-4@example.org", text=text, to=["db-requests@example.org"])

    # 5. ISO-2022-JP, what Japanese mail clients send by default (Python converts to it).
    subject = "データベースの件"
    text = "いつもお世話になっております。\nバックアップの状況を教えてください。\n"
    m = MIMEText(text, "plain", "iso-2022-jp")
    m["From"] = "taro@example.org"
    m["To"] = "db-requests@example.org"
    m["Date"] = DATE
    m["Message-ID"] = "<jis-5@example.org>"
    m["Subject"] = email.header.Header(subject, "iso-2022-jp")
    c.add("05-iso-2022-jp.eml", m.as_bytes(policy=COMPAT_CRLF), subject=subject,
          from_address="taro@example.org", message_id="jis-5@example.org", text=text,
          to=["db-requests@example.org"])

    # 6. multipart/alternative: the text/plain is the text, the HTML is kept.
    text = "Server db1 is down.\nPlease check.\n"
    html = "<html><body><p>Server <b>db1</b> is down.</p><p>Please check.</p></body></html>\n"
    m = base_message("Server down")
    m.set_content(text)
    m.add_alternative(html, subtype="html")
    c.add("06-alternative.eml", m.as_bytes(), subject="Server down", from_address="ann@example.org",
          from_name="Ann Example", message_id=m["Message-ID"][1:-1], text=text, html=html,
          to=["db-requests@example.org"])

    # 7. HTML only: the text is made from the HTML (expected rendering written here).
    html = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ignored title</title>\n"
            "<style>p { color: red; }</style></head>\n<body>\n<h1>Database outage</h1>\n"
            "<p>The <b>prod</b> database&nbsp;is down since 09:00 &ndash; please check.</p>\n"
            "<ul><li>Server: db1.example.org</li><li>Impact: <i>all</i> users</li></ul>\n"
            "<p>Details: <a href=\"https://status.example.org/incidents/42\">status page</a><br>\n"
            "Call us at &lt;+1 555 0100&gt; &amp; mention #42.</p>\n"
            "<script>alert(\"x\")</script>\n</body></html>\n")
    rendered = ("Database outage\n\nThe prod database is down since 09:00 – please check.\n\n"
                "- Server: db1.example.org\n- Impact: all users\n\n"
                "Details: status page (https://status.example.org/incidents/42)\n"
                "Call us at <+1 555 0100> & mention #42.")
    m = base_message("HTML only")
    m.set_content(html, subtype="html")
    c.add("07-html-only.eml", m.as_bytes(), subject="HTML only", from_address="ann@example.org",
          from_name="Ann Example", message_id=m["Message-ID"][1:-1], text=rendered, html=html,
          to=["db-requests@example.org"])

    # 8. Attachments whose UTF-8 names are long enough for RFC 2231 continuations.
    text = "Attached are the reports.\n"
    files = [
        ("Übersicht der Störungen im Rechenzentrum – November 2026 – endgültige Fassung.pdf",
         "application", "pdf", random.Random(8).randbytes(3000)),
        ("Протокол совещания по доступности базы данных и план восстановления.docx",
         "application", "vnd.openxmlformats-officedocument.wordprocessingml.document",
         random.Random(9).randbytes(5000)),
        ("plain-name.csv", "text", "csv", b"service,minutes\r\ndb,42\r\n"),
    ]
    m = base_message("Reports with long names")
    m.set_content(text)
    expected = []
    for name, maintype, subtype, data in files:
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name, cte="base64")
        expected.append(attachment(name, maintype + "/" + subtype, data))
    raw = m.as_bytes()
    assert b"filename*1*=" in raw, "the long names must be written as RFC 2231 continuations"
    c.add("08-rfc2231-attachments.eml", raw, subject="Reports with long names",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text, attachments=expected,
          to=["db-requests@example.org"])

    # 9. A 20 MB attachment (deterministic bytes).
    big = random.Random(20).randbytes(20 * 1024 * 1024)
    text = "The database dump is attached.\n"
    m = base_message("Large dump")
    m.set_content(text)
    m.add_attachment(big, maintype="application", subtype="octet-stream", filename="dump.bin")
    c.add("09-large-attachment.eml", m.as_bytes(), subject="Large dump",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text,
          attachments=[attachment("dump.bin", "application/octet-stream", big)],
          to=["db-requests@example.org"])

    # 10. Inline image: alternative > (plain, related > (html, image with Content-ID)).
    text = "See the graph below.\n"
    html = '<p>See the graph below.</p><img src="cid:graph-1@example.org" alt="graph">\n'
    m = base_message("Inline graph")
    m.set_content(text)
    m.add_alternative(html, subtype="html")
    m.get_payload()[1].add_related(PNG_1X1, "image", "png", cid="<graph-1@example.org>",
                                   filename="graph.png")
    c.add("10-inline-image.eml", m.as_bytes(), subject="Inline graph",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text, html=html,
          attachments=[attachment("graph.png", "image/png", PNG_1X1,
                                  content_id="graph-1@example.org", is_inline=True)],
          to=["db-requests@example.org"])

    # 11. A forwarded message as message/rfc822 (with its own attachment, not ours).
    inner = base_message("Original: backup failed", frm=("Bob Example", "bob@example.org"))
    inner.set_content("The nightly backup failed at 02:00.\n")
    inner.add_attachment(b"ERROR 42\n", maintype="text", subtype="plain", filename="backup.log")
    text = "Forwarding the report below.\n"
    m = base_message("Fwd: backup failed")
    m.set_content(text)
    m.add_attachment(inner, filename="forwarded.eml")
    part = m.get_payload()[1]
    c.add("11-rfc822-attachment.eml", m.as_bytes(), subject="Fwd: backup failed",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text,
          attachments=[attachment("forwarded.eml", "message/rfc822", body_bytes(part, SMTP))],
          to=["db-requests@example.org"])

    # 12. multipart/mixed nested five deep; the text is the innermost first part, every level
    # adds an attachment after it.
    text = "Deep text.\n"
    innermost = MIMEText(text, "plain", "utf-8")
    node = innermost
    expected = []
    for level in range(5, 0, -1):
        data = ("level %d attachment\n" % level).encode()
        att = MIMEApplication(data, "octet-stream")
        att.add_header("Content-Disposition", "attachment", filename="level%d.bin" % level)
        node = MIMEMultipart("mixed", _subparts=[node, att])
        # Document order: the deepest level's attachment comes first.
        expected.append(attachment("level%d.bin" % level, "application/octet-stream", data))
    node["From"] = "ann@example.org"
    node["To"] = "db-requests@example.org"
    node["Date"] = DATE
    node["Message-ID"] = "<nested-12@example.org>"
    node["Subject"] = "Nested five deep"
    c.add("12-nested-5-deep.eml", node.as_bytes(policy=COMPAT_CRLF), subject="Nested five deep",
          from_address="ann@example.org", message_id="nested-12@example.org", text=text,
          attachments=expected, to=["db-requests@example.org"])

    # 13. No Message-ID at all (deduplication falls back to a content hash).
    text = "No id here.\n"
    m = base_message("No message id", msgid=False)
    m.set_content(text)
    c.add("13-missing-message-id.eml", m.as_bytes(), subject="No message id",
          from_address="ann@example.org", from_name="Ann Example", text=text,
          to=["db-requests@example.org"])

    # 14. A delivery status notification (RFC 3464) returning our auto-reply.
    original = base_message("[DB0000042] Your request", frm=("slmhub", "db-requests@example.org"))
    original.replace_header("To", "gone@example.org")
    original.set_content("We received your request.\n")
    text = ("This is the mail system at host mx.example.org.\n\n"
            "Your message could not be delivered to gone@example.org.\n")
    report = MIMEMultipart("report", report_type="delivery-status")
    report.attach(MIMEText(text, "plain", "us-ascii"))
    status = Message()
    status["Content-Type"] = "message/delivery-status"
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mx.example.org"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = "rfc822; gone@example.org"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    returned = MIMEBase("message", "rfc822")
    returned.set_payload([original])
    report.attach(returned)
    report["Return-Path"] = "<>"
    report["From"] = "MAILER-DAEMON@mx.example.org (Mail Delivery System)"
    report["To"] = "db-requests@example.org"
    report["Date"] = DATE
    report["Message-ID"] = "<dsn-14@mx.example.org>"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    c.add("14-dsn.eml", report.as_bytes(policy=COMPAT_CRLF),
          subject="Undelivered Mail Returned to Sender", from_address="mailer-daemon@mx.example.org",
          from_name="Mail Delivery System", message_id="dsn-14@mx.example.org", text=text,
          is_report=True, to=["db-requests@example.org"],
          attachments=[
              attachment("", "message/delivery-status", body_bytes(status, COMPAT_CRLF)),
              attachment("[DB0000042] Your request.eml", "message/rfc822",
                         body_bytes(returned, COMPAT_CRLF)),
          ],
          extra={"return_path": ""})

    # 15. Broken: the closing boundary is missing (a truncated upload, a buggy client).
    text = "The attachment follows.\n"
    data = random.Random(15).randbytes(1000)
    m = base_message("Missing closing boundary")
    m.set_content(text)
    m.add_attachment(data, maintype="application", subtype="pdf", filename="report.pdf")
    raw = m.as_bytes()
    boundary = m.get_boundary().encode()
    closing = b"\r\n--" + boundary + b"--\r\n"
    assert raw.endswith(closing)
    raw = raw[:-len(closing)] + b"\r\n"
    c.add("15-broken-no-closing-boundary.eml", raw, subject="Missing closing boundary",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text,
          attachments=[attachment("report.pdf", "application/pdf", data)], defects=True,
          to=["db-requests@example.org"])

    # 16. Broken: an ISO-8859-1 body labelled UTF-8.
    text = "Grüße, die Störung ist behoben. Schöne Grüße aus Köln\n"
    m = base_message("Wrong charset label")
    m.set_content(text.encode("iso-8859-1"), maintype="text", subtype="plain", cte="8bit")
    m.set_param("charset", "utf-8")
    c.add("16-broken-wrong-charset.eml", m.as_bytes(), subject="Wrong charset label",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text, defects=True,
          to=["db-requests@example.org"])

    # 17. Broken: UTF-8 body labelled us-ascii.
    text = "Naïve café résumé — “quoted”\n"
    m = base_message("UTF-8 labelled ASCII")
    m.set_content(text.encode("utf-8"), maintype="text", subtype="plain", cte="8bit")
    m.set_param("charset", "us-ascii")
    c.add("17-broken-ascii-label.eml", m.as_bytes(), subject="UTF-8 labelled ASCII",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text, defects=True,
          to=["db-requests@example.org"])

    # 18. Bare LF line ends throughout (a Unix mbox export, a pipe that stripped CRs).
    text = "Line one.\nLine two.\n"
    html = "<p>Line one.<br>Line two.</p>\n"
    data = b"a,b\nc,d\n"
    m = base_message("Bare line feeds", policy=email.policy.default)
    m.set_content(text)
    m.add_alternative(html, subtype="html")
    m.add_attachment(data, maintype="text", subtype="csv", filename="table.csv", cte="base64")
    raw = m.as_bytes()
    assert b"\r\n" not in raw
    c.add("18-broken-bare-lf.eml", raw, subject="Bare line feeds", from_address="ann@example.org",
          from_name="Ann Example", message_id=m["Message-ID"][1:-1], text=text, html=html,
          attachments=[attachment("table.csv", "text/csv", data)],
          to=["db-requests@example.org"])

    # 19. Broken: raw ISO-8859-1 bytes in Subject and From (no encoded words).
    subject = "Störung: Drucker im Büro"
    text = "Der Drucker druckt nicht.\n"
    m = base_message("PLACEHOLDER", frm=("", "joerg@example.org"))
    m.set_content(text)
    raw = m.as_bytes()
    raw = raw.replace(b"Subject: PLACEHOLDER", b"Subject: " + subject.encode("iso-8859-1"))
    raw = raw.replace(b"From: joerg@example.org",
                      b"From: J\xf6rg Beispiel <joerg@example.org>")
    c.add("19-broken-8bit-headers.eml", raw, subject=subject, from_address="joerg@example.org",
          from_name="Jörg Beispiel", message_id=m["Message-ID"][1:-1], text=text, defects=True,
          to=["db-requests@example.org"])

    # 20. RFC 6532: raw UTF-8 headers, as an SMTPUTF8 client sends them.
    subject = "Ticket für Ålesund – 東京"
    text = "UTF-8 headers.\n"
    m = base_message(subject, policy=email.policy.SMTPUTF8, frm=("Åsa Exempel", "asa@example.org"))
    m.set_content(text)
    raw = m.as_bytes()
    assert subject.encode() in raw
    c.add("20-utf8-headers.eml", raw, subject=subject, from_address="asa@example.org",
          from_name="Åsa Exempel", message_id=m["Message-ID"][1:-1], text=text,
          to=["db-requests@example.org"])

    # 21. Quoted-printable with long lines (soft line breaks) and a UTF-8 name param on the body.
    text = ("Dies ist eine sehr lange Zeile, die über die übliche Länge von 76 Zeichen hinausgeht "
            "und daher mit weichen Zeilenumbrüchen kodiert werden muss – äöü ß.\nZweite Zeile.\n")
    m = base_message("Quoted-printable")
    m.set_content(text, cte="quoted-printable")
    raw = m.as_bytes()
    assert b"=\r\n" in raw, "the long line must carry soft line breaks"
    c.add("21-quoted-printable.eml", raw, subject="Quoted-printable",
          from_address="ann@example.org", from_name="Ann Example",
          message_id=m["Message-ID"][1:-1], text=text, to=["db-requests@example.org"])

    c.write_manifest()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    generate(out)
