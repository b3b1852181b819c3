// Every dataset/expected-report pair in ../shared/vectors and tests/vectors: the engine's
// report for the expected file's month must equal the expected JSON exactly. Adding a pair
// adds a case; no pair found is a failure, not a pass.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine.hpp"
#include "report_json.hpp"
#include "slmhub/domain.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::availability {
namespace {

std::array<std::string, 2> vector_dirs() {
  return {(test::shared_dir() / "vectors").string(),
          std::string(SLMHUB_SOURCE_DIR "/tests/vectors")};
}

TEST(Vectors, EveryPairReproducesExactly) {
  int pairs = 0;
  for (const std::filesystem::path dir : vector_dirs()) {
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (!name.ends_with(".expected.json")) continue;
      const auto input = dir / (name.substr(0, name.size() - 14) + ".json");
      SCOPED_TRACE(input.string());
      ASSERT_TRUE(std::filesystem::exists(input)) << "no dataset for " << entry.path();
      const Json expected = parse_json(test::read_text(entry.path()));
      const Dataset dataset = parse_dataset(parse_json(test::read_text(input)));
      std::optional<Instant> as_of;
      if (expected.contains("as_of")) as_of = parse_instant(expected["as_of"].get<std::string>());
      const auto report =
          compute(dataset, parse_month(expected["month"].get<std::string>()), as_of);
      EXPECT_EQ(report_to_json(report), expected);
      ++pairs;
    }
  }
  EXPECT_GE(pairs, 1) << "no vector pairs found (is SLMHUB_SHARED_DIR set?)";
}

}  // namespace
}  // namespace slmhub::availability
