// parse_json, the value readers, ObjectReader and the exact percentage codec.
#include "slmhub/json.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace slmhub {
namespace {

// The single FieldError a parse_json failure carries.
FieldError parse_failure(std::string_view text, int max_depth = 64) {
  try {
    parse_json(text, max_depth);
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.errors().size(), 1u);
    return e.errors().empty() ? FieldError{} : e.errors()[0];
  }
  ADD_FAILURE() << "parse_json accepted: " << text.substr(0, 80);
  return {};
}

std::string describe(const std::vector<FieldError>& errors) {
  std::string text;
  for (const auto& e : errors) text += e.path + ": " + e.message + "\n";
  return text;
}

// ---- parse_json --------------------------------------------------------------------------

TEST(ParseJson, ReadsADocument) {
  const Json j = parse_json(R"({"a": [1, -2, 2.5, "x", true, null], "b": {"c": {}}})");
  EXPECT_EQ(j["a"][0].get<int>(), 1);
  EXPECT_EQ(j["a"][1].get<int>(), -2);
  EXPECT_EQ(j["a"][2].get<double>(), 2.5);
  EXPECT_EQ(j["a"][3].get<std::string>(), "x");
  EXPECT_TRUE(j["a"][4].get<bool>());
  EXPECT_TRUE(j["a"][5].is_null());
  EXPECT_TRUE(j["b"]["c"].is_object());
  EXPECT_EQ(parse_json("42").get<int>(), 42);
}

TEST(ParseJson, MalformedTextNamesLineColumnAndWhatWasExpected) {
  const FieldError e = parse_failure("{\n  \"a\": 1,\n  \"b\" 2\n}");
  EXPECT_EQ(e.path, "$");
  EXPECT_NE(e.message.find("line 3, column 7"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("expected ':'"), std::string::npos) << e.message;
}

TEST(ParseJson, TrailingCommaIsRefused) {
  const FieldError e = parse_failure(R"({"a": 1,})");
  EXPECT_EQ(e.path, "$");
  EXPECT_NE(e.message.find("line 1, column 9"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("expected string literal"), std::string::npos) << e.message;
}

TEST(ParseJson, EmptyInputAndTrailingTextAreRefused) {
  const FieldError empty = parse_failure("");
  EXPECT_NE(empty.message.find("line 1, column 1"), std::string::npos) << empty.message;
  EXPECT_NE(empty.message.find("unexpected end of input"), std::string::npos) << empty.message;

  const FieldError trailing = parse_failure("{}\n[]");
  EXPECT_NE(trailing.message.find("line 2, column 1"), std::string::npos) << trailing.message;
  EXPECT_NE(trailing.message.find("expected end of input"), std::string::npos) << trailing.message;
}

TEST(ParseJson, InvalidUtf8GivesAPrintableMessage) {
  const FieldError e = parse_failure("[\"a\xff\"]");
  EXPECT_EQ(e.path, "$");
  EXPECT_NE(e.message.find("line 1, column 4"), std::string::npos) << e.message;
  for (char c : e.message) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << e.message;
}

TEST(ParseJson, DuplicateKeyIsRefusedAtItsPath) {
  const FieldError e = parse_failure(R"({"a": [1, {"b": 1, "b": 2}]})");
  EXPECT_EQ(e.path, "$.a[1].b");
  EXPECT_EQ(e.message, "key appears more than once in this object");
}

TEST(ParseJson, DepthLimitAllowsExactlyMaxDepth) {
  EXPECT_NO_THROW(parse_json("[[[1]]]", 3));
  const FieldError e = parse_failure("[[[[1]]]]", 3);
  EXPECT_EQ(e.path, "$[0][0][0]");
  EXPECT_EQ(e.message, "nesting deeper than 3 arrays/objects is not allowed");
}

TEST(ParseJson, DepthLimitNamesThePathThroughObjectsAndArrays) {
  const FieldError e = parse_failure(R"({"a": [0, {"b": [[1]]}]})", 3);
  EXPECT_EQ(e.path, "$.a[1].b");
}

TEST(ParseJson, HundredThousandNestedArraysDoNotCrash) {
  const std::string text = std::string(100000, '[') + std::string(100000, ']');
  const FieldError e = parse_failure(text);
  std::string expected = "$";
  for (int i = 0; i < 64; ++i) expected += "[0]";
  EXPECT_EQ(e.path, expected);
  EXPECT_EQ(e.message, "nesting deeper than 64 arrays/objects is not allowed");

  // Unterminated, a megabyte long: still one clean error.
  const FieldError open = parse_failure(std::string(1 << 20, '['));
  EXPECT_EQ(open.path, expected);
}

TEST(ParseJson, NestedObjectsCountTowardsDepth) {
  std::string text;
  for (int i = 0; i < 70; ++i) text += "{\"k\":";
  text += "1";
  for (int i = 0; i < 70; ++i) text += "}";
  const FieldError e = parse_failure(text);
  std::string expected = "$";
  for (int i = 0; i < 64; ++i) expected += ".k";
  EXPECT_EQ(e.path, expected);
}

TEST(ParseJson, NumberOverflowIsRefused) {
  const FieldError e = parse_failure("[1e400]");
  EXPECT_EQ(e.path, "$");
  EXPECT_NE(e.message.find("number overflow"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("line 1"), std::string::npos) << e.message;
}

// ---- paths and messages ------------------------------------------------------------------

TEST(JsonPath, KeysAndIndexes) {
  EXPECT_EQ(path_key("$", "services"), "$.services");
  EXPECT_EQ(path_index(path_key("$", "services"), 2), "$.services[2]");
  EXPECT_EQ(path_key("$", "odd key"), R"($["odd key"])");
  EXPECT_EQ(path_key("$", "2x"), R"($["2x"])");
  EXPECT_EQ(path_key("$", "q\"uote"), R"($["q\"uote"])");
}

TEST(JsonPath, TypeNames) {
  EXPECT_EQ(json_type_name(Json(1)), "integer");
  EXPECT_EQ(json_type_name(Json(-1)), "integer");
  EXPECT_EQ(json_type_name(Json(1.5)), "number");
  EXPECT_EQ(json_type_name(Json("x")), "string");
  EXPECT_EQ(json_type_name(Json(true)), "boolean");
  EXPECT_EQ(json_type_name(Json(nullptr)), "null");
  EXPECT_EQ(json_type_name(Json::object()), "object");
  EXPECT_EQ(json_type_name(Json::array()), "array");
}

TEST(QuoteText, EscapesControlCharactersAndCutsLongText) {
  EXPECT_EQ(quote_text("a\nb"), "'a\\nb'");
  EXPECT_EQ(quote_text(std::string(100, 'x')), "'" + std::string(64, 'x') + "...'");
}

// ---- value readers -----------------------------------------------------------------------

TEST(ReadInt, AcceptsIntegersInRange) {
  std::vector<FieldError> errors;
  EXPECT_EQ(read_int(Json(42), "$.n", errors), 42);
  EXPECT_EQ(read_int(Json(-7), "$.n", errors), -7);
  EXPECT_EQ(read_int(parse_json("9223372036854775807"), "$.n", errors), INT64_MAX);
  EXPECT_EQ(read_int(Json(12), "$.n", errors, 1, 12), 12);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

TEST(ReadInt, RefusesFloatsStringsAndOutOfRange) {
  std::vector<FieldError> errors;
  read_int(parse_json("40.5"), "$.a", errors);
  read_int(parse_json("40.0"), "$.b", errors);
  read_int(Json("40"), "$.c", errors);
  read_int(parse_json("9223372036854775808"), "$.d", errors);
  read_int(Json(-5), "$.e", errors, 0);
  read_int(Json(13), "$.f", errors, 1, 12);
  ASSERT_EQ(errors.size(), 6u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.a");
  EXPECT_EQ(errors[0].message, "expected integer, found number 40.5");
  EXPECT_EQ(errors[1].message, "expected integer, found number 40.0");
  EXPECT_EQ(errors[2].message, "expected integer, found string");
  EXPECT_EQ(errors[3].message, "integer 9223372036854775808 is out of range");
  EXPECT_EQ(errors[4].message, "must not be negative, found -5");
  EXPECT_EQ(errors[5].message, "must be between 1 and 12, found 13");
}

TEST(ReadString, RefusesEmptyUnlessAllowedAndNonStrings) {
  std::vector<FieldError> errors;
  EXPECT_EQ(read_string(Json(""), "$.a", errors, EmptyString::allow), "");
  EXPECT_TRUE(errors.empty());
  read_string(Json(""), "$.b", errors);
  read_string(Json(3), "$.c", errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].message, "must not be empty");
  EXPECT_EQ(errors[1].message, "expected string, found integer");
}

TEST(ReadInstant, NeedsAnOffsetAndReportsThePath) {
  std::vector<FieldError> errors;
  const Instant t = read_instant(Json("2026-11-03T09:00:00-05:00"), "$.start", errors);
  EXPECT_EQ(format_instant(t), "2026-11-03T14:00:00Z");
  read_instant(Json("2026-11-03T14:00:00"), "$.end", errors);
  read_instant(Json(1700000000), "$.at", errors);
  ASSERT_EQ(errors.size(), 2u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.end");
  EXPECT_NE(errors[0].message.find("2026-11-03T14:00:00"), std::string::npos);
  EXPECT_EQ(errors[1].message, "expected string (an ISO 8601 instant), found integer");
}

TEST(ReadDate, ValidatesTheDate) {
  std::vector<FieldError> errors;
  EXPECT_EQ(read_date(Json("2026-11-26"), "$.d", errors),
            date::year_month_day{date::year{2026} / 11 / 26});
  read_date(Json("2026-02-30"), "$.holidays[1]", errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "$.holidays[1]");
}

TEST(ReadTimeZone, RefusesUnknownZones) {
  std::vector<FieldError> errors;
  EXPECT_EQ(read_time_zone(Json("America/Chicago"), "$.timezone", errors), "America/Chicago");
  read_time_zone(Json("America/Chicgo"), "$.timezone", errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "$.timezone");
  EXPECT_NE(errors[0].message.find("unknown time zone"), std::string::npos) << errors[0].message;
}

enum class Color { red, green };
constexpr std::array<EnumName<Color>, 2> kColorNames{
    {{"red", Color::red}, {"green", Color::green}}};

TEST(ReadEnum, ListsAllowedNames) {
  std::vector<FieldError> errors;
  EXPECT_EQ(read_enum(Json("green"), "$.c", errors, kColorNames), Color::green);
  read_enum(Json("blue"), "$.c", errors, kColorNames);
  read_enum(Json(1), "$.d", errors, kColorNames);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].message, "unknown value 'blue' (allowed: red, green)");
  EXPECT_EQ(errors[1].message, "expected string, found integer");
  EXPECT_EQ(enum_to_name(kColorNames, Color::red), "red");
  EXPECT_EQ(enum_from_name(kColorNames, "green"), Color::green);
  EXPECT_EQ(enum_from_name(kColorNames, "Green"), std::nullopt);
}

// ---- ObjectReader ------------------------------------------------------------------------

TEST(ObjectReader, ReadsTypedFields) {
  const Json j = parse_json(R"({"s": "x", "n": 5, "b": true, "at": "2026-11-03T14:00:00Z",
      "d": "2026-11-26", "p": 99.75, "list": ["a", "b"], "c": "red", "z": "UTC"})");
  std::vector<FieldError> errors;
  ObjectReader r(j, "$", errors);
  EXPECT_EQ(r.required_string("s"), "x");
  EXPECT_EQ(r.required_int("n", 0, 10), 5);
  EXPECT_TRUE(r.required_bool("b"));
  EXPECT_EQ(format_instant(r.required_instant("at")), "2026-11-03T14:00:00Z");
  EXPECT_EQ(r.required_date("d"), date::year_month_day{date::year{2026} / 11 / 26});
  EXPECT_EQ(r.required_thousandths("p"), 99750);
  EXPECT_EQ(r.required_string_list("list"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.required_enum("c", kColorNames), Color::red);
  EXPECT_EQ(r.required_time_zone("z"), "UTC");
  EXPECT_EQ(r.optional_string("absent"), std::nullopt);
  EXPECT_EQ(r.optional_int("absent"), std::nullopt);
  EXPECT_TRUE(r.optional_string_list("absent").empty());
  r.finish();
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

TEST(ObjectReader, UnknownKeysAreErrorsListingTheAllowedOnes) {
  const Json j = parse_json(R"({"id": "a", "servce": "x", "zz": 1})");
  std::vector<FieldError> errors;
  ObjectReader r(j, "$.interruptions[0]", errors);
  r.required_string("id");
  r.optional_string("service");
  r.finish();
  ASSERT_EQ(errors.size(), 2u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.interruptions[0].servce");
  EXPECT_EQ(errors[0].message, "unknown key (allowed: id, service)");
  EXPECT_EQ(errors[1].path, "$.interruptions[0].zz");
}

TEST(ObjectReader, MissingRequiredAndWrongTypes) {
  const Json j = parse_json(R"({"name": 7, "when": null, "n": "5"})");
  std::vector<FieldError> errors;
  ObjectReader r(j, "$", errors);
  r.required_string("id");
  r.required_string("name");
  r.required_instant("when");
  EXPECT_EQ(r.optional_int("n"), std::nullopt);
  r.finish();
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.id");
  EXPECT_EQ(errors[0].message, "required key is missing");
  EXPECT_EQ(errors[1].path, "$.name");
  EXPECT_EQ(errors[1].message, "expected string, found integer");
  EXPECT_EQ(errors[2].path, "$.when");
  EXPECT_EQ(errors[2].message, "required key is missing");
  EXPECT_EQ(errors[3].path, "$.n");
  EXPECT_EQ(errors[3].message, "expected integer, found string");
}

TEST(ObjectReader, NullIsAbsentForOptionalKeys) {
  const Json j = parse_json(R"({"end": null})");
  std::vector<FieldError> errors;
  ObjectReader r(j, "$", errors);
  EXPECT_EQ(r.optional_instant("end"), std::nullopt);
  EXPECT_FALSE(r.has("end"));
  r.finish();
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

TEST(ObjectReader, NonObjectIsOneErrorNotACrash) {
  for (const char* text : {"[1, 2]", "\"x\"", "null", "3"}) {
    const Json j = parse_json(text);
    std::vector<FieldError> errors;
    ObjectReader r(j, "$.services[2]", errors);
    EXPECT_FALSE(r.is_object());
    EXPECT_EQ(r.required_string("id"), "");
    EXPECT_EQ(r.required_int("n"), 0);
    ObjectReader child = r.required_object("hours");
    child.required_string("mon");
    child.finish();
    r.finish();
    ASSERT_EQ(errors.size(), 1u) << text << "\n" << describe(errors);
    EXPECT_EQ(errors[0].path, "$.services[2]");
    EXPECT_EQ(errors[0].message, "expected object, found " + json_type_name(j));
  }
}

TEST(ObjectReader, ChildObjectsAndArraysCarryTheirPaths) {
  const Json j = parse_json(
      R"({"services": [{"hours": {"mon": 1}}, {"hours": {"mon": "x", "mom": "y"}}, 5]})");
  std::vector<FieldError> errors;
  ObjectReader root(j, "$", errors);
  auto read_service = [](const Json& v, const std::string& path, std::vector<FieldError>& errs) {
    ObjectReader r(v, path, errs);
    ObjectReader hours = r.required_object("hours");
    std::string mon = hours.required_string("mon");
    hours.finish();
    r.finish();
    return mon;
  };
  const std::vector<std::string> mons = root.required_array("services", read_service);
  root.finish();
  EXPECT_EQ(mons.size(), 3u);  // one entry per element, even the broken ones
  ASSERT_EQ(errors.size(), 3u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.services[0].hours.mon");
  EXPECT_EQ(errors[0].message, "expected string, found integer");
  EXPECT_EQ(errors[1].path, "$.services[1].hours.mom");
  EXPECT_EQ(errors[1].message, "unknown key (allowed: mon)");
  EXPECT_EQ(errors[2].path, "$.services[2]");
  EXPECT_EQ(errors[2].message, "expected object, found integer");
}

TEST(ObjectReader, ListElementsAndOptionalObjects) {
  const Json j = parse_json(R"({"customers": ["a", 2, ""], "policy": {"x": 1}, "arr": {}})");
  std::vector<FieldError> errors;
  ObjectReader r(j, "$", errors);
  r.optional_string_list("customers");
  auto read_policy = [](const Json& v, const std::string& path, std::vector<FieldError>& errs) {
    ObjectReader p(v, path, errs);
    int64_t x = p.required_int("x", 5);
    p.finish();
    return x;
  };
  EXPECT_EQ(r.optional_object("policy", read_policy), std::nullopt);  // invalid: not a value
  r.optional_string_list("arr");
  r.finish();
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.customers[1]");
  EXPECT_EQ(errors[1].path, "$.customers[2]");
  EXPECT_EQ(errors[1].message, "must not be empty");
  EXPECT_EQ(errors[2].path, "$.policy.x");
  EXPECT_EQ(errors[2].message, "must be at least 5, found 1");
  EXPECT_EQ(errors[3].path, "$.arr");
  EXPECT_EQ(errors[3].message, "expected array, found object");
}

TEST(ThrowIfErrors, ThrowsOneValidationErrorInOrder) {
  EXPECT_NO_THROW(throw_if_errors({}));
  try {
    throw_if_errors({{"$.b", "second"}, {"$.a", "first"}});
    FAIL() << "no exception";
  } catch (const ValidationError& e) {
    ASSERT_EQ(e.errors().size(), 2u);
    EXPECT_EQ(e.errors()[0].path, "$.b");
    EXPECT_EQ(e.status(), 400);
    EXPECT_STREQ(e.what(), "$.b: second; $.a: first");
  }
}

// ---- percentages -------------------------------------------------------------------------

int64_t thousandths_of(std::string_view text, std::vector<FieldError>& errors) {
  return parse_thousandths(parse_json(text), "$.target_percent", errors);
}

TEST(Thousandths, ParsesExactly) {
  std::vector<FieldError> errors;
  EXPECT_EQ(thousandths_of("99.75", errors), 99750);
  EXPECT_EQ(thousandths_of("99.57", errors), 99570);
  EXPECT_EQ(thousandths_of("99.999", errors), 99999);
  EXPECT_EQ(thousandths_of("100", errors), 100000);
  EXPECT_EQ(thousandths_of("100.0", errors), 100000);
  EXPECT_EQ(thousandths_of("0", errors), 0);
  EXPECT_EQ(thousandths_of("0.001", errors), 1);
  EXPECT_EQ(thousandths_of("1e1", errors), 10000);
  EXPECT_EQ(thousandths_of("99.750", errors), 99750);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

TEST(Thousandths, RefusesWhatIsNotAnExactPercentage) {
  std::vector<FieldError> errors;
  thousandths_of("99.9999", errors);
  thousandths_of("-1", errors);
  thousandths_of("100.5", errors);
  thousandths_of("\"99.75\"", errors);
  thousandths_of("100.001", errors);
  thousandths_of("1e300", errors);
  thousandths_of("true", errors);
  ASSERT_EQ(errors.size(), 7u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.target_percent");
  EXPECT_EQ(errors[0].message, "a percentage allows at most 3 decimals, found 99.9999");
  EXPECT_EQ(errors[1].message, "a percentage must not be negative, found -1");
  EXPECT_EQ(errors[2].message, "a percentage must be at most 100, found 100.5");
  EXPECT_EQ(errors[3].message, "expected number (a percentage), found string");
  EXPECT_EQ(errors[4].message, "a percentage must be at most 100, found 100.001");
  EXPECT_EQ(errors[5].message, "a percentage must be at most 100, found 1e+300");
  EXPECT_EQ(errors[6].message, "expected number (a percentage), found boolean");
}

TEST(Thousandths, WritesTheShortestNumber) {
  EXPECT_EQ(thousandths_to_json(99750).dump(), "99.75");
  EXPECT_EQ(thousandths_to_json(99570).dump(), "99.57");
  EXPECT_EQ(thousandths_to_json(99999).dump(), "99.999");
  EXPECT_EQ(thousandths_to_json(100000).dump(), "100");
  EXPECT_EQ(thousandths_to_json(0).dump(), "0");
  EXPECT_EQ(thousandths_to_json(1).dump(), "0.001");
  EXPECT_EQ(thousandths_to_json(-1500).dump(), "-1.5");
  EXPECT_TRUE(thousandths_to_json(100000).is_number_integer());
}

TEST(Thousandths, EveryValueRoundTrips) {
  // The whole domain of percentages, 0.000 to 100.000: text → number → thousandths → text.
  for (int64_t t = 0; t <= 100000; ++t) {
    std::vector<FieldError> errors;
    const Json j = thousandths_to_json(t);
    ASSERT_EQ(parse_thousandths(parse_json(j.dump()), "$", errors), t) << j.dump();
    ASSERT_TRUE(errors.empty()) << t;
  }
}

}  // namespace
}  // namespace slmhub
