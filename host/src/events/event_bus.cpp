// The durable event bus (see event_bus.hpp).
//
// Ordering on PostgreSQL: ids come from a sequence, and two transactions can take ids 7
// and 8 and commit 8 first. A dispatcher that saw 8 would move its cursor past 7, which
// then commits and is never delivered. Publishers therefore take one transaction-scoped
// advisory lock before inserting, so publishing transactions commit one after the other
// and ids become visible in increasing order: an event that is not visible yet always has
// a larger id than every visible one. The price is that transactions that publish events
// are serialized from their first publish to their commit; readers are not blocked.
// SQLite needs nothing: a writer holds the database's one write lock from its first write
// to its commit, so ids are assigned and committed in order already.
//
// Several instances sharing PostgreSQL each run their own dispatcher, and each
// subscriber's cursor row carries a lease (holder, lease_until): an instance delivers to
// a subscriber only while it holds the lease, renews it as it goes, and every cursor
// update is conditional on still holding it. So one instance at a time delivers to a
// subscriber, in id order. When the holder dies its subscribers wait until the lease
// runs out and another instance takes them over from the cursor; the event the dead one
// was handling is delivered again (at least once). A handler that outlives its lease
// (a paused process) may run alongside the new holder's delivery of that same event;
// its cursor update then fails and it stops delivering to that subscriber. Lease times
// are the instances' clocks, so they must agree to well within the lease (NTP).
#include "events/event_bus.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

#include "slmhub/batches.hpp"

namespace slmhub::host {
namespace {

// pg_advisory_xact_lock key of the events table ("slmhub.ev" in ASCII, arbitrary but fixed).
constexpr std::int64_t kEventsLockKey = 0x736c6d6875622e65;

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "events and per-subscriber cursors",
       "CREATE TABLE events (id {{serial}}, type TEXT NOT NULL, subject TEXT NOT NULL,"
       " payload TEXT NOT NULL, at BIGINT NOT NULL);"
       "CREATE TABLE event_cursors (subscriber TEXT PRIMARY KEY, last_id BIGINT NOT NULL,"
       " attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL DEFAULT 0,"
       " last_error TEXT)"},
      {2, "a lease per subscriber, so instances sharing the store take turns",
       "ALTER TABLE event_cursors ADD COLUMN holder TEXT;"
       "ALTER TABLE event_cursors ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0"},
  };
  return list;
}

void lock_events_for_publishing(Tx& tx) {
  if (tx.dialect() == Dialect::postgresql) {
    tx.query("SELECT pg_advisory_xact_lock(?)", {kEventsLockKey});
  }
}

// "a.b" is an exact type, "a.*" every type starting with "a.", "*" every type.
bool valid_pattern(const std::string& pattern) {
  if (pattern == "*") return true;
  const auto star = pattern.find('*');
  if (star == std::string::npos) return !pattern.empty();
  return star == pattern.size() - 1 && pattern.size() >= 3 && pattern[star - 1] == '.';
}

bool matches(const std::vector<std::string>& patterns, const std::string& type) {
  for (const auto& pattern : patterns) {
    if (pattern == "*") return true;
    if (pattern.back() == '*') {
      const std::string_view prefix(pattern.data(), pattern.size() - 1);
      if (type.size() > prefix.size() && type.compare(0, prefix.size(), prefix) == 0) {
        return true;
      }
    } else if (pattern == type) {
      return true;
    }
  }
  return false;
}

// The same test as matches() as a SQL condition on `type`. Prefixes are compared with
// substr, not LIKE: SQLite's LIKE ignores case and would need escaping of '_' and '%'.
std::string sql_condition(const std::vector<std::string>& patterns, Params& params) {
  std::string sql;
  for (const auto& pattern : patterns) {
    if (pattern == "*") return "1 = 1";
    if (!sql.empty()) sql += " OR ";
    if (pattern.back() == '*') {
      const std::string prefix = pattern.substr(0, pattern.size() - 1);
      // The length is ours, not input, so it is written into the text: a bound BIGINT
      // would not match PostgreSQL's substr(text, integer, integer).
      sql += "(length(type) > " + std::to_string(prefix.size()) + " AND substr(type, 1, " +
             std::to_string(prefix.size()) + ") = ?)";
      params.emplace_back(prefix);
    } else {
      sql += "type = ?";
      params.emplace_back(pattern);
    }
  }
  return "(" + sql + ")";
}

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

Json to_json(const SubscriberStatus& status) {
  Json out = {{"name", status.name},       {"types", status.types},
              {"last_id", status.last_id}, {"attempts", status.attempts},
              {"backlog", status.backlog}, {"next_attempt_at", nullptr},
              {"last_error", nullptr},     {"holder", nullptr}};
  if (!status.holder.empty()) out["holder"] = status.holder;
  if (status.next_attempt_at) out["next_attempt_at"] = format_instant(*status.next_attempt_at);
  if (!status.last_error.empty()) out["last_error"] = status.last_error;
  return out;
}

EventBus::EventBus(Database& store, const Clock& clock, Logger& log, EventBusSettings settings)
    : store_(store), clock_(clock), log_(log), settings_(settings) {
  if (settings_.initial_backoff.count() <= 0 || settings_.max_backoff < settings_.initial_backoff) {
    throw std::invalid_argument(
        "event bus: initial_backoff must be positive and max_backoff at least initial_backoff");
  }
  if (settings_.batch_size <= 0) throw std::invalid_argument("event bus: batch_size must be > 0");
  if (settings_.instance.empty() || settings_.lease.count() <= 0) {
    throw std::invalid_argument(
        "event bus: the instance must be named and the lease (events.lease_seconds) positive");
  }
  store_.migrate("host.events", migrations());
}

EventBus::~EventBus() { stop(); }

void EventBus::publish(Tx& tx, const std::string& type, const std::string& subject,
                       const Json& payload) {
  publish_serialized(tx, type, subject, payload.dump());
}

void EventBus::publish_serialized(Tx& tx, const std::string& type, const std::string& subject,
                                  const std::string& payload_json) {
  if (type.empty() || type.find('*') != std::string::npos) {
    throw std::invalid_argument("event type \"" + type +
                                "\" is not allowed: it must be non-empty and without '*'");
  }
  lock_events_for_publishing(tx);
  tx.exec("INSERT INTO events (type, subject, payload, at) VALUES (?, ?, ?, ?)",
          {type, subject, payload_json, to_epoch(clock_.now())});
}

std::int64_t EventBus::prune(Instant before) {
  // Cursors only move forward, so a bound read now stays safe while the batches run.
  const auto bound = store_.query(
      "SELECT COALESCE((SELECT MIN(last_id) FROM event_cursors), (SELECT MAX(id) FROM events),"
      " 0)");
  const std::int64_t handled = bound.empty() ? 0 : bound[0].integer(0);
  const std::int64_t deleted = exec_in_batches(
      store_,
      "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? AND at < ?"
      " ORDER BY id LIMIT ?)",
      {handled, to_epoch(before)});
  // Old events that stay wait for a subscriber: say which, since one whose plugin is gone
  // waits for ever.
  const auto waiting = store_.query(
      "SELECT COUNT(*), (SELECT subscriber FROM event_cursors ORDER BY last_id, subscriber"
      " LIMIT 1) FROM events WHERE at < ?",
      {to_epoch(before)});
  if (!waiting.empty() && waiting[0].integer(0) > 0 && !waiting[0].is_null(1)) {
    log_.warning("events: " + std::to_string(waiting[0].integer(0)) +
                 " events past their days are kept until subscriber '" + waiting[0].text(1) +
                 "' handles them; if it is no longer used, delete its row from event_cursors");
  }
  return deleted;
}

void EventBus::subscribe(const std::string& subscriber, const std::vector<std::string>& types,
                         std::function<void(const Event&)> handler, StartAt start) {
  if (subscriber.empty()) throw std::invalid_argument("event subscriber name must not be empty");
  if (types.empty()) {
    throw std::invalid_argument("event subscriber \"" + subscriber + "\" lists no event types");
  }
  for (const auto& pattern : types) {
    if (!valid_pattern(pattern)) {
      std::string message = "event subscriber \"" + subscriber + "\": type pattern \"";
      message += pattern;
      message += "\" is malformed; allowed are \"a.b\", \"a.*\" and \"*\"";
      throw std::invalid_argument(message);
    }
  }
  if (!handler) {
    throw std::invalid_argument("event subscriber \"" + subscriber + "\" has no handler");
  }
  {
    std::lock_guard lock(mutex_);
    if (started_) {
      throw std::logic_error("event subscriber \"" + subscriber +
                             "\" registered after the event bus started");
    }
    for (const auto& existing : subscriptions_) {
      if (existing.name == subscriber) {
        throw std::invalid_argument("event subscriber \"" + subscriber +
                                    "\" is already registered");
      }
    }
  }
  store_.transact([&](Tx& tx) {
    // Under the publishers' lock, so no event with a smaller id can commit afterwards.
    lock_events_for_publishing(tx);
    // SQLite needs the WHERE to parse INSERT ... SELECT ... ON CONFLICT unambiguously. The
    // aggregate makes one row also when there are no events yet (ids start at 1).
    tx.exec(std::string("INSERT INTO event_cursors (subscriber, last_id, attempts, "
                        "next_attempt_at) SELECT ?, ") +
                (start == StartAt::oldest ? "COALESCE(MIN(id), 1) - 1" : "COALESCE(MAX(id), 0)") +
                ", 0, 0 FROM events WHERE 1 = 1 ON CONFLICT (subscriber) DO NOTHING",
            {subscriber});
  });
  std::lock_guard lock(mutex_);
  subscriptions_.push_back({subscriber, types, std::move(handler)});
}

void EventBus::start() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  if (settings_.sole_instance) release_leases(true);
  started_ = true;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void EventBus::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!held_leases_.exchange(false)) return;
  try {
    release_leases(false);
  } catch (const std::exception& e) {
    // Not fatal: the leases run out by themselves.
    log_.warning(std::string("event bus: could not give up the subscriber leases: ") + e.what());
  }
}

void EventBus::release_leases(bool everyone_elses) {
  store_.transact([&](Tx& tx) {
    tx.exec(everyone_elses ? "UPDATE event_cursors SET holder = NULL, lease_until = 0"
                             " WHERE holder IS NOT NULL AND holder <> ?"
                           : "UPDATE event_cursors SET holder = NULL, lease_until = 0"
                             " WHERE holder = ?",
            {settings_.instance});
  });
}

void EventBus::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    int handled = 0;
    try {
      handled = dispatch_once();
    } catch (const std::exception& e) {
      log_.error(std::string("event bus: dispatch failed: ") + e.what());
    }
    lock.lock();
    // A busy round may have left events behind (batch_size); go on without waiting.
    if (handled == 0) wake_.wait_for(lock, settings_.poll_interval, [this] { return stopping_; });
  }
}

int EventBus::dispatch_once() {
  std::lock_guard dispatching(dispatch_mutex_);
  std::vector<const Subscription*> subscriptions;
  {
    // Subscriptions are only added before start() and never removed, so the pointers stay
    // valid while this round runs (vector growth happens before any dispatch thread).
    std::lock_guard lock(mutex_);
    for (const auto& s : subscriptions_) subscriptions.push_back(&s);
  }
  int handled = 0;
  for (const Subscription* subscription : subscriptions) {
    handled += dispatch_subscriber(*subscription);
  }
  return handled;
}

int EventBus::dispatch_subscriber(const Subscription& subscription) {
  // Now, not when the round began: the subscribers before this one may have taken most of a
  // lease, and a lease judged by the round's start could run out under this one's handlers.
  const Instant now = clock_.now();
  const std::optional<Cursor> cursor = read_cursor(subscription.name);
  if (!cursor) return 0;  // removed from the store behind our back; nothing sensible to do
  if (cursor->next_attempt_at > to_epoch(now)) return 0;
  const std::optional<std::int64_t> lease_until = hold_lease(subscription.name, *cursor, now);
  if (!lease_until) return 0;

  // Every event is read and the type is tested here rather than in SQL, so the cursor also
  // moves past events the subscriber does not want: otherwise a subscriber to a rare type
  // would scan everything published since its last match on every round.
  const auto batch = [&](std::int64_t after) {
    return store_.query(
        "SELECT id, type, subject, payload, at FROM events WHERE id > ? ORDER BY id LIMIT ?",
        {after, static_cast<std::int64_t>(settings_.batch_size)});
  };
  auto rows = batch(cursor->last_id);

  // The cursor is saved once per round, not per event: a crash delivers the round's events
  // again, which at least once allows, and a burst of events costs one write per round
  // instead of one per event. It is saved early, renewing the lease, once half the lease has
  // passed since it was last renewed, so a slow handler keeps the subscriber; and when a
  // handler fails, before the failure is recorded.
  std::int64_t position = cursor->last_id;  // handled or skipped up to here
  std::int64_t saved = cursor->last_id;     // what the store has
  bool delivered = false;                   // an event was handled since the last save
  // Renewed once half of the lease it holds is gone (hold_lease may have kept one it had).
  Instant renew_by = from_epoch(*lease_until) - settings_.lease / 2;
  const auto save = [&] {
    if (position == saved) return true;
    if (!advance_cursor(subscription.name, position, delivered)) return false;
    saved = position;
    delivered = false;
    renew_by = clock_.now() + settings_.lease / 2;
    return true;
  };
  int handled = 0;
  // A full batch of nothing for this subscriber (a rare type after a burst, or a subscriber
  // that starts at the oldest event kept) is followed at once by the next, up to the first
  // batch it handles something of (or kSkipBatches), rather than one batch a round with a
  // poll interval between rounds.
  constexpr int kSkipBatches = 1000;
  for (int batches = 1;; ++batches) {
    for (const auto& row : rows) {
      const std::int64_t id = row.integer(0);
      if (!matches(subscription.types, row.text(1))) {
        position = id;
        continue;
      }
      if (clock_.now() >= renew_by && !save()) return handled;
      std::exception_ptr error;
      try {
        Event event;
        event.id = id;
        event.type = row.text(1);
        event.subject = row.text(2);
        event.payload = Json::parse(row.text(3));
        event.at = from_epoch(row.integer(4));
        subscription.handler(event);
      } catch (...) {
        error = std::current_exception();
      }
      if (error) {
        if (!save()) return handled;
        // Counted from this event: one handled in this round ended the earlier failures.
        record_failure(subscription.name, (handled > 0 ? 0 : cursor->attempts) + 1, now,
                       describe(error));
        return handled;
      }
      position = id;
      delivered = true;
      ++handled;
    }
    if (handled > 0 || rows.size() < static_cast<std::size_t>(settings_.batch_size) ||
        batches == kSkipBatches)
      break;
    if (clock_.now() >= renew_by && !save()) return handled;
    rows = batch(position);
  }
  save();
  return handled;
}

std::optional<std::int64_t> EventBus::hold_lease(const std::string& subscriber,
                                                 const Cursor& cursor, Instant now) {
  const std::int64_t at = to_epoch(now);
  // Renewing costs a write; a lease with more than half its time left needs none.
  if (cursor.holder == settings_.instance &&
      cursor.lease_until - at > settings_.lease.count() / 2) {
    held_leases_ = true;
    return cursor.lease_until;
  }
  if (!cursor.holder.empty() && cursor.holder != settings_.instance && cursor.lease_until > at) {
    return std::nullopt;  // another instance delivers to it
  }
  std::int64_t taken = 0;
  store_.transact([&](Tx& tx) {
    taken = tx.exec(
        "UPDATE event_cursors SET holder = ?, lease_until = ? WHERE subscriber = ?"
        " AND (holder IS NULL OR holder = ? OR lease_until <= ?)",
        {settings_.instance, at + settings_.lease.count(), subscriber, settings_.instance, at});
  });
  if (taken == 1) held_leases_ = true;
  if (taken == 1 && !cursor.holder.empty() && cursor.holder != settings_.instance) {
    log_.warning("event bus: took subscriber \"" + subscriber + "\" over from instance \"" +
                 cursor.holder + "\", whose lease ran out; resuming after event " +
                 std::to_string(cursor.last_id));
  }
  if (taken != 1) return std::nullopt;
  return at + settings_.lease.count();
}

std::optional<EventBus::Cursor> EventBus::read_cursor(const std::string& subscriber) {
  const auto rows = store_.query(
      "SELECT last_id, attempts, next_attempt_at, last_error, holder, lease_until"
      " FROM event_cursors WHERE subscriber = ?",
      {subscriber});
  if (rows.empty()) return std::nullopt;
  return Cursor{rows[0].integer(0),
                rows[0].integer(1),
                rows[0].integer(2),
                rows[0].optional_text(3).value_or(""),
                rows[0].optional_text(4).value_or(""),
                rows[0].integer(5)};
}

bool EventBus::advance_cursor(const std::string& subscriber, std::int64_t last_id, bool delivered) {
  // Only under our lease, which each step renews. `last_id < ?` keeps the cursor from
  // moving back. Skipping events the subscriber does not want leaves its failure count
  // alone: the event that failed is still ahead of the cursor.
  // Unsynced: delivery is at least once, so a move lost to a power failure only hands the
  // subscriber events again; no request need wait for its fsync on the one writer.
  std::int64_t changed = 0;
  store_.transact_unsynced([&](Tx& tx) {
    changed = tx.exec(
        delivered ? "UPDATE event_cursors SET last_id = ?, attempts = 0, next_attempt_at = 0,"
                    " last_error = NULL, lease_until = ? WHERE subscriber = ? AND holder = ?"
                    " AND last_id < ?"
                  : "UPDATE event_cursors SET last_id = ?, lease_until = ? WHERE subscriber = ?"
                    " AND holder = ? AND last_id < ?",
        {last_id, to_epoch(clock_.now()) + settings_.lease.count(), subscriber, settings_.instance,
         last_id});
  });
  if (changed == 0) {
    log_.warning("event bus: instance \"" + settings_.instance + "\" lost subscriber \"" +
                 subscriber + "\" to another instance while delivering event " +
                 std::to_string(last_id) +
                 " (its lease ran out); that instance delivers from here");
  }
  return changed == 1;
}

void EventBus::record_failure(const std::string& subscriber, std::int64_t attempts, Instant now,
                              const std::string& error) {
  const Instant retry_at = now + backoff_after(attempts);
  store_.transact([&](Tx& tx) {
    tx.exec(
        "UPDATE event_cursors SET attempts = ?, next_attempt_at = ?, last_error = ?"
        " WHERE subscriber = ? AND holder = ?",
        {attempts, to_epoch(retry_at), error, subscriber, settings_.instance});
  });
  log_.warning("event bus: subscriber \"" + subscriber + "\" failed (attempt " +
               std::to_string(attempts) + "), retrying at " + format_instant(retry_at) + ": " +
               error);
}

std::chrono::seconds EventBus::backoff_after(std::int64_t attempts) const {
  std::chrono::seconds delay = settings_.initial_backoff;
  for (std::int64_t i = 1; i < attempts && delay < settings_.max_backoff; ++i) delay *= 2;
  return std::min(delay, settings_.max_backoff);
}

std::int64_t EventBus::backlog(const std::string& subscriber) {
  std::vector<std::string> types;
  {
    std::lock_guard lock(mutex_);
    for (const auto& s : subscriptions_) {
      if (s.name == subscriber) types = s.types;
    }
  }
  if (types.empty()) return 0;
  Params params = {subscriber};
  const std::string condition = sql_condition(types, params);
  const auto rows = store_.query(
      "SELECT COUNT(*) FROM events, event_cursors WHERE event_cursors.subscriber = ?"
      " AND events.id > event_cursors.last_id AND " +
          condition,
      params);
  return rows.empty() ? 0 : rows[0].integer(0);
}

std::vector<SubscriberStatus> EventBus::subscribers() {
  std::vector<std::pair<std::string, std::vector<std::string>>> registered;
  {
    std::lock_guard lock(mutex_);
    for (const auto& s : subscriptions_) registered.emplace_back(s.name, s.types);
  }
  std::vector<SubscriberStatus> out;
  for (auto& [name, types] : registered) {
    SubscriberStatus status;
    status.name = name;
    if (auto cursor = read_cursor(name)) {
      status.last_id = cursor->last_id;
      status.attempts = cursor->attempts;
      if (cursor->next_attempt_at > 0) status.next_attempt_at = from_epoch(cursor->next_attempt_at);
      status.last_error = cursor->last_error;
      if (cursor->lease_until > to_epoch(clock_.now())) status.holder = cursor->holder;
    }
    status.types = std::move(types);
    status.backlog = backlog(name);
    out.push_back(std::move(status));
  }
  return out;
}

}  // namespace slmhub::host
