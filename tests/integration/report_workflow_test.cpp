// The report workflow through the real server: who may take each step (roles from the route
// table), the frozen revision served as JSON and as the public page, that page in headless
// Chromium with the revision's figures, the audit trail, and the monthly job run by hand.
// The month is October 2026, the shared vector's November data moved one month back, so it
// is a closed month whatever day the test runs; its figures are taken from the offline
// command on the same file, never typed in.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "chromium.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

class ReportWorkflow : public ChromiumTest {
 protected:
  void SetUp() override {
    ChromiumTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string text = read_shared("vectors/example-2026-11.json");
    text = std::regex_replace(text, std::regex("2026-11-"), "2026-10-");
    dataset_ = dir_.path() / "october.json";
    std::ofstream(dataset_) << text;

    server_ = std::make_unique<ServerProcess>(dir_.path());
    server_->start();
    admin_ = server_->admin_token();
    const auto imported = run_slmhub({"import", dataset_.string()}, server_->env());
    ASSERT_EQ(imported.status, 0) << imported.err;
    viewer_ = server_->token("viewer");
    manager_ = server_->token("service_manager");
    approver_ = server_->token("approver");
  }

  HttpResult post(const std::string& path, const std::string& who) {
    return http(server_->port(), "POST", kBase + path, "", who);
  }
  HttpResult get(const std::string& path, const std::string& who = {}) {
    return http(server_->port(), "GET", path, "", who);
  }

  static inline const std::string kBase = "/api/v1/reports/availability/2026-10";
  TempDir dir_;
  std::filesystem::path dataset_;
  std::unique_ptr<ServerProcess> server_;
  std::string admin_, viewer_, manager_, approver_;
};

TEST_F(ReportWorkflow, EachStepByItsRoleThenThePublishedPageShowsTheFrozenFigures) {
  // The offline command on the same file is the reference for the figures.
  const auto offline =
      run_slmhub({"report", "availability", "--input", dataset_.string(), "--month", "2026-10"},
                 server_->env());
  ASSERT_EQ(offline.status, 0) << offline.err;
  const Json expected = Json::parse(offline.out);

  EXPECT_EQ(post("/revisions", viewer_).status, 403);
  EXPECT_EQ(get("/reports/availability/2026-10").status, 404);  // nothing published yet

  auto drafted = post("/revisions", manager_);
  ASSERT_EQ(drafted.status, 201) << drafted.body;
  const Json draft = Json::parse(drafted.body);
  EXPECT_EQ(draft["revision"], 1);
  EXPECT_EQ(draft["state"], "draft");
  for (std::size_t i = 0; i < expected["services"].size(); ++i) {
    for (const auto& [key, value] : expected["services"][i].items()) {
      EXPECT_EQ(draft["report"]["services"][i][key], value) << key;
    }
  }
  EXPECT_EQ(draft["report"]["credits"].size(), expected["credits"].size());
  EXPECT_EQ(post("/revisions", manager_).status, 200);  // unchanged: no second revision

  EXPECT_EQ(post("/revisions/1/approve", approver_).status, 409);  // not reviewed yet
  EXPECT_EQ(post("/revisions/1/review", approver_).status, 403);
  EXPECT_EQ(post("/revisions/1/review", manager_).status, 200);
  EXPECT_EQ(post("/revisions/1/approve", manager_).status, 403);
  EXPECT_EQ(post("/revisions/1/approve", approver_).status, 200);
  auto published = post("/revisions/1/publish", manager_);
  ASSERT_EQ(published.status, 200) << published.body;
  EXPECT_EQ(Json::parse(published.body)["state"], "published");

  // Its deadlines were registered by the draft and met by the review and the publication.
  const Json deadlines = Json::parse(get("/api/v1/deadlines", viewer_).body)["deadlines"];
  std::map<std::string, std::string> states;
  for (const auto& d : deadlines) states[d["id"]] = d["state"];
  EXPECT_EQ(states["availability.report/2026-10"], "done");
  EXPECT_EQ(states["availability.analysis/2026-10"], "done");
  EXPECT_EQ(get("/api/v1/deadlines?state=late", viewer_).status, 400);

  // The month's summary, the audit trail and the job that would have drafted it.
  const Json month = Json::parse(get(kBase, viewer_).body);
  EXPECT_EQ(month["published"], 1);
  EXPECT_EQ(month["revisions"].size(), 1u);
  const Json audit =
      Json::parse(get("/api/v1/audit?entity=availability_report", admin_).body)["audit"];
  ASSERT_EQ(audit.size(), 4u);
  EXPECT_EQ(audit[0]["action"], "publish");
  EXPECT_EQ(audit[3]["action"], "draft");

  // The public page, rendered by the browser: every service's exact figures and every
  // credit of the frozen revision are in the DOM.
  auto page = get("/reports/availability/2026-10");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.headers["Content-Type"].find("text/html"), std::string::npos);
  const std::string url =
      "http://127.0.0.1:" + std::to_string(server_->port()) + "/reports/availability/2026-10";
  const std::string dom = chromium().dump_dom(url);
  for (const auto& s : expected["services"]) {
    const std::string id = s["service"];
    const auto at = dom.find("data-service=\"" + id + "\"");
    ASSERT_NE(at, std::string::npos) << id;
    for (const char* field : {"scheduled_seconds", "downtime_seconds", "allowed_downtime_seconds",
                              "excess_downtime_seconds"}) {
      const std::regex cell("data-field=\"" + std::string(field) + "\"[^>]*>([0-9]+)<");
      std::smatch m;
      const std::string rest = dom.substr(at);
      ASSERT_TRUE(std::regex_search(rest, m, cell)) << id << " " << field;
      EXPECT_EQ(m[1].str(), std::to_string(s[field].get<std::int64_t>())) << id << " " << field;
    }
  }
  for (const auto& c : expected["credits"]) {
    EXPECT_NE(dom.find("data-credit=\"" + c["customer"].get<std::string>() + "/" +
                       c["service"].get<std::string>() + "\""),
              std::string::npos);
  }
  const auto png = std::filesystem::path(SLMHUB_SCREENSHOT_DIR) / "served-2026-10.png";
  std::filesystem::create_directories(png.parent_path());
  chromium().screenshot(url, png.string(), 794, 1400);
  EXPECT_GT(std::filesystem::file_size(png), 10000u);
}

TEST_F(ReportWorkflow, TheMonthlyJobDraftsTheMonthThatJustClosedOnce) {
  // Run by hand, the job drafts the month before the current one (in its zone); a second run
  // finds nothing changed. (Whatever the date, that month has closed.)
  auto first =
      http(server_->port(), "POST", "/api/v1/jobs/availability.monthly-draft/run", "", admin_);
  ASSERT_EQ(first.status, 200) << first.body;
  auto second =
      http(server_->port(), "POST", "/api/v1/jobs/availability.monthly-draft/run", "", admin_);
  ASSERT_EQ(second.status, 200) << second.body;
  const std::string outcome = Json::parse(second.body).dump();
  EXPECT_NE(outcome.find("revision 1 unchanged"), std::string::npos) << outcome;
}

}  // namespace
}  // namespace slmhub::test
