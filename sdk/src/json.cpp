#include "slmhub/json.hpp"

#include <algorithm>
#include <charconv>
#include <system_error>

namespace slmhub {
namespace {

bool is_identifier(std::string_view key) {
  if (key.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(key[0])) return false;
  return std::all_of(key.begin(), key.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

// JSON text of a string for messages and paths; never throws on invalid UTF-8.
std::string quoted(std::string_view text) {
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Builds the document from nlohmann's SAX events so that depth, duplicate keys and the path of
// the offending value are known while parsing. nlohmann's SAX driver keeps its own state on
// the heap, and we stop at the first value deeper than the limit, so nothing here recurses.
class DomBuilder {
 public:
  DomBuilder(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  bool null() { return add(Json(nullptr)); }
  bool boolean(bool value) { return add(Json(value)); }
  bool number_integer(Json::number_integer_t value) { return add(Json(value)); }
  bool number_unsigned(Json::number_unsigned_t value) { return add(Json(value)); }
  bool number_float(Json::number_float_t value, const Json::string_t& /*text*/) {
    return add(Json(value));
  }
  bool string(Json::string_t& value) { return add(Json(std::move(value))); }
  bool binary(Json::binary_t& value) { return add(Json::binary(std::move(value))); }

  bool start_object(std::size_t /*elements*/) { return open(Json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(Json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(Json::string_t& key) {
    Frame& top = stack_.back();
    if (top.container->contains(key)) {
      top.key = key;
      fail(path_of_next(), "key appears more than once in this object");
      return false;
    }
    top.key = std::move(key);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const Json::exception& ex) {
    fail("$", "malformed JSON at " + where(position) + ": " + explanation(ex.what()));
    return false;
  }

  Json take_result() { return std::move(root_); }
  const std::optional<FieldError>& failure() const { return failure_; }

 private:
  struct Frame {
    Json* container;
    std::string key;  // objects: the key whose value comes next
  };

  bool add(Json value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return true;
    }
    Frame& top = stack_.back();
    if (top.container->is_array()) {
      top.container->push_back(std::move(value));
    } else {
      (*top.container)[top.key] = std::move(value);
    }
    return true;
  }

  bool open(Json empty) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      fail(path_of_next(),
           "nesting deeper than " + std::to_string(max_depth_) + " arrays/objects is not allowed");
      return false;
    }
    Json* slot = nullptr;
    if (stack_.empty()) {
      root_ = std::move(empty);
      slot = &root_;
    } else {
      // Only the innermost container grows, so pointers to the outer ones stay valid.
      Frame& top = stack_.back();
      if (top.container->is_array()) {
        top.container->push_back(std::move(empty));
        slot = &top.container->back();
      } else {
        slot = &((*top.container)[top.key] = std::move(empty));
      }
    }
    stack_.push_back({slot, {}});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  // The path of the value about to be added to the innermost container.
  std::string path_of_next() const {
    std::string path = "$";
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      const Frame& frame = stack_[i];
      if (frame.container->is_array()) {
        // Outer arrays already hold the open child as their last element.
        std::size_t size = frame.container->size();
        path = path_index(path, i + 1 < stack_.size() ? size - 1 : size);
      } else {
        path = path_key(path, frame.key);
      }
    }
    return path;
  }

  // Line and column (both 1-based, column in bytes) of the byte nlohmann stopped at.
  std::string where(std::size_t position) const {
    const std::size_t end = std::min(position, text_.size());
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < end; ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    // `position` counts the offending byte itself; an empty input reports column 1.
    const std::size_t column = std::max<std::size_t>(end - line_start, 1);
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  }

  // nlohmann's text minus its "[json.exception.parse_error.101] parse error at line 1,
  // column 5: " prefix, which we replace with our own position: what remains says what was
  // read and what was expected.
  static std::string explanation(std::string_view what) {
    if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    if (what.starts_with("parse error")) {
      if (auto pos = what.find(": "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    }
    // "last read" echoes raw input bytes, which may be invalid UTF-8; the message itself must
    // stay printable and serialisable into a problem response.
    std::string text(what);
    for (char& c : text) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    }
    return text;
  }

  void fail(std::string path, std::string message) {
    if (!failure_) failure_ = FieldError{std::move(path), std::move(message)};
  }

  std::string_view text_;
  int max_depth_;
  Json root_;
  std::vector<Frame> stack_;
  std::optional<FieldError> failure_;
};

std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string type_error(std::string_view expected, const Json& found) {
  return "expected " + std::string(expected) + ", found " + json_type_name(found);
}

// A decimal number as digits × 10^exponent, from the text form nlohmann prints.
struct Decimal {
  bool negative = false;
  std::string digits;  // no leading zeros; empty for zero
  int64_t exponent = 0;
};

std::optional<Decimal> parse_decimal(std::string_view text) {
  Decimal d;
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  std::string digits;
  int64_t exponent = 0;
  bool any_digit = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    digits += text[i];
    any_digit = true;
  }
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      digits += text[i];
      --exponent;
      any_digit = true;
    }
  }
  if (!any_digit) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    int64_t e = 0;
    auto [end, ec] = std::from_chars(text.data() + i + (i < text.size() && text[i] == '+'),
                                     text.data() + text.size(), e);
    if (ec != std::errc() || e > 100000 || e < -100000) return std::nullopt;
    i = static_cast<std::size_t>(end - text.data());
    exponent += e;
  }
  if (i != text.size()) return std::nullopt;
  std::size_t first = digits.find_first_not_of('0');
  d.digits = first == std::string::npos ? "" : digits.substr(first);
  d.exponent = exponent;
  return d;
}

}  // namespace

Json parse_json(std::string_view text, int max_depth) {
  DomBuilder builder(text, max_depth);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &builder);
  if (!ok || builder.failure()) {
    FieldError error = builder.failure().value_or(FieldError{"$", "malformed JSON"});
    throw ValidationError(std::vector<FieldError>{std::move(error)});
  }
  return builder.take_result();
}

std::string path_key(std::string_view parent, std::string_view key) {
  std::string path(parent);
  if (is_identifier(key)) {
    path += '.';
    path += key;
  } else {
    path += '[';
    path += quoted(key);
    path += ']';
  }
  return path;
}

std::string path_index(std::string_view parent, std::size_t index) {
  std::string path(parent);
  path += '[';
  path += std::to_string(index);
  path += ']';
  return path;
}

std::string json_type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::binary:
      return "binary";
    case Json::value_t::discarded:
      break;
  }
  return "nothing";
}

std::string quote_text(std::string_view text) {
  // Inputs come from users; a huge value must not make a huge message.
  constexpr std::size_t kMaxShown = 64;
  const bool cut = text.size() > kMaxShown;
  const std::string json = quoted(cut ? text.substr(0, kMaxShown) : text);  // JSON escapes
  if (cut) return "'" + json.substr(1, json.size() - 2) + "...'";
  return "'" + json.substr(1, json.size() - 2) + "'";
}

void throw_if_errors(std::vector<FieldError> errors) {
  if (!errors.empty()) throw ValidationError(std::move(errors));
}

std::string read_string(const Json& value, const std::string& path, std::vector<FieldError>& errors,
                        EmptyString empty) {
  if (!value.is_string()) {
    errors.push_back({path, type_error("string", value)});
    return {};
  }
  const auto& text = value.get_ref<const std::string&>();
  if (text.empty() && empty == EmptyString::refuse) {
    errors.push_back({path, "must not be empty"});
  }
  return text;
}

int64_t read_int(const Json& value, const std::string& path, std::vector<FieldError>& errors,
                 int64_t min, int64_t max) {
  int64_t number = 0;
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      errors.push_back({path, "integer " + value.dump() + " is out of range"});
      return 0;
    }
    number = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    number = value.get<int64_t>();
  } else if (value.is_number_float()) {
    // Also catches integers too large for 64 bits, which nlohmann stores as doubles.
    errors.push_back({path, "expected integer, found number " + value.dump()});
    return 0;
  } else {
    errors.push_back({path, type_error("integer", value)});
    return 0;
  }
  if (number < min || number > max) {
    const auto found = ", found " + std::to_string(number);
    constexpr auto kMin = std::numeric_limits<int64_t>::min();
    constexpr auto kMax = std::numeric_limits<int64_t>::max();
    if (min == 0 && max == kMax) {
      errors.push_back({path, "must not be negative" + found});
    } else if (max == kMax) {
      errors.push_back({path, "must be at least " + std::to_string(min) + found});
    } else if (min == kMin) {
      errors.push_back({path, "must be at most " + std::to_string(max) + found});
    } else {
      errors.push_back(
          {path, "must be between " + std::to_string(min) + " and " + std::to_string(max) + found});
    }
    return 0;
  }
  return number;
}

bool read_bool(const Json& value, const std::string& path, std::vector<FieldError>& errors) {
  if (!value.is_boolean()) {
    errors.push_back({path, type_error("boolean", value)});
    return false;
  }
  return value.get<bool>();
}

Instant read_instant(const Json& value, const std::string& path, std::vector<FieldError>& errors) {
  if (!value.is_string()) {
    errors.push_back({path, type_error("string (an ISO 8601 instant)", value)});
    return Instant{};
  }
  try {
    return parse_instant(value.get_ref<const std::string&>());
  } catch (const TimeError& e) {
    errors.push_back({path, e.what()});
    return Instant{};
  }
}

date::year_month_day read_date(const Json& value, const std::string& path,
                               std::vector<FieldError>& errors) {
  if (!value.is_string()) {
    errors.push_back({path, type_error("string (a YYYY-MM-DD date)", value)});
    return date::year_month_day{};
  }
  try {
    return parse_date(value.get_ref<const std::string&>());
  } catch (const TimeError& e) {
    errors.push_back({path, e.what()});
    return date::year_month_day{};
  }
}

std::string read_time_zone(const Json& value, const std::string& path,
                           std::vector<FieldError>& errors) {
  const std::size_t before = errors.size();
  std::string name = read_string(value, path, errors);
  if (errors.size() != before) return name;
  try {
    find_zone(name);
  } catch (const TimeError& e) {
    errors.push_back({path, e.what()});
  }
  return name;
}

int64_t parse_thousandths(const Json& number, const std::string& path,
                          std::vector<FieldError>& errors) {
  if (!number.is_number()) {
    errors.push_back({path, type_error("number (a percentage)", number)});
    return 0;
  }
  // dump() of a double is its shortest round-trip decimal text: 99.75 stays "99.75", so the
  // digits below are the digits the author wrote (for any percentage with 3 decimals).
  const std::string text = number.dump();
  const auto decimal = parse_decimal(text);
  if (!decimal) {
    errors.push_back({path, "cannot read the number " + text + " as a percentage"});
    return 0;
  }
  if (decimal->negative && !decimal->digits.empty()) {
    errors.push_back({path, "a percentage must not be negative, found " + text});
    return 0;
  }
  // value = digits × 10^exponent; thousandths = digits × 10^(exponent + 3).
  std::string digits = decimal->digits;
  int64_t shift = decimal->exponent + 3;
  if (shift < 0) {
    // Dropped digits must all be zeros, else there is a fourth decimal.
    const auto drop = static_cast<std::size_t>(-shift);
    const std::size_t keep = digits.size() > drop ? digits.size() - drop : 0;
    if (digits.find_first_not_of('0', keep) != std::string::npos) {
      errors.push_back({path, "a percentage allows at most 3 decimals, found " + text});
      return 0;
    }
    digits.resize(keep);
    shift = 0;
  }
  // 100000 (100 %) has 6 digits; anything longer is above 100 and could overflow.
  if (!digits.empty() && static_cast<int64_t>(digits.size()) + shift > 6) {
    errors.push_back({path, "a percentage must be at most 100, found " + text});
    return 0;
  }
  int64_t thousandths = 0;
  for (char c : digits) thousandths = thousandths * 10 + (c - '0');
  for (int64_t i = 0; i < shift && thousandths != 0; ++i) thousandths *= 10;
  if (thousandths > 100000) {
    errors.push_back({path, "a percentage must be at most 100, found " + text});
    return 0;
  }
  return thousandths;
}

std::string decimal_text(int64_t value, int digits) {
  int64_t scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  const bool negative = value < 0;
  const uint64_t magnitude =
      negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  const std::string whole = (negative ? "-" : "") + std::to_string(magnitude / scale);
  std::string fraction = std::to_string(magnitude % scale);
  fraction.insert(0, static_cast<std::size_t>(digits) - fraction.size(), '0');
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  return fraction.empty() ? whole : whole + "." + fraction;
}

Json decimal_to_json(int64_t value, int digits) {
  const std::string text = decimal_text(value, digits);
  if (text.find('.') == std::string::npos) return Json(std::stoll(text));
  // from_chars picks the double nearest the exact decimal text; nlohmann prints that double
  // back as the same shortest text (99.75, not 99.7500000001).
  double number = 0;
  std::from_chars(text.data(), text.data() + text.size(), number);
  return Json(number);
}

Json thousandths_to_json(int64_t thousandths) { return decimal_to_json(thousandths, 3); }

namespace json_detail {
std::string unknown_name_message(std::string_view found,
                                 const std::vector<std::string_view>& allowed) {
  return "unknown value " + quote_text(found) + " (allowed: " + join(allowed) + ")";
}
}  // namespace json_detail

// ---- ObjectReader ------------------------------------------------------------------------

ObjectReader::ObjectReader(const Json& value, std::string path, std::vector<FieldError>& errors)
    : path_(std::move(path)), errors_(&errors) {
  if (value.is_object()) {
    object_ = &value;
  } else {
    errors_->push_back({path_, type_error("object", value)});
  }
}

ObjectReader::ObjectReader(Missing, std::string path, std::vector<FieldError>& errors)
    : path_(std::move(path)), errors_(&errors) {}

void ObjectReader::error(std::string_view key, std::string message) {
  errors_->push_back({path_of(key), std::move(message)});
}

bool ObjectReader::has(std::string_view key) const {
  if (!object_) return false;
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

const Json* ObjectReader::take(std::string_view key) {
  known_.emplace(key);
  if (!object_) return nullptr;
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

const Json* ObjectReader::require(std::string_view key) {
  const Json* value = take(key);
  if (!value && object_) error(key, "required key is missing");
  return value;
}

std::string ObjectReader::required_string(std::string_view key, EmptyString empty) {
  const Json* v = require(key);
  return v ? read_string(*v, path_of(key), *errors_, empty) : std::string();
}

std::optional<std::string> ObjectReader::optional_string(std::string_view key, EmptyString empty) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<std::string>(*v, key, [&](const Json& j, const std::string& p, auto& e) {
    return read_string(j, p, e, empty);
  });
}

int64_t ObjectReader::required_int(std::string_view key, int64_t min, int64_t max) {
  const Json* v = require(key);
  return v ? read_int(*v, path_of(key), *errors_, min, max) : 0;
}

std::optional<int64_t> ObjectReader::optional_int(std::string_view key, int64_t min, int64_t max) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<int64_t>(*v, key, [&](const Json& j, const std::string& p, auto& e) {
    return read_int(j, p, e, min, max);
  });
}

bool ObjectReader::required_bool(std::string_view key) {
  const Json* v = require(key);
  return v ? read_bool(*v, path_of(key), *errors_) : false;
}

std::optional<bool> ObjectReader::optional_bool(std::string_view key) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<bool>(*v, key, read_bool);
}

Instant ObjectReader::required_instant(std::string_view key) {
  const Json* v = require(key);
  return v ? read_instant(*v, path_of(key), *errors_) : Instant{};
}

std::optional<Instant> ObjectReader::optional_instant(std::string_view key) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<Instant>(*v, key, read_instant);
}

date::year_month_day ObjectReader::required_date(std::string_view key) {
  const Json* v = require(key);
  return v ? read_date(*v, path_of(key), *errors_) : date::year_month_day{};
}

std::optional<date::year_month_day> ObjectReader::optional_date(std::string_view key) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<date::year_month_day>(*v, key, read_date);
}

std::string ObjectReader::required_time_zone(std::string_view key) {
  const Json* v = require(key);
  return v ? read_time_zone(*v, path_of(key), *errors_) : std::string();
}

std::optional<std::string> ObjectReader::optional_time_zone(std::string_view key) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<std::string>(*v, key, read_time_zone);
}

int64_t ObjectReader::required_thousandths(std::string_view key) {
  const Json* v = require(key);
  return v ? parse_thousandths(*v, path_of(key), *errors_) : 0;
}

std::optional<int64_t> ObjectReader::optional_thousandths(std::string_view key) {
  const Json* v = take(key);
  if (!v) return std::nullopt;
  return read_checked<int64_t>(*v, key, parse_thousandths);
}

namespace {
std::string read_list_string(const Json& v, const std::string& path,
                             std::vector<FieldError>& errors) {
  return read_string(v, path, errors);
}
}  // namespace

std::vector<std::string> ObjectReader::required_string_list(std::string_view key) {
  return required_array(key, read_list_string);
}

std::vector<std::string> ObjectReader::optional_string_list(std::string_view key) {
  return optional_array(key, read_list_string);
}

ObjectReader ObjectReader::required_object(std::string_view key) {
  const Json* v = require(key);
  if (!v) return ObjectReader(Missing{}, path_of(key), *errors_);
  return ObjectReader(*v, path_of(key), *errors_);
}

void ObjectReader::finish() {
  if (finished_) return;
  finished_ = true;
  if (!object_) return;
  std::string allowed;
  for (const auto& key : known_) {
    if (!allowed.empty()) allowed += ", ";
    allowed += key;
  }
  for (const auto& [key, value] : object_->items()) {
    if (known_.find(key) == known_.end()) {
      error(key, "unknown key (allowed: " + (allowed.empty() ? "none" : allowed) + ")");
    }
  }
}

}  // namespace slmhub
