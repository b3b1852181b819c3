#include "deadlines/deadline_store.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "config/settings.hpp"

namespace slmhub::host {
namespace {

const char* const kColumns =
    "id, kind, subject, owner_role, description, due, state, warned_at, missed_at, done_at, "
    "notify";

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "dated obligations and their warnings",
       "CREATE TABLE deadlines(id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT "
       "NULL, owner_role TEXT NOT NULL, description TEXT NOT NULL, due BIGINT NOT NULL, "
       "state TEXT NOT NULL, warned_at BIGINT, missed_at BIGINT, done_at BIGINT);"
       "CREATE INDEX deadlines_state ON deadlines(state, due)"},
      {2, "addresses a deadline's owner wants told (JSON list)",
       "ALTER TABLE deadlines ADD COLUMN notify TEXT NOT NULL DEFAULT '[]'"},
      {3, "how many times a deadline was moved or reopened, for its notices' dedupe keys",
       "ALTER TABLE deadlines ADD COLUMN opened BIGINT NOT NULL DEFAULT 0"},
  };
  return list;
}

std::vector<std::string> sorted_unique(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return items;
}

void check_addresses(const std::vector<std::string>& addresses, const std::string& where) {
  for (const auto& a : addresses) {
    if (!looks_like_email(a))
      throw std::invalid_argument(where + ": expected an e-mail address (local@domain), found '" +
                                  a + "'");
  }
}

std::string notify_text(const std::vector<std::string>& notify) { return Json(notify).dump(); }

// The e-mail one recipient gets: `day` is the deadline's local date in the provider's `zone`.
// The key holds the due instant and how many times the deadline was moved or reopened
// (`opened`), so a moved or reopened deadline is told again, even on a due date it had
// before, and a second pass is not. (Notices from before `opened` existed have none.)
OutboxMessage notice(const Deadline& d, std::int64_t opened, bool missed, const std::string& day,
                     const std::string& zone, const std::string& address) {
  const char* event = missed ? "deadline.missed" : "deadline.due";
  OutboxMessage m;
  m.channel = "email";
  m.destination = address;
  m.subject = (missed ? "Missed " : "Due ") + day + ": " + d.description;
  m.body = std::string(missed ? "A deadline has passed without being met."
                              : "A deadline is near and still open.") +
           "\n\nWhat:     " + d.description + "\nKind:     " + d.kind + "\nSubject:  " + d.subject +
           "\nOwner:    " + d.owner_role + "\nDue:      " + day + ", end of the day in " + zone +
           " (" + format_instant(d.due) + ")" + "\nDeadline: " + d.id + "\n\n" +
           (missed ? "This escalation is sent once. GET /api/v1/deadlines?state=missed lists every "
                     "missed deadline.\n"
                   : "This warning is sent once; moving the deadline warns afresh and completing "
                     "it ends the notices.\n");
  m.dedupe_key = std::string(event) + "/" + d.id + "/" + std::to_string(to_epoch(d.due)) +
                 (opened > 0 ? "/" + std::to_string(opened) : "") + "/" + address;
  return m;
}

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
  d.notify = Json::parse(r.text(10)).get<std::vector<std::string>>();
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
              {"notify", d.notify},
              {"state", d.state}};
  auto instant = [](const std::optional<Instant>& t) {
    return t ? Json(format_instant(*t)) : Json();
  };
  out["warned_at"] = instant(d.warned_at);
  out["missed_at"] = instant(d.missed_at);
  out["done_at"] = instant(d.done_at);
  return out;
}

DeadlineStore::DeadlineStore(Database& db, Catalog& catalog, Events& events, Outbox& outbox,
                             const Clock& clock, Logger& log, DeadlineSettings settings)
    : DeadlineStore(db, catalog, events, &outbox, clock, log, std::move(settings)) {}

DeadlineStore::DeadlineStore(Database& db, Catalog& catalog, Events& events, const Clock& clock,
                             Logger& log, DeadlineSettings settings)
    : DeadlineStore(db, catalog, events, nullptr, clock, log, std::move(settings)) {}

DeadlineStore::DeadlineStore(Database& db, Catalog& catalog, Events& events, Outbox* outbox,
                             const Clock& clock, Logger& log, DeadlineSettings settings)
    : db_(db),
      catalog_(catalog),
      events_(events),
      outbox_(outbox),
      clock_(clock),
      log_(log),
      settings_(std::move(settings)) {
  for (auto& [role, addresses] : settings_.notify) {
    check_addresses(addresses, "deadlines.notify." + role);
    addresses = sorted_unique(std::move(addresses));
  }
  check_addresses(settings_.escalate, "deadlines.escalate");
  settings_.escalate = sorted_unique(std::move(settings_.escalate));
  db_.migrate("host.deadlines", migrations());
}

void DeadlineStore::set(Tx& tx, const Actor& actor, const Deadline& deadline) {
  put(tx, actor, deadline, false);
}

void DeadlineStore::reopen(Tx& tx, const Actor& actor, const Deadline& deadline) {
  put(tx, actor, deadline, true);
}

void DeadlineStore::put(Tx& tx, const Actor& actor, const Deadline& deadline, bool reopen) {
  check_addresses(deadline.notify, "deadline " + deadline.id + " notify");
  const auto notify = sorted_unique(deadline.notify);
  const auto existing = find_in(tx, deadline.id);
  const bool done = existing && existing->state == "done";
  if (done && !reopen) return;
  if (existing && !done && existing->due == deadline.due) {
    // Same promise, other recipients or words (the SIA of an interruption moved to another
    // service): a warning already given stands.
    Json before = Json::object();
    Json after = Json::object();
    const auto changed = [&](const char* key, const auto& was, const auto& is) {
      if (was == is) return;
      before[key] = was;
      after[key] = is;
    };
    changed("kind", existing->kind, deadline.kind);
    changed("subject", existing->subject, deadline.subject);
    changed("owner_role", existing->owner_role, deadline.owner_role);
    changed("description", existing->description, deadline.description);
    changed("notify", existing->notify, notify);
    if (after.empty()) return;
    tx.exec(
        "UPDATE deadlines SET kind = ?, subject = ?, owner_role = ?, description = ?, notify = ? "
        "WHERE id = ?",
        {deadline.kind, deadline.subject, deadline.owner_role, deadline.description,
         notify_text(notify), deadline.id});
    catalog_.audit(tx, actor, after.size() == 1 && after.contains("notify") ? "notify" : "change",
                   "deadline", deadline.id, before, after);
    return;
  }
  Deadline d = deadline;
  d.notify = notify;
  d.state = "open";
  d.warned_at.reset();
  d.missed_at.reset();
  d.done_at.reset();
  // A moved deadline is a new promise: it warns and escalates afresh.
  tx.exec(std::string("INSERT INTO deadlines(") + kColumns +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?) ON CONFLICT(id) DO UPDATE SET "
              "kind = excluded.kind, subject = excluded.subject, owner_role = "
              "excluded.owner_role, description = excluded.description, due = excluded.due, "
              "state = excluded.state, warned_at = NULL, missed_at = NULL, done_at = NULL, "
              "notify = excluded.notify, opened = deadlines.opened + 1",
          {d.id, d.kind, d.subject, d.owner_role, d.description, to_epoch(d.due), d.state,
           notify_text(d.notify)});
  catalog_.audit(tx, actor,
                 !existing ? "create"
                 : done    ? "reopen"
                           : "move",
                 "deadline", d.id, existing ? state_json(*existing) : Json(), state_json(d));
}

std::vector<std::string> DeadlineStore::recipients(const Deadline& deadline,
                                                   const std::string& event) const {
  std::vector<std::string> out = deadline.notify;
  if (auto it = settings_.notify.find(deadline.owner_role); it != settings_.notify.end())
    out.insert(out.end(), it->second.begin(), it->second.end());
  if (event == "deadline.missed")
    out.insert(out.end(), settings_.escalate.begin(), settings_.escalate.end());
  return sorted_unique(std::move(out));
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
  for (const Deadline& listed : list("open")) {
    const bool is_missed = now >= listed.due;
    // The deadline's own local day: `due` is the end of it.
    const auto day = local_date(listed.due - std::chrono::seconds(1), provider.zone());
    if (!is_missed && (listed.warned_at || day > horizon)) continue;
    const std::string event = is_missed ? "deadline.missed" : "deadline.due";
    bool changed = false;
    Deadline d;
    std::vector<std::string> told;
    db_.transact([&](Tx& tx) {
      told.clear();
      changed = false;
      // As of this transaction: its recipients may have changed since the list was read, and
      // a deadline moved or completed meanwhile waits for the next pass.
      const auto current = find_in(tx, listed.id);
      if (!current || current->due != listed.due) return;
      d = *current;
      changed = tx.exec(is_missed ? "UPDATE deadlines SET state = 'missed', missed_at = ? WHERE "
                                    "id = ? AND due = ? AND state = 'open'"
                                  : "UPDATE deadlines SET warned_at = ? WHERE id = ? AND due = ? "
                                    "AND state = 'open' AND warned_at IS NULL",
                        {to_epoch(now), d.id, to_epoch(d.due)}) > 0;
      if (!changed) return;
      Json payload = to_json(d);
      payload.erase("warned_at");
      payload.erase("missed_at");
      payload.erase("done_at");
      events_.publish(tx, event, d.id, payload);
      if (!outbox_) return;
      const std::int64_t opened =
          tx.query("SELECT opened FROM deadlines WHERE id = ?", {d.id})[0].integer(0);
      for (const auto& address : recipients(d, event)) {
        outbox_->enqueue(
            tx, notice(d, opened, is_missed, format_date(day), provider.zone()->name(), address));
        told.push_back(address);
      }
    });
    if (!changed) continue;
    std::string line = d.kind + " " + d.subject +
                       (is_missed ? " missed its deadline " : " is due ") + format_instant(d.due) +
                       " (" + d.owner_role + ": " + d.description + ")";
    if (!told.empty()) {
      line += "; notice to";
      for (const auto& address : told) line += " " + address;
    }
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
