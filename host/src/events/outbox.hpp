// The outbox: every outgoing e-mail and webhook is a row written in the transaction that
// decided to send it, and a dispatcher hands it to the sender registered for its channel,
// retrying with exponential back-off and keeping what cannot be delivered as a visible
// dead letter. Sending happens outside any transaction, so a message is delivered at
// least once (a crash between sending and recording sends it again).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "slmhub/events.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "storage/database.hpp"

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
  int batch_size = 100;  // messages claimed together in one dispatch round
  // Messages of a round sent at once, each lane on its own connection. Messages to one
  // destination share a lane, so they arrive in the order they were queued; a destination
  // another process is sending to is left out of a claim until that process is done, so
  // instances sharing PostgreSQL keep the order too.
  int concurrency = 1;
  // Set when no other process can use the store (the embedded SQLite store): claims left by
  // an earlier life of this server are taken back at start() instead of after claim_timeout,
  // counted as a failed attempt like an expired claim.
  bool sole_instance = false;
};

class OutboxService : public Outbox {
 public:
  // Applies the "host.outbox" migrations. `instance` names this process in claims
  // (several instances can share one PostgreSQL database).
  OutboxService(Database& store, const Clock& clock, Logger& log, std::string instance,
                OutboxSettings settings = {});
  ~OutboxService() override;  // stops the dispatcher

  OutboxService(const OutboxService&) = delete;
  OutboxService& operator=(const OutboxService&) = delete;

  // Throws std::invalid_argument for an empty channel or destination.
  void enqueue(Tx& tx, const OutboxMessage& message) override;
  // Throws std::invalid_argument for an empty channel, a missing function or a channel
  // that already has a sender.
  using Outbox::register_sender;
  void register_sender(const std::string& channel, OutboxSender send, SendRecorder record) override;

  void start();
  // Waits for a send in progress; the rest of its round is recorded and the messages not
  // sent yet are given back (pending, no attempt counted) for the next start.
  void stop();

  // One round: in one transaction, returns claims older than claim_timeout to pending and
  // claims the due pending messages whose channel has a sender, oldest first (at most
  // batch_size); then sends them in `concurrency` lanes, each lane recording a message's
  // outcome during its next send (the sender's Meanwhile) and the last one before the round
  // ends. Returns the number sent successfully. Used by the dispatcher thread and by tests.
  int dispatch_once();

  // Messages newest first, optionally only one state ("pending", "sending", "sent",
  // "dead"; empty = all); at most `limit` (1..1000). Each is an object with id, channel,
  // destination, subject, body, headers, dedupe_key, state, attempts, next_attempt_at,
  // last_error, created_at, sent_at and `sender` (false when no sender is registered for
  // the channel, which is why such a message stays pending). Throws std::invalid_argument
  // for an unknown state or a limit out of range.
  std::vector<Json> list(const std::string& state, int limit);
  // Whether `state` is one a message can be in: pending, sending, sent or dead.
  static bool is_state(std::string_view state);

  // Sent messages older than `before`: deleted, except those with a dedupe key, whose row is
  // what stops the same message from being queued again (a deadline warning, a billing
  // estimate, an alert): those keep it, and the record of the send, without their body and
  // headers. At most kCleanupBatch (slmhub/batches.hpp) rows a
  // transaction. Pending and dead messages are kept.
  struct Pruned {
    std::int64_t deleted = 0;
    std::int64_t emptied = 0;
  };
  Pruned prune(Instant before);

  // Puts a dead letter back in the queue with a fresh set of attempts. False if `id` is
  // not a dead letter.
  bool retry(std::int64_t id);

 private:
  struct Sender {
    OutboxSender send;
    SendRecorder record;  // may be empty
  };
  struct Claimed {
    OutboxMessage message;
    std::int64_t attempts = 0;
  };

  // Messages claimed together under one token: their recorded outcomes must match it.
  struct Batch {
    std::string token;
    Instant claimed_at{};
    std::vector<Claimed> messages;
  };
  Batch claim();
  std::vector<Claimed> claim_batch(const std::string& token, Instant now);
  struct Round {
    std::size_t claimed = 0;
    int sent = 0;
  };
  // Sends `batch` in up to `concurrency` lanes; `meanwhile`, if given, runs on the calling
  // thread while they send (not at all for an empty batch).
  Round send_round(const Batch& batch, const std::function<void()>& meanwhile);
  // A lane's last outcome, not written yet: it is written while the lane's next message is
  // under way (the sender's Meanwhile), or when the lane ends.
  struct Unwritten {
    const Claimed* claimed = nullptr;
    SendOutcome outcome;
  };
  // Sends `group` (one destination's messages) in order, each one's outcome left in
  // `unwritten` for the next send to write; returns how many were delivered and whether it
  // got through all of them (false: stopping, or the store failed).
  std::pair<int, bool> send_group(const std::string& token,
                                  const std::vector<const Claimed*>& group,
                                  std::optional<Unwritten>& unwritten);
  // Records `unwritten`, if any, and empties it. False (logged) if the store failed.
  bool write_unwritten(const std::string& token, std::optional<Unwritten>& unwritten);
  // The claim's messages still being sent count as claimed at `now`; how many there are.
  std::int64_t renew_claim(Tx& tx, const std::string& token, Instant now);
  // Before each send: whether the claim is still this instance's, renewed once a third of
  // claim_timeout has passed since it last was. A process paused past the timeout, whose
  // messages another instance took back and sends, then stops rather than sending them too:
  // only the message that was on the wire may arrive twice.
  bool claim_held(const std::string& token);
  // After a renewal of `token`'s claim, begun at `before`, that found `held` messages of it
  // still being sent: whether the claim is still this instance's (none left: taken back,
  // logged once).
  bool claim_renewed(const std::string& token, std::int64_t held,
                     std::chrono::steady_clock::time_point before);
  // Claims made before `before` go back to pending (or dead), counted as a failed attempt.
  void expire_claims(Tx& tx, Instant now, std::int64_t before);
  struct Outcome {
    const std::string* token;
    const Claimed* claimed;
    const SendOutcome* outcome;
    bool done = false;
    std::exception_ptr error;
  };
  // Records one outcome before returning, in one transaction with the outcomes other lanes
  // are recording at the same moment; renews the round's claim once a third of
  // claim_timeout has passed.
  void record(const std::string& token, const Claimed& claimed, const SendOutcome& outcome);
  void write_outcomes(const std::vector<Outcome*>& group);
  // Gives a claim's unsent messages back to pending, no attempt counted; logs how many and
  // `why` ("not sent before stopping").
  void release(const std::string& token, std::string_view why);
  std::chrono::seconds backoff_after(std::int64_t attempts) const;
  bool stopping();
  void run();

  Database& store_;
  const Clock& clock_;
  Logger& log_;
  const std::string instance_;
  const OutboxSettings settings_;

  std::mutex mutex_;  // senders_, stopping_, hinted_, claims_, renewed_, lost_
  std::map<std::string, Sender> senders_;
  bool stopping_ = false;
  bool hinted_ = false;  // a message was enqueued since the dispatcher last looked
  std::chrono::steady_clock::time_point renewed_{};  // the last renewal of a round's claim
  std::string lost_;  // the last claim found taken back: its lanes stop without asking again
  std::condition_variable wake_;
  std::thread thread_;

  std::mutex record_mutex_;  // record_queue_, recording_ and each queued Outcome
  std::condition_variable recorded_;
  std::vector<Outcome*> record_queue_;
  bool recording_ = false;

  std::mutex dispatch_mutex_;  // one dispatch round at a time in this process
  std::int64_t claims_ = 0;    // makes each claim token unique within this process
  // How this process's claim tokens begin: the instance's name and a number of its own, so
  // that two processes of one name (a restart, a copy) tell their claims apart.
  std::string token_prefix_;
  std::int64_t prefix_characters_ = 0;  // its length in characters, as SQL's substr counts
};

}  // namespace slmhub::host
