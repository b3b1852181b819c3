#include "compose.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "slmhub/utf8.hpp"

namespace slmhub::mail {
namespace {

// RFC 5322 §2.1.1: lines SHOULD stay within 78 characters and MUST stay within 998.
constexpr std::size_t kFoldAt = 78;
constexpr std::size_t kMaxLine = 998;
// RFC 2047 §2: an encoded word is at most 75 characters, "=?UTF-8?Q?" and "?=" included.
constexpr std::size_t kMaxEncodedWord = 75;
// RFC 2047 §2: a header line holding an encoded word is at most 76 characters.
constexpr std::size_t kEncodedLine = 76;
constexpr std::size_t kEncodedWordOverhead = 12;
// RFC 2045 §6.7 rule 5: quoted-printable lines are at most 76 characters; the soft line
// break '=' takes one of them.
constexpr std::size_t kQuotedPrintableText = 75;

constexpr char kHex[] = "0123456789ABCDEF";

[[noreturn]] void refuse(const std::string& what) {
  throw std::invalid_argument("compose: " + what);
}

// CR and LF would start a new header (header injection); NUL is not allowed in a header at all.
void refuse_line_breaks(std::string_view value, std::string_view field) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    refuse(std::string(field) + " " + quote_text(value) +
           " holds CR, LF or NUL; header values are one line of text");
  }
}

void require_utf8(std::string_view text, std::string_view field) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = utf8_sequence(text, at);
    if (length == 0) {
      refuse(std::string(field) + " is not valid UTF-8 (byte " + std::to_string(at) + ")");
    }
    at += length;
  }
}

// Text that cannot stand in a header as it is: non-ASCII, control characters other than TAB,
// and "=?", which a reader could take for the start of an encoded word.
bool needs_encoding(std::string_view text) {
  const bool unsafe_byte = std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x7F || (u < 0x20 && u != '\t');
  });
  return unsafe_byte || text.find("=?") != std::string_view::npos;
}

// RFC 2047 §5 (3): the characters a "Q" word may carry literally anywhere, phrases included.
bool q_literal(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '!' ||
         c == '*' || c == '+' || c == '-' || c == '/';
}

void append_q(std::string& out, std::string_view bytes) {
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (q_literal(u)) {
      out += c;
    } else if (u == ' ') {
      out += '_';
    } else {
      out += '=';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

std::size_t base64_length(std::size_t bytes) { return (bytes + 2) / 3 * 4; }

// `text` (valid UTF-8) as encoded words, each holding whole characters (RFC 2047 §5), the first
// at most `first_max` characters long so it fits beside the field name, the others 75. Q or
// B, whichever makes the text shorter: Q keeps mostly-Latin text readable in the raw message.
std::vector<std::string> encoded_words(std::string_view text, std::size_t first_max) {
  std::size_t q_length = 0;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    q_length += q_literal(u) || u == ' ' ? 1 : 3;
  }
  const bool use_q = q_length <= base64_length(text.size());

  std::vector<std::string> words;
  std::string chunk;    // the raw bytes of the word being filled
  std::string encoded;  // its Q form (Q only)
  std::size_t limit = first_max;
  const auto flush = [&] {
    if (use_q) {
      words.push_back("=?UTF-8?Q?" + encoded + "?=");
    } else {
      words.push_back("=?UTF-8?B?" + base64_encode(chunk) + "?=");
    }
    chunk.clear();
    encoded.clear();
    limit = kMaxEncodedWord;
  };
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = utf8_sequence(text, at);
    const std::string_view character = text.substr(at, length);
    std::string piece;
    if (use_q) append_q(piece, character);
    const std::size_t grown =
        use_q ? encoded.size() + piece.size() : base64_length(chunk.size() + character.size());
    if (!chunk.empty() && kEncodedWordOverhead + grown > limit) flush();
    chunk += character;
    encoded += piece;
    at += length;
  }
  if (!chunk.empty()) flush();
  return words;
}

// How long the first encoded word of a field may be so that it fits on the field's first line.
std::size_t first_word_limit(std::string_view field_name) {
  const std::size_t room =
      kEncodedLine > field_name.size() + 2 ? kEncodedLine - field_name.size() - 2 : 0;
  // Too little room for a useful word: the writer folds before the first word instead.
  return room < 30 ? kMaxEncodedWord : std::min(room, kMaxEncodedWord);
}

std::vector<std::string> split_spaces(std::string_view text) {
  std::vector<std::string> tokens;
  std::size_t start = 0;
  for (std::size_t space = text.find(' '); space != std::string_view::npos;
       space = text.find(' ', start)) {
    tokens.emplace_back(text.substr(start, space - start));
    start = space + 1;
  }
  tokens.emplace_back(text.substr(start));
  return tokens;
}

// Unstructured text (a subject, an extra header value) as tokens for write_field. A word too
// long for a header line (a URL or a blob of 1,000 characters in a customer's subject) is
// carried in encoded words, which fold anywhere: the message is still sent.
std::vector<std::string> text_tokens(std::string_view text, std::string_view field_name) {
  if (text.empty()) return {};
  if (needs_encoding(text)) return encoded_words(text, first_word_limit(field_name));
  auto tokens = split_spaces(text);
  const std::size_t longest_fitting = kMaxLine - field_name.size() - 2;
  if (std::any_of(tokens.begin(), tokens.end(),
                  [&](const std::string& t) { return t.size() > longest_fitting; })) {
    return encoded_words(text, first_word_limit(field_name));
  }
  return tokens;
}

// RFC 5322 §3.2.3 atext, plus the space between words of a phrase.
bool phrase_safe(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
           std::string_view("!#$%&'*+-/=?^_`{|}~ ").find(c) != std::string_view::npos;
  });
}

std::vector<std::string> display_name_tokens(std::string_view name) {
  if (name.empty()) return {};
  if (needs_encoding(name)) return encoded_words(name, first_word_limit("From"));
  if (phrase_safe(name)) return split_spaces(name);
  std::string quoted = "\"";
  for (const char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  return {quoted};
}

// One header field: "Name:" and the tokens separated by single spaces, folded (CRLF + the
// space) before a token that would take the line past 78 characters. Unfolding (RFC 5322
// §2.2.3) gives back the tokens joined by single spaces, so folding never changes a value.
// An empty token is never folded before, so no line is whitespace only.
void write_field(std::string& out, std::string_view name, const std::vector<std::string>& tokens) {
  out += name;
  out += ':';
  std::size_t line = name.size() + 1;
  for (const auto& token : tokens) {
    if (!token.empty() && line + 1 + token.size() > kFoldAt) {
      out += "\r\n";
      line = 0;
    }
    out += ' ';
    out += token;
    line += 1 + token.size();
    if (line > kMaxLine) {
      refuse("the " + std::string(name) + " header has a word of " + std::to_string(token.size()) +
             " characters; a header line may not exceed 998");
    }
  }
  out += "\r\n";
}

void check_message_id(std::string_view id, std::string_view field) {
  if (!is_message_id(id)) {
    refuse(std::string(field) + " " + quote_text(id) +
           " is not a message id: printable ASCII without spaces or angle brackets expected");
  }
}

std::vector<std::string> id_tokens(const std::vector<std::string>& ids, std::string_view field) {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const auto& id : ids) {
    check_message_id(id, field);
    tokens.push_back("<" + id + ">");
  }
  return tokens;
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

void check_extra_header(const std::pair<std::string, std::string>& header) {
  const auto& [name, value] = header;
  const bool bad_name = name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
                          const auto u = static_cast<unsigned char>(c);
                          return u <= 0x20 || u >= 0x7F || c == ':';
                        });
  if (bad_name) {
    refuse("header name " + quote_text(name) +
           " is not a field name: printable ASCII without spaces or ':' expected");
  }
  // Written by compose itself, or (Cc, Bcc) naming recipients this envelope does not reach.
  static constexpr std::array<std::string_view, 12> kReserved = {
      "Date",       "From",         "To",           "Cc",
      "Bcc",        "Subject",      "Message-ID",   "In-Reply-To",
      "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};
  for (const auto reserved : kReserved) {
    if (same_name(name, reserved)) {
      refuse("header " + name +
             " cannot be given as an extra header; it is set from its own field");
    }
  }
  refuse_line_breaks(value, "header " + name);
  require_utf8(value, "header " + name);
}

std::string rfc5322_date(Instant t) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto day = std::chrono::floor<date::days>(t);
  const date::year_month_day ymd{day};
  const date::weekday weekday{day};
  const auto time = date::make_time(t - day);
  std::array<char, 40> text{};
  std::snprintf(text.data(), text.size(), "%s, %02u %s %04d %02d:%02d:%02d +0000",
                kDays[weekday.c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return text.data();
}

// The body's lines without their breaks (CRLF, LF or a lone CR); a break at the very end does
// not start another line.
std::vector<std::string_view> body_lines(std::string_view body) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t at = 0; at < body.size(); ++at) {
    if (body[at] != '\r' && body[at] != '\n') continue;
    lines.push_back(body.substr(start, at - start));
    if (body[at] == '\r' && at + 1 < body.size() && body[at + 1] == '\n') ++at;
    start = at + 1;
  }
  if (start < body.size()) lines.push_back(body.substr(start));
  return lines;
}

// RFC 2045 §6.7: '=', bytes outside printable ASCII and whitespace at the end of a line are
// escaped; lines are cut by soft breaks ("=" CRLF) before 76 characters, never inside an
// escape.
void append_quoted_printable(std::string& out, std::string_view line) {
  std::size_t length = 0;
  for (std::size_t at = 0; at < line.size(); ++at) {
    const auto u = static_cast<unsigned char>(line[at]);
    const bool trailing_space = (u == ' ' || u == '\t') && at + 1 == line.size();
    const bool literal =
        ((u >= 33 && u <= 126 && u != '=') || u == ' ' || u == '\t') && !trailing_space;
    const std::size_t width = literal ? 1 : 3;
    if (length + width > kQuotedPrintableText) {
      out += "=\r\n";
      length = 0;
    }
    if (literal) {
      out += static_cast<char>(u);
    } else {
      out += '=';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
    length += width;
  }
  out += "\r\n";
}

}  // namespace

bool is_message_id(std::string_view id) {
  return !id.empty() && std::none_of(id.begin(), id.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u >= 0x7F || c == '<' || c == '>';
  });
}

bool is_plain_address(std::string_view address) {
  if (address.empty() || address.size() > 254) return false;
  const auto at = address.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == address.size() ||
      address.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  return std::all_of(address.begin(), address.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F &&
           std::string_view("<>()[],;:\\\"").find(c) == std::string_view::npos;
  });
}

std::string new_message_id(std::string_view from) {
  const auto at = from.rfind('@');
  if (at == std::string_view::npos || at + 1 == from.size()) {
    refuse("cannot make a Message-ID for " + quote_text(from) + ": it has no domain");
  }
  std::random_device random;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t bits = random();
    for (int shift = 28; shift >= 0; shift -= 4) id += "0123456789abcdef"[(bits >> shift) & 15];
  }
  return id + "@" + std::string(from.substr(at + 1));
}

namespace {

// Content-Type, Content-Transfer-Encoding, a blank line and `text`: 7bit when it is ASCII with
// short enough lines, quoted-printable otherwise.
void append_text_part(std::string& out, const std::string& text, const std::string& type) {
  const auto lines = body_lines(text);
  const bool seven_bit =
      std::none_of(text.begin(), text.end(),
                   [](char c) { return c == '\0' || static_cast<unsigned char>(c) >= 0x80; }) &&
      std::all_of(lines.begin(), lines.end(),
                  [](std::string_view line) { return line.size() <= kMaxLine; });
  write_field(out, "Content-Type", {type, "charset=UTF-8"});
  write_field(out, "Content-Transfer-Encoding", {seven_bit ? "7bit" : "quoted-printable"});
  out += "\r\n";
  for (const auto line : lines) {
    if (seven_bit) {
      out += line;
      out += "\r\n";
    } else {
      append_quoted_printable(out, line);
    }
  }
}

}  // namespace

std::string compose(const OutgoingMail& mail) {
  if (!is_plain_address(mail.from)) {
    refuse("From address " + quote_text(mail.from) + " is not a plain addr-spec (local@domain)");
  }
  if (mail.to.empty()) refuse("a message needs at least one To address");
  for (const auto& to : mail.to) {
    if (!is_plain_address(to)) {
      refuse("To address " + quote_text(to) + " is not a plain addr-spec (local@domain)");
    }
  }
  refuse_line_breaks(mail.from_name, "the From display name");
  require_utf8(mail.from_name, "the From display name");
  refuse_line_breaks(mail.subject, "the Subject");
  require_utf8(mail.subject, "the Subject");
  require_utf8(mail.body, "the body");
  for (const auto& header : mail.headers) check_extra_header(header);
  const std::string message_id =
      mail.message_id.empty() ? new_message_id(mail.from) : mail.message_id;
  check_message_id(message_id, "Message-ID");

  std::string out;
  out.reserve(mail.body.size() + mail.body.size() / 8 + 1024);
  write_field(out, "Date", {rfc5322_date(mail.date)});
  auto from = display_name_tokens(mail.from_name);
  from.push_back(mail.from_name.empty() ? mail.from : "<" + mail.from + ">");
  write_field(out, "From", from);
  std::vector<std::string> to;
  for (std::size_t i = 0; i < mail.to.size(); ++i) {
    to.push_back(mail.to[i] + (i + 1 < mail.to.size() ? "," : ""));
  }
  write_field(out, "To", to);
  write_field(out, "Subject", text_tokens(mail.subject, "Subject"));
  write_field(out, "Message-ID", {"<" + message_id + ">"});
  if (!mail.in_reply_to.empty()) {
    write_field(out, "In-Reply-To", id_tokens(mail.in_reply_to, "In-Reply-To"));
  }
  if (!mail.references.empty()) {
    write_field(out, "References", id_tokens(mail.references, "References"));
  }
  for (const auto& [name, value] : mail.headers) write_field(out, name, text_tokens(value, name));

  write_field(out, "MIME-Version", {"1.0"});
  if (mail.html_body.empty()) {
    append_text_part(out, mail.body, "text/plain;");
    return out;
  }
  require_utf8(mail.html_body, "the HTML body");
  // "=_" never occurs in quoted-printable text (a literal '=' is "=3D"), and a 7bit part
  // would have to contain the hash of itself: the boundary cannot collide with a part.
  const std::string boundary =
      "=_slmhub_" + sha256_hex(mail.body + '\0' + mail.html_body).substr(0, 32);
  write_field(out, "Content-Type", {"multipart/alternative;", "boundary=\"" + boundary + "\""});
  // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1): each part
  // is followed by one more, so its own last line break survives.
  out += "\r\n--" + boundary + "\r\n";
  append_text_part(out, mail.body, "text/plain;");
  out += "\r\n--" + boundary + "\r\n";
  append_text_part(out, mail.html_body, "text/html;");
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

}  // namespace slmhub::mail
