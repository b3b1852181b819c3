#include "sia.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "common.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::workflows {
namespace {

constexpr int kDueBusinessDays = 15;  // DOMAIN.md §6, after the interruption ends
const Actor kSystem{"system:workflows"};
constexpr std::array<const char*, 5> kLetters{"a", "b", "c", "d", "e"};

const char* const kColumns =
    "id, service, state, due_date, due_at, facts, sections, steps, created_at, updated_at";

Sia read_sia(const Row& r) {
  Sia out;
  out.id = r.text(0);
  out.service = r.text(1);
  out.state = r.text(2);
  out.due_date = r.text(3);
  out.due = from_epoch(r.integer(4));
  out.facts = Json::parse(r.text(5));
  out.sections = Json::parse(r.text(6));
  out.steps = Json::parse(r.text(7));
  out.created_at = from_epoch(r.integer(8));
  out.updated_at = from_epoch(r.integer(9));
  return out;
}

Sia require_sia(Tx& tx, const std::string& id) {
  auto rows = tx.query(std::string("SELECT ") + kColumns + " FROM sias WHERE id = ?", {id});
  if (rows.empty()) throw NotFound("no SIA for interruption '" + id + "'");
  return read_sia(rows.front());
}

std::string deadline_id(const std::string& id) { return "sia/" + id; }
std::string action_deadline_id(const std::string& id, std::size_t n) {
  return "sia/" + id + "/action/" + std::to_string(n);
}

// ---- sections ------------------------------------------------------------------------------
// Each reader copies what it read into `out` in normalized form; absent keys stay absent so
// that approval can name them.

void put_string(ObjectReader& r, Json& out, const char* key) {
  if (auto v = r.optional_string(key)) out[key] = *v;
}
void put_bool(ObjectReader& r, Json& out, const char* key) {
  if (auto v = r.optional_bool(key)) out[key] = *v;
}
// Lists are read whether or not they are present, so that a null value counts as read.
void put_list(ObjectReader& r, Json& out, const char* key) {
  const bool present = r.has(key);
  auto items = r.optional_string_list(key);
  if (present) out[key] = std::move(items);
}
template <typename Read>
void put_array(ObjectReader& r, Json& out, const char* key, Read&& read) {
  const bool present = r.has(key);
  auto items = r.optional_array(key, read);
  if (present) out[key] = std::move(items);
}

enum class Source { internal, external, process, procedure, physical };
constexpr std::array<EnumName<Source>, 5> kSourceNames{{
    {"internal", Source::internal},
    {"external", Source::external},
    {"process", Source::process},
    {"procedure", Source::procedure},
    {"physical", Source::physical},
}};

Json read_summary(ObjectReader& r) {
  Json out = Json::object();
  put_string(r, out, "description");
  for (const char* key : {"impacted_services", "impacted_customers", "impacted_systems"}) {
    put_list(r, out, key);
  }
  return out;
}

Json read_cause(ObjectReader& r) {
  Json out = Json::object();
  if (auto source = r.optional_enum("source", kSourceNames)) {
    out["source"] = enum_to_name(kSourceNames, *source);
  }
  put_string(r, out, "actions_that_caused");
  put_string(r, out, "actions_that_added_impact");
  put_bool(r, out, "process_not_followed");
  put_bool(r, out, "process_missing");
  return out;
}

// The text fields of one resolution group; "when" is an instant.
constexpr std::array<const char*, 6> kGroupTexts{"group", "who", "what", "where", "why", "how"};

Json read_group(const Json& value, const std::string& path, std::vector<FieldError>& errors) {
  ObjectReader r(value, path, errors);
  Json out = Json::object();
  for (const char* key : kGroupTexts) put_string(r, out, key);
  if (auto when = r.optional_instant("when")) out["when"] = format_instant(*when);
  r.finish();
  return out;
}

Json read_resolution(ObjectReader& r) {
  Json out = Json::object();
  put_array(r, out, "groups", read_group);
  put_bool(r, out, "applies_elsewhere");
  put_string(r, out, "notes");
  return out;
}

Json read_action(const Json& value, const std::string& path, std::vector<FieldError>& errors) {
  ObjectReader r(value, path, errors);
  Json out = Json::object();
  put_string(r, out, "action");
  put_string(r, out, "owner");
  if (auto due = r.optional_date("due")) out["due"] = format_date(*due);
  out["done"] = r.optional_bool("done").value_or(false);
  r.finish();
  return out;
}

Json read_corrective_actions(ObjectReader& r) {
  Json out = Json::object();
  put_array(r, out, "corrective_actions", read_action);
  return out;
}

// The restoration notice as sent to customers: its text, and the message itself as an
// attachment, which SiaBook::write_section reads and stores before this reader runs.
Json read_restoration(ObjectReader& r) {
  Json out = Json::object();
  put_string(r, out, "notice");
  if (auto at = r.optional_instant("sent_at")) out["sent_at"] = format_instant(*at);
  return out;
}

// The fields approval asks for in each section (a list must not be empty), and for a
// section holding a list of items, the fields each item needs.
struct Required {
  const char* letter;
  std::vector<const char*> fields;
  const char* items = nullptr;
  std::vector<const char*> item_fields = {};
};
const std::vector<Required>& required_fields() {
  static const std::vector<Required> kRequired{
      {"a", {"description", "impacted_services", "impacted_customers", "impacted_systems"}},
      {"b",
       {"source", "actions_that_caused", "actions_that_added_impact", "process_not_followed",
        "process_missing"}},
      {"c",
       {"groups", "applies_elsewhere"},
       "groups",
       {"group", "who", "what", "when", "where", "why", "how"}},
      {"d", {"corrective_actions"}, "corrective_actions", {"action", "owner", "due"}},
      {"e", {"notice"}},
  };
  return kRequired;
}

// ---- the published e-mail ------------------------------------------------------------------

std::string text_of(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("sha256")) {  // an attachment
    return value.value("name", "") + " (" + value.value("content_type", "") + ", " +
           std::to_string(value.value("size", std::int64_t{0})) + " bytes, SHA-256 " +
           value.value("sha256", "") + ")";
  }
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_array()) {
    std::string out;
    for (const auto& item : value) {
      if (item.is_string()) out += (out.empty() ? "" : ", ") + item.get<std::string>();
    }
    return out;
  }
  return value.dump();
}

std::string mail_body(const Sia& sia) {
  static const std::array<const char*, 5> kTitles{"A. Summary", "B. Cause", "C. Resolution",
                                                  "D. Corrective actions",
                                                  "E. Service restoration notice"};
  std::string out = "Service Interruption Analysis " + sia.id + " (" + sia.service + ")\n";
  out += "Interruption: " + sia.facts.value("start", "") + " to " + sia.facts.value("end", "") +
         ", " + std::to_string(sia.facts.value("duration_seconds", std::int64_t{0})) + " seconds\n";
  for (std::size_t i = 0; i < kLetters.size(); ++i) {
    out += "\n" + std::string(kTitles[i]) + "\n";
    const Json& section = sia.sections.at(kLetters[i]);
    for (const auto& [key, value] : section.items()) {
      if (!value.is_array() || value.empty() || !value.front().is_object()) {
        out += "  " + key + ": " + text_of(value) + "\n";
        continue;
      }
      for (const auto& item : value) {
        out += "  -";
        for (const auto& [k, v] : item.items()) out += " " + k + ": " + text_of(v) + ";";
        out += "\n";
      }
    }
  }
  return out;
}

}  // namespace

// ---- sections (public) ---------------------------------------------------------------------

Json parse_section(const std::string& letter, const Json& body) {
  using Reader = Json (*)(ObjectReader&);
  static const std::array<std::pair<const char*, Reader>, 5> kReaders{{
      {"a", read_summary},
      {"b", read_cause},
      {"c", read_resolution},
      {"d", read_corrective_actions},
      {"e", read_restoration},
  }};
  for (const auto& [name, read] : kReaders) {
    if (letter != name) continue;
    std::vector<FieldError> errors;
    ObjectReader r(body, "$", errors);
    Json out = read(r);
    r.finish();
    throw_if_errors(std::move(errors));
    return out;
  }
  throw NotFound("an SIA has sections a, b, c, d and e, not '" + letter + "'");
}

std::vector<FieldError> missing_fields(const Json& sections) {
  std::vector<FieldError> out;
  auto missing = [&out](std::string path) {
    out.push_back({std::move(path), "required before approval"});
  };
  for (const auto& rule : required_fields()) {
    const Json& section = sections.at(rule.letter);
    for (const char* field : rule.fields) {
      const auto it = section.find(field);
      if (it == section.end() || (it->is_array() && it->empty())) {
        missing(std::string(rule.letter) + "." + field);
      }
    }
    if (!rule.items || !section.contains(rule.items)) continue;
    const std::string path = std::string(rule.letter) + "." + rule.items;
    const Json& items = section.at(rule.items);
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (const char* field : rule.item_fields) {
        if (!items[i].contains(field)) missing(path_key(path_index(path, i), field));
      }
    }
  }
  return out;
}

Json sia_json(const Sia& sia) {
  Json missing = Json::array();
  for (const auto& m : missing_fields(sia.sections)) missing.push_back(m.path);
  return {{"id", sia.id},
          {"interruption", sia.id},
          {"service", sia.service},
          {"state", sia.state},
          {"due_date", sia.due_date},
          {"due", format_instant(sia.due)},
          {"facts", sia.facts},
          {"sections", sia.sections},
          {"missing", std::move(missing)},
          {"steps", sia.steps},
          {"created_at", format_instant(sia.created_at)},
          {"updated_at", format_instant(sia.updated_at)}};
}

// ---- the book --------------------------------------------------------------------------------

SiaBook::SiaBook(Store& store, Catalog& catalog, Events& events, Outbox& outbox,
                 Deadlines& deadlines, Attachments& attachments, const Clock& clock, Logger& log,
                 std::vector<std::string> distribution, std::string account_team)
    : store_(store),
      catalog_(catalog),
      events_(events),
      outbox_(outbox),
      deadlines_(deadlines),
      attachments_(attachments),
      clock_(clock),
      log_(log),
      distribution_(std::move(distribution)),
      account_team_(std::move(account_team)) {}

std::vector<Migration> SiaBook::migrations() {
  return {
      {1, "service interruption analyses",
       "CREATE TABLE sias(id TEXT PRIMARY KEY, service TEXT NOT NULL, state TEXT NOT NULL, "
       "due_date TEXT NOT NULL, due_at BIGINT NOT NULL, facts TEXT NOT NULL, "
       "sections TEXT NOT NULL, steps TEXT NOT NULL, created_at BIGINT NOT NULL, "
       "updated_at BIGINT NOT NULL);"
       "CREATE INDEX sias_state ON sias(state, service)"},
  };
}

void SiaBook::subscribe() {
  // interruption.updated as well: an ended degradation corrected to an outage is downtime from
  // then on, and no interruption.resolved comes for it again; a corrected end moves the facts.
  events_.subscribe("workflows.sia",
                    {"interruption.resolved", "interruption.updated", "interruption.deleted"},
                    [this](const Event& e) { follow(e.subject); });
}

namespace {

// Why an interruption needs no SIA, or nothing when it needs one (an ended outage).
std::optional<std::string> needs_none(const std::optional<Interruption>& inc) {
  if (!inc) return "the interruption was deleted";
  if (inc->type != InterruptionType::outage) {
    return "the interruption is a " + std::string(enum_to_name(kInterruptionTypeNames, inc->type)) +
           ", not downtime";
  }
  if (!inc->end) return "the interruption has not ended";
  return std::nullopt;
}

// The customers an ended interruption impacted: those it names, else every customer
// subscribed to its service at some point of it; sorted.
std::vector<std::string> impacted_customers(const Catalog& catalog, const Interruption& inc) {
  std::vector<std::string> customers = inc.customers;
  if (customers.empty()) {
    // "Every subscriber of the service" needs every customer; the catalog has no query by
    // subscription, so this reads the whole store (rare: for an outage whose SIA is open).
    for (const auto& c : catalog.snapshot().customers) {
      const bool subscribed =
          std::any_of(c.subscriptions.begin(), c.subscriptions.end(), [&](const Subscription& s) {
            return s.service == inc.service && (!s.start || *s.start < *inc.end) &&
                   (!s.end || inc.start < *s.end);
          });
      if (subscribed) customers.push_back(c.id);
    }
  }
  std::sort(customers.begin(), customers.end());
  return customers;
}

Json facts_of(const Catalog& catalog, const Interruption& inc) {
  Json facts = {{"interruption", inc.id},
                {"service", inc.service},
                {"type", enum_to_name(kInterruptionTypeNames, inc.type)},
                {"start", format_instant(inc.start)},
                {"end", format_instant(*inc.end)},
                {"duration_seconds", (*inc.end - inc.start).count()},
                {"customers", impacted_customers(catalog, inc)}};
  if (inc.description) facts["description"] = *inc.description;
  return facts;
}

// Section A's fields drafted from the facts: what follows the facts while nobody changed it.
Json prefilled(const Json& facts) {
  Json a = {{"impacted_services", Json::array({facts.value("service", "")})},
            {"impacted_customers", facts.value("customers", Json::array())}};
  if (facts.contains("description")) a["description"] = facts["description"];
  return a;
}

struct Due {
  std::string date;  // YYYY-MM-DD in the provider calendar
  Instant at;        // the end of that day
};

Due due_of(const Catalog& catalog, const Interruption& inc) {
  const BusinessCalendar provider = catalog.provider_calendar();
  const auto day =
      provider.add_business_days(local_date(*inc.end, provider.zone()), kDueBusinessDays);
  return {format_date(day), provider.end_of_day(day)};
}

Deadline deadline_of(const Interruption& inc, const Due& due) {
  return {deadline_id(inc.id),
          "sia",
          inc.id,
          "service_manager",
          "publish the Service Interruption Analysis of " + inc.id + " (" + inc.service + ")",
          due.at};
}

}  // namespace

SiaBook::Followed SiaBook::follow(const std::string& interruption_id) {
  const auto interruption = catalog_.interruption(interruption_id);
  const auto none = needs_none(interruption);
  const auto signed_off = [](const Sia& sia) {
    return sia.state == "approved" || sia.state == "published";
  };
  if (const auto existing = find(interruption_id); !existing) {
    if (none) return Followed::unchanged;
    if (draft(*interruption)) return Followed::drafted;
    // Drafted meanwhile by another delivery: followed below like any other.
  } else if (signed_off(*existing)) {
    return Followed::unchanged;  // the document stays as it was approved
  }
  // What the interruption asks of its SIA is worked out first; the SIA is read and changed in
  // one transaction, so a step taken meanwhile (a submission) is not overwritten.
  std::optional<Json> facts;
  std::optional<Due> due;
  if (!none) {
    facts = facts_of(catalog_, *interruption);
    due = due_of(catalog_, *interruption);
  }
  const Instant now = clock_.now();
  Followed result = Followed::unchanged;
  std::string was;
  store_.transact([&](Tx& tx) {
    result = Followed::unchanged;
    Sia sia = require_sia(tx, interruption_id);
    was = sia.state;
    if (signed_off(sia)) return;
    if (none) {
      if (sia.state == "withdrawn") return;
      sia.steps["withdrawn"] = {{"by", kSystem.id}, {"at", format_instant(now)}, {"reason", *none}};
      tx.exec("UPDATE sias SET state = 'withdrawn', steps = ?, updated_at = ? WHERE id = ?",
              {sia.steps.dump(), to_epoch(now), sia.id});
      deadlines_.complete(tx, kSystem, deadline_id(sia.id));
      catalog_.audit(tx, kSystem, "withdraw", "sia", sia.id, {{"state", sia.state}},
                     {{"state", "withdrawn"}, {"reason", *none}});
      result = Followed::withdrawn;
      return;
    }
    if (sia.state != "withdrawn" && sia.facts == *facts) return;
    // A withdrawn SIA comes back as a draft, whatever it was withdrawn from.
    const std::string state = sia.state == "withdrawn" ? "draft" : sia.state;
    sia.steps.erase("withdrawn");
    // Section A's drafted fields follow the facts unless someone wrote their own.
    Json before = {{"state", sia.state}, {"due_date", sia.due_date}, {"facts", sia.facts}};
    Json after = {{"state", state}, {"due_date", due->date}, {"facts", *facts}};
    const Json was_drafted = prefilled(sia.facts);
    const Json now_drafted = prefilled(*facts);
    Json& a = sia.sections["a"];
    for (const char* key : {"description", "impacted_services", "impacted_customers"}) {
      const Json was = was_drafted.value(key, Json());
      const Json is = now_drafted.value(key, Json());
      if (a.value(key, Json()) != was || is == was) continue;
      before["a"][key] = was;
      after["a"][key] = is;
      if (is.is_null()) {
        a.erase(key);  // no description any more
      } else {
        a[key] = is;
      }
    }
    tx.exec(
        "UPDATE sias SET service = ?, state = ?, due_date = ?, due_at = ?, facts = ?, "
        "sections = ?, steps = ?, updated_at = ? WHERE id = ?",
        {interruption->service, state, due->date, to_epoch(due->at), facts->dump(),
         sia.sections.dump(), sia.steps.dump(), to_epoch(now), sia.id});
    if (sia.state == "withdrawn") {
      // Owed again: the withdrawal met it.
      deadlines_.reopen(tx, kSystem, deadline_of(*interruption, *due));
    } else {
      deadlines_.set(tx, kSystem, deadline_of(*interruption, *due));  // moved, or reworded
    }
    catalog_.audit(tx, kSystem, sia.state == "withdrawn" ? "redraft" : "refresh", "sia", sia.id,
                   before, after);
    result = Followed::refreshed;
  });
  if (result == Followed::withdrawn) {
    log_.info("SIA " + interruption_id + " withdrawn: " + *none);
  } else if (result == Followed::refreshed) {
    log_.info("SIA " + interruption_id +
              (was == "withdrawn" ? " drafted again" : " follows its interruption") + ": " +
              facts->value("start", "") + " to " + facts->value("end", "") + ", due " + due->date);
  }
  return result;
}

bool SiaBook::draft(const Interruption& inc) {
  const Json facts = facts_of(catalog_, inc);
  const Due due = due_of(catalog_, inc);
  const Instant now = clock_.now();
  Json summary = prefilled(facts);
  Json sections = Json::object();
  for (const char* letter : kLetters) sections[letter] = Json::object();
  sections["a"] = std::move(summary);
  const Json steps = {{"drafted", {{"by", kSystem.id}, {"at", format_instant(now)}}}};

  bool created = false;
  store_.transact([&](Tx& tx) {
    // Two deliveries racing (or two instances) both get here: only one row is inserted, and
    // only its inserter audits and registers the deadline.
    created = tx.exec("INSERT INTO sias(" + std::string(kColumns) +
                          ") VALUES (?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT(id) DO NOTHING",
                      {inc.id, inc.service, due.date, to_epoch(due.at), facts.dump(),
                       sections.dump(), steps.dump(), to_epoch(now), to_epoch(now)}) == 1;
    if (!created) return;
    catalog_.audit(tx, kSystem, "draft", "sia", inc.id, Json(),
                   {{"state", "draft"}, {"due_date", due.date}});
    deadlines_.set(tx, kSystem, deadline_of(inc, due));
  });
  if (created) log_.info("SIA " + inc.id + " drafted for " + inc.service + ", due " + due.date);
  return created;
}

std::vector<Sia> SiaBook::list(const std::string& state, const std::string& service) const {
  Params params;
  const std::string sql = std::string("SELECT ") + kColumns + " FROM sias WHERE 1 = 1" +
                          where_equal({{"state", state}, {"service", service}}, params);
  std::vector<Sia> out;
  for (const auto& row : store_.query(sql + " ORDER BY due_at, id", params)) {
    out.push_back(read_sia(row));
  }
  return out;
}

std::optional<Sia> SiaBook::find(const std::string& id) const {
  auto rows = store_.query(std::string("SELECT ") + kColumns + " FROM sias WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return read_sia(rows.front());
}

Sia SiaBook::write_section(const Actor& actor, const std::string& id, const std::string& letter,
                           const Json& body) {
  // Section E's attachment is read here (its bytes go to the attachment store, not into the
  // section); its errors are reported with the section's, in one 400.
  std::optional<Upload> upload;
  Json fields = body;
  std::vector<FieldError> upload_errors;
  if (letter == "e" && body.is_object() && body.contains("attachment")) {
    upload = read_upload(body.at("attachment"), "$.attachment", upload_errors);
    fields.erase("attachment");
  }
  Json section;
  try {
    section = parse_section(letter, fields);
  } catch (const ValidationError& e) {
    std::vector<FieldError> all = e.errors();
    all.insert(all.end(), upload_errors.begin(), upload_errors.end());
    throw ValidationError(std::move(all));
  }
  throw_if_errors(std::move(upload_errors));
  const Instant now = clock_.now();
  Sia out;
  store_.transact([&](Tx& tx) {
    Sia sia = require_sia(tx, id);
    if (sia.state != "draft") {
      throw Conflict("cannot change section " + letter + " of SIA " + id + ": it is " + sia.state +
                     ", and only a draft can be edited");
    }
    const Json before = sia.sections[letter];
    if (upload)
      section["attachment"] = attachment_json(attachments_.add(tx, "sia/" + id, *upload, now));
    sia.sections[letter] = section;
    sia.updated_at = now;
    tx.exec("UPDATE sias SET sections = ?, updated_at = ? WHERE id = ?",
            {sia.sections.dump(), to_epoch(now), id});
    catalog_.audit(tx, actor, "write_section", "sia", id, {{letter, before}}, {{letter, section}});
    out = std::move(sia);
  });
  return out;
}

Sia SiaBook::advance(const Actor& actor, const std::string& id, const Move& move, const Json& extra,
                     const std::function<void(Tx&, const Sia&)>& effects) {
  const Instant now = clock_.now();
  Sia out;
  store_.transact([&](Tx& tx) {
    Sia sia = require_sia(tx, id);
    if (sia.state != move.from) {
      throw Conflict("cannot " + std::string(move.action) + " SIA " + id + ": it is " + sia.state +
                     ", and only a " + move.from + " SIA can be " + move.to);
    }
    Json step = {{"by", actor.id}, {"at", format_instant(now)}};
    step.update(extra);
    sia.state = move.to;
    sia.steps[move.step_key] = step;
    sia.updated_at = now;
    effects(tx, sia);
    tx.exec("UPDATE sias SET state = ?, steps = ?, updated_at = ? WHERE id = ? AND state = ?",
            {sia.state, sia.steps.dump(), to_epoch(now), id, std::string(move.from)});
    Json after = {{"state", move.to}};
    after.update(extra);
    catalog_.audit(tx, actor, move.action, "sia", id, {{"state", move.from}}, after);
    out = std::move(sia);
  });
  log_.info("SIA " + id + " " + out.state + " by " + actor.id);
  return out;
}

Sia SiaBook::submit(const Actor& actor, const std::string& id) {
  return advance(actor, id, {"submit", "draft", "submitted", "submitted"}, Json::object(),
                 [](Tx&, const Sia&) {});
}

Sia SiaBook::approve(const Actor& actor, const std::string& id) {
  return advance(actor, id, {"approve", "submitted", "approved", "approved"}, Json::object(),
                 [](Tx&, const Sia& sia) {
                   auto missing = missing_fields(sia.sections);
                   if (missing.empty()) return;
                   const std::string detail =
                       "SIA " + sia.id + " cannot be approved: " + std::to_string(missing.size()) +
                       " required fields are missing";
                   throw Problem(422, "Unprocessable Content", detail, std::move(missing));
                 });
}

Sia SiaBook::return_to_draft(const Actor& actor, const std::string& id, const std::string& reason) {
  return advance(actor, id, {"return", "submitted", "draft", "returned"}, {{"reason", reason}},
                 [](Tx&, const Sia&) {});
}

Sia SiaBook::publish(const Actor& actor, const std::string& id) {
  return advance(
      actor, id, {"publish", "approved", "published", "published"}, Json::object(),
      [&](Tx& tx, const Sia& sia) {
        deadlines_.complete(tx, actor, deadline_id(id));
        const BusinessCalendar provider = catalog_.provider_calendar();
        const Json& actions = sia.sections.at("d").at("corrective_actions");
        for (std::size_t n = 0; n < actions.size(); ++n) {
          const Json& a = actions[n];
          if (a.value("done", false)) continue;
          const std::string owner = a.at("owner").get<std::string>();
          std::vector<std::string> notify;
          // An owner may be a name, a team or a chat handle ("@dba-oncall"); only an address
          // the deadline service takes (its own rule) is e-mailed. Anything else refused there
          // would fail the publication, and an approved SIA cannot be edited any more.
          if (looks_like_email(owner)) notify.push_back(owner);
          deadlines_.set(
              tx, actor,
              {action_deadline_id(id, n), "corrective_action", id, "service_manager",
               "corrective action of " + id + " (" + owner +
                   "): " + a.at("action").get<std::string>(),
               provider.end_of_day(parse_date(a.at("due").get<std::string>())), std::move(notify)});
        }
        events_.publish(tx, "sia.published", id, sia_json(sia));
        const std::string body = mail_body(sia);
        const std::string subject =
            "Service Interruption Analysis " + id + " (" + sia.service + ") published";
        for (const auto& address : distribution_) {
          outbox_.enqueue(tx, {0, "email", address, subject, body, Json::object(),
                               "sia.published/" + id + "/" + address});
        }
        if (account_team_.empty()) return;
        // The impacted customers' outage and primary technical contacts, from the account team.
        std::set<std::string> contacts;
        for (const auto& c : sia.sections.at("a").value("impacted_customers", Json::array())) {
          const auto customer = catalog_.customer(c.get<std::string>());
          if (!customer) continue;
          for (const auto& contact : customer->contacts) {
            if (contact.role == ContactRole::outage ||
                contact.role == ContactRole::technical_primary) {
              contacts.insert(contact.email);
            }
          }
        }
        for (const auto& address : contacts) {
          outbox_.enqueue(tx, {0,
                               "email",
                               address,
                               subject,
                               body,
                               {{"From", account_team_}},
                               "sia.customers/" + id + "/" + address});
        }
      });
}

Sia SiaBook::complete_action(const Actor& actor, const std::string& id, std::size_t n) {
  const Instant now = clock_.now();
  Sia out;
  store_.transact([&](Tx& tx) {
    Sia sia = require_sia(tx, id);
    if (sia.state != "published") {
      throw Conflict("SIA " + id + " is " + sia.state +
                     ": corrective actions are recorded as done once it is published (until "
                     "then, section D is edited)");
    }
    Json& actions = sia.sections["d"]["corrective_actions"];
    if (n >= actions.size()) {
      throw NotFound("SIA " + id + " has " + std::to_string(actions.size()) +
                     " corrective actions; there is no action " + std::to_string(n));
    }
    Json& action = actions[n];
    if (action.value("done", false)) {
      throw Conflict("corrective action " + std::to_string(n) + " of SIA " + id +
                     " is done already");
    }
    action["done"] = true;
    action["done_at"] = format_instant(now);
    action["done_by"] = actor.id;
    sia.updated_at = now;
    tx.exec("UPDATE sias SET sections = ?, updated_at = ? WHERE id = ?",
            {sia.sections.dump(), to_epoch(now), id});
    deadlines_.complete(tx, actor, action_deadline_id(id, n));
    catalog_.audit(tx, actor, "complete_action", "sia", id, {{"action", n}, {"done", false}},
                   {{"action", n}, {"done", true}});
    out = std::move(sia);
  });
  log_.info("SIA " + id + " corrective action " + std::to_string(n) + " done by " + actor.id);
  return out;
}

}  // namespace slmhub::workflows
