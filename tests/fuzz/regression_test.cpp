// Every committed input of the fuzz targets, run through the same checks as the fuzzers
// (checks.hpp) in the ordinary build: the seed corpus (tests/fuzz/corpus/<name>/) and the
// inputs that once failed (tests/fuzz/regressions/<name>/), so a finding stays fixed. A broken
// property or an undocumented exception fails the test naming the file; a crash or a hang
// fails the whole binary.
#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "checks.hpp"
#include "http/http_server.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::fuzz {
namespace {

struct Target {
  const char* name;  // fuzz_<name>, corpus/<name>, regressions/<name>
  void (*check)(std::string_view);
};

constexpr std::array kTargets{
    Target{"json", check_json},
    Target{"dataset", check_dataset},
    Target{"cron", check_cron},
    Target{"mime", check_mime},
    Target{"mime_header", check_mime_header},
    Target{"mail_address", check_mail_address},
    Target{"html_text", check_html_text},
    Target{"sn_webhook", check_sn_webhook},
    Target{"sn_record", check_sn_record},
    Target{"sn_link", check_sn_link},
    Target{"http", check_http},
    Target{"mustache", check_mustache},
};

const std::filesystem::path kFuzzDir = std::filesystem::path(SLMHUB_SOURCE_DIR) / "tests" / "fuzz";

std::vector<std::filesystem::path> inputs(const std::string& kind, const std::string& name) {
  std::vector<std::filesystem::path> files;
  const auto dir = kFuzzDir / kind / name;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void run(const Target& target, const std::filesystem::path& file) {
  SCOPED_TRACE(file.string());
  const std::string input = test::read_text(file);
  try {
    target.check(input);
  } catch (const Finding& f) {
    ADD_FAILURE() << "finding: " << f.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "an exception the parser does not document: " << e.what();
  }
}

class FuzzInputs : public testing::TestWithParam<Target> {};

TEST_P(FuzzInputs, SeedCorpusPasses) {
  const auto files = inputs("corpus", GetParam().name);
  EXPECT_FALSE(files.empty()) << "no seeds in tests/fuzz/corpus/" << GetParam().name;
  for (const auto& file : files) run(GetParam(), file);
}

TEST_P(FuzzInputs, RegressionsPass) {
  for (const auto& file : inputs("regressions", GetParam().name)) run(GetParam(), file);
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzInputs, testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(info.param.name); });

// The host answers a request it cannot route with problem+json quoting the decoded path
// (RootHandler::dispatch). Percent-escapes decode to any bytes, so that answer must be JSON
// whatever the path held; the fuzzer's http target cannot check it, because the fuzz build
// does not link the host.
TEST(FuzzInputs, ProblemJsonOfAnyPathIsJson) {
  for (const char* kind : {"corpus", "regressions"}) {
    for (const auto& file : inputs(kind, "http")) {
      SCOPED_TRACE(file.string());
      const std::string target = test::read_text(file);
      std::string path = target;
      try {
        path = Poco::URI(target).getPath();
      } catch (const Poco::Exception&) {
      }
      std::string body;
      ASSERT_NO_THROW(body = host::problem_json(404, "Not Found", "no resource at " + path, target,
                                                {{path, path}}));
      EXPECT_NO_THROW(parse_json(body));
    }
  }
}

}  // namespace
}  // namespace slmhub::fuzz
