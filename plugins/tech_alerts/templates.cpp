// Templates are checked with a tokenizer of our own, because the Mustache library reports
// errors as byte offsets and checks no names; the library then only renders text we have
// already accepted. Two things are done at load so that render stays a walk over a parsed tree:
// standalone tag lines are removed (see strip_standalone_lines) and each template is parsed
// once.
#include "templates.hpp"

#include <kainjow/mustache.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "slmhub/digest.hpp"

namespace slmhub::alerts {

namespace mstch = kainjow::mustache;

struct Templates::Compiled {
  explicit Compiled(const std::string& text) : engine(text) {}
  // kainjow's render is not const, but for templates without partials and lambdas (which load
  // refuses and to_data never creates) it only reads the parsed tree: each render has its own
  // context, and the error message it could write is only set by partials and lambdas. So one
  // parsed template serves concurrent renders.
  mutable mstch::mustache engine;
  bool one_line = false;  // a subject
};

namespace {

constexpr std::string_view kSuffix = ".mustache";

// A character no alert text has any use for (a C0 control), see strip_standalone_lines. It is
// removed from every rendered text, including any that came from the data.
constexpr char kKeepLine = '\x01';

enum class TagKind { variable, raw, section, inverted, close, comment, partial, delimiter };

// A slice of the template: literal text or one tag with its trimmed name.
struct Token {
  bool is_tag = false;
  std::size_t begin = 0;  // [begin, end) in the template text, delimiters included
  std::size_t end = 0;
  TagKind kind = TagKind::variable;
  std::string name;
  int line = 1;  // of the tag's opening braces
};

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string trim(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_blank(text[begin])) ++begin;
  while (end > begin && is_blank(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

[[noreturn]] void fail(const std::string& origin, int line, const std::string& what) {
  throw TemplateError(origin + ":" + std::to_string(line) + ": " + what);
}

// The same tag grammar kainjow parses with the default delimiters: "{{{" opens a tag closed
// by "}}}", any other "{{" one closed by "}}", the first character after the braces says
// what it is and the rest, trimmed, is the name.
std::vector<Token> tokenize(const std::string& text, const std::string& origin) {
  std::vector<Token> tokens;
  std::size_t pos = 0;
  std::size_t counted = 0;  // newlines are counted in text[0, counted)
  int line = 1;
  const auto line_at = [&](std::size_t at) {
    line += static_cast<int>(std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                                        text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
    counted = at;
    return line;
  };
  const auto literal = [&tokens](std::size_t begin, std::size_t end) {
    Token token;
    token.begin = begin;
    token.end = end;
    tokens.push_back(std::move(token));
  };
  while (pos < text.size()) {
    const std::size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      literal(pos, text.size());
      break;
    }
    if (open > pos) literal(pos, open);
    Token tag;
    tag.is_tag = true;
    tag.begin = open;
    tag.line = line_at(open);
    const bool triple = open + 2 < text.size() && text[open + 2] == '{';
    const std::string_view closer = triple ? "}}}" : "}}";
    const std::size_t contents = open + (triple ? 3 : 2);
    const std::size_t close = text.find(closer, contents);
    if (close == std::string::npos) {
      fail(origin, tag.line,
           "unclosed tag: '" + std::string(triple ? "{{{" : "{{") + "' without '" +
               std::string(closer) + "'");
    }
    tag.end = close + closer.size();
    std::string inside = trim(std::string_view(text).substr(contents, close - contents));
    if (triple) {
      tag.kind = TagKind::raw;
    } else if (!inside.empty()) {
      switch (inside.front()) {
        case '#':
          tag.kind = TagKind::section;
          break;
        case '^':
          tag.kind = TagKind::inverted;
          break;
        case '/':
          tag.kind = TagKind::close;
          break;
        case '&':
          tag.kind = TagKind::raw;
          break;
        case '!':
          tag.kind = TagKind::comment;
          break;
        case '>':
          tag.kind = TagKind::partial;
          break;
        case '=':
          tag.kind = TagKind::delimiter;
          break;
        default:
          break;
      }
      if (tag.kind != TagKind::variable) inside = trim(std::string_view(inside).substr(1));
    }
    tag.name = std::move(inside);
    tokens.push_back(std::move(tag));
    pos = tokens.back().end;
  }
  return tokens;
}

// What a name means at render time, the way kainjow looks it up: "." is the innermost pushed
// value; otherwise, from the innermost value outwards, the first one in which every dotted
// part resolves. nullptr when nothing does. Empty parts ("a..b", "a.") never resolve: kainjow
// would quietly read "a." as "a".
const Json* resolve(const std::vector<const Json*>& stack, const std::string& name) {
  if (name == ".") return stack.back();
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = name.find('.', begin);
    parts.push_back(name.substr(begin, dot == std::string::npos ? dot : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  if (std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); })) {
    return nullptr;
  }
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
    const Json* value = *it;
    for (const auto& part : parts) {
      if (!value->is_object()) {
        value = nullptr;
        break;
      }
      const auto found = value->find(part);
      if (found == value->end()) {
        value = nullptr;
        break;
      }
      value = &*found;
    }
    if (value) return value;
  }
  return nullptr;
}

// Every tag is allowed and every name resolves against `sample`, with the context stack
// render would have: a section over a list pushes its first item, over anything else that
// value; an inverted section renders only when its value is false or empty, so it pushes
// nothing a name could resolve in.
void check(const std::string& text, const std::vector<Token>& tokens, const Json& sample,
           const std::string& origin) {
  const Json nothing;                        // pushed by inverted sections
  const Json empty_object = Json::object();  // the item of a list the sample leaves empty
  std::vector<const Json*> stack{&sample};
  struct Open {
    std::string name;
    int line;
  };
  std::vector<Open> open;
  for (const auto& token : tokens) {
    if (!token.is_tag) continue;
    const std::string& name = token.name;
    switch (token.kind) {
      case TagKind::comment:
        continue;
      case TagKind::partial:
        fail(origin, token.line,
             "partials are not supported (" + text.substr(token.begin, token.end - token.begin) +
                 ")");
      case TagKind::delimiter:
        fail(origin, token.line,
             "delimiter changes are not supported (" +
                 text.substr(token.begin, token.end - token.begin) + ")");
      case TagKind::close:
        if (open.empty()) fail(origin, token.line, "'{{/" + name + "}}' closes no open section");
        if (open.back().name != name) {
          fail(origin, token.line,
               "'{{/" + name + "}}' does not close section '" + open.back().name +
                   "' opened on line " + std::to_string(open.back().line));
        }
        open.pop_back();
        stack.pop_back();
        continue;
      default:
        break;
    }
    if (name.empty()) fail(origin, token.line, "empty tag");
    if (name == "." && stack.size() == 1) {
      fail(origin, token.line, "'.' is only allowed inside a section");
    }
    const Json* value = resolve(stack, name);
    if (!value) fail(origin, token.line, "unknown variable '" + name + "'");
    if (token.kind == TagKind::section) {
      open.push_back({name, token.line});
      stack.push_back(value->is_array() ? (value->empty() ? &empty_object : &value->front())
                                        : value);
    } else if (token.kind == TagKind::inverted) {
      open.push_back({name, token.line});
      stack.push_back(&nothing);
    } else if (value->is_array() || value->is_object()) {
      fail(origin, token.line,
           "'" + name + "' is " + (value->is_array() ? "a list" : "an object") +
               " and would print nothing; use {{#" + name + "}}...{{/" + name + "}}");
    }
  }
  if (!open.empty()) fail(origin, open.back().line, "unclosed section '" + open.back().name + "'");
}

bool removable_on_own_line(const Token& token) {
  return token.kind == TagKind::section || token.kind == TagKind::inverted ||
         token.kind == TagKind::close || token.kind == TagKind::comment;
}

// The Mustache spec removes a line that holds nothing but section or comment tags and blanks,
// whatever the data. kainjow 4.1 decides while rendering instead: it drops an output line that
// came out blank if a section was rendered on it, and keeps it otherwise. So a false section
// on its own line leaves a blank line behind, and a blank line the author wrote disappears when
// a section tag ends up on it. Since the spec's rule does not depend on the data, it is applied
// once here: such lines keep their tags and lose the blanks and the line break. Every line
// break left is preceded by kKeepLine, which is rendered exactly when the break is, so kainjow
// never sees a blank line to drop; render() removes the marks. (Allowing several tags on one
// such line is a small extension of the spec.)
std::string strip_standalone_lines(const std::string& text, const std::vector<Token>& tokens) {
  std::string out;
  out.reserve(text.size());
  struct Piece {
    std::size_t begin, end;
    const Token* tag;  // nullptr for text
  };
  std::vector<Piece> line;
  const auto flush = [&](bool newline) {
    bool has_tag = false;
    bool standalone = true;
    for (const auto& piece : line) {
      if (piece.tag) {
        has_tag = true;
        standalone = standalone && removable_on_own_line(*piece.tag);
      } else {
        for (std::size_t i = piece.begin; i < piece.end; ++i) {
          standalone = standalone && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r');
        }
      }
    }
    for (const auto& piece : line) {
      if (!standalone || !has_tag || piece.tag)
        out.append(text, piece.begin, piece.end - piece.begin);
    }
    if (newline && !(standalone && has_tag)) out.append({kKeepLine, '\n'});
    line.clear();
  };
  for (const auto& token : tokens) {
    if (token.is_tag) {
      line.push_back({token.begin, token.end, &token});
      continue;
    }
    std::size_t begin = token.begin;
    while (true) {
      const std::size_t newline = text.find('\n', begin);
      if (newline == std::string::npos || newline >= token.end) {
        if (begin < token.end) line.push_back({begin, token.end, nullptr});
        break;
      }
      if (begin < newline) line.push_back({begin, newline, nullptr});
      flush(true);
      begin = newline + 1;
    }
  }
  flush(false);
  if (!out.empty()) out += kKeepLine;
  return out;
}

// A subject header is one line: every run of blanks that holds a line break becomes one space.
std::string one_line(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_blank(text[i])) {
      out += text[i++];
      continue;
    }
    const std::size_t run = i;
    bool breaks = false;
    for (; i < text.size() && is_blank(text[i]); ++i) {
      breaks = breaks || text[i] == '\n' || text[i] == '\r';
    }
    if (breaks) {
      out += ' ';
    } else {
      out.append(text, run, i - run);
    }
  }
  return trim(out);
}

// JSON as kainjow data. An empty string becomes false, as null does, so that a section over an
// optional text ({{#alert.window}}) disappears when there is none; as a variable it still
// prints nothing.
mstch::data to_data(const Json& value) {
  switch (value.type()) {
    case Json::value_t::object: {
      mstch::data object{mstch::data::type::object};
      for (const auto& [key, item] : value.items()) object[key] = to_data(item);
      return object;
    }
    case Json::value_t::array: {
      mstch::data list{mstch::data::type::list};
      for (const auto& item : value) list.push_back(to_data(item));
      return list;
    }
    case Json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (text.empty()) return mstch::data{false};
      return mstch::data{text};
    }
    case Json::value_t::boolean:
      return mstch::data{value.get<bool>()};
    case Json::value_t::number_integer:
      return mstch::data{std::to_string(value.get<std::int64_t>())};
    case Json::value_t::number_unsigned:
      return mstch::data{std::to_string(value.get<std::uint64_t>())};
    case Json::value_t::number_float:  // not expected in alert contexts; its shortest text
      return mstch::data{value.dump()};
    default:  // null, binary, discarded
      return mstch::data{false};
  }
}

std::string describe_names(const std::vector<std::string>& kinds) {
  std::string text = "default";
  for (const auto& kind : kinds) text += ", " + kind;
  return text;
}

// "<kind>.<channel>.<part>" with a known kind and a part the channel has; the message says
// what is allowed.
void check_name(const std::string& name, const std::vector<std::string>& kinds,
                const std::string& origin) {
  const std::size_t first = name.find('.');
  const std::size_t second = first == std::string::npos ? first : name.find('.', first + 1);
  const bool shaped =
      second != std::string::npos && name.find('.', second + 1) == std::string::npos;
  const std::string kind = shaped ? name.substr(0, first) : "";
  const std::string channel = shaped ? name.substr(first + 1, second - first - 1) : "";
  const std::string part = shaped ? name.substr(second + 1) : "";
  const bool known_kind =
      kind == "default" || std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  const bool known_part =
      (channel == "email" && (part == "subject" || part == "text" || part == "html")) ||
      (channel == "webhook" && part == "text");
  if (shaped && known_kind && known_part) return;
  throw TemplateError(origin + ": template name '" + name +
                      "' is not <kind>.<channel>.<part> with kind one of " + describe_names(kinds) +
                      ", and channel.part one of email.subject, email.text, email.html, "
                      "webhook.text");
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) throw TemplateError(path.string() + ": cannot read the template file");
  return text.str();
}

}  // namespace

Templates::Templates(std::map<std::string, std::string> builtin, const std::string& dir,
                     const std::vector<std::string>& kinds, const Json& sample) {
  struct Source {
    std::string origin;
    std::string text;
  };
  std::map<std::string, Source> sources;
  for (auto& [name, text] : builtin) {
    const std::string origin = "built-in " + name;
    check_name(name, kinds, origin);
    sources[name] = {origin, std::move(text)};
  }
  if (!dir.empty()) {
    std::error_code error;
    std::vector<std::filesystem::path> files;
    for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
         it.increment(error)) {
      const std::string file = it->path().filename().string();
      if (file.size() > kSuffix.size() && file.ends_with(kSuffix) && it->is_regular_file()) {
        files.push_back(it->path());
      }
    }
    if (error) {
      throw TemplateError(dir + ": cannot read the template directory: " + error.message());
    }
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
      const std::string file = path.filename().string();
      const std::string name = file.substr(0, file.size() - kSuffix.size());
      check_name(name, kinds, path.string());
      sources[name] = {path.string(), read_file(path)};
    }
  }
  for (const auto& [name, source] : sources) {
    const std::vector<Token> tokens = tokenize(source.text, source.origin);
    check(source.text, tokens, sample, source.origin);
    auto compiled = std::make_shared<Compiled>(strip_standalone_lines(source.text, tokens));
    if (!compiled->engine.is_valid()) {
      // Not expected: the tokenizer accepts only what kainjow parses.
      throw TemplateError(source.origin + ": " + compiled->engine.error_message());
    }
    if (name.ends_with(".html")) {
      compiled->engine.set_custom_escape([](const std::string& s) { return escape_html(s); });
    } else {
      compiled->engine.set_custom_escape([](const std::string& text) { return text; });
    }
    compiled->one_line = name.ends_with(".subject");
    templates_[name] = {source.origin, std::move(compiled)};
  }
}

const Templates::Entry& Templates::find(const std::string& kind, const std::string& channel,
                                        const std::string& part) const {
  if (const auto it = templates_.find(kind + "." + channel + "." + part); it != templates_.end()) {
    return it->second;
  }
  if (const auto it = templates_.find("default." + channel + "." + part); it != templates_.end()) {
    return it->second;
  }
  throw std::out_of_range("no template " + kind + "." + channel + "." + part + " nor default." +
                          channel + "." + part);
}

std::string Templates::render(const std::string& kind, const std::string& channel,
                              const std::string& part, const Json& context) const {
  const Compiled& compiled = *find(kind, channel, part).compiled;
  const mstch::data data = to_data(context);
  std::string out;
  compiled.engine.render(data, [&out](const std::string& piece) { out += piece; });
  std::erase(out, kKeepLine);
  return compiled.one_line ? one_line(out) : out;
}

std::string Templates::origin(const std::string& kind, const std::string& channel,
                              const std::string& part) const {
  return find(kind, channel, part).origin;
}

std::vector<std::string> Templates::names() const {
  std::vector<std::string> names;
  for (const auto& entry : templates_) names.push_back(entry.first);
  return names;
}

Json sample_context() {
  return Json{
      {"alert",
       {{"id", "TA-000001"},
        {"kind", "planned_outage"},
        {"kind_label", "Planned outage"},
        {"title", "Oracle Database (Production) patching"},
        {"summary",
         "The production Oracle database will be unavailable while the quarterly security "
         "patches are applied.\nApplications that use it will show an error page during the "
         "window."},
        {"is_update", false},
        {"is_cancellation", false},
        {"sequence", 0},
        {"refers_to", "TA-000000"},
        {"start", "2026-12-12T08:00:00Z"},
        {"end", "2026-12-12T12:00:00Z"},
        {"start_local", "Sat 12 Dec 2026 02:00 CST"},
        {"end_local", "Sat 12 Dec 2026 06:00 CST"},
        {"window", "Sat 12 Dec 2026 02:00\u201306:00 CST"},
        {"maintenance", "CHG0001234"},
        {"interruption", "INC0001234"},
        {"sent_at", "2026-11-20T15:00:00Z"}}},
      {"services", Json::array({{{"id", "oracle-prod"},
                                 {"name", "Oracle Database (Production)"},
                                 {"environment", "production"}}})},
      {"provider",
       {{"name", "Example Data Centre"},
        {"status_url", "http://127.0.0.1:8080/status"},
        {"calendar_url", "http://127.0.0.1:8080/maintenance.ics"}}},
      {"recipient",
       {{"address", "dba@example.org"},
        {"unsubscribe_url",
         "http://127.0.0.1:8080/alerts/unsubscribe?address=dba%40example.org&token=3f9a2c"}}}};
}

std::map<std::string, std::string> builtin_templates() {
  std::map<std::string, std::string> templates;
  // Written over several lines for reading; a subject is rendered on one line.
  templates["default.email.subject"] = R"([{{alert.id}}]
{{#alert.is_cancellation}}Cancelled:{{/alert.is_cancellation}}
{{^alert.is_cancellation}}{{#alert.is_update}}Update:{{/alert.is_update}}{{/alert.is_cancellation}}
{{alert.kind_label}} - {{alert.title}}
{{#alert.window}}({{alert.window}}){{/alert.window}}
)";

  templates["default.email.text"] = R"({{provider.name}} Tech Alert {{alert.id}}
{{#alert.is_cancellation}}
CANCELLED: this notice withdraws {{#alert.refers_to}}{{alert.refers_to}}{{/alert.refers_to}}{{^alert.refers_to}}an earlier notice{{/alert.refers_to}}.
{{/alert.is_cancellation}}
{{^alert.is_cancellation}}
{{#alert.is_update}}
UPDATE {{alert.sequence}}{{#alert.refers_to}} to {{alert.refers_to}}{{/alert.refers_to}}: this notice replaces the earlier one.
{{/alert.is_update}}
{{/alert.is_cancellation}}

{{alert.kind_label}}: {{alert.title}}

{{#alert.window}}
When:      {{alert.window}}
{{/alert.window}}
{{^alert.window}}
{{#alert.start_local}}
Start:     {{alert.start_local}}
{{/alert.start_local}}
{{#alert.end_local}}
End:       {{alert.end_local}}
{{/alert.end_local}}
{{/alert.window}}
Services:
{{#services}}
  - {{name}} ({{environment}})
{{/services}}
{{#alert.maintenance}}
Change:    {{alert.maintenance}}
{{/alert.maintenance}}
{{#alert.interruption}}
Incident:  {{alert.interruption}}
{{/alert.interruption}}

{{alert.summary}}

Current status:       {{provider.status_url}}
Maintenance calendar: {{provider.calendar_url}}

--
Sent to {{recipient.address}} by {{provider.name}} at {{alert.sent_at}}.
{{#recipient.unsubscribe_url}}
Unsubscribe: {{recipient.unsubscribe_url}}
{{/recipient.unsubscribe_url}}
)";

  templates["default.email.html"] = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{alert.kind_label}}: {{alert.title}}</title>
</head>
<body style="margin:0;padding:0;background:#f3f4f6;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6;">
<tr><td align="center" style="padding:16px 8px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border:1px solid #d1d5db;border-radius:4px;font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#111827;">
<tr><td style="padding:16px 20px;border-bottom:1px solid #e5e7eb;font-size:13px;color:#4b5563;">{{provider.name}} &middot; Tech Alert {{alert.id}}</td></tr>
<tr><td style="padding:16px 20px 0;">
{{#alert.is_cancellation}}
<p style="margin:0 0 8px;"><span style="display:inline-block;padding:2px 8px;border-radius:3px;background:#6b7280;color:#ffffff;font-size:13px;font-weight:bold;">Cancelled</span> This notice withdraws {{#alert.refers_to}}{{alert.refers_to}}{{/alert.refers_to}}{{^alert.refers_to}}an earlier notice{{/alert.refers_to}}.</p>
{{/alert.is_cancellation}}
{{^alert.is_cancellation}}
{{#alert.is_update}}
<p style="margin:0 0 8px;"><span style="display:inline-block;padding:2px 8px;border-radius:3px;background:#b45309;color:#ffffff;font-size:13px;font-weight:bold;">Update {{alert.sequence}}</span>{{#alert.refers_to}} This notice replaces {{alert.refers_to}}.{{/alert.refers_to}}</p>
{{/alert.is_update}}
{{/alert.is_cancellation}}
<h1 style="margin:0 0 4px;font-size:20px;line-height:1.3;">{{alert.title}}</h1>
<p style="margin:0 0 12px;color:#4b5563;">{{alert.kind_label}}</p>
</td></tr>
<tr><td style="padding:0 20px;">
<table role="presentation" cellpadding="0" cellspacing="0" style="font-size:15px;line-height:1.5;">
{{#alert.window}}
<tr><td style="padding:2px 16px 2px 0;color:#4b5563;vertical-align:top;">When</td><td style="padding:2px 0;"><strong>{{alert.window}}</strong></td></tr>
{{/alert.window}}
{{^alert.window}}
{{#alert.start_local}}
<tr><td style="padding:2px 16px 2px 0;color:#4b5563;vertical-align:top;">Start</td><td style="padding:2px 0;"><strong>{{alert.start_local}}</strong></td></tr>
{{/alert.start_local}}
{{#alert.end_local}}
<tr><td style="padding:2px 16px 2px 0;color:#4b5563;vertical-align:top;">End</td><td style="padding:2px 0;"><strong>{{alert.end_local}}</strong></td></tr>
{{/alert.end_local}}
{{/alert.window}}
<tr><td style="padding:2px 16px 2px 0;color:#4b5563;vertical-align:top;">Services</td><td style="padding:2px 0;">
{{#services}}
{{name}} <span style="color:#6b7280;">({{environment}})</span><br>
{{/services}}
</td></tr>
{{#alert.maintenance}}
<tr><td style="padding:2px 16px 2px 0;color:#4b5563;vertical-align:top;">Change</td><td style="padding:2px 0;">{{alert.maintenance}}</td></tr>
{{/alert.maintenance}}
{{#alert.interruption}}
<tr><td style="padding:2px 16px 2px 0;color:#4b5563;vertical-align:top;">Incident</td><td style="padding:2px 0;">{{alert.interruption}}</td></tr>
{{/alert.interruption}}
</table>
</td></tr>
<tr><td style="padding:12px 20px;white-space:pre-line;">{{alert.summary}}</td></tr>
<tr><td style="padding:0 20px 16px;"><a href="{{provider.status_url}}" style="color:#1d4ed8;">Current status</a> &middot; <a href="{{provider.calendar_url}}" style="color:#1d4ed8;">Maintenance calendar</a></td></tr>
<tr><td style="padding:12px 20px;border-top:1px solid #e5e7eb;font-size:12px;color:#6b7280;">Sent to {{recipient.address}} by {{provider.name}} at {{alert.sent_at}}.{{#recipient.unsubscribe_url}} <a href="{{recipient.unsubscribe_url}}" style="color:#6b7280;">Unsubscribe</a>{{/recipient.unsubscribe_url}}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
)";

  templates["default.webhook.text"] =
      R"({{#alert.is_cancellation}}CANCELLED {{/alert.is_cancellation}}{{^alert.is_cancellation}}{{#alert.is_update}}UPDATE {{/alert.is_update}}{{/alert.is_cancellation}}[{{alert.id}}] {{alert.kind_label}}: {{alert.title}}
{{#alert.window}}
When: {{alert.window}}
{{/alert.window}}
{{^alert.window}}
{{#alert.start_local}}
Start: {{alert.start_local}}
{{/alert.start_local}}
{{/alert.window}}
Services:
{{#services}}
- {{name}} ({{environment}})
{{/services}}
{{alert.summary}}
Status: {{provider.status_url}}
)";
  return templates;
}

}  // namespace slmhub::alerts
