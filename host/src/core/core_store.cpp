#include "core/core_store.hpp"

#include <map>
#include <optional>
#include <stdexcept>

#include "events/event_bus.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::host {
namespace {

std::string table_of(const EntityKind& kind) { return "core_" + kind.plural; }

const std::vector<Migration>& core_migrations() {
  static const std::vector<Migration> kMigrations{
      {1, "core entities, tickets and the audit log",
       "CREATE TABLE core_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
       "CREATE TABLE core_calendars(id TEXT PRIMARY KEY, service TEXT, start_at BIGINT, "
       "end_at BIGINT, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
       "CREATE TABLE core_services(id TEXT PRIMARY KEY, service TEXT, start_at BIGINT, "
       "end_at BIGINT, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
       "CREATE TABLE core_customers(id TEXT PRIMARY KEY, service TEXT, start_at BIGINT, "
       "end_at BIGINT, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
       "CREATE TABLE core_maintenance(id TEXT PRIMARY KEY, service TEXT, start_at BIGINT, "
       "end_at BIGINT, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
       "CREATE INDEX core_maintenance_service ON core_maintenance(service, start_at);"
       "CREATE TABLE core_interruptions(id TEXT PRIMARY KEY, service TEXT, start_at BIGINT, "
       "end_at BIGINT, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
       "CREATE INDEX core_interruptions_service ON core_interruptions(service, start_at);"
       "CREATE TABLE ticket_queues(name TEXT PRIMARY KEY, prefix TEXT NOT NULL, "
       "next_number BIGINT NOT NULL);"
       "CREATE TABLE tickets(id TEXT PRIMARY KEY, queue TEXT NOT NULL, kind TEXT NOT NULL, "
       "subject TEXT NOT NULL, status TEXT NOT NULL, priority BIGINT NOT NULL, customer TEXT, "
       "requester TEXT, external_ref TEXT, created_at BIGINT NOT NULL, "
       "updated_at BIGINT NOT NULL);"
       "CREATE INDEX tickets_customer ON tickets(customer);"
       "CREATE TABLE ticket_messages(id {{serial}}, ticket TEXT NOT NULL, direction TEXT NOT "
       "NULL, author TEXT, body TEXT NOT NULL, message_id TEXT, at BIGINT NOT NULL);"
       "CREATE INDEX ticket_messages_ticket ON ticket_messages(ticket);"
       "CREATE TABLE audit_log(id {{serial}}, at BIGINT NOT NULL, actor TEXT NOT NULL, "
       "action TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, before TEXT, "
       "after TEXT)"},
      // A core entity's new body is in its own table already; storing it again as the audit
      // row's `after` doubled the bytes of every write. Such rows now leave `after` out and
      // say where it is: the `before` of the entity's next audit row, or its current body.
      {2, "audit rows of core entity writes keep each body once",
       "ALTER TABLE audit_log ADD COLUMN after_is_next BIGINT NOT NULL DEFAULT 0"},
      {3, "first-response targets of tickets",
       "ALTER TABLE tickets ADD COLUMN response_due BIGINT;"
       "ALTER TABLE tickets ADD COLUMN responded_at BIGINT;"
       "ALTER TABLE tickets ADD COLUMN response_escalated_at BIGINT;"
       "CREATE INDEX tickets_response ON tickets(responded_at, response_due)"},
      {4, "tickets found by their reference in another system",
       "CREATE INDEX tickets_external_ref ON tickets(external_ref)"},
      {5, "the audit log is append-only: the store refuses to change or delete its rows",
       "{{append_only:audit_log}}"},
      // The ticket list is newest first, for everyone or one customer: without an index in
      // that order every request read and sorted the whole table. The missed-first-response
      // watch reads only tickets not escalated yet (it read every escalated one left
      // unanswered, every tick).
      {6, "ticket lists and the first-response watch read only what they return",
       "DROP INDEX tickets_customer;"
       "CREATE INDEX tickets_customer ON tickets(customer, created_at, id);"
       "CREATE INDEX tickets_created ON tickets(created_at, id);"
       "DROP INDEX tickets_response;"
       "CREATE INDEX tickets_response ON tickets(responded_at, response_escalated_at, "
       "response_due)"},
      // Case numbers were counted per queue, so two queues with one prefix (two undeclared
      // queues, both SLM) handed out the same number, and the second ticket could not be
      // stored. They are counted per prefix now, from above the highest number either
      // queue gave out.
      {7, "case numbers counted per prefix, not per queue",
       "CREATE TABLE ticket_numbers(prefix TEXT PRIMARY KEY, next_number BIGINT NOT NULL);"
       "INSERT INTO ticket_numbers(prefix, next_number) SELECT prefix, MAX(next_number) FROM "
       "ticket_queues GROUP BY prefix"},
  };
  return kMigrations;
}

template <typename T, typename Read>
T read_one(const Json& body, const std::string& path, Read read) {
  std::vector<FieldError> errors;
  T value = read(body, path, errors);
  if (!errors.empty()) throw ValidationError(errors);
  return value;
}

Ticket ticket_from_row(const Row& r) {
  Ticket t;
  t.id = r.text(0);
  t.queue = r.text(1);
  t.kind = r.text(2);
  t.subject = r.text(3);
  t.status = r.text(4);
  t.priority = static_cast<int>(r.integer(5));
  t.customer = r.optional_text(6).value_or("");
  t.requester = r.optional_text(7).value_or("");
  t.external_ref = r.optional_text(8).value_or("");
  t.created_at = from_epoch(r.integer(9));
  t.updated_at = from_epoch(r.integer(10));
  if (auto v = r.optional_integer(11)) t.first_response_due = from_epoch(*v);
  if (auto v = r.optional_integer(12)) t.first_responded_at = from_epoch(*v);
  return t;
}

constexpr const char* kTicketColumns =
    "id, queue, kind, subject, status, priority, customer, requester, external_ref, "
    "created_at, updated_at, response_due, responded_at";

Value optional_epoch(const std::optional<Instant>& t) { return t ? Value{to_epoch(*t)} : Value{}; }

}  // namespace

Json ticket_to_json(const Ticket& t, bool with_messages, std::optional<Instant> now) {
  Json j = {{"id", t.id},
            {"queue", t.queue},
            {"kind", t.kind},
            {"subject", t.subject},
            {"status", t.status},
            {"priority", t.priority},
            {"created_at", format_instant(t.created_at)},
            {"updated_at", format_instant(t.updated_at)}};
  if (!t.customer.empty()) j["customer"] = t.customer;
  if (!t.requester.empty()) j["requester"] = t.requester;
  if (!t.external_ref.empty()) j["external_ref"] = t.external_ref;
  j["first_response_due"] =
      t.first_response_due ? Json(format_instant(*t.first_response_due)) : Json();
  j["first_responded_at"] =
      t.first_responded_at ? Json(format_instant(*t.first_responded_at)) : Json();
  if (now && t.first_response_due) {
    j["first_response_breached"] = t.first_responded_at
                                       ? *t.first_responded_at > *t.first_response_due
                                       : *now > *t.first_response_due;
  }
  if (with_messages) {
    Json messages = Json::array();
    for (const auto& m : t.messages) {
      Json mj = {{"id", m.id},
                 {"direction", m.direction},
                 {"author", m.author},
                 {"body", m.body},
                 {"at", format_instant(m.at)}};
      if (!m.message_id.empty()) mj["message_id"] = m.message_id;
      messages.push_back(std::move(mj));
    }
    j["messages"] = std::move(messages);
  }
  return j;
}

CoreStore::CoreStore(Store& store, EventBus& events, const Clock& clock)
    : store_(store), events_(events), clock_(clock), writer_(store) {
  store_.migrate("core", core_migrations());
}

const std::vector<EntityKind>& CoreStore::kinds() {
  // Order matters for the import: a kind only refers to kinds before it.
  static const std::vector<EntityKind> kKinds{
      {"calendars", "calendar", "service_manager", "calendar.created", "calendar.updated"},
      {"services", "service", "service_manager", "service.created", "service.updated"},
      {"customers", "customer", "service_manager", "customer.created", "customer.updated"},
      {"maintenance", "maintenance", "operator", "maintenance.scheduled", "maintenance.changed"},
      {"interruptions", "interruption", "operator", "interruption.recorded",
       "interruption.updated"},
  };
  return kKinds;
}

const EntityKind& CoreStore::kind(const std::string& plural) {
  for (const auto& k : kinds()) {
    if (k.plural == plural) return k;
  }
  throw std::out_of_range("no entity kind '" + plural + "'");
}

EntityRecord CoreStore::parse(const EntityKind& kind, const Json& body, const std::string& path) {
  EntityRecord rec;
  auto ref = [&](const std::string& k, const std::string& id, const std::string& p) {
    rec.refs.emplace_back(k, id, p);
  };
  if (kind.plural == "calendars") {
    auto v = read_one<CalendarDef>(body, path, calendar_from_json);
    rec.id = v.id;
    rec.body = to_json(v);
  } else if (kind.plural == "services") {
    auto v = read_one<Service>(body, path, service_from_json);
    rec.id = v.id;
    rec.body = to_json(v);
    if (v.hours != kHours24x7) ref("calendars", v.hours, path + ".hours");
  } else if (kind.plural == "customers") {
    auto v = read_one<Customer>(
        body, path, [](const Json& j, const std::string& p, std::vector<FieldError>& errors) {
          Customer c = customer_from_json(j, p, errors);
          if (errors.empty()) check_subscriptions_apart(c, p, errors);
          return c;
        });
    rec.id = v.id;
    rec.body = to_json(v);
    for (std::size_t i = 0; i < v.subscriptions.size(); ++i)
      ref("services", v.subscriptions[i].service,
          path + ".subscriptions[" + std::to_string(i) + "].service");
  } else if (kind.plural == "maintenance") {
    auto v = read_one<MaintenanceWindow>(body, path, maintenance_window_from_json);
    rec.id = v.id;
    rec.body = to_json(v);
    rec.service = v.service;
    rec.start_at = to_epoch(v.start);
    rec.end_at = to_epoch(v.end);
    ref("services", v.service, path + ".service");
  } else if (kind.plural == "interruptions") {
    return interruption_record(read_one<Interruption>(body, path, interruption_from_json), path);
  } else {
    throw std::logic_error("no codec for " + kind.plural);
  }
  rec.text = rec.body.dump();
  rec.path = path;
  rec.event_text = event_text(kind, rec);
  return rec;
}

// Events name the entity rather than copy it: handlers read the current record through the
// Catalog, and a write stores its body twice (entity and audit), not three times.
std::string CoreStore::event_text(const EntityKind& kind, const EntityRecord& record) {
  Json reference = {{"kind", kind.singular}, {"id", record.id}};
  if (record.service) reference["service"] = *record.service;
  return reference.dump();
}

EntityRecord CoreStore::interruption_record(const Interruption& v, const std::string& path) {
  EntityRecord rec;
  rec.id = v.id;
  rec.text = to_json_text(v);
  rec.service = v.service;
  rec.start_at = to_epoch(v.start);
  if (v.end) rec.end_at = to_epoch(*v.end);
  rec.refs.emplace_back("services", v.service, path + ".service");
  for (std::size_t i = 0; i < v.customers.size(); ++i)
    rec.refs.emplace_back("customers", v.customers[i],
                          path + ".customers[" + std::to_string(i) + "]");
  rec.path = path;
  rec.event_text = event_text(kind("interruptions"), rec);
  return rec;
}

void CoreStore::set_maintenance_policy(MaintenancePolicy policy) {
  std::unique_lock lock(policy_mutex_);
  if (maintenance_policy_) throw std::logic_error("a maintenance policy is already set");
  maintenance_policy_ = std::make_shared<const MaintenancePolicy>(std::move(policy));
}

void CoreStore::clear_maintenance_policy() {
  std::unique_lock lock(policy_mutex_);
  maintenance_policy_.reset();
}

EntityRecord CoreStore::apply_maintenance_policy(Tx& tx, const EntityRecord& record,
                                                 const std::string& before) {
  std::shared_lock lock(policy_mutex_);
  const std::shared_ptr<const MaintenancePolicy> policy = maintenance_policy_;
  if (!policy) return record;
  MaintenanceWindow window = parse_maintenance_window(record.body);
  std::optional<MaintenanceWindow> old;
  if (!before.empty()) old = parse_maintenance_window(Json::parse(before));
  try {
    (*policy)(tx, maintenance_context(tx, window), window, old ? &*old : nullptr);
  } catch (const ValidationError& e) {
    // The policy names places inside the window; the caller knows where the window was.
    std::vector<FieldError> errors;
    for (const auto& f : e.errors()) {
      std::string path = f.path;
      if (path.starts_with("$")) path = record.path + path.substr(1);
      errors.push_back({path, f.message});
    }
    throw ValidationError(errors);
  }
  return parse(kind("maintenance"), to_json(window), record.path);
}

bool CoreStore::write(Tx& tx, const Actor& actor, const EntityKind& kind, const EntityRecord& input,
                      bool create_only) {
  if (kind.plural == "calendars") forget_calendar();
  std::vector<FieldError> missing;
  for (const auto& [k, id, path] : input.refs) {
    if (tx.query("SELECT 1 FROM core_" + k + " WHERE id = ?", {id}).empty())
      missing.push_back({path, "unknown " + CoreStore::kind(k).singular + " '" + id + "'"});
  }
  if (!missing.empty()) throw ValidationError(missing);
  const std::string table = table_of(kind);
  auto existing = tx.query("SELECT body FROM " + table + " WHERE id = ?", {input.id});
  if (!existing.empty() && create_only)
    throw Conflict(kind.singular + " '" + input.id + "' already exists; PUT changes it");
  // Canonical JSON text is deterministic (sorted keys), so equal text is an unchanged entity.
  const std::string before = existing.empty() ? std::string() : existing[0].text(0);
  // Maintenance passes the policy (Tech Alerts' notice rules), which may re-classify it.
  std::optional<EntityRecord> adjusted;
  if (kind.plural == "maintenance") adjusted = apply_maintenance_policy(tx, input, before);
  const EntityRecord& record = adjusted ? *adjusted : input;
  if (!existing.empty() && before == record.text) return false;
  auto opt_text = [](const std::optional<std::string>& v) { return v ? Value{*v} : Value{}; };
  auto opt_int = [](const std::optional<std::int64_t>& v) { return v ? Value{*v} : Value{}; };
  tx.exec("INSERT INTO " + table +
              "(id, service, start_at, end_at, body, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET service = excluded.service, start_at = "
              "excluded.start_at, end_at = excluded.end_at, body = excluded.body, updated_at = "
              "excluded.updated_at",
          {record.id, opt_text(record.service), opt_int(record.start_at), opt_int(record.end_at),
           record.text, to_epoch(clock_.now())});
  write_audit(tx, actor, existing.empty() ? "create" : "update", kind.singular, record.id, before,
              "", true);
  std::string event = existing.empty() ? kind.created_event : kind.updated_event;
  // Events that other plugins wait for, beyond created/updated.
  if (!existing.empty()) {
    Json old = Json::parse(before);
    if (kind.plural == "interruptions" && record.end_at && !old.contains("end"))
      events_.publish_serialized(tx, "interruption.resolved", record.id, record.event_text);
    if (kind.plural == "maintenance" && record.body.value("status", "") == "cancelled" &&
        old.value("status", "") != "cancelled")
      event = "maintenance.cancelled";
  } else if (kind.plural == "interruptions" && record.end_at) {
    events_.publish_serialized(tx, "interruption.resolved", record.id, record.event_text);
  }
  events_.publish_serialized(tx, event, record.id, record.event_text);
  return true;
}

void CoreStore::remove(Tx& tx, const Actor& actor, const EntityKind& kind, const std::string& id) {
  if (kind.plural == "calendars") forget_calendar();
  auto existing = tx.query("SELECT body FROM " + table_of(kind) + " WHERE id = ?", {id});
  if (existing.empty()) throw NotFound("no " + kind.singular + " '" + id + "'");
  // Refuse to orphan: a service with interruptions or subscriptions, a calendar in use.
  std::vector<std::pair<std::string, std::string>> users;
  if (kind.plural == "services") {
    for (const std::string kind_name : {"interruptions", "maintenance"}) {
      for (const auto& r :
           tx.query("SELECT id FROM core_" + kind_name + " WHERE service = ?", {id}))
        users.emplace_back(kind_name, r.text(0));
    }
    for (const auto& r : tx.query("SELECT id, body FROM core_customers")) {
      for (const auto& s : Json::parse(r.text(1)).value("subscriptions", Json::array()))
        if (s.value("service", "") == id) users.emplace_back("customers", r.text(0));
    }
  } else if (kind.plural == "calendars") {
    // The provider calendar rules every business-day deadline; without it no snapshot parses.
    for (const auto& r :
         tx.query("SELECT value FROM core_settings WHERE key = 'provider_calendar'")) {
      if (Json::parse(r.text(0)) == id) users.emplace_back("setting", "provider_calendar");
    }
    for (const auto& r : tx.query("SELECT id, body FROM core_services")) {
      if (Json::parse(r.text(1)).value("hours", "") == id)
        users.emplace_back("services", r.text(0));
    }
  } else if (kind.plural == "customers") {
    for (const auto& r : tx.query("SELECT id, body FROM core_interruptions")) {
      for (const auto& c : Json::parse(r.text(1)).value("customers", Json::array()))
        if (c == id) users.emplace_back("interruptions", r.text(0));
    }
    // A ticket still being worked on needs its customer; one resolved or closed keeps the
    // customer's id as history.
    for (const auto& r :
         tx.query("SELECT id FROM tickets WHERE customer = ? AND status NOT IN ('resolved', "
                  "'closed') ORDER BY created_at, id",
                  {id}))
      users.emplace_back("open ticket", r.text(0));
  }
  if (!users.empty())
    throw Conflict(kind.singular + " '" + id + "' is still referred to by " + users[0].first +
                   " '" + users[0].second + "'" +
                   (users.size() > 1 ? " and " + std::to_string(users.size() - 1) + " more" : ""));
  tx.exec("DELETE FROM " + table_of(kind) + " WHERE id = ?", {id});
  write_audit(tx, actor, "delete", kind.singular, id, existing[0].text(0), "");
  events_.publish_serialized(tx, kind.singular + ".deleted", id, existing[0].text(0));
}

std::optional<Json> CoreStore::get(const EntityKind& kind, const std::string& id) const {
  auto rows = store_.query("SELECT body FROM " + table_of(kind) + " WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return Json::parse(rows[0].text(0));
}

std::vector<Json> CoreStore::list(const EntityKind& kind,
                                  const std::optional<std::string>& service) const {
  std::vector<Json> out;
  auto rows = service ? store_.query(
                            "SELECT body FROM " + table_of(kind) + " WHERE service = ? ORDER BY id",
                            {*service})
                      : store_.query("SELECT body FROM " + table_of(kind) + " ORDER BY id");
  for (const auto& r : rows) out.push_back(Json::parse(r.text(0)));
  return out;
}

ImportResult CoreStore::import(const Actor& actor, const Json& json) {
  Dataset dataset = parse_dataset(json);  // the whole file is valid before anything is written
  Json canonical = to_json(dataset);
  ImportResult result;
  store_.transact([&](Tx& tx) {
    result = {};
    Json settings = {{"timezone", canonical["timezone"]},
                     {"fiscal_year_start_month", canonical["fiscal_year_start_month"]}};
    if (canonical.contains("provider_calendar"))
      settings["provider_calendar"] = canonical["provider_calendar"];
    if (canonical.contains("credit_policy")) settings["credit_policy"] = canonical["credit_policy"];
    for (const auto& [key, value] : settings.items()) {
      auto old = tx.query("SELECT value FROM core_settings WHERE key = ?", {key});
      if (!old.empty() && old[0].text(0) == value.dump()) continue;
      // A file that leaves the fiscal year out keeps the stored one: the reader's default (9)
      // is for a store that has none, not a value the file asked for.
      if (!old.empty() && !json.contains(key)) continue;
      tx.exec(
          "INSERT INTO core_settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
          "SET value = excluded.value",
          {key, value.dump()});
      write_audit(tx, actor, old.empty() ? "create" : "update", "setting", key,
                  old.empty() ? std::string() : old[0].text(0), value.dump());
    }
    for (const auto& kind : kinds()) {
      if (!canonical.contains(kind.plural)) continue;
      const auto& items = canonical[kind.plural];
      for (std::size_t i = 0; i < items.size(); ++i) {
        auto record = parse(kind, items[i], "$." + kind.plural + "[" + std::to_string(i) + "]");
        bool existed =
            !tx.query("SELECT 1 FROM " + table_of(kind) + " WHERE id = ?", {record.id}).empty();
        bool changed = write(tx, actor, kind, record, false);
        if (!changed)
          ++result.unchanged;
        else if (existed)
          ++result.updated;
        else
          ++result.created;
      }
    }
  });
  forget_calendar();  // again: a read while the import ran may have kept the old one
  return result;
}

void CoreStore::audit(Tx& tx, const Actor& actor, const std::string& action,
                      const std::string& entity, const std::string& id, const Json& before,
                      const Json& after) {
  write_audit(tx, actor, action, entity, id, before.is_null() ? std::string() : before.dump(),
              after.is_null() ? std::string() : after.dump());
}

void CoreStore::write_audit(Tx& tx, const Actor& actor, const std::string& action,
                            const std::string& entity, const std::string& id,
                            const std::string& before, const std::string& after,
                            bool after_is_next) {
  tx.exec(
      "INSERT INTO audit_log(at, actor, action, entity, entity_id, before, after, after_is_next) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      {to_epoch(clock_.now()), actor.id, action, entity, id,
       before.empty() ? Value{} : Value{before}, after.empty() ? Value{} : Value{after},
       std::int64_t{after_is_next ? 1 : 0}});
}

Json CoreStore::audit(const std::string& entity, std::int64_t limit) const {
  const std::string columns =
      "SELECT id, at, actor, action, entity, entity_id, before, after, after_is_next FROM "
      "audit_log ";
  auto rows = entity.empty() ? store_.query(columns + "ORDER BY id DESC LIMIT ?", {limit})
                             : store_.query(columns + "WHERE entity = ? ORDER BY id DESC LIMIT ?",
                                            {entity, limit});
  // An `after_is_next` row's after is the `before` of the entity's next row. Those rows are
  // all newer than the oldest row shown, and an export shows the newest rows, so the scan
  // reads little more than the page itself.
  std::vector<Row> later;
  if (!rows.empty()) {
    const std::int64_t oldest = rows.back().integer(0);
    later = entity.empty() ? store_.query(
                                 "SELECT id, entity, entity_id, before FROM audit_log WHERE id > ? "
                                 "ORDER BY id DESC",
                                 {oldest})
                           : store_.query(
                                 "SELECT id, entity, entity_id, before FROM audit_log WHERE id > ? "
                                 "AND entity = ? ORDER BY id DESC",
                                 {oldest, entity});
  }
  // Walking newest to oldest, `next_before[entity/id]` is the before of the nearest newer row.
  std::map<std::pair<std::string, std::string>, std::optional<std::string>> next_before;
  std::size_t scan = 0;
  Json out = Json::array();
  for (const auto& r : rows) {
    const std::int64_t id = r.integer(0);
    while (scan < later.size() && later[scan].integer(0) > id) {
      const Row& l = later[scan++];
      next_before[{l.text(1), l.text(2)}] = l.optional_text(3);
    }
    Json j = {{"id", id},
              {"at", format_instant(from_epoch(r.integer(1)))},
              {"actor", r.text(2)},
              {"action", r.text(3)},
              {"entity", r.text(4)},
              {"entity_id", r.text(5)}};
    j["before"] = r.is_null(6) ? Json() : Json::parse(r.text(6));
    if (r.integer(8) == 0) {
      j["after"] = r.is_null(7) ? Json() : Json::parse(r.text(7));
    } else if (auto it = next_before.find({r.text(4), r.text(5)}); it != next_before.end()) {
      j["after"] = it->second ? Json::parse(*it->second) : Json();
    } else {
      j["after"] = current_body(r.text(4), r.text(5));
    }
    out.push_back(std::move(j));
  }
  return out;
}

Json CoreStore::current_body(const std::string& singular, const std::string& id) const {
  for (const auto& kind : kinds()) {
    if (kind.singular != singular) continue;
    auto body = get(kind, id);
    return body ? *body : Json();
  }
  return Json();
}

Dataset CoreStore::snapshot() const {
  Json json = Json::object();
  for (const auto& r : store_.query("SELECT key, value FROM core_settings"))
    json[r.text(0)] = Json::parse(r.text(1));
  if (!json.contains("timezone")) json["timezone"] = "UTC";
  for (const auto& kind : kinds()) {
    Json items = Json::array();
    for (auto& item : list(kind, std::nullopt)) items.push_back(std::move(item));
    json[kind.plural] = std::move(items);
  }
  return parse_dataset(json);
}

std::optional<Service> CoreStore::service(const std::string& id) const {
  auto body = get(kind("services"), id);
  if (!body) return std::nullopt;
  return parse_service(*body);
}

std::optional<Customer> CoreStore::customer(const std::string& id) const {
  auto body = get(kind("customers"), id);
  if (!body) return std::nullopt;
  return parse_customer(*body);
}

std::optional<Interruption> CoreStore::interruption(const std::string& id) const {
  auto body = get(kind("interruptions"), id);
  if (!body) return std::nullopt;
  return parse_interruption(*body);
}

std::optional<MaintenanceWindow> CoreStore::maintenance(const std::string& id) const {
  auto body = get(kind("maintenance"), id);
  if (!body) return std::nullopt;
  return parse_maintenance_window(*body);
}

namespace {

using Query = std::function<std::vector<Row>(std::string_view, const Params&)>;

std::optional<Json> body_of(const Query& query, const std::string& table, const std::string& id) {
  auto rows = query("SELECT body FROM " + table + " WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return Json::parse(rows[0].text(0));
}

struct DatasetSettings {
  std::string zone = "UTC";
  std::optional<std::string> calendar;
  int fiscal_year_start_month = 9;
};

DatasetSettings dataset_settings(const Query& query) {
  DatasetSettings out;
  for (const auto& r : query("SELECT key, value FROM core_settings WHERE key IN ('timezone', "
                             "'provider_calendar', 'fiscal_year_start_month')",
                             {})) {
    const Json value = Json::parse(r.text(1));
    if (r.text(0) == "timezone") out.zone = value.get<std::string>();
    if (r.text(0) == "provider_calendar") out.calendar = value.get<std::string>();
    if (r.text(0) == "fiscal_year_start_month") out.fiscal_year_start_month = value.get<int>();
  }
  return out;
}

BusinessCalendar provider_calendar_of(const Query& query, const DatasetSettings& settings) {
  if (settings.calendar) {
    if (auto body = body_of(query, "core_calendars", *settings.calendar))
      return parse_calendar(*body).to_calendar();
  }
  return BusinessCalendar::weekdays(find_zone(settings.zone));
}

}  // namespace

BusinessCalendar CoreStore::provider_calendar() const {
  constexpr auto kCalendarTtl = std::chrono::seconds(60);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(calendar_mutex_);
    if (calendar_ && now - calendar_read_ < kCalendarTtl) return *calendar_;
  }
  const Query query = [this](std::string_view sql, const Params& p) {
    return store_.query(sql, p);
  };
  BusinessCalendar calendar = provider_calendar_of(query, dataset_settings(query));
  std::lock_guard lock(calendar_mutex_);
  calendar_ = calendar;
  calendar_read_ = now;
  return calendar;
}

void CoreStore::forget_calendar() const {
  std::lock_guard lock(calendar_mutex_);
  calendar_.reset();
}

MaintenanceContext CoreStore::maintenance_context(Tx& tx, const MaintenanceWindow& window) const {
  const Query query = [&tx](std::string_view sql, const Params& p) { return tx.query(sql, p); };
  const DatasetSettings settings = dataset_settings(query);
  auto service = body_of(query, "core_services", window.service);
  if (!service) throw std::logic_error("maintenance for unknown service " + window.service);
  MaintenanceContext c{parse_service(*service),
                       nullptr,
                       std::nullopt,
                       provider_calendar_of(query, settings),
                       settings.fiscal_year_start_month,
                       {},
                       clock_.now()};
  c.zone = find_zone(c.service.timezone.value_or(settings.zone));
  if (c.service.hours != kHours24x7) {
    if (auto cal = body_of(query, "core_calendars", c.service.hours))
      c.service_hours = parse_calendar(*cal).to_calendar();
  }
  for (const auto& r :
       tx.query("SELECT body FROM core_maintenance WHERE service = ? AND id <> ? ORDER BY id",
                {window.service, window.id}))
    c.other_windows.push_back(parse_maintenance_window(Json::parse(r.text(0))));
  return c;
}

void CoreStore::record_interruption(Tx& tx, const Actor& actor, const Interruption& item) {
  const auto& k = kind("interruptions");
  write(tx, actor, k, parse(k, to_json(item), "$"), false);
}

bool CoreStore::remove_interruption(Tx& tx, const Actor& actor, const std::string& id) {
  const auto& k = kind("interruptions");
  if (tx.query("SELECT 1 FROM " + table_of(k) + " WHERE id = ?", {id}).empty()) return false;
  remove(tx, actor, k, id);
  return true;
}

void CoreStore::record_maintenance(Tx& tx, const Actor& actor, const MaintenanceWindow& item) {
  const auto& k = kind("maintenance");
  write(tx, actor, k, parse(k, to_json(item), "$"), false);
}

Ticket CoreStore::create(Tx& tx, const Actor& actor, Ticket ticket) {
  if (ticket.queue.empty()) ticket.queue = "default";
  // The queue row counts its own tickets (a queue that has some keeps its prefix); the
  // prefix's row is the sequence: updating it serializes case numbers per prefix, so they are
  // unique and gapless on both engines even when queues share a prefix. A queue nobody
  // declared starts on first use, as SLM.
  const auto queue = [&] {
    return tx.query(
        "UPDATE ticket_queues SET next_number = next_number + 1 WHERE name = ? RETURNING prefix",
        {ticket.queue});
  };
  auto row = queue();
  if (row.empty()) {
    tx.exec(
        "INSERT INTO ticket_queues(name, prefix, next_number) VALUES (?, 'SLM', 1) "
        "ON CONFLICT(name) DO NOTHING",
        {ticket.queue});
    row = queue();
  }
  const std::string prefix = row.at(0).text(0);
  const auto next = [&] {
    return tx.query(
        "UPDATE ticket_numbers SET next_number = next_number + 1 WHERE prefix = ? "
        "RETURNING next_number - 1",
        {prefix});
  };
  auto seq = next();
  if (seq.empty()) {
    tx.exec(
        "INSERT INTO ticket_numbers(prefix, next_number) VALUES (?, 1) ON CONFLICT(prefix) DO "
        "NOTHING",
        {prefix});
    seq = next();
  }
  std::string number = std::to_string(seq.at(0).integer(0));
  if (number.size() < 7) number.insert(0, 7 - number.size(), '0');
  ticket.id = prefix + number;
  // A caller that knows when the request arrived (mail replayed from quarantine) says so: its
  // first-response target runs from then. Never later than now.
  const Instant now = clock_.now();
  if (ticket.created_at == Instant{} || ticket.created_at > now) ticket.created_at = now;
  ticket.updated_at = now;
  ticket.first_response_due = response_due(ticket.kind, ticket.created_at);
  ticket.first_responded_at.reset();
  auto messages = std::move(ticket.messages);
  ticket.messages.clear();
  for (auto& m : messages) {
    if (m.direction.empty()) m.direction = "in";
    if (m.at == Instant{}) m.at = ticket.created_at;
    // A ticket opened with a person's answer in it (add_message's rule) is answered.
    if (m.direction == "out" && !actor.id.starts_with("system:") && !ticket.first_responded_at)
      ticket.first_responded_at = m.at;
  }
  tx.exec("INSERT INTO tickets(" + std::string(kTicketColumns) +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {ticket.id, ticket.queue, ticket.kind, ticket.subject, ticket.status,
           static_cast<std::int64_t>(ticket.priority),
           ticket.customer.empty() ? Value{} : Value{ticket.customer},
           ticket.requester.empty() ? Value{} : Value{ticket.requester},
           ticket.external_ref.empty() ? Value{} : Value{ticket.external_ref},
           to_epoch(ticket.created_at), to_epoch(ticket.updated_at),
           optional_epoch(ticket.first_response_due), optional_epoch(ticket.first_responded_at)});
  for (auto& m : messages)
    ticket.messages.push_back(insert_message(tx, actor, ticket.id, std::move(m)));
  // The audit row and the event carry the same text: serialized once.
  const std::string text = ticket_to_json(ticket, false).dump();
  write_audit(tx, actor, "create", "ticket", ticket.id, "", text);
  events_.publish_serialized(tx, "ticket.created", ticket.id, text);
  return ticket;
}

void CoreStore::define_queue(Tx& tx, const std::string& name, const std::string& prefix) {
  auto rows = tx.query("SELECT prefix, next_number FROM ticket_queues WHERE name = ?", {name});
  if (rows.empty()) {
    tx.exec("INSERT INTO ticket_queues(name, prefix, next_number) VALUES (?, ?, 1)",
            {name, prefix});
    return;
  }
  if (rows[0].text(0) == prefix) return;
  if (rows[0].integer(1) > 1) {
    throw Conflict("queue '" + name + "' already numbers its tickets " + rows[0].text(0) +
                   "…; it cannot become " + prefix + "…");
  }
  tx.exec("UPDATE ticket_queues SET prefix = ? WHERE name = ?", {prefix, name});
}

TicketMessage CoreStore::add_message(Tx& tx, const Actor& actor, const std::string& ticket_id,
                                     TicketMessage message) {
  if (tx.query("SELECT 1 FROM tickets WHERE id = ?", {ticket_id}).empty())
    throw NotFound("no ticket '" + ticket_id + "'");
  if (message.direction.empty()) message.direction = "in";
  if (message.at == Instant{}) message.at = clock_.now();
  tx.exec("UPDATE tickets SET updated_at = ? WHERE id = ?", {to_epoch(clock_.now()), ticket_id});
  // The first answer by a person meets the first-response target (an automatic reply is
  // written by the system and does not).
  if (message.direction == "out" && !actor.id.starts_with("system:")) {
    tx.exec("UPDATE tickets SET responded_at = ? WHERE id = ? AND responded_at IS NULL",
            {to_epoch(message.at), ticket_id});
  }
  return insert_message(tx, actor, ticket_id, std::move(message));
}

TicketMessage CoreStore::insert_message(Tx& tx, const Actor& actor, const std::string& ticket_id,
                                        TicketMessage message) {
  auto rows = tx.query(
      "INSERT INTO ticket_messages(ticket, direction, author, body, message_id, at) VALUES "
      "(?, ?, ?, ?, ?, ?) RETURNING id",
      {ticket_id, message.direction, message.author, message.body,
       message.message_id.empty() ? Value{} : Value{message.message_id}, to_epoch(message.at)});
  message.id = rows.at(0).integer(0);
  Json after = {{"ticket", ticket_id}, {"message", message.id}, {"direction", message.direction}};
  const std::string text = after.dump();
  write_audit(tx, actor, "create", "ticket_message", ticket_id, "", text);
  events_.publish_serialized(tx, "ticket.message_added", ticket_id, text);
  return message;
}

std::optional<Ticket> CoreStore::find_fields(const std::string& id) const {
  auto rows =
      store_.query("SELECT " + std::string(kTicketColumns) + " FROM tickets WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return ticket_from_row(rows[0]);
}

std::optional<Ticket> CoreStore::find(const std::string& id) const {
  auto found = find_fields(id);
  if (!found) return std::nullopt;
  Ticket& t = *found;
  for (const auto& r :
       store_.query("SELECT id, direction, author, body, message_id, at FROM ticket_messages WHERE "
                    "ticket = ? ORDER BY id",
                    {id})) {
    TicketMessage m;
    m.id = r.integer(0);
    m.direction = r.text(1);
    m.author = r.optional_text(2).value_or("");
    m.body = r.text(3);
    m.message_id = r.optional_text(4).value_or("");
    m.at = from_epoch(r.integer(5));
    t.messages.push_back(std::move(m));
  }
  return found;
}

std::optional<Ticket> CoreStore::find_by_external_ref(const std::string& ref) const {
  if (ref.empty()) return std::nullopt;
  auto rows = store_.query(
      "SELECT id FROM tickets WHERE external_ref = ? ORDER BY created_at LIMIT 1", {ref});
  if (rows.empty()) return std::nullopt;
  return find(rows[0].text(0));
}

std::vector<Ticket> CoreStore::list_tickets(const std::string& customer, std::int64_t limit,
                                            std::optional<bool> breached) const {
  std::string sql = "SELECT " + std::string(kTicketColumns) + " FROM tickets WHERE 1 = 1";
  Params params;
  if (!customer.empty()) {
    sql += " AND customer = ?";
    params.emplace_back(customer);
  }
  // Spelt out both ways: NOT of the first would drop the rows where a NULL makes it unknown.
  if (breached == true) {
    sql +=
        " AND response_due IS NOT NULL AND ((responded_at IS NULL AND response_due < ?) OR "
        "responded_at > response_due)";
    params.emplace_back(to_epoch(clock_.now()));
  } else if (breached == false) {
    sql +=
        " AND (response_due IS NULL OR (responded_at IS NULL AND response_due >= ?) OR "
        "(responded_at IS NOT NULL AND responded_at <= response_due))";
    params.emplace_back(to_epoch(clock_.now()));
  }
  params.emplace_back(limit);
  std::vector<Ticket> out;
  for (const auto& r : store_.query(sql + " ORDER BY created_at DESC, id DESC LIMIT ?", params)) {
    out.push_back(ticket_from_row(r));
  }
  return out;
}

std::string CoreStore::watch_responses(Outbox& outbox, const std::vector<std::string>& escalate) {
  const Instant now = clock_.now();
  const auto due = store_.query("SELECT " + std::string(kTicketColumns) +
                                    " FROM tickets WHERE responded_at IS NULL AND response_due "
                                    "<= ? AND response_escalated_at IS NULL AND status NOT IN "
                                    "('resolved', 'closed') ORDER BY response_due",
                                {to_epoch(now)});
  int escalated = 0;
  for (const auto& row : due) {
    const Ticket t = ticket_from_row(row);
    bool changed = false;
    store_.transact([&](Tx& tx) {
      changed = tx.exec(
                    "UPDATE tickets SET response_escalated_at = ? WHERE id = ? AND "
                    "responded_at IS NULL AND response_escalated_at IS NULL",
                    {to_epoch(now), t.id}) > 0;
      if (!changed) return;
      const Json payload = ticket_to_json(t, false, now);
      events_.publish(tx, "ticket.response_missed", t.id, payload);
      const std::string subject = "First response missed: " + t.id + " (" + t.kind + ", due " +
                                  format_instant(*t.first_response_due) + ")";
      const std::string body =
          "Ticket " + t.id + " in queue " + t.queue + " has no answer yet.\n" +
          "Subject: " + t.subject + "\nKind: " + t.kind +
          "\nPriority: " + std::to_string(t.priority) +
          "\nCustomer: " + (t.customer.empty() ? "(unknown)" : t.customer) +
          "\nRequester: " + t.requester + "\nReceived: " + format_instant(t.created_at) +
          "\nFirst response due: " + format_instant(*t.first_response_due) + "\n";
      for (const auto& address : escalate) {
        outbox.enqueue(tx, {0, "email", address, subject, body, Json::object(),
                            "ticket.response_missed/" + t.id + "/" + address});
      }
    });
    if (changed) ++escalated;
  }
  return std::to_string(escalated) + " escalated";
}

std::optional<Instant> CoreStore::response_due(const std::string& kind, Instant arrived) const {
  const auto target = kind == "incident"          ? targets_.incident
                      : kind == "service_request" ? targets_.service_request
                                                  : std::chrono::seconds{0};
  if (target.count() <= 0) return std::nullopt;
  return provider_calendar().add_business_time(arrived, target);
}

void CoreStore::update(Tx& tx, const Actor& actor, const Ticket& changed) {
  auto rows = tx.query("SELECT " + std::string(kTicketColumns) + " FROM tickets WHERE id = ?",
                       {changed.id});
  if (rows.empty()) throw NotFound("no ticket '" + changed.id + "'");
  const Ticket stored = ticket_from_row(rows[0]);
  Json before = ticket_to_json(stored, false);
  Ticket ticket = changed;
  ticket.created_at = stored.created_at;
  ticket.first_responded_at = stored.first_responded_at;
  // The first-response target follows the kind, timed from the request's arrival: a request
  // found to be an incident is due as an incident (and may be overdue at once).
  ticket.first_response_due = ticket.kind == stored.kind
                                  ? stored.first_response_due
                                  : response_due(ticket.kind, stored.created_at);
  ticket.updated_at = clock_.now();
  tx.exec(
      "UPDATE tickets SET kind = ?, subject = ?, status = ?, priority = ?, customer = ?, "
      "external_ref = ?, updated_at = ?, response_due = ? WHERE id = ?",
      {ticket.kind, ticket.subject, ticket.status, static_cast<std::int64_t>(ticket.priority),
       ticket.customer.empty() ? Value{} : Value{ticket.customer},
       ticket.external_ref.empty() ? Value{} : Value{ticket.external_ref},
       to_epoch(ticket.updated_at), optional_epoch(ticket.first_response_due), ticket.id});
  const std::string text = ticket_to_json(ticket, false).dump();
  write_audit(tx, actor, "update", "ticket", ticket.id, before.dump(), text);
  events_.publish_serialized(tx, "ticket.updated", ticket.id, text);
}

}  // namespace slmhub::host
