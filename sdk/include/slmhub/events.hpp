// Domain events and the outbox. Events are rows written in the same transaction as the
// change that caused them, delivered at least once, in order, to each durable subscriber;
// handlers must be idempotent. The outbox holds every outgoing message until a sender
// for its channel has delivered it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "slmhub/json.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub {

struct Event {
  std::int64_t id = 0;  // increasing in commit order of the writer
  std::string type;     // "interruption.recorded", "ticket.created", ...
  std::string subject;  // the entity it is about, e.g. "INC0001"
  Json payload;
  Instant at;
};

// Where a subscriber seen for the first time starts reading.
enum class StartAt {
  // After the newest event already committed: what happened before it existed is not its
  // business (a notice about last week's maintenance is no news).
  next,
  // At the oldest event still kept (events.keep_days): for a subscriber that must see every
  // event of its kind, such as billing's approved credits when billing is enabled after the
  // workflows. Its handler must expect history.
  oldest,
};

class Events {
 public:
  virtual ~Events() = default;
  virtual void publish(Tx& tx, const std::string& type, const std::string& subject,
                       const Json& payload) = 0;
  // `subscriber` names a durable cursor: it survives restarts and must be unique. `types`
  // are exact names or prefixes ending in ".*" ("credit.*"). A handler that throws gets
  // the same event again after a back-off; other subscribers are not held up. `start`
  // matters only the first time the subscriber is seen; afterwards its cursor rules.
  virtual void subscribe(const std::string& subscriber, const std::vector<std::string>& types,
                         std::function<void(const Event&)> handler, StartAt start) = 0;
  void subscribe(const std::string& subscriber, const std::vector<std::string>& types,
                 std::function<void(const Event&)> handler) {
    subscribe(subscriber, types, std::move(handler), StartAt::next);
  }
};

struct OutboxMessage {
  std::int64_t id = 0;
  std::string channel;      // "email", "webhook", ...: a sender must be registered for it
  std::string destination;  // an address or URL
  std::string subject;
  std::string body;
  Json headers = Json::object();
  std::string dedupe_key;  // a second enqueue with the same key is a no-op
};

// Thrown by a sender when retrying cannot help (a refused address): the message goes to
// the dead letters at once.
class PermanentFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What one attempt to send a message came to.
struct SendOutcome {
  bool delivered = false;
  bool permanent = false;  // the sender threw PermanentFailure
  bool dead = false;       // not delivered and not retried: permanent, or out of attempts
  std::string error;       // why it was not delivered; empty when delivered
};

// A channel's own record of an attempt (a delivery log), written in the transaction in
// which the outbox records the outcome: the two cannot disagree, and a batch of sends
// costs one commit instead of one per message. It must not throw for a message it does
// not know; if it throws, the outcome is recorded without it and the error is logged.
using SendRecorder = std::function<void(Tx&, const OutboxMessage&, const SendOutcome&)>;

// A sender's second argument. The sender calls it once it has begun a message and before the
// receiver can accept it (SMTP: after MAIL FROM is written, before the final "."); the outbox
// then writes the outcome of the lane's previous message, so that commit overlaps the
// receiver's work instead of following it, and still at most one delivered message per lane
// is unrecorded when the process is killed. If it throws (the store failed), the sender must
// stop without delivering and let the exception through. Calls after the first do nothing.
using Meanwhile = std::function<void()>;
using OutboxSender = std::function<void(const OutboxMessage&, const Meanwhile&)>;

class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void enqueue(Tx& tx, const OutboxMessage& message) = 0;
  // `send` delivers one message or throws (std::exception: retried with back-off;
  // PermanentFailure: dead letter). The outbox claims due messages in batches and records
  // their outcomes together, so `send` runs outside any transaction; `record`, if given,
  // runs inside the one that records the outcome.
  virtual void register_sender(const std::string& channel, OutboxSender send,
                               SendRecorder record) = 0;
  void register_sender(const std::string& channel, OutboxSender send) {
    register_sender(channel, std::move(send), {});
  }
  // A sender with nothing to overlap: the previous outcome is written before it starts.
  void register_sender(const std::string& channel, std::function<void(const OutboxMessage&)> send,
                       SendRecorder record = {}) {
    OutboxSender sender;
    if (send) {
      sender = [send = std::move(send)](const OutboxMessage& message, const Meanwhile& meanwhile) {
        meanwhile();
        send(message);
      };
    }
    register_sender(channel, std::move(sender), std::move(record));
  }
};

}  // namespace slmhub
