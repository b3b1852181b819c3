// Mail intake (LMTP, POP3, IMAP): parse_mail over GMime, and with it RFC 2047 encoded words,
// RFC 2231 parameters, charsets, nested multiparts and the HTML-to-text fallback. It never
// throws except std::invalid_argument for an empty input, and what it returns is what a ticket
// stores: every text valid UTF-8 (whatever charset the mail claimed), the body with "\n" line
// ends, addresses normalized, attachment names without directories or control characters,
// and each attachment's SHA-256 matching its bytes.
//
// Two targets share this file: `mime` reads whole messages; `mime_header` puts its input into
// the headers and parameters of a fixed message (Subject, From, To, a Content-Type name and a
// Content-Disposition filename), so the fuzzer spends its time in the decoders of encoded
// words and RFC 2231 continuations rather than in finding a valid message shape.
#include <stdexcept>
#include <string>
#include <vector>

#include "address.hpp"
#include "checks.hpp"
#include "mime.hpp"
#include "slmhub/digest.hpp"

namespace slmhub::fuzz {
namespace {

void expect_utf8(std::string_view text, const char* field) {
  expect(valid_utf8(text), std::string("parse_mail: ") + field + " is not UTF-8");
}

void expect_normalized(const std::string& address, const char* field) {
  expect_utf8(address, field);
  if (address.empty()) return;
  const auto again = mail::normalize_address(address);
  expect(again && *again == address,
         std::string("parse_mail: ") + field + " '" + address + "' is not a normalized address");
}

void check_parsed(std::string_view raw) {
  mail::ParsedMail m;
  try {
    m = mail::parse_mail(raw);
  } catch (const std::invalid_argument&) {
    expect(raw.empty(), "parse_mail refuses a non-empty input");
    return;
  }
  expect(!raw.empty(), "parse_mail accepts an empty input");
  expect_utf8(m.message_id, "message_id");
  for (const auto& id : m.in_reply_to) expect_utf8(id, "in_reply_to");
  for (const auto& id : m.references) expect_utf8(id, "references");
  expect_utf8(m.subject, "subject");
  expect_normalized(m.from_address, "from_address");
  expect_utf8(m.from_name, "from_name");
  for (const auto& a : m.to) expect_normalized(a, "to");
  for (const auto& a : m.cc) expect_normalized(a, "cc");
  expect_normalized(m.reply_to, "reply_to");
  if (m.return_path) expect_normalized(*m.return_path, "return_path");
  for (const auto& [name, value] : m.headers) {
    expect_utf8(name, "a header name");
    expect_utf8(value, "a header value");
  }
  expect_utf8(m.text, "text");
  expect(m.text.find('\r') == std::string::npos, "parse_mail: text has a CR");
  expect_utf8(m.html, "html");
  for (const auto& a : m.attachments) {
    expect_utf8(a.filename, "an attachment filename");
    expect(a.filename.find_first_of("/\\") == std::string::npos,
           "parse_mail: an attachment filename has a directory: " + a.filename);
    for (char c : a.filename) {
      expect(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F,
             "parse_mail: an attachment filename has a control character");
    }
    expect(a.filename != "." && a.filename != "..",
           "parse_mail: attachment filename " + a.filename);
    expect_utf8(a.content_type, "an attachment content type");
    expect_utf8(a.content_id, "an attachment content id");
    expect(a.sha256 == sha256_hex(a.bytes()),
           "parse_mail: an attachment's sha256 is not its data's");
  }
  for (const auto& d : m.defects) expect_utf8(d, "a defect");
}

}  // namespace

void check_mime(std::string_view input) { check_parsed(input); }

void check_mime_header(std::string_view input) {
  // Up to five lines of input: Subject, From, To, the Content-Type parameters and the
  // Content-Disposition parameters of the attachment. Each goes in as it is, CR and all.
  std::vector<std::string_view> lines;
  while (lines.size() < 4) {
    const auto end = input.find('\n');
    if (end == std::string_view::npos) break;
    lines.push_back(input.substr(0, end));
    input.remove_prefix(end + 1);
  }
  lines.push_back(input);
  lines.resize(5);
  std::string raw;
  raw += "From: ";
  raw += lines[1];
  raw += "\r\nTo: ";
  raw += lines[2];
  raw += "\r\nSubject: ";
  raw += lines[0];
  raw +=
      "\r\nMessage-ID: <fuzz@example.org>\r\nDate: Tue, 03 Nov 2026 14:05:00 +0100\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
      "--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
      "--=_b\r\nContent-Type: application/octet-stream;";
  raw += lines[3];
  raw += "\r\nContent-Disposition: attachment;";
  raw += lines[4];
  raw += "\r\nContent-Transfer-Encoding: base64\r\n\r\nZGF0YQ==\r\n--=_b--\r\n";
  check_parsed(raw);
}

}  // namespace slmhub::fuzz
