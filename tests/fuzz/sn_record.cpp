// Table API responses as the ServiceNow client reads them: parse_json of the body, then
// to_record of each object of "result" (or of "result" itself, or the body). Every field
// value of a record is a string, a record written back (to_json) reads as the same record,
// and every value parse_glide_datetime accepts formats back to the same text.
#include <stdexcept>
#include <string>

#include "checks.hpp"
#include "client.hpp"
#include "records.hpp"

namespace slmhub::fuzz {
namespace {

void check_record(const Json& item) {
  const auto record = servicenow::to_record(item);
  expect(record.has_value() == item.is_object(), "to_record: a record iff an object");
  if (!record) return;
  expect(servicenow::to_record(servicenow::to_json(*record)) == record,
         "to_record(to_json(r)) != r");
  for (const auto& [name, value] : *record) {
    expect(valid_utf8(value), "to_record: field " + name + " is not UTF-8");
    std::int64_t seconds = 0;
    try {
      seconds = servicenow::parse_glide_datetime(value);
    } catch (const std::invalid_argument&) {
      continue;
    }
    expect(servicenow::format_glide_datetime(seconds) == value,
           "format_glide_datetime(parse_glide_datetime(" + value + ")) differs");
  }
}

}  // namespace

void check_sn_record(std::string_view input) {
  Json body;
  try {
    body = parse_json(input);
  } catch (const ValidationError& e) {
    check_problem(e, "parse_json");
    return;
  }
  const auto result = body.is_object() ? body.find("result") : body.end();
  if (result != body.end() && result->is_array()) {
    for (const auto& item : *result) check_record(item);
  } else if (result != body.end()) {
    check_record(*result);
  } else {
    check_record(body);
  }
}

}  // namespace slmhub::fuzz
