#include "records.hpp"

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

Json to_json(const Record& record) {
  Json object = Json::object();
  for (const auto& [name, value] : record) object[name] = value;
  return object;
}

}  // namespace slmhub::servicenow
