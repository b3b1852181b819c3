#include "obligations.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "common.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::workflows {
namespace {

const Actor kSystem{"system:workflows"};

// What each kind is, who acts, who is told, and which contacts it concerns.
struct Kind {
  const char* name;
  int months;                  // the period of one cycle
  bool per_holder;             // one obligation per credential holder, not per customer
  const char* owner;           // the deadline's owner role; "customer" = the customer itself
  std::set<ContactRole> told;  // contacts told about it (and for per_holder: the holders)
  const char* what;
};
const std::array<Kind, 3>& kinds() {
  static const std::array<Kind, 3> kKinds{{
      {"sla_review",
       12,
       false,
       "service_manager",
       {ContactRole::executive},
       "review the SLA with the customer"},
      {"contact_validation",
       6,
       false,
       "customer",
       {ContactRole::technical_primary},
       "validate the contacts and developer accounts"},
      // Holders of database credentials: the technical and security contacts.
      {"use_policy",
       12,
       true,
       "customer",
       {ContactRole::technical_primary, ContactRole::technical_secondary, ContactRole::security},
       "acknowledge the use and security policy"},
  }};
  return kKinds;
}
const Kind* kind_named(const std::string& name) {
  for (const auto& k : kinds()) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

const std::string kFields =
    "kind, customer, party, due_date, due_at, state, completed_at, completed_by, note, "
    "created_at";
const std::string kColumns = "seq, " + kFields;

Obligation read_row(const Row& r) {
  Obligation o;
  o.id = numbered_id("OBL", r.integer(0));
  o.kind = r.text(1);
  o.customer = r.text(2);
  o.party = r.text(3);
  o.due_date = r.text(4);
  o.due = from_epoch(r.integer(5));
  o.state = r.text(6);
  if (auto t = r.optional_integer(7)) o.completed_at = from_epoch(*t);
  o.completed_by = r.text(8);
  o.note = r.text(9);
  o.created_at = from_epoch(r.integer(10));
  return o;
}

// `months` after `day`, on the same day of the month or, when that month is shorter, its
// last day (31 August + 6 months is 28 February).
date::year_month_day add_months(date::year_month_day day, int months) {
  const date::year_month ym = date::year_month{day.year(), day.month()} + date::months(months);
  const date::year_month_day candidate{ym.year(), ym.month(), day.day()};
  return candidate.ok() ? candidate : date::year_month_day{ym / date::last};
}

std::string deadline_id(const Obligation& o) { return "obligation/" + o.id; }

// The addresses told about one obligation: the holder for a per-holder kind, else the
// customer's contacts of the kind's roles.
std::vector<std::string> told(const Kind& kind, const Customer* customer,
                              const std::string& party) {
  if (kind.per_holder) return {party};
  std::set<std::string> out;
  if (customer) {
    for (const auto& c : customer->contacts) {
      if (kind.told.contains(c.role)) out.insert(c.email);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace

Json obligation_json(const Obligation& o, Instant now) {
  return {{"id", o.id},
          {"kind", o.kind},
          {"customer", o.customer},
          {"party", o.party.empty() ? Json() : Json(o.party)},
          {"due_date", o.due_date},
          {"due", format_instant(o.due)},
          {"state", o.state},
          {"overdue", o.state == "open" && now >= o.due},
          {"completed_at", o.completed_at ? Json(format_instant(*o.completed_at)) : Json()},
          {"completed_by", o.completed_by.empty() ? Json() : Json(o.completed_by)},
          {"note", o.note},
          {"created_at", format_instant(o.created_at)}};
}

ObligationBook::ObligationBook(Store& store, Catalog& catalog, Deadlines& deadlines,
                               const Clock& clock, Logger& log)
    : store_(store), catalog_(catalog), deadlines_(deadlines), clock_(clock), log_(log) {}

std::vector<Migration> ObligationBook::migrations() {
  return {{1, "recurring obligations of customers and the provider",
           "CREATE TABLE obligations(seq {{serial}}, kind TEXT NOT NULL, customer TEXT NOT NULL, "
           "party TEXT NOT NULL, due_date TEXT NOT NULL, due_at BIGINT NOT NULL, "
           "state TEXT NOT NULL, completed_at BIGINT, completed_by TEXT NOT NULL, "
           "note TEXT NOT NULL, created_at BIGINT NOT NULL);"
           "CREATE INDEX obligations_customer ON obligations(customer, kind, state)"}};
}

std::string ObligationBook::sync() {
  const Instant now = clock_.now();
  const BusinessCalendar provider = catalog_.provider_calendar();
  const auto today = local_date(now, provider.zone());
  const Dataset data = catalog_.snapshot();
  int opened = 0;
  int withdrawn = 0;
  store_.transact([&](Tx& tx) {
    opened = withdrawn = 0;
    // What is open now, by (kind, customer, party).
    std::map<std::tuple<std::string, std::string, std::string>, Obligation> open;
    for (const auto& row :
         tx.query("SELECT " + kColumns + " FROM obligations WHERE state = 'open'")) {
      Obligation o = read_row(row);
      open.emplace(std::make_tuple(o.kind, o.customer, o.party), std::move(o));
    }
    std::set<std::tuple<std::string, std::string, std::string>> wanted;
    for (const auto& customer : data.customers) {
      // Only a customer under the SLA (a subscription that has not ended) owes or is owed
      // these; a former customer's open ones are withdrawn below, and it is not flagged.
      if (std::none_of(customer.subscriptions.begin(), customer.subscriptions.end(),
                       [&](const Subscription& s) { return !s.end || *s.end > now; })) {
        continue;
      }
      for (const auto& kind : kinds()) {
        std::vector<std::string> parties{""};
        if (kind.per_holder) {
          std::set<std::string> holders;
          for (const auto& c : customer.contacts) {
            if (kind.told.contains(c.role)) holders.insert(c.email);
          }
          parties.assign(holders.begin(), holders.end());
        }
        for (const auto& party : parties) {
          auto key = std::make_tuple(std::string(kind.name), customer.id, party);
          wanted.insert(key);
          if (open.contains(key)) continue;
          const auto due_day = add_months(today, kind.months);
          const Instant due = provider.end_of_day(due_day);
          auto rows = tx.query("INSERT INTO obligations(" + kFields +
                                   ") VALUES (?, ?, ?, ?, ?, 'open', NULL, '', '', ?) "
                                   "RETURNING seq",
                               {std::string(kind.name), customer.id, party, format_date(due_day),
                                to_epoch(due), to_epoch(now)});
          Obligation o{numbered_id("OBL", rows.at(0).integer(0)),
                       kind.name,
                       customer.id,
                       party,
                       format_date(due_day),
                       due,
                       "open",
                       std::nullopt,
                       "",
                       "",
                       now};
          const std::string owner =
              std::string(kind.owner) == "customer" ? "customer:" + customer.id : kind.owner;
          deadlines_.set(tx, kSystem,
                         {deadline_id(o), "obligation." + o.kind, customer.id, owner,
                          std::string(kind.what) + " (" + customer.id +
                              (party.empty() ? "" : ", " + party) + ")",
                          due, told(kind, &customer, party)});
          catalog_.audit(tx, kSystem, "open", "obligation", o.id, Json(),
                         {{"kind", o.kind}, {"customer", customer.id}, {"due_date", o.due_date}});
          ++opened;
        }
      }
    }
    for (auto& [key, o] : open) {
      if (wanted.contains(key)) continue;
      tx.exec("UPDATE obligations SET state = 'withdrawn' WHERE seq = ? AND state = 'open'",
              {*parse_numbered_id("OBL", o.id)});
      deadlines_.complete(tx, kSystem, deadline_id(o));
      catalog_.audit(tx, kSystem, "withdraw", "obligation", o.id, {{"state", "open"}},
                     {{"state", "withdrawn"}});
      ++withdrawn;
    }
  });
  return std::to_string(opened) + " opened, " + std::to_string(withdrawn) + " withdrawn";
}

std::vector<Obligation> ObligationBook::list(const std::string& customer, const std::string& kind,
                                             const std::string& state) const {
  Params params;
  const std::string sql =
      "SELECT " + kColumns + " FROM obligations WHERE 1 = 1" +
      where_equal({{"customer", customer}, {"kind", kind}, {"state", state}}, params);
  std::vector<Obligation> out;
  for (const auto& row : store_.query(sql + " ORDER BY due_at, seq", params)) {
    out.push_back(read_row(row));
  }
  return out;
}

std::optional<Obligation> ObligationBook::find(const std::string& id) const {
  const auto seq = parse_numbered_id("OBL", id);
  if (!seq) return std::nullopt;
  auto rows = store_.query("SELECT " + kColumns + " FROM obligations WHERE seq = ?", {*seq});
  if (rows.empty()) return std::nullopt;
  return read_row(rows.front());
}

Obligation ObligationBook::complete(const Actor& actor, const std::string& id,
                                    const std::string& note) {
  const Instant now = clock_.now();
  const BusinessCalendar provider = catalog_.provider_calendar();
  const auto today = local_date(now, provider.zone());
  Obligation out;
  store_.transact([&](Tx& tx) {
    const auto seq = parse_numbered_id("OBL", id);
    auto rows = seq ? tx.query("SELECT " + kColumns + " FROM obligations WHERE seq = ?", {*seq})
                    : std::vector<Row>{};
    if (rows.empty()) throw NotFound("no obligation '" + id + "'");
    Obligation o = read_row(rows.front());
    if (o.state != "open") {
      throw Conflict("obligation " + id + " is " + o.state + ": only an open one can be completed");
    }
    tx.exec(
        "UPDATE obligations SET state = 'done', completed_at = ?, completed_by = ?, note = ? "
        "WHERE seq = ? AND state = 'open'",
        {to_epoch(now), actor.id, note, *seq});
    deadlines_.complete(tx, actor, deadline_id(o));
    catalog_.audit(tx, actor, "complete", "obligation", id, {{"state", "open"}},
                   {{"state", "done"}, {"note", note}});
    o.state = "done";
    o.completed_at = now;
    o.completed_by = actor.id;
    o.note = note;

    // The next cycle, one period from today.
    const Kind& kind = *kind_named(o.kind);
    const auto due_day = add_months(today, kind.months);
    const Instant due = provider.end_of_day(due_day);
    auto next =
        tx.query("INSERT INTO obligations(" + kFields +
                     ") VALUES (?, ?, ?, ?, ?, 'open', NULL, '', '', ?) RETURNING seq",
                 {o.kind, o.customer, o.party, format_date(due_day), to_epoch(due), to_epoch(now)});
    Obligation n = o;
    n.id = numbered_id("OBL", next.at(0).integer(0));
    const auto customer = catalog_.customer(o.customer);
    const std::string owner =
        std::string(kind.owner) == "customer" ? "customer:" + o.customer : kind.owner;
    deadlines_.set(
        tx, kSystem,
        {deadline_id(n), "obligation." + o.kind, o.customer, owner,
         std::string(kind.what) + " (" + o.customer + (o.party.empty() ? "" : ", " + o.party) + ")",
         due, told(kind, customer ? &*customer : nullptr, o.party)});
    catalog_.audit(
        tx, kSystem, "open", "obligation", n.id, Json(),
        {{"kind", o.kind}, {"customer", o.customer}, {"due_date", format_date(due_day)}});
    out = std::move(o);
  });
  log_.info("obligation " + id + " (" + out.kind + ", " + out.customer + ") completed by " +
            actor.id);
  return out;
}

Json ObligationBook::flagged() const {
  const Instant now = clock_.now();
  Json out = Json::array();
  for (const auto& o : list("", "contact_validation", "open")) {
    if (now < o.due) continue;
    out.push_back({{"customer", o.customer},
                   {"obligation", o.id},
                   {"due_date", o.due_date},
                   {"days_overdue", (now - o.due).count() / 86400},
                   {"reason", "contacts and developer accounts not validated since " + o.due_date +
                                  ": the SLA allows suspending the customer's access"}});
  }
  return out;
}

}  // namespace slmhub::workflows
