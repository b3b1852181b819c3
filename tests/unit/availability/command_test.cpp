// `slmhub report availability` run in-process: the report on stdout and in --out, and the
// sysexits statuses and one-line `FILE: $.path: message` errors of DESIGN.md §5.1.
#include "command.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::availability {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test, removed afterwards.
class ReportCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("slmhub-avail-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  int run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return run_report_command(args, out_, err_);
  }
  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  fs::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ReportCommand, VectorToStdout) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run({"--input", input, "--month", "2026-11"}), 0) << err_.str();
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(parse_json(out_.str()),
            parse_json(test::read_text(
                (test::shared_dir() / "vectors/example-2026-11.expected.json").string())));
}

TEST_F(ReportCommand, VectorToOutFileWithEqualsForm) {
  const fs::path out = dir_ / "report.json";
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run({"--input=" + input, "--month=2026-11", "--format", "json", "--out", out.string()}),
            0)
      << err_.str();
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(parse_json(test::read_text(out)),
            parse_json(test::read_text(
                (test::shared_dir() / "vectors/example-2026-11.expected.json").string())));
  // Only the report is left behind: no temp file.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 1);
}

TEST_F(ReportCommand, AsOfIsAccepted) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run({"--input", input, "--month", "2026-11", "--as-of", "2026-11-03T14:40:00Z"}), 0)
      << err_.str();
  const Json report = parse_json(out_.str());
  // oracle-prod: 2026-11-01T05:00Z to 14:40Z on the 3rd; INC0001/2 down 14:00-14:40.
  EXPECT_EQ(report["services"][1]["scheduled_seconds"], 2 * 86400 + 9 * 3600 + 40 * 60);
  EXPECT_EQ(report["services"][1]["downtime_seconds"], 2400);
}

// The page says "as of" only for a month that was still under way then: an --as-of after the
// month's end measures the whole month, and the page says nothing of it.
TEST_F(ReportCommand, ThePageNamesAsOfOnlyWhenItCutsTheMonthShort) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run({"--input", input, "--month", "2026-11", "--format", "html", "--as-of",
                 "2026-11-03T14:40:00Z"}),
            0)
      << err_.str();
  EXPECT_NE(out_.str().find("<dt>Figures as of</dt>"), std::string::npos);
  ASSERT_EQ(run({"--input", input, "--month", "2026-11", "--format", "html", "--as-of",
                 "2027-01-01T00:00:00Z"}),
            0)
      << err_.str();
  EXPECT_EQ(out_.str().find("Figures as of"), std::string::npos);
  // 2026-12-01T05:30Z: November is over in UTC, not in Chicago, where the services are.
  ASSERT_EQ(run({"--input", input, "--month", "2026-11", "--format", "html", "--as-of",
                 "2026-12-01T05:30:00Z"}),
            0)
      << err_.str();
  EXPECT_NE(out_.str().find("<dt>Figures as of</dt>"), std::string::npos);
}

TEST_F(ReportCommand, BadUsageIs64) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  EXPECT_EQ(run({}), 64);
  EXPECT_EQ(run({"--input", input}), 64);
  EXPECT_EQ(run({"--month", "2026-11"}), 64);
  EXPECT_EQ(run({"--input", input, "--month", "2026-13"}), 64);
  EXPECT_EQ(run({"--input", input, "--month", "2026-11", "--as-of", "2026-11-03T14:40:00"}), 64);
  EXPECT_EQ(run({"--input", input, "--month", "2026-11", "--bogus", "x"}), 64);
  EXPECT_EQ(run({"--input", input, "--month", "2026-11", "extra"}), 64);
  EXPECT_EQ(run({"--input", input, "--month"}), 64);
  EXPECT_EQ(run({"--input", input, "--input", input, "--month", "2026-11"}), 64);
  EXPECT_EQ(run({"--input", input, "--month", "2026-11", "--format", "xml"}), 64);
  EXPECT_NE(err_.str().find("--format must be json, csv or html, found 'xml'"), std::string::npos)
      << err_.str();
  EXPECT_EQ(out_.str(), "");
  // An --as-of before the month begins (a typo) measures nothing: refused, not "all met".
  EXPECT_EQ(run({"--input", input, "--month", "2026-12", "--as-of", "2026-11-20T00:00:00Z"}), 64);
  EXPECT_NE(err_.str().find("--as-of: 2026-11-20T00:00:00Z is before 2026-12 begins ("),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(out_.str(), "");
}

// Standard output that cannot take the report (a full disk, a closed pipe): 73, not a cut
// report with status 0.
TEST_F(ReportCommand, AReportStandardOutputRefusesIs73) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  out_.setstate(std::ios::badbit);
  err_.str("");
  EXPECT_EQ(run_report_command({"--input", input, "--month", "2026-11"}, out_, err_), 73);
  EXPECT_TRUE(err_.str().starts_with("standard output: cannot write the report")) << err_.str();
}

// The vector as the report page (its content is report_html_test's and the Chromium test's
// business): one whole HTML document, marked as computed offline, one section per service.
TEST_F(ReportCommand, VectorAsHtml) {
  const fs::path out = dir_ / "report.html";
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(
      run({"--input", input, "--month", "2026-11", "--format", "html", "--out", out.string()}), 0)
      << err_.str();
  const std::string html = test::read_text(out);
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>\n")) << html.substr(0, 100);
  EXPECT_TRUE(html.ends_with("</html>\n"));
  EXPECT_NE(html.find("<dd data-field=\"state\">computed</dd>"), std::string::npos);
  EXPECT_NE(html.find("data-service=\"oracle-prod\""), std::string::npos);
  EXPECT_NE(html.find("data-service=\"mysql-qa\""), std::string::npos);
}

// The vector as CSV: a header, one row per service, one per credit, figures exact.
TEST_F(ReportCommand, VectorAsCsv) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run({"--input", input, "--month", "2026-11", "--format", "csv"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "month,record,service,customer,target_percent,scheduled_seconds,"
            "excluded_maintenance_seconds,downtime_seconds,allowed_downtime_seconds,"
            "excess_downtime_seconds,availability_percent,met,monthly_charge_cents,credit_cents,"
            "interruptions,maintenance_downtime,customers_impacted\r\n"
            "2026-11,service,mysql-qa,,99.57,615600,0,7200,2647,4553,98.8304,false,,,INC0004,,"
            "registrar\r\n"
            "2026-11,service,oracle-prod,,99.75,2581200,14400,15000,6453,8547,99.4189,false,,,"
            "INC0001 INC0002 INC0003,CHG0002,library registrar\r\n"
            "2026-11,credit,mysql-qa,registrar,,,,7200,,4553,,,40000,296,INC0004,,\r\n"
            "2026-11,credit,oracle-prod,library,,,,13200,,6747,,,90000,235,INC0002 INC0003,CHG0002,"
            "\r\n"
            "2026-11,credit,oracle-prod,registrar,,,,15000,,8547,,,150000,497,"
            "INC0001 INC0002 INC0003,CHG0002,\r\n");
}

TEST_F(ReportCommand, MissingInputIs66) {
  const std::string input = (dir_ / "nope.json").string();
  EXPECT_EQ(run({"--input", input, "--month", "2026-11"}), 66);
  ASSERT_EQ(err_lines().size(), 1u);
  EXPECT_EQ(err_lines()[0], input + ": cannot read: No such file or directory") << err_.str();
  EXPECT_EQ(run({"--input", dir_.string(), "--month", "2026-11"}), 66);
  EXPECT_EQ(err_lines().back(), dir_.string() + ": cannot read: not a regular file");
}

TEST_F(ReportCommand, BadDatasetIs65WithOneLinePerError) {
  std::string text =
      test::read_text((test::shared_dir() / "vectors/example-2026-11.json").string());
  // Two problems: an unknown key and a wrong type.
  text.replace(text.find("\"environment\": \"production\""),
               std::string("\"environment\": \"production\"").size(),
               "\"environment\": \"production\", \"colour\": \"red\"");
  text.replace(text.find("\"monthly_charge_cents\": 150000"),
               std::string("\"monthly_charge_cents\": 150000").size(),
               "\"monthly_charge_cents\": \"lots\"");
  const fs::path input = dir_ / "bad.json";
  std::ofstream(input) << text;
  const fs::path out = dir_ / "report.json";
  EXPECT_EQ(run({"--input", input.string(), "--month", "2026-11", "--out", out.string()}), 65);
  const auto lines = err_lines();
  ASSERT_EQ(lines.size(), 2u) << err_.str();
  EXPECT_TRUE(lines[0].starts_with(input.string() + ": $.services[0].colour: ")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with(input.string() +
                                   ": $.customers[0].subscriptions[0].monthly_charge_cents: "))
      << lines[1];
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ReportCommand, MalformedJsonIs65) {
  const fs::path input = dir_ / "broken.json";
  std::ofstream(input) << "{\"timezone\": ";
  EXPECT_EQ(run({"--input", input.string(), "--month", "2026-11"}), 65);
  const auto lines = err_lines();
  ASSERT_EQ(lines.size(), 1u) << err_.str();
  EXPECT_TRUE(lines[0].starts_with(input.string() + ": $: ")) << lines[0];
}

TEST_F(ReportCommand, OutputThatCannotBeCreatedIs73) {
  const std::string input = (test::shared_dir() / "vectors/example-2026-11.json").string();
  const fs::path out = dir_ / "no-such-dir" / "report.json";
  EXPECT_EQ(run({"--input", input, "--month", "2026-11", "--out", out.string()}), 73);
  ASSERT_EQ(err_lines().size(), 1u);
  EXPECT_TRUE(err_lines()[0].starts_with(out.string() + ": ")) << err_.str();
}

}  // namespace
}  // namespace slmhub::availability
