// SLA credits, credit requests and disputes on SQLite and PostgreSQL, over the host's real
// core store, event bus, outbox and deadline service (DOMAIN.md §5): work orders follow the
// report's revisions, every refusal names its rule and changes nothing, and slmhub's own
// measurement of a claim is exact to the second.
#include <gtest/gtest.h>

#include <mutex>

#include "claims.hpp"
#include "core/core_store.hpp"
#include "credits.hpp"
#include "deadlines/deadline_store.hpp"
#include "documents.hpp"
#include "events/event_bus.hpp"
#include "events/outbox.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"
#include "store_fixture.hpp"
#include "test_files.hpp"

namespace slmhub::workflows {
namespace {

using test::StoreTest;

const Actor kManager{"token:sm"};
const Actor kDeputy{"token:deputy"};
const Filer kLibrary{{"token:library"}, "library", false};
const Filer kRegistrar{{"token:registrar"}, "registrar", false};
const Filer kStaff{kManager, "", true};

class CreditsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    clock_.set("2026-12-01T15:00:00Z");
    bus_ = std::make_unique<host::EventBus>(*db_, clock_, log_);
    core_ = std::make_unique<host::CoreStore>(*db_, *bus_, clock_);
    expected_ = Json::parse(test::read_shared("vectors/example-2026-11.expected.json"));
    Json dataset = Json::parse(test::read_shared("vectors/example-2026-11.json"));
    for (auto& c : dataset["customers"]) {
      const std::string id = c["id"];
      c["contacts"] = Json::array({{{"role", "billing"},
                                    {"name", "Billing office"},
                                    {"email", "billing@" + id + ".example.org"}},
                                   {{"role", "executive"},
                                    {"name", "Director"},
                                    {"email", "director@" + id + ".example.org"}}});
    }
    core_->import(Actor{"test"}, dataset);
    outbox_ = std::make_unique<host::OutboxService>(*db_, clock_, log_, "test");
    deadlines_ = std::make_unique<host::DeadlineStore>(*db_, *core_, *bus_, clock_, log_,
                                                       host::DeadlineSettings{});
    db_->migrate("workflows.attachments", Attachments::migrations());
    db_->migrate("workflows.credits", CreditBook::migrations());
    db_->migrate("workflows.claims", ClaimBook::migrations());
    attachments_ = std::make_unique<Attachments>(*db_);
    credits_ = std::make_unique<CreditBook>(*db_, *core_, *bus_, *deadlines_, clock_, log_);
    claims_ = std::make_unique<ClaimBook>(*db_, *core_, *bus_, *outbox_, *deadlines_, *credits_,
                                          *attachments_, clock_, log_);
    bus_->subscribe("test", {"credit.*"}, [this](const Event& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    });
  }
  void TearDown() override {
    claims_.reset();
    credits_.reset();
    attachments_.reset();
    deadlines_.reset();
    outbox_.reset();
    core_.reset();
    bus_.reset();
    StoreTest::TearDown();
  }

  // `report.published` as the availability plugin writes it, from the shared vector's
  // expected report; `scale` multiplies every credit (a recomputed revision).
  Json published(std::int64_t revision, const std::string& at, std::int64_t scale = 1,
                 bool mysql_missed = true) {
    Json missed = Json::array();
    for (const auto& s : expected_["services"]) {
      if (s["met"].get<bool>() || (!mysql_missed && s["service"] == "mysql-qa")) continue;
      Json entry = s;
      entry["credits"] = Json::array();
      for (auto c : expected_["credits"]) {
        if (c["service"] != s["service"]) continue;
        c["credit_cents"] = c["credit_cents"].get<std::int64_t>() * scale;
        c["billing_code"] = c["customer"] == "library" ? "LIB-200" : "REG-100";
        entry["credits"].push_back(c);
      }
      missed.push_back(entry);
    }
    return {{"month", "2026-11"},
            {"revision", revision},
            {"published_at", at},
            {"missed_services", missed}};
  }

  std::vector<std::string> credit_events(const std::string& type) {
    bus_->dispatch_once();
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : events_) {
      if (e.type == type) out.push_back(e.subject);
    }
    return out;
  }

  std::int64_t count(const std::string& table) {
    return db_->query("SELECT COUNT(*) FROM " + table).at(0).integer(0);
  }
  std::int64_t audit_rows() { return count("audit_log"); }

  // Runs `step`, which must throw a Problem with `status` whose detail contains `detail`, and
  // checks that no row of `tables` or of the audit log was added.
  template <typename F>
  void refused(F step, int status, const std::string& detail,
               const std::vector<std::string>& tables) {
    std::vector<std::int64_t> before;
    for (const auto& t : tables) before.push_back(count(t));
    const auto audit = audit_rows();
    try {
      step();
      ADD_FAILURE() << "expected a " << status << " refusal";
    } catch (const Problem& e) {
      EXPECT_EQ(e.status(), status) << e.detail();
      EXPECT_NE(e.detail().find(detail), std::string::npos) << e.detail();
    }
    for (std::size_t i = 0; i < tables.size(); ++i) EXPECT_EQ(count(tables[i]), before[i]);
    EXPECT_EQ(audit_rows(), audit);
  }

  // The registrar's request for INC0001, accepted on 2 December, before the November report
  // is published on the 8th: the report's work order counts the request's credit as paid.
  CreditRequest accept_a_request_then_publish() {
    clock_.set("2026-12-02T15:00:00Z");
    CreditRequest q = claims_->file_request(
        kRegistrar,
        {{"service", "oracle-prod"}, {"incidents", {"INC0001"}}, {"claimed_seconds", 3000}});
    claims_->accept(kManager, q.id, std::nullopt, "");
    credits_->open_work_orders(published(1, "2026-12-08T16:00:00Z"));
    return q;
  }

  Json expected_;
  std::unique_ptr<host::EventBus> bus_;
  std::unique_ptr<host::CoreStore> core_;
  std::unique_ptr<host::OutboxService> outbox_;
  std::unique_ptr<host::DeadlineStore> deadlines_;
  std::unique_ptr<Attachments> attachments_;
  std::unique_ptr<CreditBook> credits_;
  std::unique_ptr<ClaimBook> claims_;
  std::mutex mutex_;
  std::vector<Event> events_;
};

TEST_P(CreditsTest, WorkOrdersFollowTheReportsRevisionsUntilApproved) {
  EXPECT_EQ(credits_->open_work_orders(published(1, "2026-12-08T16:00:00Z")).size(), 2u);
  // The same event again (at-least-once delivery) changes nothing.
  EXPECT_TRUE(credits_->open_work_orders(published(1, "2026-12-08T16:00:00Z")).empty());
  EXPECT_EQ(count("credits"), 3);
  auto oracle = credits_->work_order("WO:2026-11:oracle-prod");
  ASSERT_TRUE(oracle.has_value());
  EXPECT_EQ(oracle->form["total_cents"], 235 + 497);
  EXPECT_EQ(oracle->form["seconds_above_sla"], 8547);

  // Revision 2 doubles the credits and shows mysql-qa as met: the open oracle-prod work order
  // takes the new amounts, the mysql-qa one is withdrawn with its credit.
  credits_->open_work_orders(published(2, "2026-12-09T16:00:00Z", 2, false));
  oracle = credits_->work_order("WO:2026-11:oracle-prod");
  EXPECT_EQ(oracle->revision, 2);
  EXPECT_EQ(oracle->form["total_cents"], 2 * (235 + 497));
  EXPECT_EQ(credits_->credit("WO:2026-11:oracle-prod:library")->amount_cents, 470);
  EXPECT_EQ(credits_->work_order("WO:2026-11:mysql-qa")->state, "withdrawn");
  EXPECT_EQ(credits_->credit("WO:2026-11:mysql-qa:registrar")->state, "withdrawn");
  EXPECT_EQ(deadlines_->find("credit-work-order/WO:2026-11:mysql-qa")->state, "done");
  // Each credit's change has its own audit row: created by revision 1, its amount revised by
  // revision 2, or withdrawn with its work order.
  std::vector<std::string> trail;
  const Json audit = core_->audit("credit", 50);
  for (auto it = audit.rbegin(); it != audit.rend(); ++it) {
    trail.push_back((*it)["action"].get<std::string>() + " " +
                    (*it)["entity_id"].get<std::string>() + " " +
                    (*it)["after"].value("amount_cents", Json()).dump());
  }
  EXPECT_EQ(trail, (std::vector<std::string>{"create WO:2026-11:mysql-qa:registrar 296",
                                             "create WO:2026-11:oracle-prod:library 235",
                                             "create WO:2026-11:oracle-prod:registrar 497",
                                             "revise WO:2026-11:oracle-prod:library 470",
                                             "revise WO:2026-11:oracle-prod:registrar 994",
                                             "withdraw WO:2026-11:mysql-qa:registrar null"}));
  // Due 15 business days after this revision's publication, in the list as in the deadline.
  EXPECT_EQ(oracle->due_date, "2027-01-01");  // revision 1, a day earlier: 2026-12-31
  EXPECT_EQ(deadlines_->find("credit-work-order/WO:2026-11:oracle-prod")->due, oracle->due);

  credits_->approve_work_order(kDeputy, "WO:2026-11:oracle-prod");
  EXPECT_EQ(credit_events("credit.approved"),
            (std::vector<std::string>{"WO:2026-11:oracle-prod:library",
                                      "WO:2026-11:oracle-prod:registrar"}));
  // A third revision does not touch an approved work order or its credits.
  credits_->open_work_orders(published(3, "2026-12-10T16:00:00Z", 3));
  EXPECT_EQ(credits_->credit("WO:2026-11:oracle-prod:library")->amount_cents, 470);
  EXPECT_EQ(credits_->work_order("WO:2026-11:oracle-prod")->revision, 2);
  // It misses mysql-qa again: the withdrawn work order reopens, and so does its deadline.
  const auto mysql = credits_->work_order("WO:2026-11:mysql-qa");
  EXPECT_EQ(mysql->state, "open");
  EXPECT_EQ(mysql->due_date, "2027-01-04");
  const auto reopened = deadlines_->find("credit-work-order/WO:2026-11:mysql-qa");
  EXPECT_EQ(reopened->state, "open");
  EXPECT_EQ(reopened->due, mysql->due);
  refused([&] { credits_->approve_work_order(kDeputy, "WO:2026-11:oracle-prod"); }, 409,
          "it is approved", {"credits", "credit_work_orders"});
  refused([&] { credits_->approve_credit(kDeputy, "WO:2026-11:oracle-prod:library"); }, 409,
          "approved with its work order", {"credits"});
}

// The library claims INC0002 and INC0003. INC0002 (14:30-15:10, every subscriber) counts
// 2400 s; INC0003 (11:00-13:00 on 8 November) overlaps the planned outage CHG0001 until
// 12:00, which is excluded, so it counts 3600 s: 6000 s measured against 7000 claimed. The
// month's figures for the library are the vector's.
TEST_P(CreditsTest, ARequestCarriesSlmhubsOwnMeasurementBesideTheClaim) {
  clock_.set("2026-12-15T16:00:00Z");
  const CreditRequest q = claims_->file_request(
      kLibrary, {{"service", "oracle-prod"},
                 {"incidents", {"INC0002", "INC0003"}},
                 {"claimed_seconds", 7000},
                 {"documents",
                  {{{"name", "outage-log.txt"},
                    {"content_type", "text/plain"},
                    {"content_base64", base64_encode("14:30 down\n15:10 up\n")}}}}});
  EXPECT_EQ(q.id, "CRQ-000001");
  EXPECT_EQ(q.evidence["measured_seconds"], 6000);
  EXPECT_EQ(q.evidence["difference_seconds"], 1000);
  EXPECT_EQ(q.evidence["incidents"],
            (Json{{{"id", "INC0002"}, {"counted_seconds", 2400}, {"customer_impacted", true}},
                  {{"id", "INC0003"}, {"counted_seconds", 3600}, {"customer_impacted", true}}}));
  const Json& month = q.evidence["months"][0];
  EXPECT_EQ(month["month"], "2026-11");
  for (const auto& c : expected_["credits"]) {
    if (c["customer"] != "library" || c["service"] != "oracle-prod") continue;
    EXPECT_EQ(month["customer_downtime_seconds"], c["downtime_seconds"]);
    EXPECT_EQ(month["credit_cents"], c["credit_cents"]);
    EXPECT_EQ(q.evidence["credit_cents"], c["credit_cents"]);
  }
  ASSERT_EQ(q.documents.size(), 1u);
  EXPECT_EQ(q.documents[0].size, 20);
  EXPECT_EQ(q.documents[0].sha256, sha256_hex("14:30 down\n15:10 up\n"));
  const auto stored = attachments_->read("credit-request/CRQ-000001", q.documents[0].id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->second, "14:30 down\n15:10 up\n");
  // Review within 30 calendar days of receipt, a deadline the watch follows.
  EXPECT_EQ(q.review_due_date, "2027-01-14");
  EXPECT_EQ(deadlines_->find("credit-request/CRQ-000001")->owner_role, "service_manager");

  // Accepted without an amount: the measured credit, pending the deputy director.
  const CreditRequest accepted = claims_->accept(kManager, q.id, std::nullopt, "");
  EXPECT_EQ(accepted.decision["credit_cents"], q.evidence["credit_cents"]);
  EXPECT_EQ(accepted.decision["already_credited_cents"], 0);
  EXPECT_EQ(credits_->credit("CRQ-000001:library")->state, "pending");
  // The same downtime claimed again: nothing is left to credit without an amount.
  const CreditRequest again = claims_->file_request(
      kLibrary,
      {{"service", "oracle-prod"}, {"incidents", {"INC0002"}}, {"claimed_seconds", 2400}});
  refused([&] { claims_->accept(kManager, again.id, std::nullopt, ""); }, 409,
          "is on record already (CRQ-000001:library)", {"credits"});
  EXPECT_EQ(claims_->accept(kManager, again.id, 100, "goodwill").decision["credit_cents"], 100);
  EXPECT_EQ(deadlines_->find("credit-request/CRQ-000001")->state, "done");
  credits_->approve_credit(kDeputy, "CRQ-000001:library");
  EXPECT_EQ(credit_events("credit.approved"), std::vector<std::string>{"CRQ-000001:library"});
}

// INC0001 (14:00-14:50, the registrar) and INC0002 (14:30-15:10, every subscriber) overlap
// for 20 minutes: the registrar was down from 14:00 to 15:10, 4200 s, not 3000 + 2400.
TEST_P(CreditsTest, OverlappingIncidentsAreMeasuredOnce) {
  clock_.set("2026-12-15T16:00:00Z");
  const CreditRequest q = claims_->file_request(kRegistrar, {{"service", "oracle-prod"},
                                                             {"incidents", {"INC0001", "INC0002"}},
                                                             {"claimed_seconds", 4200}});
  EXPECT_EQ(q.evidence["incidents"],
            (Json{{{"id", "INC0001"}, {"counted_seconds", 3000}, {"customer_impacted", true}},
                  {{"id", "INC0002"}, {"counted_seconds", 2400}, {"customer_impacted", true}}}));
  EXPECT_EQ(q.evidence["measured_seconds"], 4200);
  EXPECT_EQ(q.evidence["difference_seconds"], 0);
}

// The registrar's request for INC0001 is accepted before the November report is published:
// the work order then credits the registrar only what the request did not, so the same
// downtime is not credited twice, whichever comes first.
TEST_P(CreditsTest, AWorkOrderCreditsOnlyWhatAnAcceptedRequestDidNot) {
  const CreditRequest q = accept_a_request_then_publish();
  const std::int64_t measured = q.evidence["credit_cents"];
  EXPECT_EQ(measured, 497);  // the registrar's oracle-prod credit in the vector
  const auto order = credits_->work_order("WO:2026-11:oracle-prod");
  ASSERT_TRUE(order.has_value());
  const Json& registrar = order->form["customers"][1];
  ASSERT_EQ(registrar["customer"], "registrar");
  EXPECT_EQ(registrar["credit_cents"], 497);
  EXPECT_EQ(registrar["already_credited_cents"], 497);
  EXPECT_EQ(registrar["already_credited"], Json::array({"CRQ-000001:registrar"}));
  EXPECT_FALSE(credits_->credit("WO:2026-11:oracle-prod:registrar").has_value());
  EXPECT_EQ(credits_->credit("WO:2026-11:oracle-prod:library")->amount_cents, 235);

  // A revision that doubles the credits: the registrar is owed the rest, 994 - 497.
  credits_->open_work_orders(published(2, "2026-12-09T16:00:00Z", 2));
  EXPECT_EQ(credits_->credit("WO:2026-11:oracle-prod:registrar")->amount_cents, 497);
  credits_->approve_work_order(kDeputy, "WO:2026-11:oracle-prod");
  credits_->approve_credit(kDeputy, "CRQ-000001:registrar");
  std::int64_t total = 0;
  for (const auto& row :
       db_->query("SELECT amount_cents FROM credits WHERE customer = 'registrar' AND service = "
                  "'oracle-prod' AND state = 'approved'")) {
    total += row.integer(0);
  }
  EXPECT_EQ(total, 994);
}

// The deputy director will not approve the registrar's request credit: withdrawn, with a
// reason. The open work order had counted it as credited already, so it owes the registrar
// that amount again; once a work order is approved, the credit it counted cannot go.
TEST_P(CreditsTest, AWithdrawnRequestCreditIsOwedByTheOpenWorkOrderAgain) {
  accept_a_request_then_publish();
  EXPECT_FALSE(credits_->credit("WO:2026-11:oracle-prod:registrar").has_value());

  refused([&] { credits_->withdraw_credit(kDeputy, "WO:2026-11:oracle-prod:library", "no"); }, 409,
          "goes with its work order WO:2026-11:oracle-prod", {"credits"});
  const Credit withdrawn =
      credits_->withdraw_credit(kDeputy, "CRQ-000001:registrar", "counted by the work order");
  EXPECT_EQ(withdrawn.state, "withdrawn");
  EXPECT_EQ(withdrawn.steps["withdrawn"]["reason"], "counted by the work order");
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar")->state, "withdrawn");
  const auto owed = credits_->credit("WO:2026-11:oracle-prod:registrar");
  ASSERT_TRUE(owed.has_value());
  EXPECT_EQ(owed->state, "pending");
  EXPECT_EQ(owed->amount_cents, 497);
  const Json registrar = credits_->work_order("WO:2026-11:oracle-prod")->form["customers"][1];
  EXPECT_EQ(registrar["customer"], "registrar");
  EXPECT_FALSE(registrar.contains("already_credited")) << registrar.dump();
  refused([&] { credits_->withdraw_credit(kDeputy, "CRQ-000001:registrar", "again"); }, 409,
          "it is withdrawn", {"credits"});
  refused([&] { credits_->approve_credit(kDeputy, "CRQ-000001:registrar"); }, 409,
          "it is withdrawn", {"credits"});

  credits_->approve_work_order(kDeputy, "WO:2026-11:oracle-prod");
  EXPECT_EQ(credit_events("credit.approved"),
            (std::vector<std::string>{"WO:2026-11:oracle-prod:library",
                                      "WO:2026-11:oracle-prod:registrar"}));

  // A second request, accepted with an amount after the work order was approved, is not
  // counted by it: it may still be withdrawn. The work order stands.
  const CreditRequest goodwill = claims_->file_request(
      kRegistrar,
      {{"service", "oracle-prod"}, {"incidents", {"INC0002"}}, {"claimed_seconds", 600}});
  claims_->accept(kManager, goodwill.id, 100, "goodwill");
  EXPECT_EQ(credits_->withdraw_credit(kDeputy, goodwill.id + ":registrar", "no").state,
            "withdrawn");
  EXPECT_EQ(credits_->credit("WO:2026-11:oracle-prod:registrar")->state, "approved");
}

// A work order approved with the request credit counted as paid: that credit stays.
TEST_P(CreditsTest, ARequestCreditAnApprovedWorkOrderCountedCannotBeWithdrawn) {
  accept_a_request_then_publish();
  credits_->approve_work_order(kDeputy, "WO:2026-11:oracle-prod");
  refused([&] { credits_->withdraw_credit(kDeputy, "CRQ-000001:registrar", "no"); }, 409,
          "credit work order WO:2026-11:oracle-prod was approved with it counted as credited "
          "already",
          {"credits"});
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar")->state, "pending");
}

// Filed while November is under way, the evidence is measured to that moment: allowed
// downtime of ten days, not of the month. Its credit is not paid from that figure: accepting
// without an amount waits for the month to close, and then measures the whole month.
TEST_P(CreditsTest, ARequestForAMonthUnderWayIsCreditedOnTheWholeMonth) {
  clock_.set("2026-11-10T12:00:00Z");
  const CreditRequest q = claims_->file_request(
      kRegistrar,
      {{"service", "oracle-prod"}, {"incidents", {"INC0001"}}, {"claimed_seconds", 3000}});
  EXPECT_EQ(q.evidence["months"][0]["as_of"], "2026-11-10T12:00:00Z");
  EXPECT_GT(q.evidence["credit_cents"].get<std::int64_t>(), 0);  // ten days' allowance
  refused([&] { claims_->accept(kManager, q.id, std::nullopt, ""); }, 409,
          "is for 2026-11, which is under way", {"credits"});
  EXPECT_EQ(claims_->request(q.id)->state, "received");

  clock_.set("2026-12-01T15:00:00Z");
  const CreditRequest accepted = claims_->accept(kManager, q.id, std::nullopt, "");
  EXPECT_EQ(accepted.decision["credit_cents"], 497);  // the month's, as in the vector
  EXPECT_FALSE(accepted.decision["remeasured"]["months"][0].contains("as_of"));
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar")->amount_cents, 497);
}

// INC0009 runs from 16:00 on 30 November to 04:00 on 1 December (Chicago, oracle-prod's zone):
// eight hours of November and four of December, each beyond its month's allowance. Accepted,
// the request is one credit per month, each the registrar's credit for that month (INC0010's
// hour of December included). A later request for INC0010 then finds December credited.
TEST_P(CreditsTest, ARequestAcrossAMonthEndIsCreditedMonthByMonth) {
  db_->transact([&](Tx& tx) {
    for (const auto& [id, start, end] :
         {std::tuple{"INC0009", "2026-11-30T22:00:00Z", "2026-12-01T10:00:00Z"},
          std::tuple{"INC0010", "2026-12-02T16:00:00Z", "2026-12-02T17:00:00Z"}}) {
      Interruption i;
      i.id = id;
      i.service = "oracle-prod";
      i.type = InterruptionType::outage;
      i.start = parse_instant(start);
      i.end = parse_instant(end);
      i.customers = {"registrar"};
      core_->record_interruption(tx, Actor{"test"}, i);
    }
  });
  clock_.set("2027-01-05T15:00:00Z");
  const CreditRequest q = claims_->file_request(
      kRegistrar,
      {{"service", "oracle-prod"}, {"incidents", {"INC0009"}}, {"claimed_seconds", 43200}});
  EXPECT_EQ(q.evidence["measured_seconds"], 43200);
  const Json& months = q.evidence["months"];
  ASSERT_EQ(months.size(), 2u) << months.dump();
  EXPECT_EQ(months[0]["month"], "2026-11");
  EXPECT_EQ(months[1]["month"], "2026-12");
  const std::int64_t november = months[0]["credit_cents"];
  const std::int64_t december = months[1]["credit_cents"];
  // Five hours of December (INC0009's four, INC0010's one) against 0.25 % of 31 days (6,696 s):
  // 150,000 × 11,304 / 2,678,400 = 633.06 cents.
  EXPECT_EQ(december, 633);

  const CreditRequest accepted = claims_->accept(kManager, q.id, std::nullopt, "");
  EXPECT_EQ(accepted.decision["credits"],
            Json::array({"CRQ-000001:registrar", "CRQ-000001:registrar:2026-12"}));
  EXPECT_EQ(accepted.decision["credit_cents"], november + december);
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar")->month, "2026-11");
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar")->amount_cents, november);
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar:2026-12")->month, "2026-12");
  EXPECT_EQ(credits_->credit("CRQ-000001:registrar:2026-12")->amount_cents, december);

  const CreditRequest later = claims_->file_request(
      kRegistrar,
      {{"service", "oracle-prod"}, {"incidents", {"INC0010"}}, {"claimed_seconds", 3600}});
  ASSERT_EQ(later.evidence["months"].size(), 1u);
  EXPECT_EQ(later.evidence["credit_cents"], december);  // the registrar's December, as before
  refused([&] { claims_->accept(kManager, later.id, std::nullopt, ""); }, 409,
          "is on record already (CRQ-000001:registrar:2026-12)", {"credits"});
}

TEST_P(CreditsTest, RequestsThatBreakARuleAreRefusedByNameAndChangeNothing) {
  const Json claim = {
      {"service", "oracle-prod"}, {"incidents", {"INC0001"}}, {"claimed_seconds", 3000}};
  Json other = claim;
  other["customer"] = "registrar";
  refused([&] { claims_->file_request(kLibrary, other); }, 403,
          "a token of customer 'library' files credit requests only for 'library', not for "
          "'registrar'",
          {"credit_requests", "deadlines"});
  refused([&] { claims_->file_request(kStaff, claim); }, 400, "", {"credit_requests"});
  try {
    claims_->file_request(kLibrary, {{"service", "oracle-prod"},
                                     {"incidents", {"INC0004", "INC9999", "INC0004"}},
                                     {"billing_codes", {"REG-100"}},
                                     {"claimed_seconds", 60}});
    ADD_FAILURE() << "refused";
  } catch (const Problem& e) {
    EXPECT_EQ(e.status(), 422);
    std::vector<std::string> paths;
    for (const auto& f : e.errors()) paths.push_back(f.path + ": " + f.message);
    EXPECT_EQ(paths, (std::vector<std::string>{
                         "$.incidents[0]: INC0004 is an interruption of 'mysql-qa', not of "
                         "'oracle-prod'",
                         "$.incidents[1]: no interruption 'INC9999'",
                         "$.incidents[2]: INC0004 is named already at $.incidents[0]",
                         "$.billing_codes[0]: 'REG-100' is not the billing code of customer "
                         "'library' (LIB-200)"}));
  }
  // Day 60 after 30 November is 29 January: the last day to file. Day 61 is refused.
  clock_.set("2027-01-30T05:59:59Z");  // 29 January, 23:59:59 in Chicago
  EXPECT_EQ(claims_->file_request(kLibrary, claim).state, "received");
  clock_.set("2027-01-30T06:00:00Z");
  refused([&] { claims_->file_request(kLibrary, claim); }, 422,
          "INC0001 is of 2026-11 (last day 2026-11-30), so the window closed on 2027-01-29; "
          "this request was filed on 2027-01-30",
          {"credit_requests", "deadlines", "workflow_attachments"});
}

TEST_P(CreditsTest, ADeniedRequestTellsTheCustomerWhy) {
  const CreditRequest q =
      claims_->file_request(kStaff, {{"customer", "registrar"},
                                     {"service", "mysql-qa"},
                                     {"incidents", {"INC0004"}},
                                     {"claimed_seconds", 9000},
                                     {"reply_to", "dba@registrar.example.org"}});
  EXPECT_EQ(q.filed_by, "token:sm");
  claims_->deny(kManager, q.id, "the report already credits INC0004");
  const auto rows =
      db_->query("SELECT destination, subject, body FROM outbox ORDER BY destination");
  ASSERT_EQ(rows.size(), 2u);  // the billing contact and the reply-to address, not the executive
  EXPECT_EQ(rows[0].text(0), "billing@registrar.example.org");
  EXPECT_EQ(rows[1].text(0), "dba@registrar.example.org");
  EXPECT_EQ(rows[0].text(1), "Credit request CRQ-000001 denied");
  EXPECT_NE(rows[0].text(2).find("Reason: the report already credits INC0004"), std::string::npos);
  refused([&] { claims_->accept(kManager, q.id, 100, ""); }, 409, "it is denied", {"credits"});
}

TEST_P(CreditsTest, DisputesKeepTheirWindowTheirLevelsAndTheirOwners) {
  credits_->open_work_orders(published(1, "2026-12-08T16:00:00Z"));
  const std::string credit = "WO:2026-11:oracle-prod:registrar";
  const Json dispute = {{"credit", credit},
                        {"basis", "the batch window was lost"},
                        {"supporting_information", "job logs"}};
  refused([&] { claims_->file_dispute(kRegistrar, dispute); }, 409,
          "only an issued (approved) credit can be disputed", {"disputes"});
  clock_.set("2026-12-09T16:00:00Z");
  credits_->approve_work_order(kDeputy, "WO:2026-11:oracle-prod");
  // Another customer's credit is answered as one that does not exist.
  refused([&] { claims_->file_dispute(kLibrary, dispute); }, 422,
          "no credit 'WO:2026-11:oracle-prod:registrar'", {"disputes"});

  // Issued 9 December: the window closes on 8 January, end of day in Chicago.
  clock_.set("2027-01-09T05:59:59Z");
  const Dispute d = claims_->file_dispute(kRegistrar, dispute);
  EXPECT_EQ(d.window_closes, "2027-01-08");
  refused([&] { claims_->file_dispute(kRegistrar, dispute); }, 409,
          "already disputed by DSP-000001", {"disputes"});
  refused([&] { claims_->resolve(kDeputy, false, true, d.id, 600, "raised"); }, 403,
          "needs the role 'service_manager'", {"workflow_attachments", "outbox"});
  claims_->escalate(kManager, d.id, "no agreement");
  claims_->escalate(kManager, d.id, "still no agreement");
  refused([&] { claims_->escalate(kManager, d.id, "again"); }, 409, "the last level", {"disputes"});
  refused([&] { claims_->resolve(kManager, true, false, d.id, 600, "raised"); }, 403,
          "needs the role 'approver'", {"workflow_attachments", "outbox"});
  EXPECT_EQ(credits_->credit(credit)->amount_cents, 497);
  EXPECT_TRUE(credit_events("credit.adjusted").empty());

  // Resolved without a change by a deputy director who is no service manager: no adjustment,
  // but the outcome is still sent and attached.
  const Dispute closed =
      claims_->resolve(kDeputy, false, true, d.id, 497, "The credit is correct.");
  EXPECT_EQ(closed.state, "closed");
  EXPECT_EQ(closed.resolution["adjusted"], false);
  EXPECT_TRUE(credit_events("credit.adjusted").empty());
  ASSERT_EQ(closed.documents.size(), 1u);
  EXPECT_EQ(closed.documents[0].content_type, "message/rfc822");
  refused([&] { claims_->resolve(kDeputy, false, true, d.id, 1, "again"); }, 409, "it is closed",
          {"outbox"});

  // After the window: refused with the date it closed.
  clock_.set("2027-01-09T06:00:00Z");
  refused([&] { claims_->file_dispute(kRegistrar, dispute); }, 422,
          "was issued on 2026-12-09, so the window closed on 2027-01-08", {"disputes"});
}

INSTANTIATE_TEST_SUITE_P(Engines, CreditsTest, test::kBothEngines, test::engine_name);

}  // namespace
}  // namespace slmhub::workflows
