// The event bus on SQLite and PostgreSQL: only committed events are delivered, in order,
// per subscriber; a failing handler is retried after a back-off that the test drives with
// a ManualClock, also across a restart, while the other subscribers carry on.
#include "events/event_bus.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "manual_clock.hpp"
#include "slmhub/batches.hpp"
#include "storage/database.hpp"
#include "store_fixture.hpp"
#include "test_logger.hpp"

namespace slmhub::host {
namespace {

using namespace std::chrono_literals;
using test::ManualClock;
using test::TestLogger;

using test::Engine;
using test::engine_name;
using test::StoreTest;

// ---- helpers --------------------------------------------------------------------------

// What a handler saw, safe to read while the dispatcher thread writes.
struct Received {
  std::mutex mutex;
  std::vector<Event> events;

  void add(const Event& e) {
    std::lock_guard lock(mutex);
    events.push_back(e);
  }
  std::vector<std::string> subjects() {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.subject);
    return out;
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return events.size();
  }
};

struct BoomError : std::runtime_error {
  BoomError() : std::runtime_error("mail server unreachable") {}
};

using EventBusTest = StoreTest;

void publish(Store& store, Events& bus, const std::string& type, const std::string& subject) {
  store.transact([&](Tx& tx) { bus.publish(tx, type, subject, Json{{"subject", subject}}); });
}

// ---- tests ----------------------------------------------------------------------------

TEST_P(EventBusTest, EventsOfARolledBackTransactionAreNeverDelivered) {
  EventBus bus(*db_, clock_, log_);
  Received got;
  bus.subscribe("audit", {"*"}, [&](const Event& e) { got.add(e); });

  EXPECT_THROW(db_->transact([&](Tx& tx) {
    bus.publish(tx, "ticket.created", "T-1", Json::object());
    throw std::runtime_error("validation failed after publishing");
  }),
               std::runtime_error);
  publish(*db_, bus, "ticket.created", "T-2");

  EXPECT_EQ(bus.dispatch_once(), 1);
  EXPECT_EQ(got.subjects(), std::vector<std::string>{"T-2"});
  EXPECT_EQ(bus.dispatch_once(), 0);
  EXPECT_EQ(bus.backlog("audit"), 0);
}

TEST_P(EventBusTest, DeliversMatchingEventsInPublishingOrder) {
  EventBus bus(*db_, clock_, log_);
  Received credits, exact, all;
  bus.subscribe("billing", {"credit.*"}, [&](const Event& e) { credits.add(e); });
  bus.subscribe("mailer", {"ticket.created", "report.published"},
                [&](const Event& e) { exact.add(e); });
  bus.subscribe("audit", {"*"}, [&](const Event& e) { all.add(e); });

  publish(*db_, bus, "credit.approved", "C-1");
  db_->transact([&](Tx& tx) {  // two events in one transaction keep their order
    bus.publish(tx, "ticket.created", "T-1", Json{{"n", 1}});
    bus.publish(tx, "credit.denied", "C-2", Json::object());
  });
  clock_.advance(90s);
  publish(*db_, bus, "creditx.approved", "X-1");  // not "credit.*"
  publish(*db_, bus, "report.published", "R-1");
  publish(*db_, bus, "credit.approved", "C-3");

  EXPECT_EQ(bus.backlog("billing"), 3);
  EXPECT_EQ(bus.backlog("mailer"), 2);
  EXPECT_EQ(bus.backlog("audit"), 6);
  EXPECT_EQ(bus.dispatch_once(), 11);

  EXPECT_EQ(credits.subjects(), (std::vector<std::string>{"C-1", "C-2", "C-3"}));
  EXPECT_EQ(exact.subjects(), (std::vector<std::string>{"T-1", "R-1"}));
  EXPECT_EQ(all.subjects(), (std::vector<std::string>{"C-1", "T-1", "C-2", "X-1", "R-1", "C-3"}));
  for (std::size_t i = 1; i < all.events.size(); ++i) {
    EXPECT_LT(all.events[i - 1].id, all.events[i].id);
  }
  const Event& ticket = exact.events[0];
  EXPECT_EQ(ticket.type, "ticket.created");
  EXPECT_EQ(ticket.payload, (Json{{"n", 1}}));
  EXPECT_EQ(ticket.at, parse_instant("2026-11-02T09:00:00Z"));
  EXPECT_EQ(exact.events[1].at, parse_instant("2026-11-02T09:01:30Z"));

  EXPECT_EQ(bus.dispatch_once(), 0);
  for (const auto& name : {"billing", "mailer", "audit"}) EXPECT_EQ(bus.backlog(name), 0) << name;
}

TEST_P(EventBusTest, FailingHandlerIsRetriedAfterBackoffAndAfterARestart) {
  const EventBusSettings settings{.initial_backoff = 1s, .max_backoff = 4s};
  Received flaky, steady;
  std::atomic<bool> failing{true};
  std::atomic<int> calls{0};
  auto flaky_handler = [&](const Event& e) {
    ++calls;
    if (failing) throw BoomError();
    flaky.add(e);
  };
  auto steady_handler = [&](const Event& e) { steady.add(e); };

  auto bus = std::make_unique<EventBus>(*db_, clock_, log_, settings);
  bus->subscribe("flaky", {"ticket.*"}, flaky_handler);
  bus->subscribe("steady", {"ticket.*"}, steady_handler);
  for (const auto* subject : {"T-1", "T-2", "T-3"}) publish(*db_, *bus, "ticket.created", subject);

  EXPECT_EQ(bus->dispatch_once(), 3);  // steady got all three; flaky failed on T-1
  EXPECT_EQ(steady.subjects(), (std::vector<std::string>{"T-1", "T-2", "T-3"}));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(log_.contains("subscriber \"flaky\" failed (attempt 1)", "warning"));

  auto status = bus->subscribers();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].name, "flaky");
  EXPECT_EQ(status[0].attempts, 1);
  EXPECT_EQ(status[0].last_error, "mail server unreachable");
  EXPECT_EQ(status[0].next_attempt_at, parse_instant("2026-11-02T09:00:01Z"));
  EXPECT_EQ(status[0].backlog, 3);
  EXPECT_EQ(status[1].backlog, 0);
  EXPECT_EQ(to_json(status[0])["next_attempt_at"], "2026-11-02T09:00:01Z");

  // Back-off 1 s, 2 s, 4 s, 4 s (capped): no call before each deadline, one call at it.
  int expected_calls = 1;
  for (const auto wait : {1s, 2s, 4s, 4s}) {
    clock_.advance(wait - 1s);
    if (wait > 1s) {
      bus->dispatch_once();
      EXPECT_EQ(calls, expected_calls) << "called before the back-off of " << wait.count() << " s";
    }
    clock_.advance(1s);
    bus->dispatch_once();
    EXPECT_EQ(calls, ++expected_calls)
        << "not called after the back-off of " << wait.count() << " s";
  }
  status = bus->subscribers();
  EXPECT_EQ(status[0].attempts, 5);
  EXPECT_EQ(status[0].next_attempt_at, clock_.now() + 4s);
  EXPECT_TRUE(flaky.subjects().empty());

  // Meanwhile the other subscriber keeps receiving.
  publish(*db_, *bus, "ticket.updated", "T-4");
  EXPECT_EQ(bus->dispatch_once(), 1);
  EXPECT_EQ(steady.size(), 4u);

  // Restart: a new process, new bus, same database. The back-off deadline survived.
  bus.reset();
  db_ = Database::open(url_);
  bus = std::make_unique<EventBus>(*db_, clock_, log_, settings);
  bus->subscribe("flaky", {"ticket.*"}, flaky_handler);
  bus->subscribe("steady", {"ticket.*"}, steady_handler);
  EXPECT_EQ(bus->dispatch_once(), 0);
  EXPECT_EQ(calls, expected_calls);

  clock_.advance(4s);
  EXPECT_EQ(bus->dispatch_once(), 0);  // still failing: the same event once more
  EXPECT_EQ(calls, ++expected_calls);
  EXPECT_EQ(bus->subscribers()[0].attempts, 6);

  failing = false;
  clock_.advance(4s);
  EXPECT_EQ(bus->dispatch_once(), 4);
  EXPECT_EQ(flaky.subjects(), (std::vector<std::string>{"T-1", "T-2", "T-3", "T-4"}));
  EXPECT_EQ(steady.size(), 4u);  // nothing delivered twice to the subscriber that kept up
  status = bus->subscribers();
  EXPECT_EQ(status[0].attempts, 0);
  EXPECT_EQ(status[0].next_attempt_at, std::nullopt);
  EXPECT_EQ(status[0].last_error, "");
  EXPECT_EQ(status[0].backlog, 0);
}

TEST_P(EventBusTest, AFailureHoldsBackOnlyLaterEventsOfThatSubscriber) {
  EventBus bus(*db_, clock_, log_);
  Received got;
  bus.subscribe("picky", {"a.*"}, [&](const Event& e) {
    if (e.subject == "bad") throw BoomError();
    got.add(e);
  });
  publish(*db_, bus, "a.x", "good-1");
  publish(*db_, bus, "b.x", "other");
  publish(*db_, bus, "a.x", "bad");
  publish(*db_, bus, "a.x", "good-2");

  EXPECT_EQ(bus.dispatch_once(), 1);
  EXPECT_EQ(got.subjects(), std::vector<std::string>{"good-1"});  // never past "bad"
  EXPECT_EQ(bus.backlog("picky"), 2);
  clock_.advance(1h);
  EXPECT_EQ(bus.dispatch_once(), 0);
  EXPECT_EQ(got.subjects(), std::vector<std::string>{"good-1"});
}

std::vector<std::string> stored_subjects(Store& store) {
  std::vector<std::string> out;
  for (const auto& row : store.query("SELECT subject FROM events ORDER BY id")) {
    out.push_back(row.text(0));
  }
  return out;
}

// Retention: an event goes once it is older than the cut and every subscriber has handled
// it; one that a failing subscriber still waits for stays, and so does every later one.
TEST_P(EventBusTest, PruneDeletesOnlyOldEventsEverySubscriberHandled) {
  EventBus bus(*db_, clock_, log_);
  Received audit, billing;
  std::atomic<bool> failing{true};
  bus.subscribe("audit", {"*"}, [&](const Event& e) { audit.add(e); });
  bus.subscribe("billing", {"credit.*"}, [&](const Event& e) {
    if (failing && e.subject == "C-2") throw BoomError();
    billing.add(e);
  });
  publish(*db_, bus, "ticket.created", "T-1");
  publish(*db_, bus, "credit.approved", "C-1");
  publish(*db_, bus, "credit.approved", "C-2");
  publish(*db_, bus, "ticket.created", "T-3");
  clock_.advance(std::chrono::days(40));
  publish(*db_, bus, "ticket.created", "T-4");
  bus.dispatch_once();
  EXPECT_EQ(audit.size(), 5u);
  EXPECT_EQ(billing.subjects(), std::vector<std::string>{"C-1"});

  const Instant cut = clock_.now() - std::chrono::days(30);
  EXPECT_EQ(bus.prune(cut), 2);  // T-1 and C-1; billing has not handled C-2
  EXPECT_EQ(stored_subjects(*db_), (std::vector<std::string>{"C-2", "T-3", "T-4"}));
  EXPECT_TRUE(
      log_.contains("2 events past their days are kept until subscriber 'billing'", "warning"));
  EXPECT_EQ(bus.prune(cut), 0);
  log_.clear();

  failing = false;
  clock_.advance(1h);  // past billing's back-off
  EXPECT_EQ(bus.dispatch_once(), 1);
  EXPECT_EQ(billing.subjects(), (std::vector<std::string>{"C-1", "C-2"}));
  EXPECT_EQ(bus.prune(cut), 2);  // C-2 and T-3; T-4 is younger than the cut
  EXPECT_EQ(stored_subjects(*db_), std::vector<std::string>{"T-4"});
  EXPECT_FALSE(log_.contains("past their days"));
  EXPECT_EQ(bus.backlog("audit"), 0);
  EXPECT_EQ(bus.backlog("billing"), 0);

  // Later events are delivered as before.
  publish(*db_, bus, "credit.approved", "C-5");
  EXPECT_EQ(bus.dispatch_once(), 2);
  EXPECT_EQ(billing.subjects(), (std::vector<std::string>{"C-1", "C-2", "C-5"}));
}

// Many events go in batches; with no subscriber at all every old event goes.
TEST_P(EventBusTest, PruneWorksInBatchesAndWithoutSubscribers) {
  EventBus bus(*db_, clock_, log_);
  const std::int64_t many = kCleanupBatch + 5;
  db_->transact([&](Tx& tx) {
    for (std::int64_t n = 0; n < many; ++n) {
      bus.publish(tx, "ticket.created", "T-" + std::to_string(n), Json::object());
    }
  });
  clock_.advance(std::chrono::days(2));
  publish(*db_, bus, "ticket.created", "young");
  EXPECT_EQ(bus.prune(clock_.now() - std::chrono::days(1)), many);
  EXPECT_EQ(stored_subjects(*db_), std::vector<std::string>{"young"});
}

TEST_P(EventBusTest, ANewSubscriberStartsAfterTheEventsAlreadyPublished) {
  {
    EventBus first(*db_, clock_, log_);
    publish(*db_, first, "ticket.created", "old");
  }
  EventBus bus(*db_, clock_, log_);
  Received got;
  bus.subscribe("late", {"ticket.*"}, [&](const Event& e) { got.add(e); });
  publish(*db_, bus, "ticket.created", "new");
  bus.dispatch_once();
  EXPECT_EQ(got.subjects(), std::vector<std::string>{"new"});
}

// One that must see every event of its kind (billing's approved credits, when billing is
// enabled after the workflows) starts at the oldest event kept, once: then its cursor rules.
TEST_P(EventBusTest, ASubscriberMayStartAtTheOldestEventKept) {
  {
    EventBus first(*db_, clock_, log_);
    publish(*db_, first, "credit.approved", "old");
    publish(*db_, first, "ticket.created", "other");
  }
  Received got;
  {
    EventBus bus(*db_, clock_, log_);
    bus.subscribe(
        "billing", {"credit.*"}, [&](const Event& e) { got.add(e); }, StartAt::oldest);
    publish(*db_, bus, "credit.approved", "new");
    bus.dispatch_once();
    EXPECT_EQ(got.subjects(), (std::vector<std::string>{"old", "new"}));
  }
  EventBus again(*db_, clock_, log_);
  again.subscribe(
      "billing", {"credit.*"}, [&](const Event& e) { got.add(e); }, StartAt::oldest);
  publish(*db_, again, "credit.approved", "newer");
  again.dispatch_once();
  EXPECT_EQ(got.subjects(), (std::vector<std::string>{"old", "new", "newer"}));
}

// On a store with no event yet too: the first one published is its first.
TEST_P(EventBusTest, ASubscriberStartingAtTheOldestOnAnEmptyStoreGetsTheFirstEvent) {
  EventBus bus(*db_, clock_, log_);
  Received got;
  bus.subscribe(
      "billing", {"credit.*"}, [&](const Event& e) { got.add(e); }, StartAt::oldest);
  publish(*db_, bus, "credit.approved", "first");
  EXPECT_EQ(bus.dispatch_once(), 1);
  EXPECT_EQ(got.subjects(), std::vector<std::string>{"first"});
}

// A subscriber to a rare type catches up in one round however many events of other types
// came before, rather than a batch (100) a round.
TEST_P(EventBusTest, ARoundSkipsEveryBatchOfNothingForTheSubscriber) {
  EventBus bus(*db_, clock_, log_);
  Received got;
  bus.subscribe(
      "rare", {"credit.*"}, [&](const Event& e) { got.add(e); }, StartAt::oldest);
  db_->transact([&](Tx& tx) {
    for (int i = 0; i < 350; ++i) bus.publish(tx, "ticket.created", "t", Json::object());
    bus.publish(tx, "credit.approved", "c", Json::object());
  });
  EXPECT_EQ(bus.dispatch_once(), 1);
  EXPECT_EQ(got.subjects(), std::vector<std::string>{"c"});
}

TEST_P(EventBusTest, RefusesBadSubscriptions) {
  EventBus bus(*db_, clock_, log_);
  auto handler = [](const Event&) {};
  bus.subscribe("one", {"a.b"}, handler);
  EXPECT_THROW(bus.subscribe("one", {"a.c"}, handler), std::invalid_argument);
  EXPECT_THROW(bus.subscribe("", {"a.c"}, handler), std::invalid_argument);
  EXPECT_THROW(bus.subscribe("two", {}, handler), std::invalid_argument);
  for (const auto* pattern : {"a*", "*.b", "a.*.c", "", ".*"}) {
    EXPECT_THROW(bus.subscribe("two", {pattern}, handler), std::invalid_argument) << pattern;
  }
  EXPECT_THROW(bus.subscribe("two", {"a.b"}, nullptr), std::invalid_argument);
  bus.start();
  EXPECT_THROW(bus.subscribe("two", {"a.b"}, handler), std::logic_error);
  bus.stop();
  EXPECT_THROW(db_->transact([&](Tx& tx) { bus.publish(tx, "", "x", {}); }), std::invalid_argument);
}

// Many writers publishing at once while the dispatcher runs: every event arrives once, in
// id order. On PostgreSQL this fails without the publishers' lock, when a later id
// commits first and the cursor passes over the earlier one.
TEST_P(EventBusTest, ConcurrentPublishersLoseNothing) {
  constexpr int kWriters = 4;
  constexpr int kEventsEach = 40;
  EventBus bus(*db_, clock_, log_, EventBusSettings{.poll_interval = 1ms});
  Received got;
  bus.subscribe("all", {"load.*"}, [&](const Event& e) { got.add(e); });
  bus.start();

  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kEventsEach; ++i) {
        db_->transact([&](Tx& tx) {
          bus.publish(tx, "load.tick", std::to_string(w) + "/" + std::to_string(i), {});
          // Stay in the transaction a little, so commits interleave with other writers.
          if (i % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
        });
      }
    });
  }
  for (auto& t : writers) t.join();
  // Waits for the dispatcher thread to catch up, not for a deadline.
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (got.size() < kWriters * kEventsEach && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(5ms);
  }
  bus.stop();

  ASSERT_EQ(got.size(), static_cast<std::size_t>(kWriters * kEventsEach));
  std::set<std::string> distinct;
  for (std::size_t i = 0; i < got.events.size(); ++i) {
    distinct.insert(got.events[i].subject);
    if (i > 0) {
      EXPECT_LT(got.events[i - 1].id, got.events[i].id);
    }
  }
  EXPECT_EQ(distinct.size(), got.events.size());
  EXPECT_EQ(bus.backlog("all"), 0);
}

// ---- several instances on one store ----------------------------------------------------

EventBusSettings instance(const std::string& name) {
  return EventBusSettings{.instance = name, .lease = 30s};
}

TEST_P(EventBusTest, TwoInstancesDeliverEachEventOnceInOrder) {
  EventBus a(*db_, clock_, log_, instance("a"));
  EventBus b(*db_, clock_, log_, instance("b"));
  Received got_a, got_b;
  a.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_a.add(e); });
  b.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_b.add(e); });
  for (int i = 1; i <= 10; ++i) {
    publish(*db_, a, "ticket.created", "T" + std::to_string(i));
    const int by_b = b.dispatch_once();
    const int by_a = a.dispatch_once();
    EXPECT_EQ(by_b + by_a, 1) << "event " << i;
  }
  // b came first and holds the subscriber; a never delivered to it.
  EXPECT_EQ(got_b.size(), 10u);
  EXPECT_EQ(got_a.size(), 0u);
  EXPECT_EQ(got_b.subjects().front(), "T1");
  EXPECT_EQ(got_b.subjects().back(), "T10");
  EXPECT_EQ(to_json(a.subscribers()[0])["holder"], "b");
}

TEST_P(EventBusTest, AnotherInstanceTakesOverWhenTheLeaseRunsOut) {
  EventBus a(*db_, clock_, log_, instance("a"));
  EventBus b(*db_, clock_, log_, instance("b"));
  Received got_a, got_b;
  a.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_a.add(e); });
  b.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_b.add(e); });
  publish(*db_, b, "ticket.created", "T1");
  EXPECT_EQ(a.dispatch_once(), 1);
  publish(*db_, b, "ticket.created", "T2");
  publish(*db_, b, "ticket.created", "T3");
  // From here a is as good as dead (killed: no stop(), its lease stays behind).

  clock_.advance(29s);
  EXPECT_EQ(b.dispatch_once(), 0);  // the lease is still a's
  clock_.advance(1s);
  EXPECT_EQ(b.dispatch_once(), 2);
  EXPECT_EQ(got_b.subjects(), (std::vector<std::string>{"T2", "T3"}));
  EXPECT_EQ(got_a.subjects(), (std::vector<std::string>{"T1"}));
  EXPECT_TRUE(log_.contains("took subscriber \"mailer\" over from instance \"a\"", "warning"));
}

TEST_P(EventBusTest, AHandlerThatOutlivesItsLeaseStopsAndItsEventIsDeliveredAgain) {
  EventBus a(*db_, clock_, log_, instance("a"));
  EventBus b(*db_, clock_, log_, instance("b"));
  Received got_a, got_b;
  a.subscribe("mailer", {"ticket.*"}, [&](const Event& e) {
    got_a.add(e);
    if (e.subject == "T2") {
      // a hangs (a pause, a slow mail server) past its lease; b takes over meanwhile, from
      // the cursor a saved when its round began.
      clock_.advance(31s);
      EXPECT_EQ(b.dispatch_once(), 3);
    }
  });
  b.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_b.add(e); });
  for (const char* subject : {"T1", "T2", "T3"}) publish(*db_, a, "ticket.created", subject);

  // T1 and T2 were handled; a finds its lease gone before T3 and stops.
  EXPECT_EQ(a.dispatch_once(), 2);
  EXPECT_EQ(got_a.subjects(), (std::vector<std::string>{"T1", "T2"}));
  EXPECT_EQ(got_b.subjects(), (std::vector<std::string>{"T1", "T2", "T3"}));
  EXPECT_TRUE(log_.contains("lost subscriber \"mailer\"", "warning"));
  EXPECT_EQ(a.dispatch_once(), 0);  // b holds it now
  EXPECT_EQ(b.backlog("mailer"), 0);
}

// A round's subscribers are delivered one after the other: a lease is judged when its
// subscriber's turn comes, not when the round began, or slow handlers before it could let it
// run out under its own handlers while another instance takes it over.
TEST_P(EventBusTest, ALeaseIsJudgedWhenItsSubscribersTurnComes) {
  EventBus a(*db_, clock_, log_, instance("a"));
  EventBus b(*db_, clock_, log_, instance("b"));
  Received got_b;
  a.subscribe("slow", {"ticket.*"}, [&](const Event& e) {
    if (e.subject == "T2") clock_.advance(10s);
  });
  a.subscribe("mailer", {"ticket.*"}, [&](const Event& e) {
    if (e.subject != "T2") return;
    clock_.advance(10s);  // a slow mail server
    EXPECT_EQ(b.dispatch_once(), 0) << "b took the subscriber over while a delivered to it";
  });
  b.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_b.add(e); });
  publish(*db_, a, "ticket.created", "T1");
  EXPECT_EQ(a.dispatch_once(), 2);  // both leases until +30 s
  clock_.advance(13s);
  publish(*db_, a, "ticket.created", "T2");
  // "mailer"'s turn comes at +23 s: 7 s left, so a renews before it delivers, and at +33 s,
  // inside its handler, the lease is still a's.
  EXPECT_EQ(a.dispatch_once(), 2);
  EXPECT_TRUE(got_b.subjects().empty());
}

TEST_P(EventBusTest, AStoppedInstanceGivesItsSubscribersUpAtOnce) {
  EventBus a(*db_, clock_, log_, instance("a"));
  EventBus b(*db_, clock_, log_, instance("b"));
  Received got_b;
  a.subscribe("mailer", {"ticket.*"}, [](const Event&) {});
  b.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got_b.add(e); });
  publish(*db_, a, "ticket.created", "T1");
  EXPECT_EQ(a.dispatch_once(), 1);
  a.stop();
  publish(*db_, a, "ticket.created", "T2");
  EXPECT_EQ(b.dispatch_once(), 1);  // no wait for the lease to run out
  EXPECT_EQ(got_b.subjects(), (std::vector<std::string>{"T2"}));
}

// The embedded store serves one process, so a restart under a new name (host:pid) need
// not wait out the lease its previous life left behind.
TEST_P(EventBusTest, ASoleInstanceReleasesLeasesLeftByItsPreviousLife) {
  Received got;
  EventBus crashed(*db_, clock_, log_, instance("host:100"));
  crashed.subscribe("mailer", {"ticket.*"}, [](const Event&) {});
  publish(*db_, crashed, "ticket.created", "T1");
  EXPECT_EQ(crashed.dispatch_once(), 1);
  // From here `crashed` is as good as dead (killed: no stop(), its lease stays behind).
  EventBusSettings settings = instance("host:200");
  settings.sole_instance = true;
  settings.poll_interval = 1h;  // only the round start() runs at once
  EventBus restarted(*db_, clock_, log_, settings);
  restarted.subscribe("mailer", {"ticket.*"}, [&](const Event& e) { got.add(e); });
  publish(*db_, restarted, "ticket.created", "T2");
  restarted.start();
  EXPECT_TRUE(test::eventually([&] { return got.size() == 1; }, 10s));
  restarted.stop();
  EXPECT_EQ(got.subjects(), (std::vector<std::string>{"T2"}));
}

TEST_P(EventBusTest, StopIsPromptWhileIdle) {
  EventBus bus(*db_, clock_, log_, EventBusSettings{.poll_interval = 1h});
  bus.subscribe("idle", {"*"}, [](const Event&) {});
  bus.start();
  std::this_thread::sleep_for(20ms);  // let the thread reach its wait
  const auto before = std::chrono::steady_clock::now();
  bus.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
}

INSTANTIATE_TEST_SUITE_P(Engines, EventBusTest, test::kBothEngines, engine_name);

}  // namespace
}  // namespace slmhub::host
