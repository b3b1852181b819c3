// ServiceNow sync through the real server against the simulator (issue [servicenow]
// acceptance): the round trip without echo, duplicated and reordered webhooks, the sweep
// after webhooks were off, a 429 storm, expiring OAuth tokens, a create whose answer was
// lost, bad webhooks, and kill -9 during a webhook burst. Everything on 127.0.0.1.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "crash.hpp"
#include "eventually.hpp"
#include "server_process.hpp"
#include "servicenow_sim.hpp"
#include "signature.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"

namespace slmhub::test {
namespace {

using namespace std::chrono_literals;

// The HMAC key's bytes, and the secret as configured on both sides: its base64, as
// ServiceNow's generateMac takes a key.
constexpr const char* kKey = "webhook-secret-for-tests";
constexpr const char* kSecret = "d2ViaG9vay1zZWNyZXQtZm9yLXRlc3Rz";

class ServiceNowSync : public testing::Test {
 protected:
  void SetUp() override { sim_ = std::make_unique<ServiceNowSim>(sim_options()); }

  virtual ServiceNowSimOptions sim_options() { return {}; }

  std::map<std::string, std::string> server_env(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = {
        {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_URL", sim_->base_url()},
        {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_USERNAME", "slmhub"},
        {"SLMHUB_SECRET_SERVICENOW_PASSWORD", "slmhub"},
        {"SLMHUB_SECRET_SERVICENOW_WEBHOOK_SECRET", kSecret},
        {"SLMHUB_PLUGINS_SERVICENOW_WEBHOOK_TIMESTAMP_HEADER", "X-SN-Timestamp"},
        // Sweeps only when a test asks: a scheduled one at the same moment would make the
        // test's run a 409 (running already).
        {"SLMHUB_PLUGINS_SERVICENOW_SWEEP_SCHEDULE", "0 0 1 1 *"},
        // Quick retries, so a test waits for the behaviour, not for back-off.
        {"SLMHUB_EVENTS_POLL_MS", "50"},
        {"SLMHUB_EVENTS_RETRY_MAX_MS", "2000"},
    };
    for (auto& [k, v] : extra) env[k] = v;
    return env;
  }

  void start_server(std::map<std::string, std::string> extra = {}) {
    server_ = std::make_unique<ServerProcess>(dir_.path(), server_env(std::move(extra)));
    server_->start();
  }

  // A server whose CI ci…01 is the service payroll-db, with incidents flagged by u_outage.
  void start_with_payroll_db() {
    start_server(
        {{"SLMHUB_PLUGINS_SERVICENOW_CI_SERVICES", "ci00000000000000000000000000001=payroll-db"},
         {"SLMHUB_PLUGINS_SERVICENOW_INCIDENT_OUTAGE_FIELD", "u_outage"}});
    api("POST", "/api/v1/import",
        {{"timezone", "UTC"},
         {"services",
          {{{"id", "payroll-db"},
            {"name", "Payroll database"},
            {"environment", "production"},
            {"hours", "24x7"},
            {"target_percent", 99.75}}}}});
  }

  // The simulator's business rule posts incident changes to the server, signed.
  void hook(Json extra = Json::object()) {
    Json config = {{"url", "http://127.0.0.1:" + std::to_string(server_->port()) +
                               "/api/v1/webhooks/servicenow"},
                   {"tables", {"incident"}},
                   {"auth",
                    {{"kind", "hmac"},
                     {"secret", kSecret},
                     {"header", "X-SN-Signature"},
                     {"timestamp_header", "X-SN-Timestamp"}}}};
    config.update(extra);
    sim_->control("POST", "/sim/webhook", config);
  }

  Json records(const std::string& table, const std::string& query = {}) {
    return sim_->control(
        "GET", "/sim/records/" + table + (query.empty() ? "" : "?query=" + percent_encode(query)),
        Json())["result"];
  }

  Json api(const std::string& method, const std::string& path, const Json& body = Json()) {
    const auto r = http(server_->port(), method, path, body.is_null() ? "" : body.dump(),
                        server_->admin_token());
    EXPECT_LT(r.status, 300) << method << " " << path << ": " << r.body;
    return r.body.empty() ? Json() : Json::parse(r.body);
  }

  Json ticket(const std::string& id) { return api("GET", "/api/v1/tickets/" + id); }
  Json status() { return api("GET", "/api/v1/servicenow/status"); }

  // A webhook as a business rule would post it, signed with `secret` at `stamp`.
  HttpResult post_webhook(const std::string& body, const std::string& secret = kKey,
                          std::int64_t stamp = -1,
                          const std::string& path = "/api/v1/webhooks/servicenow") {
    if (stamp < 0)
      stamp = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    const std::string ts = std::to_string(stamp);
    return http(server_->port(), "POST", path, body, "",
                {{"Content-Type", "application/json"},
                 {"X-SN-Timestamp", ts},
                 {"X-SN-Signature", servicenow::hmac_sha256_base64(secret, ts + "." + body)}});
  }

  // A signed webhook of `size` bytes, sent by curl: a server refusing it early closes the
  // connection while the body is still being sent, which curl (like any real sender) reads as
  // the answer it is.
  HttpResult post_large_webhook(std::size_t size) {
    const std::string body = R"({"table":"incident","pad":")" + std::string(size - 30, 'x') + "\"}";
    const auto path = dir_.path() / "large.json";
    { std::ofstream(path, std::ios::binary) << body; }
    const std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    const std::string command =
        "curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H "
        "'X-SN-Timestamp: " +
        ts + "' -H 'X-SN-Signature: " + servicenow::hmac_sha256_base64(kKey, ts + "." + body) +
        "' --data-binary @" + path.string() +
        " http://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/webhooks/servicenow";
    FILE* p = popen(command.c_str(), "r");
    HttpResult result;
    char buf[16] = {};
    if (std::fgets(buf, sizeof buf, p) != nullptr) result.status = std::atoi(buf);
    pclose(p);
    result.body = "detail: (curl)";
    return result;
  }

  // Whether no message of ours waits to go to the instance or is on its way: its outcome,
  // and what a write records (the mark that makes its webhook an echo), are committed.
  // (One read of every state: a message moving between two reads is not missed.)
  bool outbound_settled() {
    const Json listed = api("GET", "/api/v1/outbox");
    for (const auto& m : listed["messages"]) {
      if (m["channel"] == "servicenow" && (m["state"] == "pending" || m["state"] == "sending"))
        return false;
    }
    return true;
  }

  // The requests slmhub made to the instance with `method` on incidents since `since`.
  int writes_since(std::int64_t since, const std::string& method) {
    int n = 0;
    const Json log = sim_->control("GET", "/sim/requests?since=" + std::to_string(since), Json());
    for (const auto& r : log["requests"]) {
      if (r.value("method", "") == method &&
          r.value("path", "").find("/table/incident") != std::string::npos &&
          r.value("user", "") == "slmhub")
        ++n;
    }
    return n;
  }
  // A server whose client gives up after 300 ms and retries after 4 s, and an instance whose
  // next incident POST lands two seconds after it came: the create is in doubt meanwhile.
  void start_with_a_slow_create() {
    start_server({{"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_TIMEOUT_MS", "300"},
                  {"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "4"}});
    sim_->control("POST", "/sim/faults",
                  {{"kind", "slow"},
                   {"before_commit", true},
                   {"delay_ms", 2000},
                   {"count", 1},
                   {"method", "POST"},
                   {"path", "/api/now/table/incident"}});
  }
  // The next incident POST is committed and its connection dropped before the answer.
  void lose_the_next_create_answer() {
    sim_->control("POST", "/sim/faults",
                  {{"kind", "drop"},
                   {"after_commit", true},
                   {"count", 1},
                   {"method", "POST"},
                   {"path", "/api/now/table/incident"}});
  }
  // A ticket (kind incident) made here, once its incident there is linked: the ticket's id
  // and the incident's sys_id.
  std::pair<std::string, std::string> linked_ticket(const std::string& subject) {
    const std::string id =
        api("POST", "/api/v1/tickets", {{"subject", subject}, {"kind", "incident"}})["id"];
    const bool linked = eventually([&] { return !ticket(id).value("external_ref", "").empty(); });
    const Json found = records("incident", "correlation_id=" + id);
    if (!linked || found.size() != 1) {
      throw std::runtime_error("ticket " + id + " was not linked to one incident: " + found.dump() +
                               "\n" + server_->log());
    }
    return {id, found[0].value("sys_id", "")};
  }
  // Until the test deletes the faults, the instance answers `status` to our requests on
  // incidents made with `method` (empty: any).
  void fail_incident_requests(int status, const std::string& method = "PATCH") {
    Json fault = {
        {"kind", "status"}, {"status", status}, {"count", -1}, {"path", "/api/now/table/incident"}};
    if (!method.empty()) fault["method"] = method;
    sim_->control("POST", "/sim/faults", fault);
  }
  // Both sides change the subject of a linked ticket while the instance answers nothing
  // about incidents (its reads included, so that no attempt read before their change can
  // write after it): ours first, then theirs, a later second, with no webhook. The faults
  // stay until the test deletes them.
  void change_subject_on_both_sides_while_unanswered(const std::string& id,
                                                     const std::string& sys_id) {
    const auto before = last_request();
    fail_incident_requests(503, "");
    api("PATCH", "/api/v1/tickets/" + id, {{"subject", "Slow reports since Monday"}});
    ASSERT_TRUE(eventually([&] { return writes_since(before, "GET") >= 1; }));
    std::this_thread::sleep_for(1100ms);
    sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                  {{"short_description", "Reports time out"}, {"_user", "jdoe"}});
  }
  std::int64_t last_request() {
    return sim_->control("GET", "/sim/requests?since=1000000000", Json())["last"]
        .get<std::int64_t>();
  }

  TempDir dir_;
  std::unique_ptr<ServiceNowSim> sim_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServiceNowSync, RoundTripWithoutEcho) {
  start_server();
  hook();
  const Json created = api("POST", "/api/v1/tickets",
                           {{"subject", "Payroll database refuses connections"},
                            {"kind", "incident"},
                            {"priority", 2},
                            {"body", "Since 09:10 every login fails."}});
  const std::string id = created["id"];

  // Out: one incident, correlated with our case number, its number back on the ticket.
  Json incident;
  ASSERT_TRUE(eventually([&] {
    auto found = records("incident", "correlation_id=" + id);
    if (found.size() != 1) return false;
    incident = found[0];
    return true;
  })) << server_->log();
  EXPECT_EQ(incident["short_description"], "Payroll database refuses connections");
  EXPECT_EQ(incident["description"], "Since 09:10 every login fails.");
  EXPECT_EQ(incident["impact"], "1");
  EXPECT_EQ(incident["urgency"], "2");
  EXPECT_EQ(incident["priority"], "2");
  EXPECT_EQ(incident["sys_created_by"], "slmhub");
  const std::string sys_id = incident["sys_id"], number = incident["number"];
  ASSERT_TRUE(eventually([&] { return ticket(id).value("external_ref", "") == number; }));

  // The webhook our own create fired is recognised as an echo.
  ASSERT_TRUE(eventually([&] {
    const Json d = sim_->control("GET", "/sim/webhook/deliveries", Json());
    return d["count"].get<int>() >= 1;
  }));
  const Json first = sim_->control("GET", "/sim/webhook/deliveries", Json())["deliveries"][0];
  if (first["status"] == 202) {
    // The webhook overtook the create's own response (a busy machine): it was queued. If the
    // create's link was recorded first, the queued version is known as applied ("duplicate");
    // otherwise reading the record back finds nothing new in it ("applied"). Either way it is
    // handled once, and nothing fails.
    ASSERT_TRUE(eventually([&] {
      const Json inbox = status()["inbox"];
      return !inbox.contains("pending") &&
             inbox.value("applied", 0) + inbox.value("duplicate", 0) == 1;
    })) << status().dump();
    EXPECT_FALSE(status()["inbox"].contains("failed")) << status().dump();
  } else {
    EXPECT_EQ(first["status"], 200) << first.dump();
    EXPECT_NE(first["response"].get<std::string>().find("\"echo\""), std::string::npos)
        << first.dump();
  }

  // In: a person changes the state and comments there; the ticket follows.
  const auto before = last_request();
  sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                {{"state", "2"}, {"comments", "Looking into it."}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return ticket(id)["status"] == "open"; })) << server_->log();
  ASSERT_TRUE(eventually([&] {
    const Json t = ticket(id);
    for (const auto& m : t["messages"]) {
      if (m["body"] == "Looking into it." && m["author"] == "servicenow:jdoe") return true;
    }
    return false;
  })) << ticket(id).dump();

  // A change here goes out as one PATCH; nothing was written back for the change that came in.
  api("PATCH", "/api/v1/tickets/" + id, {{"priority", 1}});
  ASSERT_TRUE(
      eventually([&] { return records("incident", "sys_id=" + sys_id)[0]["priority"] == "1"; }));
  // (The simulator logs a request after it answers: the write is counted once it is settled.)
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  EXPECT_EQ(writes_since(before, "PATCH"), 1);
  EXPECT_EQ(writes_since(before, "POST"), 0);
  EXPECT_EQ(records("incident").size(), 1u);
  EXPECT_EQ(ticket(id)["status"], "open");
}

// A comment made there just before our write, whose webhook never came (nor a sweep of the
// journal): the answer of our write (a comment, which reads nothing first) shows versions we
// never applied, and their journal is read.
TEST_F(ServiceNowSync, ACommentMadeThereBeforeOurWriteComesInWithIt) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_SWEEP_TABLES", "incident"}});  // no hook
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Replica lag"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(eventually([&] { return !ticket(id).value("external_ref", "").empty(); }))
      << server_->log();
  const std::string sys_id = records("incident", "correlation_id=" + id)[0]["sys_id"];
  sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                {{"comments", "Lag is 40 s on the standby."}, {"_user", "jdoe"}});
  api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Standby restarted."}});
  ASSERT_TRUE(eventually([&] {
    const Json t = ticket(id);
    for (const auto& m : t["messages"]) {
      if (m["body"] == "Lag is 40 s on the standby." && m["author"] == "servicenow:jdoe") {
        return true;
      }
    }
    return false;
  })) << ticket(id).dump()
      << server_->log();
}

TEST_F(ServiceNowSync, AChangeThereThatOurWriteCarriesIsAppliedNotDroppedAsAnEcho) {
  start_server();
  hook();
  // A person resolves the incident there, and the business rule does not tell us (it was
  // off, or its webhook was lost). Our next write then carries their change, and its webhook
  // is our echo. Before a field change, the read before the write is the first we see of
  // theirs; before a comment (no read), the record the write gives back is.
  for (const bool comment : {false, true}) {
    SCOPED_TRACE(comment ? "our write is a comment" : "our write is a field");
    const auto [id, sys_id] = linked_ticket(comment ? "Backups fail" : "Restores fail");
    const std::string priority = records("incident", "sys_id=" + sys_id)[0]["priority"];
    sim_->control("PATCH", "/sim/webhook", {{"enabled", false}});
    sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                  {{"state", "6"}, {"close_code", "Solved (Permanently)"}, {"_user", "jdoe"}});
    sim_->control("PATCH", "/sim/webhook", {{"enabled", true}});
    if (comment) {
      api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Retried at 02:00."}});
      ASSERT_TRUE(eventually(
          [&] { return records("sys_journal_field", "element_id=" + sys_id).size() == 1; }));
    } else {
      api("PATCH", "/api/v1/tickets/" + id, {{"priority", 1}});
      ASSERT_TRUE(eventually(
          [&] { return records("incident", "sys_id=" + sys_id)[0]["priority"] == "1"; }));
    }
    ASSERT_TRUE(eventually([&] { return ticket(id)["status"] == "resolved"; }))
        << ticket(id).dump() << server_->log();
    ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
    // Nothing went back to undo their change, and a sweep finds nothing to repair.
    const Json run = api("POST", "/api/v1/jobs/servicenow.sweep/run");
    EXPECT_NE(run.dump().find(" 0 repaired"), std::string::npos) << run.dump();
    const Json incident = records("incident", "sys_id=" + sys_id)[0];
    EXPECT_EQ(incident["state"], "6");
    EXPECT_EQ(incident["priority"], comment ? priority : "1");
    EXPECT_EQ(ticket(id)["status"], "resolved");
  }
}

TEST_F(ServiceNowSync, AChangeBackMadeWhileOurWriteIsUnderWayIsNotLost) {
  start_server();
  hook();
  const std::string id = api("POST", "/api/v1/tickets",
                             {{"subject", "Listener restarts"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(eventually([&] { return !ticket(id).value("external_ref", "").empty(); }))
      << server_->log();
  const std::string sys_id = records("incident", "correlation_id=" + id)[0]["sys_id"];
  const auto settled = [&] {
    const Json hook = sim_->control("GET", "/sim/webhook", Json());
    if (hook["pending"] != 0 || hook["delivered"] != hook["events"]) return false;
    return outbound_settled() && !status()["inbox"].contains("pending");
  };
  ASSERT_TRUE(eventually(settled)) << status().dump();
  // Our next write's answer comes 2 s late, and its webhook is held back for 1 s: the
  // webhook is applied after the ticket changed back, before the write is recorded.
  hook({{"reorder", 2}, {"flush_ms", 1000}});
  sim_->control("POST", "/sim/faults",
                {{"kind", "slow"},
                 {"delay_ms", 2000},
                 {"count", 1},
                 {"method", "PATCH"},
                 {"path", "/api/now/table/incident"}});
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "open"}});
  ASSERT_TRUE(
      eventually([&] { return records("incident", "sys_id=" + sys_id)[0]["state"] == "2"; }));
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "new"}});
  // The webhook's "In Progress" is recognised as what we sent, so the change back stands and
  // goes out.
  ASSERT_TRUE(eventually([&] {
    return records("incident", "sys_id=" + sys_id)[0]["state"] == "1";
  })) << ticket(id).dump()
      << server_->log();
  ASSERT_TRUE(eventually(settled)) << status().dump();
  EXPECT_EQ(ticket(id)["status"], "new");
  EXPECT_EQ(records("incident", "sys_id=" + sys_id)[0]["state"], "1");
}

TEST_F(ServiceNowSync, DuplicatedAndReorderedWebhooksGiveOneCorrectFinalState) {
  start_server();
  hook({{"duplicates", 2}, {"reorder", 4}, {"flush_ms", 100}});
  const Json inc = sim_->control("POST", "/sim/records/incident",
                                 {{"short_description", "Nightly backup failed"},
                                  {"urgency", "2"},
                                  {"_user", "jdoe"}})["result"];
  const std::string sys_id = inc["sys_id"];
  for (const char* state : {"2", "3", "2"}) {
    sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                  {{"state", state}, {"_user", "jdoe"}});
  }
  sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                {{"state", "6"},
                 {"close_code", "Solved (Permanently)"},
                 {"close_notes", "Restarted."},
                 {"_user", "jdoe"}});
  sim_->control("POST", "/sim/webhook/flush", Json::object());

  std::string id;
  ASSERT_TRUE(eventually([&] {
    const Json listed = api("GET", "/api/v1/tickets");
    for (const auto& t : listed["tickets"]) {
      if (t.value("external_ref", std::string()) == inc["number"].get<std::string>()) id = t["id"];
    }
    return !id.empty() && ticket(id)["status"] == "resolved";
  })) << api("GET", "/api/v1/tickets").dump()
      << server_->log();
  EXPECT_TRUE(id.starts_with("SNI")) << id;
  EXPECT_EQ(ticket(id)["subject"], "Nightly backup failed");
  EXPECT_EQ(ticket(id)["priority"], 4);  // impact 3 (default) x urgency 2
  int servicenow_tickets = 0, duplicates = 0;
  const Json listed = api("GET", "/api/v1/tickets");
  for (const auto& t : listed["tickets"]) {
    if (t["queue"] == "servicenow") ++servicenow_tickets;
  }
  EXPECT_EQ(servicenow_tickets, 1);
  const Json d = sim_->control("GET", "/sim/webhook/deliveries?wait_count=7", Json());
  for (const auto& x : d["deliveries"]) {
    EXPECT_LT(x["status"].get<int>(), 300) << x.dump();
    if (x["response"].get<std::string>().find("\"duplicate\"") != std::string::npos) ++duplicates;
  }
  EXPECT_GE(duplicates, 1) << d.dump();
}

TEST_F(ServiceNowSync, ADuplicateFromBeforeARestartIsFoundAppliedWithoutAReadOfTheInstance) {
  start_server();
  const Json inc =
      sim_->control("POST", "/sim/records/incident",
                    {{"short_description", "Replica lag"}, {"_user", "jdoe"}})["result"];
  const std::string webhook = Json{
      {"table", "incident"},
      {"sys_id", inc["sys_id"]},
      {"sys_mod_count", inc["sys_mod_count"]},
      {"sys_updated_by", "jdoe"},
      {"number", inc["number"]}}.dump();
  ASSERT_EQ(post_webhook(webhook).status, 202);
  ASSERT_TRUE(eventually([&] { return status()["inbox"].value("applied", 0) == 1; }))
      << status().dump();
  // The same webhook again: this process committed it, so it answers at once.
  const auto again = post_webhook(webhook);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("duplicate"), std::string::npos) << again.body;

  // After a restart the server does not remember it: the webhook is stored like any, and its
  // event finds that version applied, without asking the instance.
  server_->stop();
  server_->start();
  const std::int64_t since = last_request();
  EXPECT_EQ(post_webhook(webhook).status, 202);
  ASSERT_TRUE(eventually([&] { return status()["inbox"].value("duplicate", 0) == 1; }))
      << status().dump() << server_->log();
  EXPECT_EQ(writes_since(since, "GET"), 0);
  const Json tickets = api("GET", "/api/v1/tickets")["tickets"];
  ASSERT_EQ(tickets.size(), 1u) << tickets.dump();
  EXPECT_EQ(tickets[0]["subject"], "Replica lag");
}

TEST_F(ServiceNowSync, TheSweepCatchesUpWhatWebhooksMissed) {
  start_server();  // no hook: the business rule is off
  std::vector<std::string> ids;
  for (int i = 1; i <= 3; ++i) {
    ids.push_back(sim_->control("POST", "/sim/records/incident",
                                {{"short_description", "Missed " + std::to_string(i)},
                                 {"_user", "jdoe"}})["result"]["sys_id"]);
  }
  sim_->control("PATCH", "/sim/records/incident/" + ids[1],
                {{"state", "2"}, {"work_notes", "Disk replaced."}, {"_user", "jdoe"}});
  // Opened there long before the sweep brings it in: its ticket is timed from then.
  sim_->control("PATCH", "/sim/records/incident/" + ids[2],
                {{"opened_at", "2026-01-05 14:00:00"}, {"_user", "jdoe"}});
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 0u);

  const Json run = api("POST", "/api/v1/jobs/servicenow.sweep/run");
  // Three incidents and the work note on one of them.
  EXPECT_EQ(run["output"], "4 records read, 4 repaired") << run.dump();
  const Json tickets = api("GET", "/api/v1/tickets")["tickets"];
  ASSERT_EQ(tickets.size(), 3u) << tickets.dump();
  bool noted = false;
  for (const auto& t : tickets) {
    const Json full = ticket(t["id"]);
    if (full["subject"] == "Missed 2") {
      EXPECT_EQ(full["status"], "open");
      for (const auto& m : full["messages"])
        noted |= m["body"] == "Work note: Disk replaced." && m["direction"] == "note";
    }
    if (full["subject"] == "Missed 3") {
      EXPECT_EQ(full["created_at"], "2026-01-05T14:00:00Z");
    }
  }
  EXPECT_TRUE(noted);
  const Json s = status();
  EXPECT_EQ(s["last_sweep"]["repaired"], 4) << s.dump();
  EXPECT_TRUE(s["last_sweep"]["error"].is_null()) << s.dump();

  // A second sweep finds nothing new; the first one's cursor is kept.
  const Json again = api("POST", "/api/v1/jobs/servicenow.sweep/run");
  EXPECT_NE(again.dump().find("0 repaired"), std::string::npos) << again.dump();
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 3u);
}

TEST_F(ServiceNowSync, ARecordTwiceOnOnePageOfASweepMakesOneTicket) {
  start_server();
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "Twice"}, {"_user", "jdoe"}});
  const Json record = records("incident").at(0);
  // The sweep's first page holds the record twice. The sweep looks a page's records up in
  // one query before applying any; the second copy must find the first one applied.
  sim_->control("POST", "/sim/faults",
                {{"kind", "status"},
                 {"status", 200},
                 {"method", "GET"},
                 {"path", "/api/now/table/incident"},
                 {"body", Json{{"result", Json::array({record, record})}}.dump()},
                 {"content_type", "application/json;charset=UTF-8"}});
  const Json run = api("POST", "/api/v1/jobs/servicenow.sweep/run");
  EXPECT_EQ(run["output"], "2 records read, 1 repaired") << run.dump();
  const Json tickets = api("GET", "/api/v1/tickets")["tickets"];
  ASSERT_EQ(tickets.size(), 1u) << tickets.dump();
  EXPECT_EQ(tickets[0]["subject"], "Twice");
}

TEST_F(ServiceNowSync, BothSidesChangingAFieldMakeAConflictTheLaterWriterWins) {
  start_server();
  hook();
  const auto [id, sys_id] = linked_ticket("Slow reports");
  // Our next write is refused (a business rule aborts it), so our change waits in the outbox
  // while a person changes the same field there.
  const auto before = last_request();
  fail_incident_requests(403);
  api("PATCH", "/api/v1/tickets/" + id, {{"subject", "Slow reports since Monday"}});
  ASSERT_TRUE(eventually([&] { return writes_since(before, "PATCH") >= 1; }));
  std::this_thread::sleep_for(1100ms);  // their change is a later second than ours
  sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                {{"short_description", "Reports time out"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return ticket(id)["subject"] == "Reports time out"; }))
      << server_->log();
  sim_->control("DELETE", "/sim/faults");
  const Json conflicts = api("GET", "/api/v1/servicenow/conflicts")["conflicts"];
  ASSERT_EQ(conflicts.size(), 1u) << conflicts.dump() << status().dump();
  EXPECT_EQ(conflicts[0]["ticket"], id);
  EXPECT_EQ(conflicts[0]["field"], "subject");
  EXPECT_EQ(conflicts[0]["ours"], "Slow reports since Monday");
  EXPECT_EQ(conflicts[0]["theirs"], "Reports time out");
  EXPECT_EQ(conflicts[0]["winner"], "servicenow");
  EXPECT_EQ(status()["conflicts"], 1);
  EXPECT_EQ(records("incident", "sys_id=" + sys_id)[0]["short_description"], "Reports time out");
}

// A change made there whose webhook has not come (the business rule is off) is read before
// our PATCH would overwrite it: both sides changed the subject, and theirs is later than
// ours, which waited in the outbox.
TEST_F(ServiceNowSync, OurOlderChangeDoesNotOverwriteALaterOneMadeThere) {
  // No hook; our refused write is tried again every second.
  start_server(
      {{"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"}, {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "1"}});
  const auto [id, sys_id] = linked_ticket("Slow reports");
  ASSERT_NO_FATAL_FAILURE(change_subject_on_both_sides_while_unanswered(id, sys_id));
  sim_->control("DELETE", "/sim/faults");
  ASSERT_TRUE(eventually([&] { return ticket(id)["subject"] == "Reports time out"; }))
      << ticket(id).dump() << records("incident").dump() << server_->log();
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  EXPECT_EQ(records("incident", "sys_id=" + sys_id)[0]["short_description"], "Reports time out");
  const Json conflicts = api("GET", "/api/v1/servicenow/conflicts")["conflicts"];
  ASSERT_EQ(conflicts.size(), 1u) << conflicts.dump() << status().dump();
  EXPECT_EQ(conflicts[0]["field"], "subject");
  EXPECT_EQ(conflicts[0]["ours"], "Slow reports since Monday");
  EXPECT_EQ(conflicts[0]["theirs"], "Reports time out");
  EXPECT_EQ(conflicts[0]["winner"], "servicenow");
}

// The same with our change later: ours goes out, and the overwritten change is on record.
TEST_F(ServiceNowSync, OurLaterChangeOverwritesAnUnseenOneMadeThereWithAConflictRecorded) {
  start_server();  // no hook
  const auto [id, sys_id] = linked_ticket("Slow reports");
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                {{"short_description", "Reports time out"}, {"_user", "jdoe"}});
  std::this_thread::sleep_for(1100ms);  // ours is a later second than theirs
  api("PATCH", "/api/v1/tickets/" + id, {{"subject", "Slow reports since Monday"}});
  ASSERT_TRUE(eventually([&] {
    return records("incident", "sys_id=" + sys_id)[0]["short_description"] ==
           "Slow reports since Monday";
  })) << server_->log();
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  EXPECT_EQ(ticket(id)["subject"], "Slow reports since Monday");
  const Json conflicts = api("GET", "/api/v1/servicenow/conflicts")["conflicts"];
  ASSERT_EQ(conflicts.size(), 1u) << conflicts.dump() << status().dump();
  EXPECT_EQ(conflicts[0]["field"], "subject");
  EXPECT_EQ(conflicts[0]["ours"], "Slow reports since Monday");
  EXPECT_EQ(conflicts[0]["theirs"], "Reports time out");
  EXPECT_EQ(conflicts[0]["winner"], "slmhub");
}

// A PATCH of ours that got no answer lands after a later one of ours: its value is known as
// an old one of ours, not as someone's change there, and the later value stands on both sides.
TEST_F(ServiceNowSync, OurFieldWriteLandingLateDoesNotUndoALaterOne) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_TIMEOUT_MS", "300"},
                {"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"},
                {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "1"}});
  hook();
  const auto [id, sys_id] = linked_ticket("Archiver stuck");
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  const auto incident = [&, sys_id = sys_id] { return records("incident", "sys_id=" + sys_id)[0]; };
  const int versions = std::stoi(incident()["sys_mod_count"].get<std::string>());
  // The instance commits our next PATCH 2 s after it came; we give up waiting after 0.3 s.
  sim_->control("POST", "/sim/faults",
                {{"kind", "slow"},
                 {"before_commit", true},
                 {"delay_ms", 2000},
                 {"count", 1},
                 {"method", "PATCH"},
                 {"path", "/api/now/table/incident"}});
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "resolved"}});
  ASSERT_TRUE(
      eventually([&] { return sim_->control("GET", "/sim/faults", Json())["faults"].empty(); }));
  const auto taken = std::chrono::steady_clock::now();
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "pending"}});
  ASSERT_TRUE(eventually([&] { return incident()["state"] == "3"; })) << server_->log();
  // The slow write of "resolved" lands after ours of "pending".
  std::this_thread::sleep_until(taken + std::chrono::milliseconds(2500));
  ASSERT_TRUE(eventually([&] {
    const Json hook = sim_->control("GET", "/sim/webhook", Json());
    const Json now = incident();  // the slow write landed, and what followed it is done
    return std::stoi(now["sys_mod_count"].get<std::string>()) >= versions + 2 &&
           hook["pending"] == 0 && hook["delivered"] == hook["events"] && outbound_settled() &&
           !status()["inbox"].contains("pending") && now["state"] == "3";
  })) << incident().dump()
      << ticket(id).dump() << status().dump();
  EXPECT_EQ(ticket(id)["status"], "pending");
  EXPECT_EQ(incident()["state"], "3");
  EXPECT_TRUE(api("GET", "/api/v1/servicenow/conflicts")["conflicts"].empty());
}

// A refused PATCH leaves no note: when a person later sets the value it tried to write, and
// our next write (a comment) carries their change, it is theirs, applied here, not undone.
TEST_F(ServiceNowSync, ARefusedWritesValuesAreNotTakenAsOursLater) {
  start_server({{"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"},
                {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "1"}});  // no hook
  const auto [id, sys_id] = linked_ticket("Nightly export late");
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  const auto before = last_request();
  fail_incident_requests(403);  // a business rule refuses our PATCHes
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "resolved"}});
  ASSERT_TRUE(eventually([&] { return writes_since(before, "PATCH") >= 1; }));
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "new"}});  // back: nothing left to send
  ASSERT_TRUE(eventually([&] { return outbound_settled(); })) << api("GET", "/api/v1/outbox");
  sim_->control("DELETE", "/sim/faults");
  sim_->control("PATCH", "/sim/records/incident/" + sys_id,
                {{"state", "6"}, {"close_code", "Solved (Permanently)"}, {"_user", "jdoe"}});
  api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Export restarted."}});
  ASSERT_TRUE(eventually([&] { return ticket(id)["status"] == "resolved"; }))
      << ticket(id).dump() << server_->log();
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  EXPECT_EQ(records("incident", "sys_id=" + sys_id)[0]["state"], "6");
  EXPECT_EQ(ticket(id)["status"], "resolved");
}

// The later writer is judged per field group: a change here to another field after theirs
// does not make our older change of this one the later.
TEST_F(ServiceNowSync, AConflictsLaterWriterIsJudgedByWhenThatFieldChanged) {
  // No hook; our refused write is tried again every second.
  start_server(
      {{"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"}, {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "1"}});
  const auto [id, sys_id] = linked_ticket("Slow reports");
  // The instance answers nothing about incidents until both our changes are made, so the
  // conflict is judged once, with the ticket's last change later than theirs.
  ASSERT_NO_FATAL_FAILURE(change_subject_on_both_sides_while_unanswered(id, sys_id));
  std::this_thread::sleep_for(1100ms);
  const auto messages = [&] { return api("GET", "/api/v1/outbox")["messages"].size(); };
  const std::size_t queued = messages();
  api("PATCH", "/api/v1/tickets/" + id, {{"priority", 1}});  // the ticket's last change
  // Its message is queued when its event is handled, and with it the note of the change: an
  // attempt after the faults go sees every change of the ticket noted.
  ASSERT_TRUE(eventually([&] { return messages() > queued; }));
  sim_->control("DELETE", "/sim/faults");
  ASSERT_TRUE(eventually([&] {
    return records("incident", "sys_id=" + sys_id)[0]["priority"] == "1";
  })) << server_->log();
  ASSERT_TRUE(eventually([&] { return outbound_settled(); }));
  const Json t = ticket(id);
  EXPECT_EQ(t["subject"], "Reports time out");
  EXPECT_EQ(t["priority"], 1);
  EXPECT_EQ(records("incident", "sys_id=" + sys_id)[0]["short_description"], "Reports time out");
  const Json conflicts = api("GET", "/api/v1/servicenow/conflicts")["conflicts"];
  ASSERT_EQ(conflicts.size(), 1u) << conflicts.dump() << status().dump();
  EXPECT_EQ(conflicts[0]["field"], "subject");
  EXPECT_EQ(conflicts[0]["winner"], "servicenow");
}

TEST_F(ServiceNowSync, OutagesAndChangesBecomeInterruptionsAndMaintenance) {
  start_with_payroll_db();
  hook({{"tables", {"incident", "cmdb_ci_outage", "change_request"}}});
  const Json outage = sim_->control("POST", "/sim/records/cmdb_ci_outage",
                                    {{"cmdb_ci", "ci00000000000000000000000000001"},
                                     {"type", "outage"},
                                     {"begin", "2026-11-02 14:00:00"},
                                     {"end", "2026-11-02 14:45:00"},
                                     {"short_description", "Storage controller failed"},
                                     {"_user", "jdoe"}})["result"];
  const std::string interruption = "SNO" + outage["sys_id"].get<std::string>().substr(0, 12);
  ASSERT_TRUE(eventually([&] {
    return http(server_->port(), "GET", "/api/v1/interruptions/" + interruption, "",
                server_->admin_token())
               .status == 200;
  })) << status().dump()
      << server_->log();
  const Json i = api("GET", "/api/v1/interruptions/" + interruption);
  EXPECT_EQ(i["service"], "payroll-db");
  EXPECT_EQ(i["type"], "outage");
  EXPECT_EQ(i["start"], "2026-11-02T14:00:00Z");
  EXPECT_EQ(i["end"], "2026-11-02T14:45:00Z");
  EXPECT_EQ(i["description"], "Storage controller failed");

  // An incident flagged as an outage counts once it is resolved, from opened_at to resolved_at.
  sim_->control("POST", "/sim/clock", {{"now", "2026-11-04 08:00:00"}});
  const Json flagged = sim_->control("POST", "/sim/records/incident",
                                     {{"short_description", "Payroll database down"},
                                      {"cmdb_ci", "ci00000000000000000000000000001"},
                                      {"u_outage", "true"},
                                      {"_user", "jdoe"}})["result"];
  const std::string inc = flagged["number"];
  sim_->control("POST", "/sim/clock", {{"now", "2026-11-04 08:40:00"}});
  sim_->control("PATCH", "/sim/records/incident/" + flagged["sys_id"].get<std::string>(),
                {{"state", "6"}, {"close_code", "Solved (Permanently)"}, {"_user", "jdoe"}});
  sim_->control("POST", "/sim/clock", Json::object());
  ASSERT_TRUE(eventually([&] {
    return http(server_->port(), "GET", "/api/v1/interruptions/" + inc, "", server_->admin_token())
               .status == 200;
  })) << status().dump();
  const Json flagged_interruption = api("GET", "/api/v1/interruptions/" + inc);
  EXPECT_EQ(flagged_interruption["service"], "payroll-db");
  EXPECT_EQ(flagged_interruption["start"], "2026-11-04T08:00:00Z");
  EXPECT_EQ(flagged_interruption["end"], "2026-11-04T08:40:00Z");
  // Reopened, it is not resolved: the interruption is withdrawn. Resolved again, it is back
  // with the new end.
  const auto interruption_status = [&] {
    return http(server_->port(), "GET", "/api/v1/interruptions/" + inc, "", server_->admin_token())
        .status;
  };
  sim_->control("POST", "/sim/clock", {{"now", "2026-11-04 09:00:00"}});
  sim_->control("PATCH", "/sim/records/incident/" + flagged["sys_id"].get<std::string>(),
                {{"state", "2"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return interruption_status() == 404; })) << status().dump();
  sim_->control("POST", "/sim/clock", {{"now", "2026-11-04 09:30:00"}});
  sim_->control("PATCH", "/sim/records/incident/" + flagged["sys_id"].get<std::string>(),
                {{"state", "6"}, {"close_code", "Solved (Permanently)"}, {"_user", "jdoe"}});
  sim_->control("POST", "/sim/clock", Json::object());
  ASSERT_TRUE(eventually([&] { return interruption_status() == 200; })) << status().dump();
  EXPECT_EQ(api("GET", "/api/v1/interruptions/" + inc)["end"], "2026-11-04T09:30:00Z");

  // An outage of a CI that is not ours is left alone and reported.
  sim_->control("POST", "/sim/records/cmdb_ci_outage",
                {{"cmdb_ci", "ci99999999999999999999999999999"},
                 {"type", "outage"},
                 {"begin", "2026-11-03 10:00:00"},
                 {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return status()["inbox"].value("unmapped", 0) == 1; }))
      << status().dump();

  // A normal, high-impact change announced well ahead: a planned outage.
  sim_->control("POST", "/sim/clock", {{"now", "2026-11-02 09:00:00"}});
  const Json change = sim_->control("POST", "/sim/records/change_request",
                                    {{"cmdb_ci", "ci00000000000000000000000000001"},
                                     {"type", "normal"},
                                     {"impact", "2"},
                                     {"state", "-2"},
                                     {"start_date", "2026-11-21 02:00:00"},
                                     {"end_date", "2026-11-21 04:00:00"},
                                     {"_user", "jdoe"}})["result"];
  // An emergency change the same day.
  const Json emergency = sim_->control("POST", "/sim/records/change_request",
                                       {{"cmdb_ci", "ci00000000000000000000000000001"},
                                        {"type", "emergency"},
                                        {"start_date", "2026-11-02 12:00:00"},
                                        {"end_date", "2026-11-02 12:30:00"},
                                        {"_user", "jdoe"}})["result"];
  // Normal changes for Wednesday, two business days ahead: a disruptive one is an emergency
  // (DOMAIN.md §8), a low-impact one expedited non-disruptive.
  const auto short_notice = [&](const char* impact) {
    return sim_
        ->control("POST", "/sim/records/change_request",
                  {{"cmdb_ci", "ci00000000000000000000000000001"},
                   {"type", "normal"},
                   {"impact", impact},
                   {"start_date", "2026-11-04 02:00:00"},
                   {"end_date", "2026-11-04 03:00:00"},
                   {"_user", "jdoe"}})["result"]["number"]
        .get<std::string>();
  };
  const std::string disruptive = short_notice("1"), quiet = short_notice("3");
  sim_->control("POST", "/sim/clock", Json::object());
  const std::string chg = change["number"], emg = emergency["number"];
  ASSERT_TRUE(eventually([&] {
    return http(server_->port(), "GET", "/api/v1/maintenance/" + emg, "", server_->admin_token())
               .status == 200;
  })) << status().dump();
  const Json m = api("GET", "/api/v1/maintenance/" + chg);
  EXPECT_EQ(m["service"], "payroll-db");
  EXPECT_EQ(m["category"], "planned_outage");
  EXPECT_EQ(m["start"], "2026-11-21T02:00:00Z");
  EXPECT_EQ(m["end"], "2026-11-21T04:00:00Z");
  EXPECT_EQ(m["announced_at"], "2026-11-02T09:00:00Z");
  EXPECT_EQ(m["status"], "scheduled");
  EXPECT_EQ(api("GET", "/api/v1/maintenance/" + emg)["category"], "emergency");
  ASSERT_TRUE(eventually([&] {
    for (const auto& id : {disruptive, quiet}) {
      if (http(server_->port(), "GET", "/api/v1/maintenance/" + id, "", server_->admin_token())
              .status != 200) {
        return false;
      }
    }
    return true;
  })) << status().dump();
  EXPECT_EQ(api("GET", "/api/v1/maintenance/" + disruptive)["category"], "emergency");
  EXPECT_EQ(api("GET", "/api/v1/maintenance/" + quiet)["category"], "expedited_non_disruptive");

  // Cancelled there: cancelled here.
  sim_->control("PATCH", "/sim/records/change_request/" + change["sys_id"].get<std::string>(),
                {{"state", "4"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually(
      [&] { return api("GET", "/api/v1/maintenance/" + chg)["status"] == "cancelled"; }));
}

// Outages whose sys_ids begin alike each keep an interruption of their own: an id made from a
// prefix that another outage already holds would overwrite that outage's interruption.
TEST_F(ServiceNowSync, OutagesWhoseSysIdsBeginAlikeKeepTheirOwnInterruptions) {
  start_with_payroll_db();
  hook({{"tables", {"cmdb_ci_outage"}}});
  const std::string prefix = "0123456789ab";
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const std::string sys_id = prefix + std::string(19, '0') + std::to_string(i + 1);
    sim_->control("POST", "/sim/records/cmdb_ci_outage",
                  {{"sys_id", sys_id},
                   {"cmdb_ci", "ci00000000000000000000000000001"},
                   {"type", "outage"},
                   {"begin", "2026-11-0" + std::to_string(i + 2) + " 14:00:00"},
                   {"end", "2026-11-0" + std::to_string(i + 2) + " 14:45:00"},
                   {"_user", "jdoe"}});
  }
  const std::vector<std::string> expected = {"SNO" + prefix, "SNO" + prefix + "-012345",
                                             "SNO" + prefix + "-" + prefix};
  for (int i = 0; i < 3; ++i) {
    const std::string& id = expected[static_cast<std::size_t>(i)];
    ASSERT_TRUE(eventually([&] {
      return http(server_->port(), "GET", "/api/v1/interruptions/" + id, "", server_->admin_token())
                 .status == 200;
    })) << id
        << " " << status().dump();
    EXPECT_EQ(api("GET", "/api/v1/interruptions/" + id)["start"],
              "2026-11-0" + std::to_string(i + 2) + "T14:00:00Z")
        << id;
  }
}

// An outage that stops being one there (re-classified as planned, or the incident's outage
// flag taken off) withdraws the interruption it made: its downtime would otherwise still
// count against the service and earn credits. A change back records it again, same id. A
// change moved to a CI that is not ours cancels its maintenance window.
TEST_F(ServiceNowSync, WhatStopsBeingOursThereIsWithdrawnHere) {
  start_with_payroll_db();
  hook({{"tables", {"incident", "cmdb_ci_outage", "change_request"}}});
  const auto exists = [&](const std::string& id) {
    return http(server_->port(), "GET", "/api/v1/interruptions/" + id, "", server_->admin_token())
        .status;
  };
  const Json outage = sim_->control("POST", "/sim/records/cmdb_ci_outage",
                                    {{"cmdb_ci", "ci00000000000000000000000000001"},
                                     {"type", "outage"},
                                     {"begin", "2026-11-02 14:00:00"},
                                     {"end", "2026-11-02 14:45:00"},
                                     {"_user", "jdoe"}})["result"];
  const std::string outage_sys_id = outage["sys_id"];
  const std::string from_outage = "SNO" + outage_sys_id.substr(0, 12);
  ASSERT_TRUE(eventually([&] { return exists(from_outage) == 200; })) << status().dump();
  sim_->control("PATCH", "/sim/records/cmdb_ci_outage/" + outage_sys_id,
                {{"type", "planned"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return exists(from_outage) == 404; })) << status().dump();
  sim_->control("PATCH", "/sim/records/cmdb_ci_outage/" + outage_sys_id,
                {{"type", "degradation"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return exists(from_outage) == 200; })) << status().dump();
  EXPECT_EQ(api("GET", "/api/v1/interruptions/" + from_outage)["type"], "degradation");

  sim_->control("POST", "/sim/clock", {{"now", "2026-11-04 08:00:00"}});
  const Json flagged = sim_->control("POST", "/sim/records/incident",
                                     {{"short_description", "Payroll database down"},
                                      {"cmdb_ci", "ci00000000000000000000000000001"},
                                      {"u_outage", "true"},
                                      {"_user", "jdoe"}})["result"];
  const std::string inc = flagged["number"], inc_sys_id = flagged["sys_id"];
  sim_->control("POST", "/sim/clock", {{"now", "2026-11-04 08:40:00"}});
  sim_->control("PATCH", "/sim/records/incident/" + inc_sys_id,
                {{"state", "6"}, {"close_code", "Solved (Permanently)"}, {"_user", "jdoe"}});
  sim_->control("POST", "/sim/clock", Json::object());
  ASSERT_TRUE(eventually([&] { return exists(inc) == 200; })) << status().dump();
  sim_->control("PATCH", "/sim/records/incident/" + inc_sys_id,
                {{"u_outage", "false"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return exists(inc) == 404; })) << status().dump();
  // The ticket stays: only the downtime is withdrawn.
  EXPECT_EQ(api("GET", "/api/v1/tickets?limit=10")["tickets"].size(), 1u);
  EXPECT_NE(server_->log().find("interruption " + inc + " withdrawn: incident " + inc +
                                " is no longer flagged as an outage"),
            std::string::npos)
      << server_->log();
  // The audit log says who took it away.
  const Json audit = api("GET", "/api/v1/audit?entity=interruption")["audit"];
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0]["entity_id"], inc) << audit.dump();
  EXPECT_EQ(audit[0]["action"], "delete") << audit.dump();
  EXPECT_EQ(audit[0]["actor"], "system:servicenow") << audit.dump();

  sim_->control("POST", "/sim/clock", {{"now", "2026-11-02 09:00:00"}});
  const Json change = sim_->control("POST", "/sim/records/change_request",
                                    {{"cmdb_ci", "ci00000000000000000000000000001"},
                                     {"type", "normal"},
                                     {"impact", "2"},
                                     {"start_date", "2026-11-21 02:00:00"},
                                     {"end_date", "2026-11-21 04:00:00"},
                                     {"_user", "jdoe"}})["result"];
  sim_->control("POST", "/sim/clock", Json::object());
  const std::string chg = change["number"];
  const auto window_status = [&] {
    const auto r =
        http(server_->port(), "GET", "/api/v1/maintenance/" + chg, "", server_->admin_token());
    return r.status == 200 ? Json::parse(r.body)["status"].get<std::string>() : "";
  };
  ASSERT_TRUE(eventually([&] { return window_status() == "scheduled"; })) << status().dump();
  sim_->control("PATCH", "/sim/records/change_request/" + change["sys_id"].get<std::string>(),
                {{"cmdb_ci", "ci99999999999999999999999999999"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return window_status() == "cancelled"; })) << status().dump();
}

TEST_F(ServiceNowSync, AnInstanceWithStatesOfItsOwnMapsThemByConfiguration) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INCIDENT_STATES_IN",
                 "1=new,2=open,3=pending,4=pending,6=resolved,7=closed,8=closed"},
                {"SLMHUB_PLUGINS_SERVICENOW_INCIDENT_STATES_OUT",
                 "new=1,open=2,pending=4,resolved=6,closed=7"}});
  hook();
  const Json inc = sim_->control(
      "POST", "/sim/records/incident",
      {{"short_description", "Awaiting the vendor"}, {"state", "4"}, {"_user", "jdoe"}})["result"];
  std::string id;
  ASSERT_TRUE(eventually([&] {
    const Json listed = api("GET", "/api/v1/tickets");
    for (const auto& t : listed["tickets"]) id = t["id"];
    return !id.empty();
  })) << server_->log();
  EXPECT_EQ(ticket(id)["status"], "pending");
  // Going out, pending is this instance's state 4.
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "open"}});
  ASSERT_TRUE(eventually([&] {
    return records("incident", "sys_id=" + inc["sys_id"].get<std::string>())[0]["state"] == "2";
  }));
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "pending"}});
  ASSERT_TRUE(eventually([&] {
    return records("incident", "sys_id=" + inc["sys_id"].get<std::string>())[0]["state"] == "4";
  })) << server_->log()
      << api("GET", "/api/v1/servicenow/status").dump(1) << ticket(id).dump(1);
}

TEST_F(ServiceNowSync, AStateMappingThatLeavesAStatusOutIsRefusedAtStart) {
  start_server(
      {{"SLMHUB_PLUGINS_SERVICENOW_INCIDENT_STATES_OUT", "new=1,open=2,pending=3,resolved=6"}});
  const Json plugins = api("GET", "/api/v1/plugins")["plugins"];
  bool reported = false;
  for (const auto& p : plugins) {
    if (p["name"] != "servicenow") continue;
    EXPECT_EQ(p["state"], "failed");
    EXPECT_NE(
        p.value("reason", "")
            .find("plugins.servicenow.incident.states_out: status 'closed' has no state code"),
        std::string::npos)
        << p.dump();
    reported = true;
  }
  EXPECT_TRUE(reported) << plugins.dump();
  EXPECT_EQ(
      http(server_->port(), "GET", "/api/v1/servicenow/status", "", server_->admin_token()).status,
      404);
}

TEST_F(ServiceNowSync, A429StormIsRiddenOutWithinTheBudget) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_REQUESTS_PER_SECOND", "10"}});
  sim_->control("POST", "/sim/rate_limit", {{"limit", 6}, {"window_seconds", 2}});
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    ids.push_back(api("POST", "/api/v1/tickets",
                      {{"subject", "Storm " + std::to_string(i)}, {"kind", "incident"}})["id"]);
  }
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& id : ids) {
          if (records("incident", "correlation_id=" + id).size() != 1) return false;
        }
        return true;
      },
      90s))
      << server_->log();
  EXPECT_EQ(records("incident").size(), ids.size());
  const Json s = status();
  EXPECT_GT(s["client"]["throttled"].get<int>(), 0) << s.dump();
}

class ServiceNowOAuth : public ServiceNowSync {
  ServiceNowSimOptions sim_options() override {
    ServiceNowSimOptions o;
    o.oauth_clients = {{"slmhub-client", "client-secret"}};
    o.token_ttl_seconds = 3600;
    return o;
  }
};

TEST_F(ServiceNowOAuth, ExpiredTokensAreRefreshed) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_AUTH", "oauth"},
                {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_CLIENT_ID", "slmhub-client"},
                {"SLMHUB_SECRET_SERVICENOW_CLIENT_SECRET", "client-secret"}});
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Token one"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(eventually([&] { return records("incident", "correlation_id=" + id).size() == 1; }))
      << server_->log();
  sim_->control("POST", "/sim/tokens/expire", Json::object());
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "open"}});
  ASSERT_TRUE(eventually([&] {
    return records("incident", "correlation_id=" + id)[0]["state"] == "2";
  })) << server_->log();
  EXPECT_GE(status()["client"]["token_refreshes"].get<int>(), 1);
}

TEST_F(ServiceNowSync, ACreateRetriedAfterADroppedConnectionLeavesOneIncident) {
  start_server();
  lose_the_next_create_answer();
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Dropped answer"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(eventually([&] { return !ticket(id).value("external_ref", "").empty(); }))
      << server_->log();
  EXPECT_EQ(records("incident", "correlation_id=" + id).size(), 1u);
  EXPECT_EQ(records("incident").size(), 1u);
  EXPECT_EQ(sim_->control("GET", "/sim/faults", Json())["faults"].size(), 0u);  // it did fire
}

// An instance that does not keep our case number in correlation_id (a field ACL drops it
// without a word): the incident is linked by its sys_id all the same, so its webhook is our
// echo (no second ticket) and a later message updates it (no second incident); the log says
// what to fix, since a create whose answer is lost could not be found again.
TEST_F(ServiceNowSync, ACreateWhoseCaseNumberIsNotKeptIsLinkedBySysId) {
  start_server();
  sim_->control("POST", "/sim/acl", {{"readonly", {{"incident", {"correlation_id"}}}}});
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Not correlated"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(eventually([&] { return !ticket(id).value("external_ref", "").empty(); }))
      << server_->log();
  const Json incidents = records("incident");
  ASSERT_EQ(incidents.size(), 1u) << incidents.dump();
  EXPECT_EQ(ticket(id)["external_ref"], incidents[0]["number"]);
  EXPECT_NE(server_->log().find("let the integration user write incident.correlation_id"),
            std::string::npos)
      << server_->log();

  api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Still down at 10:05."}});
  const std::string sys_id = incidents[0]["sys_id"];
  ASSERT_TRUE(eventually([&] {
    return records("sys_journal_field", "element_id=" + sys_id).size() == 1;
  })) << server_->log();
  EXPECT_EQ(records("incident").size(), 1u) << records("incident").dump();
  EXPECT_EQ(api("GET", "/api/v1/outbox?state=dead")["messages"].size(), 0u);
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 1u)
      << api("GET", "/api/v1/tickets").dump();
}

// With outbound.enabled off nothing goes out, so a ticket never wins a conflict: the status
// changed there after it changed here is applied, even when a later message here made the
// ticket's last change the newer one, and no message waits in the outbox for a sender that
// does not exist.
TEST_F(ServiceNowSync, WithOutboundOffTheInstanceWinsEveryConflict) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_OUTBOUND_ENABLED", "false"}});
  const std::string sys_id =
      sim_->control("POST", "/sim/records/incident",
                    {{"short_description", "Batch late"}, {"_user", "jdoe"}})["result"]["sys_id"];
  api("POST", "/api/v1/jobs/servicenow.sweep/run");
  const Json tickets = api("GET", "/api/v1/tickets")["tickets"];
  ASSERT_EQ(tickets.size(), 1u) << tickets.dump();
  const std::string id = tickets[0]["id"];
  // Each change a second apart: the instance's and our times are whole seconds.
  api("PATCH", "/api/v1/tickets/" + id, {{"status", "pending"}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  sim_->control("PATCH", "/sim/records/incident/" + sys_id, {{"state", "2"}, {"_user", "jdoe"}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Rerun at 06:00."}});

  api("POST", "/api/v1/jobs/servicenow.sweep/run");
  EXPECT_EQ(ticket(id)["status"], "open");
  const Json conflicts = api("GET", "/api/v1/servicenow/conflicts")["conflicts"];
  ASSERT_EQ(conflicts.size(), 1u) << conflicts.dump();
  EXPECT_EQ(conflicts[0]["winner"], "servicenow");
  EXPECT_EQ(api("GET", "/api/v1/outbox?state=pending")["messages"].size(), 0u)
      << api("GET", "/api/v1/outbox?state=pending").dump();
}

// An integration user that may not read the journal (sys_journal_field answers 403): an
// incident raised there is applied all the same, and its webhook's row says "applied", not
// "failed"; the journal read's refusal is an error of the sync's status.
TEST_F(ServiceNowSync, AnIncidentIsAppliedWhenItsJournalCannotBeRead) {
  start_server();
  hook();
  sim_->control("POST", "/sim/faults",
                {{"kind", "status"},
                 {"status", 403},
                 {"method", "GET"},
                 {"path", "/api/now/table/sys_journal_field"},
                 {"count", -1}});
  const Json raised = sim_->control("POST", "/sim/records/incident",
                                    {{"short_description", "Reports are slow"},
                                     {"comments", "Since 09:00."},
                                     {"_user", "jdoe"}})["result"];
  ASSERT_TRUE(eventually([&] {
    const Json inbox = status()["inbox"];
    return !inbox.contains("pending") && !inbox.empty();
  })) << status().dump();
  EXPECT_EQ(status()["inbox"].value("applied", 0), 1) << status().dump();
  EXPECT_FALSE(status()["inbox"].contains("failed")) << status().dump();
  const Json tickets = api("GET", "/api/v1/tickets")["tickets"];
  ASSERT_EQ(tickets.size(), 1u) << tickets.dump();
  EXPECT_EQ(tickets[0]["external_ref"], raised["number"]);
  EXPECT_NE(status().dump().find("journal of " + raised["sys_id"].get<std::string>()),
            std::string::npos)
      << status().dump();
}

// The instance takes longer than the client waits: the create lands two seconds after the
// client gave up, and a look for it before then finds nothing. A message added to the ticket
// meanwhile must not create the incident a second time; it waits for the create's retry.
TEST_F(ServiceNowSync, AMessageAddedWhileTheCreateMayStillLandWaitsForIt) {
  start_with_a_slow_create();
  const std::string id = api(
      "POST", "/api/v1/tickets",
      {{"subject", "Slow instance"}, {"kind", "incident"}, {"body", "Down since 10:00."}})["id"];
  api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Still down at 10:05."}});
  // The slow create is under way once its fault is taken; it lands two seconds later.
  ASSERT_TRUE(
      eventually([&] { return sim_->control("GET", "/sim/faults", Json())["faults"].empty(); }));
  const auto sent_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        const Json found = records("incident", "correlation_id=" + id);
        return found.size() == 1 &&
               records("sys_journal_field", "element_id=" + found[0]["sys_id"].get<std::string>())
                       .size() == 1;
      },
      std::chrono::seconds(40)))
      << records("incident").dump() << server_->log();
  // Once the slow create has surely landed, there is still one incident: nothing else created
  // one while it was in doubt.
  std::this_thread::sleep_until(sent_at + std::chrono::milliseconds(2500));
  EXPECT_EQ(records("incident").size(), 1u) << records("incident").dump();
}

// The same slow create, and the ticket renamed while it is in doubt: the retry finds the
// incident the first attempt made, with the old subject, and the new one goes out after it.
TEST_F(ServiceNowSync, AChangeMadeWhileTheCreateWasInDoubtFollowsIt) {
  start_with_a_slow_create();
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Slow instance"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(
      eventually([&] { return sim_->control("GET", "/sim/faults", Json())["faults"].empty(); }));
  api("PATCH", "/api/v1/tickets/" + id, {{"subject", "Slow instance, renamed"}});
  ASSERT_TRUE(eventually(
      [&] {
        const Json found = records("incident", "correlation_id=" + id);
        return found.size() == 1 && found[0]["short_description"] == "Slow instance, renamed";
      },
      std::chrono::seconds(40)))
      << records("incident").dump() << server_->log();
  EXPECT_EQ(records("incident").size(), 1u);
  EXPECT_EQ(ticket(id)["subject"], "Slow instance, renamed");
}

TEST_F(ServiceNowSync, TheFirstMessageIsTheDescriptionOnlyWhenTheCreatesWebhookLinksFirst) {
  start_server();
  hook();
  // The create's answer is lost: while the client looks again, the webhook its create fired
  // links the ticket by its correlation_id.
  lose_the_next_create_answer();
  const std::string id = api("POST", "/api/v1/tickets",
                             {{"subject", "Tablespace full"},
                              {"kind", "incident"},
                              {"body", "ORA-01653 since 02:00."}})["id"];
  ASSERT_TRUE(eventually([&] { return !ticket(id).value("external_ref", "").empty(); }))
      << server_->log();
  const Json incident = records("incident", "correlation_id=" + id).at(0);
  EXPECT_EQ(incident["description"], "ORA-01653 since 02:00.");
  // A later change goes out, and the first message does not go with it as a comment.
  api("PATCH", "/api/v1/tickets/" + id, {{"priority", 2}});
  ASSERT_TRUE(eventually([&] {
    return records("incident", "sys_id=" + incident["sys_id"].get<std::string>())[0]["priority"] ==
           "2";
  }));
  EXPECT_EQ(
      records("sys_journal_field", "element_id=" + incident["sys_id"].get<std::string>()).size(),
      0u);
}

TEST_F(ServiceNowSync, AnIncidentCorrelatedWithATicketBringsTheChangesMadeThere) {
  // Someone there raises the incident for our case (our own create is off), already in
  // progress: linking it by its correlation_id applies what differs from the ticket.
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_OUTBOUND_ENABLED", "false"}});
  hook();
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Archive log full"}, {"kind", "incident"}})["id"];
  const Json incident = sim_->control("POST", "/sim/records/incident",
                                      {{"short_description", "Archive log full"},
                                       {"correlation_id", id},
                                       {"state", "2"},
                                       {"_user", "jdoe"}})["result"];
  ASSERT_TRUE(eventually([&] {
    return ticket(id).value("external_ref", "") == incident["number"];
  })) << status().dump()
      << server_->log();
  EXPECT_EQ(ticket(id)["status"], "open");
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 1u);
}

TEST_F(ServiceNowSync, AnotherSystemsCorrelationIdIsLeftAlone) {
  start_server();
  hook();
  const Json incident = sim_->control("POST", "/sim/records/incident",
                                      {{"short_description", "CPU above 95 %"},
                                       {"correlation_id", "ALERT-4711"},
                                       {"correlation_display", "monitoring"},
                                       {"_user", "monitoring"}})["result"];
  std::string id;
  ASSERT_TRUE(eventually([&] {
    const Json listed = api("GET", "/api/v1/tickets")["tickets"];
    if (listed.size() == 1) id = listed[0]["id"];
    return !id.empty();
  })) << server_->log();
  // Our change goes out; the monitoring tool's id stays on its incident.
  api("PATCH", "/api/v1/tickets/" + id, {{"priority", 1}});
  const std::string sys_id = incident["sys_id"];
  ASSERT_TRUE(
      eventually([&] { return records("incident", "sys_id=" + sys_id)[0]["priority"] == "1"; }));
  const Json now = records("incident", "sys_id=" + sys_id)[0];
  EXPECT_EQ(now["correlation_id"], "ALERT-4711");
  EXPECT_EQ(now["correlation_display"], "monitoring");
  EXPECT_EQ(ticket(id)["external_ref"], incident["number"]);
}

TEST_F(ServiceNowSync, ACommentWhoseAnswerWasLostIsAddedOnce) {
  start_server({{"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"}});
  hook();
  const std::string id =
      api("POST", "/api/v1/tickets", {{"subject", "Redo log switch"}, {"kind", "incident"}})["id"];
  ASSERT_TRUE(eventually([&] { return !ticket(id).value("external_ref", "").empty(); }))
      << server_->log();
  const std::string sys_id = records("incident", "correlation_id=" + id)[0]["sys_id"];
  // The PATCH carrying the comment is committed there, and its answer is lost.
  sim_->control("POST", "/sim/faults",
                {{"kind", "drop"},
                 {"after_commit", true},
                 {"count", 1},
                 {"method", "PATCH"},
                 {"path", "/api/now/table/incident"}});
  api("POST", "/api/v1/tickets/" + id + "/messages", {{"body", "Switched at 10:02."}});
  const auto comments = [&] {
    int n = 0;
    for (const auto& e : records("sys_journal_field", "element_id=" + sys_id + "^element=comments"))
      n += e["value"].get<std::string>().find("Switched at 10:02.") != std::string::npos;
    return n;
  };
  ASSERT_TRUE(eventually([&] { return comments() >= 1; })) << server_->log();
  // The outbox tried again (the message is sent after a failed attempt): it found the comment
  // there and sent nothing more.
  ASSERT_TRUE(eventually([&] {
    if (!outbound_settled()) return false;
    const Json sent = api("GET", "/api/v1/outbox?state=sent");
    for (const auto& m : sent["messages"]) {
      if (m["channel"] == "servicenow" && m["attempts"].get<int>() >= 1) return true;
    }
    return false;
  })) << api("GET", "/api/v1/outbox").dump()
      << server_->log();
  EXPECT_TRUE(api("GET", "/api/v1/outbox?state=dead")["messages"].empty());
  EXPECT_EQ(sim_->control("GET", "/sim/faults", Json())["faults"].size(), 0u);  // it did fire
  EXPECT_EQ(comments(), 1);
}

TEST_F(ServiceNowSync, ProcessedWebhooksAndWriteMarksAreDeletedAfterTheirDays) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INBOX_KEEP_DAYS", "0"}});
  hook();
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "Kept for a day"}, {"_user", "jdoe"}});
  std::string id;
  ASSERT_TRUE(eventually([&] {
    const Json listed = api("GET", "/api/v1/tickets")["tickets"];
    if (listed.size() == 1) id = listed[0]["id"];
    return !id.empty();
  })) << status().dump();
  // Our write back (the correlation_id) is marked, so that its webhook is an echo; that
  // webhook is stored too when it overtakes the mark.
  ASSERT_TRUE(eventually([&] { return !records("incident", "correlation_id=" + id).empty(); }));
  int processed = 0;
  ASSERT_TRUE(eventually([&] {
    const Json hook = sim_->control("GET", "/sim/webhook", Json());
    if (hook["pending"] != 0 || hook["delivered"] != hook["events"]) return false;
    if (!outbound_settled()) return false;  // the write mark is committed with the outcome
    const Json inbox = status()["inbox"];
    processed = 0;
    for (const auto& [state, n] : inbox.items()) processed += n.get<int>();
    return processed >= 1 && !inbox.contains("pending");
  })) << status().dump();
  const Json run = api("POST", "/api/v1/jobs/servicenow.prune/run");
  EXPECT_EQ(run["output"],
            std::to_string(processed) +
                " inbox rows, 1 write marks and 1 change notes older than 0 days deleted")
      << run.dump();
  EXPECT_TRUE(status()["inbox"].empty()) << status().dump();
  EXPECT_EQ(ticket(id)["subject"], "Kept for a day");
}

TEST_F(ServiceNowSync, ACommentSweptBeforeItsIncidentWaitsForIt) {
  // The journal is swept first here, so its pass meets a comment on an incident the
  // incident pass has not synced yet (with the usual order, one created between the passes).
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_SWEEP_TABLES", "sys_journal_field,incident"}});
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "Listener down"},
                 {"comments", "Restarted it twice."},
                 {"_user", "jdoe"}});
  const Json run = api("POST", "/api/v1/jobs/servicenow.sweep/run");
  EXPECT_EQ(run["output"], "2 records read, 1 repaired") << run.dump();
  const Json tickets = api("GET", "/api/v1/tickets")["tickets"];
  ASSERT_EQ(tickets.size(), 1u) << tickets.dump();
  const auto comments_on = [&](const Json& t) {
    int n = 0;
    for (const auto& m : t["messages"]) n += m["body"] == "Restarted it twice.";
    return n;
  };
  EXPECT_EQ(comments_on(ticket(tickets[0]["id"])), 1) << ticket(tickets[0]["id"]).dump();
  // Read again by the next sweep (its overlap), it is not added twice.
  api("POST", "/api/v1/jobs/servicenow.sweep/run");
  EXPECT_EQ(comments_on(ticket(tickets[0]["id"])), 1) << ticket(tickets[0]["id"]).dump();
}

TEST_F(ServiceNowSync, ASweepReadsAgainAWhileBeforeWhereTheLastOneStopped) {
  start_server();
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "First"}, {"_user", "jdoe"}});
  EXPECT_EQ(api("POST", "/api/v1/jobs/servicenow.sweep/run")["output"],
            "1 records read, 1 repaired");
  // A transaction that stamped its change half a minute ago commits only now: its record sorts
  // before where the sweep stopped.
  const std::time_t earlier = std::time(nullptr) - 30;
  std::tm utc{};
  gmtime_r(&earlier, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &utc);
  sim_->control("POST", "/sim/clock", {{"now", stamp}});
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "Late"}, {"_user", "jdoe"}});
  sim_->control("POST", "/sim/clock", Json::object());
  EXPECT_EQ(api("POST", "/api/v1/jobs/servicenow.sweep/run")["output"],
            "2 records read, 1 repaired");
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 2u);
}

// A setting that would make every read of an incident fail keeps the plugin from starting,
// and the log names the setting; the rest of the server runs.
TEST_F(ServiceNowSync, AnOutageFieldThatIsNoFieldNameKeepsThePluginFromStarting) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INCIDENT_OUTAGE_FIELD", "u-outage"}});
  EXPECT_NE(server_->log().find("plugins.servicenow.incident.outage_field: 'u-outage' is not a "
                                "field name"),
            std::string::npos)
      << server_->log();
  EXPECT_EQ(
      http(server_->port(), "GET", "/api/v1/servicenow/status", "", server_->admin_token()).status,
      404);
  EXPECT_EQ(http(server_->port(), "GET", "/healthz").status, 200);
}

// Settings the plugin cannot run with are named as the operator wrote them; a webhook secret
// that is not base64 (generateMac's key is) stops the plugin without showing the secret.
TEST_F(ServiceNowSync, BadInstanceSettingsAndANonBase64SecretAreNamed) {
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_TIMEOUT_MS", "0"}});
  EXPECT_NE(server_->log().find("plugins.servicenow.instance.timeout_ms: must be from 1 to "
                                "3600000, found 0"),
            std::string::npos)
      << server_->log();
  server_->stop();
  start_server({{"SLMHUB_PLUGINS_SERVICENOW_SWEEP_SINCE", "2026-01-01T00:00:00Z"}});
  EXPECT_NE(server_->log().find("plugins.servicenow.sweep.since: "), std::string::npos)
      << server_->log();
  server_->stop();
  start_server({{"SLMHUB_SECRET_SERVICENOW_WEBHOOK_SECRET", "not-base64!"}});
  EXPECT_NE(server_->log().find("secret servicenow_webhook_secret: not base64"), std::string::npos)
      << server_->log();
  EXPECT_EQ(server_->log().find("not-base64!"), std::string::npos) << server_->log();
}

// A table the integration user may not read is reported, and the tables after it are swept
// all the same: outages and changes missed by webhooks are still repaired.
TEST_F(ServiceNowSync, ATableTheInstanceRefusesDoesNotStopTheSweepOfTheOthers) {
  start_server();  // no hook
  sim_->control("POST", "/sim/faults",
                {{"kind", "status"},
                 {"status", 403},
                 {"count", -1},
                 {"method", "GET"},
                 {"path", "/api/now/table/sys_journal_field"}});
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "Missed"}, {"_user", "jdoe"}});
  sim_->control(
      "POST", "/sim/records/change_request",
      {{"type", "normal"}, {"short_description", "Patch the listener"}, {"_user", "jdoe"}});
  const auto run = http(server_->port(), "POST", "/api/v1/jobs/servicenow.sweep/run", "",
                        server_->admin_token());
  EXPECT_EQ(run.status, 500) << run.body;
  // The incident and the change (after the refused journal) were read; the job names the
  // table that failed.
  const std::string detail = Json::parse(run.body)["detail"];
  EXPECT_NE(detail.find("2 records read, 1 repaired; failed: sys_journal_field: "),
            std::string::npos)
      << detail;
  EXPECT_NE(detail.find("403"), std::string::npos) << detail;
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 1u);
}

TEST_F(ServiceNowSync, ARecordTheInstanceRefusesToShowDoesNotHoldUpTheWebhooksAfterIt) {
  start_server();
  hook({{"tables", {"incident", "change_request"}}});
  sim_->control("POST", "/sim/faults",
                {{"kind", "status"},
                 {"status", 403},
                 {"count", -1},
                 {"method", "GET"},
                 {"path", "/api/now/table/change_request"}});
  sim_->control(
      "POST", "/sim/records/change_request",
      {{"type", "normal"}, {"short_description", "Patch the listener"}, {"_user", "jdoe"}});
  sim_->control("POST", "/sim/records/incident",
                {{"short_description", "After the refused one"}, {"_user", "jdoe"}});
  ASSERT_TRUE(eventually([&] { return api("GET", "/api/v1/tickets")["tickets"].size() == 1; }))
      << status().dump() << server_->log();
  ASSERT_TRUE(eventually([&] { return status()["inbox"].value("failed", 0) == 1; }))
      << status().dump();
  EXPECT_NE(status().dump().find("403"), std::string::npos) << status().dump();
}

TEST_F(ServiceNowSync, BadWebhooksGetTheRight4xxAndChangeNothing) {
  start_server();
  const std::string good = R"({"table":"incident","sys_id":"0123456789abcdef0123456789abcdef",)"
                           R"("sys_mod_count":"0","sys_updated_by":"jdoe"})";
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  struct Case {
    const char* what;
    HttpResult result;
    int status;
  };
  std::vector<Case> cases;
  cases.push_back({"wrong signature", post_webhook(good, "not-the-secret"), 401});
  cases.push_back({"stale timestamp", post_webhook(good, kKey, now - 3600), 401});
  cases.push_back({"no signature",
                   http(server_->port(), "POST", "/api/v1/webhooks/servicenow", good, "", {}),
                   401});
  cases.push_back({"malformed JSON", post_webhook(R"({"table":"incident",)"), 400});
  cases.push_back({"not an object", post_webhook(R"(["incident"])"), 400});
  cases.push_back(
      {"unknown table",
       post_webhook(R"({"table":"sys_user","sys_id":"0123456789abcdef0123456789abcdef"})"), 422});
  cases.push_back(
      {"missing sys_id", post_webhook(R"({"table":"incident","sys_mod_count":"1"})"), 422});
  cases.push_back({"10 MB body", post_large_webhook(10 << 20), 413});
  for (const auto& c : cases) {
    EXPECT_EQ(c.result.status, c.status) << c.what << ": " << c.result.body;
    if (c.result.status >= 400) {
      EXPECT_NE(c.result.body.find("detail"), std::string::npos) << c.what << ": " << c.result.body;
    }
  }
  const Json s = status();
  EXPECT_EQ(s["inbox"], Json::object()) << s.dump();
  EXPECT_EQ(api("GET", "/api/v1/tickets")["tickets"].size(), 0u);

  // The same body, signed right, is accepted (the cases above failed for their own reason).
  EXPECT_EQ(post_webhook(good).status, 202);

  // A rule for one table posts to a path that names it, without the table in the body; a body
  // naming another table there is refused.
  const std::string untabled = R"({"sys_id":"fedcba9876543210fedcba9876543210",)"
                               R"("sys_mod_count":"0","sys_updated_by":"jdoe"})";
  EXPECT_EQ(post_webhook(untabled).status, 422);
  const auto by_path = post_webhook(untabled, kKey, -1, "/api/v1/webhooks/servicenow/incident");
  EXPECT_EQ(by_path.status, 202) << by_path.body;
  EXPECT_EQ(Json::parse(by_path.body)["table"], "incident");
  EXPECT_EQ(post_webhook(good, kKey, -1, "/api/v1/webhooks/servicenow/change_request").status, 422);
}

// Guessing the webhook's credentials is throttled like guessing a token: after the limit the
// sender gets 429 with Retry-After whatever it signs with, and the public pages stay open.
TEST_F(ServiceNowSync, WebhookCredentialGuessesAreThrottled) {
  start_server({{"SLMHUB_AUTH_MAX_FAILURES", "3"}});
  const std::string good = R"({"table":"incident","sys_id":"0123456789abcdef0123456789abcdef",)"
                           R"("sys_mod_count":"0","sys_updated_by":"jdoe"})";
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(post_webhook(good, "guess-" + std::to_string(i)).status, 401);
  const auto throttled = post_webhook(good, "guess-3");
  EXPECT_EQ(throttled.status, 429) << throttled.body;
  ASSERT_TRUE(throttled.headers.count("Retry-After")) << throttled.body;
  EXPECT_EQ(post_webhook(good).status, 429);  // the right signature is not told apart
  EXPECT_EQ(http(server_->port(), "GET", "/readyz").status, 200);
  EXPECT_NE(server_->log().find("refused the credentials of 127.0.0.1 (POST "), std::string::npos)
      << server_->log();
}

// Round after round, the server is killed with SIGKILL at a random moment of a burst of
// webhooks: after each restart every webhook it acknowledged (202) has become its ticket, once;
// the store stays intact.
TEST_F(ServiceNowSync, KillDuringAWebhookBurstLosesNothingAcknowledged) {
  CrashSchedule schedule(std::chrono::milliseconds(20), std::chrono::milliseconds(400));
  SCOPED_TRACE(schedule.describe());
  // Each acknowledged webhook is applied after the restart, re-read from the instance (some
  // 100 ms each here): 20 a round keep the rounds short, and the tickets in one listing.
  const int per_round = std::min(20, 900 / schedule.rounds());
  start_server();
  const std::string token = server_->admin_token();
  std::set<std::string> acknowledged;  // over every round
  for (int round = 0; round < schedule.rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<Json> incidents;
    for (int i = 0; i < per_round; ++i) {
      incidents.push_back(sim_->control(
          "POST", "/sim/records/incident",
          {{"short_description", "Burst " + std::to_string(round) + "." + std::to_string(i)},
           {"_user", "jdoe"}})["result"]);
    }
    if (round > 0) server_->start();
    std::mutex mutex;
    std::atomic<int> next{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t) {
      senders.emplace_back([&] {
        for (int i = next++; i < per_round; i = next++) {
          const Json& inc = incidents[i];
          const Json body = {{"table", "incident"},
                             {"sys_id", inc["sys_id"]},
                             {"sys_mod_count", inc["sys_mod_count"]},
                             {"sys_updated_by", "jdoe"},
                             {"number", inc["number"]}};
          try {
            if (post_webhook(body.dump()).status == 202) {
              std::lock_guard lock(mutex);
              acknowledged.insert(inc["number"].get<std::string>());
            }
          } catch (const std::exception&) {  // the server died under us: not acknowledged
            return;
          }
        }
      });
    }
    std::this_thread::sleep_for(schedule.next());
    server_->kill_hard();
    for (auto& t : senders) t.join();
    ASSERT_EQ(sqlite_integrity(dir_.path() / "slmhub.db"), "ok");

    server_->start();
    std::multiset<std::string> refs;
    ASSERT_TRUE(eventually(
        [&] {
          const auto r = http(server_->port(), "GET", "/api/v1/tickets?limit=1000", "", token);
          refs.clear();
          const Json listed = Json::parse(r.body);
          for (const auto& t : listed["tickets"]) refs.insert(t.value("external_ref", ""));
          for (const auto& n : acknowledged) {
            if (!refs.contains(n)) return false;
          }
          return true;
        },
        60s))
        << http(server_->port(), "GET", "/api/v1/servicenow/status", "", token).body
        << server_->log();
    for (const auto& n : refs) EXPECT_EQ(refs.count(n), 1u) << n << " twice";
    server_->kill_hard();
  }
  EXPECT_GT(acknowledged.size(), static_cast<std::size_t>(schedule.rounds()));
}

}  // namespace
}  // namespace slmhub::test
