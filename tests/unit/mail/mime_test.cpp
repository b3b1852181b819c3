// Mail parsing as a ticket sees it: a corpus composed by Python's `email` package
// (tests/mail-corpus/generate.py, expected values from the inputs it was built from) is read
// with subjects, bodies and attachments intact, and hand-written messages pin the edge cases
// real mail has (adjacent encoded words, RFC 2231 continuations, wrong charsets, bounces,
// hostile nesting) to exact values.
#include "mime.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::mail {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Hand-written messages are typed with "\n"; mail travels with CRLF.
std::string crlf(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// ---- the generated corpus ---------------------------------------------------------------------

class MailCorpus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string dir =
        (std::filesystem::temp_directory_path() / "slmhub-mail-corpus-XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr) << "cannot create a temporary directory";
    dir_ = new std::filesystem::path(dir);
    const std::string script = std::string(SLMHUB_SOURCE_DIR) + "/tests/mail-corpus/generate.py";
    const std::string command = "python3 '" + script + "' '" + dir + "'";
    generator_status_ = std::system(command.c_str());
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static Json manifest() {
    if (dir_ == nullptr || generator_status_ != 0) {
      throw std::runtime_error("tests/mail-corpus/generate.py did not write the corpus (status " +
                               std::to_string(generator_status_) + ")");
    }
    return parse_json(test::read_text(*dir_ / "manifest.json"), 16);
  }

  static inline std::filesystem::path* dir_ = nullptr;
  static inline int generator_status_ = -1;
};

std::vector<std::string> strings(const Json& array) {
  std::vector<std::string> out;
  for (const auto& s : array) out.push_back(s.get<std::string>());
  return out;
}

TEST_F(MailCorpus, EveryMessageReadsAsItWasComposed) {
  const Json m = manifest();
  ASSERT_EQ(m.at("messages").size(), 21u);
  for (const Json& expected : m.at("messages")) {
    const std::string file = expected.at("file").get<std::string>();
    SCOPED_TRACE(file);
    const std::string raw = test::read_text(*dir_ / file);
    const ParsedMail mail = parse_mail(raw);

    EXPECT_EQ(mail.subject, expected.at("subject").get<std::string>());
    EXPECT_EQ(mail.from_address, expected.at("from_address").get<std::string>());
    EXPECT_EQ(mail.from_name, expected.at("from_name").get<std::string>());
    EXPECT_EQ(mail.message_id, expected.at("message_id").get<std::string>());
    EXPECT_EQ(mail.to, strings(expected.at("to")));
    EXPECT_EQ(mail.cc, strings(expected.at("cc")));
    EXPECT_EQ(mail.date, from_epoch(expected.at("date").get<std::int64_t>()));
    if (expected.contains("text")) {
      EXPECT_EQ(mail.text, expected.at("text").get<std::string>());
    } else {
      EXPECT_EQ(sha256_hex(mail.text), expected.at("text_sha256").get<std::string>());
    }
    EXPECT_EQ(!mail.html.empty(), expected.at("has_html").get<bool>());
    if (expected.at("has_html").get<bool>()) {
      EXPECT_EQ(sha256_hex(mail.html), expected.at("html_sha256").get<std::string>());
    }
    EXPECT_EQ(mail.is_report, expected.at("is_report").get<bool>());

    const Json& attachments = expected.at("attachments");
    if (mail.attachments.size() != attachments.size()) {
      ADD_FAILURE() << mail.attachments.size() << " attachments, expected " << attachments.size();
      continue;
    }
    for (std::size_t i = 0; i < attachments.size(); ++i) {
      SCOPED_TRACE("attachment " + std::to_string(i));
      const MailAttachment& a = mail.attachments[i];
      EXPECT_EQ(a.filename, attachments[i].at("filename").get<std::string>());
      EXPECT_EQ(a.content_type, attachments[i].at("content_type").get<std::string>());
      EXPECT_EQ(a.content_id, attachments[i].at("content_id").get<std::string>());
      EXPECT_EQ(a.is_inline, attachments[i].at("is_inline").get<bool>());
      EXPECT_EQ(a.size, attachments[i].at("size").get<std::size_t>());
      EXPECT_EQ(a.sha256, attachments[i].at("sha256").get<std::string>());
      EXPECT_EQ(a.sha256, sha256_hex(a.bytes()));
    }

    // Clean mail has no defects; each broken one has at least one.
    std::string defects;
    for (const auto& d : mail.defects) defects += d + "\n";
    EXPECT_EQ(!mail.defects.empty(), expected.at("expect_defects").get<bool>()) << defects;

    if (expected.contains("reply_to")) {
      EXPECT_EQ(mail.reply_to, expected.at("reply_to").get<std::string>());
    }
    if (expected.contains("return_path")) {
      EXPECT_EQ(mail.return_path, expected.at("return_path").get<std::string>());
    }
    if (expected.contains("in_reply_to")) {
      EXPECT_EQ(mail.in_reply_to, strings(expected.at("in_reply_to")));
    }
    if (expected.contains("references")) {
      EXPECT_EQ(mail.references, strings(expected.at("references")));
    }
  }
}

// Not a benchmark (no assertion on time): the rate is printed for the record.
TEST_F(MailCorpus, ParseRateIsPrinted) {
  const Json m = manifest();
  std::vector<std::string> small;
  std::string large;
  for (const Json& e : m.at("messages")) {
    std::string raw = test::read_text(*dir_ / e.at("file").get<std::string>());
    (raw.size() > 1024 * 1024 ? large : small.emplace_back()) = std::move(raw);
  }
  using Clock = std::chrono::steady_clock;
  constexpr int kRounds = 200;
  std::size_t bytes = 0;
  std::size_t attachments = 0;
  auto start = Clock::now();
  for (int round = 0; round < kRounds; ++round) {
    for (const auto& raw : small) {
      attachments += parse_mail(raw).attachments.size();
      bytes += raw.size();
    }
  }
  const auto small_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
  start = Clock::now();
  const ParsedMail big = parse_mail(large);
  const auto large_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
  ASSERT_EQ(big.attachments.size(), 1u);
  const auto count = static_cast<std::int64_t>(small.size()) * kRounds;
  std::cout << "[ rate     ] " << count << " small corpus messages (" << bytes / count
            << " bytes average, " << attachments << " attachments) in "
            << small_ns.count() / 1000000
            << " ms: " << count * 1000000000 / std::max<std::int64_t>(small_ns.count(), 1)
            << " messages/s, "
            << static_cast<std::int64_t>(bytes) * 1000 / std::max<std::int64_t>(small_ns.count(), 1)
            << " MB/s\n"
            << "[ rate     ] one " << large.size() / 1000000
            << " MB message with a 20 MB attachment in " << large_ns.count() / 1000000 << " ms: "
            << static_cast<std::int64_t>(large.size()) * 1000 /
                   std::max<std::int64_t>(large_ns.count(), 1)
            << " MB/s\n";
}

// ---- headers ----------------------------------------------------------------------------------

// A NUL in a body (quoted-printable =00, or raw) is replaced, and said: PostgreSQL refuses it
// in text, so such mail could never become a ticket there.
TEST(ParseMail, ANulInABodyIsReplacedAndReported) {
  const ParsedMail mail =
      parse_mail(crlf("From: a@example.org\n"
                      "Subject: export\n"
                      "MIME-Version: 1.0\n"
                      "Content-Type: text/plain; charset=utf-8\n"
                      "Content-Transfer-Encoding: quoted-printable\n"
                      "\n"
                      "row=00one\n"));
  EXPECT_EQ(mail.text, "row\xEF\xBF\xBDone\n");
  EXPECT_EQ(mail.defects,
            std::vector<std::string>{"text/plain body: NUL characters replaced with U+FFFD"});
}

// Encoded words are read as bodies are: ISO-8859-1 as Windows-1252 (the curly quote and the
// dash Windows clients write), Shift_JIS as CP932 (髙, FB FC, is only in Microsoft's table).
TEST(ParseMail, EncodedWordsReadTheCharsetTheirLabelMeansInPractice) {
  const ParsedMail mail =
      parse_mail(crlf("From: =?shift_jis?B?+/w=?= <a@example.org>\n"
                      "Subject: =?iso-8859-1?Q?Can=92t_log_in_=96_urgent?=\n"
                      "\n"
                      "body\n"));
  EXPECT_EQ(mail.subject, "Can\u2019t log in \u2013 urgent");
  EXPECT_EQ(mail.from_name, "\u9AD9");
}

TEST(ParseMail, AdjacentEncodedWordsJoinWithoutTheSpaceBetweenThem) {
  const ParsedMail mail = parse_mail(
      crlf("From: a@example.org\n"
           "Subject: =?UTF-8?Q?a?= =?UTF-8?Q?b?=\n"
           "X-Folded: =?UTF-8?Q?caf=C3=A9?=\n =?UTF-8?B?IMOg?= la =?ISO-8859-1?Q?cr=E8me?=\n"
           "X-Kept: =?UTF-8?Q?a?= b =?UTF-8?Q?c?=\n"
           "\n"
           "body\n"));
  EXPECT_EQ(mail.subject, "ab");
  EXPECT_EQ(mail.header("x-folded"), "café à la crème");
  EXPECT_EQ(mail.header("x-kept"), "a b c");  // the space next to plain text is text
}

// GMime 3.2 alone loses every word after a padded base64 word of the same charset; Python's
// email package writes such runs for any long subject, so this is the common case.
TEST(ParseMail, AdjacentPaddedBase64WordsAreAllRead) {
  const ParsedMail mail =
      parse_mail(crlf("From: =?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?= <a@example.org>\n"
                      "Subject: =?utf-8?b?w6k=?= =?utf-8?b?w6k=?=\n =?UTF-8?B?w6k?= "
                      "=?utf-8?b?w6nD?= =?utf-8?b?qQ==?=\n"
                      "Content-Type: application/pdf;\n"
                      " name=\"=?UTF-8?B?0J7RgtGH0LXRgg==?= =?UTF-8?B?LnBkZg==?=\"\n"
                      "\n"
                      "%PDF\n"));
  EXPECT_EQ(mail.subject, "ééééé");
  EXPECT_EQ(mail.from_name, "éé");
  ASSERT_EQ(mail.attachments.size(), 1u);
  EXPECT_EQ(mail.attachments[0].filename, "Отчет.pdf");
}

TEST(ParseMail, EveryTopLevelHeaderInOrderLowerCasedUnfoldedDecoded) {
  const ParsedMail mail = parse_mail(
      crlf("Received: from mx.example.org\n by relay.example.org; Tue, 3 Nov 2026 14:00:00 +0100\n"
           "From: =?UTF-8?Q?Ren=C3=A9?= <rene@example.org>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=utf-8\n"
           "Subject: Hello\n"
           "X-Custom: one\n"
           "X-Custom: two\n"
           "Content-Transfer-Encoding: 8bit\n"
           "\n"
           "Grüße\n"));
  const Headers expected = {
      {"received", "from mx.example.org by relay.example.org; Tue, 3 Nov 2026 14:00:00 +0100"},
      {"from", "René <rene@example.org>"},
      {"mime-version", "1.0"},
      {"content-type", "text/plain; charset=utf-8"},
      {"subject", "Hello"},
      {"x-custom", "one"},
      {"x-custom", "two"},
      {"content-transfer-encoding", "8bit"},
  };
  EXPECT_EQ(mail.headers, expected);
  EXPECT_EQ(mail.header("x-custom"), "one");
  EXPECT_EQ(mail.header("x-absent"), "");
  EXPECT_EQ(mail.from_name, "René");
  EXPECT_EQ(mail.text, "Grüße\n");
}

TEST(ParseMail, AddressesAreNormalizedAndGroupsFlattened) {
  const ParsedMail mail =
      parse_mail(crlf("From: \"Doe, Jo\" <Jo.Doe@Example.ORG>\n"
                      "To: team: A@example.org, \"B\" <b@EXAMPLE.org>;, c@example.org\n"
                      "To: d@example.org\n"
                      "Cc: undisclosed-recipients:;\n"
                      "Reply-To: =?UTF-8?Q?Jo_D=C3=B6e?= <Replies@Example.org>\n"
                      "\n"
                      "x\n"));
  EXPECT_EQ(mail.from_address, "jo.doe@example.org");
  EXPECT_EQ(mail.from_name, "Doe, Jo");
  EXPECT_EQ(mail.to, (std::vector<std::string>{"a@example.org", "b@example.org", "c@example.org",
                                               "d@example.org"}));
  EXPECT_TRUE(mail.cc.empty());
  EXPECT_EQ(mail.reply_to, "replies@example.org");
}

TEST(ParseMail, ReturnPathAbsentEmptyOrAnAddress) {
  EXPECT_EQ(parse_mail("From: a@example.org\r\n\r\nx\r\n").return_path, std::nullopt);
  EXPECT_EQ(parse_mail("Return-Path: <>\r\nFrom: a@example.org\r\n\r\nx\r\n").return_path, "");
  EXPECT_EQ(parse_mail("Return-Path: < >\r\n\r\nx\r\n").return_path, "");
  EXPECT_EQ(parse_mail("Return-Path: <Bounce+1@Lists.Example.org>\r\n\r\nx\r\n").return_path,
            "bounce+1@lists.example.org");
  const ParsedMail junk = parse_mail("Return-Path: <MAILER-DAEMON>\r\n\r\nx\r\n");
  EXPECT_EQ(junk.return_path, "");
  EXPECT_EQ(junk.defects, std::vector<std::string>{
                              "Return-Path '<MAILER-DAEMON>' is not an address; read as <>"});
  // Anything else unreadable is not a bounce: a person's mail through an odd relay.
  const ParsedMail odd = parse_mail("Return-Path: <root>\r\nFrom: a@example.org\r\n\r\nx\r\n");
  EXPECT_EQ(odd.return_path, std::nullopt);
  EXPECT_EQ(odd.defects,
            std::vector<std::string>{"Return-Path '<root>' is not an address; ignored"});
}

TEST(ParseMail, ThreadingIdsWithoutBrackets) {
  const ParsedMail mail =
      parse_mail(crlf("Message-ID: <abc.123@mail.example.org>\n"
                      "In-Reply-To: your message of Tuesday <DB0000042.1@slmhub.example.org>\n"
                      "References: <r1@example.org>\n <r2@example.org>\t<r3@example.org>\n"
                      "\n"
                      "x\n"));
  EXPECT_EQ(mail.message_id, "abc.123@mail.example.org");
  EXPECT_EQ(mail.in_reply_to, std::vector<std::string>{"DB0000042.1@slmhub.example.org"});
  EXPECT_EQ(mail.references,
            (std::vector<std::string>{"r1@example.org", "r2@example.org", "r3@example.org"}));
}

TEST(ParseMail, DateAsAnInstantOrADefect) {
  EXPECT_EQ(parse_mail("Date: Tue, 3 Nov 2026 14:00:00 +0100\r\n\r\nx\r\n").date,
            parse_instant("2026-11-03T13:00:00Z"));
  EXPECT_EQ(parse_mail("Date: 3 Nov 2026 09:30:15 -0500\r\n\r\nx\r\n").date,
            parse_instant("2026-11-03T14:30:15Z"));
  const ParsedMail bad = parse_mail("Date: next Tuesday\r\n\r\nx\r\n");
  EXPECT_EQ(bad.date, std::nullopt);
  EXPECT_EQ(bad.defects,
            std::vector<std::string>{"Date 'next Tuesday' is not an RFC 5322 date; ignored"});
  EXPECT_EQ(parse_mail("From: a@example.org\r\n\r\nx\r\n").date, std::nullopt);
}

TEST(ParseMail, EightBitHeaderBytesAreUtf8OrWindows1252) {
  const ParsedMail mail = parse_mail(
      "From: J\xf6rg <joerg@example.org>\r\n"
      "Subject: Gr\xc3\xbc\xc3\x9f\x65 \x80 5\r\n"
      "\r\nx\r\n");
  EXPECT_EQ(mail.from_name, "Jörg");
  EXPECT_EQ(mail.subject, "Grüße € 5");
  EXPECT_FALSE(mail.defects.empty());
}

// ---- bodies and charsets ----------------------------------------------------------------------

TEST(ParseMail, CharsetsBecomeUtf8WhateverTheLabelSays) {
  auto text_of = [](std::string_view charset, std::string_view body) {
    return parse_mail("Content-Type: text/plain; charset=" + std::string(charset) +
                      "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + std::string(body))
        .text;
  };
  // Windows-1252's C1 range is read for ISO-8859-1 too, as every client does.
  EXPECT_EQ(text_of("iso-8859-1", "\x80 5, \x93quoted\x94, caf\xe9"), "€ 5, “quoted”, café");
  // Shift_JIS from Windows uses CP932's extra characters (① is 0x8740).
  EXPECT_EQ(text_of("shift_jis", "\x87\x40\x83\x65\x83\x58\x83\x67"), "①テスト");
  EXPECT_EQ(text_of("\"koi8-r\"", "\xf0\xd2\xc9\xd7\xc5\xd4"), "Привет");
  EXPECT_EQ(text_of("gb2312", "\xc4\xe3\xba\xc3"), "你好");

  // A wrong or unknown label: the bytes are read as UTF-8 where valid, else Windows-1252.
  const ParsedMail latin_as_utf8 =
      parse_mail("Content-Type: text/plain; charset=utf-8\r\n\r\nK\xf6ln, \xc3\xa4 ok\r\n");
  EXPECT_EQ(latin_as_utf8.text, "Köln, ä ok\n");
  EXPECT_EQ(latin_as_utf8.defects,
            std::vector<std::string>{"text/plain body: text labelled UTF-8 is not valid UTF-8; "
                                     "the invalid bytes read as Windows-1252"});
  const ParsedMail utf8_as_latin =
      parse_mail("Content-Type: text/plain; charset=iso-8859-1\r\n\r\nK\xc3\xb6ln\r\n");
  EXPECT_EQ(utf8_as_latin.text, "Köln\n");
  EXPECT_EQ(utf8_as_latin.defects,
            std::vector<std::string>{
                "text/plain body: text labelled 'iso-8859-1' is UTF-8; read as UTF-8"});
  const ParsedMail unknown =
      parse_mail("Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nK\xf6ln\r\n");
  EXPECT_EQ(unknown.text, "Köln\n");
  EXPECT_EQ(unknown.defects,
            std::vector<std::string>{"text/plain body: unknown charset 'x-no-such-charset'; read "
                                     "as UTF-8 where valid, else Windows-1252"});
  const ParsedMail bad_sjis =
      parse_mail("Content-Type: text/plain; charset=shift_jis\r\n\r\n\x83\x65\xff\x83\x67\r\n");
  EXPECT_EQ(bad_sjis.text, "テ\xEF\xBF\xBDト\n");
  EXPECT_EQ(bad_sjis.defects,
            std::vector<std::string>{
                "text/plain body: text is not valid 'shift_jis': 1 byte(s) read as U+FFFD"});
}

TEST(ParseMail, QuotedPrintableAndBase64Bodies) {
  EXPECT_EQ(parse_mail(crlf("Content-Type: text/plain; charset=utf-8\n"
                            "Content-Transfer-Encoding: quoted-printable\n\n"
                            "Gr=C3=BC=C3=9Fe, a soft=\n break and =3D sign\n"))
                .text,
            "Grüße, a soft break and = sign\n");
  EXPECT_EQ(parse_mail(crlf("Content-Type: text/plain; charset=utf-8\n"
                            "Content-Transfer-Encoding: base64\n\n"
                            "R3LDvMOfZSwK\nd2VsdAo=\n"))
                .text,
            "Grüße,\nwelt\n");
}

TEST(ParseMail, FormatFlowedIsJoinedAsClientsShowIt) {
  const ParsedMail mail =
      parse_mail(crlf("Content-Type: text/plain; charset=utf-8; format=flowed\n\n"
                      "This is one long \nparagraph that was \nwrapped.\n"
                      "> quoted text that \n> continues\n"
                      " From the stuffed line\n"
                      "-- \n"
                      "Signature\n"));
  EXPECT_EQ(mail.text,
            "This is one long paragraph that was wrapped.\n"
            "> quoted text that continues\n"
            "From the stuffed line\n"
            "-- \n"
            "Signature\n");
  const ParsedMail delsp =
      parse_mail(crlf("Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n"
                      "\xe9\x95\xb7\xe3\x81\x84 \n\xe6\x96\x87\n"));
  EXPECT_EQ(delsp.text, "長い文\n");
}

TEST(ParseMail, HtmlOnlyMailGetsTextFromTheHtmlAndKeepsTheHtml) {
  const std::string html = "<html><body><p>Hello&nbsp;<b>world</b></p><p>Bye</p></body></html>";
  const ParsedMail mail =
      parse_mail("Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n");
  EXPECT_EQ(mail.html, html + "\n");
  EXPECT_EQ(mail.text, "Hello world\n\nBye");
  EXPECT_TRUE(mail.attachments.empty());
}

TEST(ParseMail, HtmlWithoutMimeCharsetUsesItsMetaCharset) {
  const ParsedMail mail = parse_mail(
      "Content-Type: text/html\r\n\r\n"
      "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">"
      "</head><body>Gr\xfc\xdf\x65</body></html>\r\n");
  EXPECT_EQ(mail.text, "Grüße");
  EXPECT_TRUE(mail.defects.empty());
}

TEST(ParseMail, TheMainAlternativeIsTheBodyNotTextInsideAttachments) {
  const ParsedMail mail = parse_mail(
      crlf("From: a@example.org\n"
           "Content-Type: multipart/mixed; boundary=outer\n\n"
           "--outer\n"
           "Content-Type: multipart/alternative; boundary=alt\n\n"
           "--alt\n"
           "Content-Type: text/plain; charset=utf-8\n\n"
           "plain body\n"
           "--alt\n"
           "Content-Type: multipart/related; boundary=rel; start=\"<root@example.org>\"\n\n"
           "--rel\n"
           "Content-Type: image/gif\n"
           "Content-ID: <logo@example.org>\n"
           "Content-Transfer-Encoding: base64\n\n"
           "R0lGODlhAQABAAAAACw=\n"
           "--rel\n"
           "Content-Type: text/html; charset=utf-8\n"
           "Content-ID: <root@example.org>\n\n"
           "<p>html body <img src=\"cid:logo@example.org\"></p>\n"
           "--rel--\n"
           "--alt--\n"
           "--outer\n"
           "Content-Type: text/plain; charset=utf-8\n"
           "Content-Disposition: attachment; filename=notes.txt\n\n"
           "attached text, not the body\n"
           "--outer\n"
           "Content-Type: message/rfc822\n\n"
           "From: b@example.org\n"
           "Subject: Inner\n\n"
           "inner body, not ours\n"
           "--outer--\n"));
  // The line break before a boundary belongs to the boundary (RFC 2046 §5.1.1).
  EXPECT_EQ(mail.text, "plain body");
  EXPECT_EQ(mail.html, "<p>html body <img src=\"cid:logo@example.org\"></p>");
  ASSERT_EQ(mail.attachments.size(), 3u);

  const MailAttachment& logo = mail.attachments[0];
  EXPECT_EQ(logo.filename, "");
  EXPECT_EQ(logo.content_type, "image/gif");
  EXPECT_EQ(logo.content_id, "logo@example.org");
  EXPECT_TRUE(logo.is_inline);
  EXPECT_EQ(logo.bytes(), std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00,", 14));

  const MailAttachment& notes = mail.attachments[1];
  EXPECT_EQ(notes.filename, "notes.txt");
  EXPECT_EQ(notes.content_type, "text/plain");
  EXPECT_FALSE(notes.is_inline);
  EXPECT_EQ(notes.bytes(), "attached text, not the body");
  EXPECT_EQ(notes.sha256, sha256_hex(notes.bytes()));

  // A message/rfc822 part is the embedded message byte for byte, named after its subject.
  const MailAttachment& inner = mail.attachments[2];
  EXPECT_EQ(inner.filename, "Inner.eml");
  EXPECT_EQ(inner.content_type, "message/rfc822");
  EXPECT_EQ(inner.bytes(), crlf("From: b@example.org\nSubject: Inner\n\ninner body, not ours"));
  EXPECT_TRUE(mail.defects.empty());
}

// ---- attachments ------------------------------------------------------------------------------

TEST(ParseMail, Rfc2231ContinuationsWithCharsetAndRfc2047Names) {
  const ParsedMail mail = parse_mail(crlf(
      "Content-Type: multipart/mixed; boundary=b\n\n"
      "--b\n"
      "Content-Type: text/plain\n\n"
      "see attached\n"
      "--b\n"
      "Content-Type: application/pdf\n"
      "Content-Disposition: attachment; filename*0*=UTF-8''%E2%82%AC; filename*1=\"rate.pdf\"\n\n"
      "%PDF\n"
      "--b\n"
      "Content-Type: text/plain; name*=iso-8859-1'fr'r%E9sum%E9.txt\n"
      "Content-Disposition: attachment\n\n"
      "cv\n"
      "--b\n"
      "Content-Type: application/octet-stream; name=\"=?UTF-8?B?0J7RgtGH0LXRgi54bHN4?=\"\n\n"
      "xlsx\n"
      "--b\n"
      "Content-Type: Application/X-Evil\n"
      "Content-Disposition: attachment; filename=\"..\\\\..\\\\windows/system32\\\\evil.exe\"\n\n"
      "MZ\n"
      "--b--\n"));
  EXPECT_EQ(mail.text, "see attached");
  ASSERT_EQ(mail.attachments.size(), 4u);
  EXPECT_EQ(mail.attachments[0].filename, "€rate.pdf");
  EXPECT_EQ(mail.attachments[0].bytes(), "%PDF");
  EXPECT_EQ(mail.attachments[1].filename, "résumé.txt");
  EXPECT_EQ(mail.attachments[2].filename, "Отчет.xlsx");
  EXPECT_EQ(mail.attachments[3].filename, "evil.exe");
  EXPECT_EQ(mail.attachments[3].content_type, "application/x-evil");
  EXPECT_EQ(mail.defects,
            std::vector<std::string>{"attachment file name '..\\..\\windows/system32\\evil.exe' "
                                     "read as 'evil.exe' (directories and control characters "
                                     "removed)"});
}

TEST(ParseMail, AReportIsMarkedAndItsPartsAreAttachments) {
  const ParsedMail mail =
      parse_mail(crlf("Return-Path: <>\n"
                      "From: MAILER-DAEMON@mx.example.org\n"
                      "Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
                      "--r\n"
                      "Content-Type: text/plain\n\n"
                      "Delivery failed.\n"
                      "--r\n"
                      "Content-Type: message/delivery-status\n\n"
                      "Final-Recipient: rfc822; gone@example.org\n"
                      "Action: failed\n"
                      "--r\n"
                      "Content-Type: text/rfc822-headers\n\n"
                      "Subject: [DB0000042] Your request\n"
                      "--r--\n"));
  EXPECT_TRUE(mail.is_report);
  EXPECT_EQ(mail.return_path, "");
  EXPECT_EQ(mail.from_address, "mailer-daemon@mx.example.org");
  EXPECT_EQ(mail.text, "Delivery failed.");
  ASSERT_EQ(mail.attachments.size(), 2u);
  EXPECT_EQ(mail.attachments[0].content_type, "message/delivery-status");
  EXPECT_EQ(mail.attachments[0].bytes(),
            "Final-Recipient: rfc822; gone@example.org\r\nAction: failed");
  EXPECT_EQ(mail.attachments[1].content_type, "text/rfc822-headers");
}

// ---- malformed mail ---------------------------------------------------------------------------

TEST(ParseMail, EmptyInputIsNotAMessage) { EXPECT_THROW(parse_mail(""), std::invalid_argument); }

TEST(ParseMail, TextWithoutHeadersIsReadAsTheBody) {
  const ParsedMail mail = parse_mail("just a line of text\nand another\n");
  EXPECT_EQ(mail.subject, "");
  EXPECT_EQ(mail.message_id, "");
  EXPECT_EQ(mail.text, "just a line of text\nand another\n");
  EXPECT_EQ(mail.defects, (std::vector<std::string>{
                              "invalid header line 'just a line of text'; not read as a header",
                              "no message header block; the whole input read as text"}));
}

TEST(ParseMail, InvalidHeaderLinesByteOrderMarksAndMboxLinesAreSkipped) {
  const ParsedMail mail = parse_mail(
      "\xEF\xBB\xBF"
      "From ann@example.org Tue Nov  3 14:00:00 2026\r\n"
      "Subject: a\r\nX-Bad Header: y\r\nFrom: b@example.org\r\n\r\nbody\r\n");
  EXPECT_EQ(mail.headers, (Headers{{"subject", "a"}, {"from", "b@example.org"}}));
  EXPECT_EQ(mail.text, "body\n");
  EXPECT_EQ(mail.defects, (std::vector<std::string>{
                              "a UTF-8 byte order mark before the headers; skipped",
                              "invalid header line 'X-Bad Header: y'; not read as a header"}));
}

TEST(ParseMail, MissingClosingBoundaryReadsToTheEnd) {
  const ParsedMail mail =
      parse_mail(crlf("Content-Type: multipart/mixed; boundary=b\n\n"
                      "--b\n"
                      "Content-Type: text/plain\n\n"
                      "body\n"
                      "--b\n"
                      "Content-Type: application/octet-stream\n"
                      "Content-Disposition: attachment; filename=cut.bin\n"
                      "Content-Transfer-Encoding: base64\n\n"
                      "AAECAw==\n"));
  EXPECT_EQ(mail.text, "body");
  ASSERT_EQ(mail.attachments.size(), 1u);
  EXPECT_EQ(mail.attachments[0].bytes(), std::string("\x00\x01\x02\x03", 4));
  EXPECT_EQ(mail.defects, std::vector<std::string>{"the message ends early (in its headers or "
                                                   "before a closing boundary); read to the end"});
}

TEST(ParseMail, MultipartWithoutBoundaryIsReadAsText) {
  const ParsedMail mail =
      parse_mail(crlf("Content-Type: multipart/mixed\n\nwhat the sender typed\n"));
  EXPECT_EQ(mail.text, "what the sender typed\n");
  EXPECT_FALSE(mail.defects.empty());
}

TEST(ParseMail, NestingBeyondTheBoundIsADefectNotACrash) {
  std::string raw = "Subject: deep\r\n";
  constexpr int kLevels = 200;
  for (int i = 0; i < kLevels; ++i) {
    raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
           std::to_string(i) + "\r\n";
  }
  raw += "Content-Type: text/plain\r\n\r\ndeep text\r\n";
  for (int i = kLevels - 1; i >= 0; --i) raw += "--b" + std::to_string(i) + "--\r\n";
  const ParsedMail mail = parse_mail(raw);
  EXPECT_EQ(mail.subject, "deep");
  EXPECT_EQ(mail.text, "");
  EXPECT_EQ(mail.defects,
            std::vector<std::string>{"MIME parts nested deeper than 64 levels are not read"});
}

TEST(ParseMail, ParsesOnManyThreadsAtOnce) {
  const std::string raw = crlf(
      "Subject: =?UTF-8?Q?caf=C3=A9?=\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n");
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (std::size_t t = 0; t < good.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const ParsedMail mail = parse_mail(raw);
        good[t] += mail.subject == "café" && mail.text == "café\n";
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good, std::vector<int>(4, 500));
}

// ---- html_to_text -----------------------------------------------------------------------------

TEST(HtmlToText, BlocksBreaksAndWhitespace) {
  EXPECT_EQ(html_to_text("<p>One\n   two</p><p>Three</p>"), "One two\n\nThree");
  EXPECT_EQ(html_to_text("<div>a</div><div>b</div>c<br>d<br><br>e"), "a\nb\nc\nd\n\ne");
  EXPECT_EQ(html_to_text("<p></p><p>&nbsp;</p><div><div>only</div></div><p></p>"), "only");
  EXPECT_EQ(html_to_text("<h1>Title</h1>text<hr>after"), "Title\n\ntext\n\nafter");
  EXPECT_EQ(html_to_text("  <b>bold</b><i>italic</i>  end  "), "bolditalic end");
  EXPECT_EQ(html_to_text("<pre>  keep\n    this</pre>then"), "  keep\n    this\n\nthen");
  EXPECT_EQ(html_to_text("<table><tr><td>Service</td><td>db</td></tr><tr><td>Minutes</td>"
                         "<td>42</td></tr></table>"),
            "Service db\nMinutes 42");
}

TEST(HtmlToText, ListsLinksAndQuotes) {
  EXPECT_EQ(html_to_text("<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>after"),
            "- one\n- two\n  - nested\n\nafter");
  EXPECT_EQ(html_to_text("<ol start=\"3\"><li>c</li><li>d</li></ol>"), "3. c\n4. d");
  EXPECT_EQ(html_to_text("See <a href=\"https://example.org/x?a=1&amp;b=2\">the page</a>."),
            "See the page (https://example.org/x?a=1&b=2).");
  EXPECT_EQ(html_to_text("<a href=\"https://example.org/\">https://example.org</a>"),
            "https://example.org");
  EXPECT_EQ(html_to_text("<a href=\"mailto:help@example.org\">help@example.org</a>"),
            "help@example.org");
  EXPECT_EQ(html_to_text("<a href=\"mailto:help@example.org\">Help desk</a>"),
            "Help desk (help@example.org)");
  EXPECT_EQ(html_to_text("<a href=\"#top\">top</a> <a href=\"javascript:x()\">run</a>"), "top run");
  EXPECT_EQ(html_to_text("<a href=\"https://example.org/t\"><img src=\"x.png\"></a>"),
            "https://example.org/t");
  EXPECT_EQ(html_to_text("<img src=\"cid:x\" alt=\"Logo &amp; name\">"), "Logo & name");
  EXPECT_EQ(html_to_text("On Monday Ann wrote:<blockquote>First<br>Second"
                         "<blockquote>Deeper</blockquote></blockquote>Reply"),
            "On Monday Ann wrote:\n\n> First\n> Second\n>\n>> Deeper\n\nReply");
}

// Every line repeats its quote and list prefix: a deep nest is shown 8 levels deep at most,
// or 100,000 nested levels in a message of 1 MB would make gigabytes of text.
TEST(HtmlToText, DeepNestingIsShownEightLevelsDeep) {
  std::string nine;
  for (int i = 0; i < 9; ++i) nine += "<blockquote>";
  EXPECT_EQ(html_to_text(nine + "deep<br>deeper"), ">>>>>>>> deep\n>>>>>>>> deeper");
  std::string lists, items, quotes;
  for (int i = 0; i < 100000; ++i) {
    lists += "<ul>";
    items += "<li>x";
    quotes += "<blockquote>";
  }
  EXPECT_LT(html_to_text(lists + items).size(), 2'000'000u);
  EXPECT_LT(html_to_text(quotes + items).size(), 2'000'000u);
}

TEST(HtmlToText, EntitiesScriptsStylesAndHead) {
  EXPECT_EQ(html_to_text("&lt;tag&gt; &amp; &quot;q&quot; &#39;s&#39; &#x20AC;&#8364; &euro; "
                         "&eacute;&Uuml;&szlig; &hellip; &mdash; &alpha;&Omega; &#150; &bogus; "
                         "AT&T &amp"),
            "<tag> & \"q\" 's' €€ € éÜß … — αΩ – &bogus; AT&T &");
  EXPECT_EQ(html_to_text("<html><head><title>T</title><style>p{x:1}</style>"
                         "<script>var a = '<p>no</p>';</script></head>"
                         "<body><!-- note --><p>yes</p><SCRIPT type=x>hidden()</SCRIPT>"
                         "<!--[if mso]>no<![endif]--></body></html>"),
            "yes");
  EXPECT_EQ(html_to_text("a < b and x<3"), "a < b and x<3");
  EXPECT_EQ(html_to_text(""), "");
}

}  // namespace
}  // namespace slmhub::mail
