// Table API records as the client hands them out: every value a string, as ServiceNow sends
// raw values. A reference object {"link", "value"} becomes its sys_id, a display_value=all
// pair {"display_value", "value"} its raw value, null "", numbers and booleans their JSON
// text (the real API sends strings; a simulator or a scripted REST API may not).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "client.hpp"
#include "slmhub/json.hpp"

namespace slmhub::servicenow {

std::string field_value(const Json& value);

// nullopt when `object` is not a JSON object.
std::optional<Record> to_record(const Json& object);

// The body of a write: every field as a JSON string.
Json to_json(const Record& record);

}  // namespace slmhub::servicenow
