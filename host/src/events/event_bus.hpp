// The durable event bus: events are rows written in the publisher's transaction, and a
// dispatcher delivers them to each subscriber in id order, at least once, keeping one
// cursor per subscriber in the store. A failing handler holds only its own subscriber
// back (with exponential back-off); the cursor and the failure count survive restarts.
#pragma once

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
};

// What `GET /api/v1/events/subscribers` and the metrics show about one subscriber.
struct SubscriberStatus {
  std::string name;
  std::vector<std::string> types;
  std::int64_t last_id = 0;                // the last event handled (or skipped as not matching)
  std::int64_t attempts = 0;               // consecutive failures on the event after last_id
  std::optional<Instant> next_attempt_at;  // set while backing off
  std::string last_error;
  std::int64_t backlog = 0;  // matching events after last_id
};

Json to_json(const SubscriberStatus& status);

class EventBus : public Events {
 public:
  // Applies the "host.events" migrations.
  EventBus(Store& store, const Clock& clock, Logger& log, EventBusSettings settings = {});
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
  // std::logic_error once started. A subscriber seen for the first time starts after the
  // newest event already committed: it gets what is published from now on, not the history.
  void subscribe(const std::string& subscriber, const std::vector<std::string>& types,
                 std::function<void(const Event&)> handler) override;

  // Starts / stops the dispatcher thread. stop() waits for a handler that is running.
  void start();
  void stop();

  // One dispatch round over every subscriber that is not backing off: delivers its
  // matching events after its cursor in id order until one fails or none are left (at
  // most batch_size per subscriber). Returns the number of events handled successfully.
  // Used by the dispatcher thread and by tests.
  int dispatch_once();

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
  };

  int dispatch_subscriber(const Subscription& subscription, Instant now);
  std::optional<Cursor> read_cursor(const std::string& subscriber);
  void advance_cursor(const std::string& subscriber, std::int64_t last_id, bool delivered);
  void record_failure(const std::string& subscriber, std::int64_t attempts, Instant now,
                      const std::string& error);
  std::chrono::seconds backoff_after(std::int64_t attempts) const;
  void run();

  Store& store_;
  const Clock& clock_;
  Logger& log_;
  const EventBusSettings settings_;

  std::mutex mutex_;  // subscriptions_, started_, stopping_
  std::vector<Subscription> subscriptions_;
  bool started_ = false;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;

  std::mutex dispatch_mutex_;  // one dispatch round at a time in this process
};

}  // namespace slmhub::host
