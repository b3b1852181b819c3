// read_dataset and its fast decoder against the strict path (parse_json + parse_dataset), the
// reference: on every vector and on hundreds of single mutations of the example dataset, the
// decoder either gives up or returns exactly the strict path's Dataset, whether it reads the
// text whole or its long arrays in pieces (as it does large datasets), and read_dataset
// returns the same Dataset or throws the same errors.
#include "dataset_fast.hpp"
#include "slmhub/domain.hpp"
#include "test_files.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace slmhub {
namespace {

// The strict path's verdict: its Dataset, or the errors it throws.
struct Verdict {
  std::optional<Dataset> dataset;
  std::vector<FieldError> errors;
};

template <typename Read>
Verdict verdict_of(Read&& read) {
  try {
    return {read(), {}};
  } catch (const ValidationError& e) {
    return {std::nullopt, e.errors()};
  }
}

std::string describe(const std::vector<FieldError>& errors) {
  std::string text;
  for (const auto& e : errors) text += e.path + ": " + e.message + "\n";
  return text;
}

// The decoder's own verdict, on a copy of `text` with the padding it may read.
std::optional<Dataset> fast(const std::string& text,
                            std::size_t piece_bytes = detail::kPieceBytes) {
  std::string padded = text;
  padded.append(detail::kFastPadding, ' ');
  return detail::try_fast_dataset(std::string_view(padded.data(), text.size()), 64, piece_bytes);
}

// The same, reading the long arrays in pieces of `piece_bytes` whatever the text's length
// (from `fd`, a file holding `text`, if given).
std::optional<Dataset> fast_in_pieces(const std::string& text, std::size_t piece_bytes,
                                      int fd = -1) {
  std::string padded = text;
  padded.append(detail::kFastPadding, ' ');
  return detail::try_fast_dataset_in_pieces(std::string_view(padded.data(), text.size()), 64,
                                            piece_bytes, fd);
}

// Piece sizes for the tests: one entry per piece, and a few entries per piece.
constexpr std::size_t kSmallPieces[] = {1, 300};

// Checks `text` and returns whether the fast decoder accepted it.
bool check_agreement(const std::string& text, const std::string& what) {
  SCOPED_TRACE(what + ": " + text.substr(0, 200));
  const Verdict strict = verdict_of([&] { return parse_dataset(parse_json(text)); });
  const std::optional<Dataset> decoded = fast(text);
  if (decoded) {
    EXPECT_TRUE(strict.dataset) << "the fast decoder accepted what the strict path rejects:\n"
                                << describe(strict.errors);
    if (strict.dataset) {
      EXPECT_TRUE(*decoded == *strict.dataset) << "different Datasets";
    }
  }
  for (const std::size_t piece_bytes : kSmallPieces) {
    if (const auto in_pieces = fast_in_pieces(text, piece_bytes)) {
      EXPECT_TRUE(strict.dataset) << "read in pieces of " << piece_bytes
                                  << ", the fast decoder accepted what the strict path rejects:\n"
                                  << describe(strict.errors);
      if (strict.dataset) {
        EXPECT_TRUE(*in_pieces == *strict.dataset)
            << "different Datasets in pieces of " << piece_bytes;
      }
    }
  }
  const Verdict read = verdict_of([&] { return read_dataset(text); });
  EXPECT_EQ(read.dataset.has_value(), strict.dataset.has_value());
  if (read.dataset && strict.dataset) {
    EXPECT_TRUE(*read.dataset == *strict.dataset);
  }
  EXPECT_EQ(describe(read.errors), describe(strict.errors));
  return decoded.has_value();
}

std::vector<std::filesystem::path> dataset_vectors() {
  std::vector<std::filesystem::path> files;
  for (const auto& dir : {test::shared_dir() / "vectors",
                          std::filesystem::path(SLMHUB_SOURCE_DIR) / "tests" / "vectors"}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.ends_with(".json") && !name.ends_with(".expected.json")) {
        files.push_back(entry.path());
      }
    }
  }
  return files;
}

TEST(ReadDataset, EveryVectorDecodesFastToTheStrictDataset) {
  const auto files = dataset_vectors();
  ASSERT_GE(files.size(), 4u);
  for (const auto& file : files) {
    const std::string text = test::read_text(file);
    EXPECT_TRUE(check_agreement(text, file.string())) << "fast path gave up on " << file;
    for (const std::size_t piece_bytes : kSmallPieces) {
      EXPECT_TRUE(fast_in_pieces(text, piece_bytes))
          << "reading in pieces of " << piece_bytes << " gave up on " << file;
    }
    const Dataset strict = parse_dataset(parse_json(text));
    EXPECT_TRUE(read_dataset_file(file.string()) == strict) << file;
    // Where its references point, from the fast path and from the strict one (an escape in a
    // key sends the text there).
    const auto escaped = std::filesystem::temp_directory_path() /
                         ("slmhub-escaped-" + std::to_string(::getpid()) + ".json");
    std::string strict_text = text;
    const std::size_t key = strict_text.find("\"timezone\"");
    ASSERT_NE(key, std::string::npos) << file;
    strict_text.replace(key, 10, "\"timezon\\u0065\"");
    ASSERT_FALSE(fast(strict_text)) << "the fast path took " << file;
    std::ofstream(escaped) << strict_text;
    for (const auto& path : {file, escaped}) {
      DatasetReferences refs;
      EXPECT_TRUE(read_dataset_file(path.string(), refs) == strict) << path;
      EXPECT_EQ(refs, resolve_references(strict)) << path;
      EXPECT_EQ(refs.interruption_service.size(), strict.interruptions.size()) << path;
    }
    std::filesystem::remove(escaped);
  }
}

// The example with every optional part present, so mutations reach each of them.
Json full_example() {
  Json j = parse_json(test::read_shared("vectors/example-2026-11.json"));
  j["customers"][0]["contacts"] = {
      {{"role", "billing"}, {"name", "Billing desk"}, {"email", "billing@example.org"}}};
  j["customers"][0]["subscriptions"][0]["end"] = "2027-01-01T00:00:00Z";
  j["interruptions"][0]["description"] = "Listener down";
  j["services"][0]["timezone"] = "UTC";
  j["services"][1]["credit_policy"] = {
      {"type", "tiered"}, {"tiers", {{{"below_percent", 99}, {"credit_percent", 10}}}}};
  j["maintenance"][0]["status"] = "complete";
  return j;
}

// Calls visit(pointer) for every value in `json`.
void walk(const Json& json, const Json::json_pointer& at,
          const std::function<void(const Json::json_pointer&)>& visit) {
  visit(at);
  if (json.is_object()) {
    for (const auto& [key, value] : json.items()) walk(value, at / key, visit);
  } else if (json.is_array()) {
    for (std::size_t i = 0; i < json.size(); ++i) walk(json[i], at / i, visit);
  }
}

TEST(ReadDataset, SingleMutationsOfTheExample) {
  const Json base = full_example();
  ASSERT_TRUE(check_agreement(base.dump(), "the full example"));

  std::vector<std::pair<std::string, std::string>> cases;  // what, text
  auto mutate = [&](const std::string& what, const std::function<void(Json&)>& change) {
    Json j = base;
    change(j);
    cases.emplace_back(what, j.dump());
  };
  Json deep = Json::array();
  for (int i = 0; i < 80; ++i) deep = Json::array({deep});
  const std::vector<Json> replacements = {Json(1),
                                          Json(-1),
                                          Json(1.5),
                                          Json(40.0),
                                          Json("x"),
                                          Json(""),
                                          Json(true),
                                          Json(nullptr),
                                          Json::array(),
                                          Json::object(),
                                          deep,
                                          Json(1e300),
                                          Json(100.001),
                                          Json(99.7501),
                                          Json(101),
                                          Json(18446744073709551615ull),
                                          Json(2562047788015216)};
  walk(base, Json::json_pointer(), [&](const Json::json_pointer& at) {
    const Json& value = base[at];
    const std::string where = at.to_string();
    if (value.is_object()) {
      mutate(where + " + unknown key", [&](Json& j) { j[at]["zz"] = 1; });
      for (const auto& [key, unused] : value.items()) {
        mutate(where + " - " + key, [&, key = key](Json& j) { j[at].erase(key); });
      }
      if (value.contains("start") && value.contains("end")) {
        mutate(where + " start/end swapped",
               [&](Json& j) { std::swap(j[at]["start"], j[at]["end"]); });
        mutate(where + " empty period", [&](Json& j) { j[at]["end"] = j[at]["start"]; });
      }
    } else if (value.is_array()) {
      if (!value.empty()) {
        mutate(where + " first repeated", [&](Json& j) { j[at].push_back(j[at][0]); });
      }
      mutate(where + " emptied", [&](Json& j) { j[at] = Json::array(); });
    }
    if (at.empty()) return;
    for (const auto& replacement : replacements) {
      mutate(where + " = " + replacement.dump().substr(0, 20),
             [&](Json& j) { j[at] = replacement; });
    }
    if (value.is_string()) {
      const auto text = value.get<std::string>();
      mutate(where + " dangling", [&](Json& j) { j[at] = text + "-nope"; });
      if (text.ends_with("Z")) {
        mutate(where + " without offset",
               [&](Json& j) { j[at] = text.substr(0, text.size() - 1); });
        mutate(where + " +02:00",
               [&](Json& j) { j[at] = text.substr(0, text.size() - 1) + "+02:00"; });
        mutate(where + " .000Z",
               [&](Json& j) { j[at] = text.substr(0, text.size() - 1) + ".000Z"; });
        mutate(where + " .5Z", [&](Json& j) { j[at] = text.substr(0, text.size() - 1) + ".5Z"; });
      }
    }
  });

  int accepted = 0;
  for (const auto& [what, text] : cases) accepted += check_agreement(text, what) ? 1 : 0;
  // Not vacuous: many mutations stay valid (an optional key dropped, an instant with an
  // offset, a list emptied) and the decoder accepts them itself.
  EXPECT_GT(cases.size(), 1000u);
  EXPECT_GT(accepted, 50);
}

// Textual forms a JSON tree cannot hold: numbers as written, escapes, repeated keys, syntax.
TEST(ReadDataset, TextualVariants) {
  const std::string base = full_example().dump();
  auto replaced = [&](const std::string& from, const std::string& to) {
    const auto at = base.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    std::string text = base;
    return text.replace(at, from.size(), to);
  };
  // Numbers and strings written differently but meaning the same: the decoder reads them.
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"target_percent\":99.75", "\"target_percent\":99.750"},
           {"\"target_percent\":99.75", "\"target_percent\":9.975e1"},
           {"\"target_percent\":99.75", "\"target_percent\":1e2"},
           {"\"target_percent\":99.75", "\"target_percent\":100.0"},
           {"\"target_percent\":99.75", "\"target_percent\":-0"},
           {"\"target_percent\":99.75", "\"target_percent\":-0.0"},
           {"\"target_percent\":99.75", "\"target_percent\":0.000001e6"},
           {"\"target_percent\":99.75", " \"target_percent\" :\n\t99.75 "},
           {"\"monthly_charge_cents\":150000", "\"monthly_charge_cents\":-0"},
           {"\"name\":\"Billing desk\"", "\"name\":\"Caf\\u00e9 \\ud83d\\ude00 \\\" \\\\ \\/\""},
           {"\"name\":\"Billing desk\"", "\"name\":\"Café 😀\""},
           {"\"description\":\"Listener down\"", "\"description\":\"\""},
           {"\"description\":\"Listener down\"", "\"description\":null"}}) {
    EXPECT_TRUE(check_agreement(replaced(from, to), to)) << "fast path gave up on " << to;
  }
  // Meaning the same but left to the strict path (an escape in a key), or invalid.
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"target_percent\":99.75", "\"target_\\u0070ercent\":99.75"},
           {"\"target_percent\":99.75", "\"target_percent\":99.7500001"},
           {"\"target_percent\":99.75", "\"target_percent\":1e400"},
           {"\"target_percent\":99.75", "\"target_percent\":99.75,\"target_percent\":99.75"},
           {"\"target_percent\":99.75", "\"target_percent\":99.75,\"name\":null"},
           {"\"target_percent\":99.75", "\"target_percent\":099.75"},
           {"\"target_percent\":99.75", "\"target_percent\":99.75,"},
           {"\"target_percent\":99.75", "\"target_percent\" 99.75"},
           {"\"target_percent\":99.75", "\"target_percent\":NaN"},
           {"\"monthly_charge_cents\":150000", "\"monthly_charge_cents\":1e5"},
           {"\"monthly_charge_cents\":150000", "\"monthly_charge_cents\":150000x"},
           {"\"monthly_charge_cents\":150000", "\"monthly_charge_cents\":9223372036854775808"},
           {"\"monthly_charge_cents\":150000", "\"monthly_charge_cents\":10000000001"},
           {"\"name\":\"Billing desk\"", "\"name\":\"\\ud83d\""},
           {"\"name\":\"Billing desk\"", "\"name\":\"\\ude00\""},
           {"\"name\":\"Billing desk\"", "\"name\":\"\\x41\""},
           {"\"name\":\"Billing desk\"", "\"name\":\"tab\there\""},
           {"\"name\":\"Billing desk\"", "\"name\":\"\xff\""},
           {"\"name\":\"Billing desk\"", "\"name\":\"a\" \"b\""},
           {"\"description\":\"Listener down\"", "\"description\":nul"},
           {"\"description\":\"Listener down\"", "\"description\":nullx"},
           {"\"description\":\"Listener down\"", "\"description\":true"},
           {"\"customers\":[\"registrar\"]", "\"customers\":[\"registrar\",]"},
           {"\"customers\":[\"registrar\"]", "\"customers\":[\"registrar\" \"library\"]"},
           {"\"customers\":[\"registrar\"]", "\"customers\":[\"registrar\",\"registrar\"]"},
           {"\"customers\":[\"registrar\"]", "\"customers\":[\"registrar\"}"}}) {
    check_agreement(replaced(from, to), to);
  }
  for (const std::string& text :
       {base + " x", base + "}", base + ",", "[" + base + "]", base.substr(0, base.size() - 1),
        std::string(), std::string("null"), std::string(200, '['), "\xef\xbb\xbf" + base}) {
    EXPECT_FALSE(check_agreement(text, "document " + text.substr(0, 20)));
  }
  EXPECT_TRUE(check_agreement(" \n" + base + "\n\t ", "whitespace around"));
}

// Reading in pieces cuts the text between entries by looking, not parsing (dataset_fast.cpp):
// where a look is fooled, by strings holding what a cut looks for or by an odd layout, the
// pieces path must give up or still be right, and the whole-text path must read the dataset.
TEST(ReadDataset, PiecesAreCutOnlyBetweenEntries) {
  const Json base = full_example();
  auto with = [&](const std::function<void(Json&)>& change) {
    Json j = base;
    change(j);
    return j;
  };
  auto check = [&](const std::string& what, const std::string& text, bool valid) {
    SCOPED_TRACE(what);
    EXPECT_EQ(check_agreement(text, what), valid);
    EXPECT_EQ(fast(text).has_value(), valid);
    // And with pieces used for any text longer than a piece, as read_dataset_file does.
    const auto read = fast(text, 1);
    EXPECT_EQ(read.has_value(), valid);
    if (read && valid) {
      EXPECT_TRUE(*read == parse_dataset(parse_json(text)));
    }
  };
  for (const std::string& description :
       {std::string("a},{b"), std::string("a}]b"), std::string("a} , {b"), std::string("}"),
        std::string("\"interruptions\":[{}]"), std::string("\"maintenance\": ["),
        std::string("x\\\"interruptions\": [")}) {
    const Json j = with([&](Json& d) {
      d["interruptions"][0]["description"] = description;
      d["services"][0]["name"] = description;
    });
    check("a string holding " + description, j.dump(), true);
    check("a string holding " + description + ", indented", j.dump(2), true);
  }
  // Either array empty or missing.
  for (const auto& [what, json] : std::vector<std::pair<std::string, Json>>{
           {"no maintenance", with([](Json& d) { d.erase("maintenance"); })},
           {"no interruptions", with([](Json& d) { d.erase("interruptions"); })},
           {"both empty", with([](Json& d) {
              d["maintenance"] = Json::array();
              d["interruptions"] = Json::array();
            })}}) {
    check(what, json.dump(), true);
    check(what + ", indented", json.dump(2), true);
  }
  // Keys in any order (nlohmann writes them sorted: interruptions before maintenance, both
  // between other keys).
  const Json rest = with([](Json& d) {
    d.erase("maintenance");
    d.erase("interruptions");
  });
  const std::string maintenance = "\"maintenance\":" + base["maintenance"].dump();
  const std::string interruptions = "\"interruptions\":" + base["interruptions"].dump();
  const std::string others = rest.dump().substr(1, rest.dump().size() - 2);
  const std::string arrays_first = "{" + maintenance + "," + interruptions + "," + others + "}";
  const std::string arrays_last = "{" + others + "," + maintenance + ",\n" + interruptions + "}";
  check("the arrays before the other keys", arrays_first, true);
  check("the arrays after the other keys", arrays_last, true);
  // The last entry without its closing brace.
  std::string cut_short = arrays_last;
  cut_short.erase(cut_short.rfind("}]"), 1);
  check("the last entry cut short", cut_short, false);
  // Invalid: each must be refused, in pieces as whole.
  for (const auto& [what, json] : std::vector<std::pair<std::string, Json>>{
           {"entries that are not objects", with([](Json& d) {
              d["interruptions"] = {1, 2};
            })},
           {"an object for the array", with([](Json& d) { d["interruptions"] = Json::object(); })},
           {"a nested array of objects in an entry", with([](Json& d) {
              d["interruptions"][0]["zz"] = {{{"a", 1}}, {{"b", 2}}};
            })},
           {"the key inside a service",
            with([](Json& d) { d["services"][0]["interruptions"] = Json::array(); })}}) {
    check(what, json.dump(), false);
  }
  check("the key repeated", "{" + interruptions + "," + others + "," + interruptions + "}", false);
}

// A dataset file larger than a piece: read_dataset_file reads its long arrays from the file
// in pieces (with read(), not through the mapping) and gives the strict path's Dataset, also
// when a cut proves wrong and it reads the text whole.
TEST(ReadDataset, ALargeFileIsReadInPieces) {
  Json j = full_example();
  const Json interruption = j["interruptions"][0];
  const Json window = j["maintenance"][0];
  j["interruptions"] = Json::array();
  j["maintenance"] = Json::array();
  for (int i = 0; i < 12000; ++i) {
    Json copy = interruption;
    copy["id"] = "INC" + std::to_string(1000000 + i);
    j["interruptions"].push_back(copy);
    if (i % 4 == 0) {
      Json w = window;
      w["id"] = "CHG" + std::to_string(1000000 + i);
      j["maintenance"].push_back(w);
    }
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("slmhub-large-" + std::to_string(::getpid()) + ".json");
  for (const bool fooled : {false, true}) {
    if (fooled) j["interruptions"][6000]["description"] = "a},{\"b\": [}]";
    const std::string text = j.dump(1);
    ASSERT_GT(text.size(), 2 * detail::kPieceBytes);
    std::ofstream(path) << text;
    const Dataset strict = parse_dataset(parse_json(text));
    EXPECT_TRUE(read_dataset_file(path.string()) == strict) << "fooled: " << fooled;
    EXPECT_TRUE(read_dataset(text) == strict) << "fooled: " << fooled;
    EXPECT_EQ(fast_in_pieces(text, detail::kPieceBytes).has_value(), !fooled);
    // The pieces read from the file itself, as read_dataset_file does.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const auto from_file = fast_in_pieces(text, detail::kPieceBytes, fd);
    ::close(fd);
    EXPECT_EQ(from_file.has_value(), !fooled);
    if (from_file) {
      EXPECT_TRUE(*from_file == strict);
    }
  }
  std::filesystem::remove(path);
}

TEST(ReadDataset, DepthLimitIsTheStrictPaths) {
  const std::string text = full_example().dump();
  for (int depth : {1, 3, 4, 5, 6}) {
    const Verdict strict = verdict_of([&] { return parse_dataset(parse_json(text, depth)); });
    const Verdict read = verdict_of([&] { return read_dataset(text, depth); });
    EXPECT_EQ(describe(read.errors), describe(strict.errors)) << depth;
    EXPECT_EQ(read.dataset.has_value(), strict.dataset.has_value()) << depth;
  }
}

TEST(ReadDataset, FileErrorsAndEmptyFile) {
  EXPECT_THROW(read_dataset_file("/nonexistent/dataset.json"), std::system_error);
  const auto path = std::filesystem::temp_directory_path() /
                    ("slmhub-empty-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path).close();
  const Verdict strict = verdict_of([&] { return parse_dataset(parse_json("")); });
  const Verdict read = verdict_of([&] { return read_dataset_file(path.string()); });
  std::filesystem::remove(path);
  EXPECT_FALSE(read.dataset);
  EXPECT_EQ(describe(read.errors), describe(strict.errors));
}

// One interruption, as a POST body: try_read_interruption either gives up or returns the
// strict path's Interruption, and to_json_text writes what to_json(...).dump() writes.
bool check_interruption(const std::string& text, const std::string& what) {
  SCOPED_TRACE(what + ": " + text.substr(0, 200));
  std::optional<Interruption> strict;
  std::vector<FieldError> errors;
  try {
    strict = parse_interruption(parse_json(text));
  } catch (const ValidationError& e) {
    errors = e.errors();
  }
  const std::optional<Interruption> fast = try_read_interruption(text);
  if (fast) {
    EXPECT_TRUE(strict) << "the fast decoder accepted what the strict path rejects:\n"
                        << describe(errors);
    if (strict) {
      EXPECT_TRUE(*fast == *strict) << "different Interruptions";
    }
  }
  if (strict) {
    EXPECT_EQ(to_json_text(*strict), to_json(*strict).dump());
  }
  return fast.has_value();
}

TEST(ReadInterruption, SingleMutationsAgreeWithTheStrictPath) {
  const Json base = {{"id", "inc-1"},
                     {"service", "oracle-prod"},
                     {"type", "outage"},
                     {"start", "2026-11-03T10:00:00Z"},
                     {"end", "2026-11-03T11:30:00Z"},
                     {"customers", {"registrar", "library"}},
                     {"description", "Listener down"}};
  ASSERT_TRUE(check_interruption(base.dump(), "the example"));
  const std::vector<Json> replacements = {Json(1),
                                          Json(-1),
                                          Json(1.5),
                                          Json("x"),
                                          Json(""),
                                          Json(true),
                                          Json(nullptr),
                                          Json::array(),
                                          Json::object(),
                                          Json("outage"),
                                          Json("planned_maintenance"),
                                          Json("a\"b\\c\n\t\x01 é 😀")};
  int cases = 0;
  int accepted = 0;
  auto check = [&](const std::string& what, const Json& j) {
    ++cases;
    accepted += check_interruption(j.dump(), what) ? 1 : 0;
  };
  walk(base, Json::json_pointer(), [&](const Json::json_pointer& at) {
    const Json& value = base[at];
    const std::string where = at.to_string();
    if (value.is_object()) {
      Json j = base;
      j[at]["zz"] = 1;
      check(where + " + unknown key", j);
      for (const auto& [key, unused] : value.items()) {
        Json without = base;
        without[at].erase(key);
        check(where + " - " + key, without);
      }
      Json swapped = base;
      std::swap(swapped["start"], swapped["end"]);
      check("start/end swapped", swapped);
    } else if (value.is_array()) {
      Json repeated = base;
      repeated[at].push_back(repeated[at][0]);
      check(where + " first repeated", repeated);
    }
    if (at.empty()) return;
    for (const auto& replacement : replacements) {
      Json j = base;
      j[at] = replacement;
      check(where + " = " + replacement.dump(), j);
    }
    if (value.is_string() && value.get<std::string>().ends_with("Z")) {
      const auto text = value.get<std::string>();
      for (const std::string& other :
           {text.substr(0, text.size() - 1), text.substr(0, text.size() - 1) + "+02:00",
            text.substr(0, text.size() - 1) + ".5Z"}) {
        Json j = base;
        j[at] = other;
        check(where + " = " + other, j);
      }
    }
  });
  EXPECT_GT(cases, 80);
  EXPECT_GT(accepted, 20);  // not vacuous: the decoder reads the valid variants itself
}

TEST(ReadInterruption, TextualVariants) {
  const std::string base =
      R"({"id":"inc-1","service":"oracle-prod","type":"outage","start":"2026-11-03T10:00:00Z"})";
  EXPECT_TRUE(check_interruption(base, "minimal"));
  EXPECT_TRUE(check_interruption(" \n" + base + "\t ", "whitespace around"));
  EXPECT_TRUE(check_interruption(
      R"({"id":"inc-1","service":"oracle-prod","type":"outage","start":"2026-11-03T10:00:00Z","description":"Caf\u00e9 \ud83d\ude00 \" \\ \/"})",
      "escapes"));
  const std::vector<std::string> refused = {
      base + " x",
      base + "}",
      base + ",",
      "[" + base + "]",
      base.substr(0, base.size() - 1),
      "",
      "null",
      "\"inc-1\"",
      std::string(200, '['),
      R"({"id":"inc-1","id":"inc-2","service":"s","type":"outage","start":"2026-11-03T10:00:00Z"})",
      R"({"i\u0064":"inc-1","service":"s","type":"outage","start":"2026-11-03T10:00:00Z"})",
      R"({"id":"\ud83d","service":"s","type":"outage","start":"2026-11-03T10:00:00Z"})"};
  for (const std::string& text : refused) {
    EXPECT_FALSE(check_interruption(text, "document " + text.substr(0, 30)));
  }
  // The depth limit is the strict path's: an object with a list needs two levels.
  const std::string with_list =
      R"({"id":"inc-1","service":"s","type":"outage","start":"2026-11-03T10:00:00Z","customers":["c"]})";
  EXPECT_FALSE(try_read_interruption(with_list, 1));
  EXPECT_TRUE(try_read_interruption(with_list, 2));
}

TEST(ReadInterruption, TextOfEveryControlCharacterIsTheTreesDump) {
  Interruption value;
  value.id = "inc-1";
  value.service = "s";
  value.start = parse_instant("2026-11-03T10:00:00Z");
  std::string every;
  for (int c = 1; c < 0x80; ++c) every += static_cast<char>(c);
  value.description = every + "é😀";
  value.customers = {"a\"", "b\\"};
  EXPECT_EQ(to_json_text(value), to_json(value).dump());
  value.description = std::string("\xff");  // not UTF-8: refused as the tree's dump refuses it
  EXPECT_THROW(to_json_text(value), Json::type_error);
}

}  // namespace
}  // namespace slmhub
