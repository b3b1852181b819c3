// The outbox (see outbox.hpp).
//
// A message moves pending → sending → sent, or back to pending with a later
// next_attempt_at, or to dead. "sending" is a claim: the dispatcher that changes a row from
// pending to sending (an UPDATE that must change exactly one row) is the only one that
// sends it, so two dispatchers, in one process or on two instances sharing PostgreSQL, do
// not both send it. The claim carries a token, and the outcome is only recorded under
// that token: a dispatcher whose claim expired (it was too slow) does not overwrite the
// record of the one that took over. A claim that expires counts as a failed attempt, so
// a message that kills the process while being sent ends up dead instead of looping.
#include "events/outbox.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

namespace slmhub::host {
namespace {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "outgoing messages",
       "CREATE TABLE outbox (id {{serial}}, channel TEXT NOT NULL, destination TEXT NOT NULL,"
       " subject TEXT NOT NULL, body TEXT NOT NULL, headers TEXT NOT NULL,"
       " dedupe_key TEXT UNIQUE, state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,"
       " next_attempt_at BIGINT NOT NULL, last_error TEXT, created_at BIGINT NOT NULL,"
       " sent_at BIGINT, claim TEXT, claimed_at BIGINT);"
       "CREATE INDEX outbox_state_due ON outbox (state, next_attempt_at)"},
  };
  return list;
}

constexpr const char* kStates[] = {"pending", "sending", "sent", "dead"};

Json optional_instant_json(const Row& row, std::size_t i) {
  const auto value = row.optional_integer(i);
  return value ? Json(format_instant(from_epoch(*value))) : Json(nullptr);
}

}  // namespace

OutboxService::OutboxService(Store& store, const Clock& clock, Logger& log, std::string instance,
                             OutboxSettings settings)
    : store_(store), clock_(clock), log_(log), instance_(std::move(instance)), settings_(settings) {
  if (settings_.max_attempts < 1) throw std::invalid_argument("outbox: max_attempts must be >= 1");
  if (settings_.initial_backoff.count() <= 0 || settings_.max_backoff < settings_.initial_backoff) {
    throw std::invalid_argument(
        "outbox: initial_backoff must be positive and max_backoff at least initial_backoff");
  }
  if (settings_.claim_timeout.count() <= 0) {
    throw std::invalid_argument("outbox: claim_timeout must be positive");
  }
  if (settings_.batch_size <= 0) throw std::invalid_argument("outbox: batch_size must be > 0");
  // A process-unique start for claim tokens, so a restarted instance with the same name
  // never reuses a token of its previous life.
  claims_ = static_cast<std::int64_t>(std::random_device{}() & 0x7fffffff) << 24;
  store_.migrate("host.outbox", migrations());
}

OutboxService::~OutboxService() { stop(); }

void OutboxService::enqueue(Tx& tx, const OutboxMessage& message) {
  if (message.channel.empty()) throw std::invalid_argument("outbox message: channel is empty");
  if (message.destination.empty()) {
    throw std::invalid_argument("outbox message for channel \"" + message.channel +
                                "\": destination is empty");
  }
  if (!message.headers.is_object() && !message.headers.is_null()) {
    throw std::invalid_argument("outbox message for channel \"" + message.channel +
                                "\": headers must be a JSON object");
  }
  const std::int64_t now = to_epoch(clock_.now());
  const Value dedupe_key =
      message.dedupe_key.empty() ? Value{} : Value{message.dedupe_key};  // NULLs never conflict
  tx.exec(
      "INSERT INTO outbox (channel, destination, subject, body, headers, dedupe_key, state,"
      " attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)"
      " ON CONFLICT (dedupe_key) DO NOTHING",
      {message.channel, message.destination, message.subject, message.body,
       message.headers.is_null() ? std::string("{}") : message.headers.dump(), dedupe_key, now,
       now});
}

void OutboxService::register_sender(const std::string& channel,
                                    std::function<void(const OutboxMessage&)> send) {
  if (channel.empty()) throw std::invalid_argument("outbox sender: channel is empty");
  if (!send) {
    throw std::invalid_argument("outbox sender for channel \"" + channel + "\" has no function");
  }
  std::lock_guard lock(mutex_);
  if (!senders_.emplace(channel, std::move(send)).second) {
    throw std::invalid_argument("outbox channel \"" + channel + "\" already has a sender");
  }
}

void OutboxService::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void OutboxService::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxService::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    int sent = 0;
    try {
      sent = dispatch_once();
    } catch (const std::exception& e) {
      log_.error(std::string("outbox: dispatch failed: ") + e.what());
    }
    lock.lock();
    if (sent < settings_.batch_size) {
      wake_.wait_for(lock, settings_.poll_interval, [this] { return stopping_; });
    }
  }
}

int OutboxService::dispatch_once() {
  std::lock_guard dispatching(dispatch_mutex_);
  const Instant now = clock_.now();
  const std::int64_t expired_before = to_epoch(now - settings_.claim_timeout);
  store_.transact([&](Tx& tx) {
    const std::string error =
        "the claim expired before the send was recorded (the dispatcher stopped or was too slow)";
    tx.exec(
        "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?,"
        " claim = NULL, claimed_at = NULL"
        " WHERE state = 'sending' AND claimed_at <= ? AND attempts + 1 >= ?",
        {error, expired_before, static_cast<std::int64_t>(settings_.max_attempts)});
    tx.exec(
        "UPDATE outbox SET state = 'pending', attempts = attempts + 1, last_error = ?,"
        " next_attempt_at = ?, claim = NULL, claimed_at = NULL"
        " WHERE state = 'sending' AND claimed_at <= ?",
        {error, to_epoch(now), expired_before});
  });

  int sent = 0;
  for (const std::int64_t id : due_ids(now)) {
    std::optional<Claimed> claimed = claim(id, now);
    if (!claimed) continue;  // another dispatcher got it first
    std::function<void(const OutboxMessage&)> send;
    {
      std::lock_guard lock(mutex_);
      send = senders_.at(claimed->message.channel);
    }
    try {
      send(claimed->message);
      record_sent(*claimed);
      ++sent;
    } catch (const PermanentFailure& e) {
      record_failure(*claimed, e.what(), true);
    } catch (const std::exception& e) {
      record_failure(*claimed, e.what(), false);
    } catch (...) {
      record_failure(*claimed, "unknown exception", false);
    }
  }
  return sent;
}

std::vector<std::int64_t> OutboxService::due_ids(Instant now) {
  Params params = {to_epoch(now)};
  std::string channels;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [channel, send] : senders_) {
      channels += channels.empty() ? "?" : ", ?";
      params.emplace_back(channel);
    }
  }
  if (channels.empty()) return {};
  params.emplace_back(static_cast<std::int64_t>(settings_.batch_size));
  std::vector<std::int64_t> ids;
  for (const auto& row : store_.query("SELECT id FROM outbox WHERE state = 'pending'"
                                      " AND next_attempt_at <= ? AND channel IN (" +
                                          channels + ") ORDER BY id LIMIT ?",
                                      params)) {
    ids.push_back(row.integer(0));
  }
  return ids;
}

std::optional<OutboxService::Claimed> OutboxService::claim(std::int64_t id, Instant now) {
  std::string token;
  {
    std::lock_guard lock(mutex_);
    token = instance_ + "#" + std::to_string(++claims_);
  }
  std::optional<Claimed> claimed;
  store_.transact([&](Tx& tx) {
    claimed.reset();  // transact may run this more than once
    const std::int64_t changed = tx.exec(
        "UPDATE outbox SET state = 'sending', claim = ?, claimed_at = ?"
        " WHERE id = ? AND state = 'pending' AND next_attempt_at <= ?",
        {token, to_epoch(now), id, to_epoch(now)});
    if (changed != 1) return;
    const auto rows = tx.query(
        "SELECT channel, destination, subject, body, headers, dedupe_key, attempts"
        " FROM outbox WHERE id = ?",
        {id});
    const Row& row = rows.at(0);
    Claimed c;
    c.token = token;
    c.message.id = id;
    c.message.channel = row.text(0);
    c.message.destination = row.text(1);
    c.message.subject = row.text(2);
    c.message.body = row.text(3);
    c.message.headers = Json::parse(row.text(4));
    c.message.dedupe_key = row.optional_text(5).value_or("");
    c.attempts = row.integer(6);
    claimed = std::move(c);
  });
  return claimed;
}

void OutboxService::record_sent(const Claimed& claimed) {
  std::int64_t changed = 0;
  store_.transact([&](Tx& tx) {
    changed = tx.exec(
        "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL, claim = NULL,"
        " claimed_at = NULL WHERE id = ? AND state = 'sending' AND claim = ?",
        {to_epoch(clock_.now()), claimed.message.id, claimed.token});
  });
  if (changed != 1) {
    log_.warning("outbox: message " + std::to_string(claimed.message.id) +
                 " was sent after its claim expired; it may be sent twice");
  }
}

void OutboxService::record_failure(const Claimed& claimed, const std::string& error,
                                   bool permanent) {
  const std::int64_t attempts = claimed.attempts + 1;
  const bool dead = permanent || attempts >= settings_.max_attempts;
  const Instant now = clock_.now();
  const Instant retry_at = now + backoff_after(attempts);
  std::int64_t changed = 0;
  store_.transact([&](Tx& tx) {
    changed = tx.exec(
        "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
        " claim = NULL, claimed_at = NULL WHERE id = ? AND state = 'sending' AND claim = ?",
        {std::string(dead ? "dead" : "pending"), attempts, to_epoch(dead ? now : retry_at), error,
         claimed.message.id, claimed.token});
  });
  const std::string what = "outbox: message " + std::to_string(claimed.message.id) + " to " +
                           claimed.message.destination + " (" + claimed.message.channel + ")";
  if (changed != 1) {
    log_.warning(what + " failed after its claim expired: " + error);
  } else if (dead) {
    log_.error(what + " is a dead letter after " + std::to_string(attempts) + " attempt(s)" +
               (permanent ? " (permanent failure)" : "") + ": " + error);
  } else {
    log_.warning(what + " failed (attempt " + std::to_string(attempts) + " of " +
                 std::to_string(settings_.max_attempts) + "), retrying at " +
                 format_instant(retry_at) + ": " + error);
  }
}

std::chrono::seconds OutboxService::backoff_after(std::int64_t attempts) const {
  std::chrono::seconds delay = settings_.initial_backoff;
  for (std::int64_t i = 1; i < attempts && delay < settings_.max_backoff; ++i) delay *= 2;
  return std::min(delay, settings_.max_backoff);
}

std::vector<Json> OutboxService::list(const std::string& state, int limit) {
  if (!state.empty() &&
      std::find(std::begin(kStates), std::end(kStates), state) == std::end(kStates)) {
    throw std::invalid_argument("outbox state \"" + state +
                                "\" is unknown; allowed: pending, sending, sent, dead");
  }
  if (limit < 1 || limit > 1000) {
    throw std::invalid_argument("outbox list limit " + std::to_string(limit) +
                                " is out of range; allowed: 1 to 1000");
  }
  Params params;
  std::string sql =
      "SELECT id, channel, destination, subject, body, headers, dedupe_key, state, attempts,"
      " next_attempt_at, last_error, created_at, sent_at FROM outbox";
  if (!state.empty()) {
    sql += " WHERE state = ?";
    params.emplace_back(state);
  }
  sql += " ORDER BY id DESC LIMIT ?";
  params.emplace_back(static_cast<std::int64_t>(limit));
  const auto rows = store_.query(sql, params);

  std::vector<Json> out;
  std::lock_guard lock(mutex_);
  for (const auto& row : rows) {
    Json message = {
        {"id", row.integer(0)},
        {"channel", row.text(1)},
        {"destination", row.text(2)},
        {"subject", row.text(3)},
        {"body", row.text(4)},
        {"headers", Json::parse(row.text(5))},
        {"dedupe_key", row.is_null(6) ? Json(nullptr) : Json(row.text(6))},
        {"state", row.text(7)},
        {"attempts", row.integer(8)},
        {"next_attempt_at", format_instant(from_epoch(row.integer(9)))},
        {"last_error", row.is_null(10) ? Json(nullptr) : Json(row.text(10))},
        {"created_at", format_instant(from_epoch(row.integer(11)))},
        {"sent_at", optional_instant_json(row, 12)},
        {"sender", senders_.count(row.text(1)) != 0},
    };
    out.push_back(std::move(message));
  }
  return out;
}

bool OutboxService::retry(std::int64_t id) {
  std::int64_t changed = 0;
  store_.transact([&](Tx& tx) {
    // last_error stays: it explains why the message had died until a new attempt replaces it.
    changed = tx.exec(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?"
        " WHERE id = ? AND state = 'dead'",
        {to_epoch(clock_.now()), id});
  });
  if (changed == 1) log_.info("outbox: dead letter " + std::to_string(id) + " queued again");
  return changed == 1;
}

}  // namespace slmhub::host
