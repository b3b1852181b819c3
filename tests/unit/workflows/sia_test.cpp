// Service Interruption Analyses on SQLite and PostgreSQL, over the host's real core store,
// event bus, outbox and deadline service: the automatic draft when an outage ends, the due
// date in the provider calendar, the sections read strictly, approval refused while fields are
// missing, and the audited path to publication (DOMAIN.md §6).
#include "sia.hpp"

#include <gtest/gtest.h>

#include <mutex>

#include "core/core_store.hpp"
#include "deadlines/deadline_store.hpp"
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

// Complete sections B-E (A is pre-filled but for its systems).
const Json kComplete = {
    {"a",
     {{"description", "the database refused connections"},
      {"impacted_services", {"oracle-prod"}},
      {"impacted_customers", {"library", "registrar"}},
      {"impacted_systems", {"db01.example.org"}}}},
    {"b",
     {{"source", "internal"},
      {"actions_that_caused", "a full archive disk"},
      {"actions_that_added_impact", "the alert went to an old list"},
      {"process_not_followed", false},
      {"process_missing", true}}},
    {"c",
     {{"groups",
       {{{"group", "DBA team"},
         {"who", "on-call DBA"},
         {"what", "freed archive space"},
         {"when", "2026-12-11T21:30:00-06:00"},
         {"where", "db01"},
         {"why", "the archiver had stopped"},
         {"how", "moved old archives to tape"}}}},
      {"applies_elsewhere", true}}},
    {"d",
     {{"corrective_actions",
       {{{"action", "alert on archive disk usage"},
         {"owner", "dba-lead@example.org"},
         {"due", "2027-01-15"}}}}}},
    {"e", {{"notice", "Service restored at 21:00 CST."}}},
};

class SiaTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    clock_.set("2026-12-03T15:00:00Z");
    bus_ = std::make_unique<host::EventBus>(*db_, clock_, log_);
    core_ = std::make_unique<host::CoreStore>(*db_, *bus_, clock_);
    core_->import(Actor{"test"}, Json::parse(test::read_shared("vectors/example-2026-11.json")));
    outbox_ = std::make_unique<host::OutboxService>(*db_, clock_, log_, "test");
    deadlines_ = std::make_unique<host::DeadlineStore>(*db_, *core_, *bus_, clock_, log_,
                                                       host::DeadlineSettings{});
    db_->migrate("workflows", SiaBook::migrations());
    db_->migrate("workflows.attachments", Attachments::migrations());
    attachments_ = std::make_unique<Attachments>(*db_);
    sias_ = std::make_unique<SiaBook>(
        *db_, *core_, *bus_, *outbox_, *deadlines_, *attachments_, clock_, log_,
        std::vector<std::string>{"monitoring@example.org"},
        // The vector's customers have no contacts; the account-team test gives them some.
        "account-team@example.org");
    sias_->subscribe();
    bus_->subscribe("test", {"sia.*"}, [this](const Event& e) {
      std::lock_guard lock(mutex_);
      published_.push_back(e);
    });
  }
  void TearDown() override {
    sias_.reset();
    attachments_.reset();
    deadlines_.reset();
    outbox_.reset();
    core_.reset();
    bus_.reset();
    StoreTest::TearDown();
  }

  // An outage of oracle-prod that ends on Friday 11 December, 21:00 in Chicago (the
  // provider calendar "business": weekdays, 24 and 25 December closed), for every subscriber.
  // `end` empty: not ended.
  void record(const std::string& id, InterruptionType type = InterruptionType::outage,
              const std::string& end = "2026-12-12T03:00:00Z",
              const std::string& service = "oracle-prod") {
    clock_.set("2026-12-12T04:00:00Z");
    db_->transact([&](Tx& tx) {
      Interruption inc;
      inc.id = id;
      inc.service = service;
      inc.type = type;
      inc.start = parse_instant("2026-12-11T20:00:00Z");
      if (!end.empty()) inc.end = parse_instant(end);
      core_->record_interruption(tx, Actor{"test"}, inc);
    });
    bus_->dispatch_once();
  }

  void write_all(const std::string& id) {
    for (const auto& [letter, body] : kComplete.items()) {
      sias_->write_section(kManager, id, letter, body);
    }
  }

  std::vector<std::string> trail(const std::string& id) {
    std::vector<std::string> out;
    const Json audit = core_->audit("sia", 50);
    for (auto it = audit.rbegin(); it != audit.rend(); ++it) {
      if ((*it)["entity_id"] == id) {
        out.push_back((*it)["action"].get<std::string>() + " by " +
                      (*it)["actor"].get<std::string>());
      }
    }
    return out;
  }

  std::unique_ptr<host::EventBus> bus_;
  std::unique_ptr<host::CoreStore> core_;
  std::unique_ptr<host::OutboxService> outbox_;
  std::unique_ptr<host::DeadlineStore> deadlines_;
  std::unique_ptr<Attachments> attachments_;
  std::unique_ptr<SiaBook> sias_;
  std::mutex mutex_;
  std::vector<Event> published_;
};

TEST_P(SiaTest, AnEndedOutageIsDraftedOnceWithItsFactsEvenWhenDeliveredTwice) {
  record("INC0100");
  auto sia = sias_->find("INC0100");
  ASSERT_TRUE(sia.has_value());
  EXPECT_EQ(sia->state, "draft");
  EXPECT_EQ(sia->service, "oracle-prod");
  EXPECT_EQ(sia->facts, (Json{{"interruption", "INC0100"},
                              {"service", "oracle-prod"},
                              {"type", "outage"},
                              {"start", "2026-12-11T20:00:00Z"},
                              {"end", "2026-12-12T03:00:00Z"},
                              {"duration_seconds", 25200},
                              {"customers", {"library", "registrar"}}}));
  // No customers named: every subscriber of oracle-prod at the time.
  EXPECT_EQ(sia->sections["a"], (Json{{"impacted_services", {"oracle-prod"}},
                                      {"impacted_customers", {"library", "registrar"}}}));

  // The same event again (at-least-once delivery) adds nothing.
  EXPECT_EQ(sias_->follow("INC0100"), SiaBook::Followed::unchanged);
  EXPECT_EQ(sias_->list("", "").size(), 1u);
  EXPECT_EQ(trail("INC0100"), std::vector<std::string>{"draft by system:workflows"});
}

TEST_P(SiaTest, ADegradationIsNotDowntimeAndGetsNoSia) {
  record("INC0101", InterruptionType::degradation);
  EXPECT_FALSE(sias_->find("INC0101").has_value());
  EXPECT_EQ(sias_->follow("INC0101"), SiaBook::Followed::unchanged);
  EXPECT_EQ(sias_->follow("INC9999"), SiaBook::Followed::unchanged);  // no such interruption
  EXPECT_TRUE(sias_->list("", "").empty());
  // Corrected to an outage after it ended: it is downtime, and gets its SIA then.
  record("INC0101", InterruptionType::outage);
  ASSERT_TRUE(sias_->find("INC0101").has_value());
  EXPECT_EQ(sias_->find("INC0101")->facts["type"], "outage");
}

// Fifteen business days after Friday 11 December (local date of the end, 21:00 in Chicago,
// although it is already Saturday in UTC): 14-18 Dec (5), 21-23 (8), 24 and 25 are holidays,
// 28-31 (12), Friday 1 January 2027 is not a holiday in this calendar (13), 4 Jan (14),
// 5 Jan (15). The deadline is the end of that day in Chicago (CST, UTC-6).
TEST_P(SiaTest, TheDueDateSkipsWeekendsAndHolidaysAndIsADeadline) {
  record("INC0100");
  const auto sia = sias_->find("INC0100");
  ASSERT_TRUE(sia.has_value());
  EXPECT_EQ(sia->due_date, "2027-01-05");
  EXPECT_EQ(format_instant(sia->due), "2027-01-06T06:00:00Z");
  const auto deadline = deadlines_->find("sia/INC0100");
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(deadline->kind, "sia");
  EXPECT_EQ(deadline->subject, "INC0100");
  EXPECT_EQ(deadline->owner_role, "service_manager");
  EXPECT_EQ(deadline->state, "open");
  EXPECT_EQ(format_instant(deadline->due), "2027-01-06T06:00:00Z");
}

// The end corrected after the draft: the facts and the due date follow it, what was written
// stays. From Monday 14 December, 21:00 in Chicago: 15-18 Dec (4), 21-23 (7), 28-31 (11),
// 1 Jan (12), 4-6 Jan (15).
TEST_P(SiaTest, ACorrectedEndMovesTheFactsAndTheDueDateOfADraft) {
  record("INC0100");
  sias_->write_section(kManager, "INC0100", "b", kComplete["b"]);
  record("INC0100", InterruptionType::outage, "2026-12-15T03:00:00Z");
  const auto sia = sias_->find("INC0100");
  ASSERT_TRUE(sia.has_value());
  EXPECT_EQ(sia->state, "draft");
  EXPECT_EQ(sia->facts["end"], "2026-12-15T03:00:00Z");
  EXPECT_EQ(sia->facts["duration_seconds"], 284400);
  EXPECT_EQ(sia->due_date, "2027-01-06");
  EXPECT_EQ(format_instant(sia->due), "2027-01-07T06:00:00Z");
  EXPECT_EQ(sia->sections["b"], kComplete["b"]);
  const auto deadline = deadlines_->find("sia/INC0100");
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(deadline->state, "open");
  EXPECT_EQ(format_instant(deadline->due), "2027-01-07T06:00:00Z");
  EXPECT_EQ(sias_->follow("INC0100"), SiaBook::Followed::unchanged);  // delivered again
  EXPECT_EQ(trail("INC0100"),
            (std::vector<std::string>{"draft by system:workflows", "write_section by token:sm",
                                      "refresh by system:workflows"}));
}

// Moved to another service, the SIA moves with it: its service, the customers in its facts,
// its deadline's wording, and section A's lists while they hold what was drafted. A list
// someone wrote stays theirs.
TEST_P(SiaTest, AnInterruptionMovedToAnotherServiceTakesItsSiaAlong) {
  record("INC0100");
  record("INC0101");
  sias_->write_section(kManager, "INC0101", "a",
                       {{"impacted_services", {"oracle-prod", "mysql-qa"}},
                        {"impacted_customers", {"library"}},
                        {"impacted_systems", {"db01.example.org"}}});
  record("INC0100", InterruptionType::outage, "2026-12-12T03:00:00Z", "mysql-qa");
  record("INC0101", InterruptionType::outage, "2026-12-12T03:00:00Z", "mysql-qa");
  const auto moved = sias_->find("INC0100");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->service, "mysql-qa");
  EXPECT_EQ(moved->facts["customers"], Json({"registrar"}));  // mysql-qa's only subscriber
  EXPECT_EQ(moved->sections["a"],
            (Json{{"impacted_services", {"mysql-qa"}}, {"impacted_customers", {"registrar"}}}));
  EXPECT_EQ(moved->due_date, "2027-01-05");
  const auto deadline = deadlines_->find("sia/INC0100");
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(deadline->description,
            "publish the Service Interruption Analysis of INC0100 (mysql-qa)");
  EXPECT_EQ(sias_->list("", "mysql-qa").size(), 2u);
  const auto written = sias_->find("INC0101");
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(written->facts["service"], "mysql-qa");
  EXPECT_EQ(written->sections["a"]["impacted_services"], Json({"oracle-prod", "mysql-qa"}));
  EXPECT_EQ(written->sections["a"]["impacted_customers"], Json({"library"}));
}

// The interruption's description is drafted into section A and follows a correction, until
// someone writes section A's description.
TEST_P(SiaTest, SectionAsDraftedDescriptionFollowsTheInterruptions) {
  const auto describe = [&](const std::string& text) {
    db_->transact([&](Tx& tx) {
      Interruption inc = *core_->interruption("INC0100");
      inc.description = text;
      core_->record_interruption(tx, Actor{"test"}, inc);
    });
    bus_->dispatch_once();
  };
  record("INC0100");
  describe("Archive disk full");
  EXPECT_EQ(sias_->find("INC0100")->sections["a"]["description"], "Archive disk full");
  describe("Archive disk full on db01");
  EXPECT_EQ(sias_->find("INC0100")->facts["description"], "Archive disk full on db01");
  EXPECT_EQ(sias_->find("INC0100")->sections["a"]["description"], "Archive disk full on db01");
  sias_->write_section(kManager, "INC0100", "a", kComplete["a"]);
  describe("Archive disk of db01 full");
  EXPECT_EQ(sias_->find("INC0100")->facts["description"], "Archive disk of db01 full");
  EXPECT_EQ(sias_->find("INC0100")->sections["a"], kComplete["a"]);
}

// An outage corrected to a degradation needs no SIA: its draft is withdrawn (not deleted:
// what was written is kept, and the deadline is met), and cannot be edited or submitted.
// Corrected back, it is a draft again, owed again.
TEST_P(SiaTest, AnSiaNoLongerNeededIsWithdrawnAndComesBackWhenItIs) {
  record("INC0100");
  sias_->write_section(kManager, "INC0100", "b", kComplete["b"]);
  record("INC0100", InterruptionType::degradation);
  auto sia = sias_->find("INC0100");
  ASSERT_TRUE(sia.has_value());
  EXPECT_EQ(sia->state, "withdrawn");
  EXPECT_EQ(sia->steps["withdrawn"]["reason"], "the interruption is a degradation, not downtime");
  EXPECT_EQ(sia->sections["b"], kComplete["b"]);
  EXPECT_EQ(deadlines_->find("sia/INC0100")->state, "done");
  EXPECT_THROW(sias_->submit(kManager, "INC0100"), Conflict);
  EXPECT_THROW(sias_->write_section(kManager, "INC0100", "e", kComplete["e"]), Conflict);
  EXPECT_EQ(sias_->list("withdrawn", "").size(), 1u);
  EXPECT_TRUE(sias_->list("draft", "").empty());

  record("INC0100", InterruptionType::outage);
  sia = sias_->find("INC0100");
  ASSERT_TRUE(sia.has_value());
  EXPECT_EQ(sia->state, "draft");
  EXPECT_FALSE(sia->steps.contains("withdrawn"));
  EXPECT_EQ(sia->facts["type"], "outage");
  EXPECT_EQ(sia->sections["b"], kComplete["b"]);
  EXPECT_EQ(deadlines_->find("sia/INC0100")->state, "open");
  EXPECT_EQ(trail("INC0100"), (std::vector<std::string>{
                                  "draft by system:workflows", "write_section by token:sm",
                                  "withdraw by system:workflows", "redraft by system:workflows"}));
}

// Reopened (no end) or deleted, an interruption needs no SIA either, also once submitted.
TEST_P(SiaTest, AReopenedOrDeletedInterruptionWithdrawsItsSiaBeforeApproval) {
  record("INC0100");
  sias_->submit(kManager, "INC0100");
  record("INC0100", InterruptionType::outage, "");
  EXPECT_EQ(sias_->find("INC0100")->state, "withdrawn");
  EXPECT_EQ(sias_->find("INC0100")->steps["withdrawn"]["reason"], "the interruption has not ended");
  record("INC0100");
  EXPECT_EQ(sias_->find("INC0100")->state, "draft");
  db_->transact([&](Tx& tx) {
    core_->remove(tx, Actor{"test"}, host::CoreStore::kind("interruptions"), "INC0100");
  });
  bus_->dispatch_once();
  EXPECT_EQ(sias_->find("INC0100")->state, "withdrawn");
  EXPECT_EQ(sias_->find("INC0100")->steps["withdrawn"]["reason"], "the interruption was deleted");
}

// Approved, the SIA is the document that was signed off: a later correction of the
// interruption does not change it.
TEST_P(SiaTest, AnApprovedSiaKeepsTheFactsItWasApprovedWith) {
  record("INC0100");
  write_all("INC0100");
  sias_->submit(kManager, "INC0100");
  sias_->approve(kDeputy, "INC0100");
  record("INC0100", InterruptionType::outage, "2026-12-15T03:00:00Z");
  record("INC0100", InterruptionType::degradation);
  const auto sia = sias_->find("INC0100");
  ASSERT_TRUE(sia.has_value());
  EXPECT_EQ(sia->state, "approved");
  EXPECT_EQ(sia->facts["end"], "2026-12-12T03:00:00Z");
  EXPECT_EQ(sia->due_date, "2027-01-05");
}

TEST_P(SiaTest, ApprovalIsRefusedListingExactlyWhatIsMissingAndChangesNothing) {
  record("INC0100");
  sias_->write_section(kManager, "INC0100", "a", kComplete["a"]);
  Json cause = kComplete["b"];
  cause.erase("process_missing");
  sias_->write_section(kManager, "INC0100", "b", cause);
  Json resolution = kComplete["c"];
  resolution["groups"][0].erase("how");
  sias_->write_section(kManager, "INC0100", "c", resolution);
  sias_->write_section(kManager, "INC0100", "e", kComplete["e"]);
  const Sia submitted = sias_->submit(kManager, "INC0100");
  const auto audit_rows = core_->audit("sia", 50).size();
  try {
    sias_->approve(kDeputy, "INC0100");
    FAIL() << "an incomplete SIA must not be approved";
  } catch (const Problem& e) {
    EXPECT_EQ(e.status(), 422);
    EXPECT_NE(e.detail().find("3 required fields are missing"), std::string::npos) << e.detail();
    std::vector<std::string> paths;
    for (const auto& f : e.errors()) paths.push_back(f.path);
    EXPECT_EQ(paths, (std::vector<std::string>{"b.process_missing", "c.groups[0].how",
                                               "d.corrective_actions"}));
  }
  const auto after = sias_->find("INC0100");
  EXPECT_EQ(after->state, "submitted");
  EXPECT_EQ(after->steps, submitted.steps);
  EXPECT_EQ(core_->audit("sia", 50).size(), audit_rows);
  EXPECT_EQ(sia_json(*after)["missing"],
            (Json{"b.process_missing", "c.groups[0].how", "d.corrective_actions"}));
}

TEST_P(SiaTest, TheFullPathToPublicationIsAuditedAnnouncedMailedAndMeetsTheDeadline) {
  record("INC0100");
  write_all("INC0100");
  EXPECT_EQ(sias_->submit(kManager, "INC0100").state, "submitted");
  EXPECT_EQ(sias_->approve(kDeputy, "INC0100").state, "approved");
  clock_.set("2026-12-15T16:00:00Z");
  const Sia published = sias_->publish(kManager, "INC0100");
  EXPECT_EQ(published.state, "published");
  EXPECT_EQ(published.steps["published"]["at"], "2026-12-15T16:00:00Z");
  EXPECT_EQ(published.sections["c"]["groups"][0]["when"], "2026-12-12T03:30:00Z");
  EXPECT_EQ(published.sections["d"]["corrective_actions"][0]["done"], false);

  EXPECT_EQ(
      trail("INC0100"),
      (std::vector<std::string>{
          "draft by system:workflows", "write_section by token:sm", "write_section by token:sm",
          "write_section by token:sm", "write_section by token:sm", "write_section by token:sm",
          "submit by token:sm", "approve by token:deputy", "publish by token:sm"}));

  bus_->dispatch_once();
  {
    std::lock_guard lock(mutex_);
    ASSERT_EQ(published_.size(), 1u);
    EXPECT_EQ(published_[0].type, "sia.published");
    EXPECT_EQ(published_[0].subject, "INC0100");
    EXPECT_EQ(published_[0].payload["state"], "published");
    EXPECT_EQ(published_[0].payload["sections"], published.sections);
  }
  const auto mails = outbox_->list("", 10);
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0]["channel"], "email");
  EXPECT_EQ(mails[0]["destination"], "monitoring@example.org");
  EXPECT_NE(mails[0]["subject"].get<std::string>().find("INC0100"), std::string::npos);
  EXPECT_NE(mails[0]["body"].get<std::string>().find("alert on archive disk usage"),
            std::string::npos);

  EXPECT_EQ(deadlines_->find("sia/INC0100")->state, "done");
  EXPECT_THROW(sias_->publish(kManager, "INC0100"), Conflict);
}

// The corrective action of kComplete is owned by dba-lead@example.org and due 15 January
// 2027: publication makes it a deadline at the end of that day in Chicago (CST).
TEST_P(SiaTest, PublishedCorrectiveActionsAreDeadlinesUntilCarriedOut) {
  record("INC0100");
  write_all("INC0100");
  // A second action owned by a chat handle: recorded, not e-mailed, and no obstacle.
  Json d = kComplete["d"];
  d["corrective_actions"].push_back(
      {{"action", "page on archiver stop"}, {"owner", "@dba-oncall"}, {"due", "2027-01-22"}});
  sias_->write_section(kManager, "INC0100", "d", d);
  sias_->submit(kManager, "INC0100");
  EXPECT_THROW(sias_->complete_action(kManager, "INC0100", 0), Conflict);
  sias_->approve(kDeputy, "INC0100");
  sias_->publish(kManager, "INC0100");
  auto deadline = deadlines_->find("sia/INC0100/action/0");
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(deadline->kind, "corrective_action");
  EXPECT_EQ(deadline->owner_role, "service_manager");
  EXPECT_EQ(deadline->notify, std::vector<std::string>{"dba-lead@example.org"});
  EXPECT_EQ(format_instant(deadline->due), "2027-01-16T06:00:00Z");
  EXPECT_EQ(deadline->state, "open");
  const auto paged = deadlines_->find("sia/INC0100/action/1");
  ASSERT_TRUE(paged.has_value());
  EXPECT_TRUE(paged->notify.empty());
  EXPECT_NE(paged->description.find("(@dba-oncall)"), std::string::npos) << paged->description;

  clock_.set("2027-01-10T16:00:00Z");
  const Sia done = sias_->complete_action(kManager, "INC0100", 0);
  const Json& action = done.sections["d"]["corrective_actions"][0];
  EXPECT_EQ(action["done"], true);
  EXPECT_EQ(action["done_at"], "2027-01-10T16:00:00Z");
  EXPECT_EQ(action["done_by"], "token:sm");
  EXPECT_EQ(deadlines_->find("sia/INC0100/action/0")->state, "done");
  EXPECT_THROW(sias_->complete_action(kManager, "INC0100", 0), Conflict);
  EXPECT_THROW(sias_->complete_action(kManager, "INC0100", 2), NotFound);
  EXPECT_EQ(trail("INC0100").back(), "complete_action by token:sm");
}

// With an account team configured, the impacted customers' outage and primary technical
// contacts get the published SIA from it (their billing contacts do not).
TEST_P(SiaTest, TheAccountTeamSendsThePublishedSiaToImpactedCustomers) {
  Json dataset = Json::parse(test::read_shared("vectors/example-2026-11.json"));
  for (auto& c : dataset["customers"]) {
    const std::string id = c["id"];
    c["contacts"] = Json::array(
        {{{"role", "outage"}, {"name", "Operations"}, {"email", "ops@" + id + ".example.org"}},
         {{"role", "billing"}, {"name", "Billing"}, {"email", "billing@" + id + ".example.org"}}});
  }
  core_->import(Actor{"test"}, dataset);
  record("INC0100");
  write_all("INC0100");  // section A names library and registrar
  sias_->submit(kManager, "INC0100");
  sias_->approve(kDeputy, "INC0100");
  sias_->publish(kManager, "INC0100");
  std::vector<std::string> to;
  for (const auto& m : outbox_->list("", 10)) {
    if (m["destination"] == "monitoring@example.org") continue;  // the distribution list
    to.push_back(m["destination"]);
    EXPECT_EQ(m["headers"]["From"], "account-team@example.org");
  }
  std::sort(to.begin(), to.end());
  EXPECT_EQ(to, (std::vector<std::string>{"ops@library.example.org", "ops@registrar.example.org"}));
}

TEST_P(SiaTest, StepsGoFromTheirOwnStateAndAReturnedSiaCanBeEditedAgain) {
  record("INC0100");
  EXPECT_THROW(sias_->approve(kDeputy, "INC0100"), Conflict);
  EXPECT_THROW(sias_->publish(kManager, "INC0100"), Conflict);
  EXPECT_THROW(sias_->submit(kManager, "INC0404"), NotFound);
  sias_->submit(kManager, "INC0100");
  try {
    sias_->write_section(kManager, "INC0100", "e", kComplete["e"]);
    FAIL() << "a submitted SIA must not be edited";
  } catch (const Conflict& e) {
    EXPECT_NE(e.detail().find("it is submitted"), std::string::npos) << e.detail();
  }
  const Sia returned = sias_->return_to_draft(kDeputy, "INC0100", "section C is thin");
  EXPECT_EQ(returned.state, "draft");
  EXPECT_EQ(returned.steps["returned"]["reason"], "section C is thin");
  EXPECT_EQ(sias_->write_section(kManager, "INC0100", "e", kComplete["e"]).sections["e"],
            kComplete["e"]);
  EXPECT_EQ(sias_->list("draft", "oracle-prod").size(), 1u);
  EXPECT_TRUE(sias_->list("submitted", "").empty());
  EXPECT_TRUE(sias_->list("", "mysql-qa").empty());
}

TEST_P(SiaTest, TheRestorationNoticeAsSentIsAttachedWithItsFingerprint) {
  record("INC0100");
  const std::string message =
      "From: alerts@example.org\r\nSubject: oracle-prod restored\r\n\r\nRestored 21:00.\r\n";
  const Sia sia = sias_->write_section(kManager, "INC0100", "e",
                                       {{"notice", "Restored 21:00."},
                                        {"attachment",
                                         {{"name", "restored.eml"},
                                          {"content_type", "message/rfc822"},
                                          {"content_base64", base64_encode(message)}}}});
  const Json& attached = sia.sections["e"]["attachment"];
  EXPECT_EQ(attached["name"], "restored.eml");
  EXPECT_EQ(attached["content_type"], "message/rfc822");
  EXPECT_EQ(attached["size"], message.size());
  EXPECT_EQ(attached["sha256"], sha256_hex(message));
  const auto stored = attachments_->read("sia/INC0100", attached["id"].get<std::int64_t>());
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->second, message);
  // Content that is not base64 is refused with its path, beside the section's own errors.
  try {
    sias_->write_section(
        kManager, "INC0100", "e",
        {{"notice", ""}, {"attachment", {{"name", "x.eml"}, {"content_base64", "@@@"}}}});
    FAIL() << "refused";
  } catch (const ValidationError& e) {
    ASSERT_EQ(e.errors().size(), 2u);
    EXPECT_EQ(e.errors()[0].path, "$.notice");
    EXPECT_EQ(e.errors()[1].path, "$.attachment.content_base64");
  }
  EXPECT_EQ(attachments_->list("sia/INC0100").size(), 1u);
}

TEST_P(SiaTest, SectionsAreReadStrictlyWithTheJsonPath) {
  record("INC0100");
  auto paths_of = [&](const std::string& letter, const Json& body) {
    std::vector<std::string> out;
    try {
      sias_->write_section(kManager, "INC0100", letter, body);
    } catch (const ValidationError& e) {
      for (const auto& f : e.errors()) out.push_back(f.path);
    }
    return out;
  };
  EXPECT_EQ(paths_of("b", {{"source", "weather"}}), std::vector<std::string>{"$.source"});
  EXPECT_EQ(paths_of("c", {{"groups", {{{"who", "dba"}, {"colour", "red"}}}}}),
            std::vector<std::string>{"$.groups[0].colour"});
  EXPECT_EQ(paths_of("c", {{"groups", {{{"when", "2026-12-11T21:30:00"}}}}}),
            std::vector<std::string>{"$.groups[0].when"});  // no offset: never guessed
  EXPECT_EQ(paths_of("d", {{"corrective_actions", {{{"due", "2027-02-30"}}}}}),
            std::vector<std::string>{"$.corrective_actions[0].due"});
  EXPECT_EQ(paths_of("e", {{"notice", ""}, {"attachment", "x"}}),
            (std::vector<std::string>{"$.notice", "$.attachment"}));
  EXPECT_THROW(sias_->write_section(kManager, "INC0100", "f", Json::object()), NotFound);
  // Nothing of the refused bodies was stored.
  EXPECT_EQ(sias_->find("INC0100")->sections["b"], Json::object());
}

INSTANTIATE_TEST_SUITE_P(Engines, SiaTest, test::kBothEngines, test::engine_name);

}  // namespace
}  // namespace slmhub::workflows
