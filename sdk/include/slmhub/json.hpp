// JSON for every input the product reads (datasets, request bodies, webhook payloads) and the
// strict reading helpers every codec is built from. Reading is strict on purpose: an unknown
// key, a float where an integer belongs or a percentage with a fourth decimal is an error with
// the JSON path, because a typo that is silently ignored can change a bill (DESIGN.md §5.3).
//
// The readers share one contract: a reader that finds a problem appends a FieldError (path +
// what was wrong + what is allowed) to the caller's list and returns a neutral value, so one
// pass reports every problem in an input; the caller throws one ValidationError at the end
// (see throw_if_errors). A neutral value is never meant to be used.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slmhub/errors.hpp"
#include "slmhub/time.hpp"

namespace slmhub {

using Json = nlohmann::json;

// Parses JSON text (RFC 8259, no comments, nothing after the value). Throws ValidationError:
// malformed text at path "$" with the line, column and what was expected; a key repeated in
// one object at that key's path; nesting deeper than `max_depth` arrays/objects at the path of
// the value that crossed the limit. Depth is checked while parsing, without recursion, so a
// megabyte of `[[[[` costs a few microseconds and no stack.
Json parse_json(std::string_view text, int max_depth = 64);

// ---- JSON paths --------------------------------------------------------------------------

// `$.services` for an identifier-like key, `$["odd key"]` otherwise.
std::string path_key(std::string_view parent, std::string_view key);
// `$.services[2]`.
std::string path_index(std::string_view parent, std::size_t index);

// "string", "integer", "number" (with a fraction or exponent), "boolean", "null", "object",
// "array": the words used in "expected X, found Y" messages.
std::string json_type_name(const Json& value);

// `text` in single quotes for an error message, control characters escaped and long text cut
// (to 64 bytes + "..."), so a message stays one short printable line whatever the input held.
std::string quote_text(std::string_view text);

// Throws one ValidationError listing `errors` in the order they were found, if there are any.
void throw_if_errors(std::vector<FieldError> errors);

// ---- value readers -------------------------------------------------------------------------
// Each reads one JSON value found at `path`.

enum class EmptyString { refuse, allow };

std::string read_string(const Json& value, const std::string& path, std::vector<FieldError>& errors,
                        EmptyString empty = EmptyString::refuse);
// An integer in [min, max]. Refuses numbers with a fraction or exponent (even 40.0) and
// integers beyond int64.
int64_t read_int(const Json& value, const std::string& path, std::vector<FieldError>& errors,
                 int64_t min = std::numeric_limits<int64_t>::min(),
                 int64_t max = std::numeric_limits<int64_t>::max());
bool read_bool(const Json& value, const std::string& path, std::vector<FieldError>& errors);
// An ISO 8601 instant with an offset (parse_instant).
Instant read_instant(const Json& value, const std::string& path, std::vector<FieldError>& errors);
// A `YYYY-MM-DD` date (parse_date).
date::year_month_day read_date(const Json& value, const std::string& path,
                               std::vector<FieldError>& errors);
// An IANA zone name that the system tz database knows; returns the name.
std::string read_time_zone(const Json& value, const std::string& path,
                           std::vector<FieldError>& errors);

// A percentage such as 99.75 as exact integer thousandths of a percent (99750). The number's
// shortest round-trip decimal text is read digit by digit, so no binary rounding reaches a
// target or a credit. Refuses non-numbers, negatives, more than 3 decimals and > 100.
int64_t parse_thousandths(const Json& number, const std::string& path,
                          std::vector<FieldError>& errors);
// 99750 → the JSON number 99.75; 100000 → 100 (shortest form, integer when whole).
Json thousandths_to_json(int64_t thousandths);

// An integer in units of 10^-digits as exact decimal text (994189, 4 → "99.4189"; trailing
// zeros dropped) and as the JSON number with that shortest text; display only, the value
// itself never goes through floating point arithmetic.
std::string decimal_text(int64_t value, int digits);
Json decimal_to_json(int64_t value, int digits);

// An array whose elements are read by `read(element, element_path, errors)`; the result has
// one entry per element (so indexes in the result match indexes in the input).
template <typename Read>
auto read_array(const Json& value, const std::string& path, std::vector<FieldError>& errors,
                Read&& read) {
  using T = std::invoke_result_t<Read&, const Json&, const std::string&, std::vector<FieldError>&>;
  std::vector<T> out;
  if (!value.is_array()) {
    errors.push_back({path, "expected array, found " + json_type_name(value)});
    return out;
  }
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    out.push_back(read(value[i], path_index(path, i), errors));
  }
  return out;
}

// ---- enums -------------------------------------------------------------------------------
// An enum's wire names are one table, used for parsing, printing and error messages alike.

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

template <typename E, std::size_t N>
std::optional<E> enum_from_name(const std::array<EnumName<E>, N>& names, std::string_view name) {
  for (const auto& entry : names) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

template <typename E, std::size_t N>
std::string_view enum_to_name(const std::array<EnumName<E>, N>& names, E value) {
  for (const auto& entry : names) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

namespace json_detail {
std::string unknown_name_message(std::string_view found,
                                 const std::vector<std::string_view>& allowed);
}  // namespace json_detail

// One of the names in `names`; an unknown name is an error listing the allowed ones.
template <typename E, std::size_t N>
E read_enum(const Json& value, const std::string& path, std::vector<FieldError>& errors,
            const std::array<EnumName<E>, N>& names) {
  const std::size_t before = errors.size();
  const std::string text = read_string(value, path, errors);
  if (errors.size() != before) return names[0].value;
  if (auto found = enum_from_name(names, text)) return *found;
  std::vector<std::string_view> allowed;
  allowed.reserve(N);
  for (const auto& entry : names) allowed.push_back(entry.name);
  errors.push_back({path, json_detail::unknown_name_message(text, allowed)});
  return names[0].value;
}

// ---- objects -----------------------------------------------------------------------------

// Reads one JSON object field by field. Every getter marks its key as known; finish() then
// reports every key nobody asked for as "unknown key", listing the keys that are allowed.
// A value that is not an object is one error ("expected object, found array"); after that the
// getters return neutral values without piling up further errors.
//
// Absent keys and keys whose value is null are the same thing: `optional_*` returns nullopt
// (or an empty list), `required_*` reports "required key is missing".
//
//   ObjectReader r(json, "$.services[2]", errors);
//   service.id = r.required_string("id");
//   service.target_thousandths = r.required_thousandths("target_percent");
//   service.credit_policy = r.optional_object("credit_policy", credit_policy_from_json);
//   r.finish();
class ObjectReader {
 public:
  ObjectReader(const Json& value, std::string path, std::vector<FieldError>& errors);

  // False when the value was not an object (already reported).
  bool is_object() const { return object_ != nullptr; }
  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return path_key(path_, key); }
  std::vector<FieldError>& errors() { return *errors_; }
  // Records a rule broken by the value at `key` (for checks the getters cannot know).
  void error(std::string_view key, std::string message);

  // True if `key` is present and not null. Does not mark the key as known.
  bool has(std::string_view key) const;
  // Marks `key` as known and returns its value, or nullptr when absent or null.
  const Json* take(std::string_view key);
  // As take(), but reports a missing key.
  const Json* require(std::string_view key);

  std::string required_string(std::string_view key, EmptyString empty = EmptyString::refuse);
  std::optional<std::string> optional_string(std::string_view key,
                                             EmptyString empty = EmptyString::refuse);
  int64_t required_int(std::string_view key, int64_t min = std::numeric_limits<int64_t>::min(),
                       int64_t max = std::numeric_limits<int64_t>::max());
  std::optional<int64_t> optional_int(std::string_view key,
                                      int64_t min = std::numeric_limits<int64_t>::min(),
                                      int64_t max = std::numeric_limits<int64_t>::max());
  bool required_bool(std::string_view key);
  std::optional<bool> optional_bool(std::string_view key);
  Instant required_instant(std::string_view key);
  std::optional<Instant> optional_instant(std::string_view key);
  date::year_month_day required_date(std::string_view key);
  std::optional<date::year_month_day> optional_date(std::string_view key);
  std::string required_time_zone(std::string_view key);
  std::optional<std::string> optional_time_zone(std::string_view key);
  int64_t required_thousandths(std::string_view key);
  std::optional<int64_t> optional_thousandths(std::string_view key);
  std::vector<std::string> required_string_list(std::string_view key);
  // Absent → empty list.
  std::vector<std::string> optional_string_list(std::string_view key);

  template <typename E, std::size_t N>
  E required_enum(std::string_view key, const std::array<EnumName<E>, N>& names) {
    const Json* v = require(key);
    return v ? read_enum(*v, path_of(key), *errors_, names) : names[0].value;
  }
  template <typename E, std::size_t N>
  std::optional<E> optional_enum(std::string_view key, const std::array<EnumName<E>, N>& names) {
    const Json* v = take(key);
    if (!v) return std::nullopt;
    return read_checked<E>(*v, key, [&](const Json& j, const std::string& p, auto& e) {
      return read_enum(j, p, e, names);
    });
  }

  // A child read by `read(value, path, errors)`, typically another type's `x_from_json`.
  template <typename Read>
  auto required_object(std::string_view key, Read&& read) {
    using T =
        std::invoke_result_t<Read&, const Json&, const std::string&, std::vector<FieldError>&>;
    const Json* v = require(key);
    return v ? read(*v, path_of(key), *errors_) : T{};
  }
  template <typename Read>
  auto optional_object(std::string_view key, Read&& read) {
    using T =
        std::invoke_result_t<Read&, const Json&, const std::string&, std::vector<FieldError>&>;
    const Json* v = take(key);
    if (!v) return std::optional<T>{};
    return read_checked<T>(*v, key, read);
  }
  // A child object to read key by key; the caller calls finish() on it.
  ObjectReader required_object(std::string_view key);

  template <typename Read>
  auto required_array(std::string_view key, Read&& read) {
    using T =
        std::invoke_result_t<Read&, const Json&, const std::string&, std::vector<FieldError>&>;
    const Json* v = require(key);
    return v ? read_array(*v, path_of(key), *errors_, read) : std::vector<T>{};
  }
  // Absent → empty list.
  template <typename Read>
  auto optional_array(std::string_view key, Read&& read) {
    using T =
        std::invoke_result_t<Read&, const Json&, const std::string&, std::vector<FieldError>&>;
    const Json* v = take(key);
    return v ? read_array(*v, path_of(key), *errors_, read) : std::vector<T>{};
  }

  // Reports every key of the object that no getter asked for. Call once, after the getters.
  void finish();

 private:
  struct Missing {};
  ObjectReader(Missing, std::string path, std::vector<FieldError>& errors);

  // Runs `read` and turns "it reported an error" into nullopt, so an optional getter never
  // hands back a neutral value as if it had been read.
  template <typename T, typename Read>
  std::optional<T> read_checked(const Json& v, std::string_view key, Read&& read) {
    const std::size_t before = errors_->size();
    T value = read(v, path_of(key), *errors_);
    if (errors_->size() != before) return std::nullopt;
    return value;
  }

  const Json* object_ = nullptr;
  std::string path_;
  std::vector<FieldError>* errors_;
  std::set<std::string, std::less<>> known_;
  bool finished_ = false;
};

}  // namespace slmhub
