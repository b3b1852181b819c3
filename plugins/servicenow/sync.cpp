#include "sync.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "slmhub/batches.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::servicenow {

struct Sync::Link {
  std::string local_id;
  std::string number;
  std::int64_t mod_count = -1;
  Json synced;  // {"theirs": {field: raw}, "ours": {field: value}}
};

namespace {

constexpr std::size_t kErrorsKept = 20;
// How long a write that may still land holds back the other messages of its ticket at most
// (until the message that made it goes through, unless that one becomes a dead letter), and
// how long the values of a PATCH that may still land are known as ours.
constexpr std::chrono::minutes kInDoubtHeld{10};

// Whether a write that failed with `e` may have been done, and may still land: anything but a
// refusal. A 2xx the client could not read landed; 408 is the server giving up waiting for the
// request, not refusing it.
bool may_have_landed(const Error& e) {
  const int status = e.status();
  return status < 400 || status >= 500 || status == 408;
}

// The sync state of an incident's link, saved.
void save_synced(Tx& tx, const std::string& sys_id, const Json& synced) {
  tx.exec("UPDATE servicenow_links SET synced = ? WHERE tbl = 'incident' AND sys_id = ?",
          {synced.dump(), sys_id});
}

// The sys_mod_count last applied of one record (no row: never applied).
constexpr const char* kAppliedVersionSql =
    "SELECT mod_count FROM servicenow_links WHERE tbl = ? AND sys_id = ?";

std::optional<std::int64_t> integer_of(const std::string& text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::int64_t integer_or(const std::string& text, std::int64_t fallback) {
  return integer_of(text).value_or(fallback);
}

std::string field(const Record& r, const std::string& name) {
  auto it = r.find(name);
  return it == r.end() ? std::string() : it->second;
}

// `id`, or, when another record of `table` is linked to it already (its interruption or window
// would be overwritten), the first of `id` with more and more of `sys_id` that none is.
std::string unlinked_id(Tx& tx, const std::string& table, const std::string& id,
                        const std::string& sys_id) {
  for (const std::string& candidate :
       {id, id + "-" + sys_id.substr(0, 6), id + "-" + sys_id.substr(0, 12)}) {
    if (tx.query("SELECT 1 FROM servicenow_links WHERE tbl = ? AND local_id = ?",
                 {table, candidate})
            .empty())
      return candidate;
  }
  return id + "-" + sys_id;  // the sys_id is the record's own
}

// Our priority 1-5 as ServiceNow impact and urgency, the pair the matrix of DOMAIN.md §7 maps
// back to the same priority (ServiceNow computes priority itself).
std::pair<std::string, std::string> impact_urgency_of(int priority) {
  switch (priority) {
    case 1:
      return {"1", "1"};
    case 2:
      return {"1", "2"};
    case 3:
      return {"2", "2"};
    case 4:
      return {"2", "3"};
    default:
      return {"3", "3"};
  }
}
int priority_of(const Record& r) {
  return static_cast<int>(std::clamp<std::int64_t>(integer_or(field(r, "priority"), 3), 1, 5));
}

// The field groups of a ticket that are synced, as our values and as ServiceNow's.
struct SyncedField {
  const char* theirs;
  const char* ours;
  // What a PATCH of the group writes (the instance computes priority from impact and urgency).
  std::array<const char*, 2> written;
};
constexpr SyncedField kSyncedFields[] = {
    {"state", "status", {"state", nullptr}},
    {"priority", "priority", {"impact", "urgency"}},
    {"short_description", "subject", {"short_description", nullptr}}};
// Whether `text` can go into an encoded query without changing it (no '^', '=', spaces...).
bool query_safe(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.' || c == '@';
  });
}

Json ours_of(const Ticket& t) {
  return {{"status", t.status}, {"priority", t.priority}, {"subject", t.subject}};
}
Json theirs_of(const Record& r) {
  return {{"state", field(r, "state")},
          {"priority", field(r, "priority")},
          {"short_description", field(r, "short_description")},
          {"correlation_id", field(r, "correlation_id")}};
}

std::optional<Instant> glide_instant(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return from_epoch(parse_glide_datetime(text));
}

}  // namespace

std::string Sync::status_of_state(const std::string& state) const {
  // A state the instance added and the mapping does not name is work in progress.
  auto it = settings_.status_of_state.find(state);
  return it == settings_.status_of_state.end() ? "open" : it->second;
}

std::string Sync::state_of_status(const std::string& status) const {
  auto it = settings_.state_of_status.find(status);
  return it == settings_.state_of_status.end() ? "2" : it->second;
}

const char* applied_name(Applied a) {
  switch (a) {
    case Applied::created:
      return "created";
    case Applied::updated:
      return "updated";
    case Applied::unchanged:
      return "unchanged";
    case Applied::stale:
      return "stale";
    case Applied::echo:
      return "echo";
    case Applied::unmapped:
      return "unmapped";
  }
  return "?";
}

Sync::Sync(Host& host, SyncSettings settings, std::shared_ptr<Client> client)
    : host_(host), settings_(std::move(settings)), client_(std::move(client)) {}

void Sync::migrate() {
  host_.store().migrate(
      "servicenow",
      {{1, "ServiceNow inbox, links, echo marks, journal, cursors, sweeps and conflicts",
        "CREATE TABLE servicenow_inbox(id {{serial}}, tbl TEXT NOT NULL, sys_id TEXT NOT NULL, "
        "version TEXT NOT NULL, updated_by TEXT, updated_on TEXT, received_at BIGINT NOT NULL, "
        "body TEXT NOT NULL, state TEXT NOT NULL, detail TEXT, processed_at BIGINT, "
        "UNIQUE(tbl, sys_id, version));"
        "CREATE INDEX servicenow_inbox_state ON servicenow_inbox(state, received_at);"
        "CREATE TABLE servicenow_links(tbl TEXT NOT NULL, sys_id TEXT NOT NULL, number TEXT, "
        "local_id TEXT NOT NULL, mod_count BIGINT NOT NULL, updated_on TEXT NOT NULL, "
        "synced TEXT NOT NULL, PRIMARY KEY(tbl, sys_id));"
        "CREATE INDEX servicenow_links_local ON servicenow_links(tbl, local_id);"
        "CREATE TABLE servicenow_writes(tbl TEXT NOT NULL, sys_id TEXT NOT NULL, "
        "mod_count BIGINT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY(tbl, sys_id, mod_count));"
        "CREATE TABLE servicenow_journal(sys_id TEXT PRIMARY KEY, ticket TEXT NOT NULL, "
        "message BIGINT);"
        "CREATE TABLE servicenow_sent(message BIGINT PRIMARY KEY, ticket TEXT NOT NULL, "
        "at BIGINT NOT NULL);"
        "CREATE TABLE servicenow_cursors(tbl TEXT PRIMARY KEY, updated_on TEXT NOT NULL, "
        "sys_id TEXT NOT NULL);"
        "CREATE TABLE servicenow_sweeps(id {{serial}}, started_at BIGINT NOT NULL, "
        "finished_at BIGINT, seen BIGINT NOT NULL, repaired BIGINT NOT NULL, error TEXT);"
        "CREATE TABLE servicenow_conflicts(id {{serial}}, tbl TEXT NOT NULL, sys_id TEXT NOT "
        "NULL, local_id TEXT NOT NULL, field TEXT NOT NULL, ours TEXT, theirs TEXT, "
        "winner TEXT NOT NULL, at BIGINT NOT NULL)"},
       // A unique key on (tbl, sys_id, version) put every webhook in a random leaf of its
       // index: a 4 KB page written to the WAL and again by the checkpoint per webhook, a
       // fifth of the ingest's throughput. Duplicates are now recognised in memory when they
       // come and, durably, when their event finds the version applied (process_inbox).
       // The rows keep their order but are numbered afresh (both engines' serial columns
       // then go on from the last); an event naming an old number processes whichever row
       // has it now, which is harmless, as processing a row twice is, and every row still
       // pending is re-read by the next sweep.
       {2, "ServiceNow inbox without the unique key on (tbl, sys_id, version)",
        "CREATE TABLE servicenow_inbox_v2(id {{serial}}, tbl TEXT NOT NULL, sys_id TEXT NOT "
        "NULL, version TEXT NOT NULL, updated_by TEXT, updated_on TEXT, received_at BIGINT NOT "
        "NULL, body TEXT NOT NULL, state TEXT NOT NULL, detail TEXT, processed_at BIGINT);"
        "INSERT INTO servicenow_inbox_v2(tbl, sys_id, version, updated_by, updated_on, "
        "received_at, body, state, detail, processed_at) SELECT tbl, sys_id, version, "
        "updated_by, updated_on, received_at, body, state, detail, processed_at FROM "
        "servicenow_inbox ORDER BY id;"
        "DROP TABLE servicenow_inbox;"
        "ALTER TABLE servicenow_inbox_v2 RENAME TO servicenow_inbox;"
        "CREATE INDEX servicenow_inbox_state ON servicenow_inbox(state, received_at)"},
       // A journal entry read before its incident is synced (the sweep reads the journal by
       // creation, and its cursor moves on) waits here for the incident's link.
       {3, "ServiceNow journal entries waiting for their incident",
        "CREATE TABLE servicenow_journal_waiting(sys_id TEXT PRIMARY KEY, incident TEXT NOT "
        "NULL, record TEXT NOT NULL);"
        "CREATE INDEX servicenow_journal_waiting_incident ON "
        "servicenow_journal_waiting(incident)"},
       // Ticket messages in a PATCH not known to have landed: a retry looks for them in the
       // incident's journal before it sends them again.
       {4, "ServiceNow comments being sent",
        "CREATE TABLE servicenow_sending(message BIGINT PRIMARY KEY, at BIGINT NOT NULL)"},
       // When each synced field group of a ticket got its value here (JSON: group -> value
       // and epoch second), for a conflict's later writer: the ticket's updated_at moves
       // with a change of any field. `handled`: the moment of the ticket's last event noted,
       // so a change whose event is not handled yet is known to be there.
       {5, "ServiceNow: when a ticket's field groups changed here",
        "CREATE TABLE servicenow_changed_here(ticket TEXT PRIMARY KEY, fields TEXT NOT NULL, "
        "handled BIGINT NOT NULL);"
        "CREATE INDEX servicenow_changed_here_handled ON servicenow_changed_here(handled)"},
       // Work notes came in as incoming messages, which a customer token reads.
       {6, "ServiceNow work notes are notes, for staff only",
        "UPDATE ticket_messages SET direction = 'note' WHERE direction = 'in' AND author LIKE "
        "'servicenow:%' AND body LIKE 'Work note: %'"}});
}

std::string Sync::receive(const InboundChange& change, const std::string& raw_body) {
  // The version that deduplicates: sys_mod_count, or the body's hash when the rule sends none.
  const std::string version =
      change.mod_count >= 0 ? std::to_string(change.mod_count) : "sha256:" + sha256_hex(raw_body);
  // Only committed webhooks are remembered, so a duplicate is never acknowledged in place of
  // a webhook that was not stored.
  const std::string key = change.table + '\n' + change.sys_id + '\n' + version;
  if (received_.contains(key)) return "duplicate";
  std::string outcome;
  // Webhooks come in bursts: they share commits (the 2xx still follows their own commit).
  host_.store().transact_grouped([&](Tx& tx) {
    if (change.mod_count >= 0 && !settings_.integration_user.empty() &&
        change.updated_by == settings_.integration_user &&
        !tx.query("SELECT 1 FROM servicenow_writes WHERE tbl = ? AND sys_id = ? AND mod_count = ?",
                  {change.table, change.sys_id, change.mod_count})
             .empty()) {
      outcome = "echo";
      return;
    }
    auto rows = tx.query(
        "INSERT INTO servicenow_inbox(tbl, sys_id, version, updated_by, updated_on, received_at, "
        "body, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') RETURNING id",
        {change.table, change.sys_id, version, change.updated_by, change.updated_on,
         to_epoch(host_.clock().now()), raw_body});
    host_.events().publish(
        tx, "servicenow.received", change.table + "/" + change.sys_id,
        {{"inbox", rows[0].integer(0)}, {"table", change.table}, {"sys_id", change.sys_id}});
    outcome = "accepted";
  });
  if (outcome == "accepted") received_.add(key);
  return outcome;
}

void Sync::process_inbox(std::int64_t inbox_id) {
  auto rows = host_.store().query(
      "SELECT tbl, sys_id, state, version FROM servicenow_inbox WHERE id = ?", {inbox_id});
  if (rows.empty() || rows[0].text(2) != "pending") return;
  const std::string table = rows[0].text(0), sys_id = rows[0].text(1);
  std::string state, detail;
  const auto failed = [&](const std::exception& e) {
    state = "failed";
    detail = e.what();
    note_error(table + "/" + sys_id + ": " + detail);
  };
  // A version applied already (the webhook came twice, or a sweep was first) needs no read.
  if (const auto version = integer_of(rows[0].text(3))) {
    const auto applied = host_.store().query(kAppliedVersionSql, {table, sys_id});
    if (!applied.empty() && *version <= applied[0].integer(0)) {
      host_.store().transact([&](Tx& tx) {
        tx.exec(
            "UPDATE servicenow_inbox SET state = 'duplicate', detail = ?, processed_at = ? WHERE "
            "id = ?",
            {"sys_mod_count " + std::to_string(applied[0].integer(0)) + " applied already",
             to_epoch(host_.clock().now()), inbox_id});
      });
      return;
    }
  }
  if (!client_) return;  // stays pending until an instance is configured
  try {
    // A failure to reach the instance throws: the event comes again after a back-off.
    auto record = client_->get(table, sys_id, fields_of(table));
    if (!record) {
      state = "gone";
      detail = "not readable in ServiceNow (deleted, or hidden from the integration user)";
    } else {
      const Applied a = apply(table, *record);
      state = a == Applied::unmapped ? "unmapped" : "applied";
      detail = applied_name(a);
      // A comment or work note changes the incident: its journal entries come with it. The
      // incident is applied whatever that read meets (an integration user without journal
      // read, a 429): the row says so, and the entries are left to the journal sweep.
      if (table == "incident" && a != Applied::stale && a != Applied::echo) {
        read_journal_after(field(*record, "sys_id"), "its webhook");
      }
    }
  } catch (const Problem& e) {  // the record breaks a rule of ours: keep it and say why
    failed(e);
  } catch (const Error& e) {
    // The instance refuses this read for good (an ACL, a table the integration user may not
    // read): retrying would hold up every webhook after it, as events come in order. Bad
    // credentials and rate limits are everyone's problem, and are waited out.
    const int status = e.status();
    if (status < 400 || status >= 500 || status == 401 || status == 407 || status == 429) throw;
    failed(e);
  }
  host_.store().transact([&](Tx& tx) {
    tx.exec("UPDATE servicenow_inbox SET state = ?, detail = ?, processed_at = ? WHERE id = ?",
            {state, detail, to_epoch(host_.clock().now()), inbox_id});
  });
}

void Sync::apply_journal_of(const std::string& incident_sys_id) {
  if (!query_safe(incident_sys_id)) return;
  client_->list("sys_journal_field",
                "element_id=" + incident_sys_id + "^name=incident^ORDERBYsys_created_on",
                fields_of("sys_journal_field"), [&](std::vector<Record>&& page) {
                  for (const auto& entry : page) apply("sys_journal_field", entry);
                });
}

std::vector<std::string> Sync::fields_of(const std::string& table) const {
  // Only what applying reads: half the bytes of whole records to send, parse and hold.
  const std::vector<std::string> common = {"sys_id",         "sys_mod_count",  "sys_updated_on",
                                           "sys_updated_by", "sys_created_on", "sys_created_by"};
  std::vector<std::string> specific;
  if (table == "incident") {
    specific = {"number",    "short_description", "description",     "state",     "priority",
                "impact",    "urgency",           "correlation_id",  "opened_at", "resolved_at",
                "closed_at", "cmdb_ci",           "business_service"};
    if (!settings_.outage_field.empty()) specific.push_back(settings_.outage_field);
  } else if (table == "cmdb_ci_outage") {
    specific = {"cmdb_ci", "type", "begin", "end", "task_number", "short_description"};
  } else if (table == "change_request") {
    specific = {"number", "cmdb_ci", "business_service", "type",
                "impact", "state",   "start_date",       "end_date"};
  } else if (table == "sys_journal_field") {
    specific = {"element_id", "element", "name", "value"};
  }
  specific.insert(specific.begin(), common.begin(), common.end());
  return specific;
}

std::optional<Sync::Link> Sync::link_by_sys_id(Tx& tx, const std::string& table,
                                               const std::string& sys_id) {
  auto rows = tx.query(
      "SELECT local_id, number, mod_count, synced FROM servicenow_links WHERE tbl = ? AND "
      "sys_id = ?",
      {table, sys_id});
  if (rows.empty()) return std::nullopt;
  return Link{rows[0].text(0), rows[0].optional_text(1).value_or(""), rows[0].integer(2),
              Json::parse(rows[0].text(3))};
}

Applied Sync::apply(const std::string& table, const Record& r) {
  Applied result = Applied::unchanged;
  host_.store().transact([&](Tx& tx) { result = apply(tx, table, r); });
  return result;
}

Applied Sync::apply(Tx& tx, const std::string& table, const Record& r) {
  const std::string sys_id = field(r, "sys_id");
  if (sys_id.empty()) throw ValidationError("sys_id", "the " + table + " record has no sys_id");
  if (table == "sys_journal_field") return apply_journal(tx, r);
  std::optional<std::int64_t> applied;
  for (const auto& row : tx.query(kAppliedVersionSql, {table, sys_id})) {
    applied = row.integer(0);
  }
  return apply(tx, table, r, applied);
}

Applied Sync::apply(Tx& tx, const std::string& table, const Record& r,
                    std::optional<std::int64_t> applied) {
  const std::string sys_id = field(r, "sys_id");
  const std::int64_t mod = integer_or(field(r, "sys_mod_count"), 0);
  if (applied && mod <= *applied) return Applied::stale;
  if (field(r, "sys_updated_by") == settings_.integration_user &&
      !tx.query("SELECT 1 FROM servicenow_writes WHERE tbl = ? AND sys_id = ? AND mod_count = ?",
                {table, sys_id, mod})
           .empty()) {
    return Applied::echo;
  }
  if (table == "incident") {
    // No link without an applied version: a new record costs no second look.
    return apply_incident(tx, r, applied ? link_by_sys_id(tx, table, sys_id) : std::nullopt);
  }
  if (table == "cmdb_ci_outage") return apply_outage(tx, r);
  if (table == "change_request") return apply_change(tx, r);
  throw ValidationError("table", "'" + table + "' is not synced");
}

void Sync::save_link(Tx& tx, const std::string& table, const Record& r, const std::string& local_id,
                     const Json& synced) {
  tx.exec(
      "INSERT INTO servicenow_links(tbl, sys_id, number, local_id, mod_count, updated_on, synced) "
      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tbl, sys_id) DO UPDATE SET number = "
      "excluded.number, local_id = excluded.local_id, mod_count = excluded.mod_count, "
      "updated_on = excluded.updated_on, synced = excluded.synced",
      {table, field(r, "sys_id"), field(r, "number"), local_id,
       integer_or(field(r, "sys_mod_count"), 0), field(r, "sys_updated_on"), synced.dump()});
}

void Sync::record_write(Tx& tx, const std::string& table, const Record& r) {
  tx.exec(
      "INSERT INTO servicenow_writes(tbl, sys_id, mod_count, at) VALUES (?, ?, ?, ?) "
      "ON CONFLICT(tbl, sys_id, mod_count) DO NOTHING",
      {table, field(r, "sys_id"), integer_or(field(r, "sys_mod_count"), 0),
       to_epoch(host_.clock().now())});
}

Applied Sync::apply_incident(Tx& tx, const Record& r, const std::optional<Link>& link) {
  const Applied result = apply_ticket(tx, r, link);
  try {
    record_incident_outage(tx, r);
  } catch (const Problem& e) {
    // An outage we cannot record (resolved the moment it opened, a service that is gone) does
    // not hold up the ticket, nor undo a write of ours that carried it.
    note_error("incident " + field(r, "number") + " as an outage: " + e.what());
  }
  return result;
}

void Sync::record_incident_outage(Tx& tx, const Record& r) {
  if (settings_.outage_field.empty()) return;
  const std::string flag = field(r, settings_.outage_field);
  const auto service = service_of(r);
  // The interruption this incident made before, if any: when the flag is taken off or the CI
  // is moved to one that is not ours, it is withdrawn, or its downtime would still count.
  const auto made = link_by_sys_id(tx, "incident_outage", field(r, "sys_id"));
  const auto withdraw = [&](const std::string& why) {
    if (!made) return;
    withdraw_interruption(tx, made->local_id, "incident " + field(r, "number") + " " + why);
    tx.exec("DELETE FROM servicenow_links WHERE tbl = 'incident_outage' AND sys_id = ?",
            {field(r, "sys_id")});
  };
  if ((flag != "true" && flag != "1") || !service) {
    withdraw(service ? "is no longer flagged as an outage"
                     : "moved to CI '" + field(r, "cmdb_ci") + "', which has no service");
    if (!service && (flag == "true" || flag == "1")) {
      note_error("incident " + field(r, "number") + " is flagged as an outage but its CI '" +
                 field(r, "cmdb_ci") + "' has no service (plugins.servicenow.ci_services)");
    }
    return;
  }
  // Counted once it is resolved: reopened (or cancelled), it is not, and the interruption
  // recorded at its resolution would count an end that no longer holds.
  const auto state = integer_or(field(r, "state"), 1);
  if (state != 6 && state != 7) {
    withdraw("is no longer resolved (state " + field(r, "state") + ")");
    return;
  }
  auto start = glide_instant(field(r, "opened_at"));
  if (!start) return;
  Interruption item;
  item.id = field(r, "number");
  item.service = *service;
  item.type = InterruptionType::outage;
  item.start = *start;
  item.end = glide_instant(field(r, "resolved_at"));
  if (!item.end) item.end = glide_instant(field(r, "closed_at"));
  if (const auto d = field(r, "short_description"); !d.empty()) item.description = d;
  host_.catalog().record_interruption(tx, actor_, item);
  save_link(tx, "incident_outage", r, item.id, Json::object());
}

void Sync::withdraw_interruption(Tx& tx, const std::string& id, const std::string& why) {
  if (host_.catalog().remove_interruption(tx, actor_, id)) {
    host_.log().info("servicenow: interruption " + id + " withdrawn: " + why);
  }
}

Applied Sync::apply_ticket(Tx& tx, const Record& r, const std::optional<Link>& link) {
  const Json theirs = theirs_of(r);
  if (!link) {
    // Ours already (created here, its create answer lost) or new from ServiceNow.
    std::optional<Ticket> ticket;
    if (const auto correlation = field(r, "correlation_id"); !correlation.empty()) {
      ticket = host_.tickets().find(correlation);
    }
    if (ticket) {
      // Ours, linked now: merged like any change against what we sent, so a change made
      // there since our create is applied, not taken as known.
      const Applied a =
          apply_ticket(tx, r, Link{ticket->id, "", -1, synced_as_created(r, *ticket)});
      apply_waiting_journal(tx, field(r, "sys_id"));
      return a == Applied::unchanged ? Applied::updated : a;
    }
    Ticket t;
    t.queue = settings_.incident_queue;
    t.kind = "incident";
    t.subject = field(r, "short_description");
    if (t.subject.empty()) t.subject = field(r, "number");
    t.status = status_of_state(field(r, "state"));
    t.priority = priority_of(r);
    t.requester = "servicenow";
    t.external_ref = field(r, "number");
    // Opened when it was opened there: a sweep that brings it in later does not restart its
    // first-response target.
    if (const auto opened = glide_instant(field(r, "opened_at"))) t.created_at = *opened;
    if (const auto d = field(r, "description"); !d.empty()) {
      t.messages.push_back({0, "in", "servicenow:" + field(r, "sys_created_by"), d, "", {}});
    }
    ticket = host_.tickets().create(tx, actor_, t);
    save_link(tx, "incident", r, ticket->id, {{"theirs", theirs}, {"ours", ours_of(*ticket)}});
    apply_waiting_journal(tx, field(r, "sys_id"));
    return Applied::created;
  }
  auto ticket = host_.tickets().find(link->local_id);
  Json synced = link->synced;
  if (!ticket) {  // deleted here: keep following the record, change nothing
    save_link(tx, "incident", r, link->local_id, synced);
    return Applied::unchanged;
  }
  const Json mapped = ours_in(r);  // their values in our terms
  const Instant their_time =
      glide_instant(field(r, "sys_updated_on")).value_or(host_.clock().now());
  bool changed = false, ours_won = false;
  Json& synced_theirs = synced["theirs"];
  Json& synced_ours = synced["ours"];
  const Json our_now = ours_of(*ticket);
  // Written there by our integration user, and not recorded as our write (apply() drops those
  // as echoes): back before the send that wrote it was recorded (the instance's webhook can
  // overtake it). The send noted what it was writing (`sending`) before it wrote: a group
  // holding those values is ours, from an earlier moment, and the ticket's values stand and
  // go out again where they differ, whatever the clocks say (they tick in seconds). Any other
  // group changed there was changed by someone else before our write, and is applied like
  // any change (so is every group of a write that noted nothing: a comment, or our case
  // number). The notes of attempts that failed without a refusal (`in_flight`) are ours too
  // while such a write may still land: one landing after a later write of ours is an old
  // value of ours, not someone's change.
  const bool ours_echoed = !settings_.integration_user.empty() &&
                           field(r, "sys_updated_by") == settings_.integration_user;
  const Json sending = synced.value("sending", Json::object());
  const Json in_flight = live_in_flight(synced);
  const auto holds = [&](const Json& note, const SyncedField& g) {
    for (const char* w : g.written) {
      if (w != nullptr && (!note.contains(w) || note[w] != field(r, w))) return false;
    }
    return true;
  };
  const auto ours_in_record = [&](const SyncedField& g) {
    if (!ours_echoed) return false;
    for (const Json& earlier : in_flight) {
      if (holds(earlier.at("values"), g)) return true;
    }
    return holds(sending, g);
  };
  const bool goes_out = settings_.outbound_kinds.contains(ticket->kind);
  for (const auto& g : kSyncedFields) {
    if (synced_theirs.value(g.theirs, Json()) == theirs[g.theirs]) continue;  // not changed there
    const Json& value = mapped[g.ours];  // theirs, in our terms
    const bool ours_changed = synced_ours.value(g.ours, Json()) != our_now[g.ours];
    if (ours_in_record(g)) {
      synced_theirs[g.theirs] = theirs[g.theirs];
      synced_ours[g.ours] = value;
      if (our_now[g.ours] != value) ours_won = true;
      continue;
    }
    if (ours_changed && our_now[g.ours] != value) {
      // Both sides changed the field since the last sync: the later writer wins. Ours
      // changed at the ticket event that first showed its value; an event not handled yet
      // is recent, and no later than the ticket's last change. A ticket whose changes never
      // go out (outbound.enabled false, a kind not in outbound.kinds) cannot win: its value
      // would never reach the instance, and the instance's change would be lost.
      const Instant our_time = changed_here_at(tx, *ticket, g.ours).value_or(ticket->updated_at);
      const bool theirs_win = !goes_out || their_time >= our_time;
      tx.exec(
          "INSERT INTO servicenow_conflicts(tbl, sys_id, local_id, field, ours, theirs, winner, "
          "at) VALUES ('incident', ?, ?, ?, ?, ?, ?, ?)",
          {field(r, "sys_id"), ticket->id, std::string(g.ours), our_now[g.ours].dump(),
           value.dump(), std::string(theirs_win ? "servicenow" : "slmhub"),
           to_epoch(host_.clock().now())});
      if (!theirs_win) {
        synced_theirs[g.theirs] = theirs[g.theirs];
        ours_won = true;
        continue;
      }
    }
    if (std::string(g.ours) == "status") ticket->status = value.get<std::string>();
    if (std::string(g.ours) == "priority") ticket->priority = value.get<int>();
    if (std::string(g.ours) == "subject") ticket->subject = value.get<std::string>();
    synced_theirs[g.theirs] = theirs[g.theirs];
    synced_ours[g.ours] = value;
    changed = true;
  }
  synced_theirs["correlation_id"] = theirs["correlation_id"];
  if (ticket->external_ref != field(r, "number")) {
    ticket->external_ref = field(r, "number");
    changed = true;
  }
  if (changed) host_.tickets().update(tx, actor_, *ticket);
  save_link(tx, "incident", r, ticket->id, synced);
  if (ours_won && !changed) {
    // Nothing changed here, so no ticket event will push our winning values: ask for it.
    host_.outbox().enqueue(
        tx, {0, "servicenow", "incident", ticket->id, Json{{"ticket", ticket->id}}.dump(),
             Json::object(), "conflict/" + ticket->id + "/" + field(r, "sys_mod_count")});
  }
  return changed ? Applied::updated : Applied::unchanged;
}

Applied Sync::apply_journal(Tx& tx, const Record& r) {
  // Journal entries never change: each becomes one ticket message, once. Our own comments come
  // back this way too and are skipped.
  if (field(r, "name") != "incident" ||
      (field(r, "element") != "comments" && field(r, "element") != "work_notes")) {
    return Applied::unmapped;
  }
  const std::string sys_id = field(r, "sys_id");
  if (!tx.query("SELECT 1 FROM servicenow_journal WHERE sys_id = ?", {sys_id}).empty()) {
    return Applied::stale;
  }
  auto link = link_by_sys_id(tx, "incident", field(r, "element_id"));
  if (!link) {
    // Its incident is not synced yet: the entry is applied when the incident is linked.
    tx.exec(
        "INSERT INTO servicenow_journal_waiting(sys_id, incident, record) VALUES (?, ?, ?) ON "
        "CONFLICT(sys_id) DO NOTHING",
        {sys_id, field(r, "element_id"), Json(r).dump()});
    return Applied::unmapped;
  }
  if (field(r, "sys_created_by") == settings_.integration_user) {
    tx.exec("INSERT INTO servicenow_journal(sys_id, ticket, message) VALUES (?, ?, NULL)",
            {sys_id, link->local_id});
    return Applied::echo;
  }
  std::optional<std::int64_t> message;
  if (host_.tickets().find_fields(link->local_id)) {
    TicketMessage m;
    // A work note is internal there (only comments reach the caller): a note here.
    const bool work_note = field(r, "element") == "work_notes";
    m.direction = work_note ? "note" : "in";
    m.author = "servicenow:" + field(r, "sys_created_by");
    m.body = (work_note ? "Work note: " : "") + field(r, "value");
    if (auto at = glide_instant(field(r, "sys_created_on"))) m.at = *at;
    message = host_.tickets().add_message(tx, actor_, link->local_id, m).id;
  }
  tx.exec("INSERT INTO servicenow_journal(sys_id, ticket, message) VALUES (?, ?, ?)",
          {sys_id, link->local_id, message ? Value{*message} : Value{}});
  return Applied::created;
}

Json Sync::ours_in(const Record& r) const {
  return {{"status", status_of_state(field(r, "state"))},
          {"priority", priority_of(r)},
          {"subject", field(r, "short_description")}};
}

Json Sync::synced_as_created(const Record& r, const Ticket& t) const {
  if (field(r, "sys_updated_by") == settings_.integration_user) {
    // Still as we wrote it: its values are what we sent, in our terms.
    return {{"theirs", theirs_of(r)}, {"ours", ours_in(r)}};
  }
  // Written there since: what our create sent, from the ticket (a change here since then
  // goes out with the ticket's own event).
  return {{"theirs",
           {{"state", state_of_status(t.status)},
            {"priority", std::to_string(t.priority)},
            {"short_description", t.subject},
            {"correlation_id", t.id}}},
          {"ours", ours_of(t)}};
}

void Sync::apply_waiting_journal(Tx& tx, const std::string& incident_sys_id) {
  const auto waiting = tx.query(
      "SELECT sys_id, record FROM servicenow_journal_waiting WHERE incident = ? ORDER BY sys_id",
      {incident_sys_id});
  if (waiting.empty()) return;
  std::vector<Record> entries;
  for (const auto& row : waiting) entries.push_back(Json::parse(row.text(1)).get<Record>());
  // In the order they were written, as the journal is read.
  std::stable_sort(entries.begin(), entries.end(), [](const Record& a, const Record& b) {
    return field(a, "sys_created_on") < field(b, "sys_created_on");
  });
  tx.exec("DELETE FROM servicenow_journal_waiting WHERE incident = ?", {incident_sys_id});
  for (const auto& entry : entries) apply_journal(tx, entry);
}

std::optional<std::string> Sync::service_of(const Record& r) const {
  for (const char* name : {"cmdb_ci", "business_service"}) {
    if (auto it = settings_.ci_services.find(field(r, name)); it != settings_.ci_services.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

Applied Sync::apply_outage(Tx& tx, const Record& r) {
  const std::string type = field(r, "type");
  auto link = link_by_sys_id(tx, "cmdb_ci_outage", field(r, "sys_id"));
  auto service = service_of(r);
  if (type != "outage" && type != "degradation") {
    // Planned: maintenance, which comes from its change. An outage re-classified as planned
    // withdraws the interruption it made; the link stays, so a change back reuses its id.
    if (link) {
      withdraw_interruption(
          tx, link->local_id,
          "cmdb_ci_outage " + field(r, "sys_id") + " is now of type '" + type + "'");
      save_link(tx, "cmdb_ci_outage", r, link->local_id, Json::object());
    }
    return Applied::unmapped;
  }
  if (!service) {
    note_error("cmdb_ci_outage " + field(r, "sys_id") + ": CI '" + field(r, "cmdb_ci") +
               "' has no service (plugins.servicenow.ci_services)");
    if (link) {
      withdraw_interruption(tx, link->local_id,
                            "cmdb_ci_outage " + field(r, "sys_id") + " moved to CI '" +
                                field(r, "cmdb_ci") + "', which has no service");
      save_link(tx, "cmdb_ci_outage", r, link->local_id, Json::object());
    }
    return Applied::unmapped;
  }
  std::string id;
  if (link) {
    id = link->local_id;
  } else {
    // The incident's number when we know the incident, else one made from the outage's id.
    if (auto task = link_by_sys_id(tx, "incident", field(r, "task_number"));
        task && !task->number.empty()) {
      id = task->number;
    } else {
      id = "SNO" + field(r, "sys_id").substr(0, 12);
    }
    // A second outage of the incident, or sys_ids that begin alike.
    id = unlinked_id(tx, "cmdb_ci_outage", id, field(r, "sys_id"));
  }
  Interruption item;
  item.id = id;
  item.service = *service;
  item.type = type == "outage" ? InterruptionType::outage : InterruptionType::degradation;
  auto begin = glide_instant(field(r, "begin"));
  if (!begin)
    throw ValidationError("begin", "cmdb_ci_outage " + field(r, "sys_id") + " has no begin");
  item.start = *begin;
  item.end = glide_instant(field(r, "end"));
  if (const auto d = field(r, "short_description"); !d.empty()) item.description = d;
  host_.catalog().record_interruption(tx, actor_, item);
  save_link(tx, "cmdb_ci_outage", r, id, Json::object());
  return link ? Applied::updated : Applied::created;
}

Applied Sync::apply_change(Tx& tx, const Record& r) {
  auto service = service_of(r);
  auto start = glide_instant(field(r, "start_date"));
  auto end = glide_instant(field(r, "end_date"));
  auto link = link_by_sys_id(tx, "change_request", field(r, "sys_id"));
  if (!service || !start || !end) {
    if (!service) {
      note_error("change_request " + field(r, "number") + ": CI '" + field(r, "cmdb_ci") +
                 "' has no service (plugins.servicenow.ci_services)");
    }
    // A change recorded before, now moved to a CI that is not ours or without its planned
    // dates: its window no longer stands (it would still count as maintenance and show on
    // the calendar). Cancelled, as outages are withdrawn; the link stays for a change back.
    if (link) {
      if (auto window = host_.catalog().maintenance(link->local_id);
          window && window->status == MaintenanceStatus::scheduled) {
        window->status = MaintenanceStatus::cancelled;
        host_.catalog().record_maintenance(tx, actor_, *window);
        host_.log().info("servicenow: maintenance " + window->id + " cancelled: change_request " +
                         field(r, "number") +
                         (service ? " has no planned dates" : " moved to a CI that is not ours"));
      }
      save_link(tx, "change_request", r, link->local_id, Json::object());
    }
    return Applied::unmapped;  // not planned yet, or not one of our services
  }
  MaintenanceWindow item;
  if (link) {
    item.id = link->local_id;
  } else {
    item.id = unlinked_id(
        tx, "change_request",
        field(r, "number").empty() ? "SNC" + field(r, "sys_id").substr(0, 12) : field(r, "number"),
        field(r, "sys_id"));
  }
  item.service = *service;
  item.start = *start;
  item.end = *end;
  item.announced_at = glide_instant(field(r, "sys_created_on"));
  // Category from the type, the impact and the notice given (DOMAIN.md §8): a high or medium
  // impact (1, 2) is disruptive; under 5 business days of notice a disruptive change is an
  // emergency and any other expedited; with the notice, planned, an outage if disruptive.
  const bool disruptive = integer_or(field(r, "impact"), 3) <= 2;
  const bool short_notice = item.announced_at && !host_.catalog().provider_calendar().gives_notice(
                                                     *item.announced_at, item.start, 5);
  if (field(r, "type") == "emergency" || (short_notice && disruptive)) {
    item.category = MaintenanceCategory::emergency;
  } else if (short_notice) {
    item.category = MaintenanceCategory::expedited_non_disruptive;
  } else {
    item.category = disruptive ? MaintenanceCategory::planned_outage
                               : MaintenanceCategory::planned_non_disruptive;
  }
  const auto state = integer_or(field(r, "state"), -5);
  item.status = state == 4   ? MaintenanceStatus::cancelled
                : state == 3 ? MaintenanceStatus::complete
                             : MaintenanceStatus::scheduled;
  host_.catalog().record_maintenance(tx, actor_, item);
  save_link(tx, "change_request", r, item.id, Json::object());
  return link ? Applied::updated : Applied::created;
}

void Sync::on_ticket_event(const Event& event) {
  const Json& p = event.payload;
  std::string key = event.type + "/" + std::to_string(event.id);
  Json body = {{"ticket", event.subject}};
  if (event.type == "ticket.message_added") body["message"] = p.value("message", std::int64_t{0});
  host_.store().transact([&](Tx& tx) {
    note_changed_here(tx, event.subject, p, event.at);
    host_.outbox().enqueue(
        tx, {0, "servicenow", "incident", event.subject, body.dump(), Json::object(), key});
  });
}

Json Sync::live_in_flight(const Json& synced) const {
  Json live = Json::array();
  const std::int64_t since = to_epoch(host_.clock().now() - kInDoubtHeld);
  if (const auto it = synced.find("in_flight"); it != synced.end() && it->is_array()) {
    for (const Json& earlier : *it) {
      if (earlier.value("at", std::int64_t{0}) > since) live.push_back(earlier);
    }
  }
  return live;
}

void Sync::note_in_flight(Json& synced, const Json& values) const {
  Json live = live_in_flight(synced);
  const std::int64_t now = to_epoch(host_.clock().now());
  const auto same = std::find_if(live.begin(), live.end(), [&](const Json& earlier) {
    return earlier.at("values") == values;
  });
  if (same != live.end()) {
    (*same)["at"] = now;
  } else {
    live.push_back({{"values", values}, {"at", now}});
  }
  synced["in_flight"] = std::move(live);
}

void Sync::note_changed_here(Tx& tx, const std::string& ticket, const Json& event, Instant at) {
  // Events come in commit order: a group keeps the moment of the first event that showed its
  // present value, and a change back to an earlier value is a new moment. Every event of the
  // ticket (a message's too: it moves updated_at) is noted as handled.
  Json noted = Json::object();
  for (const auto& row :
       tx.query("SELECT fields FROM servicenow_changed_here WHERE ticket = ?", {ticket})) {
    noted = Json::parse(row.text(0));
  }
  for (const auto& g : kSyncedFields) {
    if (!event.contains(g.ours)) continue;
    Json& entry = noted[g.ours];
    if (entry.is_object() && entry.value("value", Json()) == event[g.ours]) continue;
    entry = {{"value", event[g.ours]}, {"at", to_epoch(at)}};
  }
  tx.exec(
      "INSERT INTO servicenow_changed_here(ticket, fields, handled) VALUES (?, ?, ?) ON "
      "CONFLICT(ticket) DO UPDATE SET fields = excluded.fields, handled = excluded.handled",
      {ticket, noted.dump(), to_epoch(at)});
}

std::optional<Instant> Sync::changed_here_at(Tx& tx, const Ticket& ticket, const char* ours) {
  const Json value = ours_of(ticket)[ours];
  for (const auto& row : tx.query(
           "SELECT fields, handled FROM servicenow_changed_here WHERE ticket = ?", {ticket.id})) {
    // A change after the last event handled is not noted yet: an older note of the same
    // value (changed away and back since) would say the value is older than it is.
    if (from_epoch(row.integer(1)) < ticket.updated_at) return std::nullopt;
    const Json noted = Json::parse(row.text(0));
    if (const auto it = noted.find(ours);
        it != noted.end() && it->is_object() && it->value("value", Json()) == value) {
      return from_epoch(it->at("at").get<std::int64_t>());
    }
  }
  return std::nullopt;
}

void Sync::send(const OutboxMessage& message) {
  if (!client_) throw std::runtime_error("no ServiceNow instance is configured");
  const std::string id = Json::parse(message.body).at("ticket").get<std::string>();
  const Instant now = host_.clock().now();
  {
    std::lock_guard lock(mutex_);
    if (const auto it = in_doubt_.find(id); it != in_doubt_.end()) {
      if (now - it->second.since >= kInDoubtHeld) {
        in_doubt_.erase(it);  // that message is a dead letter, or long since landed
      } else if (it->second.message != message.id) {
        throw std::runtime_error("a write for " + id + " by outbox message " +
                                 std::to_string(it->second.message) + " since " +
                                 format_instant(it->second.since) +
                                 " may still land in the instance: this one waits for it");
      }
    }
  }
  bool in_doubt = false;
  try {
    send_ticket(id, in_doubt);
  } catch (...) {
    if (in_doubt) {
      // Each doubtful failure of this message holds the others back anew.
      std::lock_guard lock(mutex_);
      in_doubt_.insert_or_assign(id, InDoubt{message.id, now});
    }
    throw;
  }
  std::lock_guard lock(mutex_);
  if (const auto it = in_doubt_.find(id); it != in_doubt_.end() && it->second.message == message.id)
    in_doubt_.erase(it);
}

void Sync::send_ticket(const std::string& id, bool& in_doubt) {
  // The writes that cannot be repeated blindly: a create, and a PATCH carrying comments. Failed
  // with no answer or a server error, they may have been done (a refusal, 4xx, was not), and
  // the ticket's other messages wait for them. (A PATCH of field values is not repeated
  // blindly either, but needs no wait: its note is kept `in_flight` on the link, so its
  // write landing late is known as ours.)
  const auto doubtful = [&in_doubt](const Error& e) { in_doubt = may_have_landed(e); };
  // The ticket and its link from one moment: a change applied between two reads would have
  // the link's values newer than the ticket's, and the older ticket value would go out.
  std::optional<Ticket> ticket;
  std::optional<Link> link;
  std::string sys_id;
  const auto load = [&] {
    host_.store().transact([&](Tx& tx) {
      ticket = host_.tickets().find(id);
      auto rows = tx.query(
          "SELECT sys_id FROM servicenow_links WHERE tbl = 'incident' AND "
          "local_id = ?",
          {id});
      if (rows.empty()) return;
      sys_id = rows[0].text(0);
      link = link_by_sys_id(tx, "incident", sys_id);
    });
  };
  // The field groups changed here since the last sync: what a PATCH writes.
  const auto changed_groups = [&] {
    std::vector<SyncedField> groups;
    const Json our_now = ours_of(*ticket);
    const Json& synced_ours = link->synced["ours"];
    for (const auto& f : kSyncedFields) {
      if (synced_ours.value(f.ours, Json()) != our_now[f.ours]) groups.push_back(f);
    }
    return groups;
  };
  load();
  if (!ticket) return;
  if (!settings_.outbound_kinds.contains(ticket->kind)) return;
  if (link && !changed_groups().empty()) {
    // A PATCH overwrites whatever the instance holds, and the Table API has no conditional
    // update: a change made there whose webhook has not come yet would be lost, with no
    // conflict seen. The incident is read first, and a version not applied yet is applied
    // (both sides' changes to one group judged by their times) before what goes out is
    // decided. Between this read and the write the window is one round trip.
    const auto current = client_->get("incident", sys_id, fields_of("incident"));
    if (!current) {
      throw std::runtime_error("incident " + link->number + " (" + sys_id +
                               ") is not readable in ServiceNow (deleted, or hidden from the "
                               "integration user): nothing is written to it");
    }
    if (integer_or(field(*current, "sys_mod_count"), 0) > link->mod_count) {
      if (const Applied a = apply("incident", *current);
          a != Applied::stale && a != Applied::echo) {
        read_journal_after(sys_id, "the read before our write");
      }
      load();
      if (!ticket) return;
    }
  }

  const auto [impact, urgency] = impact_urgency_of(ticket->priority);
  if (!link) {
    Record fields = {{"short_description", ticket->subject},
                     {"state", state_of_status(ticket->status)},
                     {"impact", impact},
                     {"urgency", urgency},
                     {"correlation_id", ticket->id},
                     {"correlation_display", "slmhub"}};
    if (!ticket->messages.empty()) fields["description"] = ticket->messages.front().body;
    if (ticket->status == "resolved" || ticket->status == "closed") {
      fields["close_code"] = settings_.close_code;
      fields["close_notes"] = "Resolved in slmhub as " + ticket->id;
    }
    Record created;
    std::optional<std::string> key_lost;
    try {
      created = client_->create_unique("incident", fields, "correlation_id");
    } catch (const KeyNotStored& e) {
      // Created, but without our case number in correlation_id (an ACL on the field, a
      // business rule rewriting it). Linked by its sys_id below like any other, so its webhook
      // is our echo and the ticket's later changes update it; given up on instead, each later
      // change found no link and created yet another incident, whose webhook became a ticket.
      created = e.record();
      key_lost = e.what();
    } catch (const Error& e) {
      doubtful(e);
      throw;
    }
    host_.store().transact([&](Tx& tx) {
      record_write(tx, "incident", created);
      // The first message went as the description, whoever links the incident: the webhook
      // of this create can have linked it already (by its correlation_id).
      if (!ticket->messages.empty()) note_sent(tx, ticket->messages.front().id, ticket->id);
      if (link_by_sys_id(tx, "incident", field(created, "sys_id"))) return;
      if (field(created, "sys_updated_by") != settings_.integration_user) {
        // Found, not created (the create's answer was lost), and changed there since.
        apply_incident(tx, created, Link{ticket->id, "", -1, synced_as_created(created, *ticket)});
        apply_waiting_journal(tx, field(created, "sys_id"));
        return;
      }
      // What the instance holds, in our terms: when an earlier attempt whose answer was lost
      // created it, a change made here since is not there yet, and goes out below.
      save_link(tx, "incident", created, ticket->id, synced_as_created(created, *ticket));
      apply_waiting_journal(tx, field(created, "sys_id"));
      auto current = host_.tickets().find(ticket->id);
      if (current && current->external_ref != field(created, "number")) {
        current->external_ref = field(created, "number");
        host_.tickets().update(tx, actor_, *current);
      }
    });
    sys_id = field(created, "sys_id");
    host_.store().transact([&](Tx& tx) { link = link_by_sys_id(tx, "incident", sys_id); });
    if (key_lost) {
      // Only a create whose answer is lost cannot be found again: it would be sent twice.
      host_.log().warning("servicenow: incident " + field(created, "number") + " of " + ticket->id +
                          ": " + *key_lost +
                          "; it is linked by its sys_id, but a create whose answer is " +
                          "lost could not be found and would be sent again: let the integration " +
                          "user write incident.correlation_id");
    }
  }

  // What changed here since the last sync goes out as one PATCH.
  Record patch;
  const Json our_now = ours_of(*ticket);
  const std::vector<SyncedField> sent_fields = changed_groups();  // the groups it writes
  for (const auto& f : sent_fields) {
    const std::string_view ours = f.ours;
    if (ours == "status") {
      patch["state"] = state_of_status(ticket->status);
      if (ticket->status == "pending") patch["hold_reason"] = "1";
      if (ticket->status == "resolved" || ticket->status == "closed") {
        patch["close_code"] = settings_.close_code;
        patch["close_notes"] = "Resolved in slmhub as " + ticket->id;
      }
    } else if (ours == "priority") {
      patch["impact"] = impact;
      patch["urgency"] = urgency;
    } else if (ours == "subject") {
      patch["short_description"] = ticket->subject;
    }
  }
  // An incident raised there gets our case number, unless it carries another system's id
  // already (a monitoring tool's alert): that system finds its incident by it.
  if (link->synced["theirs"].value("correlation_id", "").empty()) {
    patch["correlation_id"] = ticket->id;
    patch["correlation_display"] = "slmhub";
  }
  // Messages written here (not those that came from ServiceNow) go out as comments, once.
  std::vector<const TicketMessage*> unsent;
  for (const auto& m : ticket->messages) {
    // Notes are for staff: a comment reaches the caller.
    if (m.author.starts_with("servicenow:") || m.direction == "note") continue;
    if (!host_.store().query("SELECT 1 FROM servicenow_sent WHERE message = ?", {m.id}).empty()) {
      continue;
    }
    unsent.push_back(&m);
  }
  std::vector<std::int64_t> sent;
  std::string comments;
  // A comment is not idempotent: an attempt whose answer was lost may have added it. Those
  // attempted before are looked for among our user's comments on the incident first.
  std::optional<std::vector<std::string>> there;
  for (const TicketMessage* m : unsent) {
    const std::string text = m->author + ":\n" + m->body;
    sent.push_back(m->id);
    if (!host_.store()
             .query("SELECT 1 FROM servicenow_sending WHERE message = ?", {m->id})
             .empty()) {
      if (!there) there = our_comments_on(sys_id);
      if (std::any_of(there->begin(), there->end(),
                      [&](const std::string& c) { return c.find(text) != std::string::npos; })) {
        continue;
      }
    }
    comments += (comments.empty() ? "" : "\n\n") + text;
  }
  if (!comments.empty()) patch["comments"] = comments;
  const auto mark_sent = [&](Tx& tx) {
    for (auto m : sent) note_sent(tx, m, ticket->id);
  };
  if (patch.empty()) {
    if (!sent.empty()) host_.store().transact(mark_sent);
    return;
  }

  // What goes out is noted first. This write's webhook can be applied before the write is
  // recorded, and tells our values from someone else's by the note on the link; a retry
  // after an answer that was lost looks for the noted messages among the comments.
  Json sending = Json::object();
  for (const auto& f : sent_fields) {
    for (const char* w : f.written) {
      if (w != nullptr) sending[w] = patch.at(w);
    }
  }
  if (!sending.empty() || !comments.empty()) {
    host_.store().transact([&](Tx& tx) {
      if (auto current = link_by_sys_id(tx, "incident", sys_id); current && !sending.empty()) {
        // A note still there is an attempt's that stopped before its outcome was recorded
        // (the process ended): its write may land after this one.
        if (const auto it = current->synced.find("sending");
            it != current->synced.end() && !it->empty()) {
          note_in_flight(current->synced, Json(*it));
        }
        current->synced["sending"] = sending;
        save_synced(tx, sys_id, current->synced);
      }
      if (comments.empty()) return;
      for (auto m : sent) {
        tx.exec(
            "INSERT INTO servicenow_sending(message, at) VALUES (?, ?) ON CONFLICT(message) DO "
            "NOTHING",
            {m, to_epoch(host_.clock().now())});
      }
    });
  }
  Record updated;
  try {
    // Neither kind of PATCH is sent again blindly: a comment would be added twice, and field
    // values read before a failed attempt may be older than the instance's by the retry.
    // The outbox's retry reads the incident again first.
    updated = client_->update("incident", sys_id, patch, comments.empty() && sent_fields.empty());
  } catch (const Error& e) {
    if (!comments.empty()) doubtful(e);
    if (!sending.empty()) {
      // This attempt's note goes: a refused write will not land; any other may, later than
      // any write after it, and stays known as ours while it may.
      try {
        host_.store().transact([&](Tx& tx) {
          auto current = link_by_sys_id(tx, "incident", sys_id);
          if (!current || current->synced.value("sending", Json()) != sending) return;
          current->synced.erase("sending");
          if (may_have_landed(e)) note_in_flight(current->synced, sending);
          save_synced(tx, sys_id, current->synced);
        });
      } catch (const std::exception& x) {
        // The note stays as it was, and the next attempt keeps it in flight.
        note_error("the note of a failed write to " + sys_id + ": " + x.what());
      }
    }
    throw;
  }
  host_.store().transact([&](Tx& tx) {
    record_write(tx, "incident", updated);
    Link base = *link;
    if (auto current = link_by_sys_id(tx, "incident", sys_id)) base = std::move(*current);
    // This attempt's note only: a comment's write made none, and must not take another's.
    if (!sending.empty() && base.synced.value("sending", Json()) == sending) {
      base.synced.erase("sending");
    }
    if (base.mod_count >= integer_or(field(updated, "sys_mod_count"), 0)) {
      // A version holding this write was applied already (its webhook came first), and
      // synced what it wrote: the values read before the write are older than that.
      save_synced(tx, sys_id, base.synced);
    } else {
      // What this PATCH wrote is in step on both sides now.
      const Json theirs = theirs_of(updated);
      for (const auto& f : sent_fields) {
        base.synced["theirs"][f.theirs] = theirs[f.theirs];
        base.synced["ours"][f.ours] = our_now[f.ours];
      }
      base.synced["theirs"]["correlation_id"] = theirs["correlation_id"];
      // The record we get back may hold changes made there since the last sync, before this
      // write. Its webhook is dropped as our echo, so they are applied here, like any change.
      apply_incident(tx, updated, base);
    }
    mark_sent(tx);
  });
  // Versions between the one last applied and this write's were someone else's, and a comment
  // or work note among them has no other way in: its webhook is found applied (older than
  // this write) and not read. Their journal entries are read now.
  if (integer_or(field(updated, "sys_mod_count"), 0) > link->mod_count + 1) {
    read_journal_after(sys_id, "our write");
  }
}

void Sync::read_journal_after(const std::string& incident_sys_id, const std::string& what) {
  // What came before is done whatever this read meets: a failure leaves the entries to their
  // webhooks and the journal sweep.
  try {
    apply_journal_of(incident_sys_id);
  } catch (const std::exception& e) {
    note_error("journal of " + incident_sys_id + " after " + what + ": " + e.what());
  }
}

void Sync::note_sent(Tx& tx, std::int64_t message, const std::string& ticket) {
  tx.exec(
      "INSERT INTO servicenow_sent(message, ticket, at) VALUES (?, ?, ?) ON CONFLICT(message) DO "
      "NOTHING",
      {message, ticket, to_epoch(host_.clock().now())});
  tx.exec("DELETE FROM servicenow_sending WHERE message = ?", {message});
}

std::vector<std::string> Sync::our_comments_on(const std::string& incident_sys_id) {
  std::vector<std::string> values;
  // Only what cannot change the query goes into it; else nothing is known to be there.
  if (!query_safe(incident_sys_id) || !query_safe(settings_.integration_user)) return values;
  client_->list("sys_journal_field",
                "element_id=" + incident_sys_id +
                    "^element=comments^sys_created_by=" + settings_.integration_user,
                {"value"}, [&](std::vector<Record>&& page) {
                  for (auto& entry : page) values.push_back(field(entry, "value"));
                });
  return values;
}

std::string Sync::sweep() {
  if (!client_) return "no ServiceNow instance configured";
  const Instant started = host_.clock().now();
  // Webhooks committed while no instance was configured wait as `pending`; their events
  // were consumed then. Anything pending for a minute is re-read here (the event handler
  // takes the fresh ones; applying twice changes nothing).
  for (const auto& row : host_.store().query(
           "SELECT id FROM servicenow_inbox WHERE state = 'pending' AND received_at < ? ORDER BY "
           "id LIMIT 10000",
           {to_epoch(started) - 60})) {
    try {
      process_inbox(row.integer(0));
    } catch (const std::exception& e) {
      // The instance cannot be read now: the rest wait for the next sweep.
      note_error("sweep: inbox row " + std::to_string(row.integer(0)) + ": " + e.what());
      break;
    }
  }
  std::int64_t seen = 0, repaired = 0;
  std::string error;
  for (const auto& table : settings_.sweep_tables) {
    Cursor cursor;
    for (const auto& r : host_.store().query(
             "SELECT updated_on, sys_id FROM servicenow_cursors WHERE tbl = ?", {table})) {
      cursor = {r.text(0), r.text(1)};
    }
    if (cursor.updated_on.empty() && !settings_.sweep_since.empty()) {
      cursor.updated_on = settings_.sweep_since;
    } else if (!cursor.updated_on.empty() && settings_.sweep_overlap_seconds > 0) {
      // What is read again is found applied, and changes nothing.
      cursor = {format_glide_datetime(parse_glide_datetime(cursor.updated_on) -
                                      settings_.sweep_overlap_seconds),
                ""};
    }
    const std::string extra = table == "sys_journal_field" ? "name=incident" : "";
    const auto failed = [&](const std::exception& e) {
      error += (error.empty() ? "" : "; ") + table + ": " + e.what();
      note_error("sweep " + table + ": " + e.what());
    };
    try {
      // Journal entries never change: they are swept by creation.
      const std::string order = table == "sys_journal_field" ? "sys_created_on" : "sys_updated_on";
      client_->sweep(
          table, cursor, extra, fields_of(table),
          [&](std::vector<Record>&& page, const Cursor& after) {
            seen += static_cast<std::int64_t>(page.size());
            repaired += apply_page(table, page, after);
            return true;
          },
          order);
    } catch (const Error& e) {
      // The instance refused this table (no read access for our user, a table it does not
      // have): the other tables are swept all the same. Without an answer, unauthorised or
      // rate limited, the next table would fail alike: the sweep stops and runs again later.
      failed(e);
      if (e.status() != 400 && e.status() != 403 && e.status() != 404) break;
    } catch (const std::exception& e) {
      failed(e);
      break;
    }
  }
  const Instant finished = host_.clock().now();
  host_.store().transact([&](Tx& tx) {
    tx.exec(
        "INSERT INTO servicenow_sweeps(started_at, finished_at, seen, repaired, error) VALUES "
        "(?, ?, ?, ?, ?)",
        {to_epoch(started), to_epoch(finished), seen, repaired,
         error.empty() ? Value{} : Value{error}});
  });
  const std::string outcome =
      std::to_string(seen) + " records read, " + std::to_string(repaired) + " repaired";
  if (repaired > 0) host_.log().info("servicenow sweep: " + outcome + " (missed by webhooks)");
  if (!error.empty()) throw std::runtime_error(outcome + "; failed: " + error);
  return outcome;
}

std::string Sync::prune(std::int64_t keep_days) {
  const std::int64_t cutoff = to_epoch(host_.clock().now()) - keep_days * 86400;
  // In batches: a busy instance sends a day's hundreds of thousands of webhooks, and one
  // transaction deleting them would hold every webhook's commit back until it was done.
  // A webhook that comes again later is stored and processed like any: its version is found
  // applied (or read again), so nothing depends on the rows deleted here.
  const std::int64_t inbox = exec_in_batches(
      host_.store(),
      "DELETE FROM servicenow_inbox WHERE id IN (SELECT id FROM servicenow_inbox WHERE state <> "
      "'pending' AND processed_at <= ? ORDER BY id LIMIT ?)",
      {cutoff});
  // An echo of a write this old is found applied by its version instead.
  const std::int64_t writes = exec_in_batches(
      host_.store(),
      "DELETE FROM servicenow_writes WHERE (tbl, sys_id, mod_count) IN (SELECT tbl, sys_id, "
      "mod_count FROM servicenow_writes WHERE at <= ? LIMIT ?)",
      {cutoff});
  // A ticket without a note is judged by its last change, as one whose event is not handled.
  const std::int64_t notes =
      exec_in_batches(host_.store(),
                      "DELETE FROM servicenow_changed_here WHERE ticket IN (SELECT ticket FROM "
                      "servicenow_changed_here WHERE handled <= ? LIMIT ?)",
                      {cutoff});
  return std::to_string(inbox) + " inbox rows, " + std::to_string(writes) + " write marks and " +
         std::to_string(notes) + " change notes older than " + std::to_string(keep_days) +
         " days deleted";
}

std::int64_t Sync::apply_page(const std::string& table, const std::vector<Record>& page,
                              const Cursor& after) {
  // The cursor moves in the transaction that applies the page, so a sweep that stops (an
  // error, a restart) resumes where it stood and never skips a record.
  const auto move_cursor = [&](Tx& tx) {
    tx.exec(
        "INSERT INTO servicenow_cursors(tbl, updated_on, sys_id) VALUES (?, ?, ?) ON "
        "CONFLICT(tbl) DO UPDATE SET updated_on = excluded.updated_on, sys_id = excluded.sys_id",
        {table, after.updated_on, after.sys_id});
  };
  const auto counts = [](Applied a) { return a == Applied::created || a == Applied::updated; };
  std::int64_t repaired = 0;
  try {
    // One transaction (one commit) per page: a page is applied in a fraction of the time the
    // instance takes to serve the next one. Most records of a sweep are known and unchanged:
    // one query per few hundred of them finds those, and only the rest are applied.
    host_.store().transact([&](Tx& tx) {
      repaired = 0;
      auto applied = applied_versions(tx, table, page);
      for (const auto& r : page) {
        const std::string sys_id = field(r, "sys_id");
        const auto known = applied.find(sys_id);
        if (table == "sys_journal_field" || sys_id.empty()) {
          if (known == applied.end()) repaired += counts(apply(tx, table, r)) ? 1 : 0;
          continue;  // an entry seen is applied; a record without sys_id throws
        }
        const auto mod = known == applied.end() ? std::nullopt : std::optional(known->second);
        repaired += counts(apply(tx, table, r, mod)) ? 1 : 0;
        // Should the page hold the record twice, its second copy finds the first applied.
        applied[sys_id] = std::max(mod.value_or(0), integer_or(field(r, "sys_mod_count"), 0));
      }
      move_cursor(tx);
    });
    return repaired;
  } catch (const Problem&) {
    // A record breaks one of our rules: apply the page record by record so only it is left
    // out (and reported).
  }
  repaired = 0;
  for (const auto& r : page) {
    try {
      repaired += counts(apply(table, r)) ? 1 : 0;
    } catch (const Problem& e) {
      note_error(table + "/" + field(r, "sys_id") + ": " + e.what());
    }
  }
  host_.store().transact(move_cursor);
  return repaired;
}

std::map<std::string, std::int64_t> Sync::applied_versions(Tx& tx, const std::string& table,
                                                           const std::vector<Record>& page) {
  // Journal entries never change: one seen is applied. Others: the sys_mod_count applied.
  const bool journal = table == "sys_journal_field";
  const std::string head = journal ? "SELECT sys_id, 0 FROM servicenow_journal WHERE sys_id IN ("
                                   : "SELECT sys_id, mod_count FROM servicenow_links WHERE tbl = "
                                     "? AND sys_id IN (";
  constexpr std::size_t kChunk = 500;  // well under both engines' limit on parameters
  std::map<std::string, std::int64_t> out;
  for (std::size_t from = 0; from < page.size(); from += kChunk) {
    const std::size_t to = std::min(page.size(), from + kChunk);
    Params params;
    if (!journal) params.emplace_back(table);
    std::string sql = head;
    for (std::size_t i = from; i < to; ++i) {
      sql += i == from ? "?" : ", ?";
      params.emplace_back(field(page[i], "sys_id"));
    }
    for (const auto& row : tx.query(sql + ")", params)) out[row.text(0)] = row.integer(1);
  }
  return out;
}

bool RecentKeys::contains(const std::string& key) const {
  std::lock_guard lock(mutex_);
  return keys_.contains(key);
}

void RecentKeys::add(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (!keys_.insert(key).second) return;
  order_.push_back(key);
  if (order_.size() > capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
}

void Sync::note_error(const std::string& what) {
  host_.log().warning("servicenow: " + what);
  std::lock_guard lock(mutex_);
  errors_.push_back({{"at", format_instant(host_.clock().now())}, {"error", what}});
  if (errors_.size() > kErrorsKept) errors_.erase(errors_.begin());
}

Json Sync::status() const {
  auto& store = host_.store();
  const Instant now = host_.clock().now();
  Json inbox = Json::object();
  for (const auto& r : store.query(
           "SELECT state, COUNT(*), MIN(received_at) FROM servicenow_inbox GROUP BY state")) {
    inbox[r.text(0)] = r.integer(1);
    if (r.text(0) == "pending") {
      inbox["oldest_pending_seconds"] = to_epoch(now) - r.integer(2);
    }
  }
  Json sweep = Json();
  for (const auto& r : store.query(
           "SELECT started_at, finished_at, seen, repaired, error FROM servicenow_sweeps ORDER BY "
           "id DESC LIMIT 1")) {
    sweep = {
        {"started_at", format_instant(from_epoch(r.integer(0)))},
        {"finished_at", r.is_null(1) ? Json() : Json(format_instant(from_epoch(r.integer(1))))},
        {"records", r.integer(2)},
        {"repaired", r.integer(3)},
        {"error", r.is_null(4) ? Json() : Json(r.text(4))}};
  }
  Json cursors = Json::object();
  for (const auto& r : store.query("SELECT tbl, updated_on, sys_id FROM servicenow_cursors")) {
    cursors[r.text(0)] = {{"updated_on", r.text(1)}, {"sys_id", r.text(2)}};
  }
  // Lag: how long the oldest committed webhook has waited to be applied.
  const Json lag = inbox.value("oldest_pending_seconds", std::int64_t{0});
  const auto conflicts = store.query("SELECT COUNT(*) FROM servicenow_conflicts").at(0).integer(0);
  Json client = Json();
  if (client_) {
    const auto s = client_->stats();
    client = {{"requests", s.requests},
              {"retries", s.retries},
              {"throttled", s.throttled},
              {"token_refreshes", s.token_refreshes},
              {"last_error", s.last_error}};
  }
  std::lock_guard lock(mutex_);
  return {{"configured", client_ != nullptr},
          {"inbox", inbox},
          {"last_sweep", sweep},
          {"cursors", cursors},
          {"lag_seconds", lag},
          {"conflicts", conflicts},
          {"errors", errors_},
          {"client", client}};
}

Json Sync::conflicts(std::int64_t limit) const {
  Json out = Json::array();
  for (const auto& r :
       host_.store().query("SELECT id, tbl, sys_id, local_id, field, ours, theirs, winner, at FROM "
                           "servicenow_conflicts ORDER BY id DESC LIMIT ?",
                           {limit})) {
    out.push_back({{"id", r.integer(0)},
                   {"table", r.text(1)},
                   {"sys_id", r.text(2)},
                   {"ticket", r.text(3)},
                   {"field", r.text(4)},
                   {"ours", Json::parse(r.optional_text(5).value_or("null"))},
                   {"theirs", Json::parse(r.optional_text(6).value_or("null"))},
                   {"winner", r.text(7)},
                   {"at", format_instant(from_epoch(r.integer(8)))}});
  }
  return out;
}

}  // namespace slmhub::servicenow
