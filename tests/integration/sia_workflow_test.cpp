// Service Interruption Analyses through the real server: drafts appear when interruptions end
// (the server's event dispatcher runs the plugin's subscription), who may take each step (roles
// from the route table), approval refused with the missing fields, and publication e-mailed to
// the configured distribution list through the outbox.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

class SiaWorkflow : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        dir_.path(), std::map<std::string, std::string>{
                         {"SLMHUB_PLUGINS_WORKFLOWS_SIA_DISTRIBUTION", "monitoring@example.org"}});
    server_->start();
    admin_ = server_->admin_token();
    const auto dataset = dir_.path() / "dataset.json";
    std::ofstream(dataset) << read_shared("vectors/example-2026-11.json");
    const auto imported = run_slmhub({"import", dataset.string()}, server_->env());
    ASSERT_EQ(imported.status, 0) << imported.err;
    viewer_ = server_->token("viewer");
    manager_ = server_->token("service_manager");
    approver_ = server_->token("approver");
  }

  HttpResult call(const std::string& method, const std::string& path, const std::string& who,
                  const Json& body = Json()) {
    return http(server_->port(), method, path, body.is_null() ? "" : body.dump(), who);
  }
  // The SIA ids the server lists, waiting up to ten seconds for `want` of them: drafts are
  // written by the event dispatcher, after the write that ended the interruption returned.
  std::set<std::string> sias(std::size_t want) {
    std::set<std::string> ids;
    for (int i = 0; i < 100 && ids.size() < want; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto r = call("GET", "/api/v1/sias", viewer_);
      EXPECT_EQ(r.status, 200) << r.body;
      ids.clear();
      const Json listed = Json::parse(r.body);
      for (const auto& s : listed["sias"]) ids.insert(s["id"].get<std::string>());
    }
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string admin_, viewer_, manager_, approver_;
};

TEST_F(SiaWorkflow, EndedOutagesGetDraftsAndEachStepNeedsItsRole) {
  // The import ended four outages and one degradation: four drafts.
  EXPECT_EQ(sias(4), (std::set<std::string>{"INC0001", "INC0002", "INC0003", "INC0004"}));

  // An interruption that ends later gets its draft when it ends.
  Json inc = {{"id", "INC0200"},
              {"service", "mysql-qa"},
              {"type", "outage"},
              {"start", "2026-11-30T16:00:00Z"},
              {"description", "the QA instance did not start"}};
  ASSERT_EQ(call("PUT", "/api/v1/interruptions/INC0200", admin_, inc).status, 200);
  inc["end"] = "2026-11-30T17:30:00Z";
  ASSERT_EQ(call("PUT", "/api/v1/interruptions/INC0200", admin_, inc).status, 200);
  ASSERT_EQ(sias(5).count("INC0200"), 1u);
  auto one = call("GET", "/api/v1/sias/INC0200", viewer_);
  ASSERT_EQ(one.status, 200) << one.body;
  const Json draft = Json::parse(one.body);
  EXPECT_EQ(draft["state"], "draft");
  EXPECT_EQ(draft["facts"]["duration_seconds"], 5400);
  EXPECT_EQ(draft["sections"]["a"]["description"], "the QA instance did not start");
  // Monday 30 November in Chicago + 15 business days of the provider calendar.
  EXPECT_EQ(draft["due_date"], "2026-12-21");
  EXPECT_EQ(call("GET", "/api/v1/sias/INC0404", viewer_).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/sias?state=late", viewer_).status, 400);

  const std::string base = "/api/v1/sias/INC0200";
  // A PUT replaces the whole section: A keeps what the draft pre-filled.
  Json summary = draft["sections"]["a"];
  summary["impacted_systems"] = Json::array({"qa-db.example.org"});
  const Json sections = {
      {"a", summary},
      {"b",
       {{"source", "process"},
        {"actions_that_caused", "a patch applied without a restart test"},
        {"actions_that_added_impact", "none"},
        {"process_not_followed", true},
        {"process_missing", false}}},
      {"c",
       {{"groups",
         {{{"group", "DBA team"},
           {"who", "on-call DBA"},
           {"what", "rolled the patch back"},
           {"when", "2026-11-30T17:20:00Z"},
           {"where", "qa-db"},
           {"why", "the patch broke start-up"},
           {"how", "package downgrade"}}}},
        {"applies_elsewhere", false}}},
      {"e", {{"notice", "MySQL QA is available again."}}},
  };
  EXPECT_EQ(call("PUT", base + "/sections/b", viewer_, sections["b"]).status, 403);
  for (const auto& [letter, body] : sections.items()) {
    auto r = call("PUT", base + "/sections/" + letter, manager_, body);
    ASSERT_EQ(r.status, 200) << letter << ": " << r.body;
  }
  auto bad = call("PUT", base + "/sections/b", manager_, Json{{"sauce", "internal"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("$.sauce"), std::string::npos) << bad.body;

  EXPECT_EQ(call("POST", base + "/submit", viewer_).status, 403);
  EXPECT_EQ(call("POST", base + "/approve", approver_).status, 409);  // still a draft
  EXPECT_EQ(call("POST", base + "/submit", manager_).status, 200);
  EXPECT_EQ(call("POST", base + "/approve", manager_).status, 403);
  auto refused = call("POST", base + "/approve", approver_);
  EXPECT_EQ(refused.status, 422);
  EXPECT_EQ(refused.headers["Content-Type"], "application/problem+json");
  const Json problem = Json::parse(refused.body);
  ASSERT_EQ(problem["errors"].size(), 1u) << refused.body;
  EXPECT_EQ(problem["errors"][0]["path"], "d.corrective_actions");
  EXPECT_NE(problem["detail"].get<std::string>().find("1 required fields"), std::string::npos);

  EXPECT_EQ(call("POST", base + "/return", approver_, Json::object()).status, 400);
  ASSERT_EQ(call("POST", base + "/return", approver_, Json{{"reason", "no actions"}}).status, 200);
  const Json actions = {{"corrective_actions",
                         {{{"action", "test restarts after patching"},
                           {"owner", "dba-lead@example.org"},
                           {"due", "2026-12-31"}}}}};
  ASSERT_EQ(call("PUT", base + "/sections/d", manager_, actions).status, 200);
  ASSERT_EQ(call("POST", base + "/submit", manager_).status, 200);
  ASSERT_EQ(call("POST", base + "/approve", approver_).status, 200);
  EXPECT_EQ(call("POST", base + "/publish", approver_).status, 403);
  auto published = call("POST", base + "/publish", manager_);
  ASSERT_EQ(published.status, 200) << published.body;
  EXPECT_EQ(Json::parse(published.body)["state"], "published");

  // The deadline is met, and the distribution list has its e-mail.
  const Json deadlines = Json::parse(call("GET", "/api/v1/deadlines", viewer_).body);
  for (const auto& d : deadlines["deadlines"]) {
    if (d["id"] == "sia/INC0200") {
      EXPECT_EQ(d["state"], "done");
    }
  }
  int mails = 0;
  const Json outbox = Json::parse(call("GET", "/api/v1/outbox", admin_).body);
  for (const auto& m : outbox["messages"]) {
    if (m["subject"].get<std::string>().find("INC0200") == std::string::npos) continue;
    ++mails;
    EXPECT_EQ(m["destination"], "monitoring@example.org");
  }
  EXPECT_EQ(mails, 1) << outbox.dump();
}

}  // namespace
}  // namespace slmhub::test
