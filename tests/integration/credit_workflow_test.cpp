// The agency's monthly credit cycle (DOMAIN.md §5-6) end to end, through the real HTTP API
// of an in-process host on a manual clock: the shared vector's November interruptions become
// SIA drafts, the report is published, one SLA Credit work order per missed service carries
// the vector's customers and cents, approval issues the credits (`credit.approved`), a
// dispute climbs to level 3 and ends with an adjustment (`credit.adjusted`) and an outcome
// e-mail, a customer's own request is accepted on day 59 and refused on day 61, and the work
// order left unapproved is warned about and escalated on the right business days around the
// Christmas holidays of the provider calendar. Events are dispatched and jobs run by the
// test, so every step happens exactly when the clock says.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "events/event_bus.hpp"
#include "http/auth.hpp"
#include "jobs/job_scheduler.hpp"
#include "manual_clock.hpp"
#include "server_process.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "storage/database.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

class CreditCycle : public testing::Test {
 protected:
  void SetUp() override {
    host::Settings settings;
    settings.set("db.url", "sqlite:" + (dir_.path() / "slmhub.db").string());
    settings.set("plugins.dir", SLMHUB_PLUGIN_DIR);
    settings.set("auth.admin_token_file", (dir_.path() / "admin.token").string());
    settings.set("http.port", "0");
    settings.set("log.level", "warning");
    server_ =
        std::make_unique<host::Server>(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock_);
    server_->open();
    server_->events().subscribe("test.credits", {"credit.*"}, [this](const Event& e) {
      std::lock_guard lock(mutex_);
      credit_events_.push_back(e);
    });
    port_ = server_->serve(/*background=*/false);

    manager_ = token({"viewer", "service_manager"});
    deputy_ = token({"viewer", "service_manager", "approver"});
    approver_ = token({"viewer", "approver"});
    library_ = token({"customer:library"});
    registrar_ = token({"customer:registrar"});
  }
  void TearDown() override { server_->shutdown(); }

  std::string token(const std::vector<std::string>& roles) {
    return server_->tokens().create("test", roles.back(), roles, std::nullopt).token;
  }

  // The shared November vector with a billing contact for each customer (the vector has none).
  void import_november() {
    Json dataset = parse_json(read_shared("vectors/example-2026-11.json"));
    for (auto& c : dataset["customers"]) {
      const std::string id = c["id"];
      c["contacts"] = Json::array({{{"role", "billing"},
                                    {"name", "Billing office"},
                                    {"email", "billing@" + id + ".example.org"}}});
    }
    server_->core().import(Actor{"test"}, dataset);
  }

  HttpResult call(const std::string& method, const std::string& path, const std::string& who,
                  const Json& body = nullptr) {
    return http(port_, method, path, body.is_null() ? "" : body.dump(), who,
                body.is_null()
                    ? std::map<std::string, std::string>{}
                    : std::map<std::string, std::string>{{"Content-Type", "application/json"}});
  }
  Json ok(const std::string& method, const std::string& path, const std::string& who,
          const Json& body = nullptr) {
    const auto r = call(method, path, who, body);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << method << " " << path << ": " << r.body;
    return Json::parse(r.body);
  }

  void dispatch() {
    while (server_->events().dispatch_once() > 0) {
    }
  }

  std::vector<Event> credit_events(const std::string& type) {
    std::lock_guard lock(mutex_);
    std::vector<Event> out;
    for (const auto& e : credit_events_) {
      if (e.type == type) out.push_back(e);
    }
    return out;
  }

  Json deadline(const std::string& id) {
    const Json all = ok("GET", "/api/v1/deadlines", manager_)["deadlines"];
    for (const auto& d : all) {
      if (d["id"] == id) return d;
    }
    ADD_FAILURE() << "no deadline " << id << " in " << all.dump();
    return nullptr;
  }

  std::vector<std::string> outbox_to(const std::string& subject_prefix) {
    std::vector<std::string> out;
    for (const auto& row :
         server_->database().query("SELECT destination, subject FROM outbox ORDER BY id")) {
      if (row.text(1).starts_with(subject_prefix)) out.push_back(row.text(0));
    }
    return out;
  }

  std::vector<std::string> trail(const std::string& entity, const std::string& id) {
    std::vector<std::string> out;
    const Json audit = server_->core().audit(entity, 200);
    for (auto it = audit.rbegin(); it != audit.rend(); ++it) {
      if ((*it)["entity_id"] == id) out.push_back((*it)["action"].get<std::string>());
    }
    return out;
  }

  TempDir dir_;
  ManualClock clock_{"2026-12-01T12:00:00Z"};
  std::unique_ptr<host::Server> server_;
  int port_ = 0;
  std::string manager_, deputy_, approver_, library_, registrar_;
  std::mutex mutex_;
  std::vector<Event> credit_events_;
};

TEST_F(CreditCycle, OneMonthFromInterruptionsToApprovedAndAdjustedCredits) {
  const Json expected = parse_json(read_shared("vectors/example-2026-11.expected.json"));

  // 1 December: November's interruptions arrive; every ended outage gets an SIA draft (the
  // degradation INC0005 does not), and the monthly job drafts the report.
  import_november();
  dispatch();
  const Json drafts = ok("GET", "/api/v1/sias", manager_);
  std::vector<std::string> sias;
  for (const auto& s : drafts["sias"]) sias.push_back(s["id"]);
  std::sort(sias.begin(), sias.end());
  EXPECT_EQ(sias, (std::vector<std::string>{"INC0001", "INC0002", "INC0003", "INC0004"}));
  EXPECT_EQ(server_->jobs().run_now("availability.monthly-draft"), "2026-11 revision 1 drafted");

  // Tuesday 8 December, 10:00 in Chicago: reviewed, approved and published.
  clock_.set("2026-12-08T16:00:00Z");
  const std::string report = "/api/v1/reports/availability/2026-11/revisions/1";
  ok("POST", report + "/review", manager_);
  ok("POST", report + "/approve", approver_);
  ok("POST", report + "/publish", manager_);
  dispatch();

  // One work order per missed service, with the vector's customers, seconds and cents.
  const Json orders = ok("GET", "/api/v1/credit-work-orders?month=2026-11", manager_);
  ASSERT_EQ(orders["work_orders"].size(), 2u) << orders.dump();
  std::map<std::string, Json> by_id;
  for (const auto& w : orders["work_orders"]) by_id[w["id"]] = w;
  for (const auto& service : expected["services"]) {
    const std::string id = "WO:2026-11:" + service["service"].get<std::string>();
    ASSERT_TRUE(by_id.contains(id)) << id;
    const Json& form = by_id[id]["form"];
    EXPECT_EQ(by_id[id]["state"], "open");
    EXPECT_EQ(form["incidents"], service["interruptions"]);
    EXPECT_EQ(form["seconds_above_sla"], service["excess_downtime_seconds"]);
    std::vector<Json> rows;
    for (const auto& c : expected["credits"]) {
      if (c["service"] == service["service"]) rows.push_back(c);
    }
    ASSERT_EQ(form["customers"].size(), rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(form["customers"][i]["customer"], rows[i]["customer"]);
      EXPECT_EQ(form["customers"][i]["credit_cents"], rows[i]["credit_cents"]);
      EXPECT_EQ(form["customers"][i]["excess_downtime_seconds"],
                rows[i]["excess_downtime_seconds"]);
    }
    // 15 business days after Tuesday 8 December: 9-11, 14-18, 21-23, (24 and 25 are
    // holidays), 28-31.
    EXPECT_EQ(by_id[id]["due_date"], "2026-12-31");
    EXPECT_EQ(by_id[id]["due"], "2027-01-01T06:00:00Z");
  }
  EXPECT_EQ(by_id["WO:2026-11:oracle-prod"]["form"]["customers"][1]["billing_code"], "REG-100");

  // Only the deputy director approves; approval issues each customer's credit.
  EXPECT_EQ(
      call("POST", "/api/v1/credit-work-orders/WO:2026-11:oracle-prod/approve", manager_).status,
      403);
  clock_.set("2026-12-09T16:00:00Z");
  ok("POST", "/api/v1/credit-work-orders/WO:2026-11:oracle-prod/approve", approver_);
  dispatch();
  std::map<std::string, std::int64_t> approved;
  std::map<std::string, Json> named;  // customer -> [incidents, maintenance ids]
  for (const auto& e : credit_events("credit.approved")) {
    approved[e.payload["customer"]] = e.payload["amount_cents"];
    named[e.payload["customer"]] = {e.payload["incidents"], e.payload["maintenance_downtime"]};
    EXPECT_EQ(e.payload["service"], "oracle-prod");
    EXPECT_EQ(e.payload["month"], "2026-11");
  }
  std::map<std::string, std::int64_t> oracle_credits;
  std::map<std::string, Json> oracle_named;
  for (const auto& c : expected["credits"]) {
    if (c["service"] != "oracle-prod") continue;
    oracle_credits[c["customer"]] = c["credit_cents"];
    oracle_named[c["customer"]] = {c["interruptions"], c["maintenance_downtime"]};
  }
  EXPECT_EQ(approved, oracle_credits);
  // The record names what made up the downtime: incidents and maintenance (DOMAIN.md §4).
  EXPECT_EQ(named, oracle_named);
  const Json library_credit = ok("GET", "/api/v1/credits/WO:2026-11:oracle-prod:library", manager_);
  EXPECT_EQ(library_credit["incidents"], Json({"INC0002", "INC0003"}));
  EXPECT_EQ(library_credit["maintenance_downtime"], Json({"CHG0002"}));

  // A customer token sees its own credits only.
  const Json mine = ok("GET", "/api/v1/credits", registrar_);
  for (const auto& c : mine["credits"]) EXPECT_EQ(c["customer"], "registrar");
  EXPECT_EQ(mine["credits"].size(), 2u);  // oracle-prod (approved) and mysql-qa (pending)
  EXPECT_EQ(call("GET", "/api/v1/credits/WO:2026-11:oracle-prod:library", registrar_).status, 404);
  // A filter with a typo is refused naming it, not answered with an empty list.
  for (const std::string list :
       {"credits", "credit-work-orders", "credit-requests", "disputes", "obligations"}) {
    const auto typo = call("GET", "/api/v1/" + list + "?state=aproved", manager_);
    EXPECT_EQ(typo.status, 400) << list;
    EXPECT_NE(typo.body.find("'aproved' is not a"), std::string::npos) << typo.body;
  }
  EXPECT_EQ(ok("GET", "/api/v1/credits?state=approved", registrar_)["credits"].size(), 1u);

  // 10 December: the registrar disputes its oracle-prod credit; levels 1 → 2 → 3.
  clock_.set("2026-12-10T16:00:00Z");
  const std::string credit = "WO:2026-11:oracle-prod:registrar";
  const Json dispute = ok("POST", "/api/v1/disputes", registrar_,
                          {{"credit", credit},
                           {"basis", "our batch window was lost twice"},
                           {"supporting_information", "job logs of 3 and 8 November"}});
  EXPECT_EQ(dispute["level"], 1);
  EXPECT_EQ(dispute["window_closes"], "2027-01-08");  // 30 calendar days after 9 December
  const std::string path = "/api/v1/disputes/" + dispute["id"].get<std::string>();
  EXPECT_EQ(ok("POST", path + "/escalate", manager_, {{"reason", "working group split"}})["level"],
            2);
  EXPECT_EQ(
      ok("POST", path + "/escalate", manager_, {{"reason", "management could not agree"}})["level"],
      3);
  EXPECT_EQ(call("POST", path + "/escalate", manager_, {{"reason", "again"}}).status, 409);
  // Level 3 is the deputy directors': a service manager alone is refused, nothing changes.
  const auto refused =
      call("POST", path + "/resolve", manager_, {{"credit_cents", 600}, {"outcome", "raised"}});
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("role 'approver'"), std::string::npos) << refused.body;
  EXPECT_EQ(ok("GET", "/api/v1/credits/" + credit, registrar_)["amount_cents"], 497);
  // Only the id as issued: "DSP-1" would act on DSP-000001 but file its deadline, audit rows
  // and documents under the text typed.
  EXPECT_EQ(dispute["id"], "DSP-000001");
  EXPECT_EQ(call("GET", "/api/v1/disputes/DSP-1", manager_).status, 404);
  EXPECT_EQ(call("POST", "/api/v1/disputes/DSP-1/resolve", deputy_,
                 {{"credit_cents", 600}, {"outcome", "typed short"}})
                .status,
            404);
  const Json closed =
      ok("POST", path + "/resolve", deputy_,
         {{"credit_cents", 600}, {"outcome", "The batch window loss is accepted as downtime."}});
  dispatch();
  EXPECT_EQ(closed["state"], "closed");
  EXPECT_EQ(closed["resolution"]["before_cents"], 497);
  EXPECT_EQ(closed["resolution"]["credit_cents"], 600);
  const auto adjusted = credit_events("credit.adjusted");
  ASSERT_EQ(adjusted.size(), 1u);
  EXPECT_EQ(adjusted[0].payload["delta_cents"], 103);
  EXPECT_EQ(adjusted[0].payload["billing_code"], "REG-100");
  EXPECT_EQ(ok("GET", "/api/v1/credits/" + credit, registrar_)["amount_cents"], 600);
  // The outcome e-mail went to the customer's billing contact and is attached, as sent.
  EXPECT_EQ(outbox_to("Dispute "), std::vector<std::string>{"billing@registrar.example.org"});
  ASSERT_EQ(closed["documents"].size(), 1u);
  const Json mail = closed["documents"][0];
  EXPECT_EQ(mail["content_type"], "message/rfc822");
  const auto eml =
      call("GET", path + "/documents/" + std::to_string(mail["id"].get<int>()), registrar_);
  EXPECT_EQ(eml.status, 200);
  EXPECT_EQ(sha256_hex(eml.body), mail["sha256"]);
  EXPECT_NE(eml.body.find("from 4.97 to 6.00"), std::string::npos) << eml.body;
  EXPECT_EQ(trail("dispute", dispute["id"]),
            (std::vector<std::string>{"file", "escalate", "escalate", "resolve"}));
  // The resolution is final: no new dispute of the credit, by the customer or by staff, whose
  // level 1 would overrule the deputy directors.
  for (const std::string& who : {registrar_, manager_}) {
    const auto again =
        call("POST", "/api/v1/disputes", who,
             {{"credit", credit}, {"basis", "still too low"}, {"supporting_information", "none"}});
    EXPECT_EQ(again.status, 409) << again.body;
    EXPECT_NE(again.body.find("already disputed by DSP-000001, which is closed"), std::string::npos)
        << again.body;
  }
  EXPECT_EQ(ok("GET", "/api/v1/credits/" + credit, registrar_)["amount_cents"], 600);

  // The mysql-qa work order is left unapproved. It is due on Thursday 31 December: three
  // business days ahead is Monday 28 December, because 24 and 25 December are holidays, so
  // the watch on Wednesday 23 December does not warn yet and does nothing on the 24th.
  const std::string wo_deadline = "credit-work-order/WO:2026-11:mysql-qa";
  clock_.set("2026-12-23T15:00:00Z");
  server_->jobs().run_now("deadlines.watch");
  EXPECT_TRUE(deadline(wo_deadline)["warned_at"].is_null());
  clock_.set("2026-12-24T15:00:00Z");
  EXPECT_EQ(server_->jobs().run_now("deadlines.watch"), "outside business hours: nothing sent");
  clock_.set("2026-12-28T15:00:00Z");
  server_->jobs().run_now("deadlines.watch");
  EXPECT_EQ(deadline(wo_deadline)["warned_at"], "2026-12-28T15:00:00Z");
  EXPECT_EQ(deadline(wo_deadline)["state"], "open");
  clock_.set("2027-01-01T15:00:00Z");  // a Friday, and not a holiday in this calendar
  server_->jobs().run_now("deadlines.watch");
  EXPECT_EQ(deadline(wo_deadline)["state"], "missed");
  EXPECT_EQ(deadline(wo_deadline)["missed_at"], "2027-01-01T15:00:00Z");
  EXPECT_EQ(deadline("credit-work-order/WO:2026-11:oracle-prod")["state"], "done");

  // Thursday 28 January 2027, day 59 after 30 November: the library claims INC0001, which
  // named only the registrar; slmhub's measurement says the library was not hit.
  clock_.set("2027-01-28T16:00:00Z");
  const Json claim = {{"service", "oracle-prod"},
                      {"incidents", {"INC0001"}},
                      {"claimed_seconds", 3000},
                      {"notes", "our catalogue was down too"},
                      // Named and typed by the customer, line breaks and quotes included.
                      {"documents",
                       {{{"name", "log \"1\"\r\nX-Injected: 1.txt"},
                         {"content_type", "text/html\r\nX-Injected: 2"},
                         {"content_base64", base64_encode("<script>alert(1)</script>")}}}}};
  Json for_registrar = claim;
  for_registrar["customer"] = "registrar";
  const auto foreign = call("POST", "/api/v1/credit-requests", library_, for_registrar);
  EXPECT_EQ(foreign.status, 403);
  EXPECT_NE(foreign.body.find("only for 'library'"), std::string::npos) << foreign.body;
  const Json request = ok("POST", "/api/v1/credit-requests", library_, claim);
  EXPECT_EQ(request["state"], "received");
  EXPECT_EQ(request["billing_codes"], Json::array({"LIB-200"}));
  EXPECT_EQ(request["review_due_date"], "2027-02-27");  // 30 calendar days after receipt
  EXPECT_EQ(request["evidence"]["claimed_seconds"], 3000);
  EXPECT_EQ(request["evidence"]["measured_seconds"], 0);
  EXPECT_EQ(request["evidence"]["incidents"][0]["customer_impacted"], false);
  const std::string request_path = "/api/v1/credit-requests/" + request["id"].get<std::string>();
  EXPECT_EQ(call("GET", request_path, registrar_).status, 404);
  // Downloaded as a file, never as a page of ours, and no header of the customer's making.
  const auto file =
      call("GET",
           request_path + "/documents/" + std::to_string(request["documents"][0]["id"].get<int>()),
           manager_);
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "<script>alert(1)</script>");
  EXPECT_FALSE(file.headers.contains("X-Injected"));
  EXPECT_EQ(file.headers.at("Content-Type"), "application/octet-stream");
  EXPECT_EQ(file.headers.at("Content-Disposition"),
            "attachment; filename=\"log _1___X-Injected: 1.txt\"; "
            "filename*=UTF-8''log%20%221%22%0D%0AX-Injected%3A%201.txt");
  EXPECT_EQ(file.headers.at("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(file.headers.at("Content-Security-Policy"), "sandbox");
  // The dispute window of the library's own credit (issued 9 December) closed on 8 January.
  const auto late_dispute = call("POST", "/api/v1/disputes", library_,
                                 {{"credit", "WO:2026-11:oracle-prod:library"},
                                  {"basis", "too low"},
                                  {"supporting_information", "none"}});
  EXPECT_EQ(late_dispute.status, 422);
  EXPECT_NE(late_dispute.body.find("closed on 2027-01-08"), std::string::npos) << late_dispute.body;

  const Json accepted = ok("POST", request_path + "/accept", manager_, {{"credit_cents", 120}});
  EXPECT_EQ(accepted["state"], "accepted");
  const std::string request_credit = accepted["decision"]["credit"];
  EXPECT_EQ(ok("GET", "/api/v1/credits/" + request_credit, library_)["state"], "pending");
  EXPECT_EQ(call("POST", "/api/v1/credits/" + request_credit + "/approve", manager_).status, 403);
  ok("POST", "/api/v1/credits/" + request_credit + "/approve", approver_);
  dispatch();
  const auto all_approved = credit_events("credit.approved");
  ASSERT_EQ(all_approved.size(), 3u);
  EXPECT_EQ(all_approved.back().payload["credit"], request_credit);
  EXPECT_EQ(all_approved.back().payload["amount_cents"], 120);
  EXPECT_EQ(all_approved.back().payload["month"], "2026-11");

  // Saturday 30 January, day 61: refused with the rule and the date the window closed.
  clock_.set("2027-01-30T16:00:00Z");
  const auto late = call("POST", "/api/v1/credit-requests", library_, claim);
  EXPECT_EQ(late.status, 422);
  EXPECT_NE(late.body.find("closed on 2027-01-29"), std::string::npos) << late.body;
  EXPECT_NE(late.body.find("60 calendar days"), std::string::npos) << late.body;
  EXPECT_EQ(ok("GET", "/api/v1/credit-requests", library_)["credit_requests"].size(), 1u);
}

// A decision the customer must be told of waits while the customer has nobody to tell (no
// billing or primary technical contact, no reply_to): refused, and nothing changes.
TEST_F(CreditCycle, ADecisionWithNobodyToTellIsRefusedUntilTheCustomerHasAContact) {
  server_->core().import(Actor{"test"}, parse_json(read_shared("vectors/example-2026-11.json")));
  clock_.set("2026-12-02T16:00:00Z");
  const Json request = ok("POST", "/api/v1/credit-requests", registrar_,
                          {{"service", "oracle-prod"},
                           {"incidents", {"INC0001"}},
                           {"claimed_seconds", 3000},
                           {"notes", "down twice"}});
  const std::string path = "/api/v1/credit-requests/" + request["id"].get<std::string>();
  const auto refused = call("POST", path + "/deny", manager_, {{"reason", "measured less"}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("customer 'registrar' has no billing or primary technical contact "
                              "and gave no reply_to"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(ok("GET", path, manager_)["state"], "received");
  EXPECT_TRUE(outbox_to("Credit request ").empty());

  import_november();  // the customers now have billing contacts
  EXPECT_EQ(ok("POST", path + "/deny", manager_, {{"reason", "measured less"}})["state"], "denied");
  EXPECT_EQ(outbox_to("Credit request "),
            std::vector<std::string>{"billing@registrar.example.org"});
}

// The recurring obligations over HTTP: the daily job opens them, a customer token completes
// its own contact validation but not another customer's nor the provider's SLA review, and a
// customer that lets its validation lapse is flagged. (The customers here have only billing
// contacts, who hold no credentials: no use-policy acknowledgements.)
TEST_F(CreditCycle, CustomersCompleteTheirOwnRecurringObligations) {
  import_november();
  EXPECT_EQ(server_->jobs().run_now("workflows.obligations"), "4 opened, 0 withdrawn");
  const Json mine = ok("GET", "/api/v1/obligations?kind=contact_validation", library_);
  ASSERT_EQ(mine["obligations"].size(), 1u);
  const Json validation = mine["obligations"][0];
  EXPECT_EQ(validation["customer"], "library");
  EXPECT_EQ(validation["due_date"], "2027-06-01");  // six months after 1 December
  const Json theirs = ok("GET", "/api/v1/obligations?kind=contact_validation", registrar_);
  const std::string other = theirs["obligations"][0]["id"];
  EXPECT_EQ(call("POST", "/api/v1/obligations/" + other + "/complete", library_).status, 404);
  const Json review = ok("GET", "/api/v1/obligations?kind=sla_review", library_)["obligations"][0];
  const auto refused = call(
      "POST", "/api/v1/obligations/" + review["id"].get<std::string>() + "/complete", library_);
  EXPECT_EQ(refused.status, 403) << refused.body;

  clock_.set("2026-12-15T16:00:00Z");
  const std::string path = "/api/v1/obligations/" + validation["id"].get<std::string>();
  const Json done = ok("POST", path + "/complete", library_, {{"note", "accounts checked"}});
  EXPECT_EQ(done["state"], "done");
  EXPECT_EQ(done["note"], "accounts checked");
  EXPECT_EQ(done["completed_at"], "2026-12-15T16:00:00Z");
  const Json next = ok("GET", "/api/v1/obligations?kind=contact_validation&state=open", library_);
  EXPECT_EQ(next["obligations"][0]["due_date"], "2027-06-15");
  EXPECT_EQ(trail("obligation", validation["id"]), (std::vector<std::string>{"open", "complete"}));
  EXPECT_TRUE(ok("GET", "/api/v1/obligations/flagged", manager_)["customers"].empty());

  // The registrar never validates its contacts: the day after the due date it is flagged.
  clock_.set("2027-06-02T15:00:00Z");
  const Json flagged = ok("GET", "/api/v1/obligations/flagged", manager_);
  ASSERT_EQ(flagged["customers"].size(), 1u);
  EXPECT_EQ(flagged["customers"][0]["customer"], "registrar");
}

}  // namespace
}  // namespace slmhub::test
