// The outbox on SQLite and PostgreSQL: messages are sent once, retried with back-off
// (driven by a ManualClock), turned into dead letters after max_attempts or at once on a
// PermanentFailure, deduplicated by key, never sent twice by two dispatchers, and kept
// pending while their channel has no sender.
#include "events/outbox.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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

using OutboxTest = StoreTest;

OutboxMessage mail(const std::string& to, const std::string& dedupe_key = {}) {
  OutboxMessage m;
  m.channel = "email";
  m.destination = to;
  m.subject = "Tech Alert: oracle-prod outage";
  m.body = "Service is degraded.";
  m.headers = Json{{"Reply-To", "noc@example.edu"}};
  m.dedupe_key = dedupe_key;
  return m;
}

void enqueue(Store& store, Outbox& outbox, const OutboxMessage& m) {
  store.transact([&](Tx& tx) { outbox.enqueue(tx, m); });
}

// Enqueues `count` messages in one transaction, subjects "0", "1", ..., to destination(i).
void enqueue_numbered(Store& store, Outbox& outbox, int count,
                      const std::function<std::string(int)>& destination) {
  store.transact([&](Tx& tx) {
    for (int i = 0; i < count; ++i) {
      OutboxMessage m = mail(destination(i));
      m.subject = std::to_string(i);
      outbox.enqueue(tx, m);
    }
  });
}

// Waits, up to 20 s, until the dispatcher thread has sent at least `count` messages.
void wait_until_sent(OutboxService& outbox, std::size_t count) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (outbox.list("sent", 1000).size() < count && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(5ms);
  }
}

// Waits, up to 10 s, until at most `count` messages are pending: in a sender, until the round
// after its own is claimed (the claim is made while the send runs, and on a slow store it can
// come after the send began).
void wait_until_pending_at_most(OutboxService& outbox, std::size_t count) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (outbox.list("pending", 100).size() > count && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
}

// Sends `count` numbered messages (enqueue_numbered) through a started `outbox`, with
// `before_send` called at the start of each send, until all are sent and a second send of
// any would have come; returns how many times each subject was sent.
std::map<std::string, int> times_sent(
    Store& store, OutboxService& outbox, int count,
    const std::function<std::string(int)>& destination,
    const std::function<void(const OutboxMessage&)>& before_send) {
  std::mutex mutex;
  std::map<std::string, int> sends;
  outbox.register_sender("email", [&](const OutboxMessage& m) {
    before_send(m);
    std::lock_guard lock(mutex);
    ++sends[m.subject];
  });
  enqueue_numbered(store, outbox, count, destination);
  outbox.start();
  wait_until_sent(outbox, static_cast<std::size_t>(count));
  std::this_thread::sleep_for(50ms);  // a second send would come now
  outbox.stop();
  return sends;
}

// Another instance's expiry taking claims back, as after claim_timeout: the messages being
// sent (those of them `and_where` keeps) are pending again, claimed by no one.
void take_back_claims(Store& store, const std::string& and_where = "") {
  store.transact([&](Tx& tx) {
    tx.exec(
        "UPDATE outbox SET state = 'pending', claim = NULL, claimed_at = NULL WHERE state = "
        "'sending'" +
        and_where);
  });
}

// Subjects "0" .. "count - 1", each sent once.
std::map<std::string, int> each_once(int count) {
  std::map<std::string, int> sends;
  for (int i = 0; i < count; ++i) sends[std::to_string(i)] = 1;
  return sends;
}

std::string own_destination(int i) { return "user" + std::to_string(i) + "@example.edu"; }

// Records what a sender was given; fails while `failures` > 0 (counting down).
struct RecordingSender {
  std::mutex mutex;
  std::vector<OutboxMessage> sent;
  int calls = 0;
  int failures = 0;
  bool permanent = false;

  std::function<void(const OutboxMessage&)> fn() {
    return [this](const OutboxMessage& m) {
      std::lock_guard lock(mutex);
      ++calls;
      if (failures > 0) {
        --failures;
        if (permanent) throw PermanentFailure("550 5.1.1 mailbox unknown");
        throw std::runtime_error("421 try again later");
      }
      sent.push_back(m);
    };
  }
};

Json only(const std::vector<Json>& list) {
  EXPECT_EQ(list.size(), 1u);
  return list.empty() ? Json() : list[0];
}

// ---- tests ----------------------------------------------------------------------------

TEST_P(OutboxTest, SendsAQueuedMessageOnce) {
  OutboxService outbox(*db_, clock_, log_, "test");
  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  enqueue(*db_, outbox, mail("dba@example.edu"));
  EXPECT_THROW(db_->transact([&](Tx& tx) {
    outbox.enqueue(tx, mail("rolled-back@example.edu"));
    throw std::runtime_error("the change failed");
  }),
               std::runtime_error);

  clock_.advance(5s);
  EXPECT_EQ(outbox.dispatch_once(), 1);
  EXPECT_EQ(outbox.dispatch_once(), 0);
  ASSERT_EQ(sender.sent.size(), 1u);
  const OutboxMessage& m = sender.sent[0];
  EXPECT_GT(m.id, 0);
  EXPECT_EQ(m.channel, "email");
  EXPECT_EQ(m.destination, "dba@example.edu");
  EXPECT_EQ(m.subject, "Tech Alert: oracle-prod outage");
  EXPECT_EQ(m.body, "Service is degraded.");
  EXPECT_EQ(m.headers, (Json{{"Reply-To", "noc@example.edu"}}));

  const Json row = only(outbox.list("", 10));
  EXPECT_EQ(row["state"], "sent");
  EXPECT_EQ(row["attempts"], 0);
  EXPECT_EQ(row["created_at"], "2026-11-02T09:00:00Z");
  EXPECT_EQ(row["sent_at"], "2026-11-02T09:00:05Z");
  EXPECT_EQ(row["dedupe_key"], nullptr);
  EXPECT_EQ(row["sender"], true);
}

TEST_P(OutboxTest, RetriesWithBackoffThenKeepsADeadLetterThatCanBeRetried) {
  OutboxService outbox(
      *db_, clock_, log_, "test",
      OutboxSettings{.max_attempts = 4, .initial_backoff = 10s, .max_backoff = 15s});
  RecordingSender sender;
  sender.failures = 4;
  outbox.register_sender("email", sender.fn());
  enqueue(*db_, outbox, mail("dba@example.edu"));

  // Attempt 1 now, then after 10 s, 15 s (capped), 15 s; the fourth failure is the last.
  EXPECT_EQ(outbox.dispatch_once(), 0);
  Json row = only(outbox.list("pending", 10));
  EXPECT_EQ(row["attempts"], 1);
  EXPECT_EQ(row["last_error"], "421 try again later");
  EXPECT_EQ(row["next_attempt_at"], "2026-11-02T09:00:10Z");
  int calls = 1;
  for (const auto wait : {10s, 15s, 15s}) {
    clock_.advance(wait - 1s);
    outbox.dispatch_once();
    EXPECT_EQ(sender.calls, calls) << "sent before its back-off of " << wait.count() << " s";
    clock_.advance(1s);
    outbox.dispatch_once();
    EXPECT_EQ(sender.calls, ++calls) << "not sent after its back-off of " << wait.count() << " s";
  }
  EXPECT_TRUE(outbox.list("pending", 10).empty());
  row = only(outbox.list("dead", 10));
  EXPECT_EQ(row["attempts"], 4);
  EXPECT_EQ(row["last_error"], "421 try again later");
  EXPECT_TRUE(log_.contains("dead letter after 4 attempt(s)", "error"));

  clock_.advance(1h);  // a dead letter stays dead
  EXPECT_EQ(outbox.dispatch_once(), 0);
  EXPECT_EQ(sender.calls, 4);

  const std::int64_t id = row["id"];
  EXPECT_FALSE(outbox.retry(id + 1000));
  EXPECT_TRUE(outbox.retry(id));
  EXPECT_FALSE(outbox.retry(id));  // pending now, not dead
  EXPECT_EQ(outbox.dispatch_once(), 1);
  row = only(outbox.list("sent", 10));
  EXPECT_EQ(row["attempts"], 0);
  EXPECT_EQ(row["last_error"], nullptr);
}

TEST_P(OutboxTest, PermanentFailureIsADeadLetterAtOnce) {
  OutboxService outbox(*db_, clock_, log_, "test");
  RecordingSender sender;
  sender.failures = 1;
  sender.permanent = true;
  outbox.register_sender("email", sender.fn());
  enqueue(*db_, outbox, mail("nobody@example.edu"));

  EXPECT_EQ(outbox.dispatch_once(), 0);
  const Json row = only(outbox.list("dead", 10));
  EXPECT_EQ(row["attempts"], 1);
  EXPECT_EQ(row["last_error"], "550 5.1.1 mailbox unknown");
  clock_.advance(24h);
  outbox.dispatch_once();
  EXPECT_EQ(sender.calls, 1);
}

TEST_P(OutboxTest, ASecondEnqueueWithTheSameKeyIsANoOp) {
  OutboxService outbox(*db_, clock_, log_, "test");
  enqueue(*db_, outbox, mail("a@example.edu", "alert-42/a@example.edu"));
  enqueue(*db_, outbox, mail("a@example.edu", "alert-42/a@example.edu"));
  db_->transact([&](Tx& tx) {
    outbox.enqueue(tx, mail("b@example.edu", "alert-42/b@example.edu"));
    outbox.enqueue(tx, mail("b@example.edu", "alert-42/b@example.edu"));
  });
  enqueue(*db_, outbox, mail("c@example.edu"));  // no key: never deduplicated
  enqueue(*db_, outbox, mail("c@example.edu"));

  const auto rows = outbox.list("pending", 100);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3]["dedupe_key"], "alert-42/a@example.edu");  // newest first
  EXPECT_EQ(rows[2]["dedupe_key"], "alert-42/b@example.edu");
  EXPECT_EQ(rows[0]["dedupe_key"], nullptr);

  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  EXPECT_EQ(outbox.dispatch_once(), 4);
  enqueue(*db_, outbox, mail("a@example.edu", "alert-42/a@example.edu"));  // after sending too
  EXPECT_EQ(outbox.dispatch_once(), 0);
  EXPECT_EQ(sender.sent.size(), 4u);
}

// Retention: a sent message past its days goes, unless it has a dedupe key: then its row
// stays without body and headers, and still stops the same message from being queued again.
// Pending and dead messages stay whole.
TEST_P(OutboxTest, PruneDeletesOldSentMessagesAndKeepsTheirDedupeKeys) {
  OutboxService outbox(*db_, clock_, log_, "test");
  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  enqueue(*db_, outbox, mail("a@example.edu", "alert-42/a@example.edu"));
  enqueue(*db_, outbox, mail("b@example.edu"));
  EXPECT_EQ(outbox.dispatch_once(), 2);
  sender.failures = 1;
  sender.permanent = true;
  enqueue(*db_, outbox, mail("dead@example.edu"));
  EXPECT_EQ(outbox.dispatch_once(), 0);
  ASSERT_EQ(outbox.list("dead", 10).size(), 1u);
  clock_.advance(std::chrono::days(40));
  enqueue(*db_, outbox, mail("young@example.edu"));
  EXPECT_EQ(outbox.dispatch_once(), 1);
  enqueue(*db_, outbox, mail("waiting@example.edu"));  // not dispatched: stays pending

  const Instant cut = clock_.now() - std::chrono::days(30);
  const OutboxService::Pruned pruned = outbox.prune(cut);
  EXPECT_EQ(pruned.deleted, 1);  // b@
  EXPECT_EQ(pruned.emptied, 1);  // a@, kept for its key
  const auto sent = outbox.list("sent", 10);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0]["destination"], "young@example.edu");
  EXPECT_EQ(sent[0]["body"], "Service is degraded.");
  EXPECT_EQ(sent[1]["destination"], "a@example.edu");
  EXPECT_EQ(sent[1]["subject"], "Tech Alert: oracle-prod outage");
  EXPECT_EQ(sent[1]["dedupe_key"], "alert-42/a@example.edu");
  EXPECT_EQ(sent[1]["body"], "");
  EXPECT_EQ(sent[1]["headers"], Json::object());
  EXPECT_EQ(outbox.list("dead", 10).size(), 1u);
  EXPECT_EQ(only(outbox.list("pending", 10))["destination"], "waiting@example.edu");

  const OutboxService::Pruned again = outbox.prune(cut);
  EXPECT_EQ(again.deleted, 0);
  EXPECT_EQ(again.emptied, 0);
  // The key still holds: the same alert is not queued, nor sent, a second time.
  enqueue(*db_, outbox, mail("a@example.edu", "alert-42/a@example.edu"));
  EXPECT_EQ(outbox.list("pending", 10).size(), 1u);
}

// Many sent messages go in batches.
TEST_P(OutboxTest, PruneWorksInBatches) {
  OutboxService outbox(*db_, clock_, log_, "test");
  const int many = static_cast<int>(kCleanupBatch) + 3;
  enqueue_numbered(*db_, outbox, many,
                   [](int i) { return "r" + std::to_string(i) + "@example.edu"; });
  db_->transact([&](Tx& tx) {
    tx.exec("UPDATE outbox SET state = 'sent', sent_at = ?", {to_epoch(clock_.now())});
  });
  clock_.advance(std::chrono::days(2));
  EXPECT_EQ(outbox.prune(clock_.now() - std::chrono::days(1)).deleted, many);
  EXPECT_TRUE(outbox.list("", 10).empty());
}

TEST_P(OutboxTest, AMessageWithoutASenderStaysPendingAndVisible) {
  OutboxService outbox(*db_, clock_, log_, "test");
  RecordingSender mailer;
  outbox.register_sender("email", mailer.fn());
  OutboxMessage hook = mail("https://hooks.example.edu/alerts");
  hook.channel = "webhook";
  enqueue(*db_, outbox, hook);
  enqueue(*db_, outbox, mail("dba@example.edu"));

  EXPECT_EQ(outbox.dispatch_once(), 1);
  clock_.advance(24h);
  EXPECT_EQ(outbox.dispatch_once(), 0);
  Json row = only(outbox.list("pending", 10));
  EXPECT_EQ(row["channel"], "webhook");
  EXPECT_EQ(row["sender"], false);
  EXPECT_EQ(row["attempts"], 0);

  RecordingSender webhooks;
  outbox.register_sender("webhook", webhooks.fn());
  EXPECT_THROW(outbox.register_sender("webhook", webhooks.fn()), std::invalid_argument);
  EXPECT_EQ(outbox.dispatch_once(), 1);
  ASSERT_EQ(webhooks.sent.size(), 1u);
  EXPECT_EQ(webhooks.sent[0].destination, "https://hooks.example.edu/alerts");
}

// Two instances (own Database, own OutboxService) dispatching the same queue at once:
// each message is sent exactly once.
TEST_P(OutboxTest, TwoDispatchersNeverSendAMessageTwice) {
  constexpr int kMessages = 30;
  auto other_db = Database::open(url_);
  OutboxService first(*db_, clock_, log_, "first");
  OutboxService second(*other_db, clock_, log_, "second");
  std::mutex mutex;
  std::map<std::int64_t, int> sends;
  auto count = [&](const OutboxMessage& m) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // a send takes a while
    std::lock_guard lock(mutex);
    ++sends[m.id];
  };
  first.register_sender("email", count);
  second.register_sender("email", count);
  for (int i = 0; i < kMessages; ++i) {
    enqueue(*db_, first, mail("user" + std::to_string(i) + "@example.edu"));
  }

  std::atomic<int> sent{0};
  std::atomic<bool> go{false};
  auto drain = [&](OutboxService& outbox) {
    while (!go) std::this_thread::yield();
    // Until nothing is left to claim (the rest may be in the other dispatcher's hands).
    while (!outbox.list("pending", 1).empty()) sent += outbox.dispatch_once();
  };
  std::thread a([&] { drain(first); });
  std::thread b([&] { drain(second); });
  go = true;
  a.join();
  b.join();

  EXPECT_EQ(sent, kMessages);
  EXPECT_EQ(first.list("sent", 100).size(), static_cast<std::size_t>(kMessages));
  ASSERT_EQ(sends.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [id, times] : sends) EXPECT_EQ(times, 1) << "message " << id;
}

// Two instances sharing the store never send to one destination at once, so its messages
// arrive in the order they were queued: a destination the other instance is sending to is
// left out of a claim, the rest is claimed as usual. Both have one name, as a restarted
// instance and a copy may: their claims are told apart all the same.
TEST_P(OutboxTest, ADestinationAnotherInstanceIsSendingToWaitsForIt) {
  auto other_db = Database::open(url_);
  OutboxService first(*db_, clock_, log_, "slmhub", OutboxSettings{.batch_size = 1});
  OutboxService second(*other_db, clock_, log_, "slmhub");
  std::mutex mutex;
  std::condition_variable changed;
  bool holding = false;  // the first instance is sending, and waits for `go`
  bool go = false;
  std::vector<std::string> sent;  // subjects, in the order they were sent
  first.register_sender("email", [&](const OutboxMessage& m) {
    std::unique_lock lock(mutex);
    holding = true;
    changed.notify_all();
    changed.wait(lock, [&] { return go; });
    sent.push_back(m.subject);
  });
  second.register_sender("email", [&](const OutboxMessage& m) {
    std::lock_guard lock(mutex);
    sent.push_back(m.subject);
  });
  enqueue_numbered(*db_, first, 3,
                   [](int i) { return i < 2 ? "dba@example.edu" : "noc@example.edu"; });
  std::thread sending([&] {
    try {
      EXPECT_EQ(first.dispatch_once(), 1);  // "0", to dba@
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  });
  bool held = false;
  {
    std::unique_lock lock(mutex);
    held = changed.wait_for(lock, 10s, [&] { return holding; });
  }
  EXPECT_TRUE(held) << "the first instance did not start sending";
  if (held) {
    int sent_now = 0;  // an exception here must not leave the first instance waiting
    EXPECT_NO_THROW(sent_now = second.dispatch_once());
    EXPECT_EQ(sent_now, 1);  // "2", to noc@; "1" waits for "0"
  }
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(sent, std::vector<std::string>{"2"});
    go = true;
  }
  changed.notify_all();
  sending.join();
  EXPECT_EQ(second.dispatch_once(), 1);
  EXPECT_EQ(sent, (std::vector<std::string>{"2", "0", "1"}));
}

// A dispatcher that died after claiming a message: the claim expires and another
// dispatcher sends it, counting the lost claim as an attempt.
TEST_P(OutboxTest, AStaleClaimIsRetriedAfterTheClaimTimeout) {
  OutboxService outbox(*db_, clock_, log_, "test", OutboxSettings{.claim_timeout = 300s});
  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  enqueue(*db_, outbox, mail("dba@example.edu"));
  db_->transact([&](Tx& tx) {
    EXPECT_EQ(tx.exec("UPDATE outbox SET state = 'sending', claim = 'crashed#1', claimed_at = ?",
                      {clock_.now().time_since_epoch().count()}),
              1);
  });

  clock_.advance(299s);
  EXPECT_EQ(outbox.dispatch_once(), 0);
  EXPECT_EQ(only(outbox.list("sending", 10))["id"], only(outbox.list("", 10))["id"]);
  clock_.advance(1s);
  EXPECT_EQ(outbox.dispatch_once(), 1);
  const Json row = only(outbox.list("sent", 10));
  EXPECT_EQ(row["attempts"], 1);
  ASSERT_EQ(sender.sent.size(), 1u);
}

// A dispatcher that died while sending a round, with the next round claimed ahead: only the
// round under way is charged an attempt. The round claimed ahead was never tried, so its
// messages, one attempt from dead, are sent, not made dead letters unsent.
TEST_P(OutboxTest, ARoundClaimedAheadByADispatcherThatDiedIsChargedNoAttempt) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.max_attempts = 3, .claim_timeout = 300s});
  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  for (int i = 0; i < 4; ++i) enqueue(*db_, outbox, mail(own_destination(i)));
  const auto ids = [&] {
    std::vector<std::int64_t> out;
    for (const auto& row : db_->query("SELECT id FROM outbox ORDER BY id")) {
      out.push_back(row.integer(0));
    }
    return out;
  }();
  ASSERT_EQ(ids.size(), 4u);
  db_->transact([&](Tx& tx) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      // Rounds 9 (under way) and 10 (claimed ahead): 10 sorts before 9 as text.
      tx.exec(
          "UPDATE outbox SET state = 'sending', attempts = 2, claimed_at = ?, claim = ? WHERE id "
          "= ?",
          {clock_.now().time_since_epoch().count(),
           std::string(i < 2 ? "crashed#5f3a-9" : "crashed#5f3a-10"), ids[i]});
    }
  });

  clock_.advance(300s);
  EXPECT_EQ(outbox.dispatch_once(), 2);
  const auto state_of = [&](std::int64_t id) {
    return db_->query("SELECT state, attempts FROM outbox WHERE id = ?", {id}).at(0);
  };
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto row = state_of(ids[i]);
    EXPECT_EQ(row.text(0), i < 2 ? "dead" : "sent") << i;
    EXPECT_EQ(row.integer(1), i < 2 ? 3 : 2) << i;
  }
  ASSERT_EQ(sender.sent.size(), 2u);
  EXPECT_EQ(sender.sent[0].destination, own_destination(2));
  EXPECT_TRUE(
      log_.contains("4 message(s) claimed by a dispatcher that stopped are 2 dead (out "
                    "of attempts) and 2 pending again (2 of them claimed ahead and never "
                    "tried, charged no attempt)",
                    "warning"));
}

TEST_P(OutboxTest, TheDispatcherThreadSendsAndStopsPromptly) {
  OutboxService outbox(*db_, clock_, log_, "test", OutboxSettings{.poll_interval = 5ms});
  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  outbox.start();
  enqueue(*db_, outbox, mail("dba@example.edu"));
  // Waits for the thread to pick the message up, not for a deadline.
  wait_until_sent(outbox, 1);
  const auto before = std::chrono::steady_clock::now();
  outbox.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  EXPECT_EQ(sender.sent.size(), 1u);
}

// A channel's own delivery log is written in the transaction that records the outcome: it
// sees each attempt with what the outbox decided, and when it throws, the outcome is still
// recorded (without it) and the error logged.
TEST_P(OutboxTest, AChannelRecordsEachAttemptWithTheOutcome) {
  db_->migrate("test.delivery_log",
               {{1, "a channel's delivery log",
                 "CREATE TABLE delivery_log (seq {{serial}}, message BIGINT, delivered INTEGER,"
                 " permanent INTEGER, dead INTEGER, error TEXT)"}});
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.max_attempts = 2, .initial_backoff = 10s});
  RecordingSender sender;
  sender.failures = 2;
  outbox.register_sender("email", sender.fn(),
                         [](Tx& tx, const OutboxMessage& m, const SendOutcome& o) {
                           if (m.destination == "broken-log@example.edu") {
                             tx.exec("INSERT INTO no_such_table VALUES (1)");
                           }
                           tx.exec(
                               "INSERT INTO delivery_log (message, delivered, permanent,"
                               " dead, error) VALUES (?, ?, ?, ?, ?)",
                               {m.id, std::int64_t{o.delivered}, std::int64_t{o.permanent},
                                std::int64_t{o.dead}, o.error});
                         });
  enqueue(*db_, outbox, mail("dba@example.edu"));
  EXPECT_EQ(outbox.dispatch_once(), 0);  // fails, retried
  clock_.advance(10s);
  EXPECT_EQ(outbox.dispatch_once(), 0);  // fails again: out of attempts
  enqueue(*db_, outbox, mail("ops@example.edu"));
  EXPECT_EQ(outbox.dispatch_once(), 1);
  const auto log = db_->query(
      "SELECT message, delivered, permanent, dead, error FROM delivery_log ORDER BY seq");
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].integer(1), 0);
  EXPECT_EQ(log[0].integer(3), 0);
  EXPECT_EQ(log[0].text(4), "421 try again later");
  EXPECT_EQ(log[1].integer(3), 1);  // the second failure was the last attempt
  EXPECT_EQ(log[1].integer(2), 0);
  EXPECT_EQ(log[2].integer(1), 1);
  EXPECT_EQ(log[2].text(4), "");
  EXPECT_EQ(log[2].integer(0), only(outbox.list("sent", 10))["id"]);

  enqueue(*db_, outbox, mail("broken-log@example.edu"));
  EXPECT_EQ(outbox.dispatch_once(), 1);
  EXPECT_EQ(outbox.list("sent", 10).size(), 2u);  // recorded, once
  EXPECT_EQ(sender.sent.size(), 2u);
  EXPECT_EQ(db_->query("SELECT COUNT(*) FROM delivery_log")[0].integer(0), 3);
  EXPECT_TRUE(log_.contains("could not record message", "error"));
}

// Several lanes send at once; the messages to one destination still go one at a time, in the
// order they were queued.
TEST_P(OutboxTest, LanesSendAtOnceAndKeepEachDestinationInOrder) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.batch_size = 40, .concurrency = 4});
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> received;  // destination -> subjects
  std::map<std::string, int> busy;                           // destination -> sends under way
  int running = 0;
  int most = 0;
  bool overlapped = false;
  outbox.register_sender("email", [&](const OutboxMessage& m) {
    {
      std::lock_guard lock(mutex);
      most = std::max(most, ++running);
      overlapped = overlapped || ++busy[m.destination] > 1;
    }
    std::this_thread::sleep_for(5ms);
    std::lock_guard lock(mutex);
    --running;
    --busy[m.destination];
    received[m.destination].push_back(m.subject);
  });
  enqueue_numbered(*db_, outbox, 40,
                   [](int i) { return "user" + std::to_string(i % 5) + "@example.edu"; });
  EXPECT_EQ(outbox.dispatch_once(), 40);
  EXPECT_GE(most, 2);
  EXPECT_FALSE(overlapped) << "two messages to one destination were sent at once";
  ASSERT_EQ(received.size(), 5u);
  for (const auto& [destination, subjects] : received) {
    ASSERT_EQ(subjects.size(), 8u) << destination;
    for (std::size_t k = 1; k < subjects.size(); ++k) {
      EXPECT_LT(std::stoi(subjects[k - 1]), std::stoi(subjects[k])) << destination;
    }
  }
}

// A lane writes a message's outcome while its next message is under way (the sender calls
// Meanwhile before the receiver can accept it), never later: a kill leaves at most one
// delivered message per lane unrecorded. A sender that fails before calling it has the
// previous outcome written all the same, and a sender that takes only the message gets it
// once the previous outcome is written.
TEST_P(OutboxTest, EachOutcomeIsWrittenDuringTheNextSend) {
  OutboxService outbox(*db_, clock_, log_, "test");  // one lane
  const auto states = [&] {
    std::vector<Json> rows = outbox.list("", 10);
    std::string text;
    for (auto row = rows.rbegin(); row != rows.rend(); ++row) {
      text += (text.empty() ? "" : " ") + (*row)["state"].get<std::string>();
    }
    return text;
  };
  std::vector<std::string> seen;
  outbox.register_sender("email",
                         OutboxSender([&](const OutboxMessage& m, const Meanwhile& meanwhile) {
                           seen.push_back(m.subject + ": " + states());
                           if (m.subject == "3") throw PermanentFailure("550 refused before MAIL");
                           meanwhile();
                           meanwhile();  // calls after the first do nothing
                           seen.push_back(m.subject + " meanwhile: " + states());
                         }),
                         {});
  outbox.register_sender(
      "webhook", [&](const OutboxMessage& m) { seen.push_back(m.subject + ": " + states()); });
  db_->transact([&](Tx& tx) {
    for (int i = 1; i <= 5; ++i) {
      OutboxMessage m = mail("user" + std::to_string(i) + "@example.edu");
      m.subject = std::to_string(i);
      if (i == 5) m.channel = "webhook";
      outbox.enqueue(tx, m);
    }
  });
  EXPECT_EQ(outbox.dispatch_once(), 4);
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "1: sending sending sending sending sending",
                      "1 meanwhile: sending sending sending sending sending",
                      "2: sending sending sending sending sending",
                      "2 meanwhile: sent sending sending sending sending",
                      "3: sent sending sending sending sending",
                      "4: sent sent sending sending sending",
                      "4 meanwhile: sent sent dead sending sending",
                      "5: sent sent dead sent sending",
                  }));
  EXPECT_EQ(states(), "sent sent dead sent sent");
}

// The dispatcher claims the next round's messages while a full round is being sent, so the
// lanes do not wait for that transaction; a destination's messages still go in order across
// rounds, since a round starts when the one before it has ended.
TEST_P(OutboxTest, TheNextRoundIsClaimedWhileOneIsSent) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.poll_interval = 5ms, .batch_size = 4, .concurrency = 2});
  std::atomic<int> sends{0};
  std::atomic<bool> claimed_ahead{false};
  std::mutex mutex;
  std::map<std::string, std::vector<int>> received;  // destination -> subjects, in send order
  outbox.register_sender("email", [&](const OutboxMessage& m) {
    if (++sends == 1) {  // the first send waits until the second round is claimed
      const auto give_up = std::chrono::steady_clock::now() + 10s;
      while (!(claimed_ahead = outbox.list("pending", 100).size() <= 4) &&
             std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
      }
    }
    std::lock_guard lock(mutex);
    received[m.destination].push_back(std::stoi(m.subject));
  });
  enqueue_numbered(*db_, outbox, 12,
                   [](int i) { return "user" + std::to_string(i % 3) + "@example.edu"; });
  outbox.start();
  wait_until_sent(outbox, 12);
  outbox.stop();
  EXPECT_TRUE(claimed_ahead) << "the second round was not claimed during the first";
  EXPECT_EQ(outbox.list("sent", 100).size(), 12u);
  ASSERT_EQ(received.size(), 3u);
  for (const auto& [destination, subjects] : received) {
    ASSERT_EQ(subjects.size(), 4u) << destination;
    EXPECT_TRUE(std::is_sorted(subjects.begin(), subjects.end())) << destination;
  }
}

// A round claimed while a slow round was sent can wait past the claim timeout, when another
// instance (or this one's next claim) may take its messages back: it is given back and
// claimed afresh, not sent with a claim that is no longer its own.
TEST_P(OutboxTest, ARoundClaimedAheadThatWaitedPastTheClaimTimeoutIsClaimedAgain) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.claim_timeout = 30s, .poll_interval = 5ms, .batch_size = 2});
  const auto sends = times_sent(*db_, outbox, 6, own_destination, [&](const OutboxMessage& m) {
    if (m.subject == "0") {
      // The first round outlasts the claim timeout, once the round after it is claimed.
      wait_until_pending_at_most(outbox, 2);
      clock_.advance(31s);
    }
  });
  EXPECT_EQ(sends, each_once(6));
  for (const Json& row : outbox.list("", 100)) {
    EXPECT_EQ(row["state"], "sent") << row.dump();
    EXPECT_EQ(row["attempts"], 0) << row.dump();
  }
  EXPECT_FALSE(log_.contains("claimed by a dispatcher that stopped", "warning"));
  EXPECT_TRUE(log_.contains("claimed ahead and kept past the claim timeout", "info"));
}

// The round claimed ahead waits under its own claim while the round before is sent: renewing
// that round's claim renews it too, or another instance would take its messages back, never
// tried, and charge each an attempt.
TEST_P(OutboxTest, RenewingARoundsClaimRenewsTheRoundClaimedAhead) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.claim_timeout = 3s, .poll_interval = 5ms, .batch_size = 2});
  std::int64_t renewed_at = 0;
  std::optional<std::int64_t> ahead_claimed_at;
  const auto sends = times_sent(
      *db_, outbox, 4, [](int) { return "user@example.edu"; },
      [&](const OutboxMessage& m) {
        if (m.subject == "0") {
          wait_until_pending_at_most(outbox, 0);  // "2" and "3" are claimed ahead
          std::this_thread::sleep_for(1100ms);    // a third of the claim timeout: renewed at "1"
          clock_.advance(2s);
          renewed_at = to_epoch(clock_.now());
        } else if (m.subject == "1") {
          ahead_claimed_at =
              db_->query("SELECT MIN(claimed_at) FROM outbox WHERE subject IN ('2', '3')")[0]
                  .integer(0);
        }
      });
  EXPECT_EQ(sends, each_once(4));
  ASSERT_TRUE(ahead_claimed_at.has_value());
  EXPECT_EQ(*ahead_claimed_at, renewed_at);
}

// A process paused past the claim timeout (SIGSTOP, a VM stalled) finds, when it goes on,
// that another instance took its messages back and sends them: it stops instead of sending
// them a second time. Only the message that was on the wire may arrive twice.
TEST_P(OutboxTest, AClaimTakenBackWhileSendingStopsTheRound) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.claim_timeout = 3s, .poll_interval = 5ms});
  std::atomic<bool> paused{false};
  // One destination: one lane sends them in order.
  const auto sends = times_sent(
      *db_, outbox, 5, [](int) { return "user@example.edu"; },
      [&](const OutboxMessage& m) {
        if (m.subject == "1" && !paused.exchange(true)) {
          // Another instance's expiry takes the claim back, as after claim_timeout...
          take_back_claims(*db_);
          // ...while this one stood still for more than a third of it.
          std::this_thread::sleep_for(1100ms);
        }
      });
  // "1" was on the wire: its outcome could not be recorded, so it went again. The rest went
  // once, in the round that claimed them afresh.
  EXPECT_EQ(sends, (std::map<std::string, int>{{"0", 1}, {"1", 2}, {"2", 1}, {"3", 1}, {"4", 1}}));
  EXPECT_TRUE(log_.contains("were taken back after the claim timeout", "warning"));
  EXPECT_TRUE(log_.contains("was sent after its claim expired", "warning"));
}

// A round claimed ahead whose claim another instance took back while the round before was
// sent (this one paused, or slow) is not sent: the renewal at its start finds it gone.
TEST_P(OutboxTest, ARoundClaimedAheadAndTakenBackIsNotSent) {
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.claim_timeout = 30s, .poll_interval = 5ms, .batch_size = 2});
  const auto sends = times_sent(*db_, outbox, 6, own_destination, [&](const OutboxMessage& m) {
    if (m.subject == "0") {
      wait_until_pending_at_most(outbox, 2);
      // The round claimed ahead ("2" and "3") is taken back by another instance's expiry, and
      // it is a third of the claim timeout old when its turn comes.
      take_back_claims(*db_, " AND subject IN ('2', '3')");
      clock_.advance(11s);
    }
  });
  EXPECT_EQ(sends, each_once(6));
  EXPECT_TRUE(log_.contains("were taken back after the claim timeout", "warning"));
}

// A server stopping in the middle of a round gives back what it claimed and did not send:
// pending at once, no attempt counted.
TEST_P(OutboxTest, StoppingGivesBackWhatWasNotSent) {
  // Rounds of 10: the round after the one under way is claimed too, and given back as well.
  OutboxService outbox(*db_, clock_, log_, "test",
                       OutboxSettings{.poll_interval = 5ms, .batch_size = 10});
  std::atomic<int> sends{0};
  outbox.register_sender("email", [&](const OutboxMessage&) {
    ++sends;
    std::this_thread::sleep_for(20ms);
  });
  db_->transact([&](Tx& tx) {
    for (int i = 0; i < 30; ++i) outbox.enqueue(tx, mail("u" + std::to_string(i) + "@example.edu"));
  });
  outbox.start();
  while (sends < 2) std::this_thread::sleep_for(1ms);
  outbox.stop();
  const auto sent = outbox.list("sent", 100).size();
  const auto pending = outbox.list("pending", 100);
  EXPECT_EQ(sent, static_cast<std::size_t>(sends.load()));
  EXPECT_EQ(sent + pending.size(), 30u);
  EXPECT_GT(pending.size(), 0u);
  EXPECT_TRUE(outbox.list("sending", 100).empty());
  for (const auto& row : pending) EXPECT_EQ(row["attempts"], 0);
  EXPECT_TRUE(log_.contains("not sent before stopping are pending again", "info"));
}

// On the embedded store no other process can be sending: a restart takes the claims of the
// process that died back at once instead of waiting claim_timeout.
TEST_P(OutboxTest, TheSoleInstanceTakesBackADeadProcessesClaimsAtStart) {
  OutboxService outbox(
      *db_, clock_, log_, "test",
      OutboxSettings{.claim_timeout = 600s, .poll_interval = 5ms, .sole_instance = true});
  RecordingSender sender;
  outbox.register_sender("email", sender.fn());
  enqueue(*db_, outbox, mail("dba@example.edu"));
  db_->transact([&](Tx& tx) {
    tx.exec("UPDATE outbox SET state = 'sending', claim = 'crashed#1', claimed_at = ?",
            {clock_.now().time_since_epoch().count()});
  });
  outbox.start();
  wait_until_sent(outbox, 1);
  outbox.stop();
  const Json row = only(outbox.list("sent", 10));
  EXPECT_EQ(row["attempts"], 1);
  EXPECT_TRUE(log_.contains("claimed by a dispatcher that stopped", "warning"));
}

TEST_P(OutboxTest, RefusesBadInput) {
  OutboxService outbox(*db_, clock_, log_, "test");
  OutboxMessage no_channel = mail("a@example.edu");
  no_channel.channel.clear();
  EXPECT_THROW(enqueue(*db_, outbox, no_channel), std::invalid_argument);
  EXPECT_THROW(enqueue(*db_, outbox, mail("")), std::invalid_argument);
  OutboxMessage bad_headers = mail("a@example.edu");
  bad_headers.headers = Json::array();
  EXPECT_THROW(enqueue(*db_, outbox, bad_headers), std::invalid_argument);
  EXPECT_THROW(outbox.register_sender("", [](const OutboxMessage&) {}), std::invalid_argument);
  EXPECT_THROW(outbox.register_sender("email", OutboxSender{}, {}), std::invalid_argument);
  EXPECT_THROW(outbox.register_sender("email", std::function<void(const OutboxMessage&)>{}),
               std::invalid_argument);
  EXPECT_THROW(outbox.list("done", 10), std::invalid_argument);
  EXPECT_THROW(outbox.list("", 0), std::invalid_argument);
  EXPECT_THROW(outbox.list("", 1001), std::invalid_argument);
  EXPECT_TRUE(outbox.list("", 10).empty());
}

INSTANTIATE_TEST_SUITE_P(Engines, OutboxTest, test::kBothEngines, engine_name);

}  // namespace
}  // namespace slmhub::host
