#include "records.hpp"

#include <simdjson.h>

#include <algorithm>

namespace slmhub::servicenow {

std::string field_value(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return value.get<std::string>();
    case Json::value_t::null:
      return "";
    case Json::value_t::object: {
      const auto raw = value.find("value");
      if (raw != value.end()) return field_value(*raw);
      return value.dump();
    }
    default:
      return value.dump();
  }
}

std::optional<Record> to_record(const Json& object) {
  if (!object.is_object()) return std::nullopt;
  Record record;
  for (const auto& [name, value] : object.items()) record.emplace(name, field_value(value));
  return record;
}

namespace {

namespace od = simdjson::ondemand;

struct Doubt {};  // the text is not the plain list answer list_records reads

template <class T>
T ok(simdjson::simdjson_result<T>&& result) {
  T value;
  if (std::move(result).get(value) != simdjson::SUCCESS) throw Doubt{};
  return value;
}

// A string's text. parse_json refuses a control character left unescaped and a lone
// surrogate escape (not UTF-8), both of which simdjson lets through; the token (the string
// with its quotes, then any whitespace) tells whether there is anything to check.
std::string text(od::value value) {
  const std::string_view token = value.raw_json_token();
  if (token.empty() || token[0] != '"') throw Doubt{};
  bool escaped = false;
  for (std::size_t i = 1; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (c < 0x20) throw Doubt{};
    if (c == '\\') {
      escaped = true;
      ++i;
    } else if (c == '"') {
      if (!escaped) return std::string(token.substr(1, i - 1));
      const std::string_view unescaped = ok(value.get_string());
      if (!simdjson::validate_utf8(unescaped.data(), unescaped.size())) throw Doubt{};
      return std::string(unescaped);
    }
  }
  throw Doubt{};
}

// field_value() of a string, null, or an object whose "value" is one of those.
std::string field(od::value value) {
  switch (ok(value.type())) {
    case od::json_type::string:
      return text(value);
    case od::json_type::null:
      if (!ok(value.is_null())) throw Doubt{};
      return "";
    case od::json_type::object: {
      std::optional<std::string> raw;
      std::vector<std::string> keys;
      for (auto member : ok(value.get_object())) {
        od::field f = ok(std::move(member));
        std::string key(ok(f.unescaped_key()));
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) throw Doubt{};
        od::value v = f.value();
        const od::json_type type = ok(v.type());
        if (type == od::json_type::string) {
          std::string s = text(v);
          if (key == "value") raw = std::move(s);
        } else if (type == od::json_type::null) {
          if (!ok(v.is_null())) throw Doubt{};
          if (key == "value") raw = std::string();
        } else {
          throw Doubt{};
        }
        keys.push_back(std::move(key));
      }
      if (!raw) throw Doubt{};  // to_record() writes the object's JSON
      return *raw;
    }
    default:
      throw Doubt{};  // numbers, booleans, arrays: to_record() writes their JSON
  }
}

}  // namespace

std::optional<std::vector<Record>> list_records(std::string_view body) {
  try {
    thread_local od::parser parser;
    const simdjson::padded_string padded(body);
    od::document doc = ok(parser.iterate(padded));
    std::vector<Record> records;
    bool seen = false;
    for (auto member : ok(doc.get_object())) {
      od::field f = ok(std::move(member));
      if (ok(f.unescaped_key()) != "result" || seen) throw Doubt{};
      seen = true;
      for (auto element : ok(f.value().get_array())) {
        od::value item = ok(std::move(element));
        Record record;
        for (auto item_member : ok(item.get_object())) {
          od::field g = ok(std::move(item_member));
          std::string name(ok(g.unescaped_key()));
          if (!record.emplace(std::move(name), field(g.value())).second) throw Doubt{};
        }
        records.push_back(std::move(record));
      }
    }
    // Anything after the object (current_location() is an error only at the end of the text).
    if (!seen || !doc.current_location().error()) throw Doubt{};
    return records;
  } catch (const Doubt&) {
    return std::nullopt;
  }
}

Json to_json(const Record& record) {
  Json object = Json::object();
  for (const auto& [name, value] : record) object[name] = value;
  return object;
}

}  // namespace slmhub::servicenow
