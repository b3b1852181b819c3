// The deadline service's notices on SQLite and PostgreSQL, over the host's real core store,
// event bus and outbox, on a manual clock: who is told (the owner role's addresses, the
// deadline's own, the escalation list for a missed one), what they are told, once, never
// outside the provider's business hours, afresh when a deadline moves and not when only its
// recipients change; the recipients column added to an existing table; the configuration
// keys refusing what is not an address.
//
// The shared dataset's provider calendar "business" is America/Chicago, Monday to Friday
// 08:00-17:00 (14:00-23:00 UTC in December), holidays 24 and 25 December.
#include "deadlines/deadline_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "config/settings.hpp"
#include "core/core_store.hpp"
#include "events/event_bus.hpp"
#include "events/outbox.hpp"
#include "store_fixture.hpp"
#include "test_files.hpp"

namespace slmhub::host {
namespace {

using test::engine_name;
using test::StoreTest;

const std::string kDescription =
    "publish the Service Interruption Analysis of INC0001 (oracle-prod)";

// One row of the outbox, the parts a recipient sees and the key that keeps it single.
struct Sent {
  std::string channel;
  std::string destination;
  std::string subject;
  std::string dedupe_key;
  bool operator==(const Sent&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Sent& s) {
  return out << "{" << s.channel << ", " << s.destination << ", \"" << s.subject << "\", "
             << s.dedupe_key << "}";
}

Sent due_to(const std::string& address) {
  return {"email", address, "Due 2026-12-21: " + kDescription,
          "deadline.due/sia/INC0001/1797919200/" + address};
}

Sent missed_to(const std::string& address) {
  return {"email", address, "Missed 2026-12-21: " + kDescription,
          "deadline.missed/sia/INC0001/1797919200/" + address};
}

DeadlineSettings configured() {
  DeadlineSettings s;
  s.notify["service_manager"] = {"sm@example.org", "deputy@example.org"};
  s.notify["approver"] = {"approver@example.org"};
  s.escalate = {"director@example.org", "sm@example.org"};
  return s;
}

class DeadlineNoticeTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    clock_.set("2026-12-03T15:00:00Z");
    bus_ = std::make_unique<EventBus>(*db_, clock_, log_);
    core_ = std::make_unique<CoreStore>(*db_, *bus_, clock_);
    core_->import(Actor{"test"}, Json::parse(test::read_shared("vectors/example-2026-11.json")));
    outbox_ = std::make_unique<OutboxService>(*db_, clock_, log_, "test");
  }
  void TearDown() override {
    deadlines_.reset();
    outbox_.reset();
    core_.reset();
    bus_.reset();
    StoreTest::TearDown();
  }

  void open(DeadlineSettings settings = configured()) {
    deadlines_ =
        std::make_unique<DeadlineStore>(*db_, *core_, *bus_, *outbox_, clock_, log_, settings);
  }

  // The SIA of INC0001, due on Monday 21 December, with a customer contact to tell as well.
  Deadline sia(int day = 21) const {
    Deadline d{"sia/INC0001",
               "sia",
               "INC0001",
               "service_manager",
               kDescription,
               core_->provider_calendar().end_of_day(date::year{2026} / date::December / day)};
    d.notify = {"sm@example.org", "contact@library.example.edu"};
    return d;
  }

  void set(const Deadline& d) {
    db_->transact([&](Tx& tx) { deadlines_->set(tx, Actor{"token:sm"}, d); });
  }

  std::vector<Sent> sent() {
    std::vector<Sent> out;
    for (const auto& r :
         db_->query("SELECT channel, destination, subject, dedupe_key FROM outbox ORDER BY id"))
      out.push_back({r.text(0), r.text(1), r.text(2), r.text(3)});
    return out;
  }

  std::string body_of(const std::string& dedupe_key) {
    const auto rows = db_->query("SELECT body FROM outbox WHERE dedupe_key = ?", {dedupe_key});
    return rows.empty() ? std::string("(none)") : rows.front().text(0);
  }

  std::string watch_at(const std::string& now) {
    clock_.set(now);
    return deadlines_->watch();
  }

  std::unique_ptr<EventBus> bus_;
  std::unique_ptr<CoreStore> core_;
  std::unique_ptr<OutboxService> outbox_;
  std::unique_ptr<DeadlineStore> deadlines_;
};

TEST_P(DeadlineNoticeTest, TheOwnerRoleAndTheDeadlinesOwnAddressesAreWarnedOnceEach) {
  open();
  set(sia());
  // Tuesday 15 December: 21 December is four business days away.
  EXPECT_EQ(watch_at("2026-12-15T15:00:00Z"), "0 warned, 0 missed");
  EXPECT_EQ(sent(), std::vector<Sent>{});
  // Wednesday 16 December, 09:00 in Chicago: three business days away. The role's
  // addresses and the deadline's own, sm@example.org once, sorted; no escalation address.
  EXPECT_EQ(watch_at("2026-12-16T15:00:00Z"), "1 warned, 0 missed");
  const std::vector<Sent> warned{due_to("contact@library.example.edu"),
                                 due_to("deputy@example.org"), due_to("sm@example.org")};
  EXPECT_EQ(sent(), warned);
  EXPECT_EQ(body_of("deadline.due/sia/INC0001/1797919200/deputy@example.org"),
            "A deadline is near and still open.\n"
            "\n"
            "What:     publish the Service Interruption Analysis of INC0001 (oracle-prod)\n"
            "Kind:     sia\n"
            "Subject:  INC0001\n"
            "Owner:    service_manager\n"
            "Due:      2026-12-21, end of the day in America/Chicago (2026-12-22T06:00:00Z)\n"
            "Deadline: sia/INC0001\n"
            "\n"
            "This warning is sent once; moving the deadline warns afresh and completing it ends "
            "the notices.\n");
  // Run again, now and later the same day: nothing more.
  EXPECT_EQ(watch_at("2026-12-16T15:00:00Z"), "0 warned, 0 missed");
  EXPECT_EQ(watch_at("2026-12-16T20:00:00Z"), "0 warned, 0 missed");
  EXPECT_EQ(sent(), warned);
  EXPECT_TRUE(log_.contains(
      "sia INC0001 is due 2026-12-22T06:00:00Z (service_manager: " + kDescription +
          "); notice to contact@library.example.edu deputy@example.org sm@example.org",
      "warning"));
}

TEST_P(DeadlineNoticeTest, AMissedDeadlineIsEscalatedOnceToTheEscalationAddressesToo) {
  open();
  set(sia());
  EXPECT_EQ(watch_at("2026-12-16T15:00:00Z"), "1 warned, 0 missed");
  // Tuesday 22 December, 09:00 in Chicago: the 21st has ended.
  EXPECT_EQ(watch_at("2026-12-22T15:00:00Z"), "0 warned, 1 missed");
  EXPECT_EQ(watch_at("2026-12-22T15:15:00Z"), "0 warned, 0 missed");
  const std::vector<Sent> expected{due_to("contact@library.example.edu"),
                                   due_to("deputy@example.org"),
                                   due_to("sm@example.org"),
                                   missed_to("contact@library.example.edu"),
                                   missed_to("deputy@example.org"),
                                   missed_to("director@example.org"),
                                   missed_to("sm@example.org")};
  EXPECT_EQ(sent(), expected);
  EXPECT_EQ(body_of("deadline.missed/sia/INC0001/1797919200/director@example.org"),
            "A deadline has passed without being met.\n"
            "\n"
            "What:     publish the Service Interruption Analysis of INC0001 (oracle-prod)\n"
            "Kind:     sia\n"
            "Subject:  INC0001\n"
            "Owner:    service_manager\n"
            "Due:      2026-12-21, end of the day in America/Chicago (2026-12-22T06:00:00Z)\n"
            "Deadline: sia/INC0001\n"
            "\n"
            "This escalation is sent once. GET /api/v1/deadlines?state=missed lists every missed "
            "deadline.\n");
  EXPECT_EQ(deadlines_->find("sia/INC0001")->state, "missed");
}

TEST_P(DeadlineNoticeTest, NothingIsSentOutsideBusinessHoursAndTheWatchCatchesUp) {
  open();
  set(sia());
  // Wednesday 16 December, 20:00 in Chicago: in the warning window, after hours.
  EXPECT_EQ(watch_at("2026-12-17T02:00:00Z"), "outside business hours: nothing sent");
  // Tuesday 22 December, 21:00 (missed, after hours); Thursday 24 December (a holiday);
  // Saturday 26 December at noon.
  EXPECT_EQ(watch_at("2026-12-23T03:00:00Z"), "outside business hours: nothing sent");
  EXPECT_EQ(watch_at("2026-12-24T18:00:00Z"), "outside business hours: nothing sent");
  EXPECT_EQ(watch_at("2026-12-26T18:00:00Z"), "outside business hours: nothing sent");
  EXPECT_EQ(sent(), std::vector<Sent>{});
  EXPECT_FALSE(deadlines_->find("sia/INC0001")->warned_at.has_value());
  EXPECT_EQ(deadlines_->find("sia/INC0001")->state, "open");
  // Monday 28 December, 08:30: the escalation goes out; the warning is past its time.
  EXPECT_EQ(watch_at("2026-12-28T14:30:00Z"), "0 warned, 1 missed");
  const std::vector<Sent> expected{missed_to("contact@library.example.edu"),
                                   missed_to("deputy@example.org"),
                                   missed_to("director@example.org"), missed_to("sm@example.org")};
  EXPECT_EQ(sent(), expected);
}

TEST_P(DeadlineNoticeTest, OutsideBusinessHoursWhenConfiguredSo) {
  DeadlineSettings settings = configured();
  settings.notify_outside_business_hours = true;
  open(settings);
  set(sia());
  EXPECT_EQ(watch_at("2026-12-17T02:00:00Z"), "1 warned, 0 missed");
  const std::vector<Sent> expected{due_to("contact@library.example.edu"),
                                   due_to("deputy@example.org"), due_to("sm@example.org")};
  EXPECT_EQ(sent(), expected);
}

TEST_P(DeadlineNoticeTest, EachOwnerRoleHasItsOwnAddressesAndSomeHaveNone) {
  open();
  const auto due = core_->provider_calendar().end_of_day(date::year{2026} / date::December / 18);
  set({"approval/1", "approval", "CRQ1", "approver", "approve credit request CRQ1", due});
  set({"invoice/2026-11", "invoice", "2026-11", "billing", "export the November invoices", due});
  Deadline customer{
      "dispute/DSP1", "dispute", "DSP1", "customer:library", "answer the dispute DSP1", due};
  customer.notify = {"contact@library.example.edu"};
  set(customer);
  EXPECT_EQ(watch_at("2026-12-16T15:00:00Z"), "3 warned, 0 missed");
  // Billing has no addresses: its deadline is an event and a log line only.
  const std::vector<Sent> warned{
      {"email", "approver@example.org", "Due 2026-12-18: approve credit request CRQ1",
       "deadline.due/approval/1/1797660000/approver@example.org"},
      {"email", "contact@library.example.edu", "Due 2026-12-18: answer the dispute DSP1",
       "deadline.due/dispute/DSP1/1797660000/contact@library.example.edu"}};
  EXPECT_EQ(sent(), warned);
  // Missed on Monday 21 December: each escalated to management besides its own recipients.
  EXPECT_EQ(watch_at("2026-12-21T15:00:00Z"), "0 warned, 3 missed");
  std::vector<Sent> expected = warned;
  for (const auto& [id, description, addresses] :
       std::vector<std::tuple<std::string, std::string, std::vector<std::string>>>{
           {"approval/1",
            "approve credit request CRQ1",
            {"approver@example.org", "director@example.org", "sm@example.org"}},
           {"dispute/DSP1",
            "answer the dispute DSP1",
            {"contact@library.example.edu", "director@example.org", "sm@example.org"}},
           {"invoice/2026-11",
            "export the November invoices",
            {"director@example.org", "sm@example.org"}}}) {
    for (const auto& address : addresses)
      expected.push_back({"email", address, "Missed 2026-12-18: " + description,
                          "deadline.missed/" + id + "/1797660000/" + address});
  }
  EXPECT_EQ(sent(), expected);
}

TEST_P(DeadlineNoticeTest, WithoutAnyAddressTheWatchWritesEventsAndLogsOnly) {
  open(DeadlineSettings{});
  Deadline d = sia();
  d.notify.clear();
  set(d);
  EXPECT_EQ(watch_at("2026-12-16T15:00:00Z"), "1 warned, 0 missed");
  EXPECT_EQ(watch_at("2026-12-22T15:00:00Z"), "0 warned, 1 missed");
  EXPECT_EQ(sent(), std::vector<Sent>{});
  const auto events =
      db_->query("SELECT type, subject FROM events WHERE type LIKE 'deadline.%' ORDER BY id");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text(0), "deadline.due");
  EXPECT_EQ(events[1].text(0), "deadline.missed");
  EXPECT_EQ(events[1].text(1), "sia/INC0001");
}

TEST_P(DeadlineNoticeTest, ChangingOnlyTheAddressesKeepsTheWarningAndMovingWarnsAfresh) {
  open();
  set(sia());
  EXPECT_EQ(watch_at("2026-12-16T15:00:00Z"), "1 warned, 0 missed");
  const auto warned_at = deadlines_->find("sia/INC0001")->warned_at;
  ASSERT_TRUE(warned_at.has_value());

  // Same due day, other recipients: stored (sorted, once each), no second warning.
  clock_.set("2026-12-16T16:00:00Z");
  Deadline other = sia();
  other.notify = {"noc@library.example.edu", "contact@library.example.edu",
                  "noc@library.example.edu"};
  set(other);
  auto d = deadlines_->find("sia/INC0001");
  EXPECT_EQ(d->notify,
            (std::vector<std::string>{"contact@library.example.edu", "noc@library.example.edu"}));
  EXPECT_EQ(d->warned_at, warned_at);
  EXPECT_EQ(d->state, "open");
  EXPECT_EQ(deadlines_->watch(), "0 warned, 0 missed");
  EXPECT_EQ(sent().size(), 3u);
  const Json audit = core_->audit("deadline", 1);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["action"], "notify");
  EXPECT_EQ(audit[0]["before"],
            Json::parse(R"({"notify":["contact@library.example.edu","sm@example.org"]})"));
  EXPECT_EQ(audit[0]["after"],
            Json::parse(R"({"notify":["contact@library.example.edu","noc@library.example.edu"]})"));
  // The same list in another order is no change at all.
  std::reverse(other.notify.begin(), other.notify.end());
  set(other);
  EXPECT_EQ(core_->audit("deadline", 1)[0]["id"], audit[0]["id"]);
  // Other words for the same promise (its interruption moved to another service): stored,
  // the warning kept.
  other.description = "publish the Service Interruption Analysis of INC0001 (mysql-qa)";
  set(other);
  d = deadlines_->find("sia/INC0001");
  EXPECT_EQ(d->description, other.description);
  EXPECT_EQ(d->warned_at, warned_at);
  EXPECT_EQ(deadlines_->watch(), "0 warned, 0 missed");
  const Json reworded = core_->audit("deadline", 1);
  ASSERT_EQ(reworded.size(), 1u);
  EXPECT_EQ(reworded[0]["action"], "change");
  EXPECT_EQ(reworded[0]["after"], (Json{{"description", other.description}}));

  // Moved to Tuesday 22 December: a new promise, warned when it is three business days away
  // (Thursday 17th), under a new key, to the recipients of the moment.
  Deadline moved = sia(22);
  moved.notify = other.notify;
  set(moved);
  EXPECT_FALSE(deadlines_->find("sia/INC0001")->warned_at.has_value());
  EXPECT_EQ(watch_at("2026-12-16T17:00:00Z"), "0 warned, 0 missed");
  EXPECT_EQ(watch_at("2026-12-17T15:00:00Z"), "1 warned, 0 missed");
  const auto all = sent();
  ASSERT_EQ(all.size(), 7u);
  const std::vector<Sent> again(all.begin() + 3, all.end());
  std::vector<Sent> expected;
  for (const char* address : {"contact@library.example.edu", "deputy@example.org",
                              "noc@library.example.edu", "sm@example.org"})
    expected.push_back({"email", address, "Due 2026-12-22: " + kDescription,
                        "deadline.due/sia/INC0001/1798005600/1/" + std::string(address)});
  EXPECT_EQ(again, expected);
}

// A deadline met stays met when set again; one owed again (a withdrawn work order reopened)
// is opened again by reopen(), and warns afresh.
TEST_P(DeadlineNoticeTest, ADoneDeadlineStaysDoneUnlessReopened) {
  open();
  set(sia());
  db_->transact([&](Tx& tx) { deadlines_->complete(tx, Actor{"token:sm"}, "sia/INC0001"); });
  set(sia(22));
  EXPECT_EQ(deadlines_->find("sia/INC0001")->state, "done");
  EXPECT_EQ(watch_at("2026-12-17T15:00:00Z"), "0 warned, 0 missed");

  db_->transact([&](Tx& tx) { deadlines_->reopen(tx, Actor{"system:workflows"}, sia(22)); });
  const auto d = deadlines_->find("sia/INC0001");
  EXPECT_EQ(d->state, "open");
  EXPECT_FALSE(d->done_at.has_value());
  EXPECT_EQ(d->due, sia(22).due);
  EXPECT_EQ(core_->audit("deadline", 1)[0]["action"], "reopen");
  EXPECT_EQ(watch_at("2026-12-17T16:00:00Z"), "1 warned, 0 missed");
  const std::size_t told = sent().size();
  EXPECT_GT(told, 0u);

  // Met, then owed again with the same due day (a report corrected after its publication):
  // told again, not swallowed by the first notices' keys.
  db_->transact([&](Tx& tx) { deadlines_->complete(tx, Actor{"token:sm"}, "sia/INC0001"); });
  db_->transact([&](Tx& tx) { deadlines_->reopen(tx, Actor{"token:sm"}, sia(22)); });
  EXPECT_EQ(watch_at("2026-12-17T17:00:00Z"), "1 warned, 0 missed");
  EXPECT_EQ(sent().size(), 2 * told);
}

TEST_P(DeadlineNoticeTest, TheAddressesAreListedWithTheDeadline) {
  open();
  Deadline d = sia();
  d.notify = {"sm@example.org", "contact@library.example.edu", "sm@example.org"};
  set(d);
  const auto found = deadlines_->find("sia/INC0001");
  ASSERT_TRUE(found.has_value());
  const std::vector<std::string> stored{"contact@library.example.edu", "sm@example.org"};
  EXPECT_EQ(found->notify, stored);
  ASSERT_EQ(deadlines_->list("open").size(), 1u);
  EXPECT_EQ(deadlines_->list("open")[0].notify, stored);
  EXPECT_EQ(to_json(*found),
            Json::parse(R"({"id": "sia/INC0001", "kind": "sia", "subject": "INC0001",
              "owner_role": "service_manager", "description": ")" +
                        kDescription + R"(", "due": "2026-12-22T06:00:00Z",
              "notify": ["contact@library.example.edu", "sm@example.org"], "state": "open",
              "warned_at": null, "missed_at": null, "done_at": null})"));
}

TEST_P(DeadlineNoticeTest, WhatIsNotAnAddressIsRefused) {
  open();
  Deadline d = sia();
  d.notify = {"contact@library.example.edu", "Library Contact"};
  try {
    set(d);
    ADD_FAILURE() << "set accepted a notify entry that is not an address";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "deadline sia/INC0001 notify: expected an e-mail address (local@domain), found "
                 "'Library Contact'");
  }
  EXPECT_FALSE(deadlines_->find("sia/INC0001").has_value());

  DeadlineSettings settings;
  settings.escalate = {"director@"};
  EXPECT_THROW(open(settings), std::invalid_argument);
}

TEST_P(DeadlineNoticeTest, AnExistingTableGetsTheAddressColumn) {
  // The table as version 1 made it, with a deadline already warned.
  db_->migrate("host.deadlines",
               {{1, "dated obligations and their warnings",
                 "CREATE TABLE deadlines(id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT "
                 "NOT NULL, owner_role TEXT NOT NULL, description TEXT NOT NULL, due BIGINT NOT "
                 "NULL, state TEXT NOT NULL, warned_at BIGINT, missed_at BIGINT, done_at BIGINT);"
                 "CREATE INDEX deadlines_state ON deadlines(state, due)"}});
  db_->transact([&](Tx& tx) {
    tx.exec(
        "INSERT INTO deadlines(id, kind, subject, owner_role, description, due, state, "
        "warned_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
        {std::string("sia/INC0001"), std::string("sia"), std::string("INC0001"),
         std::string("service_manager"), kDescription, std::int64_t{1797919200},
         std::int64_t{1797433200}});
  });
  open();
  const auto versions = db_->query(
      "SELECT version FROM schema_migrations WHERE owner = 'host.deadlines' ORDER BY version");
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_EQ(versions[1].integer(0), 2);
  EXPECT_EQ(versions[2].integer(0), 3);
  const auto d = deadlines_->find("sia/INC0001");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->notify, std::vector<std::string>{});
  EXPECT_EQ(format_instant(*d->warned_at), "2026-12-16T15:00:00Z");
  // Missed: the role's addresses and the escalation list.
  EXPECT_EQ(watch_at("2026-12-22T15:00:00Z"), "0 warned, 1 missed");
  const std::vector<Sent> expected{missed_to("deputy@example.org"),
                                   missed_to("director@example.org"), missed_to("sm@example.org")};
  EXPECT_EQ(sent(), expected);
}

INSTANTIATE_TEST_SUITE_P(Engines, DeadlineNoticeTest, test::kBothEngines, engine_name);

TEST(DeadlineSettingsTest, TheNoticeKeysHoldAddresses) {
  Settings settings;
  settings.set("deadlines.notify.service_manager", "sm@example.org, deputy@example.org");
  settings.set("deadlines.escalate", "director@example.org");
  EXPECT_EQ(settings.validate_host_keys(), std::vector<std::string>{});
  EXPECT_EQ(split_config_list(settings.string("deadlines.notify.service_manager")),
            (std::vector<std::string>{"sm@example.org", "deputy@example.org"}));
  EXPECT_EQ(settings.string("deadlines.notify.approver"), "");

  settings.set("deadlines.notify.approver", "approver@example.org, approvers");
  settings.set("deadlines.notify.viewer", "viewer@example.org");
  EXPECT_EQ(
      settings.validate_host_keys(),
      (std::vector<std::string>{"(defaults): unknown key 'deadlines.notify.viewer'",
                                "(defaults): 'deadlines.notify.approver' expects e-mail addresses "
                                "(local@domain), found 'approvers'"}));
}

}  // namespace
}  // namespace slmhub::host
