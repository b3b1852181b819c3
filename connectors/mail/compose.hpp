// Outgoing mail as RFC 5322 bytes: the one place where slmhub writes message headers, so
// folding, RFC 2047 encoded words, quoted-printable and the refusal of header injection are
// decided once for every plugin that sends e-mail.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slmhub/time.hpp"

namespace slmhub::mail {

struct OutgoingMail {
  std::string from;             // addr-spec, e.g. "db-requests@example.org"
  std::string from_name;        // optional display name (UTF-8)
  std::vector<std::string> to;  // addr-specs
  std::string subject;          // UTF-8
  std::string body;             // UTF-8 plain text; LF, CRLF or CR line breaks
  // UTF-8 HTML: when set, the message is multipart/alternative with `body` as the text/plain
  // part first and this as the text/html part (readers show the last part they can render).
  std::string html_body;
  std::string message_id;  // without <>; generated when empty (random@<from domain>)
  std::vector<std::string> in_reply_to, references;  // ids without <>
  // Extra headers written after the standard ones, e.g. {"Auto-Submitted", "auto-replied"}.
  // Values are unstructured text: non-ASCII is written as encoded words.
  std::vector<std::pair<std::string, std::string>> headers;
  Instant date{};  // the Date header, written in UTC ("+0000")
};

// The message as bytes with CRLF line endings: Date, From, To, Subject, Message-ID,
// In-Reply-To, References, the extra headers, MIME-Version, Content-Type (text/plain;
// charset=UTF-8, or multipart/alternative with an html_body) and Content-Transfer-Encoding. Header
// lines are folded at 78 characters where the text allows it; non-ASCII subjects, display names and
// extra header values become RFC 2047 encoded words (UTF-8, Q or B, whichever is shorter). The body
// is 7bit when it is ASCII with lines of at most 998 characters, quoted-printable otherwise.
//
// Throws std::invalid_argument naming the field when an address is not a plain addr-spec
// (see is_plain_address), a header value or name holds CR, LF or NUL (header injection), a
// text is not valid UTF-8, an extra header repeats one written here, a Message-ID has
// spaces or angle brackets, or a header line would exceed 998 characters.
std::string compose(const OutgoingMail& mail);

// Whether `address` can go into a header and an SMTP envelope as it is: local@domain in
// printable ASCII, exactly one '@', none of the characters that would need quoting (space,
// <>()[],;:\"), at most 254 characters. Quoted local parts and internationalized addresses
// (SMTPUTF8) are not sent.
bool is_plain_address(std::string_view address);

// Whether `id` (without <>) can be written as a Message-ID, In-Reply-To or References token:
// printable ASCII without spaces or angle brackets. A message's own id can be anything its
// sender wrote (quoted local parts, 8-bit bytes); compose refuses what this refuses.
bool is_message_id(std::string_view id);

// A new Message-ID (without <>) for mail from `from`: 128 random bits in hex at the domain of
// the address.
std::string new_message_id(std::string_view from);

}  // namespace slmhub::mail
