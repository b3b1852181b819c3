// list_records reads a Table API list answer straight from its text; whenever it answers, it
// must give exactly what to_record() makes of parse_json()'s "result" items, and it must step
// aside (nullopt) wherever the careful path would refuse the text or render a value as JSON.
#include "records.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slmhub/json.hpp"

namespace slmhub::servicenow {
namespace {

std::vector<Record> careful(const std::string& body) {
  const Json json = parse_json(body);
  std::vector<Record> records;
  for (const auto& item : json.at("result")) records.push_back(*to_record(item));
  return records;
}

TEST(ListRecords, ReadsWhatTheCarefulPathReads) {
  const std::vector<std::string> bodies = {
      R"({"result":[]})",
      R"({"result":[{}]})",
      // Strings with escapes, UTF-8, an escaped surrogate pair, null, empty strings.
      R"({"result":[{"sys_id":"a1","short_description":"Disk \"full\" on db\\01\nnow",)"
      R"("number":"INC0010001","caller_id":null,"state":"","u_note":"Gr\u00fc\u00dfe \ud83d\ude00",)"
      R"("u_utf8":"Grüße"}]})",
      // References and display_value=all pairs: the raw value; a null value.
      R"({"result":[{"assignment_group":{"link":"https://x.example.org/api/now/table/)"
      R"(sys_user_group/g1","value":"g1"},"cmdb_ci":{"display_value":"Oracle","value":"ci9"},)"
      R"("parent":{"link":"https://x.example.org/api/now/table/incident/","value":null}}]})",
      // Many records, whitespace between tokens.
      "{ \"result\" : [ { \"sys_id\" : \"1\" , \"sys_mod_count\" : \"3\" } ,\n"
      "  { \"sys_id\" : \"2\" , \"sys_mod_count\" : \"0\" } ] }\n",
  };
  for (const std::string& body : bodies) {
    const auto fast = list_records(body);
    ASSERT_TRUE(fast.has_value()) << body;
    EXPECT_EQ(*fast, careful(body)) << body;
  }
  const auto one = list_records(bodies[3]);
  EXPECT_EQ(one->at(0).at("assignment_group"), "g1");
  EXPECT_EQ(one->at(0).at("cmdb_ci"), "ci9");
  EXPECT_EQ(one->at(0).at("parent"), "");
}

TEST(ListRecords, StepsAsideForWhatTheCarefulPathDecides) {
  const std::vector<std::string> bodies = {
      "",
      "not json",
      R"({"result":[{"sys_id":"a"}]} trailing)",
      R"({"result":[{"sys_id":"a"})",                       // cut short
      R"({"result":[{"sys_id":"a","sys_id":"b"}]})",        // a repeated key (parse_json refuses)
      R"({"result":[{"ref":{"value":"a","value":"b"}}]})",  // the same, in a reference
      R"({"result":[],"result":[]})",
      R"({"error":{"message":"No Record found"}})",
      R"({"result":[],"extra":1})",
      R"({"result":{}})",
      R"({"result":["not a record"]})",
      R"({"result":[{"impact":2}]})",                 // a number: to_record writes "2"
      R"({"result":[{"active":true}]})",              // a boolean: "true"
      R"({"result":[{"list":["a"]}]})",               // an array: its JSON
      R"({"result":[{"ref":{"link":"x"}}]})",         // an object without "value": its JSON
      R"({"result":[{"ref":{"value":{"v":"1"}}}]})",  // a nested value: field_value recurses
      "{\"result\":[{\"bad\":\"a\tb\"}]}",            // a tab left unescaped (parse_json refuses)
      R"({"result":[{"bad":"\ud800"}]})",             // a lone surrogate: not UTF-8
      "{\"result\":[{\"bad\":\"\xff\"}]}",            // not UTF-8
      R"([{"sys_id":"a"}])",
  };
  for (const std::string& body : bodies) EXPECT_FALSE(list_records(body).has_value()) << body;
}

}  // namespace
}  // namespace slmhub::servicenow
