#include "credits.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "common.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::workflows {
namespace {

constexpr int kWorkOrderBusinessDays = 15;  // DOMAIN.md §5, after the report's publication
const Actor kSystem{"system:workflows"};

const char* const kCreditColumns =
    "id, customer, service, month, billing_code, amount_cents, original_cents, incidents, "
    "origin, origin_id, state, issued_at, adjustments, steps, created_at, updated_at, "
    "maintenance";
const char* const kOrderColumns =
    "id, month, service, revision, state, due_date, due_at, form, steps, created_at, updated_at";

Credit read_credit(const Row& r) {
  Credit c;
  c.id = r.text(0);
  c.customer = r.text(1);
  c.service = r.text(2);
  c.month = r.text(3);
  c.billing_code = r.text(4);
  c.amount_cents = r.integer(5);
  c.original_cents = r.integer(6);
  c.incidents = Json::parse(r.text(7));
  c.origin = r.text(8);
  c.origin_id = r.text(9);
  c.state = r.text(10);
  if (auto t = r.optional_integer(11)) c.issued_at = from_epoch(*t);
  c.adjustments = Json::parse(r.text(12));
  c.steps = Json::parse(r.text(13));
  c.created_at = from_epoch(r.integer(14));
  c.updated_at = from_epoch(r.integer(15));
  c.maintenance = Json::parse(r.text(16));
  return c;
}

WorkOrder read_order(const Row& r) {
  WorkOrder w;
  w.id = r.text(0);
  w.month = r.text(1);
  w.service = r.text(2);
  w.revision = r.integer(3);
  w.state = r.text(4);
  w.due_date = r.text(5);
  w.due = from_epoch(r.integer(6));
  w.form = Json::parse(r.text(7));
  w.steps = Json::parse(r.text(8));
  w.created_at = from_epoch(r.integer(9));
  w.updated_at = from_epoch(r.integer(10));
  return w;
}

std::optional<WorkOrder> find_order(Tx& tx, const std::string& id) {
  auto rows = tx.query(
      std::string("SELECT ") + kOrderColumns + " FROM credit_work_orders WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return read_order(rows.front());
}

std::string deadline_id(const std::string& order) { return "credit-work-order/" + order; }

// The agency credit form of one missed service, from its entry in `report.published`.
Json form_of(const std::string& month, std::int64_t revision, const Json& service) {
  Json customers = Json::array();
  std::int64_t total = 0;
  for (const auto& c : service.at("credits")) {
    Json row = Json::object();
    for (const char* key : {"customer", "customer_name", "billing_code", "downtime_seconds",
                            "excess_downtime_seconds", "monthly_charge_cents", "credit_cents",
                            "interruptions", "maintenance_downtime"}) {
      if (c.contains(key)) row[key] = c.at(key);
    }
    total += c.at("credit_cents").get<std::int64_t>();
    customers.push_back(std::move(row));
  }
  return {{"month", month},
          {"report_revision", revision},
          {"service", service.at("service")},
          {"service_name", service.value("name", service.at("service").get<std::string>())},
          {"incidents", service.value("interruptions", Json::array())},
          {"maintenance_downtime", service.value("maintenance_downtime", Json::array())},
          {"downtime_seconds", service.at("downtime_seconds")},
          {"allowed_downtime_seconds", service.at("allowed_downtime_seconds")},
          {"seconds_above_sla", service.at("excess_downtime_seconds")},
          {"customers", std::move(customers)},
          {"total_cents", total}};
}

}  // namespace

Json credit_json(const Credit& c) {
  return {{"id", c.id},
          {"customer", c.customer},
          {"service", c.service},
          {"month", c.month},
          {"billing_code", c.billing_code},
          {"amount_cents", c.amount_cents},
          {"original_cents", c.original_cents},
          {"incidents", c.incidents},
          {"maintenance_downtime", c.maintenance},
          {"origin", c.origin},
          {"origin_id", c.origin_id},
          {"state", c.state},
          {"issued_at", c.issued_at ? Json(format_instant(*c.issued_at)) : Json()},
          {"adjustments", c.adjustments},
          {"steps", c.steps},
          {"created_at", format_instant(c.created_at)},
          {"updated_at", format_instant(c.updated_at)}};
}

Json work_order_json(const WorkOrder& w) {
  return {{"id", w.id},
          {"type", "SLA Credit"},
          {"month", w.month},
          {"service", w.service},
          {"report_revision", w.revision},
          {"state", w.state},
          {"due_date", w.due_date},
          {"due", format_instant(w.due)},
          {"form", w.form},
          {"steps", w.steps},
          {"created_at", format_instant(w.created_at)},
          {"updated_at", format_instant(w.updated_at)}};
}

CreditBook::CreditBook(Store& store, Catalog& catalog, Events& events, Deadlines& deadlines,
                       const Clock& clock, Logger& log)
    : store_(store),
      catalog_(catalog),
      events_(events),
      deadlines_(deadlines),
      clock_(clock),
      log_(log) {}

std::vector<Migration> CreditBook::migrations() {
  return {{1, "SLA credits and their work orders",
           "CREATE TABLE credit_work_orders(id TEXT PRIMARY KEY, month TEXT NOT NULL, "
           "service TEXT NOT NULL, revision BIGINT NOT NULL, state TEXT NOT NULL, "
           "due_date TEXT NOT NULL, due_at BIGINT NOT NULL, form TEXT NOT NULL, "
           "steps TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
           "CREATE INDEX credit_work_orders_month ON credit_work_orders(month, state);"
           "CREATE TABLE credits(id TEXT PRIMARY KEY, customer TEXT NOT NULL, "
           "service TEXT NOT NULL, month TEXT NOT NULL, billing_code TEXT NOT NULL, "
           "amount_cents BIGINT NOT NULL, original_cents BIGINT NOT NULL, "
           "incidents TEXT NOT NULL, origin TEXT NOT NULL, origin_id TEXT NOT NULL, "
           "state TEXT NOT NULL, issued_at BIGINT, adjustments TEXT NOT NULL, "
           "steps TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
           "CREATE INDEX credits_customer ON credits(customer, month);"
           "CREATE INDEX credits_origin ON credits(origin_id)"},
          // DOMAIN.md §4: the record names the maintenance ids that made up the downtime too.
          // Credits from before it name none (their work orders' forms did not keep them).
          {2, "the maintenance windows that counted, on each credit",
           "ALTER TABLE credits ADD COLUMN maintenance TEXT NOT NULL DEFAULT '[]'"}};
}

void CreditBook::subscribe() {
  events_.subscribe("workflows.credit-work-orders", {"report.published"},
                    [this](const Event& e) { open_work_orders(e.payload); });
}

std::vector<WorkOrder> CreditBook::open_work_orders(const Json& published) {
  const std::string month = published.at("month").get<std::string>();
  const std::int64_t revision = published.at("revision").get<std::int64_t>();
  const Instant published_at = parse_instant(published.at("published_at").get<std::string>());
  const BusinessCalendar provider = catalog_.provider_calendar();
  const auto due_day =
      provider.add_business_days(local_date(published_at, provider.zone()), kWorkOrderBusinessDays);
  const Instant due = provider.end_of_day(due_day);
  const Instant now = clock_.now();

  std::vector<WorkOrder> out;
  store_.transact([&](Tx& tx) {
    out.clear();
    std::set<std::string> missed;
    for (const auto& service : published.at("missed_services")) {
      const std::string id = "WO:" + month + ":" + service.at("service").get<std::string>();
      missed.insert(id);
      Json form = form_of(month, revision, service);
      auto existing = find_order(tx, id);
      // A repeated delivery, or an older revision arriving late: nothing to do.
      if (existing && existing->revision >= revision) continue;
      if (existing && existing->state == "approved") {
        log_.warning("credit work order " + id + " was approved from revision " +
                     std::to_string(existing->revision) + "; revision " + std::to_string(revision) +
                     " of the report does not change it");
        continue;
      }
      // A customer credited already for this service and month (a credit request accepted
      // before the report was published) is credited the rest only: the same downtime is
      // not credited twice.
      for (auto& c : form.at("customers")) {
        std::int64_t before = 0;
        Json ids = Json::array();
        for (const auto& r :
             tx.query("SELECT id, amount_cents FROM credits WHERE customer = ? AND service = ? AND "
                      "month = ? AND origin_id <> ? AND state <> 'withdrawn' ORDER BY id",
                      {c.at("customer").get<std::string>(),
                       service.at("service").get<std::string>(), month, id})) {
          before += r.integer(1);
          ids.push_back(r.text(0));
        }
        if (before == 0) continue;
        c["already_credited_cents"] = before;
        c["already_credited"] = std::move(ids);
      }
      // Its pending credits as they were (id → cents), so each credit's change is audited.
      std::map<std::string, std::int64_t> pending_before;
      for (const auto& r : tx.query(
               "SELECT id, amount_cents FROM credits WHERE origin_id = ? AND state = 'pending'",
               {id})) {
        pending_before[r.text(0)] = r.integer(1);
      }
      WorkOrder w;
      if (existing) {
        w = std::move(*existing);
        const Json before = {
            {"state", w.state}, {"report_revision", w.revision}, {"due_date", w.due_date}};
        w.revision = revision;
        w.state = "open";
        w.form = form;
        // Due from this revision's publication, as its deadline below: the list and the
        // reminders name one date.
        w.due_date = format_date(due_day);
        w.due = due;
        w.steps["revised"] = step_json(kSystem, now);
        w.updated_at = now;
        tx.exec(
            "UPDATE credit_work_orders SET revision = ?, state = 'open', due_date = ?, due_at = ?, "
            "form = ?, steps = ?, updated_at = ? WHERE id = ?",
            {revision, w.due_date, to_epoch(due), form.dump(), w.steps.dump(), to_epoch(now), id});
        catalog_.audit(
            tx, kSystem, "revise", "credit_work_order", id, before,
            {{"state", "open"}, {"report_revision", revision}, {"due_date", w.due_date}});
        // Credits of customers no longer on the form are withdrawn below.
        tx.exec(
            "UPDATE credits SET state = 'withdrawn', updated_at = ? WHERE origin_id = ? AND "
            "state = 'pending'",
            {to_epoch(now), id});
      } else {
        w = {id,       month,  service.at("service").get<std::string>(),
             revision, "open", format_date(due_day),
             due,      form,   {{"opened", step_json(kSystem, now)}},
             now,      now};
        tx.exec(std::string("INSERT INTO credit_work_orders(") + kOrderColumns +
                    ") VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                {id, month, w.service, revision, w.due_date, to_epoch(due), form.dump(),
                 w.steps.dump(), to_epoch(now), to_epoch(now)});
        catalog_.audit(
            tx, kSystem, "open", "credit_work_order", id, Json(),
            {{"state", "open"}, {"report_revision", revision}, {"due_date", w.due_date}});
      }
      // reopen: a work order withdrawn by an earlier revision had its deadline done.
      deadlines_.reopen(
          tx, kSystem,
          {deadline_id(id), "credit_work_order", id, "approver",
           "approve the SLA Credit work order of " + w.service + " for " + month, due});
      for (const auto& c : form.at("customers")) {
        const std::int64_t cents = put_order_credit(tx, w, c, now);
        if (cents <= 0) continue;  // credited in full already; a pending one was withdrawn
        const std::string credit_id = id + ":" + c.at("customer").get<std::string>();
        const Json after = {
            {"state", "pending"}, {"amount_cents", cents}, {"report_revision", revision}};
        if (const auto was = pending_before.find(credit_id); was == pending_before.end()) {
          catalog_.audit(tx, kSystem, "create", "credit", credit_id, Json(), after);
        } else {
          if (was->second != cents) {
            catalog_.audit(tx, kSystem, "revise", "credit", credit_id,
                           {{"state", "pending"}, {"amount_cents", was->second}}, after);
          }
          pending_before.erase(was);
        }
      }
      // Customers no longer on the form: their credits were withdrawn above.
      for (const auto& [credit_id, cents] : pending_before) {
        catalog_.audit(tx, kSystem, "withdraw", "credit", credit_id,
                       {{"state", "pending"}, {"amount_cents", cents}},
                       {{"state", "withdrawn"}, {"report_revision", revision}});
      }
      out.push_back(std::move(w));
    }
    // Open work orders of services this revision shows as met are withdrawn.
    for (const auto& row : tx.query(std::string("SELECT ") + kOrderColumns +
                                        " FROM credit_work_orders WHERE month = ? AND state = "
                                        "'open' AND revision < ?",
                                    {month, revision})) {
      WorkOrder w = read_order(row);
      if (missed.contains(w.id)) continue;
      w.state = "withdrawn";
      w.revision = revision;
      w.steps["withdrawn"] = step_json(kSystem, now);
      for (const auto& r : tx.query(
               "SELECT id, amount_cents FROM credits WHERE origin_id = ? AND state = 'pending' "
               "ORDER BY id",
               {w.id})) {
        catalog_.audit(tx, kSystem, "withdraw", "credit", r.text(0),
                       {{"state", "pending"}, {"amount_cents", r.integer(1)}},
                       {{"state", "withdrawn"}, {"report_revision", revision}});
      }
      w.updated_at = now;
      tx.exec(
          "UPDATE credit_work_orders SET state = 'withdrawn', revision = ?, steps = ?, "
          "updated_at = ? WHERE id = ?",
          {revision, w.steps.dump(), to_epoch(now), w.id});
      tx.exec(
          "UPDATE credits SET state = 'withdrawn', updated_at = ? WHERE origin_id = ? AND "
          "state = 'pending'",
          {to_epoch(now), w.id});
      deadlines_.complete(tx, kSystem, deadline_id(w.id));
      catalog_.audit(tx, kSystem, "withdraw", "credit_work_order", w.id, {{"state", "open"}},
                     {{"state", "withdrawn"}, {"report_revision", revision}});
      out.push_back(std::move(w));
    }
  });
  for (const auto& w : out) {
    log_.info("credit work order " + w.id + " " + w.state + " from revision " +
              std::to_string(w.revision) + " of the report");
  }
  return out;
}

std::vector<WorkOrder> CreditBook::work_orders(const std::string& state,
                                               const std::string& month) const {
  Params params;
  const std::string sql = std::string("SELECT ") + kOrderColumns +
                          " FROM credit_work_orders WHERE 1 = 1" +
                          where_equal({{"state", state}, {"month", month}}, params);
  std::vector<WorkOrder> out;
  for (const auto& row : store_.query(sql + " ORDER BY due_at, id", params)) {
    out.push_back(read_order(row));
  }
  return out;
}

std::int64_t CreditBook::put_order_credit(Tx& tx, const WorkOrder& w, const Json& entry,
                                          Instant now) {
  const std::string customer = entry.at("customer").get<std::string>();
  const std::int64_t cents = entry.at("credit_cents").get<std::int64_t>() -
                             entry.value("already_credited_cents", std::int64_t{0});
  if (cents <= 0) return cents;
  tx.exec(std::string("INSERT INTO credits(") + kCreditColumns +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'work_order', ?, 'pending', NULL, '[]', ?, "
              "?, ?, ?) ON CONFLICT(id) DO UPDATE SET amount_cents = excluded.amount_cents, "
              "original_cents = excluded.original_cents, incidents = excluded.incidents, "
              "maintenance = excluded.maintenance, "
              "billing_code = excluded.billing_code, state = 'pending', "
              "updated_at = excluded.updated_at",
          {w.id + ":" + customer, customer, w.service, w.month,
           entry.value("billing_code", std::string()), cents, cents,
           entry.value("interruptions", Json::array()).dump(), w.id,
           Json{{"computed", step_json(kSystem, now)}}.dump(), to_epoch(now), to_epoch(now),
           entry.value("maintenance_downtime", Json::array()).dump()});
  return cents;
}

std::optional<WorkOrder> CreditBook::work_order(const std::string& id) const {
  auto rows = store_.query(
      std::string("SELECT ") + kOrderColumns + " FROM credit_work_orders WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return read_order(rows.front());
}

void CreditBook::approve_in(Tx& tx, const Actor& actor, Credit& c, Instant now) {
  c.state = "approved";
  c.issued_at = now;
  c.steps["approved"] = step_json(actor, now);
  c.updated_at = now;
  tx.exec(
      "UPDATE credits SET state = 'approved', issued_at = ?, steps = ?, updated_at = ? "
      "WHERE id = ? AND state = 'pending'",
      {to_epoch(now), c.steps.dump(), to_epoch(now), c.id});
  catalog_.audit(tx, actor, "approve", "credit", c.id, {{"state", "pending"}},
                 {{"state", "approved"}, {"amount_cents", c.amount_cents}});
  events_.publish(tx, "credit.approved", c.id,
                  {{"credit", c.id},
                   {"customer", c.customer},
                   {"billing_code", c.billing_code},
                   {"service", c.service},
                   {"month", c.month},
                   {"amount_cents", c.amount_cents},
                   {"incidents", c.incidents},
                   {"maintenance_downtime", c.maintenance},
                   {"origin", c.origin},
                   {"origin_id", c.origin_id},
                   {"approved_at", format_instant(now)},
                   {"approved_by", actor.id}});
}

WorkOrder CreditBook::approve_work_order(const Actor& actor, const std::string& id) {
  const Instant now = clock_.now();
  WorkOrder out;
  std::size_t approved = 0;
  store_.transact([&](Tx& tx) {
    auto w = find_order(tx, id);
    if (!w) throw NotFound("no credit work order '" + id + "'");
    if (w->state != "open") {
      throw Conflict("cannot approve credit work order " + id + ": it is " + w->state +
                     ", and only an open work order can be approved");
    }
    w->state = "approved";
    w->steps["approved"] = step_json(actor, now);
    w->updated_at = now;
    tx.exec(
        "UPDATE credit_work_orders SET state = 'approved', steps = ?, updated_at = ? WHERE id = "
        "? AND state = 'open'",
        {w->steps.dump(), to_epoch(now), id});
    catalog_.audit(tx, actor, "approve", "credit_work_order", id, {{"state", "open"}},
                   {{"state", "approved"}});
    deadlines_.complete(tx, actor, deadline_id(id));
    approved = 0;
    for (const auto& row : tx.query(std::string("SELECT ") + kCreditColumns +
                                        " FROM credits WHERE origin_id = ? AND state = "
                                        "'pending' ORDER BY id",
                                    {id})) {
      Credit c = read_credit(row);
      approve_in(tx, actor, c, now);
      ++approved;
    }
    out = std::move(*w);
  });
  log_.info("credit work order " + id + " approved by " + actor.id + ": " +
            std::to_string(approved) + " credits approved");
  return out;
}

std::vector<Credit> CreditBook::credits(const std::string& customer,
                                        const std::string& state) const {
  Params params;
  const std::string sql = std::string("SELECT ") + kCreditColumns + " FROM credits WHERE 1 = 1" +
                          where_equal({{"customer", customer}, {"state", state}}, params);
  std::vector<Credit> out;
  for (const auto& row : store_.query(sql + " ORDER BY month, service, customer, id", params)) {
    out.push_back(read_credit(row));
  }
  return out;
}

std::optional<Credit> CreditBook::credit(const std::string& id) const {
  auto rows =
      store_.query(std::string("SELECT ") + kCreditColumns + " FROM credits WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return read_credit(rows.front());
}

Credit CreditBook::require_credit(Tx& tx, const std::string& id) const {
  auto rows =
      tx.query(std::string("SELECT ") + kCreditColumns + " FROM credits WHERE id = ?", {id});
  if (rows.empty()) throw NotFound("no credit '" + id + "'");
  return read_credit(rows.front());
}

Credit CreditBook::approve_credit(const Actor& actor, const std::string& id) {
  const Instant now = clock_.now();
  Credit out;
  store_.transact([&](Tx& tx) {
    Credit c = require_credit(tx, id);
    if (c.origin == "work_order") {
      throw Conflict("credit " + id + " is approved with its work order " + c.origin_id);
    }
    if (c.state != "pending") {
      throw Conflict("cannot approve credit " + id + ": it is " + c.state +
                     ", and only a pending credit can be approved");
    }
    approve_in(tx, actor, c, now);
    out = std::move(c);
  });
  log_.info("credit " + id + " approved by " + actor.id);
  return out;
}

Credit CreditBook::withdraw_credit(const Actor& actor, const std::string& id,
                                   const std::string& reason) {
  const Instant now = clock_.now();
  Credit out;
  std::string raised;
  store_.transact([&](Tx& tx) {
    raised.clear();
    Credit c = require_credit(tx, id);
    if (c.origin == "work_order") {
      throw Conflict("credit " + id + " goes with its work order " + c.origin_id +
                     ": a newer revision of the report that no longer owes it withdraws it");
    }
    if (c.state != "pending") {
      throw Conflict("cannot withdraw credit " + id + ": it is " + c.state +
                     ", and only a pending credit can be withdrawn");
    }
    // The month's work order may have counted this credit as paid (already_credited): an
    // open one owes the customer that amount again; an approved one cannot change.
    std::optional<WorkOrder> w = find_order(tx, "WO:" + c.month + ":" + c.service);
    Json* entry = nullptr;
    if (w && w->state != "withdrawn") {
      for (auto& e : w->form.at("customers")) {
        const Json ids = e.value("already_credited", Json::array());
        if (e.at("customer") == c.customer && std::find(ids.begin(), ids.end(), id) != ids.end())
          entry = &e;
      }
    }
    if (entry && w->state == "approved") {
      throw Conflict("cannot withdraw credit " + id + ": credit work order " + w->id +
                     " was approved with it counted as credited already; approve the credit, "
                     "or settle the difference by a dispute of the work order's credit");
    }
    c.state = "withdrawn";
    c.steps["withdrawn"] = step_json(actor, now);
    c.steps["withdrawn"]["reason"] = reason;
    c.updated_at = now;
    tx.exec(
        "UPDATE credits SET state = 'withdrawn', steps = ?, updated_at = ? WHERE id = ? AND "
        "state = 'pending'",
        {c.steps.dump(), to_epoch(now), id});
    catalog_.audit(tx, actor, "withdraw", "credit", id,
                   {{"state", "pending"}, {"amount_cents", c.amount_cents}},
                   {{"state", "withdrawn"}, {"reason", reason}});
    if (entry) {
      Json ids = Json::array();
      for (const auto& other : entry->at("already_credited"))
        if (other != id) ids.push_back(other);
      const std::int64_t before = entry->at("already_credited_cents").get<std::int64_t>();
      if (ids.empty()) {
        entry->erase("already_credited");
        entry->erase("already_credited_cents");
      } else {
        (*entry)["already_credited"] = ids;
        (*entry)["already_credited_cents"] = before - c.amount_cents;
      }
      const std::string order_credit = w->id + ":" + c.customer;
      const auto was = tx.query(
          "SELECT amount_cents FROM credits WHERE id = ? AND state = "
          "'pending'",
          {order_credit});
      tx.exec("UPDATE credit_work_orders SET form = ?, updated_at = ? WHERE id = ?",
              {w->form.dump(), to_epoch(now), w->id});
      const std::int64_t cents = put_order_credit(tx, *w, *entry, now);
      if (cents > 0) {
        const Json after = {{"state", "pending"}, {"amount_cents", cents}, {"withdrawn", id}};
        if (was.empty())
          catalog_.audit(tx, actor, "create", "credit", order_credit, Json(), after);
        else
          catalog_.audit(tx, actor, "revise", "credit", order_credit,
                         {{"state", "pending"}, {"amount_cents", was[0].integer(0)}}, after);
        raised = "; " + order_credit + " is " + std::to_string(cents) + " cents now";
      }
    }
    out = std::move(c);
  });
  log_.info("credit " + id + " withdrawn by " + actor.id + raised);
  return out;
}

void CreditBook::add_credit(Tx& tx, const Actor& actor, const Credit& c) {
  tx.exec(std::string("INSERT INTO credits(") + kCreditColumns +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, '[]', ?, ?, ?, ?)",
          {c.id, c.customer, c.service, c.month, c.billing_code, c.amount_cents, c.original_cents,
           c.incidents.dump(), c.origin, c.origin_id, c.steps.dump(), to_epoch(c.created_at),
           to_epoch(c.updated_at), c.maintenance.dump()});
  catalog_.audit(tx, actor, "create", "credit", c.id, Json(),
                 {{"state", "pending"}, {"amount_cents", c.amount_cents}});
}

Credit CreditBook::adjust(Tx& tx, const Actor& actor, const std::string& id, std::int64_t cents,
                          const std::string& dispute) {
  Credit c = require_credit(tx, id);
  if (c.amount_cents == cents) return c;
  const Instant now = clock_.now();
  const std::int64_t before = c.amount_cents;
  c.adjustments.push_back({{"dispute", dispute},
                           {"before_cents", before},
                           {"after_cents", cents},
                           {"delta_cents", cents - before},
                           {"at", format_instant(now)},
                           {"by", actor.id}});
  c.amount_cents = cents;
  c.updated_at = now;
  tx.exec("UPDATE credits SET amount_cents = ?, adjustments = ?, updated_at = ? WHERE id = ?",
          {cents, c.adjustments.dump(), to_epoch(now), id});
  catalog_.audit(tx, actor, "adjust", "credit", id, {{"amount_cents", before}},
                 {{"amount_cents", cents}, {"dispute", dispute}});
  events_.publish(tx, "credit.adjusted", id,
                  {{"credit", id},
                   {"customer", c.customer},
                   {"billing_code", c.billing_code},
                   {"service", c.service},
                   {"month", c.month},
                   {"before_cents", before},
                   {"after_cents", cents},
                   {"delta_cents", cents - before},
                   {"dispute", dispute},
                   {"adjusted_at", format_instant(now)}});
  return c;
}

}  // namespace slmhub::workflows
