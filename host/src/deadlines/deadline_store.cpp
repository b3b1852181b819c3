#include "deadlines/deadline_store.hpp"

#include <chrono>

namespace slmhub::host {
namespace {

const char* const kColumns =
    "id, kind, subject, owner_role, description, due, state, warned_at, missed_at, done_at";

Deadline read(const Row& r) {
  Deadline d;
  d.id = r.text(0);
  d.kind = r.text(1);
  d.subject = r.text(2);
  d.owner_role = r.text(3);
  d.description = r.text(4);
  d.due = from_epoch(r.integer(5));
  d.state = r.text(6);
  if (auto t = r.optional_integer(7)) d.warned_at = from_epoch(*t);
  if (auto t = r.optional_integer(8)) d.missed_at = from_epoch(*t);
  if (auto t = r.optional_integer(9)) d.done_at = from_epoch(*t);
  return d;
}

std::optional<Deadline> find_in(Tx& tx, const std::string& id) {
  auto rows = tx.query(std::string("SELECT ") + kColumns + " FROM deadlines WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return read(rows.front());
}

Json state_json(const Deadline& d) { return {{"state", d.state}, {"due", format_instant(d.due)}}; }

}  // namespace

Json to_json(const Deadline& d) {
  Json out = {{"id", d.id},
              {"kind", d.kind},
              {"subject", d.subject},
              {"owner_role", d.owner_role},
              {"description", d.description},
              {"due", format_instant(d.due)},
              {"state", d.state}};
  auto instant = [](const std::optional<Instant>& t) {
    return t ? Json(format_instant(*t)) : Json();
  };
  out["warned_at"] = instant(d.warned_at);
  out["missed_at"] = instant(d.missed_at);
  out["done_at"] = instant(d.done_at);
  return out;
}

DeadlineStore::DeadlineStore(Database& db, Catalog& catalog, Events& events, const Clock& clock,
                             Logger& log, DeadlineSettings settings)
    : db_(db), catalog_(catalog), events_(events), clock_(clock), log_(log), settings_(settings) {
  db_.migrate("host.deadlines",
              {{1, "dated obligations and their warnings",
                "CREATE TABLE deadlines(id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT "
                "NULL, owner_role TEXT NOT NULL, description TEXT NOT NULL, due BIGINT NOT NULL, "
                "state TEXT NOT NULL, warned_at BIGINT, missed_at BIGINT, done_at BIGINT);"
                "CREATE INDEX deadlines_state ON deadlines(state, due)"}});
}

void DeadlineStore::set(Tx& tx, const Actor& actor, const Deadline& deadline) {
  const auto existing = find_in(tx, deadline.id);
  if (existing && (existing->state == "done" || existing->due == deadline.due)) return;
  Deadline d = deadline;
  d.state = "open";
  d.warned_at.reset();
  d.missed_at.reset();
  d.done_at.reset();
  // A moved deadline is a new promise: it warns and escalates afresh.
  tx.exec(std::string("INSERT INTO deadlines(") + kColumns +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL) ON CONFLICT(id) DO UPDATE SET "
              "kind = excluded.kind, subject = excluded.subject, owner_role = "
              "excluded.owner_role, description = excluded.description, due = excluded.due, "
              "state = excluded.state, warned_at = NULL, missed_at = NULL, done_at = NULL",
          {d.id, d.kind, d.subject, d.owner_role, d.description, to_epoch(d.due), d.state});
  catalog_.audit(tx, actor, existing ? "move" : "create", "deadline", d.id,
                 existing ? state_json(*existing) : Json(), state_json(d));
}

void DeadlineStore::complete(Tx& tx, const Actor& actor, const std::string& id) {
  auto existing = find_in(tx, id);
  if (!existing || existing->state == "done") return;
  const Instant now = clock_.now();
  tx.exec("UPDATE deadlines SET state = 'done', done_at = ? WHERE id = ?", {to_epoch(now), id});
  Deadline after = *existing;
  after.state = "done";
  catalog_.audit(tx, actor, "complete", "deadline", id, state_json(*existing), state_json(after));
}

std::optional<Deadline> DeadlineStore::find(const std::string& id) const {
  auto rows = db_.query(std::string("SELECT ") + kColumns + " FROM deadlines WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return read(rows.front());
}

std::vector<Deadline> DeadlineStore::list(const std::string& state) const {
  auto rows =
      state.empty()
          ? db_.query(std::string("SELECT ") + kColumns + " FROM deadlines ORDER BY due, id")
          : db_.query(std::string("SELECT ") + kColumns +
                          " FROM deadlines WHERE state = ? ORDER BY due, id",
                      {state});
  std::vector<Deadline> out;
  for (const auto& r : rows) out.push_back(read(r));
  return out;
}

std::string DeadlineStore::watch() {
  const Instant now = clock_.now();
  const BusinessCalendar provider = catalog_.provider_calendar();
  // Owners are told during their working hours; a notice due at night waits for the morning.
  if (!settings_.notify_outside_business_hours &&
      provider.business_hours({now, now + std::chrono::seconds(1)}).empty()) {
    return "outside business hours: nothing sent";
  }
  const auto horizon =
      provider.add_business_days(local_date(now, provider.zone()), settings_.warn_business_days);
  int warned = 0;
  int missed = 0;
  for (const Deadline& d : list("open")) {
    const bool is_missed = now >= d.due;
    // The deadline's own local day: `due` is the end of it.
    const auto day = local_date(d.due - std::chrono::seconds(1), provider.zone());
    if (!is_missed && (d.warned_at || day > horizon)) continue;
    const char* event = is_missed ? "deadline.missed" : "deadline.due";
    bool changed = false;
    db_.transact([&](Tx& tx) {
      changed = tx.exec(is_missed ? "UPDATE deadlines SET state = 'missed', missed_at = ? WHERE "
                                    "id = ? AND state = 'open'"
                                  : "UPDATE deadlines SET warned_at = ? WHERE id = ? AND state = "
                                    "'open' AND warned_at IS NULL",
                        {to_epoch(now), d.id}) > 0;
      if (!changed) return;
      Json payload = to_json(d);
      payload.erase("warned_at");
      payload.erase("missed_at");
      payload.erase("done_at");
      events_.publish(tx, event, d.id, payload);
    });
    if (!changed) continue;
    const std::string line =
        d.kind + " " + d.subject + (is_missed ? " missed its deadline " : " is due ") +
        format_instant(d.due) + " (" + d.owner_role + ": " + d.description + ")";
    if (is_missed) {
      ++missed;
      log_.error(line);
    } else {
      ++warned;
      log_.warning(line);
    }
  }
  return std::to_string(warned) + " warned, " + std::to_string(missed) + " missed";
}

}  // namespace slmhub::host
