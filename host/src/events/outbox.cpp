// The outbox (see outbox.hpp).
//
// A message moves pending → sending → sent, or back to pending with a later
// next_attempt_at, or to dead. "sending" is a claim: the dispatcher whose UPDATE changes a
// row from pending to sending is the only one that sends it, so two dispatchers, in one
// process or on two instances sharing PostgreSQL, do not both send it. A round claims up
// to batch_size messages in one transaction, and neither it nor the outcomes wait for the
// disk (see record()). The claim carries the round's token, and an outcome is only
// recorded under that token: a dispatcher whose claim expired (it was too slow) does not overwrite
// the record of the one that took over. A claim that expires counts as a failed attempt, so a
// message that kills the process while being sent ends up dead instead of looping (a round
// claimed ahead, never tried, is not charged: see expire_claims). One process sends a
// destination's messages in id order on one lane, and a claim leaves out the destinations
// another process is sending to, so the order holds across instances too.
#include "events/outbox.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <limits>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "slmhub/batches.hpp"

namespace slmhub::host {
namespace {

using namespace std::chrono_literals;

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "outgoing messages",
       "CREATE TABLE outbox (id {{serial}}, channel TEXT NOT NULL, destination TEXT NOT NULL,"
       " subject TEXT NOT NULL, body TEXT NOT NULL, headers TEXT NOT NULL,"
       " dedupe_key TEXT UNIQUE, state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,"
       " next_attempt_at BIGINT NOT NULL, last_error TEXT, created_at BIGINT NOT NULL,"
       " sent_at BIGINT, claim TEXT, claimed_at BIGINT);"
       "CREATE INDEX outbox_state_due ON outbox (state, next_attempt_at)"},
      // With (state, next_attempt_at) a claim read every pending row's channel from the table
      // and sorted them all, each round: 10,000 queued messages cost 100 rounds × 10,000 row
      // reads. The claim's UPDATE finds each claimed row by (state, id), the list by state in
      // id order.
      {2, "outbox claims in id order without reading the queue",
       "DROP INDEX outbox_state_due;"
       "CREATE INDEX outbox_queue ON outbox (state, id, channel, next_attempt_at)"},
      // A claim reads each channel that has a sender on its own (see claim_batch).
      {3, "outbox claims per channel",
       "CREATE INDEX outbox_channel_queue ON outbox (state, channel, id, next_attempt_at)"},
  };
  return list;
}

constexpr const char* kStates[] = {"pending", "sending", "sent", "dead"};

Json optional_instant_json(const Row& row, std::size_t i) {
  const auto value = row.optional_integer(i);
  return value ? Json(format_instant(from_epoch(*value))) : Json(nullptr);
}

}  // namespace

OutboxService::OutboxService(Database& store, const Clock& clock, Logger& log, std::string instance,
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
  if (settings_.concurrency < 1 || settings_.concurrency > 64) {
    throw std::invalid_argument("outbox: concurrency must be 1 to 64");
  }
  std::random_device random;
  token_prefix_ =
      instance_ + "#" + std::to_string((std::uint64_t{random()} << 32) | random()) + "-";
  for (const char c : token_prefix_) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++prefix_characters_;  // UTF-8 starts
  }
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
  {
    // One wake-up per round is enough: after a hint the dispatcher looks again soon anyway
    // (run()). A wake-up per message was a context switch per message for the dispatcher,
    // and a system call inside the enqueuing transaction. A channel nobody sends waits for
    // its sender's first round.
    std::lock_guard lock(mutex_);
    if (hinted_ || !senders_.contains(message.channel)) return;
    hinted_ = true;
  }
  wake_.notify_all();
}

void OutboxService::register_sender(const std::string& channel, OutboxSender send,
                                    SendRecorder record) {
  if (channel.empty()) throw std::invalid_argument("outbox sender: channel is empty");
  if (!send) {
    throw std::invalid_argument("outbox sender for channel \"" + channel + "\" has no function");
  }
  std::lock_guard lock(mutex_);
  if (!senders_.emplace(channel, Sender{std::move(send), std::move(record)}).second) {
    throw std::invalid_argument("outbox channel \"" + channel + "\" already has a sender");
  }
}

void OutboxService::start() {
  {
    std::lock_guard lock(mutex_);
    if (thread_.joinable()) return;
  }
  // Outside mutex_: a transaction holds the store's write lock, and enqueue() takes mutex_
  // inside one.
  if (settings_.sole_instance) {
    const Instant now = clock_.now();
    store_.transact(
        [&](Tx& tx) { expire_claims(tx, now, std::numeric_limits<std::int64_t>::max()); });
  }
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

bool OutboxService::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void OutboxService::run() {
  // A full round leaves more to send: the next batch is claimed while it is being sent, so
  // the lanes do not wait for that transaction between rounds.
  std::optional<Batch> next;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    Round round;
    try {
      Batch batch;
      if (next) {
        batch = std::move(*next);
        next.reset();
      } else {
        batch = claim();
      }
      round = send_round(batch, [&] {
        if (batch.messages.size() < static_cast<std::size_t>(settings_.batch_size)) return;
        try {
          next = claim();
        } catch (const std::exception& e) {
          log_.error(std::string("outbox: claiming the next messages failed: ") + e.what());
        }
      });
    } catch (const std::exception& e) {
      log_.error(std::string("outbox: dispatch failed: ") + e.what());
    }
    lock.lock();
    // After an enqueue (hinted_), look again soon: the enqueuing transaction may not have
    // committed when the round looked.
    if (!next && round.claimed < static_cast<std::size_t>(settings_.batch_size)) {
      if (std::exchange(hinted_, false)) {
        wake_.wait_for(lock, std::min<std::chrono::milliseconds>(settings_.poll_interval, 20ms),
                       [this] { return stopping_; });
      } else {
        wake_.wait_for(lock, settings_.poll_interval, [this] { return stopping_ || hinted_; });
      }
    }
  }
  lock.unlock();
  if (next) {
    try {
      release(next->token, "not sent before stopping");
    } catch (const std::exception& e) {
      log_.error(std::string("outbox: giving back claimed messages failed (they are sent after "
                             "the claim timeout): ") +
                 e.what());
    }
  }
}

OutboxService::Batch OutboxService::claim() {
  Batch batch;
  {
    std::lock_guard lock(mutex_);
    batch.token = token_prefix_ + std::to_string(++claims_);
  }
  batch.claimed_at = clock_.now();
  batch.messages = claim_batch(batch.token, batch.claimed_at);
  return batch;
}

int OutboxService::dispatch_once() { return send_round(claim(), {}).sent; }

OutboxService::Round OutboxService::send_round(const Batch& batch,
                                               const std::function<void()>& meanwhile) {
  std::lock_guard dispatching(dispatch_mutex_);
  const std::string& token = batch.token;
  if (batch.messages.empty()) return {};
  // A batch claimed during the round before may have waited long (slow sends). Once its
  // claim has expired another instance may have taken the messages back, so they are given
  // back rather than sent; a claim a third of the way there is renewed first, so no claim
  // made while this round sends takes them back.
  const auto steady = std::chrono::steady_clock::now();
  const Instant now = clock_.now();
  const auto age = now - batch.claimed_at;
  if (age >= settings_.claim_timeout) {
    release(token, "claimed ahead and kept past the claim timeout, to be claimed again");
    return {batch.messages.size(), 0};
  }
  if (age >= settings_.claim_timeout / 3) {
    std::int64_t held = 0;
    store_.transact_unsynced([&](Tx& tx) { held = renew_claim(tx, token, now); });
    if (!claim_renewed(token, held, steady)) return {batch.messages.size(), 0};
  } else {
    // As old as the claim is in the store, so that the lanes renew it in time.
    std::lock_guard lock(mutex_);
    renewed_ = steady - std::chrono::duration_cast<std::chrono::steady_clock::duration>(age);
  }

  // The messages to each destination, in id order: one lane sends them one after another.
  // Lanes take the next destination when they are free, so a slow server does not hold up
  // the messages queued behind it in another lane.
  std::vector<std::vector<const Claimed*>> groups;
  {
    std::unordered_map<std::string_view, std::size_t> group_of;
    for (const Claimed& claimed : batch.messages) {
      const auto [at, added] = group_of.try_emplace(claimed.message.destination, groups.size());
      if (added) groups.emplace_back();
      groups[at->second].push_back(&claimed);
    }
  }
  std::atomic<std::size_t> next{0};
  std::atomic<int> sent{0};
  std::atomic<bool> finished{true};
  auto lane = [&] {
    std::optional<Unwritten> unwritten;
    bool all = true;
    for (std::size_t i = next++; all && i < groups.size(); i = next++) {
      const auto [delivered, whole] = send_group(token, groups[i], unwritten);
      sent += delivered;
      all = whole;
    }
    if (!write_unwritten(token, unwritten) || !all) finished = false;
  };
  {
    std::vector<std::jthread> lanes;
    const std::size_t count =
        std::min<std::size_t>(static_cast<std::size_t>(settings_.concurrency), groups.size());
    for (std::size_t i = 0; i < count; ++i) lanes.emplace_back(lane);
    if (meanwhile) meanwhile();
  }
  if (!finished) {
    release(token,
            stopping() ? "not sent before stopping" : "not sent after a failure (logged above)");
  }
  return {batch.messages.size(), sent};
}

std::pair<int, bool> OutboxService::send_group(const std::string& token,
                                               const std::vector<const Claimed*>& group,
                                               std::optional<Unwritten>& unwritten) {
  int sent = 0;
  for (const Claimed* claimed : group) {
    if (stopping() || !claim_held(token)) return {sent, false};
    OutboxSender send;
    {
      std::lock_guard lock(mutex_);
      send = senders_.at(claimed->message.channel).send;
    }
    // The previous outcome is written while this message is under way, but before it can be
    // accepted: a kill leaves at most one delivered message per lane unrecorded.
    bool store_failed = false;
    const Meanwhile meanwhile = [&] {
      if (!write_unwritten(token, unwritten)) {
        store_failed = true;
        throw std::runtime_error("the outbox could not record the previous message's outcome");
      }
    };
    SendOutcome outcome;
    try {
      send(claimed->message, meanwhile);
      outcome.delivered = true;
      ++sent;
    } catch (const PermanentFailure& e) {
      outcome.permanent = true;
      outcome.error = e.what();
    } catch (const std::exception& e) {
      outcome.error = e.what();
    } catch (...) {
      outcome.error = "unknown exception";
    }
    // The store is failing: this lane stops (the message was not sent), and the rest is
    // given back if it can be. A sender that failed before calling meanwhile sent nothing,
    // so the previous outcome is written now.
    if (store_failed || !write_unwritten(token, unwritten)) return {sent, false};
    outcome.dead = !outcome.delivered &&
                   (outcome.permanent || claimed->attempts + 1 >= settings_.max_attempts);
    unwritten = Unwritten{claimed, std::move(outcome)};
  }
  return {sent, true};
}

bool OutboxService::write_unwritten(const std::string& token, std::optional<Unwritten>& unwritten) {
  if (!unwritten) return true;
  const Unwritten last = std::move(*unwritten);
  unwritten.reset();
  try {
    record(token, *last.claimed, last.outcome);
    return true;
  } catch (const std::exception& e) {
    log_.error("outbox: the outcome of message " + std::to_string(last.claimed->message.id) +
               " could not be recorded (it may be sent again): " + e.what());
    return false;
  }
}

std::int64_t OutboxService::renew_claim(Tx& tx, const std::string& token, Instant now) {
  const std::int64_t held =
      tx.exec("UPDATE outbox SET claimed_at = ? WHERE state = 'sending' AND claim = ?",
              {to_epoch(now), token});
  // The round claimed ahead (run()) waits under another claim of this process while this one
  // is sent: renewed with it, or after a long round another instance would take its messages
  // back, never tried, and charge each an attempt (dead letters on a last attempt).
  tx.exec(
      "UPDATE outbox SET claimed_at = ? WHERE state = 'sending' AND claim <> ? AND "
      "substr(claim, 1, ?) = ?",
      {to_epoch(now), token, prefix_characters_, token_prefix_});
  return held;
}

bool OutboxService::claim_held(const std::string& token) {
  const auto steady = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (token == lost_) return false;
    if (steady - renewed_ < settings_.claim_timeout / 3) return true;
  }
  std::int64_t held = 0;
  try {
    store_.transact_unsynced([&](Tx& tx) { held = renew_claim(tx, token, clock_.now()); });
  } catch (const std::exception& e) {
    log_.error(std::string("outbox: renewing a claim failed (its messages are given back): ") +
               e.what());
    return false;
  }
  return claim_renewed(token, held, steady);
}

bool OutboxService::claim_renewed(const std::string& token, std::int64_t held,
                                  std::chrono::steady_clock::time_point before) {
  {
    std::lock_guard lock(mutex_);
    if (held > 0) {
      renewed_ = std::max(renewed_, before);
      return true;
    }
    if (token == lost_) return false;  // said once, not once per lane
    lost_ = token;
  }
  log_.warning(
      "outbox: the messages this instance was sending were taken back after the claim timeout "
      "(the process was paused, or a send outlasted outbox.claim_timeout_seconds); the "
      "instance that took them sends the rest");
  return false;
}

void OutboxService::expire_claims(Tx& tx, Instant now, std::int64_t before) {
  const auto expired =
      tx.query("SELECT id, claim, attempts FROM outbox WHERE state = 'sending' AND claimed_at <= ?",
               {before});
  if (expired.empty()) return;
  // A claim is its dispatcher's token prefix and a round number (claim()). A dispatcher sends
  // one round at a time, its earliest; the round it claimed ahead (run()) waits under a later
  // number, never tried. Only the earliest round's messages may have been under way, so only
  // they are charged an attempt (a message that kills the process ends up dead instead of
  // looping); the messages claimed ahead go back as they were.
  const auto split = [](const std::string& claim) {
    std::size_t digits = claim.size();
    while (digits > 0 && claim[digits - 1] >= '0' && claim[digits - 1] <= '9') --digits;
    return std::pair{std::string_view(claim).substr(0, digits),
                     std::string_view(claim).substr(digits)};
  };
  // Round numbers compare by length first: they have no leading zeros.
  const auto earlier = [](std::string_view a, std::string_view b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  };
  std::vector<std::string> claims;
  claims.reserve(expired.size());
  std::unordered_map<std::string_view, std::string_view> first_round;
  for (const auto& row : expired) claims.push_back(row.optional_text(1).value_or(""));
  for (const std::string& claim : claims) {
    const auto [dispatcher, round] = split(claim);
    const auto [at, added] = first_round.try_emplace(dispatcher, round);
    if (!added && earlier(round, at->second)) at->second = round;
  }
  const std::string error =
      "the claim expired before the send was recorded (the dispatcher stopped or was too slow)";
  std::int64_t dead = 0, pending = 0, untried = 0;
  for (std::size_t i = 0; i < expired.size(); ++i) {
    const std::int64_t id = expired[i].integer(0);
    const auto [dispatcher, round] = split(claims[i]);
    if (round != first_round.at(dispatcher)) {
      untried += tx.exec(
          "UPDATE outbox SET state = 'pending', claim = NULL, claimed_at = NULL"
          " WHERE id = ? AND state = 'sending'",
          {id});
    } else if (expired[i].integer(2) + 1 >= settings_.max_attempts) {
      dead += tx.exec(
          "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?,"
          " claim = NULL, claimed_at = NULL WHERE id = ? AND state = 'sending'",
          {error, id});
    } else {
      pending += tx.exec(
          "UPDATE outbox SET state = 'pending', attempts = attempts + 1, last_error = ?,"
          " next_attempt_at = ?, claim = NULL, claimed_at = NULL WHERE id = ? AND state = "
          "'sending'",
          {error, to_epoch(now), id});
    }
  }
  // Logged before the commit: a retried transaction may say it twice, never not at all.
  if (dead + pending + untried > 0) {
    log_.warning("outbox: " + std::to_string(dead + pending + untried) +
                 " message(s) claimed by a dispatcher that stopped are " +
                 (dead > 0 ? std::to_string(dead) + " dead (out of attempts) and " : "") +
                 std::to_string(pending + untried) + " pending again" +
                 (untried > 0 ? " (" + std::to_string(untried) +
                                    " of them claimed ahead and never tried, charged no attempt)"
                              : "") +
                 "; those it was sending may arrive twice");
  }
}

std::vector<OutboxService::Claimed> OutboxService::claim_batch(const std::string& token,
                                                               Instant now) {
  std::vector<std::string> channels;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [channel, sender] : senders_) channels.push_back(channel);
  }
  if (channels.empty()) return {};
  const auto limit = static_cast<std::int64_t>(settings_.batch_size);

  const std::int64_t expired_before = to_epoch(now - settings_.claim_timeout);
  std::int64_t claimed = 0;
  // Not synced either (see record()): a claim lost in a power failure returns its messages to
  // pending, which only repeats what a lost "sent" would, and a kill loses no commit.
  store_.transact_unsynced([&](Tx& tx) {
    claimed = 0;  // transact may run this more than once
    expire_claims(tx, now, expired_before);
    // The oldest due messages of the channels with a sender, each channel read on its own
    // through (state, channel, id): messages of a channel nobody sends (e-mail without an SMTP
    // host) wait in the queue, and one query over all channels walked past them every round.
    // A destination another process is sending to waits until it is done: sent at once from
    // two instances, its messages could arrive in any order. (This process's own earlier
    // round sends before the one claimed now.) Two instances claiming at once cannot both
    // miss the other's claim: the transaction is SERIALIZABLE on PostgreSQL, and SQLite has
    // one writer.
    std::vector<std::int64_t> ids;
    for (const std::string& channel : channels) {
      // One statement whatever is busy (a list of parameters would make a statement per
      // length, and crowd out the prepared ones). substr counts characters, not bytes.
      for (const auto& row :
           tx.query("SELECT id FROM outbox WHERE state = 'pending' AND channel = ? AND"
                    " next_attempt_at <= ? AND destination NOT IN (SELECT destination FROM outbox"
                    " WHERE state = 'sending' AND channel = ? AND substr(claim, 1, ?) <> ?)"
                    " ORDER BY id LIMIT ?",
                    {channel, to_epoch(now), channel, prefix_characters_, token_prefix_, limit})) {
        ids.push_back(row.integer(0));
      }
    }
    if (ids.empty()) return;
    std::sort(ids.begin(), ids.end());
    if (ids.size() > static_cast<std::size_t>(limit)) ids.resize(static_cast<std::size_t>(limit));
    Params claim = {token, to_epoch(now)};
    std::string placeholders;
    for (const std::int64_t id : ids) {
      placeholders += placeholders.empty() ? "?" : ", ?";
      claim.emplace_back(id);
    }
    // The state is tested again: on PostgreSQL a row another instance claimed meanwhile is
    // re-read after its commit and left alone.
    claimed = tx.exec(
        "UPDATE outbox SET state = 'sending', claim = ?, claimed_at = ?"
        " WHERE state = 'pending' AND id IN (" +
            placeholders + ")",
        claim);
  });
  if (claimed == 0) return {};
  // The messages are read after the commit: nothing changes a claimed message but its claimer
  // (or, after claim_timeout, expire_claims), and the store's write lock, which the lanes'
  // records wait for while the next round is claimed, is not held for a hundred bodies.
  std::vector<Claimed> batch;
  try {
    for (const auto& row : store_.query(
             "SELECT id, channel, destination, subject, body, headers, dedupe_key, attempts"
             " FROM outbox WHERE state = 'sending' AND claim = ? ORDER BY id",
             {token})) {
      Claimed c;
      c.message.id = row.integer(0);
      c.message.channel = row.text(1);
      c.message.destination = row.text(2);
      c.message.subject = row.text(3);
      c.message.body = row.text(4);
      c.message.headers = Json::parse(row.text(5));
      c.message.dedupe_key = row.optional_text(6).value_or("");
      c.attempts = row.integer(7);
      batch.push_back(std::move(c));
    }
  } catch (...) {
    release(token, "claimed but not read");  // rather than claimed until claim_timeout
    throw;
  }
  return batch;
}

// The outcome is bookkeeping whose loss in a power failure can only send the message again
// (with the same Message-ID), so it is committed without waiting for the disk, as the
// round's claim is: sending costs no fsync'd commit. A killed process loses none of these
// commits, so a kill repeats at most one delivered message per lane (see send_group).
void OutboxService::record(const std::string& token, const Claimed& claimed,
                           const SendOutcome& outcome) {
  // Lanes that finish a send while another lane's outcome is being written wait for it and
  // then write theirs together, in one transaction: the first to find no write under way
  // writes for all that queued (a group commit, as the core's writer does for requests).
  Outcome mine{&token, &claimed, &outcome, false, nullptr};
  std::unique_lock lock(record_mutex_);
  record_queue_.push_back(&mine);
  while (!mine.done) {
    if (recording_) {
      recorded_.wait(lock);
      continue;
    }
    recording_ = true;
    const std::vector<Outcome*> group = std::exchange(record_queue_, {});
    lock.unlock();
    std::exception_ptr error;
    try {
      write_outcomes(group);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    for (Outcome* outcome : group) {
      outcome->done = true;
      outcome->error = error;
    }
    recording_ = false;
    recorded_.notify_all();
  }
  if (mine.error) std::rethrow_exception(mine.error);
}

void OutboxService::write_outcomes(const std::vector<Outcome*>& group) {
  const Instant now = clock_.now();
  // A round of slow sends keeps its claim: renewed with the outcomes once a third of the
  // timeout has passed, so that a lane's last send is covered while the others' go on.
  const auto steady = std::chrono::steady_clock::now();
  bool renew = false;
  std::int64_t held = 0;
  std::vector<SendRecorder> recorders;
  {
    std::lock_guard lock(mutex_);
    renew = steady - renewed_ >= settings_.claim_timeout / 3;
    for (const Outcome* o : group)
      recorders.push_back(senders_.at(o->claimed->message.channel).record);
  }
  std::vector<bool> recorded(group.size());
  auto write = [&](bool with_recorders) {
    store_.transact_unsynced([&](Tx& tx) {
      held = 0;  // transact may run this more than once
      for (std::size_t i = 0; i < group.size(); ++i) {
        const Claimed& claimed = *group[i]->claimed;
        const SendOutcome& outcome = *group[i]->outcome;
        const std::string& token = *group[i]->token;
        const std::int64_t attempts = claimed.attempts + 1;
        std::int64_t changed = 0;
        if (outcome.delivered) {
          changed = tx.exec(
              "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL, claim = NULL,"
              " claimed_at = NULL WHERE id = ? AND state = 'sending' AND claim = ?",
              {to_epoch(now), claimed.message.id, token});
        } else {
          changed = tx.exec(
              "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
              " claim = NULL, claimed_at = NULL WHERE id = ? AND state = 'sending' AND claim = ?",
              {std::string(outcome.dead ? "dead" : "pending"), attempts,
               to_epoch(outcome.dead ? now : now + backoff_after(attempts)), outcome.error,
               claimed.message.id, token});
        }
        recorded[i] = changed == 1;
        if (recorded[i] && with_recorders && recorders[i]) {
          recorders[i](tx, claimed.message, outcome);
        }
        if (renew && (i == 0 || token != *group[i - 1]->token)) {
          held += renew_claim(tx, token, now);
        }
      }
    });
  };
  try {
    write(true);
  } catch (const std::exception& e) {
    if (std::none_of(recorders.begin(), recorders.end(), [](const auto& r) { return bool(r); })) {
      throw;
    }
    // There are no savepoints to undo a channel's record alone: the outcomes are written
    // again without them, so a failing delivery log never changes what the outbox knows.
    std::string ids;
    for (const Outcome* o : group) {
      ids += (ids.empty() ? "" : ", ") + std::to_string(o->claimed->message.id);
    }
    log_.error("outbox: a channel could not record message(s) " + ids +
               " (recorded without it): " + e.what());
    write(false);
  }
  // None left to renew is no loss here: the outcomes written may have been the round's last.
  // A claim taken back is found before the next send (claim_held).
  if (held > 0) {
    std::lock_guard lock(mutex_);
    renewed_ = std::max(renewed_, steady);
  }

  for (std::size_t i = 0; i < group.size(); ++i) {
    const Claimed& claimed = *group[i]->claimed;
    const SendOutcome& outcome = *group[i]->outcome;
    const std::int64_t attempts = claimed.attempts + 1;
    const std::string what = "outbox: message " + std::to_string(claimed.message.id) + " to " +
                             claimed.message.destination + " (" + claimed.message.channel + ")";
    if (!recorded[i]) {
      log_.warning(what + (outcome.delivered
                               ? " was sent after its claim expired; it may be sent twice"
                               : " failed after its claim expired: " + outcome.error));
    } else if (outcome.dead) {
      log_.error(what + " is a dead letter after " + std::to_string(attempts) + " attempt(s)" +
                 (outcome.permanent ? " (permanent failure)" : "") + ": " + outcome.error);
    } else if (!outcome.delivered) {
      log_.warning(what + " failed (attempt " + std::to_string(attempts) + " of " +
                   std::to_string(settings_.max_attempts) + "), retrying at " +
                   format_instant(now + backoff_after(attempts)) + ": " + outcome.error);
    }
  }
}

void OutboxService::release(const std::string& token, std::string_view why) {
  std::int64_t released = 0;
  store_.transact([&](Tx& tx) {
    released = tx.exec(
        "UPDATE outbox SET state = 'pending', claim = NULL, claimed_at = NULL"
        " WHERE state = 'sending' AND claim = ?",
        {token});
  });
  if (released > 0) {
    log_.info("outbox: " + std::to_string(released) + " claimed message(s) " + std::string(why) +
              " are pending again");
  }
}

std::chrono::seconds OutboxService::backoff_after(std::int64_t attempts) const {
  std::chrono::seconds delay = settings_.initial_backoff;
  for (std::int64_t i = 1; i < attempts && delay < settings_.max_backoff; ++i) delay *= 2;
  return std::min(delay, settings_.max_backoff);
}

OutboxService::Pruned OutboxService::prune(Instant before) {
  Pruned pruned;
  pruned.deleted = exec_in_batches(
      store_,
      "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state = 'sent' AND"
      " sent_at < ? AND dedupe_key IS NULL ORDER BY id LIMIT ?)",
      {to_epoch(before)});
  // An emptied row no longer matches, so each run takes the next ones.
  pruned.emptied = exec_in_batches(
      store_,
      "UPDATE outbox SET body = '', headers = '{}' WHERE id IN (SELECT id FROM outbox WHERE"
      " state = 'sent' AND sent_at < ? AND dedupe_key IS NOT NULL AND (body <> '' OR"
      " headers <> '{}') ORDER BY id LIMIT ?)",
      {to_epoch(before)});
  return pruned;
}

bool OutboxService::is_state(std::string_view state) {
  return std::find(std::begin(kStates), std::end(kStates), state) != std::end(kStates);
}

std::vector<Json> OutboxService::list(const std::string& state, int limit) {
  if (!state.empty() && !is_state(state)) {
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
