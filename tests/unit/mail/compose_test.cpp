// Outgoing mail is written exactly: the bytes a receiving MTA and mail client read. Header
// folding and RFC 2047 words must give back the original text when unfolded and decoded, the
// body must survive quoted-printable, and no field can smuggle in another header.
#include "compose.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "mime.hpp"
#include "slmhub/digest.hpp"

namespace slmhub::mail {
namespace {

OutgoingMail ascii_mail() {
  OutgoingMail mail;
  mail.from = "db-requests@example.org";
  mail.from_name = "Database Requests";
  mail.to = {"ann@example.org"};
  mail.subject = "[DB0000042] Your request was received";
  mail.body = "Hello,\n\nyour request is DB0000042.\n";
  mail.message_id = "case-42.1@example.org";
  mail.in_reply_to = {"q1@client.example.org"};
  mail.references = {"q0@client.example.org", "q1@client.example.org"};
  mail.headers = {{"Auto-Submitted", "auto-replied"}, {"X-Loop", "db-requests@example.org"}};
  mail.date = parse_instant("2026-11-03T14:05:09Z");
  return mail;
}

std::string headers_of(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n") + 2);
}
std::string body_of(const std::string& message) {
  return message.substr(message.find("\r\n\r\n") + 4);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto end = text.find("\r\n"); end != std::string::npos; end = text.find("\r\n", start)) {
    lines.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

// The header's value as a reader sees it after unfolding (RFC 5322 §2.2.3).
std::string field(const std::string& message, const std::string& name) {
  const std::string headers = "\r\n" + headers_of(message);
  const auto at = headers.find("\r\n" + name + ":");
  if (at == std::string::npos) return "<missing " + name + ">";
  std::size_t i = at + 2 + name.size() + 1;
  if (headers[i] == ' ') ++i;
  std::string value;
  for (; i < headers.size(); ++i) {
    if (headers.compare(i, 2, "\r\n") == 0) {
      if (i + 2 < headers.size() && (headers[i + 2] == ' ' || headers[i + 2] == '\t')) {
        ++i;  // unfold: drop the CRLF, keep the whitespace
        continue;
      }
      break;
    }
    value += headers[i];
  }
  return value;
}

int hex(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

// RFC 2047 decoding of a value made only of UTF-8 encoded words, each checked to hold whole
// characters (it must be valid UTF-8 on its own).
std::string decode_words(const std::string& value) {
  static const std::regex word(R"(=\?UTF-8\?([QB])\?([^?]*)\?=)");
  std::string out;
  auto begin = std::sregex_iterator(value.begin(), value.end(), word);
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    EXPECT_LE((*it)[0].length(), 75) << (*it)[0];
    const std::string text = (*it)[2];
    std::string decoded;
    if ((*it)[1] == "B") {
      decoded = base64_decode(text);
    } else {
      for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '_') {
          decoded += ' ';
        } else if (text[i] == '=') {
          decoded += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
          i += 2;
        } else {
          decoded += text[i];
        }
      }
    }
    // A lead byte at the end or a continuation byte at the start: a character was split.
    EXPECT_FALSE(!decoded.empty() && (static_cast<unsigned char>(decoded.back()) >= 0xC0 ||
                                      (static_cast<unsigned char>(decoded.front()) & 0xC0) == 0x80))
        << "encoded word splits a character: " << (*it)[0];
    out += decoded;
  }
  return out;
}

// RFC 2045 §6.7 decoding.
std::string decode_quoted_printable(const std::string& body) {
  std::string out;
  for (const auto& line : lines_of(body)) {
    const bool soft = !line.empty() && line.back() == '=';
    const std::string text = soft ? line.substr(0, line.size() - 1) : line;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '=') {
        out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
        i += 2;
      } else {
        out += text[i];
      }
    }
    if (!soft) out += "\n";
  }
  return out;
}

void expect_lines_within(const std::string& message, std::size_t limit) {
  for (const auto& line : lines_of(headers_of(message))) {
    EXPECT_LE(line.size(), limit) << line;
  }
}

TEST(Compose, PlainAsciiMailExactly) {
  EXPECT_EQ(compose(ascii_mail()),
            "Date: Tue, 03 Nov 2026 14:05:09 +0000\r\n"
            "From: Database Requests <db-requests@example.org>\r\n"
            "To: ann@example.org\r\n"
            "Subject: [DB0000042] Your request was received\r\n"
            "Message-ID: <case-42.1@example.org>\r\n"
            "In-Reply-To: <q1@client.example.org>\r\n"
            "References: <q0@client.example.org> <q1@client.example.org>\r\n"
            "Auto-Submitted: auto-replied\r\n"
            "X-Loop: db-requests@example.org\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "\r\n"
            "Hello,\r\n"
            "\r\n"
            "your request is DB0000042.\r\n");
}

TEST(Compose, LineBreaksOfTheBodyBecomeCrlf) {
  auto mail = ascii_mail();
  mail.body = "one\r\ntwo\rthree\nfour";
  EXPECT_EQ(body_of(compose(mail)), "one\r\ntwo\r\nthree\r\nfour\r\n");
  mail.body.clear();
  EXPECT_EQ(body_of(compose(mail)), "");
}

TEST(Compose, DisplayNamesAreQuotedOrEncodedAsNeeded) {
  auto mail = ascii_mail();
  mail.from_name = "Service Desk, Example University";
  EXPECT_EQ(field(compose(mail), "From"),
            "\"Service Desk, Example University\" <db-requests@example.org>");
  mail.from_name = "Say \"hi\"";
  EXPECT_EQ(field(compose(mail), "From"), "\"Say \\\"hi\\\"\" <db-requests@example.org>");
  mail.from_name = "Datenbank-Team Süd";
  EXPECT_EQ(field(compose(mail), "From"),
            "=?UTF-8?Q?Datenbank-Team_S=C3=BCd?= <db-requests@example.org>");
  mail.from_name.clear();
  EXPECT_EQ(field(compose(mail), "From"), "db-requests@example.org");
}

TEST(Compose, Utf8SubjectAsEncodedWords) {
  auto mail = ascii_mail();
  mail.subject = "Störung behoben – oracle-prod";
  const std::string message = compose(mail);
  EXPECT_NE(message.find("\r\nSubject: =?UTF-8?Q?St=C3=B6rung_behoben_=E2=80=93_oracle-prod?=\r\n"),
            std::string::npos)
      << message;

  // Mostly non-Latin text is shorter in B; a long subject becomes several words, one a line,
  // each holding whole characters.
  mail.subject = "データベース障害のお知らせ：oracle-prod は復旧しました。ご迷惑をおかけしました。";
  const std::string long_message = compose(mail);
  const std::string subject = field(long_message, "Subject");
  EXPECT_EQ(subject.rfind("=?UTF-8?B?", 0), 0u) << subject;
  EXPECT_EQ(decode_words(subject), mail.subject);
  EXPECT_GT(std::count(subject.begin(), subject.end(), '?'), 8) << "expected several words";
  expect_lines_within(long_message, 78);

  // RFC 2047 §2: a line holding an encoded word is 76 characters at most, the first too.
  mail.subject = "Störung " + std::string(90, 'x');
  expect_lines_within(compose(mail), 76);

  // '_', '=' and '?' are never literal in a Q word.
  mail.subject = "Störung behoben im Rechenzentrum: a_b = c?";
  EXPECT_EQ(field(compose(mail), "Subject"),
            "=?UTF-8?Q?St=C3=B6rung_behoben_im_Rechenzentrum=3A_a=5Fb_=3D_c=3F?=");
}

TEST(Compose, LongHeadersAreFoldedAt78AndUnfoldToTheSameValue) {
  auto mail = ascii_mail();
  mail.subject =
      "Re: [DB0000042] Scheduled maintenance of the reporting database cluster on Saturday "
      "night, with a short interruption of the replication between the two sites";
  mail.to = {"first.recipient@example.org", "second.recipient@example.org",
             "third.recipient@example.org", "fourth.recipient@example.org"};
  mail.references.clear();
  for (int i = 0; i < 6; ++i)
    mail.references.push_back("thread-" + std::to_string(i) + "@example.org");
  const std::string message = compose(mail);
  expect_lines_within(message, 78);
  EXPECT_EQ(field(message, "Subject"), mail.subject);
  EXPECT_EQ(field(message, "To"),
            "first.recipient@example.org, second.recipient@example.org, "
            "third.recipient@example.org, fourth.recipient@example.org");
  EXPECT_EQ(field(message, "References"),
            "<thread-0@example.org> <thread-1@example.org> <thread-2@example.org> "
            "<thread-3@example.org> <thread-4@example.org> <thread-5@example.org>");
  EXPECT_NE(message.find("\r\nSubject: Re: [DB0000042] Scheduled maintenance of the reporting "
                         "database\r\n cluster on Saturday"),
            std::string::npos)
      << message;
  // Two spaces in a row survive folding (no line is whitespace only).
  mail.subject = std::string(60, 'a') + "  " + std::string(30, 'b');
  EXPECT_EQ(field(compose(mail), "Subject"), mail.subject);
  // A word no header line can hold (a URL or a blob in a customer's subject) goes in encoded
  // words, which fold anywhere: the reply is sent, and reads back the same.
  mail.subject = "Re: [DB0000042] see " + std::string(1200, 'u');
  const std::string long_word = compose(mail);
  expect_lines_within(long_word, 78);
  EXPECT_EQ(decode_words(field(long_word, "Subject")), mail.subject);
}

TEST(Compose, NonAsciiBodyIsQuotedPrintable) {
  auto mail = ascii_mail();
  mail.body = "Grüße\nsum = 1  \n.\nend\t\n";
  std::string message = compose(mail);
  EXPECT_EQ(field(message, "Content-Transfer-Encoding"), "quoted-printable");
  EXPECT_EQ(field(message, "Content-Type"), "text/plain; charset=UTF-8");
  EXPECT_EQ(body_of(message), "Gr=C3=BC=C3=9Fe\r\nsum =3D 1 =20\r\n.\r\nend=09\r\n");

  // Long lines get soft breaks before 76 characters, never inside an escape.
  std::string long_line;
  for (int i = 0; i < 100; ++i) long_line += "ä";
  mail.body = long_line + "\n" + std::string(300, 'x') + " = y\n";
  message = compose(mail);
  for (const auto& line : lines_of(body_of(message))) EXPECT_LE(line.size(), 76u) << line;
  EXPECT_EQ(decode_quoted_printable(body_of(message)), mail.body);
  std::string first_line;
  for (int i = 0; i < 12; ++i) first_line += "=C3=A4";
  EXPECT_EQ(lines_of(body_of(message))[0], first_line + "=C3=");
}

TEST(Compose, AsciiBodyWithLinesBeyond998IsQuotedPrintable) {
  auto mail = ascii_mail();
  mail.body = std::string(998, 'a') + "\n";
  EXPECT_EQ(field(compose(mail), "Content-Transfer-Encoding"), "7bit");
  mail.body = std::string(999, 'a') + "\n";
  const std::string message = compose(mail);
  EXPECT_EQ(field(message, "Content-Transfer-Encoding"), "quoted-printable");
  EXPECT_EQ(decode_quoted_printable(body_of(message)), mail.body);
}

TEST(Compose, HeaderInjectionIsRefused) {
  const auto refused = [](auto change) {
    auto mail = ascii_mail();
    change(mail);
    EXPECT_THROW(compose(mail), std::invalid_argument);
  };
  refused([](OutgoingMail& m) { m.subject = "Hello\r\nBcc: everyone@example.org"; });
  refused([](OutgoingMail& m) { m.subject = "Hello\nBcc: everyone@example.org"; });
  refused([](OutgoingMail& m) { m.from_name = "Team\rX-Evil: 1"; });
  refused([](OutgoingMail& m) { m.headers = {{"X-Loop", "a\r\nBcc: everyone@example.org"}}; });
  refused([](OutgoingMail& m) { m.headers = {{"X-Loop\r\nBcc", "everyone@example.org"}}; });
  refused([](OutgoingMail& m) { m.headers = {{"X Loop", "1"}}; });
  refused([](OutgoingMail& m) { m.to = {"ann@example.org\r\nBcc: everyone@example.org"}; });
  refused([](OutgoingMail& m) { m.from = "db@example.org>\r\nX: 1"; });
  refused([](OutgoingMail& m) { m.message_id = "id@example.org>\r\nX: <1"; });
  refused([](OutgoingMail& m) { m.in_reply_to = {"a b@example.org"}; });
  refused([](OutgoingMail& m) { m.references = {""}; });
  // Fields compose writes itself cannot be given twice.
  refused([](OutgoingMail& m) { m.headers = {{"message-id", "<other@example.org>"}}; });
  refused([](OutgoingMail& m) { m.headers = {{"Bcc", "everyone@example.org"}}; });
  refused([](OutgoingMail& m) { m.subject = "broken \xC3("; });
  refused([](OutgoingMail& m) { m.body = "overlong \xC0\xAF"; });
  refused([](OutgoingMail& m) { m.to.clear(); });
  refused([](OutgoingMail& m) { m.to = {"Ann Example <ann@example.org>"}; });
  try {
    auto mail = ascii_mail();
    mail.subject = "Hello\r\nBcc: everyone@example.org";
    compose(mail);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("Subject"), std::string::npos) << e.what();
  }
}

TEST(Compose, GeneratedMessageIdIsRandomAtTheSenderDomain) {
  auto mail = ascii_mail();
  mail.message_id.clear();
  const std::string first = field(compose(mail), "Message-ID");
  const std::string second = field(compose(mail), "Message-ID");
  EXPECT_TRUE(std::regex_match(first, std::regex("<[0-9a-f]{32}@example\\.org>"))) << first;
  EXPECT_NE(first, second);
  EXPECT_TRUE(std::regex_match(new_message_id("x@mail.example.org"),
                               std::regex("[0-9a-f]{32}@mail\\.example\\.org")));
}

// What compose writes, the intake's parser (GMime) reads back as it was meant.
TEST(Compose, ReadBackByTheParser) {
  auto mail = ascii_mail();
  mail.from_name = "Datenbank-Team Süd";
  mail.subject =
      "Störung behoben – oracle-prod: データベース障害のお知らせ、復旧しました。"
      "ご迷惑をおかけしました。";
  std::string long_line;
  for (int i = 0; i < 60; ++i) long_line += "Zeile ä ";
  mail.body = "Grüße aus dem Rechenzentrum\n" + long_line + "\n.\n..\nsum = 1  \nend";
  mail.headers.emplace_back("X-Notice", "Wartung für oracle-prod");
  const std::string message = compose(mail);
  const ParsedMail parsed = parse_mail(message);
  EXPECT_EQ(parsed.subject, mail.subject);
  EXPECT_EQ(parsed.from_address, "db-requests@example.org");
  EXPECT_EQ(parsed.from_name, mail.from_name);
  EXPECT_EQ(parsed.to, std::vector<std::string>{"ann@example.org"});
  EXPECT_EQ(parsed.message_id, mail.message_id);
  EXPECT_EQ(parsed.in_reply_to, mail.in_reply_to);
  EXPECT_EQ(parsed.references, mail.references);
  EXPECT_EQ(parsed.date, mail.date);
  EXPECT_EQ(parsed.header("auto-submitted"), "auto-replied");
  EXPECT_EQ(parsed.header("x-notice"), "Wartung für oracle-prod");
  EXPECT_EQ(parsed.text, mail.body + "\n");
  EXPECT_TRUE(parsed.attachments.empty());
  EXPECT_TRUE(parsed.defects.empty()) << parsed.defects.front();
}

TEST(Compose, PlainAddresses) {
  EXPECT_TRUE(is_plain_address("db-requests@example.org"));
  EXPECT_TRUE(is_plain_address("first.last+tag@sub.example.org"));
  EXPECT_FALSE(is_plain_address("Ann <ann@example.org>"));
  EXPECT_FALSE(is_plain_address("ann@@example.org"));
  EXPECT_FALSE(is_plain_address("@example.org"));
  EXPECT_FALSE(is_plain_address("ann@"));
  EXPECT_FALSE(is_plain_address("\"a b\"@example.org"));
  EXPECT_FALSE(is_plain_address("jörg@example.org"));
  EXPECT_FALSE(is_plain_address(std::string(250, 'a') + "@example.org"));
}

TEST(Compose, HtmlBodyMakesMultipartAlternativeThatParsesBack) {
  OutgoingMail mail = ascii_mail();
  mail.body = "Planned outage of Oracle: Sun 02:00–05:00.\n";
  mail.html_body = "<p>Planned outage of <b>Oracle</b>: Sun 02:00–05:00.</p>\n";
  const std::string bytes = compose(mail);
  EXPECT_NE(bytes.find("Content-Type: multipart/alternative;"), std::string::npos) << bytes;
  // The plain part comes first: readers show the last part they can render.
  EXPECT_LT(bytes.find("text/plain"), bytes.find("text/html")) << bytes;
  const ParsedMail parsed = parse_mail(bytes);
  EXPECT_EQ(parsed.text, mail.body);
  EXPECT_EQ(parsed.html, mail.html_body);
  EXPECT_TRUE(parsed.attachments.empty());
  EXPECT_TRUE(parsed.defects.empty());
}

TEST(Compose, HtmlBodyMustBeUtf8) {
  OutgoingMail mail = ascii_mail();
  mail.html_body = "<p>\xff</p>";
  EXPECT_THROW(compose(mail), std::invalid_argument);
}

}  // namespace
}  // namespace slmhub::mail
