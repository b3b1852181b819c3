// The publishable report page in a real browser (DESIGN.md §6): `slmhub report availability
// --format html` writes the vector's page into the build tree, headless Chromium loads it, the
// rendered DOM carries every figure of the vector's expected report, and a screenshot at A4
// width (794 CSS pixels at 96 dpi) is kept beside it for a person to look at.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "chromium.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

// The part of `dom` from the tag holding `hook` up to the first `close` after it; empty when
// the hook is missing.
std::string scope(const std::string& dom, const std::string& hook, const std::string& close) {
  const auto at = dom.find(hook);
  if (at == std::string::npos) return {};
  const auto start = dom.rfind('<', at);
  return dom.substr(start, dom.find(close, at) - start);
}

// The `value` attribute of the element marked data-field="field" in `markup`.
std::string field_value(const std::string& markup, const std::string& field) {
  const auto at = markup.find("data-field=\"" + field + "\"");
  if (at == std::string::npos) return "(no data-field=\"" + field + "\")";
  const auto start = markup.rfind('<', at);
  const std::string tag = markup.substr(start, markup.find('>', at) - start);
  const auto value = tag.find(" value=\"");
  if (value == std::string::npos) return "(no value in " + tag + ")";
  const auto begin = value + 8;
  return tag.substr(begin, tag.find('"', begin) - begin);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

uint32_t big_endian32(const std::string& bytes, std::size_t at) {
  uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i)
    value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

class ReportPage : public ChromiumTest {};

TEST_F(ReportPage, VectorPageShowsItsFiguresAndFitsA4) {
  const fs::path out_dir = SLMHUB_SCREENSHOT_DIR;
  fs::create_directories(out_dir);
  const fs::path html = out_dir / "report-2026-11.html";
  const fs::path png = out_dir / "report-2026-11.png";
  TempDir dir;
  const auto written =
      run_slmhub({"report", "availability", "--input",
                  (shared_dir() / "vectors/example-2026-11.json").string(), "--month", "2026-11",
                  "--format", "html", "--out", html.string()},
                 {{"SLMHUB_DB_URL", "sqlite:" + (dir.path() / "page.db").string()},
                  {"SLMHUB_PLUGINS_DIR", SLMHUB_PLUGIN_DIR},
                  {"SLMHUB_LOG_LEVEL", "error"}});
  ASSERT_EQ(written.status, 0) << written.err;

  const std::string dom = chromium().dump_dom(file_url(html));
  const Json expected =
      Json::parse(read_text((shared_dir() / "vectors/example-2026-11.expected.json").string()));

  EXPECT_EQ(count(dom, "data-service=\""), expected["services"].size());
  for (const auto& service : expected["services"]) {
    const std::string id = service["service"].get<std::string>();
    const std::string section = scope(dom, "data-service=\"" + id + "\"", "</section>");
    ASSERT_FALSE(section.empty()) << "no section for " << id;
    for (const char* field :
         {"scheduled_seconds", "excluded_maintenance_seconds", "downtime_seconds",
          "allowed_downtime_seconds", "excess_downtime_seconds"}) {
      EXPECT_EQ(field_value(section, field), std::to_string(service[field].get<int64_t>()))
          << id << " " << field;
    }
    EXPECT_EQ(field_value(section, "availability_percent"), service["availability_percent"].dump())
        << id;
    EXPECT_EQ(field_value(section, "target_percent"), service["target_percent"].dump()) << id;
    const bool met = service["met"].get<bool>();
    EXPECT_NE(section.find(met ? "data-met=\"true\"" : "data-met=\"false\""), std::string::npos)
        << id;
    // The charts were parsed as SVG: availability, downtime, maintenance budget, timeline.
    EXPECT_EQ(count(section, "<svg "), 4u) << id;
    for (const auto& interruption : service["interruptions"]) {
      EXPECT_NE(section.find("data-entry=\"" + interruption.get<std::string>() + "\""),
                std::string::npos)
          << id << " " << interruption;
    }
  }

  EXPECT_EQ(count(dom, "data-credit=\""), expected["credits"].size());
  for (const auto& credit : expected["credits"]) {
    const std::string key =
        credit["customer"].get<std::string>() + "/" + credit["service"].get<std::string>();
    const std::string row = scope(dom, "data-credit=\"" + key + "\"", "</tr>");
    ASSERT_FALSE(row.empty()) << "no credit row for " << key;
    for (const char* field :
         {"downtime_seconds", "excess_downtime_seconds", "monthly_charge_cents", "credit_cents"}) {
      EXPECT_EQ(field_value(row, field), std::to_string(credit[field].get<int64_t>()))
          << key << " " << field;
    }
  }

  // The whole report in one image at A4 width: tall enough for both services and the credits.
  chromium().screenshot(file_url(html), png.string(), 794, 3000);
  const std::string image = read_text(png);
  ASSERT_GT(image.size(), 10u * 1024) << png;
  ASSERT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  ASSERT_EQ(image.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian32(image, 16), 794u);
  EXPECT_EQ(big_endian32(image, 20), 3000u);
}

}  // namespace
}  // namespace slmhub::test
