#include "html_text.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace slmhub::mail {
namespace {

// The deepest quote or list level a line shows ("> > >", an indent): every line repeats
// its prefix, so without a bound 100,000 nested <blockquote>s in a message of 1 MB would
// make gigabytes of text. Deeper levels are shown as this one; the nesting is still kept.
constexpr int kDeepestShown = 8;

bool is_html_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_alnum(char c) { return is_ascii_alpha(c) || (c >= '0' && c <= '9'); }
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ---- character references ------------------------------------------------------------------

// HTML 4's Latin-1 entities are U+00A0…U+00FF in this order.
constexpr std::array<std::string_view, 96> kLatin1Entities = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
    "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
    "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
    "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
    "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
    "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
    "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

struct NamedEntity {
  std::string_view name;
  char32_t code_point;
};

// The rest of HTML 4's special and symbol entities that occur in mail, plus HTML5's &apos;.
constexpr std::array<NamedEntity, 62> kOtherEntities = {{
    {"quot", 0x22},     {"amp", 0x26},      {"apos", 0x27},     {"lt", 0x3C},
    {"gt", 0x3E},       {"OElig", 0x152},   {"oelig", 0x153},   {"Scaron", 0x160},
    {"scaron", 0x161},  {"Yuml", 0x178},    {"fnof", 0x192},    {"circ", 0x2C6},
    {"tilde", 0x2DC},   {"ensp", 0x2002},   {"emsp", 0x2003},   {"thinsp", 0x2009},
    {"zwnj", 0x200C},   {"zwj", 0x200D},    {"lrm", 0x200E},    {"rlm", 0x200F},
    {"ndash", 0x2013},  {"mdash", 0x2014},  {"lsquo", 0x2018},  {"rsquo", 0x2019},
    {"sbquo", 0x201A},  {"ldquo", 0x201C},  {"rdquo", 0x201D},  {"bdquo", 0x201E},
    {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022},   {"hellip", 0x2026},
    {"permil", 0x2030}, {"prime", 0x2032},  {"Prime", 0x2033},  {"lsaquo", 0x2039},
    {"rsaquo", 0x203A}, {"oline", 0x203E},  {"frasl", 0x2044},  {"euro", 0x20AC},
    {"trade", 0x2122},  {"larr", 0x2190},   {"uarr", 0x2191},   {"rarr", 0x2192},
    {"darr", 0x2193},   {"harr", 0x2194},   {"rArr", 0x21D2},   {"hArr", 0x21D4},
    {"minus", 0x2212},  {"infin", 0x221E},  {"asymp", 0x2248},  {"ne", 0x2260},
    {"le", 0x2264},     {"ge", 0x2265},     {"sdot", 0x22C5},   {"loz", 0x25CA},
    {"spades", 0x2660}, {"clubs", 0x2663},  {"hearts", 0x2665}, {"diams", 0x2666},
    {"check", 0x2713},  {"nbsp", 0xA0},
}};

constexpr std::array<std::string_view, 25> kGreekCapitals = {
    "Alpha", "Beta",   "Gamma",   "Delta", "Epsilon", "Zeta",    "Eta",  "Theta", "Iota",
    "Kappa", "Lambda", "Mu",      "Nu",    "Xi",      "Omicron", "Pi",   "Rho",   "",
    "Sigma", "Tau",    "Upsilon", "Phi",   "Chi",     "Psi",     "Omega"};

constexpr std::array<std::string_view, 25> kGreekSmall = {
    "alpha", "beta",   "gamma",   "delta", "epsilon", "zeta",    "eta",  "theta", "iota",
    "kappa", "lambda", "mu",      "nu",    "xi",      "omicron", "pi",   "rho",   "sigmaf",
    "sigma", "tau",    "upsilon", "phi",   "chi",     "psi",     "omega"};

// The code point of a named reference (case-sensitive, as HTML defines them), 0 if unknown.
char32_t named_entity(std::string_view name) {
  for (std::size_t i = 0; i < kLatin1Entities.size(); ++i) {
    if (kLatin1Entities[i] == name) return static_cast<char32_t>(0xA0 + i);
  }
  for (const auto& e : kOtherEntities) {
    if (e.name == name) return e.code_point;
  }
  for (std::size_t i = 0; i < kGreekCapitals.size(); ++i) {
    if (!kGreekCapitals[i].empty() && kGreekCapitals[i] == name) {
      return static_cast<char32_t>(0x391 + i);
    }
    if (kGreekSmall[i] == name) return static_cast<char32_t>(0x3B1 + i);
  }
  return 0;
}

// HTML5 reads &#128;…&#159; as the Windows-1252 characters authors meant.
constexpr std::array<char32_t, 32> kWindows1252C1 = {
    0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
    0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};

// Decodes the reference starting at s[0] == '&'. Returns the characters consumed (0 when this is
// not a reference, so the '&' stays literal) and appends the decoded text. &nbsp; becomes a
// plain space: a reader's text has no use for the difference, and Outlook fills empty
// paragraphs with it.
std::size_t decode_reference(std::string_view s, std::string& out) {
  if (s.size() < 2) return 0;
  if (s[1] == '#') {
    std::size_t i = 2;
    const bool hex = i < s.size() && (s[i] == 'x' || s[i] == 'X');
    if (hex) ++i;
    const std::size_t digits_start = i;
    std::uint32_t value = 0;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      int digit = -1;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (hex && c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (hex && c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      }
      if (digit < 0) break;
      value = std::min<std::uint32_t>(value * (hex ? 16 : 10) + static_cast<std::uint32_t>(digit),
                                      0x110000);
    }
    if (i == digits_start) return 0;
    if (i < s.size() && s[i] == ';') ++i;
    char32_t cp = value;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      cp = 0xFFFD;
    } else if (cp >= 0x80 && cp <= 0x9F) {
      cp = kWindows1252C1[cp - 0x80];
    }
    if (cp == 0xA0) cp = ' ';
    append_utf8(out, cp);
    return i;
  }
  std::size_t i = 1;
  while (i < s.size() && i < 40 && is_ascii_alnum(s[i])) ++i;
  const std::string_view name = s.substr(1, i - 1);
  if (name.empty()) return 0;
  const bool terminated = i < s.size() && s[i] == ';';
  // Without the ';' only the few references sloppy HTML writes that way count, and not when a
  // letter or '=' follows (a URL's "&copy=2" is a parameter, not ©).
  if (!terminated) {
    static constexpr std::array<std::string_view, 5> kBare = {"amp", "lt", "gt", "quot", "nbsp"};
    if (std::find(kBare.begin(), kBare.end(), name) == kBare.end()) return 0;
    if (i < s.size() && s[i] == '=') return 0;
  }
  char32_t cp = named_entity(name);
  if (cp == 0) return 0;
  if (cp == 0xA0) cp = ' ';
  append_utf8(out, cp);
  return terminated ? i + 1 : i;
}

std::string decode_references(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '&') {
      if (const std::size_t used = decode_reference(s.substr(i), out); used > 0) {
        i += used;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

// ---- the text being written -------------------------------------------------------------------

// Collects the rendered text. Line structure is decided lazily: a block boundary only asks for
// a line break, which is written before the next visible text, so empty elements and trailing
// markup never leave blank lines behind.
class TextWriter {
 public:
  // Words of collapsed text (no whitespace inside) and verbatim text of <pre>.
  void word(std::string_view w) {
    start_piece();
    if (space_ && !at_line_start_) out_ += ' ';
    out_.append(w);
    space_ = false;
    at_line_start_ = false;
  }
  void verbatim(std::string_view text) {
    for (const char c : text) {
      if (c == '\r') continue;
      if (c == '\n') {
        newline_now();
        continue;
      }
      start_piece();
      out_ += c;
      at_line_start_ = false;
    }
  }
  void space() { space_ = true; }
  // 1: the next text starts a new line; 2: with a blank line before it.
  void block(int lines) { newlines_ = std::max(newlines_, lines); }
  void line_break() { newlines_ = std::min(newlines_ + 1, 2); }
  void bullet(std::string marker) { bullet_ = std::move(marker); }
  void quote(int delta) { quote_depth_ = std::max(0, quote_depth_ + delta); }

  std::string finish() {
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\n')) out_.pop_back();
    return std::move(out_);
  }

 private:
  void trim_line_end() {
    while (!out_.empty() && out_.back() == ' ') out_.pop_back();
  }
  void newline_now() {
    start_piece();
    trim_line_end();
    out_ += '\n';
    at_line_start_ = true;
    line_depth_ = quote_depth_;
  }
  // Writes the pending line breaks and, at a line start, the quote prefix and list marker.
  void start_piece() {
    if (out_.empty()) {
      newlines_ = 0;  // no blank lines at the top
      at_line_start_ = true;
    }
    if (newlines_ > 0) {
      trim_line_end();
      out_ += '\n';
      if (newlines_ > 1) {
        // A blank line between two quote levels belongs to the shallower one.
        out_.append(static_cast<std::size_t>(std::min({line_depth_, quote_depth_, kDeepestShown})),
                    '>');
        out_ += '\n';
      }
      newlines_ = 0;
      at_line_start_ = true;
    }
    if (at_line_start_) {
      if (quote_depth_ > 0) {
        out_.append(static_cast<std::size_t>(std::min(quote_depth_, kDeepestShown)), '>');
        out_ += ' ';
      }
      if (!bullet_.empty()) {
        out_ += bullet_;
        bullet_.clear();
      }
      line_depth_ = quote_depth_;
      space_ = false;
    }
  }

  std::string out_;
  int newlines_ = 0;
  bool space_ = false;
  bool at_line_start_ = true;
  int quote_depth_ = 0;
  int line_depth_ = 0;
  std::string bullet_;
};

// ---- tags -------------------------------------------------------------------------------------

struct Tag {
  std::string name;  // lower-case
  bool closing = false;
  bool self_closing = false;
  std::string href, alt, start;  // the attributes this rendering uses, references decoded
};

// An href as a browser reads it (WHATWG URL): tabs and line breaks removed, leading and trailing
// blanks trimmed, so a link target written out stays one word on one line.
std::string url_of(std::string value) {
  std::erase_if(value, [](char c) { return c == '\t' || c == '\n' || c == '\r'; });
  std::size_t begin = 0;
  std::size_t end = value.size();
  while (begin < end && is_html_space(value[begin])) ++begin;
  while (end > begin && is_html_space(value[end - 1])) --end;
  return value.substr(begin, end - begin);
}

// Parses the tag starting at s[0] == '<' (the caller checked that a name or '/' + name follows).
// Returns the characters consumed.
std::size_t parse_tag(std::string_view s, Tag& tag) {
  std::size_t i = 1;
  if (s[i] == '/') {
    tag.closing = true;
    ++i;
  }
  const std::size_t name_start = i;
  while (i < s.size() && !is_html_space(s[i]) && s[i] != '>' && s[i] != '/') ++i;
  tag.name = lower(s.substr(name_start, i - name_start));
  while (i < s.size()) {
    while (i < s.size() && (is_html_space(s[i]) || s[i] == '/')) {
      if (s[i] == '/') tag.self_closing = true;
      ++i;
    }
    if (i >= s.size()) break;
    if (s[i] == '>') return i + 1;
    tag.self_closing = false;
    const std::size_t attr_start = i;
    while (i < s.size() && !is_html_space(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/') {
      ++i;
    }
    const std::string attr = lower(s.substr(attr_start, i - attr_start));
    while (i < s.size() && is_html_space(s[i])) ++i;
    std::string_view value;
    if (i < s.size() && s[i] == '=') {
      ++i;
      while (i < s.size() && is_html_space(s[i])) ++i;
      if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
        const char quote = s[i++];
        const std::size_t end = std::min(s.find(quote, i), s.size());
        value = s.substr(i, end - i);
        i = end + 1;
      } else {
        const std::size_t value_start = i;
        while (i < s.size() && !is_html_space(s[i]) && s[i] != '>') ++i;
        value = s.substr(value_start, i - value_start);
      }
    }
    if (attr == "href") {
      tag.href = url_of(decode_references(value));
    } else if (attr == "alt") {
      tag.alt = std::string(value);  // decoded where it is written out
    } else if (attr == "start") {
      tag.start = std::string(value);
    }
  }
  return std::min(i, s.size());
}

// Elements set off by a blank line (2) or starting a new line (1); 0 for inline elements.
int block_kind(std::string_view name) {
  static constexpr std::array<std::string_view, 16> kParagraphs = {
      "p",  "h1", "h2",         "h3",  "h4",    "h5", "h6",     "ul",
      "ol", "dl", "blockquote", "pre", "table", "hr", "figure", "address"};
  static constexpr std::array<std::string_view, 26> kLines = {
      "div",      "li",     "tr",      "dt",         "dd",      "section", "article",
      "header",   "footer", "nav",     "aside",      "main",    "center",  "form",
      "fieldset", "legend", "caption", "figcaption", "details", "summary", "body",
      "html",     "thead",  "tbody",   "tfoot",      "option"};
  if (std::find(kParagraphs.begin(), kParagraphs.end(), name) != kParagraphs.end()) return 2;
  if (std::find(kLines.begin(), kLines.end(), name) != kLines.end()) return 1;
  return 0;
}

// Elements whose content is never shown.
bool is_hidden_raw_text(std::string_view name) {
  return name == "script" || name == "style" || name == "title" || name == "template";
}

// "https://Example.org/" and "example.org" say the same to a reader.
std::string link_key(std::string_view s) {
  std::string k = lower(s);
  for (std::string_view prefix : {"mailto:", "tel:", "https://", "http://"}) {
    if (k.rfind(prefix, 0) == 0) {
      k.erase(0, prefix.size());
      break;
    }
  }
  while (!k.empty() && k.back() == '/') k.pop_back();
  return k;
}

// Text with its whitespace runs made one space and trimmed, as a reader sees it.
std::string collapse(std::string_view s) {
  std::string out;
  bool space = false;
  for (const char c : s) {
    if (is_html_space(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

struct ListLevel {
  bool ordered = false;
  long next = 1;
};

class Renderer {
 public:
  std::string run(std::string_view html) {
    std::size_t i = 0;
    while (i < html.size()) {
      if (html[i] != '<') {
        const std::size_t end = std::min(html.find('<', i), html.size());
        text(html.substr(i, end - i));
        i = end;
        continue;
      }
      const std::string_view rest = html.substr(i);
      if (rest.substr(0, 4) == "<!--") {
        const std::size_t end = html.find("-->", i + 4);
        i = end == std::string_view::npos ? html.size() : end + 3;
      } else if (rest.size() > 1 && (rest[1] == '!' || rest[1] == '?')) {
        const std::size_t end = html.find('>', i);  // doctype, <![if …]>, <?xml …?>
        i = end == std::string_view::npos ? html.size() : end + 1;
      } else if (rest.size() > 1 &&
                 (is_ascii_alpha(rest[1]) ||
                  (rest[1] == '/' && rest.size() > 2 && is_ascii_alpha(rest[2])))) {
        Tag tag;
        i += parse_tag(rest, tag);
        if (!tag.closing && !tag.self_closing && is_hidden_raw_text(tag.name)) {
          i = skip_raw_text(html, i, tag.name);
          continue;
        }
        handle(tag);
      } else {
        text(html.substr(i, 1));
        ++i;
      }
    }
    return out_.finish();
  }

 private:
  static std::size_t skip_raw_text(std::string_view html, std::size_t from, std::string_view name) {
    for (std::size_t i = html.find("</", from); i != std::string_view::npos;
         i = html.find("</", i + 2)) {
      if (iequals(html.substr(i + 2, name.size()), name)) {
        const std::size_t end = html.find('>', i);
        return end == std::string_view::npos ? html.size() : end + 1;
      }
    }
    return html.size();
  }

  void text(std::string_view raw) {
    if (in_head_) return;
    const std::string decoded = decode_references(raw);
    if (link_.open) link_.text += decoded;
    if (pre_depth_ > 0) {
      std::string_view v = decoded;
      if (skip_pre_newline_ && !v.empty() && v.front() == '\n') v.remove_prefix(1);
      if (skip_pre_newline_ && v.substr(0, 2) == "\r\n") v.remove_prefix(2);
      skip_pre_newline_ = false;
      out_.verbatim(v);
      return;
    }
    std::size_t i = 0;
    while (i < decoded.size()) {
      // U+00A0 written as a character is the same space as &nbsp;.
      if (is_html_space(decoded[i]) ||
          (decoded[i] == '\xC2' && i + 1 < decoded.size() && decoded[i + 1] == '\xA0')) {
        out_.space();
        i += is_html_space(decoded[i]) ? 1 : 2;
        continue;
      }
      std::size_t end = i;
      while (end < decoded.size() && !is_html_space(decoded[end]) &&
             !(decoded[end] == '\xC2' && end + 1 < decoded.size() && decoded[end + 1] == '\xA0')) {
        ++end;
      }
      out_.word(std::string_view(decoded).substr(i, end - i));
      i = end;
    }
  }

  void handle(const Tag& tag) {
    const std::string& n = tag.name;
    if (n == "head") {
      in_head_ = !tag.closing;
      return;
    }
    if (n == "body") in_head_ = false;
    if (in_head_) return;
    if (n == "br") {
      out_.line_break();
      return;
    }
    if (n == "td" || n == "th") {
      out_.space();
      return;
    }
    if (n == "img") {
      if (!tag.alt.empty()) {
        out_.space();
        text(tag.alt);
        out_.space();
      }
      return;
    }
    if (n == "a") {
      if (tag.closing) {
        close_link();
      } else {
        close_link();  // an <a> left open ends where the next one begins
        if (!tag.self_closing) link_ = Link{tag.href, {}, true};
      }
      return;
    }
    if (n == "pre") {
      out_.block(2);
      pre_depth_ = std::max(0, pre_depth_ + (tag.closing ? -1 : 1));
      skip_pre_newline_ = !tag.closing;
      return;
    }
    if (n == "blockquote") {
      out_.block(2);
      out_.quote(tag.closing ? -1 : 1);
      return;
    }
    if (n == "ul" || n == "ol") {
      out_.block(lists_.empty() || (tag.closing && lists_.size() == 1) ? 2 : 1);
      if (tag.closing) {
        if (!lists_.empty()) lists_.pop_back();
      } else if (!tag.self_closing) {
        ListLevel level{n == "ol", 1};
        if (!tag.start.empty()) {
          long start = 0;
          bool digits = tag.start.size() < 10;
          for (const char c : tag.start) {
            if (c < '0' || c > '9') {
              digits = false;
              break;
            }
            start = start * 10 + (c - '0');
          }
          if (digits) level.next = start;
        }
        lists_.push_back(level);
      }
      return;
    }
    if (n == "li") {
      out_.block(1);
      if (!tag.closing) {
        const std::size_t depth =
            std::clamp<std::size_t>(lists_.size(), 1, static_cast<std::size_t>(kDeepestShown));
        std::string marker((depth - 1) * 2, ' ');
        if (!lists_.empty() && lists_.back().ordered) {
          marker += std::to_string(lists_.back().next++) + ". ";
        } else {
          marker += "- ";
        }
        out_.bullet(std::move(marker));
      }
      return;
    }
    if (const int kind = block_kind(n); kind > 0) out_.block(kind);
  }

  void close_link() {
    if (!link_.open) return;
    link_.open = false;
    const std::string& href = link_.href;
    if (href.empty() || href.front() == '#' || link_key(href).rfind("javascript:", 0) == 0) {
      return;
    }
    const std::string shown = collapse(link_.text);
    if (!shown.empty() && link_key(shown) == link_key(href)) return;
    const std::string target = lower(href).rfind("mailto:", 0) == 0 ? href.substr(7) : href;
    if (!shown.empty() && link_key(shown) == link_key(target)) return;
    out_.space();
    out_.word(shown.empty() ? target : "(" + target + ")");
  }

  struct Link {
    std::string href;
    std::string text;  // what the reader sees of the link, references decoded
    bool open = false;
  };

  TextWriter out_;
  std::vector<ListLevel> lists_;
  Link link_;
  int pre_depth_ = 0;
  bool skip_pre_newline_ = false;
  bool in_head_ = false;
};

}  // namespace

std::string html_to_text(std::string_view html) { return Renderer().run(html); }

}  // namespace slmhub::mail
