// parse_json, the reader of every JSON request body, webhook payload and dataset: malformed
// text, a repeated key and nesting deeper than the limit are one ValidationError with a path
// and a printable message, never a crash, a deep recursion or another exception. What it
// accepts has valid UTF-8 strings, so dump() cannot throw, and reads back equal from its own
// dump; a lower depth limit only refuses more.
#include "slmhub/json.hpp"
#include "checks.hpp"

namespace slmhub::fuzz {

void check_json(std::string_view input) {
  Json value;
  try {
    value = parse_json(input, 64);
  } catch (const ValidationError& e) {
    check_problem(e, "parse_json");
    // Whatever depth 64 refuses, depth 4 refuses too.
    bool refused = false;
    try {
      parse_json(input, 4);
    } catch (const ValidationError& shallow) {
      check_problem(shallow, "parse_json at depth 4");
      refused = true;
    }
    expect(refused, "parse_json accepts at depth 4 what it refuses at depth 64");
    return;
  }
  const std::string dumped = value.dump();
  Json again;
  try {
    again = parse_json(dumped, 64);
  } catch (const ValidationError& e) {
    throw Finding("parse_json refuses the dump of a value it accepted: " + describe(e));
  }
  expect(again == value, "parse_json(dump(v)) != v");
  try {
    parse_json(input, 4);
  } catch (const ValidationError& e) {
    check_problem(e, "parse_json at depth 4");
  }
}

}  // namespace slmhub::fuzz
