// The report workflow on SQLite and PostgreSQL, over the host's real core store and event
// bus: revisions, the steps and their order, freezing on publication, the difference a
// recomputation shows, the events billing and workflows consume, the audit trail and the
// deadline watch (DOMAIN.md §5). Figures come from the shared vector, never typed in here.
#include "workflow.hpp"

#include "report_diff.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/core_store.hpp"
#include "deadlines/deadline_store.hpp"
#include "events/event_bus.hpp"
#include "slmhub/errors.hpp"
#include "store_fixture.hpp"
#include "test_files.hpp"

namespace slmhub::availability {
namespace {

using test::StoreTest;

// The §5.4 part of a stored (detailed) document.
Json figures(const Json& document) {
  Json out = document;
  for (auto& s : out["services"]) {
    for (const char* key : {"name", "environment", "timezone", "period", "timeline",
                            "maintenance_budget_seconds", "maintenance_budget_used_seconds"}) {
      s.erase(key);
    }
  }
  for (auto& c : out["credits"]) {
    c.erase("customer_name");
    c.erase("billing_code");
  }
  out.erase("as_of");
  return out;
}

struct Seen {
  std::mutex mutex;
  std::vector<Event> events;
  std::vector<Event> of(const std::string& type) {
    std::lock_guard lock(mutex);
    std::vector<Event> out;
    for (const auto& e : events) {
      if (e.type == type) out.push_back(e);
    }
    return out;
  }
};

class ReportWorkflowTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    clock_.set("2026-12-03T15:00:00Z");  // November has closed everywhere
    bus_ = std::make_unique<host::EventBus>(*db_, clock_, log_);
    core_ = std::make_unique<host::CoreStore>(*db_, *bus_, clock_);
    core_->import(Actor{"test"}, Json::parse(test::read_shared("vectors/example-2026-11.json")));
    deadlines_ = std::make_unique<host::DeadlineStore>(*db_, *core_, *bus_, clock_, log_,
                                                       host::DeadlineSettings{});
    book_ = std::make_unique<ReportBook>(*db_, *core_, *bus_, *deadlines_, clock_, log_);
    db_->migrate("availability", ReportBook::migrations());
    bus_->subscribe("test", {"report.*", "credit.*", "deadline.*"}, [this](const Event& e) {
      std::lock_guard lock(seen_.mutex);
      seen_.events.push_back(e);
    });
  }
  void TearDown() override {
    book_.reset();
    deadlines_.reset();
    core_.reset();
    bus_.reset();
    StoreTest::TearDown();
  }

  Revision publish_first() {
    const Actor sm{"token:sm"};
    auto drafted = book_->draft(sm, kMonth);
    book_->advance(sm, kMonth, drafted.revision.number, Step::review);
    book_->advance(Actor{"token:deputy"}, kMonth, drafted.revision.number, Step::approve);
    return book_->advance(sm, kMonth, drafted.revision.number, Step::publish);
  }

  static constexpr date::year_month kMonth = date::year{2026} / date::November;
  std::unique_ptr<host::EventBus> bus_;
  std::unique_ptr<host::CoreStore> core_;
  std::unique_ptr<host::DeadlineStore> deadlines_;
  std::unique_ptr<ReportBook> book_;
  Seen seen_;
};

TEST_P(ReportWorkflowTest, ADraftCarriesTheMonthsFiguresAndItsDeadlines) {
  const auto drafted = book_->draft(Actor{"token:sm"}, kMonth);
  ASSERT_TRUE(drafted.created);
  const Revision& r = drafted.revision;
  EXPECT_EQ(r.number, 1);
  EXPECT_EQ(r.state, "draft");
  EXPECT_FALSE(r.as_of.has_value());
  EXPECT_EQ(figures(r.document),
            Json::parse(test::read_shared("vectors/example-2026-11.expected.json")));
  // Provider calendar "business": 15 business days after Monday 30 November, no holidays
  // in between, is Monday 21 December; 30 calendar days after it is 30 December.
  EXPECT_EQ(r.due_date, "2026-12-21");
  EXPECT_EQ(r.analysis_deadline, "2026-12-30");
  EXPECT_EQ(r.changes, Json::array());

  // Nothing changed: the same revision comes back, no second draft.
  const auto again = book_->draft(Actor{"system:availability"}, kMonth);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.revision.number, 1);
  EXPECT_EQ(book_->revisions(kMonth).size(), 1u);
}

// A holiday added to the provider calendar after the draft changes no figure, but it moves
// the day the report is due: drafting again keeps the revision and moves its due date and
// the deadline that warns and escalates for it.
TEST_P(ReportWorkflowTest, ARecomputationMovesTheDueDateWhenTheCalendarChanged) {
  const auto first = book_->draft(Actor{"system:availability"}, kMonth);
  EXPECT_EQ(first.revision.due_date, "2026-12-21");
  Json dataset = Json::parse(test::read_shared("vectors/example-2026-11.json"));
  dataset["calendars"][0]["holidays"].push_back("2026-12-14");
  core_->import(Actor{"test"}, dataset);

  const auto again = book_->draft(Actor{"token:sm"}, kMonth);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.revision.number, 1);
  EXPECT_EQ(again.revision.due_date, "2026-12-22");
  EXPECT_EQ(again.revision.analysis_deadline, "2026-12-30");
  EXPECT_EQ(book_->revisions(kMonth).at(0).due_date, "2026-12-22");
  const auto deadline = deadlines_->find("availability.report/2026-11");
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(format_instant(deadline->due), "2026-12-23T06:00:00Z");  // the end of 22 December
}

TEST_P(ReportWorkflowTest, StepsGoInOrderEachFromItsOwnState) {
  const Actor sm{"token:sm"};
  const auto r = book_->draft(sm, kMonth).revision;
  EXPECT_THROW(book_->advance(sm, kMonth, r.number, Step::approve), Conflict);
  EXPECT_THROW(book_->advance(sm, kMonth, r.number, Step::publish), Conflict);
  EXPECT_THROW(book_->advance(sm, kMonth, 7, Step::review), NotFound);
  EXPECT_EQ(book_->advance(sm, kMonth, r.number, Step::review).state, "reviewed");
  EXPECT_THROW(book_->advance(sm, kMonth, r.number, Step::review), Conflict);
  EXPECT_EQ(book_->advance(sm, kMonth, r.number, Step::approve).state, "approved");
  const Revision published = book_->advance(sm, kMonth, r.number, Step::publish);
  EXPECT_EQ(published.state, "published");
  EXPECT_TRUE(published.steps.contains("reviewed"));
  EXPECT_EQ(published.steps["published"]["at"], "2026-12-03T15:00:00Z");
  EXPECT_THROW(book_->advance(sm, kMonth, r.number, Step::publish), Conflict);
  try {
    book_->advance(sm, kMonth, r.number, Step::approve);
    FAIL() << "approving a published report must be refused";
  } catch (const Conflict& e) {
    EXPECT_NE(std::string(e.detail()).find("it is published"), std::string::npos) << e.detail();
  }
}

TEST_P(ReportWorkflowTest, APublishedReportIsFrozenAndARecomputationShowsTheDifference) {
  const Revision first = publish_first();
  const Json expected = Json::parse(test::read_shared("vectors/example-2026-11.expected.json"));
  const auto& oracle = expected["services"][1];  // sorted: mysql-qa, oracle-prod
  ASSERT_EQ(oracle["service"], "oracle-prod");
  const auto downtime_before = oracle["downtime_seconds"].get<std::int64_t>();

  // A late interruption: one more hour of oracle-prod down on 10 November.
  db_->transact([&](Tx& tx) {
    Interruption late;
    late.id = "INC0099";
    late.service = "oracle-prod";
    late.start = parse_instant("2026-11-10T03:00:00Z");
    late.end = parse_instant("2026-11-10T04:00:00Z");
    core_->record_interruption(tx, Actor{"test"}, late);
  });

  ASSERT_TRUE(book_->published(kMonth).has_value());
  EXPECT_EQ(book_->published(kMonth)->document, first.document);
  EXPECT_EQ(book_->revision(kMonth, 1)->document, first.document);

  const auto second = book_->draft(Actor{"token:sm"}, kMonth);
  ASSERT_TRUE(second.created);
  EXPECT_EQ(second.revision.number, 2);
  EXPECT_EQ(second.revision.state, "draft");
  Json change;
  for (const auto& c : second.revision.changes) {
    if (c["path"] == "services[oracle-prod].downtime_seconds") change = c;
  }
  ASSERT_FALSE(change.is_null()) << second.revision.changes.dump(2);
  EXPECT_EQ(change["before"], downtime_before);
  EXPECT_EQ(change["after"], downtime_before + 3600);
  // Still the first revision is the published one, and the first can no longer move.
  EXPECT_EQ(book_->published(kMonth)->number, 1);
  EXPECT_FALSE(book_->revision(kMonth, 1)->latest);
  EXPECT_TRUE(book_->revision(kMonth, 2)->latest);
  // The correction is owed its review and publication: the month's deadlines are open again.
  EXPECT_EQ(deadlines_->find("availability.analysis/2026-11")->state, "open");
  EXPECT_EQ(deadlines_->find("availability.report/2026-11")->state, "open");
}

TEST_P(ReportWorkflowTest, PublicationAnnouncesTheReportAndEveryCredit) {
  publish_first();
  EXPECT_GT(bus_->dispatch_once(), 0);
  const Json expected = Json::parse(test::read_shared("vectors/example-2026-11.expected.json"));
  const auto published = seen_.of("report.published");
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].payload["month"], "2026-11");
  EXPECT_EQ(published[0].payload["revision"], 1);
  EXPECT_EQ(published[0].payload["credits"], expected["credits"].size());

  const auto credits = seen_.of("credit.computed");
  ASSERT_EQ(credits.size(), expected["credits"].size());
  for (std::size_t i = 0; i < credits.size(); ++i) {
    const Json& want = expected["credits"][i];
    const Json& got = credits[i].payload;
    EXPECT_EQ(credits[i].subject, "2026-11/" + want["service"].get<std::string>() + "/" +
                                      want["customer"].get<std::string>());
    for (const char* key :
         {"customer", "service", "credit_cents", "downtime_seconds", "excess_downtime_seconds",
          "monthly_charge_cents", "interruptions", "maintenance_downtime"}) {
      EXPECT_EQ(got[key], want[key]) << key;
    }
    EXPECT_TRUE(got["billing_code"].is_string());
  }
}

TEST_P(ReportWorkflowTest, EveryStepIsInTheAuditLogWithItsActor) {
  publish_first();
  const Json audit = core_->audit("availability_report", 10);
  std::vector<std::string> trail;
  for (auto it = audit.rbegin(); it != audit.rend(); ++it) {
    trail.push_back((*it)["action"].get<std::string>() + " by " +
                    (*it)["actor"].get<std::string>() + " -> " +
                    (*it)["after"]["state"].get<std::string>());
  }
  EXPECT_EQ(trail, (std::vector<std::string>{
                       "draft by token:sm -> draft", "review by token:sm -> reviewed",
                       "approve by token:deputy -> approved", "publish by token:sm -> published"}));
}

// The month's deadlines go to the host's deadline service, in the provider calendar
// ("business": Chicago, 08:00-17:00 on weekdays, 24 and 25 December closed).
TEST_P(ReportWorkflowTest, DeadlinesWarnOnceBeforeAndEscalateOnceAfterInBusinessHours) {
  book_->draft(Actor{"token:sm"}, kMonth);
  const auto report = deadlines_->find("availability.report/2026-11");
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(format_instant(report->due), "2026-12-22T06:00:00Z");  // end of 21 Dec, Chicago
  EXPECT_EQ(report->owner_role, "service_manager");
  EXPECT_EQ(format_instant(deadlines_->find("availability.analysis/2026-11")->due),
            "2026-12-31T06:00:00Z");

  clock_.set("2026-12-10T15:00:00Z");  // due in more than 3 business days
  EXPECT_EQ(deadlines_->watch(), "0 warned, 0 missed");
  clock_.set("2026-12-16T03:00:00Z");  // 21:00 in Chicago: owners are not told at night
  EXPECT_EQ(deadlines_->watch(), "outside business hours: nothing sent");
  clock_.set("2026-12-16T15:00:00Z");  // 16, 17, 18, 21 December: three business days ahead
  EXPECT_EQ(deadlines_->watch(), "1 warned, 0 missed");
  EXPECT_EQ(deadlines_->watch(), "0 warned, 0 missed");
  // 22 December: the report is late; the analysis (30 December) is four business days
  // away across the two holidays, so not warned yet.
  clock_.set("2026-12-22T15:00:00Z");
  EXPECT_EQ(deadlines_->watch(), "0 warned, 1 missed");
  clock_.set("2026-12-23T15:00:00Z");  // 23, 28, 29, 30: the analysis is three days away
  EXPECT_EQ(deadlines_->watch(), "1 warned, 0 missed");

  bus_->dispatch_once();
  const auto due = seen_.of("deadline.due");
  const auto missed = seen_.of("deadline.missed");
  ASSERT_EQ(due.size(), 2u);
  ASSERT_EQ(missed.size(), 1u);
  EXPECT_EQ(due[0].subject, "availability.report/2026-11");
  EXPECT_EQ(due[0].payload["kind"], "availability_report");
  EXPECT_EQ(due[1].subject, "availability.analysis/2026-11");
  EXPECT_EQ(missed[0].payload["due"], "2026-12-22T06:00:00Z");
  EXPECT_EQ(deadlines_->list("missed").size(), 1u);
}

TEST_P(ReportWorkflowTest, ReviewAndPublicationMeetTheMonthsDeadlines) {
  const Actor sm{"token:sm"};
  const auto r = book_->draft(sm, kMonth).revision;
  book_->advance(sm, kMonth, r.number, Step::review);
  EXPECT_EQ(deadlines_->find("availability.analysis/2026-11")->state, "done");
  EXPECT_EQ(deadlines_->find("availability.report/2026-11")->state, "open");
  book_->advance(Actor{"token:deputy"}, kMonth, r.number, Step::approve);
  book_->advance(sm, kMonth, r.number, Step::publish);
  EXPECT_EQ(deadlines_->find("availability.report/2026-11")->state, "done");
  clock_.set("2026-12-28T15:00:00Z");  // after the due date: nothing to escalate
  EXPECT_EQ(deadlines_->watch(), "0 warned, 0 missed");
}

TEST_P(ReportWorkflowTest, AMonthUnderWayIsMeasuredToNowAndAFutureMonthIsRefused) {
  clock_.set("2026-11-20T12:00:00Z");
  const auto drafted = book_->draft(Actor{"token:sm"}, kMonth);
  ASSERT_TRUE(drafted.revision.as_of.has_value());
  EXPECT_EQ(format_instant(*drafted.revision.as_of), "2026-11-20T12:00:00Z");
  EXPECT_EQ(drafted.revision.document["as_of"], "2026-11-20T12:00:00Z");
  EXPECT_THROW(book_->draft(Actor{"token:sm"}, date::year{2026} / date::December), ValidationError);
}

// A revision drafted while the month was under way holds part of it: it can be looked at, but
// only a revision of the closed month is reviewed, approved and published (DOMAIN.md §5).
TEST_P(ReportWorkflowTest, ARevisionOfAMonthUnderWayCannotMoveOnOneOfTheClosedMonthCan) {
  const Actor sm{"token:sm"};
  clock_.set("2026-11-20T12:00:00Z");
  const auto partial = book_->draft(sm, kMonth).revision;
  ASSERT_TRUE(partial.as_of.has_value());
  for (const Step step : {Step::review, Step::approve, Step::publish}) {
    try {
      book_->advance(sm, kMonth, partial.number, step);
      FAIL() << "a revision measured before the month ended moved on";
    } catch (const Conflict& e) {
      EXPECT_NE(std::string(e.detail())
                    .find("measured as of 2026-11-20T12:00:00Z, before the "
                          "month ended"),
                std::string::npos)
          << e.detail();
    }
  }
  EXPECT_EQ(book_->revision(kMonth, partial.number)->state, "draft");
  EXPECT_EQ(deadlines_->find("availability.analysis/2026-11")->state, "open");

  clock_.set("2026-12-03T15:00:00Z");
  const auto whole = book_->draft(sm, kMonth);
  ASSERT_TRUE(whole.created);
  EXPECT_FALSE(whole.revision.as_of.has_value());
  EXPECT_EQ(book_->advance(sm, kMonth, whole.revision.number, Step::review).state, "reviewed");
}

// DOMAIN.md §2 measures a service's month in the service's zone: with oracle-prod in Los
// Angeles, November is over at 08:00Z on 1 December, two hours after it is over in Chicago
// (the provider's zone), and a draft between the two is of a month still under way.
TEST_P(ReportWorkflowTest, AMonthIsOverOnlyOnceItIsOverInEveryServicesZone) {
  Json dataset = Json::parse(test::read_shared("vectors/example-2026-11.json"));
  for (auto& s : dataset["services"]) {
    if (s["id"] == "oracle-prod") s["timezone"] = "America/Los_Angeles";
  }
  core_->import(Actor{"test"}, dataset);

  clock_.set("2026-12-01T07:00:00Z");
  const auto early = book_->draft(Actor{"token:sm"}, kMonth).revision;
  ASSERT_TRUE(early.as_of.has_value());
  EXPECT_EQ(early.document["as_of"], "2026-12-01T07:00:00Z");
  // Measured to 07:00Z, not to the end of the month in Los Angeles.
  for (const auto& s : early.document["services"]) {
    if (s["service"] == "oracle-prod") {
      EXPECT_EQ(s["period"]["end"], "2026-12-01T07:00:00Z");
    }
  }

  clock_.set("2026-12-01T08:00:00Z");
  const auto whole = book_->draft(Actor{"token:sm"}, kMonth).revision;
  EXPECT_FALSE(whole.as_of.has_value());
  EXPECT_FALSE(whole.document.contains("as_of"));
}

// A credit the published report announced and a later published revision no longer has is
// announced again at zero, so consumers that keep the latest credit per (month, service,
// customer) drop it.
TEST_P(ReportWorkflowTest, ARepublishedReportWithdrawsTheCreditsItNoLongerHas) {
  publish_first();
  // INC0004 was a degradation after all: mysql-qa met its SLA, and registrar is owed nothing.
  db_->transact([&](Tx& tx) {
    Interruption corrected;
    corrected.id = "INC0004";
    corrected.service = "mysql-qa";
    corrected.type = InterruptionType::degradation;
    corrected.start = parse_instant("2026-11-25T22:00:00Z");
    corrected.end = parse_instant("2026-11-30T15:00:00Z");
    corrected.customers = {"registrar"};
    core_->record_interruption(tx, Actor{"test"}, corrected);
  });
  const Actor sm{"token:sm"};
  const auto second = book_->draft(sm, kMonth).revision;
  ASSERT_EQ(second.number, 2);
  book_->advance(sm, kMonth, 2, Step::review);
  book_->advance(Actor{"token:deputy"}, kMonth, 2, Step::approve);
  book_->advance(sm, kMonth, 2, Step::publish);
  while (bus_->dispatch_once() > 0) {
  }

  std::map<std::string, Json> by_subject;  // the latest per subject, as a consumer keeps it
  for (const auto& e : seen_.of("credit.computed")) by_subject[e.subject] = e.payload;
  const Json& withdrawn = by_subject.at("2026-11/mysql-qa/registrar");
  EXPECT_EQ(withdrawn["revision"], 2);
  EXPECT_EQ(withdrawn["credit_cents"], 0);
  EXPECT_EQ(withdrawn["withdrawn"], true);
  EXPECT_EQ(withdrawn["withdrawn_revision"], 1);
  EXPECT_EQ(withdrawn["interruptions"], Json::array());
  // The oracle-prod credits stand, announced again with the new revision.
  EXPECT_EQ(by_subject.at("2026-11/oracle-prod/registrar")["revision"], 2);
  EXPECT_FALSE(by_subject.at("2026-11/oracle-prod/registrar").contains("withdrawn"));
  EXPECT_EQ(seen_.of("credit.computed").size(), 3u + 3u);
}

// Published SIAs (the workflows plugin's `sia.published`) show on the page of the month whose
// interruptions they analyse, per service; others do not.
TEST_P(ReportWorkflowTest, ThePageListsThePublishedAnalysesOfTheMonthsInterruptions) {
  const auto r = book_->draft(Actor{"token:sm"}, kMonth).revision;
  EXPECT_TRUE(book_->related_sias(r.document).empty());
  book_->record_sia({{"id", "INC0002"},
                     {"interruption", "INC0002"},
                     {"service", "oracle-prod"},
                     {"state", "published"}});
  book_->record_sia({{"id", "INC0099"},  // not an interruption of this month
                     {"interruption", "INC0099"},
                     {"service", "oracle-prod"},
                     {"state", "published"}});
  book_->record_sia({{"id", "INC0002"},  // delivered again: still one
                     {"interruption", "INC0002"},
                     {"service", "oracle-prod"},
                     {"state", "published"}});
  const auto related = book_->related_sias(r.document);
  ASSERT_EQ(related.size(), 1u);
  ASSERT_TRUE(related.contains("oracle-prod"));
  EXPECT_EQ(related.at("oracle-prod"),
            (std::vector<std::pair<std::string, std::string>>{{"INC0002", "INC0002"}}));
}

// A credit is its service and its customer, and ids may hold a '/': two rows that would read
// the same joined ("a/b" + "c", "a" + "b/c") are still two rows, one of them gone.
TEST(ReportChanges, CreditRowsWhoseIdsReadTheSameJoinedAreKeptApart) {
  const Json kept = {{"service", "a/b"}, {"customer", "c"}, {"credit_cents", 100}};
  const Json gone = {{"service", "a"}, {"customer", "b/c"}, {"credit_cents", 200}};
  const Json before = {{"services", Json::array()}, {"credits", {kept, gone}}};
  const Json after = {{"services", Json::array()}, {"credits", {kept}}};
  const Json changes = report_changes(before, after);
  ASSERT_EQ(changes.size(), 1u) << changes.dump();
  EXPECT_EQ(changes[0]["before"], gone);
  EXPECT_TRUE(changes[0]["after"].is_null());
  EXPECT_TRUE(report_changes(before, before).empty());
}

// A customer's billing code corrected after the draft: the credit form of the work order
// names it, so the recomputation is a revision that carries it.
TEST(ReportChanges, ACorrectedBillingCodeIsAChange) {
  const Json was = {
      {"service", "oracle-prod"}, {"customer", "library"}, {"billing_code", "LIB-200"}};
  Json is = was;
  is["billing_code"] = "LIB-300";
  const Json changes = report_changes({{"services", Json::array()}, {"credits", {was}}},
                                      {{"services", Json::array()}, {"credits", {is}}});
  ASSERT_EQ(changes.size(), 1u) << changes.dump();
  EXPECT_EQ(changes[0]["path"], "credits[oracle-prod/library].billing_code");
  EXPECT_EQ(changes[0]["before"], "LIB-200");
  EXPECT_EQ(changes[0]["after"], "LIB-300");
}

INSTANTIATE_TEST_SUITE_P(Engines, ReportWorkflowTest, test::kBothEngines, test::engine_name);

}  // namespace
}  // namespace slmhub::availability
