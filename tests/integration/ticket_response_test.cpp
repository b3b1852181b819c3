// First-response targets (DOMAIN.md §7) through the real HTTP API of an in-process host on a
// manual clock: targets in business time of the provider calendar (the shared vector's:
// Chicago, weekdays 08:00-17:00, Thanksgiving closed), a person's answer meets them, the
// watch escalates a missed one once by e-mail, and ?breached=true lists what came late.
#include <gtest/gtest.h>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "http/auth.hpp"
#include "jobs/job_scheduler.hpp"
#include "manual_clock.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "storage/database.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

class TicketResponse : public testing::Test {
 protected:
  void SetUp() override {
    host::Settings settings;
    settings.set("db.url", "sqlite:" + (dir_.path() / "slmhub.db").string());
    settings.set("plugins.dir", SLMHUB_PLUGIN_DIR);
    settings.set("plugins.enabled", "availability");
    settings.set("auth.admin_token_file", (dir_.path() / "admin.token").string());
    settings.set("http.port", "0");
    settings.set("log.level", "warning");
    settings.set("tickets.escalate", "account-manager@example.org");
    server_ =
        std::make_unique<host::Server>(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock_);
    server_->open();
    server_->core().import(Actor{"test"}, parse_json(read_shared("vectors/example-2026-11.json")));
    port_ = server_->serve(/*background=*/false);
    operator_ = server_->tokens().create("test", "dba", {"viewer", "operator"}, std::nullopt).token;
  }
  void TearDown() override { server_->shutdown(); }

  Json call(const std::string& method, const std::string& path, const Json& body = nullptr) {
    const auto r = http(port_, method, path, body.is_null() ? "" : body.dump(), operator_,
                        {{"Content-Type", "application/json"}});
    EXPECT_LT(r.status, 300) << method << " " << path << ": " << r.body;
    return Json::parse(r.body);
  }
  std::vector<std::string> breached() {
    std::vector<std::string> out;
    const Json list = call("GET", "/api/v1/tickets?breached=true");
    for (const auto& t : list["tickets"]) out.push_back(t["id"]);
    return out;
  }

  TempDir dir_;
  ManualClock clock_{"2026-11-25T22:50:00Z"};  // Wednesday 16:50 in Chicago
  std::unique_ptr<host::Server> server_;
  int port_ = 0;
  std::string operator_;
};

TEST_F(TicketResponse, TargetsRunInBusinessTimeAndAMissedOneEscalatesOnce) {
  // Ten minutes before closing on the day before Thanksgiving: the incident's 30 minutes
  // continue on Monday 30 November at 08:00 (20 left: 08:20 CST); the request's business day
  // (540 minutes) has 530 left on Monday (16:50 CST).
  const Json incident =
      call("POST", "/api/v1/tickets", {{"subject", "database down"}, {"kind", "incident"}});
  const Json request =
      call("POST", "/api/v1/tickets", {{"subject", "new account"}, {"kind", "service_request"}});
  EXPECT_EQ(incident["first_response_due"], "2026-11-30T14:20:00Z");
  EXPECT_EQ(request["first_response_due"], "2026-11-30T22:50:00Z");
  const std::string inc = incident["id"], req = request["id"];

  clock_.set("2026-11-30T14:19:00Z");
  EXPECT_EQ(server_->jobs().run_now("tickets.response-watch"), "0 escalated");
  EXPECT_TRUE(breached().empty());
  clock_.set("2026-11-30T14:25:00Z");
  EXPECT_EQ(server_->jobs().run_now("tickets.response-watch"), "1 escalated");
  EXPECT_EQ(server_->jobs().run_now("tickets.response-watch"), "0 escalated");
  EXPECT_EQ(breached(), std::vector<std::string>{inc});
  const auto mails = server_->database().query(
      "SELECT destination, subject FROM outbox WHERE channel = 'email' ORDER BY id");
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].text(0), "account-manager@example.org");
  EXPECT_EQ(mails[0].text(1),
            "First response missed: " + inc + " (incident, due 2026-11-30T14:20:00Z)");

  // A person answers the request in time and the incident late.
  clock_.set("2026-11-30T15:00:00Z");
  call("POST", "/api/v1/tickets/" + req + "/messages",
       {{"body", "Account created."}, {"direction", "out"}});
  call("POST", "/api/v1/tickets/" + inc + "/messages",
       {{"body", "Restarted the listener."}, {"direction", "out"}});
  const Json answered = call("GET", "/api/v1/tickets/" + req);
  EXPECT_EQ(answered["first_responded_at"], "2026-11-30T15:00:00Z");
  EXPECT_EQ(answered["first_response_breached"], false);
  EXPECT_EQ(call("GET", "/api/v1/tickets/" + inc)["first_response_breached"], true);
  clock_.set("2026-12-01T15:00:00Z");
  EXPECT_EQ(breached(), std::vector<std::string>{inc});  // late stays late
  EXPECT_EQ(server_->jobs().run_now("tickets.response-watch"), "0 escalated");
  // The customer cannot answer its own ticket for the provider: its message is incoming.
  const std::string customer =
      server_->tokens().create("test", "reg", {"customer:registrar"}, std::nullopt).token;
  const Json own = Json::parse(http(port_, "POST", "/api/v1/tickets",
                                    Json{{"subject", "slow"}, {"kind", "incident"}}.dump(),
                                    customer, {{"Content-Type", "application/json"}})
                                   .body);
  const auto refused =
      http(port_, "POST", "/api/v1/tickets/" + own["id"].get<std::string>() + "/messages",
           Json{{"body", "any update?"}, {"direction", "out"}}.dump(), customer,
           {{"Content-Type", "application/json"}});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("a customer token writes incoming messages ('in') only"),
            std::string::npos)
      << refused.body;
  EXPECT_TRUE(call("GET", "/api/v1/tickets/" + own["id"].get<std::string>())["first_responded_at"]
                  .is_null());
  // A limit outside 1..1000 is named, not clamped.
  const auto limit = http(port_, "GET", "/api/v1/tickets?limit=0", "", operator_);
  EXPECT_EQ(limit.status, 400) << limit.body;
  EXPECT_NE(limit.body.find("is not a number from 1 to 1000"), std::string::npos) << limit.body;
  EXPECT_EQ(http(port_, "GET", "/api/v1/tickets?limit=10abc", "", operator_).status, 400);

  // Overdue and unanswered: the customer's open incident is escalated, one resolved before
  // anyone answered is not (nobody needs telling; it still counts as breached).
  const Json done =
      call("POST", "/api/v1/tickets", {{"subject", "fixed itself"}, {"kind", "incident"}});
  call("PATCH", "/api/v1/tickets/" + done["id"].get<std::string>(), {{"status", "resolved"}});
  clock_.set("2026-12-02T15:00:00Z");
  EXPECT_EQ(server_->jobs().run_now("tickets.response-watch"), "1 escalated");
  EXPECT_EQ(
      call("GET", "/api/v1/tickets/" + done["id"].get<std::string>())["first_response_breached"],
      true);
}

// A request found to be an incident is due as an incident, from its arrival: at 10:45 a
// request that came at 10:00 is overdue at once, and the watch escalates it. A PATCH that
// changes nothing leaves no trace.
TEST_F(TicketResponse, ANewKindBringsItsTargetFromTheTicketsArrival) {
  clock_.set("2026-12-01T16:00:00Z");  // Tuesday 10:00 in Chicago
  const Json request =
      call("POST", "/api/v1/tickets", {{"subject", "can't log in"}, {"kind", "service_request"}});
  EXPECT_EQ(request["first_response_due"], "2026-12-02T16:00:00Z");
  const std::string id = request["id"];
  const std::string path = "/api/v1/tickets/" + id;
  const auto audit_rows = [&] {
    return server_->database()
        .query("SELECT COUNT(*) FROM audit_log WHERE entity = 'ticket' AND entity_id = ?", {id})
        .at(0)
        .integer(0);
  };
  const std::int64_t audited = audit_rows();
  EXPECT_EQ(call("PATCH", path, Json::object())["updated_at"], "2026-12-01T16:00:00Z");
  EXPECT_EQ(call("PATCH", path, {{"kind", "service_request"}})["updated_at"],
            "2026-12-01T16:00:00Z");
  EXPECT_EQ(audit_rows(), audited);

  clock_.set("2026-12-01T16:45:00Z");
  const Json incident = call("PATCH", path, {{"kind", "incident"}});
  EXPECT_EQ(incident["first_response_due"], "2026-12-01T16:30:00Z");
  EXPECT_EQ(incident["updated_at"], "2026-12-01T16:45:00Z");
  EXPECT_EQ(incident["first_response_breached"], true);
  EXPECT_EQ(audit_rows(), audited + 1);
  EXPECT_EQ(server_->jobs().run_now("tickets.response-watch"), "1 escalated");

  // ?breached=false is the other tickets, not all of them; a filter the list does not have is
  // refused rather than ignored.
  const Json other = call("POST", "/api/v1/tickets", {{"subject", "quota"}});
  EXPECT_EQ(breached(), std::vector<std::string>{id});
  const Json on_time = call("GET", "/api/v1/tickets?breached=false");
  ASSERT_EQ(on_time["tickets"].size(), 1u) << on_time.dump();
  EXPECT_EQ(on_time["tickets"][0]["id"], other["id"]);
  const auto unknown = http(port_, "GET", "/api/v1/tickets?status=open", "", operator_);
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_NE(unknown.body.find("is not a parameter of this list (it takes breached, limit)"),
            std::string::npos)
      << unknown.body;
}

// Queues nobody declared all number their tickets SLM…: one sequence per prefix, so no case
// number is handed out twice (it was per queue, and the second queue's first ticket failed).
TEST_F(TicketResponse, QueuesThatShareAPrefixShareItsNumbers) {
  std::vector<std::string> ids;
  for (const char* queue : {"alpha", "beta", "default", "beta"})
    ids.push_back(call("POST", "/api/v1/tickets", {{"subject", "x"}, {"queue", queue}})["id"]);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"SLM0000001", "SLM0000002", "SLM0000003", "SLM0000004"}));
}

// A customer with a ticket still being worked on cannot be deleted; once its tickets are done
// it can, and they keep its id as history.
TEST_F(TicketResponse, ACustomerWithAnOpenTicketIsNotDeleted) {
  const std::string manager =
      server_->tokens().create("test", "sm", {"viewer", "service_manager"}, std::nullopt).token;
  const auto as_manager = [&](const std::string& method, const std::string& path,
                              const std::string& body = {}) {
    return http(port_, method, path, body, manager, {{"Content-Type", "application/json"}});
  };
  ASSERT_EQ(as_manager("POST", "/api/v1/customers",
                       R"({"id":"observatory","name":"Observatory","billing_code":"OBS-1"})")
                .status,
            201);
  const Json t = call("POST", "/api/v1/tickets", {{"subject", "x"}, {"customer", "observatory"}});
  const auto refused = as_manager("DELETE", "/api/v1/customers/observatory");
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("customer 'observatory' is still referred to by open ticket '" +
                              t["id"].get<std::string>() + "'"),
            std::string::npos)
      << refused.body;
  call("PATCH", "/api/v1/tickets/" + t["id"].get<std::string>(), {{"status", "closed"}});
  EXPECT_EQ(as_manager("DELETE", "/api/v1/customers/observatory").status, 204);
  EXPECT_EQ(call("GET", "/api/v1/tickets/" + t["id"].get<std::string>())["customer"],
            "observatory");
}

// The provider calendar is kept between tickets; a change to it applies to the next one.
TEST_F(TicketResponse, AChangedProviderCalendarAppliesToTheNextTicket) {
  EXPECT_EQ(call("POST", "/api/v1/tickets",
                 {{"subject", "down"}, {"kind", "incident"}})["first_response_due"],
            "2026-11-30T14:20:00Z");  // Thanksgiving and the day after closed
  // The same calendar without Thanksgiving: the incident's 20 minutes left continue on
  // Thursday 26 November at 08:00 CST.
  const std::string manager =
      server_->tokens().create("test", "sm", {"service_manager"}, std::nullopt).token;
  const Json open_thursday = {{"id", "business"},
                              {"timezone", "America/Chicago"},
                              {"hours",
                               {{"mon", {"08:00", "17:00"}},
                                {"tue", {"08:00", "17:00"}},
                                {"wed", {"08:00", "17:00"}},
                                {"thu", {"08:00", "17:00"}},
                                {"fri", {"08:00", "17:00"}}}},
                              {"holidays", {"2026-12-24", "2026-12-25"}}};
  const auto put = http(port_, "PUT", "/api/v1/calendars/business", open_thursday.dump(), manager,
                        {{"Content-Type", "application/json"}});
  ASSERT_LT(put.status, 300) << put.body;
  EXPECT_EQ(call("POST", "/api/v1/tickets",
                 {{"subject", "down again"}, {"kind", "incident"}})["first_response_due"],
            "2026-11-26T14:20:00Z");
}

// The provider calendar rules every business-day deadline and every target here; deleting
// it, even when no service keeps its hours, would leave the store without one.
TEST_F(TicketResponse, TheProviderCalendarCannotBeDeleted) {
  const Json office = {{"id", "office"},
                       {"timezone", "America/Chicago"},
                       {"hours", {{"mon", {"09:00", "17:00"}}, {"tue", {"09:00", "17:00"}}}}};
  server_->core().import(
      Actor{"test"},
      {{"timezone", "America/Chicago"}, {"provider_calendar", "office"}, {"calendars", {office}}});
  const std::string manager =
      server_->tokens().create("test", "sm", {"service_manager"}, std::nullopt).token;
  const auto refused = http(port_, "DELETE", "/api/v1/calendars/office", "", manager);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("calendar 'office' is still referred to by setting "
                              "'provider_calendar'"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(http(port_, "GET", "/api/v1/reports/availability?month=2026-11", "", operator_).status,
            200);
}

// A customer token opens its own tickets, new, in the queues staff made: it cannot close one
// at birth (no first-response target would run) nor give it an external_ref, which would
// thread another system's mail about that record (a ServiceNow incident) onto its ticket.
TEST_F(TicketResponse, ACustomerTokenCannotSetTheStaffFieldsOfATicket) {
  const std::string customer =
      server_->tokens().create("test", "reg", {"customer:registrar"}, std::nullopt).token;
  const auto post = [&](const Json& body) {
    return http(port_, "POST", "/api/v1/tickets", body.dump(), customer,
                {{"Content-Type", "application/json"}});
  };
  const auto refused = post({{"subject", "slow"},
                             {"status", "closed"},
                             {"external_ref", "INC1"},
                             {"requester", "Service Desk"}});
  EXPECT_EQ(refused.status, 400) << refused.body;
  const Json errors = Json::parse(refused.body)["errors"];
  ASSERT_EQ(errors.size(), 3u) << refused.body;
  EXPECT_EQ(errors[0]["path"], "$.status");
  EXPECT_EQ(errors[1]["path"], "$.external_ref");
  EXPECT_EQ(errors[2]["path"], "$.requester");
  const auto queue = post({{"subject", "slow"}, {"queue", "made-up"}});
  EXPECT_EQ(queue.status, 400) << queue.body;
  EXPECT_NE(queue.body.find("unknown queue 'made-up'"), std::string::npos) << queue.body;
  EXPECT_TRUE(call("GET", "/api/v1/tickets")["tickets"].empty());
  // Staff may: an operator files into a new queue, already linked to an incident.
  const Json staff = call("POST", "/api/v1/tickets",
                          {{"subject", "slow"}, {"queue", "made-up"}, {"external_ref", "INC1"}});
  EXPECT_EQ(staff["external_ref"], "INC1");
  // And the customer into a queue that exists now.
  const auto filed = post({{"subject", "slow too"}, {"queue", "made-up"}});
  ASSERT_EQ(filed.status, 201) << filed.body;
  EXPECT_EQ(Json::parse(filed.body)["customer"], "registrar");
  EXPECT_EQ(Json::parse(filed.body)["status"], "new");
  // A note (a ServiceNow work note, where only comments reach the caller) is for staff.
  const std::string own_id = Json::parse(filed.body)["id"];
  server_->database().transact([&](Tx& tx) {
    TicketMessage note;
    note.direction = "note";
    note.author = "servicenow:jdoe";
    note.body = "Work note: the customer's schema is a mess";
    server_->core().add_message(tx, Actor{"system:servicenow"}, own_id, note);
  });
  const auto seen = http(port_, "GET", "/api/v1/tickets/" + own_id, "", customer);
  ASSERT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(seen.body.find("schema is a mess"), std::string::npos) << seen.body;
  const Json staff_view = call("GET", "/api/v1/tickets/" + own_id);
  ASSERT_EQ(staff_view["messages"].size(), 1u) << staff_view.dump();
  EXPECT_EQ(staff_view["messages"][0]["direction"], "note");
  // A customer integration that also reads as `viewer` still writes as the customer: not to
  // another customer's ticket, nor a ticket of another customer's.
  const std::string reader =
      server_->tokens().create("test", "reg", {"customer:registrar", "viewer"}, std::nullopt).token;
  const auto other =
      http(port_, "POST", "/api/v1/tickets/" + staff["id"].get<std::string>() + "/messages",
           Json{{"body", "hello"}}.dump(), reader, {{"Content-Type", "application/json"}});
  EXPECT_EQ(other.status, 404) << other.body;
  const auto theirs =
      http(port_, "POST", "/api/v1/tickets", Json{{"subject", "x"}, {"customer", "library"}}.dump(),
           reader, {{"Content-Type", "application/json"}});
  EXPECT_EQ(theirs.status, 400) << theirs.body;
  EXPECT_NE(theirs.body.find("a customer token files tickets for 'registrar' only"),
            std::string::npos)
      << theirs.body;
}

}  // namespace
}  // namespace slmhub::test
