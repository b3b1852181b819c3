// Reading one Internet message (RFC 5322 + MIME) the way mail clients show it: the headers that
// threading and loop detection need, the readable body in UTF-8, and every other part as an
// attachment with its decoded bytes and SHA-256. Parsing is GMime 3; this unit decides what the
// body is, converts every charset to UTF-8 and records what was malformed instead of failing,
// because a ticket must come out of whatever a real MTA accepted.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "html_text.hpp"  // html_to_text(), which makes `text` of HTML-only mail
#include "slmhub/time.hpp"

namespace slmhub::mail {

// Receives bytes in pieces, in order.
using ByteSink = std::function<void(std::string_view piece)>;

struct MailAttachment {
  // Decoded (RFC 2231 / RFC 2047), UTF-8, without directory parts; "" when none. A
  // message/rfc822 part without a name is named after its subject ("<subject>.eml").
  std::string filename;
  std::string content_type;  // "image/png" (lower-case type/subtype)
  std::string content_id;    // without <>, "" when none
  // Shown in the body rather than listed: a part with a Content-ID that is not
  // Content-Disposition: attachment (an image of multipart/related).
  bool is_inline = false;
  std::size_t size = 0;  // of the decoded bytes
  std::string sha256;    // lower-case hex of the decoded bytes
  // Hands the decoded bytes to `sink` in pieces of at most 64 KiB: decoded again from the
  // message on every call, so a 20 MB attachment is never held whole (it is stored as it is
  // read). For message/rfc822 the embedded message as it appeared (an .eml file). Keeps what
  // it reads alive by itself; not to be called from two threads at once for one message.
  std::function<void(const ByteSink& sink)> read;
  // read() into one string: for small parts and tests.
  std::string bytes() const;
};

struct ParsedMail {
  std::string message_id;                  // without <>; "" when missing
  std::vector<std::string> in_reply_to;    // ids without <>
  std::vector<std::string> references;     // ids without <>, in order
  std::string subject;                     // RFC 2047 decoded to UTF-8, unfolded
  std::string from_address;                // normalize_address() of the first From mailbox; ""
  std::string from_name;                   // decoded display name
  std::vector<std::string> to, cc;         // normalized addresses (groups flattened)
  std::string reply_to;                    // normalized; "" when none
  std::optional<std::string> return_path;  // nullopt: header absent; "" for <> (a bounce)
  std::optional<Instant> date;             // from Date:, nullopt if missing/unparseable
  // Every top-level header in order, name lower-cased, value unfolded and decoded to UTF-8.
  std::vector<std::pair<std::string, std::string>> headers;
  // The readable body in UTF-8 with "\n" line ends: the text/plain part (format=flowed
  // joined), else text made from the HTML part.
  std::string text;
  std::string html;  // the text/html part in UTF-8, when there is one
  // Every leaf part that is not the body, in document order, including inline images and
  // message/rfc822 parts (not descended into: their own body is not this message's body).
  std::vector<MailAttachment> attachments;
  bool is_report = false;            // top-level multipart/report (a DSN or MDN)
  std::vector<std::string> defects;  // what was malformed and how it was read, for the record

  // First value of a header (lower-case name), "" if absent.
  std::string header(std::string_view name) const;
};

// MIME nesting below this many multipart levels is not read (a defect says so): no real client
// nests that deep, and a bound keeps a hostile message from costing stack or time.
inline constexpr int kMaxMimeDepth = 64;

// Parses one RFC 5322 message. Never throws on malformed mail: it reads what real MTAs and
// clients would show and lists defects. Throws std::invalid_argument only for input that is not
// a message at all (empty). Thread-safe: calls share nothing but GMime's one-time setup.
// The attachments read from a copy of `raw` that they keep.
ParsedMail parse_mail(std::string_view raw);
// The same without the copy: the attachments read `raw` itself, which must outlive them. For
// the intake, where a 25 MB message would otherwise be held twice.
ParsedMail parse_mail_borrowing(std::string_view raw);

}  // namespace slmhub::mail
