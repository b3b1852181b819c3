#include "mime.hpp"

#include <gmime/gmime.h>
#include <iconv.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "address.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/utf8.hpp"

namespace slmhub::mail {

std::string MailAttachment::bytes() const {
  std::string out;
  out.reserve(size);
  if (read) read([&](std::string_view piece) { out.append(piece); });
  return out;
}

std::string ParsedMail::header(std::string_view name) const {
  for (const auto& [n, value] : headers) {
    if (n == name) return value;
  }
  return {};
}

namespace {

// ---- GMime ownership ------------------------------------------------------------------------

struct GObjectUnref {
  void operator()(gpointer p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
template <class T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct GFree {
  void operator()(gpointer p) const { g_free(p); }
};
using GChars = std::unique_ptr<char, GFree>;

struct ParserOptionsFree {
  void operator()(GMimeParserOptions* p) const { g_mime_parser_options_free(p); }
};
struct FormatOptionsFree {
  void operator()(GMimeFormatOptions* p) const { g_mime_format_options_free(p); }
};
struct ReferencesFree {
  void operator()(GMimeReferences* p) const { g_mime_references_free(p); }
};
struct DateTimeUnref {
  void operator()(GDateTime* p) const { g_date_time_unref(p); }
};

// glibc's iconv loads a gconv module on open and unloads it a few closes later, so a stream of
// Shift_JIS or ISO-8859-1 mail would dlopen and dlclose a module per message (that cost more
// than the parsing). Descriptors kept open keep the modules loaded: a thread's own cache for the
// body conversions here, and one descriptor per common mail charset, held for the life of the
// process, for GMime's header decoding.
class PinnedCharsets {
 public:
  PinnedCharsets() {
    for (std::size_t i = 0; i < kCharsets.size(); ++i) {
      descriptors_[i] = g_mime_iconv_open("UTF-8", kCharsets[i]);
    }
  }
  PinnedCharsets(const PinnedCharsets&) = delete;
  PinnedCharsets& operator=(const PinnedCharsets&) = delete;
  ~PinnedCharsets() {
    for (const iconv_t cd : descriptors_) {
      if (cd != reinterpret_cast<iconv_t>(-1)) g_mime_iconv_close(cd);
    }
  }

 private:
  static constexpr std::array<const char*, 20> kCharsets = {
      "ISO-8859-1",   "ISO-8859-2",   "ISO-8859-15",  "WINDOWS-1250", "WINDOWS-1251",
      "WINDOWS-1252", "WINDOWS-1253", "WINDOWS-1254", "KOI8-R",       "KOI8-U",
      "CP932",        "SHIFT_JIS",    "EUC-JP",       "ISO-2022-JP",  "GB18030",
      "GB2312",       "BIG5",         "BIG5-HKSCS",   "EUC-KR",       "CP949"};
  std::array<iconv_t, kCharsets.size()> descriptors_{};
};

void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
  static const PinnedCharsets pinned;
}

class IconvCache {
 public:
  IconvCache() = default;
  IconvCache(const IconvCache&) = delete;
  IconvCache& operator=(const IconvCache&) = delete;
  ~IconvCache() {
    for (const auto& e : entries_) g_mime_iconv_close(e.cd);
  }

  // A descriptor from `charset` to UTF-8 in its initial state; (iconv_t)-1 if unknown.
  iconv_t to_utf8(const std::string& charset) {
    for (const auto& e : entries_) {
      if (e.charset == charset) {
        iconv(e.cd, nullptr, nullptr, nullptr, nullptr);
        return e.cd;
      }
    }
    const iconv_t cd = g_mime_iconv_open("UTF-8", charset.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return cd;
    if (entries_.size() == kMaxEntries) {
      g_mime_iconv_close(entries_.front().cd);
      entries_.erase(entries_.begin());
    }
    entries_.push_back({charset, cd});
    return cd;
  }

 private:
  struct Entry {
    std::string charset;
    iconv_t cd;
  };
  static constexpr std::size_t kMaxEntries = 16;
  std::vector<Entry> entries_;
};

IconvCache& iconv_cache() {
  thread_local IconvCache cache;
  return cache;
}

// ---- text helpers -----------------------------------------------------------------------------

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

std::string_view view(const char* s) { return s == nullptr ? std::string_view{} : s; }

bool is_ascii(std::string_view s) { return skip_ascii(s, 0) == s.size(); }

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Windows-1252 as the WHATWG Encoding Standard reads it (also for the labels ISO-8859-1 and
// US-ASCII, as every browser and mail client does): total, so any byte string has a reading.
char32_t windows1252(unsigned char b) {
  static constexpr std::array<char32_t, 32> kC1 = {
      0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
      0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};
  return (b >= 0x80 && b <= 0x9F) ? kC1[b - 0x80] : b;
}

std::string from_windows1252(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (const char c : s) append_utf8(out, windows1252(static_cast<unsigned char>(c)));
  return out;
}

// Keeps every well-formed UTF-8 sequence and reads each other byte as Windows-1252: mostly-UTF-8
// text with a stray Latin-1 byte keeps its UTF-8, Latin-1 text comes out whole. Sets
// `*fell_back` when some byte needed the second reading.
std::string utf8_or_windows1252(std::string_view s, bool* fell_back = nullptr) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const std::size_t ascii = skip_ascii(s, i); ascii > i) {
      out.append(s.substr(i, ascii - i));
      i = ascii;
    } else if (const std::size_t n = utf8_sequence(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      append_utf8(out, windows1252(static_cast<unsigned char>(s[i])));
      if (fell_back != nullptr) *fell_back = true;
      ++i;
    }
  }
  return out;
}

// Header values, names and items GMime hands back are UTF-8 by contract, but a defect message
// must never be the first invalid string in a ticket, so everything taken from GMime passes here.
std::string clean_utf8(std::string_view s) {
  return valid_utf8(s) ? std::string(s) : utf8_or_windows1252(s);
}

// At most `max_bytes`, cut at a character boundary, for quoting input in defect messages.
std::string quote_input(std::string_view s, std::size_t max_bytes = 80) {
  std::string text = clean_utf8(trim(s));
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "…";
}

// CRLF and lone CR to LF.
std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t cr = s.find('\r', i);
    if (cr == std::string_view::npos) {
      out.append(s.substr(i));
      break;
    }
    out.append(s.substr(i, cr - i));
    out += '\n';
    i = cr + (cr + 1 < s.size() && s[cr + 1] == '\n' ? 2 : 1);
  }
  return out;
}

// ---- encoded words ----------------------------------------------------------------------------

// Base64 of one RFC 2047 word, leniently: characters outside the alphabet are skipped and a
// missing padding is tolerated, as senders cut words carelessly.
std::string lenient_base64(std::string_view s) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : s) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    }
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

struct EncodedWord {
  std::size_t end = 0;  // one past the closing "?="
  std::string_view charset;
  char encoding = 0;  // 'B' or 'Q'
  std::string_view payload;
};

bool is_folding_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The encoded word "=?charset?X?payload?=" starting at s[i], if there is one.
std::optional<EncodedWord> encoded_word_at(std::string_view s, std::size_t i) {
  if (s.substr(i, 2) != "=?") return std::nullopt;
  const std::size_t q1 = s.find('?', i + 2);
  if (q1 == std::string_view::npos || q1 == i + 2 || q1 + 2 >= s.size() || s[q1 + 2] != '?') {
    return std::nullopt;
  }
  EncodedWord w;
  w.charset = s.substr(i + 2, q1 - i - 2);
  w.encoding = static_cast<char>(s[q1 + 1] == 'b' ? 'B' : s[q1 + 1] == 'q' ? 'Q' : s[q1 + 1]);
  if (w.encoding != 'B' && w.encoding != 'Q') return std::nullopt;
  const std::size_t close = s.find("?=", q1 + 3);
  if (close == std::string_view::npos) return std::nullopt;
  w.payload = s.substr(q1 + 3, close - q1 - 3);
  w.end = close + 2;
  const auto has_space = [](std::string_view v) {
    return std::any_of(v.begin(), v.end(), is_folding_space);
  };
  if (has_space(w.charset) || has_space(w.payload)) return std::nullopt;
  return w;
}

std::string superset_label(std::string_view label);

// GMime 3.2 joins the base64 text of adjacent B-encoded words of one charset before decoding
// it, so a padded word ("…Ng==?= =?utf-8?b?5bqT?=", which Python writes for every long
// subject) ends the decoding and the words after it are lost. Each such run becomes one word
// here, its bytes decoded word by word, which reads as RFC 2047 §6.2 means (the joined bytes
// also keep a character split across two words whole).
std::string merge_base64_words(std::string_view raw) {
  if (raw.find("=?") == std::string_view::npos) return std::string(raw);
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t at = raw.find("=?", i);
    if (at == std::string_view::npos) {
      out.append(raw.substr(i));
      break;
    }
    const auto word = encoded_word_at(raw, at);
    if (!word) {
      out.append(raw.substr(i, at + 2 - i));
      i = at + 2;
      continue;
    }
    out.append(raw.substr(i, at - i));
    std::size_t end = word->end;
    std::string bytes;
    int merged = 1;
    if (word->encoding == 'B') {
      bytes = lenient_base64(word->payload);
      for (;;) {
        std::size_t j = end;
        while (j < raw.size() && is_folding_space(raw[j])) ++j;
        const auto next = encoded_word_at(raw, j);
        if (!next || next->encoding != 'B' || lower(next->charset) != lower(word->charset)) break;
        bytes += lenient_base64(next->payload);
        end = next->end;
        ++merged;
      }
    }
    // Each word under the charset its label means in practice, as bodies are read.
    const std::string charset = superset_label(word->charset);
    if (merged == 1 && charset == word->charset) {
      out.append(raw.substr(at, end - at));
    } else {
      out += "=?";
      out += charset;
      out += '?';
      if (merged == 1) {
        out += word->encoding;
        out += '?';
        out.append(word->payload);
      } else {
        out += "B?";
        out += base64_encode(bytes);
      }
      out += "?=";
    }
    i = end;
  }
  return out;
}

// A raw header value unfolded and decoded to UTF-8 (RFC 2047 words, 8-bit bytes by the
// fallback charsets), trimmed.
std::string decode_header_value(GMimeParserOptions* options, std::string_view raw) {
  GChars unfolded(g_mime_utils_header_unfold(merge_base64_words(raw).c_str()));
  GChars decoded(g_mime_utils_header_decode_text(options, unfolded.get()));
  return std::string(trim(clean_utf8(view(decoded.get()))));
}

// ---- defects ----------------------------------------------------------------------------------

class Defects {
 public:
  explicit Defects(std::vector<std::string>& out) : out_(out) {}
  void add(std::string defect) {
    // The same warning repeated for every part says nothing new.
    if (std::find(out_.begin(), out_.end(), defect) == out_.end())
      out_.push_back(std::move(defect));
  }

 private:
  std::vector<std::string>& out_;
};

void on_parser_warning(gint64 /*offset*/, GMimeParserWarning code, const gchar* item,
                       gpointer user_data) {
  auto& defects = *static_cast<Defects*>(user_data);
  const std::string what = quote_input(view(item));
  switch (code) {
    case GMIME_WARN_DUPLICATED_HEADER:
      defects.add("header " + what + " appears more than once; the first is used");
      break;
    case GMIME_WARN_DUPLICATED_PARAMETER:
      defects.add("parameter " + what + " appears more than once");
      break;
    case GMIME_WARN_UNENCODED_8BIT_HEADER:
      defects.add("header " + what +
                  " has unencoded 8-bit bytes; read as UTF-8 where valid, else Windows-1252");
      break;
    case GMIME_WARN_INVALID_CONTENT_TYPE:
      defects.add("invalid Content-Type '" + what + "'; read with the default type");
      break;
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
      defects.add("invalid RFC 2047 encoded word in '" + what + "'; read as far as possible");
      break;
    case GMIME_WARN_MALFORMED_MULTIPART:
      defects.add(
          "multipart/" + what +
          " ends without its closing boundary; its parts end where the enclosing part ends");
      break;
    case GMIME_WARN_TRUNCATED_MESSAGE:
      defects.add(
          "the message ends early (in its headers or before a closing boundary); read to the end");
      break;
    case GMIME_WARN_MALFORMED_MESSAGE:
      defects.add("the message structure is malformed; read as far as possible");
      break;
    case GMIME_CRIT_INVALID_HEADER_NAME:
      defects.add("invalid header line '" + what + "'; not read as a header");
      break;
    case GMIME_CRIT_CONFLICTING_HEADER:
      defects.add("conflicting values for header " + what);
      break;
    case GMIME_CRIT_CONFLICTING_PARAMETER:
      defects.add("conflicting values for parameter " + what);
      break;
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
      defects.add("multipart/" + what + " has no boundary parameter; its content is one block");
      break;
    case GMIME_WARN_INVALID_PARAMETER:
      defects.add("invalid header parameter '" + what + "'");
      break;
    case GMIME_WARN_INVALID_ADDRESS_LIST:
      defects.add("invalid address list '" + what + "'");
      break;
    case GMIME_CRIT_NESTING_OVERFLOW:
      defects.add("MIME nesting deeper than the parser reads; the deepest parts are one block");
      break;
    case GMIME_WARN_PART_WITHOUT_CONTENT:
      defects.add("a MIME part's headers end at a boundary; the part is empty");
      break;
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
      defects.add("a MIME part has neither headers nor content");
      break;
    default:
      defects.add("parser warning " + std::to_string(static_cast<int>(code)) + " " + what);
      break;
  }
}

// ---- charsets ---------------------------------------------------------------------------------

bool is_one_of(std::string_view label, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), label) != names.end();
}

bool is_ascii_label(std::string_view l) {
  return is_one_of(l, {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "646"});
}
bool is_utf8_label(std::string_view l) {
  return is_one_of(l, {"utf-8", "utf8", "unicode-1-1-utf-8"});
}
bool is_windows1252_label(std::string_view l) {
  return is_one_of(l, {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819",
                       "ibm819", "windows-1252", "cp1252", "x-cp1252"});
}
// Charsets with one byte per character: any byte string decodes, so a wrong label goes unnoticed
// unless the text is checked for being UTF-8.
bool is_single_byte_label(std::string_view l) {
  for (std::string_view prefix : {"iso-8859-", "iso8859-", "iso_8859-", "windows-125", "cp125",
                                  "koi8", "latin", "ibm8", "cp8"}) {
    if (l.substr(0, prefix.size()) == prefix) return true;
  }
  return is_windows1252_label(l);
}

// The superset each legacy label means in practice (WHATWG Encoding Standard): mail labelled
// Shift_JIS comes from Windows and uses CP932's extra characters, GB2312 mail uses GBK, and so on.
std::string iconv_charset(std::string_view l) {
  if (is_one_of(l, {"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                    "windows-31j", "ms932", "cp932"})) {
    return "CP932";
  }
  if (is_one_of(
          l, {"gb2312", "gbk", "x-gbk", "cp936", "gb_2312-80", "csgb2312", "chinese", "euc-cn"})) {
    return "GB18030";
  }
  if (is_one_of(l, {"euc-kr", "ks_c_5601-1987", "ksc5601", "ks_c_5601", "cp949", "windows-949"})) {
    return "CP949";
  }
  if (is_one_of(l, {"big5", "big5-hkscs", "x-x-big5", "cn-big5"})) return "BIG5-HKSCS";
  if (is_one_of(l, {"iso-8859-9", "latin5"})) return "CP1254";
  if (is_one_of(l, {"tis-620", "iso-8859-11"})) return "CP874";
  return std::string(l);
}

// An encoded word's charset label (RFC 2231 may add "*language") as the superset it means in
// practice, as bodies read it: GMime decodes words by the label itself, so ISO-8859-1 words
// from Windows clients gave C1 controls for their curly quotes and dashes, and Shift_JIS names
// lost CP932's extra characters. Other labels are kept as written.
std::string superset_label(std::string_view label) {
  const std::string l = lower(label.substr(0, label.find('*')));
  if (is_windows1252_label(l)) return l == "windows-1252" ? std::string(label) : "windows-1252";
  const std::string superset = iconv_charset(l);
  return superset == l ? std::string(label) : superset;
}

// Converts with iconv, reading an invalid byte as U+FFFD and going on; counts those bytes.
std::string iconv_convert(iconv_t cd, std::string_view in, std::size_t& invalid) {
  std::string out;
  out.reserve(in.size() + in.size() / 2);
  std::array<char, 16384> buf{};
  char* inbuf = const_cast<char*>(in.data());  // iconv's signature; the input is not written
  std::size_t inleft = in.size();
  while (inleft > 0) {
    char* outbuf = buf.data();
    std::size_t outleft = buf.size();
    const std::size_t r = iconv(cd, &inbuf, &inleft, &outbuf, &outleft);
    const int err = errno;
    out.append(buf.data(), static_cast<std::size_t>(outbuf - buf.data()));
    if (r != static_cast<std::size_t>(-1) || err == E2BIG) continue;
    // EILSEQ, EINVAL (a sequence cut off at the end) or anything else: skip one byte.
    ++invalid;
    out += "\xEF\xBF\xBD";
    ++inbuf;
    --inleft;
  }
  for (;;) {  // stateful charsets (ISO-2022-JP) may still hold output
    char* outbuf = buf.data();
    std::size_t outleft = buf.size();
    const std::size_t r = iconv(cd, nullptr, nullptr, &outbuf, &outleft);
    out.append(buf.data(), static_cast<std::size_t>(outbuf - buf.data()));
    if (r != static_cast<std::size_t>(-1) || errno != E2BIG) break;
  }
  return out;
}

struct Converted {
  std::string text;
  std::string defect;  // "" when the label was right
};

// Text bytes in the declared charset → UTF-8; always valid UTF-8, whatever the bytes and label.
Converted to_utf8(std::string_view bytes, std::string_view declared) {
  const std::string label = lower(trim(declared));
  const std::string quoted = "'" + quote_input(declared, 40) + "'";
  if (label.empty() || is_ascii_label(label)) {
    if (is_ascii(bytes)) return {std::string(bytes), {}};
    bool fell_back = false;
    std::string text = utf8_or_windows1252(bytes, &fell_back);
    return {std::move(text),
            (label.empty() ? "8-bit text without a charset" : "8-bit text labelled " + quoted) +
                (fell_back ? " read as UTF-8 where valid, else Windows-1252" : " read as UTF-8")};
  }
  if (is_utf8_label(label)) {
    if (valid_utf8(bytes)) return {std::string(bytes), {}};
    return {utf8_or_windows1252(bytes),
            "text labelled UTF-8 is not valid UTF-8; the invalid bytes read as Windows-1252"};
  }
  if (is_single_byte_label(label) && !is_ascii(bytes) && valid_utf8(bytes)) {
    return {std::string(bytes), "text labelled " + quoted + " is UTF-8; read as UTF-8"};
  }
  if (is_windows1252_label(label)) return {from_windows1252(bytes), {}};
  const iconv_t cd = iconv_cache().to_utf8(iconv_charset(label));
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    bool fell_back = false;
    std::string text = utf8_or_windows1252(bytes, &fell_back);
    return {std::move(text),
            "unknown charset " + quoted +
                (fell_back ? "; read as UTF-8 where valid, else Windows-1252" : "; read as UTF-8")};
  }
  std::size_t invalid = 0;
  std::string text = iconv_convert(cd, bytes, invalid);
  if (invalid == 0) return {std::move(text), {}};
  if (valid_utf8(bytes)) {
    return {std::string(bytes), "text labelled " + quoted + " is UTF-8; read as UTF-8"};
  }
  return {std::move(text), "text is not valid " + quoted + ": " + std::to_string(invalid) +
                               " byte(s) read as U+FFFD"};
}

// A <meta charset> near the top of an HTML part that has no MIME charset (browsers honour it,
// so the sender's client saw the text that way).
std::string html_meta_charset(std::string_view html) {
  const std::string head = lower(html.substr(0, 4096));
  for (std::size_t meta = head.find("<meta"); meta != std::string::npos;
       meta = head.find("<meta", meta + 5)) {
    const std::size_t end = std::min(head.find('>', meta), head.size());
    const std::size_t at = head.find("charset", meta);
    if (at == std::string::npos || at > end) continue;
    std::size_t i = at + 7;
    while (i < end && (head[i] == ' ' || head[i] == '=' || head[i] == '"' || head[i] == '\'')) ++i;
    std::size_t j = i;
    while (j < end && head[j] != '"' && head[j] != '\'' && head[j] != ';' && head[j] != ' ' &&
           head[j] != '/') {
      ++j;
    }
    if (j > i) return head.substr(i, j - i);
  }
  return {};
}

// RFC 3676: lines ending in a space continue on the next line (of the same quote depth); a
// space after the quote marks is stuffing. Clients show the joined paragraphs, and so do we.
std::string unflow(std::string_view text, bool delsp) {
  std::string out;
  out.reserve(text.size());
  std::string paragraph;
  int paragraph_depth = -1;
  auto flush = [&] {
    if (paragraph_depth < 0) return;
    if (paragraph_depth > 0) {
      out.append(static_cast<std::size_t>(paragraph_depth), '>');
      if (!paragraph.empty()) out += ' ';
    }
    out += paragraph;
    out += '\n';
    paragraph.clear();
    paragraph_depth = -1;
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    int depth = 0;
    while (!line.empty() && line.front() == '>') {
      ++depth;
      line.remove_prefix(1);
    }
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    const bool flowed = !line.empty() && line.back() == ' ' && line != "-- ";
    if (paragraph_depth >= 0 && depth != paragraph_depth) flush();
    paragraph_depth = depth;
    if (flowed && delsp) line.remove_suffix(1);
    paragraph.append(line);
    if (!flowed) flush();
  }
  flush();
  if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

// ---- parts ------------------------------------------------------------------------------------

std::string mime_type(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (type == nullptr) return "application/octet-stream";
  return lower(view(g_mime_content_type_get_media_type(type))) + "/" +
         lower(view(g_mime_content_type_get_media_subtype(type)));
}

bool is_attachment_disposition(GMimeObject* object) {
  return lower(view(g_mime_object_get_disposition(object))) == "attachment";
}

// Hands `bytes` to a sink in pieces of at most 64 KiB.
void feed(std::string_view bytes, const ByteSink& sink) {
  constexpr std::size_t kPiece = 64 * 1024;
  for (std::size_t at = 0; at < bytes.size(); at += kPiece) sink(bytes.substr(at, kPiece));
}

// The decoded content of a leaf part, read from the parser's view of the input and decoded
// piece by piece into `sink`: a 20 MB attachment costs 64 KiB buffers, not its size.
void part_content(GMimePart* part, const ByteSink& sink) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) return;
  GMimeStream* stream = g_mime_data_wrapper_get_stream(content);
  if (stream == nullptr) return;
  const GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
  if (encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
    // uuencode has a "begin" line to find first; GMime's own filter does that (rare enough
    // to be decoded in memory).
    GObjectPtr<GMimeStream> mem(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(content, mem.get());
    GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
    feed(std::string_view(reinterpret_cast<const char*>(bytes->data), bytes->len), sink);
    return;
  }
  const bool decode = encoding == GMIME_CONTENT_ENCODING_BASE64 ||
                      encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
  GMimeEncoding state;
  if (decode) g_mime_encoding_init_decode(&state, encoding);
  g_mime_stream_reset(stream);
  std::size_t chunk = 64 * 1024;
  if (const gint64 length = g_mime_stream_length(stream); length > 0) {
    chunk = std::min(chunk, static_cast<std::size_t>(length) + 1);
  }
  std::vector<char> in(chunk);
  std::vector<char> decoded(decode ? g_mime_encoding_outlen(&state, in.size()) + 16 : 0);
  for (;;) {
    const ssize_t n = g_mime_stream_read(stream, in.data(), in.size());
    if (n <= 0) break;
    if (!decode) {
      sink(std::string_view(in.data(), static_cast<std::size_t>(n)));
      continue;
    }
    const std::size_t written =
        g_mime_encoding_step(&state, in.data(), static_cast<std::size_t>(n), decoded.data());
    if (written > 0) sink(std::string_view(decoded.data(), written));
  }
  if (decode) {
    const std::size_t written = g_mime_encoding_flush(&state, "", 0, decoded.data());
    if (written > 0) sink(std::string_view(decoded.data(), written));
  }
}

// What a parsed message's attachments read from: the input, the stream GMime parsed it from,
// and GMime's tree of it. Shared by the attachments' read functions, so it lives as long as
// the last of them.
struct ParsedSource {
  std::string owned;  // parse_mail's copy of the input; empty when borrowed
  std::string_view raw;
  // Declared before every GMime object so it is freed last: header lists keep a pointer to it.
  std::unique_ptr<GMimeParserOptions, ParserOptionsFree> options;
  // The input's bytes as GMime sees them: a GByteArray over `raw` that neither GMime nor we
  // free through it, so the input is read where it is instead of copied (see open()).
  GByteArray* array = nullptr;
  GObjectPtr<GMimeStream> stream;
  GObjectPtr<GMimeMessage> message;

  ParsedSource() = default;
  ParsedSource(const ParsedSource&) = delete;
  ParsedSource& operator=(const ParsedSource&) = delete;
  ~ParsedSource() {
    message.reset();
    stream.reset();
    if (array != nullptr) {
      g_byte_array_steal(array, nullptr);  // the bytes are raw's: not g_free()d with the array
      g_byte_array_unref(array);
    }
  }

  // A memory stream over `raw` without a copy: g_byte_array_new_take() would free the bytes
  // with the array, so they are stolen back before the array goes (in the destructor), and
  // the stream is told it does not own the array.
  GMimeStream* open() {
    auto* bytes = reinterpret_cast<guint8*>(const_cast<char*>(raw.data()));
    array = g_byte_array_new_take(bytes, raw.size());
    stream.reset(g_mime_stream_mem_new());
    g_mime_stream_mem_set_byte_array(GMIME_STREAM_MEM(stream.get()), array);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream.get()), FALSE);
    return stream.get();
  }
};

// A file name as a reader and a disk can take it: no directories ("../../x" from a hostile
// sender), no control characters.
std::string clean_filename(std::string_view name, Defects& defects) {
  std::string decoded = clean_utf8(trim(name));
  std::string out = decoded;
  if (const auto slash = out.find_last_of("/\\"); slash != std::string::npos)
    out.erase(0, slash + 1);
  out.erase(
      std::remove_if(out.begin(), out.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }),
      out.end());
  if (out == "." || out == "..") out.clear();
  if (out != decoded) {
    defects.add("attachment file name '" + quote_input(decoded) + "' read as '" + out +
                "' (directories and control characters removed)");
  }
  return out;
}

GMimeObject* related_root(GMimeMultipart* related) {
  const int count = g_mime_multipart_get_count(related);
  if (count == 0) return nullptr;
  std::string start(
      trim(view(g_mime_object_get_content_type_parameter(GMIME_OBJECT(related), "start"))));
  if (start.size() >= 2 && start.front() == '<' && start.back() == '>') {
    start = start.substr(1, start.size() - 2);
  }
  if (!start.empty()) {
    for (int i = 0; i < count; ++i) {
      GMimeObject* part = g_mime_multipart_get_part(related, i);
      if (view(g_mime_object_get_content_id(part)) == start) return part;
    }
  }
  return g_mime_multipart_get_part(related, 0);
}

struct Body {
  GMimePart* plain = nullptr;
  GMimePart* html = nullptr;
  bool empty() const { return plain == nullptr && html == nullptr; }
};

// Reads the message tree: chooses the body the way clients do and lists every other leaf.
class TreeReader {
 public:
  TreeReader(std::shared_ptr<ParsedSource> source, ParsedMail& mail, Defects& defects)
      : source_(std::move(source)),
        raw_(source_->raw),
        options_(source_->options.get()),
        mail_(mail),
        defects_(defects) {}

  // The text/plain and text/html a client shows: in multipart/alternative the first plain and
  // the last (richest) HTML alternative, in multipart/related its root, in any other multipart
  // the first part that has a body. Not inside message/rfc822: that is an attachment.
  Body find_body(GMimeObject* object, int depth) {
    if (depth > kMaxMimeDepth) return {};
    if (GMIME_IS_MULTIPART(object)) {
      auto* multipart = GMIME_MULTIPART(object);
      const std::string subtype = lower(
          view(g_mime_content_type_get_media_subtype(g_mime_object_get_content_type(object))));
      const int count = g_mime_multipart_get_count(multipart);
      if (subtype == "alternative") {
        Body body;
        for (int i = 0; i < count; ++i) {
          const Body b = find_body(g_mime_multipart_get_part(multipart, i), depth + 1);
          if (body.plain == nullptr) body.plain = b.plain;
          if (b.html != nullptr) body.html = b.html;
        }
        return body;
      }
      if (subtype == "related") {
        GMimeObject* root = related_root(multipart);
        return root == nullptr ? Body{} : find_body(root, depth + 1);
      }
      if (subtype == "encrypted") return {};
      for (int i = 0; i < count; ++i) {
        const Body b = find_body(g_mime_multipart_get_part(multipart, i), depth + 1);
        if (!b.empty()) return b;
      }
      return {};
    }
    if (!GMIME_IS_PART(object) || is_attachment_disposition(object)) return {};
    const std::string type = mime_type(object);
    if (type == "text/plain") return {GMIME_PART(object), nullptr};
    if (type == "text/html") return {nullptr, GMIME_PART(object)};
    return {};
  }

  // Every leaf that is not `body`, in document order.
  void collect(GMimeObject* object, const Body& body, int depth, bool in_related = false) {
    if (depth > kMaxMimeDepth) {
      defects_.add("MIME parts nested deeper than " + std::to_string(kMaxMimeDepth) +
                   " levels are not read");
      return;
    }
    if (GMIME_IS_MULTIPART(object)) {
      auto* multipart = GMIME_MULTIPART(object);
      boundaries_.emplace_back(view(g_mime_multipart_get_boundary(multipart)));
      const bool related = mime_type(object) == "multipart/related";
      const int count = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < count; ++i) {
        collect(g_mime_multipart_get_part(multipart, i), body, depth + 1, related);
      }
      boundaries_.pop_back();
      return;
    }
    if (object == GMIME_OBJECT(body.plain) || object == GMIME_OBJECT(body.html)) return;
    if (GMIME_IS_MESSAGE_PART(object) || GMIME_IS_PART(object)) add_attachment(object, in_related);
  }

  std::string body_text(GMimePart* part, bool is_html) {
    GMimeObject* object = GMIME_OBJECT(part);
    std::string bytes;
    part_content(part, [&](std::string_view piece) { bytes.append(piece); });
    std::string charset(view(g_mime_object_get_content_type_parameter(object, "charset")));
    if (charset.empty() && is_html) charset = html_meta_charset(bytes);
    Converted converted = to_utf8(bytes, charset);
    if (!converted.defect.empty()) {
      defects_.add(std::string(is_html ? "text/html" : "text/plain") +
                   " body: " + converted.defect);
    }
    std::string text = normalize_newlines(converted.text);
    // A NUL (a raw 0x00, quoted-printable =00) has no place in text, and PostgreSQL refuses
    // it in a text column: such mail could never become a ticket there.
    if (text.find('\0') != std::string::npos) {
      std::string replaced;
      for (const char c : text) {
        if (c == '\0') {
          replaced += "\xEF\xBF\xBD";  // U+FFFD
        } else {
          replaced += c;
        }
      }
      text = std::move(replaced);
      defects_.add(std::string(is_html ? "text/html" : "text/plain") +
                   " body: NUL characters replaced with U+FFFD");
    }
    if (!is_html &&
        lower(view(g_mime_object_get_content_type_parameter(object, "format"))) == "flowed") {
      const bool delsp =
          lower(view(g_mime_object_get_content_type_parameter(object, "delsp"))) == "yes";
      text = unflow(text, delsp);
    }
    return text;
  }

 private:
  void add_attachment(GMimeObject* object, bool in_related) {
    MailAttachment a;
    a.content_type = mime_type(object);
    a.content_id = clean_utf8(view(g_mime_object_get_content_id(object)));
    // Shown in the body: not marked as an attachment, or (as Python and some clients write
    // it) marked so but a resource of multipart/related that the HTML body uses.
    a.is_inline = !a.content_id.empty() &&
                  (!is_attachment_disposition(object) ||
                   (in_related && mail_.html.find("cid:" + a.content_id) != std::string::npos));
    std::string name = declared_filename(object);
    if (GMIME_IS_MESSAGE_PART(object)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      auto bytes = std::make_shared<const std::string>(embedded_message_bytes(inner));
      a.read = [bytes](const ByteSink& sink) { feed(*bytes, sink); };
      if (name.empty()) name = eml_name(inner);
    } else {
      GMimePart* part = GMIME_PART(object);  // owned by the source's message, which `source` keeps
      a.read = [source = source_, part](const ByteSink& sink) { part_content(part, sink); };
    }
    a.filename = clean_filename(name, defects_);
    Sha256 digest;
    a.read([&](std::string_view piece) {
      digest.update(piece);
      a.size += piece.size();
    });
    a.sha256 = digest.hex();
    mail_.attachments.push_back(std::move(a));
  }

  // Content-Disposition's filename, else Content-Type's name (RFC 2231 and RFC 2047 decoded).
  std::string declared_filename(GMimeObject* object) {
    const std::string disposition = raw_header(object, "Content-Disposition");
    const std::string type = raw_header(object, "Content-Type");
    const std::string repaired_disposition = merge_base64_words(disposition);
    const std::string repaired_type = merge_base64_words(type);
    if (repaired_disposition == disposition && repaired_type == type) {
      std::string name(view(g_mime_object_get_content_disposition_parameter(object, "filename")));
      if (name.empty()) name = view(g_mime_object_get_content_type_parameter(object, "name"));
      return name;
    }
    // Encoded words GMime would misread (see merge_base64_words): parse the repaired values.
    std::string name;
    if (!disposition.empty()) {
      GObjectPtr<GMimeContentDisposition> parsed(
          g_mime_content_disposition_parse(options_, repaired_disposition.c_str()));
      if (parsed) name = view(g_mime_content_disposition_get_parameter(parsed.get(), "filename"));
    }
    if (name.empty() && !type.empty()) {
      GObjectPtr<GMimeContentType> parsed(
          g_mime_content_type_parse(options_, repaired_type.c_str()));
      if (parsed) name = view(g_mime_content_type_get_parameter(parsed.get(), "name"));
    }
    return name;
  }

  static std::string raw_header(GMimeObject* object, const char* name) {
    GMimeHeader* header =
        g_mime_header_list_get_header(g_mime_object_get_header_list(object), name);
    return header == nullptr ? std::string()
                             : std::string(view(g_mime_header_get_raw_value(header)));
  }

  std::string eml_name(GMimeMessage* inner) {
    std::string subject =
        inner == nullptr
            ? ""
            : decode_header_value(options_, raw_header(GMIME_OBJECT(inner), "Subject"));
    std::replace_if(
        subject.begin(), subject.end(), [](char c) { return c == '/' || c == '\\'; }, '-');
    subject = std::string(trim(subject));
    if (subject.size() > 200) subject = quote_input(subject, 200);
    return (subject.empty() ? "message" : subject) + ".eml";
  }

  // The embedded message byte for byte as it stands in the input, from its first header to the
  // boundary that ends it; GMime's re-serialization only when the input cannot be located.
  std::string embedded_message_bytes(GMimeMessage* inner) {
    if (inner == nullptr) return {};
    gint64 start = -1;
    auto earliest = [&](GMimeObject* object) {
      if (object == nullptr) return;
      GMimeHeaderList* headers = g_mime_object_get_header_list(object);
      for (int i = 0; i < g_mime_header_list_get_count(headers); ++i) {
        const gint64 offset =
            g_mime_header_get_offset(g_mime_header_list_get_header_at(headers, i));
        if (offset >= 0 && (start < 0 || offset < start)) start = offset;
      }
    };
    earliest(GMIME_OBJECT(inner));
    earliest(g_mime_message_get_mime_part(inner));
    if (start >= 0 && static_cast<std::size_t>(start) < raw_.size()) {
      const auto begin = static_cast<std::size_t>(start);
      std::size_t end = raw_.size();
      for (const std::string& boundary : boundaries_) {
        if (boundary.empty()) continue;
        const std::string delimiter = "\n--" + boundary;
        for (std::size_t at = raw_.find(delimiter, begin); at != std::string_view::npos && at < end;
             at = raw_.find(delimiter, at + 1)) {
          // A delimiter is the whole boundary: a longer one that merely starts the same is not.
          const std::size_t after = at + delimiter.size();
          if (after < raw_.size() &&
              std::string_view(" \t\r\n-").find(raw_[after]) == std::string_view::npos) {
            continue;
          }
          end = at > begin && raw_[at - 1] == '\r' ? at - 1 : at;
          break;
        }
      }
      return std::string(raw_.substr(begin, end - begin));
    }
    std::unique_ptr<GMimeFormatOptions, FormatOptionsFree> format(g_mime_format_options_new());
    g_mime_format_options_set_newline_format(format.get(), GMIME_NEWLINE_FORMAT_DOS);
    GChars text(g_mime_object_to_string(GMIME_OBJECT(inner), format.get()));
    return std::string(view(text.get()));
  }

  std::shared_ptr<ParsedSource> source_;
  std::string_view raw_;
  GMimeParserOptions* options_;
  ParsedMail& mail_;
  Defects& defects_;
  std::vector<std::string> boundaries_;  // of the enclosing multiparts, innermost last
};

// ---- headers ----------------------------------------------------------------------------------

struct HeaderField {
  std::string name;  // lower-case
  std::string value;
  std::string raw_value;
};

struct Mailbox {
  std::string name;
  std::string address;
};

void flatten(InternetAddressList* list, std::vector<Mailbox>& out) {
  if (list == nullptr) return;
  for (int i = 0; i < internet_address_list_length(list); ++i) {
    InternetAddress* address = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(address)) {
      flatten(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address)), out);
    } else if (INTERNET_ADDRESS_IS_MAILBOX(address)) {
      out.push_back(
          {clean_utf8(view(internet_address_get_name(address))),
           clean_utf8(view(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address))))});
    }
  }
}

std::vector<Mailbox> mailboxes(GMimeParserOptions* options, const std::string& raw_value) {
  std::vector<Mailbox> out;
  GObjectPtr<InternetAddressList> list(
      internet_address_list_parse(options, merge_base64_words(raw_value).c_str()));
  flatten(list.get(), out);
  return out;
}

std::vector<std::string> message_ids(GMimeParserOptions* options, const std::string& value) {
  std::vector<std::string> ids;
  std::unique_ptr<GMimeReferences, ReferencesFree> refs(
      g_mime_references_parse(options, value.c_str()));
  if (refs == nullptr) return ids;
  for (int i = 0; i < g_mime_references_length(refs.get()); ++i) {
    std::string id = clean_utf8(trim(view(g_mime_references_get_message_id(refs.get(), i))));
    if (!id.empty()) ids.push_back(std::move(id));
  }
  return ids;
}

const HeaderField* first(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// The top-level headers in input order: GMime keeps the Content-* ones on the top MIME part and
// the others on the message, each with its offset in the input.
std::vector<HeaderField> top_level_headers(GMimeMessage* message, GMimeParserOptions* options) {
  struct Located {
    gint64 offset;
    std::size_t order;
    GMimeHeader* header;
  };
  std::vector<Located> located;
  auto add = [&](GMimeObject* object) {
    if (object == nullptr) return;
    GMimeHeaderList* list = g_mime_object_get_header_list(object);
    for (int i = 0; i < g_mime_header_list_get_count(list); ++i) {
      GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
      located.push_back({g_mime_header_get_offset(h), located.size(), h});
    }
  };
  add(GMIME_OBJECT(message));
  add(g_mime_message_get_mime_part(message));
  std::stable_sort(located.begin(), located.end(), [](const Located& a, const Located& b) {
    if ((a.offset < 0) != (b.offset < 0)) return b.offset < 0;
    return a.offset < b.offset;
  });
  std::vector<HeaderField> fields;
  fields.reserve(located.size());
  for (const auto& l : located) {
    const std::string_view raw = view(g_mime_header_get_raw_value(l.header));
    fields.push_back({lower(clean_utf8(view(g_mime_header_get_name(l.header)))),
                      decode_header_value(options, raw), std::string(raw)});
  }
  return fields;
}

std::string normalized(const std::string& address, std::string_view header, Defects& defects) {
  if (auto n = normalize_address(address)) return *n;
  defects.add(std::string(header) + " address '" + quote_input(address) + "' is not an address");
  return {};
}

void read_headers(GMimeMessage* message, GMimeParserOptions* options, ParsedMail& mail,
                  Defects& defects) {
  const std::vector<HeaderField> fields = top_level_headers(message, options);
  for (const auto& f : fields) mail.headers.emplace_back(f.name, f.value);

  mail.subject = mail.header("subject");

  if (const HeaderField* f = first(fields, "message-id")) {
    GChars id(g_mime_utils_decode_message_id(f->raw_value.c_str()));
    mail.message_id = clean_utf8(trim(view(id.get())));
    if (mail.message_id.empty() && !f->value.empty()) {
      defects.add("Message-ID '" + quote_input(f->value) + "' is not a msg-id; ignored");
    }
  }
  if (const HeaderField* f = first(fields, "in-reply-to")) {
    mail.in_reply_to = message_ids(options, f->raw_value);
  }
  if (const HeaderField* f = first(fields, "references")) {
    mail.references = message_ids(options, f->raw_value);
  }

  if (const HeaderField* f = first(fields, "from")) {
    const auto from = mailboxes(options, f->raw_value);
    if (!from.empty()) {
      mail.from_name = from.front().name;
      mail.from_address = normalized(from.front().address, "From", defects);
    } else if (auto n = normalize_address(f->value)) {
      mail.from_address = *n;
    } else {
      defects.add("From '" + quote_input(f->value) + "' has no address");
    }
  }
  for (const auto& f : fields) {
    if (f.name != "to" && f.name != "cc") continue;
    auto& list = f.name == "to" ? mail.to : mail.cc;
    for (const auto& box : mailboxes(options, f.raw_value)) {
      if (auto address = normalized(box.address, f.name == "to" ? "To" : "Cc", defects);
          !address.empty()) {
        list.push_back(std::move(address));
      }
    }
  }
  if (const HeaderField* f = first(fields, "reply-to")) {
    const auto boxes = mailboxes(options, f->raw_value);
    if (!boxes.empty()) mail.reply_to = normalized(boxes.front().address, "Reply-To", defects);
  }
  if (const HeaderField* f = first(fields, "return-path")) {
    std::string_view path = trim(f->value);
    if (path.size() >= 2 && path.front() == '<' && path.back() == '>')
      path = trim(path.substr(1, path.size() - 2));
    if (path.empty()) {
      mail.return_path = "";
    } else if (auto n = normalize_address(path)) {
      mail.return_path = *n;
    } else if (lower(path) == "mailer-daemon") {
      // Some MTAs write a bounce's null path this way.
      defects.add("Return-Path '" + quote_input(f->value) + "' is not an address; read as <>");
      mail.return_path = "";
    } else {
      // Unreadable ("john smith"@..., a bare local part) is not a bounce: reading it as <>
      // would take a person's mail for one. It is left out.
      defects.add("Return-Path '" + quote_input(f->value) + "' is not an address; ignored");
    }
  }
  if (const HeaderField* f = first(fields, "date")) {
    std::unique_ptr<GDateTime, DateTimeUnref> date(
        g_mime_utils_header_decode_date(f->value.c_str()));
    if (date != nullptr) {
      mail.date = from_epoch(g_date_time_to_unix(date.get()));
    } else {
      defects.add("Date '" + quote_input(f->value) + "' is not an RFC 5322 date; ignored");
    }
  }
}

}  // namespace

namespace {

ParsedMail parse(std::shared_ptr<ParsedSource> source) {
  std::string_view raw = source->raw;
  if (raw.empty()) {
    throw std::invalid_argument(
        "parse_mail: the input is empty; a message has at least a header or a body");
  }
  init_gmime();
  ParsedMail mail;
  Defects defects(mail.defects);
  // Windows tools that save a message as text may put a byte order mark before the headers.
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") {
    raw.remove_prefix(3);
    source->raw = raw;
    defects.add("a UTF-8 byte order mark before the headers; skipped");
  }

  source->options.reset(g_mime_parser_options_new());
  GMimeParserOptions* options = source->options.get();
  g_mime_parser_options_set_rfc2047_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_address_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  // 8-bit header bytes are UTF-8 (RFC 6532) or, from older clients, Windows-1252.
  static const char* const kFallbackCharsets[] = {"utf-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options, const_cast<const char**>(kFallbackCharsets));
  g_mime_parser_options_set_warning_callback(options, on_parser_warning, &defects);
  // The options outlive this function (the attachments' reads keep them): no warning may
  // reach `defects` after it.
  struct Unhook {
    GMimeParserOptions* options;
    ~Unhook() { g_mime_parser_options_set_warning_callback(options, nullptr, nullptr); }
  } unhook{options};

  {
    GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(source->open()));
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    source->message.reset(g_mime_parser_construct_message(parser.get(), options));
  }
  GMimeMessage* message = source->message.get();
  if (message == nullptr) {
    // GMime gives up only on input without a header block at all; the bytes are still what the
    // sender wrote, so they are the text.
    defects.add("no message header block; the whole input read as text");
    mail.text = normalize_newlines(utf8_or_windows1252(raw));
    return mail;
  }

  read_headers(message, options, mail, defects);

  GMimeObject* top = g_mime_message_get_mime_part(message);
  if (top != nullptr) {
    mail.is_report = mime_type(top) == "multipart/report";
    TreeReader reader(source, mail, defects);
    const Body body = reader.find_body(top, 0);
    if (body.plain != nullptr) mail.text = reader.body_text(body.plain, false);
    if (body.html != nullptr) {
      mail.html = reader.body_text(body.html, true);
      if (body.plain == nullptr) mail.text = html_to_text(mail.html);
    }
    reader.collect(top, body, 0);
    if (body.empty() && GMIME_IS_MULTIPART(top) &&
        g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 0) {
      // A multipart whose boundary never appears: everything is in the prologue, and that is
      // what a client shows.
      const std::string prologue(view(g_mime_multipart_get_prologue(GMIME_MULTIPART(top))));
      if (!trim(prologue).empty()) {
        mail.text = normalize_newlines(utf8_or_windows1252(prologue));
        defects.add("multipart without parts; its content read as the text");
      }
    }
  }
  return mail;
}

}  // namespace

ParsedMail parse_mail(std::string_view raw) {
  auto source = std::make_shared<ParsedSource>();
  source->owned.assign(raw);
  source->raw = source->owned;
  return parse(std::move(source));
}

ParsedMail parse_mail_borrowing(std::string_view raw) {
  auto source = std::make_shared<ParsedSource>();
  source->raw = raw;
  return parse(std::move(source));
}

}  // namespace slmhub::mail
