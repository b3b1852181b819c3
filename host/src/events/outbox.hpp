// The outbox: every outgoing e-mail and webhook is a row written in the transaction that
// decided to send it, and a dispatcher hands it to the sender registered for its channel,
// retrying with exponential back-off and keeping what cannot be delivered as a visible
// dead letter. Sending happens outside any transaction, so a message is delivered at
// least once (a crash between sending and recording sends it again).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "slmhub/events.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"

namespace slmhub::host {

struct OutboxSettings {
  // A message goes dead after this many failed attempts.
  int max_attempts = 10;
  // Back-off after the n-th failure: initial * 2^(n-1), never more than max.
  std::chrono::seconds initial_backoff{10};
  std::chrono::seconds max_backoff{3600};
  // A message claimed for sending longer ago than this (its dispatcher died) is pending again.
  std::chrono::seconds claim_timeout{600};
  std::chrono::milliseconds poll_interval{1000};
  int batch_size = 50;  // messages per dispatch round
};

class OutboxService : public Outbox {
 public:
  // Applies the "host.outbox" migrations. `instance` names this process in claims
  // (several instances can share one PostgreSQL database).
  OutboxService(Store& store, const Clock& clock, Logger& log, std::string instance,
                OutboxSettings settings = {});
  ~OutboxService() override;  // stops the dispatcher

  OutboxService(const OutboxService&) = delete;
  OutboxService& operator=(const OutboxService&) = delete;

  // Throws std::invalid_argument for an empty channel or destination.
  void enqueue(Tx& tx, const OutboxMessage& message) override;
  // Throws std::invalid_argument for an empty channel, a missing function or a channel
  // that already has a sender.
  void register_sender(const std::string& channel,
                       std::function<void(const OutboxMessage&)> send) override;

  void start();
  void stop();  // waits for a send in progress

  // One round: returns claims older than claim_timeout to pending, then sends the due
  // pending messages whose channel has a sender, oldest first (at most batch_size).
  // Returns the number sent successfully. Used by the dispatcher thread and by tests.
  int dispatch_once();

  // Messages newest first, optionally only one state ("pending", "sending", "sent",
  // "dead"; empty = all); at most `limit` (1..1000). Each is an object with id, channel,
  // destination, subject, body, headers, dedupe_key, state, attempts, next_attempt_at,
  // last_error, created_at, sent_at and `sender` (false when no sender is registered for
  // the channel, which is why such a message stays pending). Throws std::invalid_argument
  // for an unknown state or a limit out of range.
  std::vector<Json> list(const std::string& state, int limit);

  // Puts a dead letter back in the queue with a fresh set of attempts. False if `id` is
  // not a dead letter.
  bool retry(std::int64_t id);

 private:
  struct Claimed {
    OutboxMessage message;
    std::string token;  // recorded outcomes must match it (see outbox.cpp)
    std::int64_t attempts = 0;
  };

  std::vector<std::int64_t> due_ids(Instant now);
  std::optional<Claimed> claim(std::int64_t id, Instant now);
  void record_sent(const Claimed& claimed);
  void record_failure(const Claimed& claimed, const std::string& error, bool permanent);
  std::chrono::seconds backoff_after(std::int64_t attempts) const;
  void run();

  Store& store_;
  const Clock& clock_;
  Logger& log_;
  const std::string instance_;
  const OutboxSettings settings_;

  std::mutex mutex_;  // senders_, stopping_, claims_
  std::map<std::string, std::function<void(const OutboxMessage&)>> senders_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;

  std::mutex dispatch_mutex_;  // one dispatch round at a time in this process
  std::int64_t claims_ = 0;    // makes each claim token unique within this process
};

}  // namespace slmhub::host
