#!/usr/bin/env python3
"""Writes the mail benchmark corpus (bench/mail/run.sh): a realistic mix of messages for a
helpdesk address, composed with Python's standard `email` package, plus one 25 MiB message.

Usage: generate.py OUT_DIR [--count N] [--seed S] [--big-mib M]

Writes OUT_DIR/NNNNN.eml, OUT_DIR/big.eml and OUT_DIR/manifest.tsv, one line per message
(UTF-8, tab-separated):

    file  kind  parent  sender  size  subject

subject is the decoded Subject the message was composed with (the oracle for the parsers).

kind is `new` (a person's first mail: a new ticket with an auto-reply), `auto` (monitoring
mail marked Auto-Submitted: a new ticket, no auto-reply) or `reply` (the requester answering
the ticket that message number `parent` opened: it joins that ticket). A reply's subject
carries the tag `[DBR@@@@@@@]`, which the LMTP client replaces with the parent's case number
(the 250 reply to the parent names it) before delivering; half of the replies also carry
In-Reply-To/References to the parent's Message-ID, the other half only the tag (a client that
lost the headers). Every parent is at least 200 messages before its reply. The last line is
big.eml (kind `big`).

The mix (N = 2,000: 1,442 new, 124 alerts, 434 replies): each message is a reply with
probability 0.24 once some ticket is old enough to answer, else an alert with probability 0.04
(the would-be replies of the first 200 messages become alerts too), else new mail from ~N/3
people (at most 4 each, under the daily auto-reply cap of 5). New mail: text/plain ~45 %,
multipart/alternative ~50 %, HTML only ~5 %; ~13 % carry 1-2 attachments (CSV, PNG, PDF,
XLSX; mixed over a plain or alternative body); bodies of 2-30 KB; subjects ASCII, UTF-8,
ISO-8859-1 and Shift_JIS/ISO-2022-JP (RFC 2047 encoded words); bodies in UTF-8 (7bit, 8bit,
quoted-printable or base64), ISO-8859-1, Shift_JIS (base64) or ISO-2022-JP; some
Importance / X-Priority marks. Every message is under 100 KB and has a distinct
Message-ID.

Deterministic: one seeded PRNG for every choice (and the MIME boundaries), fixed dates.
Standard library only.
"""

import argparse
import datetime
import email.charset
import email.header
import email.headerregistry
import email.policy
import email.utils
import random
from email.message import EmailMessage
from email.mime.text import MIMEText
from pathlib import Path

SMTP = email.policy.SMTP  # CRLF line ends, as mail travels
COMPAT_CRLF = email.policy.compat32.clone(linesep="\r\n")
QUEUE = "db-requests@example.org"
TAG = "[DBR@@@@@@@]"  # replaced by the LMTP client with the parent's case number
MIN_GAP = 200         # a reply comes at least this many messages after its parent
LIMIT = 100 * 1000    # every corpus message is under 100 KB

WORDS_EN = ("database server backup restore replication query index table schema user "
            "account access password login connection timeout error warning failed slow "
            "report monthly production staging cluster node disk space memory cpu load "
            "please could you check the since this morning we see again after upgrade "
            "version patch window maintenance request change ticket team thanks regards "
            "oracle postgres listener tablespace archive log redo undo job scheduler export "
            "import schema grant revoke role privilege audit analyst application release").split()
WORDS_DE = ("Datenbank Störung Zugriff Benutzer Kennwort Sicherung Wiederherstellung "
            "Größe Übertragung fehlgeschlagen bitte prüfen dringend heute Morgen wieder "
            "nach dem Update Wartungsfenster Änderung Anfrage Grüße Rückmeldung möglich "
            "Tabelle Abfrage langsam Speicherplatz Festplatte Büro Zürich Köln schön für "
            "über außerdem Verfügbarkeit Berechtigung").split()
WORDS_FR = ("base de données serveur accès échec sauvegarde restauration requête lente "
            "mot de passe réplication problème depuis ce matin merci cordialement déjà "
            "reçu réseau élevé mémoire créer supprimer compte bientôt été").split()
WORDS_JA = ("データベース 接続 エラー 障害 本番環境 バックアップ 復旧 確認 お願いします "
            "至急 ユーザー 権限 申請 遅延 対応 報告 サーバー 停止 再起動 ログ").split()
WORDS_ZH = "数据库 连接 错误 备份 恢复 服务器 用户 权限 申请 请 检查 谢谢 报告 故障".split()

SUBJECTS_EN = ("Access request for {w}", "Database {w} is slow", "Backup of {w} failed",
               "Please grant {w} role", "Question about the {w} report",
               "Outage: {w} not reachable", "Change request: {w} parameters",
               "Error ORA-{n} on {w}", "Disk space on {w} almost full",
               "New account for {w} team")
DOMAINS = ("example.org", "example.com", "uni.example.edu", "mail.example.net",
           "research.example.edu", "partner.example.co.uk")
FIRST = ("Ann", "Bob", "Chloé", "David", "Eva", "François", "Günter", "Hanna", "Ivan",
         "Jürgen", "Kenji", "Li", "María", "Nils", "Olga", "Pierre", "Quentin", "Rosa",
         "Søren", "Tomás", "Ute", "Victor", "Wei", "Xavier", "Yuki", "Zoë")
LAST = ("Example", "Müller", "Schmidt", "Dubois", "García", "Rossi", "Tanaka", "Wang",
        "Nowak", "Jensen", "Öztürk", "Smith", "Lefèvre", "Sato", "Kowalski", "Berg")


def sjis_charset():
    cs = email.charset.Charset("shift_jis")
    cs.output_charset = "shift_jis"  # Python would otherwise convert to ISO-2022-JP
    cs.output_codec = "shift_jis"
    cs.body_encoding = email.charset.BASE64
    cs.header_encoding = email.charset.BASE64
    return cs


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        random.seed(seed)  # MIME boundaries come from the module-level `random`
        self.people = []
        self.new_per_person = {}

    # ---- text ---------------------------------------------------------------------------
    def words(self, vocab, n, sep=" "):
        return sep.join(self.r.choice(vocab) for _ in range(n))

    def paragraphs(self, lang, size):
        """About `size` bytes of UTF-8 text in paragraphs of lines wrapped at ~72 columns."""
        vocab = {"en": WORDS_EN, "de": WORDS_DE, "fr": WORDS_FR, "ja": WORDS_JA,
                 "zh": WORDS_ZH}[lang]
        sep = "" if lang in ("ja", "zh") else " "
        out, total = [], 0
        while total < size:
            lines = []
            for _ in range(self.r.randint(2, 7)):
                line = self.words(vocab, self.r.randint(6, 12) if sep else self.r.randint(8, 16),
                                  sep)
                lines.append(line[0].upper() + line[1:] + ("." if sep else "。"))
            para = "\n".join(lines)
            out.append(para)
            total += len(para.encode()) + 2
        return "\n\n".join(out) + "\n"

    def html_of(self, text):
        paras = text.strip().split("\n\n")
        body = "".join("<p>" + p.replace("&", "&amp;").replace("<", "&lt;")
                       .replace("\n", "<br>\n") + "</p>\n" for p in paras)
        return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                "<style>p { font-family: Calibri, sans-serif; }</style></head>\n"
                "<body>\n" + body + "<div class=\"sig\"><b>--</b><br>Sent from the web "
                "client</div>\n</body></html>\n")

    # ---- people and headers ----------------------------------------------------------------
    def person(self):
        """A sender with fewer than 4 new tickets so far (the daily auto-reply cap is 5)."""
        while True:
            if len(self.people) < 30 or self.r.random() < 0.35:
                first, last = self.r.choice(FIRST), self.r.choice(LAST)
                local = "%s.%s%d" % (first.lower().encode("ascii", "ignore").decode() or "x",
                                     last.lower().encode("ascii", "ignore").decode() or "y",
                                     len(self.people))
                p = ("%s %s" % (first, last), "%s@%s" % (local, self.r.choice(DOMAINS)))
                self.people.append(p)
            else:
                p = self.r.choice(self.people)
            if self.new_per_person.get(p[1], 0) < 4:
                self.new_per_person[p[1]] = self.new_per_person.get(p[1], 0) + 1
                return p

    def subject(self):
        """(subject, charset for the header: None = let the policy encode UTF-8)."""
        x = self.r.random()
        if x < 0.60:
            s = self.r.choice(SUBJECTS_EN).format(w=self.r.choice(WORDS_EN),
                                                 n=self.r.randint(1000, 29999))
            return s, None
        if x < 0.80:
            lang = self.r.choice(("de", "fr", "zh"))
            vocab = {"de": WORDS_DE, "fr": WORDS_FR, "zh": WORDS_ZH}[lang]
            sep = "" if lang == "zh" else " "
            s = self.words(vocab, self.r.randint(3, 9), sep)
            return s[0].upper() + s[1:] + (" ✓" if self.r.random() < 0.2 else ""), None
        if x < 0.92:
            return "Anfrage: " + self.words(WORDS_DE, self.r.randint(3, 7)), "iso-8859-1"
        s = self.words(WORDS_JA, self.r.randint(3, 6), "")
        return "【" + s + "】", self.r.choice(("shift_jis", "iso-2022-jp"))

    def set_common(self, m, i, frm, compat):
        """From, To, maybe Cc, Date, Message-ID, maybe a priority mark, X-Mailer. The Subject
        is added to the bytes afterwards by with_subject()."""
        name, addr = frm
        m["From"] = display(name, addr) if compat else \
            email.headerregistry.Address(name, addr_spec=addr)
        m["To"] = QUEUE
        if self.r.random() < 0.15:
            cc = self.r.choice(self.people)
            m["Cc"] = display(*cc) if compat else \
                email.headerregistry.Address(cc[0], addr_spec=cc[1])
        m["Date"] = date_of(i)
        m["Message-ID"] = "<%05d.%08x@%s>" % (i, self.r.getrandbits(32), addr.split("@")[1])
        x = self.r.random()
        if x < 0.05:
            m["Importance"] = "high"
        elif x < 0.08:
            m["X-Priority"] = "1 (Highest)"
        elif x < 0.10:
            m["X-Priority"] = "5 (Lowest)"
        m["X-Mailer"] = self.r.choice(("Microsoft Outlook 16.0", "Thunderbird 115.4",
                                       "Apple Mail (2.3774)", "Roundcube Webmail/1.6"))

    # ---- messages ------------------------------------------------------------------------
    def new_message(self, i):
        """(raw bytes, sender, subject, body text) of a person's first mail."""
        frm = self.person()
        subject, scs = self.subject()
        attach = self.r.random() < 0.15
        # Bodies of 2-30 KB, more short than long; shorter beside attachments.
        size = int(2000 + ((10000 if attach else 28000) * self.r.random() ** 1.6))
        if scs in ("shift_jis", "iso-2022-jp"):
            lang = "ja"
        else:
            lang = self.r.choice(("en", "en", "en", "en", "de", "fr"))
        text = self.paragraphs(lang, size) + "\n-- \n" + frm[0] + "\n"
        shape = self.r.random()
        if lang == "ja" or (scs == "iso-8859-1" and lang != "fr" and not attach and shape < 0.45):
            # What older clients send: the whole message in a legacy charset.
            if lang == "ja":
                charset = sjis_charset() if scs == "shift_jis" else "iso-2022-jp"
            else:
                charset = "iso-8859-1"
            codec = scs if lang == "ja" else charset
            text = text.encode(codec, "replace").decode(codec)  # e.g. a Spanish name in SJIS
            m = MIMEText(text, "plain", charset)
            self.set_common(m, i, frm, True)
            raw = m.as_bytes(policy=COMPAT_CRLF)
            return with_subject(raw, encode_subject(subject, scs)), frm, subject, text
        m = EmailMessage(policy=SMTP)
        if shape < 0.45 or (attach and shape < 0.55):
            if text.isascii():
                cte = self.r.choice(("7bit", "7bit", "quoted-printable"))
            else:
                cte = self.r.choice(("8bit", "quoted-printable", "base64"))
            m.set_content(text, cte=cte)
        elif shape < 0.95 or attach:
            m.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
            m.add_alternative(self.html_of(text), subtype="html", cte="quoted-printable")
        else:
            m.set_content(self.html_of(text), subtype="html", cte="quoted-printable")
        if attach:
            # Attachments up to ~60 KB (~80 KB in base64), the whole message under 100 KB.
            room = int((LIMIT - 6000 - len(m.as_bytes())) * 0.74)
            for k in range(self.r.choice((1, 1, 2))):
                n = min(room, self.r.randint(2000, 60000) if k == 0 else self.r.randint(1000, 8000))
                if n < 500:
                    break
                room -= n
                kind = self.r.random()
                if kind < 0.3:
                    rows, size = ["service,minutes,date"], 20
                    while size < n:
                        rows.append("%s,%d,2026-%02d-%02d" % (
                            self.r.choice(WORDS_EN), self.r.randint(0, 900),
                            self.r.randint(1, 12), self.r.randint(1, 28)))
                        size += len(rows[-1]) + 2
                    m.add_attachment("\r\n".join(rows).encode(), maintype="text", subtype="csv",
                                     filename="export-%d.csv" % i, cte="base64")
                elif kind < 0.6:
                    m.add_attachment(self.r.randbytes(n), maintype="image", subtype="png",
                                     filename="screenshot %d.png" % i)
                elif kind < 0.85:
                    m.add_attachment(self.r.randbytes(n), maintype="application", subtype="pdf",
                                     filename="Bericht Störung %d – Übersicht.pdf" % i)
                else:
                    m.add_attachment(
                        self.r.randbytes(n), maintype="application",
                        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        filename="inventory-%d.xlsx" % i)
        self.set_common(m, i, frm, False)
        return with_subject(m.as_bytes(), encode_subject(subject, scs)), frm, subject, text

    def alert(self, i):
        host = "db%02d.dc%d.example.org" % (self.r.randint(1, 40), self.r.randint(1, 3))
        frm = ("Nagios", "nagios@monitor.example.org")
        service = self.r.choice(("Oracle Listener", "Tablespace", "Archive Log", "Replication"))
        subject = "** PROBLEM Service Alert: %s/%s is CRITICAL **" % (host, service)
        lines = ["***** Nagios *****", "", "Notification Type: PROBLEM", "",
                 "Service: " + service, "Host: " + host, "State: CRITICAL", "",
                 "Additional Info:", ""]
        lines += ["CRITICAL - " + self.words(WORDS_EN, 10) for _ in range(self.r.randint(5, 40))]
        m = EmailMessage(policy=SMTP)
        m.set_content("\n".join(lines) + "\n")
        self.set_common(m, i, frm, False)
        m["Auto-Submitted"] = "auto-generated"
        m["Precedence"] = "bulk"
        return with_subject(m.as_bytes(), subject), frm, subject

    def reply(self, i, parent):
        p_frm, p_subject, p_msgid, p_text = parent
        new = self.paragraphs("en", self.r.randint(200, 3000))
        quoted = "".join("> " + line + "\n" for line in p_text.splitlines())
        keep = self.r.randint(500, 12000)  # clients quote the start of the thread
        alternative = self.r.random() < 0.5
        while True:
            q = quoted[:keep]
            text = new + "\n\nOn Tue, 3 Nov 2026, " + QUEUE + " wrote:\n" + q[:q.rfind("\n") + 1]
            m = EmailMessage(policy=SMTP)
            m.set_content(text, cte="quoted-printable")
            if alternative:
                m.add_alternative(self.html_of(text), subtype="html", cte="quoted-printable")
            if len(m.as_bytes()) < LIMIT - 4000:
                break
            keep //= 2  # quoted-printable triples non-ASCII text
        m["From"] = email.headerregistry.Address(p_frm[0], addr_spec=p_frm[1])
        m["To"] = QUEUE
        m["Date"] = date_of(i)
        m["Message-ID"] = "<%05d.%08x.re@%s>" % (i, self.r.getrandbits(32), p_frm[1].split("@")[1])
        if self.r.random() < 0.5:
            m["In-Reply-To"] = p_msgid
            m["References"] = p_msgid
        # The tag stays literal ASCII; the rest of the subject keeps its encoded words.
        subject = "Re: " + TAG + " " + encode_subject(p_subject, None)
        return with_subject(m.as_bytes(), subject), "Re: " + TAG + " " + p_subject

    def big(self, mib):
        """One message of about `mib` MiB: a short text and one base64 attachment."""
        target = mib * 1024 * 1024
        frm = ("Ann Example", "ann.big@example.org")
        n = int(target * 3 / 4 * 76 / 78) - 2000
        m = EmailMessage(policy=SMTP)
        m.set_content("The full export is attached.\n")
        m.add_attachment(random.Random(25).randbytes(n), maintype="application",
                         subtype="octet-stream", filename="export-full.dmp")
        self.set_common(m, 99999, frm, False)
        subject = "Large export for the restore test"
        return with_subject(m.as_bytes(), subject), frm, subject


def display(name, addr):
    return email.header.Header(name, "utf-8").encode() + " <" + addr + ">" if not name.isascii() \
        else '"%s" <%s>' % (name, addr)


def date_of(i):
    tz = datetime.timezone(datetime.timedelta(hours=1))
    return email.utils.format_datetime(datetime.datetime.fromtimestamp(1793711100 + 37 * i, tz))


def encode_subject(subject, charset):
    """The Subject header's value as a client in that charset writes it (RFC 2047 encoded
    words, folded at 76 columns), or the text itself when it is ASCII."""
    if subject.isascii():
        return subject
    if charset == "shift_jis":
        cs = sjis_charset()
    else:
        cs = email.charset.Charset(charset or "utf-8")
    return email.header.Header(subject, cs, header_name="Subject").encode(linesep="\r\n")


def with_subject(raw, subject_value):
    """`raw` with a Subject header appended to its header block."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise SystemExit("generate.py: a message without a header/body separator")
    return head + b"\r\nSubject: " + subject_value.encode("ascii") + b"\r\n\r\n" + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--big-mib", type=int, default=25)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    g = Gen(args.seed)
    lines = []
    parents = []  # (index, (from, subject, message-id, text)) of new mail that may get replies
    stats = {"new": 0, "auto": 0, "reply": 0}
    total = 0
    for i in range(args.count):
        x = g.r.random()
        eligible = [p for p in parents if p[0] <= i - MIN_GAP]
        if x < 0.24 and eligible:
            # Replies favour recent tickets, as people answer the auto-reply soon.
            pi, pdata = eligible[-1 - min(len(eligible) - 1, int(g.r.expovariate(1 / 150)))]
            raw, subject = g.reply(i, pdata)
            kind, parent, sender = "reply", pi, pdata[0][1]
        elif x < 0.28:
            raw, frm, subject = g.alert(i)
            kind, parent, sender = "auto", -1, frm[1]
        else:
            raw, frm, subject, text = g.new_message(i)
            msgid = email.message_from_bytes(raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n",
                                             policy=email.policy.compat32)["Message-ID"]
            parents.append((i, (frm, subject, msgid, text)))
            kind, parent, sender = "new", -1, frm[1]
        if len(raw) >= LIMIT:
            raise SystemExit("generate.py: message %d is %d bytes (limit %d)" % (i, len(raw),
                                                                                  LIMIT))
        name = "%05d.eml" % i
        (out / name).write_bytes(raw)
        assert "\t" not in subject and "\n" not in subject
        lines.append("%s\t%s\t%d\t%s\t%d\t%s" % (name, kind, parent, sender, len(raw), subject))
        stats[kind] += 1
        total += len(raw)
    raw, frm, subject = g.big(args.big_mib)
    (out / "big.eml").write_bytes(raw)
    lines.append("big.eml\tbig\t-1\t%s\t%d\t%s" % (frm[1], len(raw), subject))
    (out / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("corpus: %d messages, %d bytes (%.1f KB mean): %d new, %d automated, %d replies; "
          "big.eml %d bytes" % (args.count, total, total / args.count / 1000, stats["new"],
                                stats["auto"], stats["reply"], len(raw)))


if __name__ == "__main__":
    main()
