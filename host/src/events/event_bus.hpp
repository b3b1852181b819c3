// The durable event bus: events are rows written in the publisher's transaction, and a
// dispatcher delivers them to each subscriber in id order, at least once, keeping one
// cursor per subscriber in the store. A failing handler holds only its own subscriber
// back (with exponential back-off); the cursor and the failure count survive restarts. The
// cursor is saved once per dispatch round (at most batch_size events), without waiting for
// the disk: after a crash or a power failure that round's events are delivered again.
// Instances sharing one PostgreSQL database each run a dispatcher, and a lease on each
// subscriber's cursor row lets one of them at a time deliver to it: events reach each
// subscriber once and in order, and another instance takes over when the holder dies.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "slmhub/events.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "storage/database.hpp"

namespace slmhub::host {

struct EventBusSettings {
  // Back-off after the n-th consecutive failure of one subscriber: initial * 2^(n-1),
  // never more than max.
  std::chrono::seconds initial_backoff{1};
  std::chrono::seconds max_backoff{300};
  // How often the dispatcher thread looks for new events. Publishing cannot wake it: the
  // event is only visible once the publisher's transaction commits, which the bus does not see.
  std::chrono::milliseconds poll_interval{200};
  // Events read per subscriber per dispatch round.
  int batch_size = 100;
  // This process's name in leases (instance.id). Instances sharing a database must have
  // different names: a lease held under this name is this instance's own.
  std::string instance = "local";
  // How long a subscriber stays with the instance that delivers to it without a word
  // from it (events.lease_seconds). The holder renews it while it works, so this is
  // how long a dead instance's subscribers wait before another instance takes them over.
  std::chrono::seconds lease{30};
  // Set when no other process can use the store (the embedded SQLite store): leases left
  // by an earlier life of this server under another name are released at start(), so a
  // restart after a crash does not wait for them to expire.
  bool sole_instance = false;
};

// What `GET /api/v1/events/subscribers` shows about one subscriber (the backlog metric sums
// the backlogs).
struct SubscriberStatus {
  std::string name;
  std::vector<std::string> types;
  std::int64_t last_id = 0;                // the last event handled (or skipped as not matching)
  std::int64_t attempts = 0;               // consecutive failures on the event after last_id
  std::optional<Instant> next_attempt_at;  // set while backing off
  std::string last_error;
  std::int64_t backlog = 0;  // matching events after last_id
  std::string holder;        // the instance delivering to it (empty: none holds it)
};

Json to_json(const SubscriberStatus& status);

class EventBus : public Events {
 public:
  // Applies the "host.events" migrations.
  EventBus(Database& store, const Clock& clock, Logger& log, EventBusSettings settings = {});
  ~EventBus() override;  // stops the dispatcher

  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  void publish(Tx& tx, const std::string& type, const std::string& subject,
               const Json& payload) override;
  // The same with the payload already serialized, so a hot write path can serialize on
  // its request thread instead of inside the (single) writer's transaction.
  void publish_serialized(Tx& tx, const std::string& type, const std::string& subject,
                          const std::string& payload_json);

  // Before start() only. Throws std::invalid_argument for an empty or duplicate name, no
  // types, or a malformed pattern (allowed: "a.b", "a.*", "*" for every event), and
  // std::logic_error once started. A subscriber seen for the first time starts where `start`
  // says: after the newest event already committed (it gets what is published from now on),
  // or at the oldest event still kept.
  using Events::subscribe;
  void subscribe(const std::string& subscriber, const std::vector<std::string>& types,
                 std::function<void(const Event&)> handler, StartAt start) override;

  // Starts / stops the dispatcher thread. stop() waits for a handler that is running and
  // gives up this instance's leases, so another instance takes its subscribers over at once.
  void start();
  void stop();

  // One dispatch round over every subscriber that is not backing off and that this
  // instance holds or can take (its lease is free, expired or ours): delivers its matching
  // events after its cursor in id order until one fails or none are left (at most
  // batch_size per subscriber). Returns the number of events handled successfully. Used
  // by the dispatcher thread and by tests.
  int dispatch_once();

  // Deletes the events published before `before` that every subscriber with a cursor in the
  // store has handled (all of them when there is none: a new subscriber starts after the
  // newest), at most kCleanupBatch (slmhub/batches.hpp) a transaction so that publishers are never
  // held long. Returns how many. A subscriber whose plugin was removed keeps its cursor and holds
  // later events back until that row is deleted: when old events stay, the log names the subscriber
  // they wait for.
  std::int64_t prune(Instant before);

  // Matching events not handled yet by `subscriber` (0 for an unknown subscriber).
  std::int64_t backlog(const std::string& subscriber);
  // Every subscriber registered with this bus, in registration order.
  std::vector<SubscriberStatus> subscribers();

 private:
  struct Subscription {
    std::string name;
    std::vector<std::string> types;
    std::function<void(const Event&)> handler;
  };
  struct Cursor {
    std::int64_t last_id = 0;
    std::int64_t attempts = 0;
    std::int64_t next_attempt_at = 0;
    std::string last_error;
    std::string holder;
    std::int64_t lease_until = 0;
  };

  int dispatch_subscriber(const Subscription& subscription);
  std::optional<Cursor> read_cursor(const std::string& subscriber);
  // The lease this instance holds on the subscriber (until when, epoch seconds), taken or
  // renewed if needed; nullopt when another instance holds it.
  std::optional<std::int64_t> hold_lease(const std::string& subscriber, const Cursor& cursor,
                                         Instant now);
  // False when another instance took the subscriber over: this round stops delivering to it.
  bool advance_cursor(const std::string& subscriber, std::int64_t last_id, bool delivered);
  void release_leases(bool everyone_elses);
  void record_failure(const std::string& subscriber, std::int64_t attempts, Instant now,
                      const std::string& error);
  std::chrono::seconds backoff_after(std::int64_t attempts) const;
  void run();

  Database& store_;
  const Clock& clock_;
  Logger& log_;
  const EventBusSettings settings_;

  std::mutex mutex_;  // subscriptions_, started_, stopping_
  std::vector<Subscription> subscriptions_;
  bool started_ = false;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;

  std::mutex dispatch_mutex_;             // one dispatch round at a time in this process
  std::atomic<bool> held_leases_{false};  // whether stop() has leases to give up
};

}  // namespace slmhub::host
