// Table API records as the client hands them out: every value a string, as ServiceNow sends
// raw values. A reference object {"link", "value"} becomes its sys_id, a display_value=all
// pair {"display_value", "value"} its raw value, null "", numbers and booleans their JSON
// text (the real API sends strings; a simulator or a scripted REST API may not).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client.hpp"
#include "slmhub/json.hpp"

namespace slmhub::servicenow {

std::string field_value(const Json& value);

// nullopt when `object` is not a JSON object.
std::optional<Record> to_record(const Json& object);

// The records of a Table API list answer, {"result": [{...}, ...]}, read straight from its
// text (simdjson On-Demand): what to_record() makes of each item of parse_json()'s "result",
// without building the JSON tree first, which cost more than the sweep's every other step.
// nullopt on anything else — malformed text, a repeated key, another member than "result", an
// item that is not an object, a value to_record() renders as JSON text (numbers, arrays, an
// object without "value") — so the caller reads it the careful way, with its error messages.
std::optional<std::vector<Record>> list_records(std::string_view body);

// The body of a write: every field as a JSON string.
Json to_json(const Record& record);

}  // namespace slmhub::servicenow
