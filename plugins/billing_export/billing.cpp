#include "billing.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "atomic_dir.hpp"
#include "codec.hpp"
#include "csv.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"
#include "ubl.hpp"

namespace slmhub::billing {

struct Billing::Context {
  Dataset data;
  const date::time_zone* zone = nullptr;
  std::map<std::string, std::string> service_names;
  std::map<std::string, const date::time_zone*> service_zones;
  std::map<std::string, const Customer*> customers;
  // Customers deleted from the catalog, as they were then with their subscriptions ended at
  // the deletion: their last month and their unbilled items are still invoiced.
  std::map<std::string, Customer> former;
  std::vector<RateCard> cards;
  Date today;

  // The customer invoiced under `id`: the catalog's, else the former customer's.
  const Customer* invoiced(const std::string& id) const {
    if (const auto it = customers.find(id); it != customers.end()) return it->second;
    const auto it = former.find(id);
    return it == former.end() ? nullptr : &it->second;
  }
};

namespace {

using date::days;
using date::months;

std::string fiscal_label(int year) { return "FY" + std::to_string(year); }

std::string numbered(const std::string& prefix, std::int64_t n) {
  std::string digits = std::to_string(n);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  return prefix + "-" + digits;
}

// The next number of a gapless sequence, in the caller's transaction: a rollback gives it back.
std::int64_t next_in_sequence(Tx& tx, const std::string& name) {
  auto rows = tx.query(
      "INSERT INTO billing_sequences(name, last) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET "
      "last = billing_sequences.last + 1 RETURNING last",
      {name});
  return rows.at(0).integer(0);
}

// Rows written `head` + `row`, `row`, ... + `tail`, 100 rows to a statement: a month of
// invoices in a few thousand statements rather than a hundred thousand.
class RowBatch {
 public:
  RowBatch(Tx& tx, std::string head, std::string row, std::string tail)
      : tx_(tx), head_(std::move(head)), row_(std::move(row)), tail_(std::move(tail)) {}
  void add(Params row) {
    params_.insert(params_.end(), std::make_move_iterator(row.begin()),
                   std::make_move_iterator(row.end()));
    if (++rows_ == kRows) flush();
  }
  void flush() {
    if (rows_ == 0) return;
    std::string sql = head_;
    for (std::size_t i = 0; i < rows_; ++i) sql += (i ? ", " : "") + row_;
    // Every row names a row that the transaction has just read as unbilled (or is new): a
    // different count is a bug, and billing on would bill something twice or not at all.
    if (const std::int64_t n = tx_.exec(sql + tail_, params_);
        n != static_cast<std::int64_t>(rows_))
      throw std::logic_error("billing: " + std::to_string(n) + " rows changed of " +
                             std::to_string(rows_) + " by " + head_.substr(0, head_.find('(')));
    params_.clear();
    rows_ = 0;
  }

 private:
  static constexpr std::size_t kRows = 100;
  Tx& tx_;
  std::string head_, row_, tail_;
  Params params_;
  std::size_t rows_ = 0;
};

// The next id of the sequence that no row has (an import may have brought its own "TE-…" ids).
std::string free_id(Tx& tx, const std::string& prefix, const std::string& table) {
  for (;;) {
    std::string id = numbered(prefix, next_in_sequence(tx, prefix));
    if (tx.query("SELECT 1 FROM " + table + " WHERE id = ?", {id}).empty()) return id;
  }
}

Date last_day_of(date::year_month m) {
  return date::year_month_day_last(m.year(), date::month_day_last(m.month()));
}

std::string billing_email(const Customer& c) {
  for (const auto& contact : c.contacts) {
    if (contact.role == ContactRole::billing) return contact.email;
  }
  return "";
}

std::vector<std::string> billing_emails(const Customer& c) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (const auto& contact : c.contacts) {
    if (contact.role == ContactRole::billing && seen.insert(contact.email).second)
      out.push_back(contact.email);
  }
  return out;
}

files::Party party_of(const Json& j) {
  return {j.at("id").get<std::string>(), j.at("name").get<std::string>(),
          j.value("email", std::string())};
}

std::string text_or_empty(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? std::string() : it->get<std::string>();
}

const char* const kTimeColumns =
    "id, customer, day, minutes, description, ticket, kind, invoice, included_minutes";
TimeEntry read_time_entry(const Row& r) {
  TimeEntry e;
  e.id = r.text(0);
  e.customer = r.text(1);
  e.date = parse_date(r.text(2));
  e.minutes = r.integer(3);
  e.description = r.text(4);
  e.ticket = r.text(5);
  e.kind = parse_work_kind(r.text(6)).value_or(WorkKind::included_support);
  return e;
}

const char* const kOncallColumns =
    "id, customer, first_day, last_day, requested_on, reason, state, invoice";
OncallRequest read_oncall(const Row& r) {
  OncallRequest o;
  o.id = r.text(0);
  o.customer = r.text(1);
  o.first_day = parse_date(r.text(2));
  o.last_day = parse_date(r.text(3));
  o.requested_on = parse_date(r.text(4));
  o.reason = r.text(5);
  o.state = r.text(6);
  return o;
}

const char* const kCreditColumns =
    "id, kind, credit, customer, service, report_month, incidents, dispute, amount_cents, at, "
    "month, invoice, maintenance";
CreditItem read_credit(const Row& r) {
  CreditItem c;
  c.id = r.text(0);
  c.kind = r.text(1);
  c.credit = r.text(2);
  c.customer = r.text(3);
  c.service = r.text(4);
  c.report_month = r.text(5);
  c.incidents = Json::parse(r.text(6)).get<std::vector<std::string>>();
  c.dispute = r.text(7);
  c.amount_cents = r.integer(8);
  c.at = from_epoch(r.integer(9));
  c.maintenance = Json::parse(r.text(12)).get<std::vector<std::string>>();
  return c;
}

std::string money(std::int64_t cents) { return files::format_money(cents); }

// "1234 ms" since `since`, for the log lines of long runs.
std::string elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - since)
                            .count()) +
         " ms";
}

// Which of `keys` differ between two records of one kind, as "customer, minutes".
std::string differing_fields(const Json& stored, const Json& imported,
                             std::initializer_list<const char*> keys) {
  std::string out;
  for (const char* key : keys) {
    if (stored.value(key, Json()) != imported.value(key, Json()))
      out += (out.empty() ? "" : ", ") + std::string(key);
  }
  return out;
}

// Well-formed input that breaks a rule (an unknown customer, on-call asked too late, a date no
// rate card covers): 422 with the field errors, as the workflows answer.
// A problem whose detail lists every field error after `what`.
Problem field_problem(int status, std::string title, const std::string& what,
                      std::vector<FieldError> errors) {
  std::string detail = what + ": ";
  for (std::size_t i = 0; i < errors.size(); ++i)
    detail += (i ? "; " : "") + errors[i].path + ": " + errors[i].message;
  return Problem(status, std::move(title), detail, std::move(errors));
}

void throw_if_rules_broken(std::vector<FieldError> errors, const std::string& what) {
  if (!errors.empty()) throw field_problem(422, "Unprocessable Content", what, std::move(errors));
}

// The estimate as an e-mail to the customer's billing contacts.
std::string estimate_text(const Json& e, const std::string& customer_name, std::int64_t revision) {
  std::string out = (revision > 1 ? "Revised cost estimate" : "Cost estimate") +
                    std::string(" for fiscal year ") +
                    std::to_string(e.at("fiscal_year").get<int>()) + " (" +
                    e.at("period").at("start").get<std::string>() + " to " +
                    e.at("period").at("end").get<std::string>() + ")\n";
  out += "Customer: " + customer_name + " (" + e.at("billing_code").get<std::string>() + ")\n\n";
  out += "Subscriptions\n";
  for (const auto& s : e.at("subscriptions")) {
    out += "  " + s.at("name").get<std::string>() + ": " +
           std::to_string(s.at("months").get<int>()) + " months at " +
           money(s.at("monthly_charge_cents")) + " = " + money(s.at("amount_cents")) + "\n";
  }
  const Json& t = e.at("time");
  out += "\nTime and materials, from the work of " + t.at("window").at("start").get<std::string>() +
         " to " + t.at("window").at("end").get<std::string>() + ": " +
         std::to_string(t.at("rounded_minutes").get<std::int64_t>()) + " minutes, " +
         std::to_string(t.at("included_minutes").get<std::int64_t>()) + " included, " +
         std::to_string(t.at("billed_minutes").get<std::int64_t>()) + " billed at " +
         money(t.at("hourly_rate_cents")) + " per hour = " + money(t.at("amount_cents")) + "\n";
  const Json& o = e.at("oncall");
  out += "On-call: " + std::to_string(o.at("weeks").get<std::int64_t>()) + " weeks at " +
         money(o.at("week_cents")) + " = " + money(o.at("amount_cents")) + "\n\n";
  out += "Estimated total: " + money(e.at("total_cents")) + "\n";
  out += "The same at the current year's prices: " + money(e.at("current_year_cents")) + "\n";
  const std::int64_t change = e.at("change_cents");
  out += "Change: " + std::string(change > 0 ? "+" : "") + money(change);
  if (!e.at("change_basis_points").is_null()) {
    const std::int64_t bp = e.at("change_basis_points");
    out += " (" + std::string(bp > 0 ? "+" : "") + files::format_quantity(bp * 10) + " %)";
  }
  if (e.at("significant").get<bool>()) out += ", a significant change";
  out += "\n";
  return out;
}

std::vector<std::string> read_formats(const std::vector<std::string>& formats) {
  std::vector<std::string> out;
  for (const auto& f : formats) {
    if (f != "csv" && f != "ubl")
      throw ValidationError("$.formats", "unknown format '" + f + "': csv or ubl");
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  if (out.empty()) throw ValidationError("$.formats", "name at least one format: csv, ubl");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Billing::Billing(Store& store, Catalog& catalog, Events& events, Outbox& outbox, const Clock& clock,
                 Logger& log, Settings settings)
    : store_(store),
      catalog_(catalog),
      events_(events),
      outbox_(outbox),
      clock_(clock),
      log_(log),
      settings_(std::move(settings)) {}

std::vector<Migration> Billing::migrations() {
  return {{1, "rate cards, time entries, on-call, credits, invoices, sequences, exports, estimates",
           "CREATE TABLE billing_rate_cards (id TEXT PRIMARY KEY, valid_from TEXT NOT NULL "
           "UNIQUE, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
           "CREATE TABLE billing_time_entries (id TEXT PRIMARY KEY, customer TEXT NOT NULL, day "
           "TEXT NOT NULL, minutes BIGINT NOT NULL, description TEXT NOT NULL, ticket TEXT NOT "
           "NULL, kind TEXT NOT NULL, invoice TEXT, included_minutes BIGINT, fiscal_year BIGINT, "
           "created_at BIGINT NOT NULL, created_by TEXT NOT NULL);"
           "CREATE INDEX billing_time_entries_open ON billing_time_entries(invoice, day);"
           "CREATE TABLE billing_oncall (id TEXT PRIMARY KEY, customer TEXT NOT NULL, first_day "
           "TEXT NOT NULL, last_day TEXT NOT NULL, requested_on TEXT NOT NULL, reason TEXT NOT "
           "NULL, state TEXT NOT NULL, invoice TEXT, created_at BIGINT NOT NULL, created_by TEXT "
           "NOT NULL);"
           "CREATE TABLE billing_credits (id TEXT PRIMARY KEY, kind TEXT NOT NULL, credit TEXT "
           "NOT NULL, customer TEXT NOT NULL, service TEXT NOT NULL, report_month TEXT NOT NULL, "
           "incidents TEXT NOT NULL, dispute TEXT NOT NULL, amount_cents BIGINT NOT NULL, at "
           "BIGINT NOT NULL, month TEXT NOT NULL, invoice TEXT);"
           "CREATE TABLE billing_documents (id TEXT PRIMARY KEY, kind TEXT NOT NULL, month TEXT "
           "NOT NULL, customer TEXT NOT NULL, state TEXT NOT NULL, number TEXT UNIQUE, "
           "fiscal_year BIGINT NOT NULL, total_cents BIGINT NOT NULL, carry_out_cents BIGINT NOT "
           "NULL, refers_to TEXT, body TEXT NOT NULL, updated_at BIGINT NOT NULL);"
           "CREATE INDEX billing_documents_month ON billing_documents(month, state);"
           "CREATE INDEX billing_documents_customer ON billing_documents(customer, month);"
           "CREATE TABLE billing_months (month TEXT PRIMARY KEY, finalised_at BIGINT NOT NULL, "
           "finalised_by TEXT NOT NULL, invoices BIGINT NOT NULL, total_cents BIGINT NOT NULL);"
           "CREATE TABLE billing_sequences (name TEXT PRIMARY KEY, last BIGINT NOT NULL);"
           "CREATE TABLE billing_exports (id {{serial}}, month TEXT NOT NULL, formats TEXT NOT "
           "NULL, directory TEXT NOT NULL, files TEXT NOT NULL, manifest_sha256 TEXT NOT NULL, "
           "documents BIGINT NOT NULL, total_cents BIGINT NOT NULL, written BIGINT NOT NULL, "
           "started_at BIGINT NOT NULL, finished_at BIGINT NOT NULL, actor TEXT NOT NULL);"
           "CREATE TABLE billing_estimates (customer TEXT NOT NULL, fiscal_year BIGINT NOT NULL, "
           "revision BIGINT NOT NULL, body TEXT NOT NULL, recipients TEXT NOT NULL, issued_at "
           "BIGINT NOT NULL, PRIMARY KEY (customer, fiscal_year, revision))"},
          // DOMAIN.md §4: a credit names the maintenance windows of its downtime too. Credits
          // billed before this column name none.
          {2, "the maintenance windows of each credit",
           "ALTER TABLE billing_credits ADD COLUMN maintenance TEXT NOT NULL DEFAULT '[]'"},
          {3, "customers deleted from the catalog, for their last invoice",
           "CREATE TABLE billing_former_customers (id TEXT PRIMARY KEY, body TEXT NOT NULL, "
           "deleted_at BIGINT NOT NULL)"}};
}

Billing::Context Billing::context() const {
  Context ctx;
  ctx.data = catalog_.snapshot();
  ctx.zone = catalog_.provider_calendar().zone();
  for (const auto& s : ctx.data.services) {
    ctx.service_names[s.id] = s.name;
    ctx.service_zones[s.id] = find_zone(zone_of(ctx.data, s));
  }
  for (const auto& c : ctx.data.customers) ctx.customers[c.id] = &c;
  for (const auto& r : store_.query("SELECT id, body FROM billing_former_customers")) {
    if (ctx.customers.count(r.text(0))) continue;  // a customer again: the catalog's counts
    ctx.former.emplace(r.text(0), parse_customer(Json::parse(r.text(1))));
  }
  ctx.cards = rate_cards();
  ctx.today = local_date(clock_.now(), ctx.zone);
  return ctx;
}

date::year_month Billing::previous_month(Instant now) const {
  const Date today = local_date(now, catalog_.provider_calendar().zone());
  return today.year() / today.month() - months(1);
}

// ---- credits from the workflows ----

void Billing::subscribe() {
  // Both subscribers start at the oldest event kept: billing enabled after the workflows (or
  // after customers were deleted) still bills what was approved (or deleted) before, as far
  // back as events are kept (events.keep_days). Both handlers are idempotent.
  //
  // A customer deleted from the catalog still gets the invoice of its last month (DOMAIN.md
  // §9: the month a subscription ends in counts in full) and of whatever it has not been
  // billed yet. Its subscriptions end at the deletion: nothing is billed after it.
  events_.subscribe(
      "billing_export.former-customers", {"customer.deleted"},
      [this](const Event& e) {
        Customer former = parse_customer(e.payload);
        std::vector<Subscription> ended;
        for (Subscription s : former.subscriptions) {
          if (s.start && *s.start >= e.at) continue;  // never began
          if (!s.end || *s.end > e.at) s.end = e.at;
          ended.push_back(std::move(s));
        }
        former.subscriptions = std::move(ended);
        // On-call booked for after the deletion is support nobody will be given, unless the
        // customer is back in the catalog (created again since, or this is history replayed).
        const bool back = catalog_.customer(former.id).has_value();
        const std::string deleted_on =
            format_date(local_date(e.at, catalog_.provider_calendar().zone()));
        std::size_t cancelled = 0;
        store_.transact([&](Tx& tx) {
          tx.exec(
              "INSERT INTO billing_former_customers(id, body, deleted_at) VALUES (?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET body = excluded.body, deleted_at = "
              "excluded.deleted_at",
              {former.id, to_json(former).dump(), to_epoch(e.at)});
          if (back) return;
          const auto ahead = tx.query(
              "SELECT id FROM billing_oncall WHERE customer = ? AND state = 'scheduled' "
              "AND invoice IS NULL AND first_day > ?",
              {former.id, deleted_on});
          cancelled = ahead.size();
          for (const auto& r : ahead) {
            tx.exec("UPDATE billing_oncall SET state = 'cancelled' WHERE id = ?", {r.text(0)});
            catalog_.audit(tx, Actor{"system:billing_export"}, "cancel", "oncall_request",
                           r.text(0), {{"state", "scheduled"}},
                           {{"state", "cancelled"}, {"reason", "customer deleted"}});
          }
        });
        log_.info("customer '" + former.id + "' was deleted from the catalog: its last month (" +
                  format_instant(e.at) + ") and its unbilled items will still be invoiced" +
                  (cancelled ? "; " + std::to_string(cancelled) +
                                   " on-call request(s) after the deletion cancelled"
                             : ""));
      },
      StartAt::oldest);
  events_.subscribe(
      "billing_export.credits", {"credit.approved", "credit.adjusted"},
      [this](const Event& e) {
        const Json& p = e.payload;
        const bool approved = e.type == "credit.approved";
        const std::string credit = p.at("credit").get<std::string>();
        const Instant at =
            parse_instant(p.at(approved ? "approved_at" : "adjusted_at").get<std::string>());
        const Date day = local_date(at, catalog_.provider_calendar().zone());
        const std::string month = format_month(day.year() / day.month());
        store_.transact([&](Tx& tx) {
          Json incidents = p.value("incidents", Json::array());
          Json maintenance = p.value("maintenance_downtime", Json::array());
          if (!approved) {
            auto original = tx.query(
                "SELECT incidents, maintenance FROM billing_credits WHERE id = ?", {credit});
            // Adjusted before billing heard of its approval: the approval that follows carries
            // the new amount.
            if (original.empty()) {
              log_.warning("credit.adjusted for credit '" + credit +
                           "' ignored: billing has no approval of it (the approval, when it "
                           "comes, carries the adjusted amount)");
              return;
            }
            incidents = Json::parse(original[0].text(0));
            maintenance = Json::parse(original[0].text(1));
          }
          const std::string id = approved ? credit : credit + "#" + std::to_string(e.id);
          tx.exec(
              std::string("INSERT INTO billing_credits(") + kCreditColumns +
                  ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) "
                  "ON CONFLICT(id) DO NOTHING",
              {id, approved ? "credit" : "adjustment", credit, p.at("customer").get<std::string>(),
               p.at("service").get<std::string>(), p.at("month").get<std::string>(),
               incidents.dump(), p.value("dispute", std::string()),
               p.at(approved ? "amount_cents" : "delta_cents").get<std::int64_t>(), to_epoch(at),
               month, maintenance.dump()});
        });
      },
      StartAt::oldest);
}

Json Billing::credits_json(const std::string& customer) const {
  Params params;
  std::string sql = std::string("SELECT ") + kCreditColumns + " FROM billing_credits";
  if (!customer.empty()) {
    sql += " WHERE customer = ?";
    params.push_back(customer);
  }
  Json out = Json::array();
  for (const auto& r : store_.query(sql + " ORDER BY at, id", params)) {
    const CreditItem c = read_credit(r);
    out.push_back({{"id", c.id},
                   {"kind", c.kind},
                   {"credit", c.credit},
                   {"customer", c.customer},
                   {"service", c.service},
                   {"report_month", c.report_month},
                   {"incidents", c.incidents},
                   {"maintenance", c.maintenance},
                   {"dispute", c.dispute},
                   {"amount_cents", c.amount_cents},
                   {"at", format_instant(c.at)},
                   {"billing_month", r.text(10)},
                   {"invoice", r.is_null(11) ? Json() : Json(r.text(11))}});
  }
  return out;
}

// ---- inputs ----

std::vector<RateCard> Billing::rate_cards() const {
  std::vector<RateCard> out;
  for (const auto& r : store_.query("SELECT body FROM billing_rate_cards ORDER BY valid_from")) {
    std::vector<FieldError> errors;
    out.push_back(rate_card_from_json(Json::parse(r.text(0)), "$", errors));
  }
  return out;
}

Json Billing::rate_cards_json() const {
  Json out = Json::array();
  for (const auto& card : rate_cards()) out.push_back(to_json(card));
  return out;
}

Json Billing::put_rate_card(const Actor& actor, const Json& body, const std::string& id_from_path) {
  std::vector<FieldError> errors;
  RateCard card = rate_card_from_json(body, "$", errors);
  if (!id_from_path.empty() && card.id != id_from_path && errors.empty())
    errors.push_back({"$.id", "is '" + card.id + "' but the path names '" + id_from_path + "'"});
  throw_if_errors(std::move(errors));
  store_.transact([&](Tx& tx) {
    auto clash = tx.query("SELECT id FROM billing_rate_cards WHERE valid_from = ? AND id <> ?",
                          {format_date(card.valid_from), card.id});
    if (!clash.empty()) {
      throw ValidationError(
          "$.valid_from",
          "rate card '" + clash[0].text(0) + "' already starts on " + format_date(card.valid_from));
    }
    auto before = tx.query("SELECT body FROM billing_rate_cards WHERE id = ?", {card.id});
    tx.exec(
        "INSERT INTO billing_rate_cards(id, valid_from, body, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET valid_from = excluded.valid_from, body = excluded.body, "
        "updated_at = excluded.updated_at",
        {card.id, format_date(card.valid_from), to_json(card).dump(), to_epoch(clock_.now())});
    catalog_.audit(tx, actor, before.empty() ? "create" : "update", "rate_card", card.id,
                   before.empty() ? Json() : Json::parse(before[0].text(0)), to_json(card));
  });
  recheck_estimates("rate card " + card.id);
  return to_json(card);
}

Json Billing::add_time_entry(const Actor& actor, const Json& body) {
  std::vector<FieldError> errors;
  TimeEntry e = time_entry_from_json(body, "$", errors);
  throw_if_errors(std::move(errors));
  const Context ctx = context();
  if (!ctx.customers.count(e.customer))
    errors.push_back({"$.customer", "no customer '" + e.customer + "'"});
  if (e.date > ctx.today)
    errors.push_back({"$.date", "is in the future (today is " + format_date(ctx.today) + ")"});
  if (!rate_card_on(ctx.cards, e.date))
    errors.push_back({"$.date", "no rate card is in force on " + format_date(e.date)});
  throw_if_rules_broken(std::move(errors), "the time entry cannot be recorded");
  const std::string given_id = e.id;
  store_.transact([&](Tx& tx) {  // may run again: the generated id is drawn again too
    e.id = given_id.empty() ? free_id(tx, "TE", "billing_time_entries") : given_id;
    const std::int64_t n = tx.exec(
        "INSERT INTO billing_time_entries(id, customer, day, minutes, description, ticket, kind, "
        "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
        {e.id, e.customer, format_date(e.date), e.minutes, e.description, e.ticket,
         to_string(e.kind), to_epoch(clock_.now()), actor.id});
    if (n == 0) throw Conflict("time entry '" + e.id + "' already exists");
    catalog_.audit(tx, actor, "create", "time_entry", e.id, Json(), to_json(e));
  });
  return to_json(e);
}

void Billing::delete_time_entry(const Actor& actor, const std::string& id) {
  store_.transact([&](Tx& tx) {
    auto rows = tx.query(
        std::string("SELECT ") + kTimeColumns + " FROM billing_time_entries WHERE id = ?", {id});
    if (rows.empty()) throw NotFound("no time entry '" + id + "'");
    if (!rows[0].is_null(7))
      throw Conflict("time entry '" + id + "' is billed on " + rows[0].text(7) +
                     ": correct it with a credit note");
    tx.exec("DELETE FROM billing_time_entries WHERE id = ?", {id});
    catalog_.audit(tx, actor, "delete", "time_entry", id, to_json(read_time_entry(rows[0])),
                   Json());
  });
}

Json Billing::time_entries_json(const std::string& customer, const std::string& month) const {
  std::string sql =
      std::string("SELECT ") + kTimeColumns + " FROM billing_time_entries WHERE 1 = 1";
  Params params;
  if (!customer.empty()) {
    sql += " AND customer = ?";
    params.push_back(customer);
  }
  if (!month.empty()) {
    const auto m = parse_month(month);
    sql += " AND day >= ? AND day <= ?";
    params.push_back(format_date(m / 1));
    params.push_back(format_date(last_day_of(m)));
  }
  Json out = Json::array();
  for (const auto& r : store_.query(sql + " ORDER BY day, id", params)) {
    Json j = to_json(read_time_entry(r));
    j["invoice"] = r.is_null(7) ? Json() : Json(r.text(7));
    j["included_minutes"] = r.is_null(8) ? Json() : Json(r.integer(8));
    out.push_back(std::move(j));
  }
  return out;
}

Json Billing::add_oncall_request(const Actor& actor, const Json& body) {
  std::vector<FieldError> errors;
  if (body.is_object() && body.contains("requested_on"))
    errors.push_back({"$.requested_on",
                      "is the day the request reaches the server; only an import of past "
                      "requests may name it"});
  OncallRequest o = oncall_request_from_json(body, "$", errors);
  throw_if_errors(std::move(errors));
  const Context ctx = context();
  o.requested_on = ctx.today;
  if (!ctx.customers.count(o.customer))
    errors.push_back({"$.customer", "no customer '" + o.customer + "'"});
  if (auto broken = oncall_rule_broken(o)) errors.push_back({"$." + broken->path, broken->message});
  if (!rate_card_on(ctx.cards, o.first_day))
    errors.push_back({"$.first_day", "no rate card is in force on " + format_date(o.first_day)});
  throw_if_rules_broken(std::move(errors), "the on-call request is refused");
  const std::string given_id = o.id;
  store_.transact([&](Tx& tx) {  // may run again: the generated id is drawn again too
    o.id = given_id.empty() ? free_id(tx, "OC", "billing_oncall") : given_id;
    const std::int64_t n = tx.exec(
        "INSERT INTO billing_oncall(id, customer, first_day, last_day, requested_on, reason, "
        "state, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, 'scheduled', ?, ?) "
        "ON CONFLICT(id) DO NOTHING",
        {o.id, o.customer, format_date(o.first_day), format_date(o.last_day),
         format_date(o.requested_on), o.reason, to_epoch(clock_.now()), actor.id});
    if (n == 0) throw Conflict("on-call request '" + o.id + "' already exists");
    catalog_.audit(tx, actor, "create", "oncall_request", o.id, Json(), to_json(o));
  });
  return to_json(o);
}

Json Billing::cancel_oncall_request(const Actor& actor, const std::string& id) {
  OncallRequest o;
  const Date today = context().today;
  store_.transact([&](Tx& tx) {
    auto rows = tx.query(
        std::string("SELECT ") + kOncallColumns + " FROM billing_oncall WHERE id = ?", {id});
    if (rows.empty()) throw NotFound("no on-call request '" + id + "'");
    o = read_oncall(rows[0]);
    if (o.state == "cancelled") return;
    if (!rows[0].is_null(7))
      throw Conflict("on-call request '" + id + "' is billed on " + rows[0].text(7));
    if (o.first_day <= today)
      throw Conflict("on-call request '" + id + "' started on " + format_date(o.first_day) +
                     ": a started on-call period is billed");
    tx.exec("UPDATE billing_oncall SET state = 'cancelled' WHERE id = ?", {id});
    catalog_.audit(tx, actor, "cancel", "oncall_request", id, {{"state", o.state}},
                   {{"state", "cancelled"}});
    o.state = "cancelled";
  });
  return to_json(o);
}

Json Billing::oncall_requests_json(const std::string& customer) const {
  std::string sql = std::string("SELECT ") + kOncallColumns + " FROM billing_oncall";
  Params params;
  if (!customer.empty()) {
    sql += " WHERE customer = ?";
    params.push_back(customer);
  }
  Json out = Json::array();
  for (const auto& r : store_.query(sql + " ORDER BY first_day, id", params)) {
    Json j = to_json(read_oncall(r));
    j["invoice"] = r.is_null(7) ? Json() : Json(r.text(7));
    out.push_back(std::move(j));
  }
  return out;
}

Json Billing::import(const Actor& actor, const Json& body) {
  std::vector<FieldError> errors;
  ObjectReader r(body, "$", errors);
  auto cards = r.optional_array("rate_cards", rate_card_from_json);
  auto entries = r.optional_array("time_entries", time_entry_from_json);
  auto requests = r.optional_array("oncall_requests", oncall_request_from_json);
  r.finish();
  throw_if_errors(std::move(errors));

  // Checked against the cards being imported as well as the stored ones.
  const Context ctx = context();
  std::vector<RateCard> all = ctx.cards;
  for (const auto& c : cards) {
    std::erase_if(all, [&](const RateCard& x) { return x.id == c.id; });
    all.push_back(c);
  }
  std::sort(all.begin(), all.end(),
            [](const RateCard& a, const RateCard& b) { return a.valid_from < b.valid_from; });
  for (std::size_t i = 0; i < cards.size(); ++i) {
    for (const auto& other : all) {
      if (other.id != cards[i].id && other.valid_from == cards[i].valid_from)
        errors.push_back(
            {"$.rate_cards[" + std::to_string(i) + "].valid_from",
             "rate card '" + other.id + "' also starts on " + format_date(other.valid_from)});
    }
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < cards.size(); ++i) {
    if (!ids.insert("RC:" + cards[i].id).second)
      errors.push_back(
          {"$.rate_cards[" + std::to_string(i) + "].id", "'" + cards[i].id + "' appears twice"});
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string at = "$.time_entries[" + std::to_string(i) + "]";
    const TimeEntry& e = entries[i];
    if (e.id.empty())
      errors.push_back({at + ".id", "is required in an import (it makes a re-import harmless)"});
    else if (!ids.insert("TE:" + e.id).second)
      errors.push_back({at + ".id", "'" + e.id + "' appears twice"});
    if (!ctx.customers.count(e.customer))
      errors.push_back({at + ".customer", "no customer '" + e.customer + "'"});
    if (e.date > ctx.today)
      errors.push_back(
          {at + ".date", "is in the future (today is " + format_date(ctx.today) + ")"});
    if (!rate_card_on(all, e.date))
      errors.push_back({at + ".date", "no rate card is in force on " + format_date(e.date)});
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::string at = "$.oncall_requests[" + std::to_string(i) + "]";
    OncallRequest& o = requests[i];
    if (o.id.empty())
      errors.push_back({at + ".id", "is required in an import (it makes a re-import harmless)"});
    else if (!ids.insert("OC:" + o.id).second)
      errors.push_back({at + ".id", "'" + o.id + "' appears twice"});
    if (!body.at("oncall_requests")[i].contains("requested_on"))
      errors.push_back({at + ".requested_on", "is required in an import"});
    if (!ctx.customers.count(o.customer))
      errors.push_back({at + ".customer", "no customer '" + o.customer + "'"});
    if (o.requested_on > ctx.today)
      errors.push_back(
          {at + ".requested_on", "is in the future (today is " + format_date(ctx.today) + ")"});
    if (auto broken = oncall_rule_broken(o))
      errors.push_back({at + "." + broken->path, broken->message});
    if (!rate_card_on(all, o.first_day))
      errors.push_back(
          {at + ".first_day", "no rate card is in force on " + format_date(o.first_day)});
  }
  throw_if_rules_broken(std::move(errors), "nothing was imported");

  std::int64_t added_entries = 0, added_requests = 0;
  store_.transact([&](Tx& tx) {
    added_entries = added_requests = 0;  // counted again when the transaction runs again
    const std::int64_t now = to_epoch(clock_.now());
    // Replaced as a set: two cards may swap their start dates in one import, which row by row
    // would clash on the unique start date half-way.
    for (const auto& c : cards) tx.exec("DELETE FROM billing_rate_cards WHERE id = ?", {c.id});
    for (const auto& c : cards) {
      tx.exec(
          "INSERT INTO billing_rate_cards(id, valid_from, body, updated_at) VALUES (?, ?, ?, ?)",
          {c.id, format_date(c.valid_from), to_json(c).dump(), now});
    }
    // An id already stored is a repeat only when it holds what the import says; anything else
    // (an entry the API numbered TE-000001 before an import brought its own TE-000001, an
    // import edited since it first ran) would be counted "unchanged" while nothing of it is
    // stored or billed, so the whole import is refused naming each such id.
    std::vector<FieldError> clashes;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const TimeEntry& e = entries[i];
      if (tx.exec("INSERT INTO billing_time_entries(id, customer, day, minutes, description, "
                  "ticket, kind, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT(id) DO NOTHING",
                  {e.id, e.customer, format_date(e.date), e.minutes, e.description, e.ticket,
                   to_string(e.kind), now, actor.id}) == 1) {
        ++added_entries;
        continue;
      }
      const auto rows = tx.query(
          std::string("SELECT ") + kTimeColumns + " FROM billing_time_entries WHERE id = ?",
          {e.id});
      if (const auto differ =
              differing_fields(to_json(read_time_entry(rows.at(0))), to_json(e),
                               {"customer", "date", "minutes", "description", "ticket", "kind"});
          !differ.empty()) {
        clashes.push_back({"$.time_entries[" + std::to_string(i) + "].id",
                           "time entry '" + e.id + "' is already stored with other values (" +
                               differ + "); an import may repeat an entry, not change it"});
      }
    }
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const OncallRequest& o = requests[i];
      if (tx.exec("INSERT INTO billing_oncall(id, customer, first_day, last_day, requested_on, "
                  "reason, state, created_at, created_by) "
                  "VALUES (?, ?, ?, ?, ?, ?, 'scheduled', ?, ?) ON CONFLICT(id) DO NOTHING",
                  {o.id, o.customer, format_date(o.first_day), format_date(o.last_day),
                   format_date(o.requested_on), o.reason, now, actor.id}) == 1) {
        ++added_requests;
        continue;
      }
      const auto rows = tx.query(
          std::string("SELECT ") + kOncallColumns + " FROM billing_oncall WHERE id = ?", {o.id});
      // The import brings no state: a request cancelled since is still the same request.
      if (const auto differ =
              differing_fields(to_json(read_oncall(rows.at(0))), to_json(o),
                               {"customer", "first_day", "last_day", "requested_on", "reason"});
          !differ.empty()) {
        clashes.push_back({"$.oncall_requests[" + std::to_string(i) + "].id",
                           "on-call request '" + o.id + "' is already stored with other values (" +
                               differ + "); an import may repeat a request, not change it"});
      }
    }
    if (!clashes.empty())
      throw field_problem(409, "Conflict", "nothing was imported", std::move(clashes));
    catalog_.audit(tx, actor, "import", "billing", "import", Json(),
                   {{"rate_cards", cards.size()},
                    {"time_entries", added_entries},
                    {"oncall_requests", added_requests}});
  });
  if (!cards.empty()) recheck_estimates("imported rate cards");
  return {
      {"rate_cards", cards.size()},
      {"time_entries", {{"added", added_entries}, {"unchanged", entries.size() - added_entries}}},
      {"oncall_requests",
       {{"added", added_requests}, {"unchanged", requests.size() - added_requests}}}};
}

// ---- the invoice run ----

namespace {

void put_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
}

void put_key(std::string& out, std::string_view key) {
  if (out.back() != '{') out += ',';
  put_string(out, key);
  out += ':';
}

void put(std::string& out, std::string_view key, std::string_view value) {
  put_key(out, key);
  put_string(out, value);
}

void put(std::string& out, std::string_view key, std::int64_t value) {
  put_key(out, key);
  out += std::to_string(value);
}

// "" as null: the dates a draft does not have yet, a line without a period.
void put_or_null(std::string& out, std::string_view key, std::string_view value) {
  put_key(out, key);
  if (value.empty())
    out += "null";
  else
    put_string(out, value);
}

void put_party(std::string& out, std::string_view key, const files::Party& p,
               const std::string& customer) {
  put_key(out, key);
  out += '{';
  put(out, "id", p.id);
  if (!customer.empty()) put(out, "customer", customer);
  put(out, "name", p.name);
  put(out, "email", p.email);
  out += '}';
}

// The stored invoice: the document's fields (what to_document() reads back), each line's
// sources and the totals. Written directly rather than through a Json tree: a month of ten
// thousand invoices built as trees spends seconds in allocation.
std::string invoice_body(const files::Document& d, const Invoice& inv, const std::string& customer,
                         const std::string& month, int fiscal_year, const std::string& computed_at,
                         const std::string& finalised_by, bool final) {
  std::string out = "{";
  put(out, "id", month + ":" + customer);
  put(out, "kind", "invoice");
  put(out, "state", final ? "final" : "draft");
  put(out, "month", month);
  put(out, "fiscal_year", fiscal_year);
  put(out, "currency", d.currency);
  put_party(out, "supplier", d.supplier, "");
  put_party(out, "customer", d.customer, customer);
  put_key(out, "period");
  out += '{';
  put(out, "start", d.period_start);
  put(out, "end", d.period_end);
  out += '}';
  put_key(out, "lines");
  out += '[';
  for (std::size_t i = 0; i < d.lines.size(); ++i) {
    const files::DocumentLine& l = d.lines[i];
    if (i) out += ',';
    out += '{';
    put(out, "id", l.id);
    put(out, "kind", l.kind);
    put(out, "description", l.description);
    put(out, "quantity", files::format_quantity(l.quantity_milli));
    put(out, "quantity_milli", l.quantity_milli);
    put(out, "unit_code", l.unit_code);
    put(out, "unit_price_cents", l.unit_price_cents);
    put(out, "amount_cents", l.amount_cents);
    put(out, "reference", l.reference);
    put_or_null(out, "period_start", l.period_start);
    put_or_null(out, "period_end", l.period_end);
    put_key(out, "sources");
    out += inv.lines[i].sources.dump();
    out += '}';
  }
  out += ']';
  put(out, "charges_cents", inv.charges_cents);
  put(out, "credits_cents", inv.credits_cents);
  put(out, "carry_out_cents", inv.carry_out_cents);
  put(out, "total_cents", inv.total_cents);
  put_key(out, "final_invoice");
  out += inv.final_invoice ? "true" : "false";
  put(out, "computed_at", computed_at);
  put_or_null(out, "number", d.number);
  put_or_null(out, "issue_date", d.issue_date);
  put_or_null(out, "due_date", d.due_date);
  if (final) {
    put(out, "finalised_at", computed_at);
    put(out, "finalised_by", finalised_by);
  }
  out += '}';
  return out;
}

}  // namespace

RunResult Billing::run(const Actor& actor, date::year_month month, bool finalise) {
  std::lock_guard lock(run_mutex_);
  return run_locked(actor, month, finalise, nullptr);
}

RunResult Billing::run_locked(const Actor& actor, date::year_month month, bool finalise,
                              DocumentSink* sink) {
  const auto started = std::chrono::steady_clock::now();
  const std::string m = format_month(month);
  RunResult result;
  // One invoice at a time, computed, numbered, written and dropped: a month of ten thousand
  // accounts never holds ten thousand documents in memory. Computing inside the transaction
  // bills exactly the items it marks: everything is read, checked and written in one
  // transaction (BEGIN IMMEDIATE on SQLite, SERIALIZABLE on PostgreSQL), so an entry deleted
  // meanwhile is not billed and two processes finalising months never bill an item twice.
  store_.transact([&](Tx& tx) {
    result = RunResult{m, finalise, false, 0, 0, {}};
    if (sink) sink->restart();
    if (auto done =
            tx.query("SELECT invoices, total_cents FROM billing_months WHERE month = ?", {m});
        !done.empty()) {
      // Final: nothing is computed again, so a second export finds the same invoices.
      result.finalised = result.final_before = true;
      result.invoices = done[0].integer(0);
      result.total_cents = done[0].integer(1);
      return;
    }
    if (auto later =
            tx.query("SELECT month FROM billing_months WHERE month > ? ORDER BY month", {m});
        !later.empty()) {
      throw Conflict(
          "the invoices of " + later[0].text(0) + " are final, so " + m +
          " cannot be invoiced any more: what it would bill goes on the next open month");
    }

    const Context ctx = context();
    const std::string last = format_date(last_day_of(month));
    if (finalise) {
      // A month is final once it is over, and months are final in order: a month left out
      // would never bill its subscriptions.
      if (ctx.today <= last_day_of(month))
        throw Conflict(m + " is not over yet (today is " + format_date(ctx.today) +
                       "): it can be drafted, and finalised from " +
                       format_date(date::sys_days(last_day_of(month)) + days(1)));
      if (auto latest = tx.query("SELECT MAX(month) FROM billing_months");
          !latest.empty() && !latest[0].is_null(0)) {
        const std::string expected = format_month(parse_month(latest[0].text(0)) + months(1));
        if (expected != m)
          throw Conflict("finalise " + expected + " first: months are invoiced in order, and " +
                         latest[0].text(0) + " is the last final one");
      }
    }
    std::map<std::string, InvoiceInput> inputs;
    auto input_of = [&](const std::string& customer) -> InvoiceInput* {
      const Customer* c = ctx.invoiced(customer);
      if (!c) return nullptr;
      auto [it, fresh] = inputs.try_emplace(customer);
      if (fresh) {
        InvoiceInput& in = it->second;
        in.customer = *c;
        in.month = month;
        in.zone = ctx.zone;
        in.fiscal_year_start_month = ctx.data.fiscal_year_start_month;
        in.rate_cards = &ctx.cards;
        in.service_names = &ctx.service_names;
        in.service_zones = &ctx.service_zones;
        in.included_minutes_per_year = settings_.included_minutes_per_year;
      }
      return &it->second;
    };
    for (const auto& c : ctx.data.customers) input_of(c.id);
    for (const auto& [id, c] : ctx.former) input_of(id);
    std::set<std::string> orphans;
    for (const auto& r : tx.query(std::string("SELECT ") + kTimeColumns +
                                      " FROM billing_time_entries WHERE invoice IS NULL AND "
                                      "day <= ?",
                                  {last})) {
      if (auto* in = input_of(r.text(1)))
        in->time_entries.push_back(read_time_entry(r));
      else
        orphans.insert(r.text(1));
    }
    for (const auto& r : tx.query(
             "SELECT customer, fiscal_year, SUM(included_minutes) FROM billing_time_entries WHERE "
             "invoice IS NOT NULL GROUP BY customer, fiscal_year")) {
      if (auto* in = input_of(r.text(0)))
        in->included_used[static_cast<int>(r.integer(1))] = r.integer(2);
    }
    for (const auto& r : tx.query(std::string("SELECT ") + kOncallColumns +
                                      " FROM billing_oncall WHERE invoice IS NULL AND state = "
                                      "'scheduled' AND first_day <= ?",
                                  {last})) {
      if (auto* in = input_of(r.text(1)))
        in->oncall.push_back(read_oncall(r));
      else
        orphans.insert(r.text(1));
    }
    for (const auto& r : tx.query(std::string("SELECT ") + kCreditColumns +
                                      " FROM billing_credits WHERE invoice IS NULL AND month <= ?",
                                  {m})) {
      if (auto* in = input_of(r.text(3)))
        in->credits.push_back(read_credit(r));
      else
        orphans.insert(r.text(3));
    }
    for (const auto& r :
         tx.query("SELECT customer, number, carry_out_cents FROM billing_documents WHERE kind = "
                  "'invoice' AND state = 'final' AND month < ? ORDER BY month",
                  {m})) {
      if (auto* in = input_of(r.text(0))) {
        in->carry_in_cents = r.integer(2);
        in->carry_in_from = r.text(1);
      }
    }
    for (const auto& o : orphans)
      log_.warning("billing items of customer '" + o +
                   "' wait: no such customer in the catalog, nor a record of its deletion");

    const Date first = month / 1;
    const int fy = fiscal_year_of(first, ctx.data.fiscal_year_start_month);
    const Instant now = clock_.now();
    const std::string sequence = "INV-" + fiscal_label(fy);

    if (finalise) {
      tx.exec(
          "INSERT INTO billing_months(month, finalised_at, finalised_by, invoices, total_cents) "
          "VALUES (?, ?, ?, 0, 0)",
          {m, to_epoch(now), actor.id});
      // Every draft goes: those of earlier months can never be finalised now (what they would
      // bill goes on this month), and those of later months listed what this month now bills
      // (a January drafted before December was finalised holds December's unbilled time), so
      // they would show it twice. The next run of a later month drafts it afresh.
      tx.exec("DELETE FROM billing_documents WHERE kind = 'invoice' AND state = 'draft'");
    } else {
      tx.exec(
          "DELETE FROM billing_documents WHERE kind = 'invoice' AND state = 'draft' AND month = ?",
          {m});
    }
    // The fiscal year's sequence goes on from its last number; it is written back at the end,
    // in this transaction, so the numbers stay gapless.
    std::int64_t last_number = 0;
    if (auto rows = tx.query("SELECT last FROM billing_sequences WHERE name = ?", {sequence});
        !rows.empty())
      last_number = rows[0].integer(0);

    RowBatch documents(tx,
                       "INSERT INTO billing_documents(id, kind, month, customer, state, number, "
                       "fiscal_year, total_cents, carry_out_cents, body, updated_at) VALUES ",
                       "(?, 'invoice', ?, ?, ?, ?, ?, ?, ?, ?, ?)", "");
    RowBatch entries(tx,
                     "UPDATE billing_time_entries SET invoice = v.column2, included_minutes = "
                     "v.column3, fiscal_year = v.column4 FROM (VALUES ",
                     "(?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT))",
                     ") AS v WHERE billing_time_entries.id = v.column1 AND "
                     "billing_time_entries.invoice IS NULL");
    RowBatch requests(
        tx, "UPDATE billing_oncall SET invoice = v.column2 FROM (VALUES ", "(?, ?)",
        ") AS v WHERE billing_oncall.id = v.column1 AND billing_oncall.invoice IS NULL");
    RowBatch credits(
        tx, "UPDATE billing_credits SET invoice = v.column2 FROM (VALUES ", "(?, ?)",
        ") AS v WHERE billing_credits.id = v.column1 AND billing_credits.invoice IS NULL");

    for (auto& [id, in] : inputs) {
      Invoice inv;
      try {
        inv = compute_invoice(in);
      } catch (const PricingError& e) {
        throw Problem(422, "Unprocessable Content",
                      "customer '" + id + "' cannot be invoiced for " + m + ": " + e.what());
      }
      // Only a credit waiting for charges: no invoice (and no number) until there are some.
      if (std::all_of(inv.lines.begin(), inv.lines.end(), [](const Line& l) {
            return l.kind == "carry_in" || l.kind == "carry_forward";
          }))
        continue;
      const Customer& customer = in.customer;
      files::Document doc;
      doc.kind = files::DocumentKind::invoice;
      doc.period_start = format_date(first);
      doc.period_end = last;
      doc.currency = settings_.currency;
      doc.supplier = settings_.supplier;
      doc.customer = {customer.billing_code.empty() ? customer.id : customer.billing_code,
                      customer.name, billing_email(customer)};
      doc.total_cents = inv.total_cents;
      for (std::size_t i = 0; i < inv.lines.size(); ++i) {
        const Line& l = inv.lines[i];
        doc.lines.push_back({std::to_string(i + 1), l.kind, l.description, l.quantity_milli,
                             l.unit_code, l.unit_price_cents, l.amount_cents,
                             l.period_start ? format_date(*l.period_start) : "",
                             l.period_end ? format_date(*l.period_end) : "", l.reference});
      }
      Value number;
      if (finalise) {
        doc.number = numbered(sequence, ++last_number);
        const int due_days =
            inv.final_invoice ? settings_.final_invoice_days : settings_.payment_terms_days;
        doc.issue_date = format_date(ctx.today);
        doc.due_date = format_date(date::sys_days(ctx.today) + days(due_days));
        number = doc.number;
        for (const auto& line : inv.lines) {
          const Json& src = line.sources;
          if (const auto t = src.find("time_entry"); t != src.end()) {
            entries.add({t->at("id").get<std::string>(), doc.number,
                         t->at("included_minutes").get<std::int64_t>(),
                         t->at("fiscal_year").get<std::int64_t>()});
          } else if (const auto o = src.find("oncall_request"); o != src.end()) {
            requests.add({o->at("id").get<std::string>(), doc.number});
          } else if (const auto c = src.find("credit"); c != src.end()) {
            credits.add({c->at("id").get<std::string>(), doc.number});
          }
        }
        result.numbers.push_back(doc.number);
      }
      const std::string body = invoice_body(doc, inv, customer.id, m, fy, format_instant(now),
                                            finalise ? actor.id : std::string(), finalise);
      documents.add({m + ":" + customer.id, m, customer.id, finalise ? "final" : "draft", number,
                     fy, inv.total_cents, inv.carry_out_cents, body, to_epoch(now)});
      if (finalise && sink) sink->add(std::move(doc));
      ++result.invoices;
      result.total_cents += inv.total_cents;
    }
    documents.flush();
    entries.flush();
    requests.flush();
    credits.flush();
    if (finalise) {
      tx.exec(
          "INSERT INTO billing_sequences(name, last) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
          "SET last = excluded.last",
          {sequence, last_number});
      const Json first_number = result.numbers.empty() ? Json() : Json(result.numbers.front());
      const Json last_assigned = result.numbers.empty() ? Json() : Json(result.numbers.back());
      tx.exec("UPDATE billing_months SET invoices = ?, total_cents = ? WHERE month = ?",
              {result.invoices, result.total_cents, m});
      catalog_.audit(tx, Actor{actor.id}, "finalise", "invoices", m, Json(),
                     {{"invoices", result.invoices},
                      {"total_cents", result.total_cents},
                      {"first", first_number},
                      {"last", last_assigned}});
      events_.publish(tx, "invoices.finalised", m,
                      {{"month", m},
                       {"invoices", result.invoices},
                       {"total_cents", result.total_cents},
                       {"first", first_number},
                       {"last", last_assigned}});
    }
  });
  log_.info(std::string(finalise ? "finalised " : "drafted ") + std::to_string(result.invoices) +
            " invoices for " + m + ", total " + money(result.total_cents) + " (" +
            elapsed_ms(started) + ")");
  return result;
}

Json Billing::invoices_json(const std::string& month, const std::string& customer,
                            const std::string& state) const {
  std::string sql =
      "SELECT id, kind, month, customer, state, number, total_cents FROM billing_documents WHERE "
      "1 = 1";
  Params params;
  for (const auto& [column, value] :
       {std::pair{"month", month}, std::pair{"customer", customer}, std::pair{"state", state}}) {
    if (value.empty()) continue;
    sql += std::string(" AND ") + column + " = ?";
    params.push_back(value);
  }
  Json out = Json::array();
  for (const auto& r : store_.query(sql + " ORDER BY month, kind DESC, customer, id", params)) {
    out.push_back({{"id", r.text(0)},
                   {"kind", r.text(1)},
                   {"month", r.text(2)},
                   {"customer", r.text(3)},
                   {"state", r.text(4)},
                   {"number", r.is_null(5) ? Json() : Json(r.text(5))},
                   {"total_cents", r.integer(6)}});
  }
  return out;
}

Json Billing::invoice_json(const std::string& key) const {
  auto rows =
      store_.query("SELECT body FROM billing_documents WHERE number = ? OR id = ?", {key, key});
  if (rows.empty()) throw NotFound("no invoice or credit note '" + key + "'");
  Json doc = Json::parse(rows[0].text(0));
  if (doc.at("kind") == "invoice" && !doc.at("number").is_null()) {
    Json notes = Json::array();
    for (const auto& r : store_.query("SELECT number, total_cents FROM billing_documents WHERE "
                                      "refers_to = ? ORDER BY number",
                                      {doc.at("number").get<std::string>()})) {
      notes.push_back({{"number", r.text(0)}, {"total_cents", r.integer(1)}});
    }
    doc["credit_notes"] = notes;
  }
  return doc;
}

Json Billing::add_credit_note(const Actor& actor, const std::string& invoice_number,
                              const Json& body) {
  struct NoteLine {
    std::string description;
    std::int64_t amount_cents = 0;
  };
  std::vector<FieldError> errors;
  ObjectReader r(body, "$", errors);
  const std::string reason = r.required_string("reason");
  auto lines = r.required_array(
      "lines", [](const Json& v, const std::string& path, std::vector<FieldError>& errs) {
        ObjectReader lr(v, path, errs);
        NoteLine l;
        if (!lr.is_object()) return l;
        l.description = lr.required_string("description");
        l.amount_cents = lr.required_int("amount_cents", 1, kMaxAmountCents);
        lr.finish();
        return l;
      });
  r.finish();
  if (errors.empty() && lines.empty()) errors.push_back({"$.lines", "name at least one line"});
  throw_if_errors(std::move(errors));

  Json doc;
  const Context ctx = context();
  const Instant now = clock_.now();
  store_.transact([&](Tx& tx) {
    auto rows = tx.query(
        "SELECT body, total_cents FROM billing_documents WHERE number = ? AND kind = 'invoice'",
        {invoice_number});
    if (rows.empty()) throw NotFound("no finalised invoice '" + invoice_number + "'");
    const Json invoice = Json::parse(rows[0].text(0));
    std::int64_t credited = 0;
    for (const auto& n : tx.query("SELECT total_cents FROM billing_documents WHERE refers_to = ?",
                                  {invoice_number}))
      credited += n.integer(0);
    std::int64_t total = 0;
    Json out_lines = Json::array();
    for (std::size_t i = 0; i < lines.size(); ++i) {
      total += lines[i].amount_cents;
      out_lines.push_back({{"id", std::to_string(i + 1)},
                           {"kind", "correction"},
                           {"description", lines[i].description},
                           {"quantity", "1"},
                           {"quantity_milli", 1000},
                           {"unit_code", "C62"},
                           {"unit_price_cents", lines[i].amount_cents},
                           {"amount_cents", lines[i].amount_cents},
                           {"reference", invoice_number},
                           {"period_start", Json()},
                           {"period_end", Json()},
                           {"sources", {{"invoice", invoice_number}, {"reason", reason}}}});
    }
    const std::int64_t left = invoice.at("total_cents").get<std::int64_t>() - credited;
    if (total > left) {
      throw ValidationError("$.lines", "credit notes may return at most what " + invoice_number +
                                           " still charges: " + money(left) + ", not " +
                                           money(total));
    }
    const int fy = fiscal_year_of(ctx.today, ctx.data.fiscal_year_start_month);
    const std::string number =
        numbered("CN-" + fiscal_label(fy), next_in_sequence(tx, "CN-" + fiscal_label(fy)));
    const std::string month = format_month(ctx.today.year() / ctx.today.month());
    doc = {{"id", number},
           {"kind", "credit_note"},
           {"state", "final"},
           {"number", number},
           {"month", month},
           {"fiscal_year", fy},
           {"currency", invoice.at("currency")},
           {"supplier", invoice.at("supplier")},
           {"customer", invoice.at("customer")},
           {"billing_reference", invoice_number},
           {"note", reason},
           {"period", invoice.at("period")},
           {"issue_date", format_date(ctx.today)},
           {"due_date", Json()},
           {"lines", out_lines},
           {"total_cents", total},
           {"finalised_at", format_instant(now)},
           {"finalised_by", actor.id}};
    tx.exec(
        "INSERT INTO billing_documents(id, kind, month, customer, state, number, fiscal_year, "
        "total_cents, carry_out_cents, refers_to, body, updated_at) VALUES (?, 'credit_note', ?, "
        "?, 'final', ?, ?, ?, 0, ?, ?, ?)",
        {number, month, invoice.at("customer").at("customer").get<std::string>(), number, fy, total,
         invoice_number, doc.dump(), to_epoch(now)});
    catalog_.audit(tx, actor, "create", "credit_note", number, Json(),
                   {{"invoice", invoice_number}, {"total_cents", total}, {"reason", reason}});
  });
  return doc;
}

// ---- export ----

files::Document to_document(const Json& stored) {
  files::Document d;
  d.kind = stored.at("kind") == "credit_note" ? files::DocumentKind::credit_note
                                              : files::DocumentKind::invoice;
  d.number = text_or_empty(stored, "number");
  d.issue_date = text_or_empty(stored, "issue_date");
  d.due_date = text_or_empty(stored, "due_date");
  d.period_start = stored.at("period").at("start").get<std::string>();
  d.period_end = stored.at("period").at("end").get<std::string>();
  d.currency = stored.at("currency").get<std::string>();
  d.note = text_or_empty(stored, "note");
  d.billing_reference = text_or_empty(stored, "billing_reference");
  d.supplier = party_of(stored.at("supplier"));
  d.customer = party_of(stored.at("customer"));
  for (const auto& l : stored.at("lines")) {
    files::DocumentLine line;
    line.id = l.at("id").get<std::string>();
    line.kind = l.at("kind").get<std::string>();
    line.description = l.at("description").get<std::string>();
    line.quantity_milli = l.at("quantity_milli").get<std::int64_t>();
    line.unit_code = l.at("unit_code").get<std::string>();
    line.unit_price_cents = l.at("unit_price_cents").get<std::int64_t>();
    line.amount_cents = l.at("amount_cents").get<std::int64_t>();
    line.period_start = text_or_empty(l, "period_start");
    line.period_end = text_or_empty(l, "period_end");
    line.reference = l.at("reference").get<std::string>();
    d.lines.push_back(std::move(line));
  }
  d.total_cents = stored.at("total_cents").get<std::int64_t>();
  return d;
}

std::vector<files::Document> Billing::documents_of(const std::string& month,
                                                   bool credit_notes_only) const {
  std::vector<std::pair<std::string, files::Document>> keyed;
  for (const auto& r : store_.query(
           std::string("SELECT kind, number, body FROM billing_documents WHERE month = ? AND "
                       "state = 'final'") +
               (credit_notes_only ? " AND kind = 'credit_note'" : ""),
           {month})) {
    keyed.emplace_back((r.text(0) == "invoice" ? "0" : "1") + r.text(1),
                       to_document(Json::parse(r.text(2))));
  }
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<files::Document> out;
  out.reserve(keyed.size());
  for (auto& [key, doc] : keyed) out.push_back(std::move(doc));
  return out;
}

namespace {

// The files of one export, from its documents in order (invoices by number, then credit notes):
// each UBL file, the CSV's rows, every file's size and SHA-256, and the manifest's totals.
class ExportBuilder {
 public:
  ExportBuilder(std::string month, std::vector<std::string> formats)
      : month_(std::move(month)),
        formats_(std::move(formats)),
        csv_(std::find(formats_.begin(), formats_.end(), "csv") != formats_.end()),
        ubl_(std::find(formats_.begin(), formats_.end(), "ubl") != formats_.end()) {
    reset();
  }

  void reset() {
    csv_text_ = files::invoices_csv_header();
    listed_.clear();
    invoices_ = notes_ = lines_ = invoiced_ = credited_ = charges_ = returned_ = carried_ = 0;
  }

  // Records the document; its UBL file when UBL is asked for (`rendered`, when given, is it).
  std::optional<files::FileEntry> add(const files::Document& d,
                                      std::optional<files::FileEntry> rendered = std::nullopt) {
    lines_ += static_cast<std::int64_t>(d.lines.size());
    if (d.kind == files::DocumentKind::invoice) {
      ++invoices_;
      invoiced_ += d.total_cents;
      for (const auto& l : d.lines) {
        if (l.kind == "carry_forward")
          carried_ += l.amount_cents;
        else if (l.amount_cents > 0)
          charges_ += l.amount_cents;
        else
          returned_ -= l.amount_cents;
      }
    } else {
      ++notes_;
      credited_ += d.total_cents;
    }
    if (csv_) files::append_invoice_csv_rows(csv_text_, d);
    if (!ubl_) return std::nullopt;
    files::FileEntry file =
        rendered ? std::move(*rendered) : files::FileEntry{d.number + ".xml", files::ubl_xml(d)};
    listed_.push_back(listing(file));
    return file;
  }

  // The CSV (when asked for) and the manifest, which lists every other file: the CSV first.
  std::vector<files::FileEntry> closing_files() {
    std::vector<files::FileEntry> out;
    Json listed = Json::array();
    if (csv_) {
      out.push_back({"invoices-" + month_ + ".csv", std::move(csv_text_)});
      listed.push_back(listing(out.back()));
    }
    for (auto& entry : listed_) listed.push_back(std::move(entry));
    listed_.clear();
    const Json manifest = {{"month", month_},
                           {"formats", formats_},
                           {"documents", {{"invoices", invoices_}, {"credit_notes", notes_}}},
                           {"lines", lines_},
                           {"totals",
                            {{"invoiced_cents", invoiced_},
                             {"credit_notes_cents", credited_},
                             {"charges_cents", charges_},
                             {"credits_cents", returned_},
                             {"carried_forward_cents", carried_}}},
                           {"files", listed}};
    files_ = listed;
    out.push_back({"manifest.json", manifest.dump(2) + "\n"});
    manifest_sha256_ = sha256_hex(out.back().content);
    return out;
  }

  const Json& files_listed() const { return files_; }
  const std::string& manifest_sha256() const { return manifest_sha256_; }
  std::int64_t documents() const { return invoices_ + notes_; }
  std::int64_t invoiced_cents() const { return invoiced_; }

 private:
  static Json listing(const files::FileEntry& f) {
    return {{"name", f.name}, {"bytes", f.content.size()}, {"sha256", sha256_hex(f.content)}};
  }

  std::string month_;
  std::vector<std::string> formats_;
  bool csv_, ubl_;
  std::string csv_text_;
  std::vector<Json> listed_;
  Json files_ = Json::array();
  std::string manifest_sha256_;
  std::int64_t invoices_ = 0, notes_ = 0, lines_ = 0, invoiced_ = 0, credited_ = 0, charges_ = 0,
               returned_ = 0, carried_ = 0;
};

// Renders and writes the documents of a month being finalised on a second thread, while the
// first computes and stores them: each UBL file goes into the staged directory as soon as its
// invoice has a number, and the set appears only after the transaction has committed.
class StreamingExport : public DocumentSink {
 public:
  StreamingExport(ExportBuilder& builder, files::StagedDirectory& staged)
      : builder_(builder), staged_(staged), worker_([this] { work(); }) {}
  // Without finish(): the run failed, and what is still queued is not worth rendering.
  ~StreamingExport() override {
    {
      std::lock_guard lock(mutex_);
      queue_.clear();
    }
    close();
  }

  void restart() override { push(std::nullopt); }
  void add(files::Document doc) override { push(std::move(doc)); }

  // Waits for every document to be written; rethrows what failed on the worker.
  void finish() {
    close();
    if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
  }

 private:
  void close() {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
    }
    ready_.notify_one();
    worker_.join();
  }

  void push(std::optional<files::Document> item) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(item));
    }
    ready_.notify_one();
  }

  void work() {
    for (;;) {
      std::optional<files::Document> item;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty() || closed_; });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      if (item && failed_) continue;  // drain: the export fails once the run is over
      try {
        if (!item) {  // the transaction runs again: what it sent so far is void
          failed_ = nullptr;
          builder_.reset();
          staged_.clear();
        } else if (auto file = builder_.add(*item)) {
          staged_.add(*file);
        }
      } catch (...) {
        failed_ = std::current_exception();
      }
    }
  }

  ExportBuilder& builder_;
  files::StagedDirectory& staged_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::optional<files::Document>> queue_;
  bool closed_ = false;
  std::exception_ptr failed_;
  std::thread worker_;
};

}  // namespace

ExportResult Billing::export_month(const Actor& actor, date::year_month month,
                                   const std::vector<std::string>& requested,
                                   const std::filesystem::path& out) {
  const std::vector<std::string> formats = read_formats(requested);
  const Instant started = clock_.now();
  const auto begun = std::chrono::steady_clock::now();
  std::lock_guard lock(run_mutex_);
  const std::string m = format_month(month);
  ExportResult result;
  result.directory = out / ("invoices-" + m);
  ExportBuilder builder(m, formats);
  // One way through: try to finalise the month, writing the files while the invoices are
  // computed and stored. When it is final already (before this call, or by another process a
  // moment ago), the run changes nothing and the files come from the stored documents.
  bool finalised_here = false;
  {
    files::StagedDirectory staged(result.directory);
    {
      StreamingExport stream(builder, staged);
      finalised_here = !run_locked(actor, month, true, &stream).final_before;
      if (finalised_here)
        for (auto& note : documents_of(m, true)) stream.add(std::move(note));
      stream.finish();
    }
    if (finalised_here) {
      for (const auto& file : builder.closing_files()) staged.add(file);
      staged.commit();
      result.written = true;
    }
  }                       // an unused stage is dropped here, with its lock
  if (!finalised_here) {  // the run's restart() left the builder empty
    // Final before: every file from the stored documents (the UBL files on both cores), and
    // nothing written when the directory already holds the same bytes.
    const auto documents = documents_of(m, false);
    const bool ubl = std::find(formats.begin(), formats.end(), "ubl") != formats.end();
    std::vector<std::optional<files::FileEntry>> rendered(documents.size());
    auto render = [&](std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < to && ubl; ++i)
        rendered[i] = files::FileEntry{documents[i].number + ".xml", files::ubl_xml(documents[i])};
    };
    std::exception_ptr failed;
    std::thread helper([&] {
      try {
        render(documents.size() / 2, documents.size());
      } catch (...) {
        failed = std::current_exception();
      }
    });
    try {
      render(0, documents.size() / 2);
    } catch (...) {
      helper.join();
      throw;
    }
    helper.join();
    if (failed) std::rethrow_exception(failed);
    std::vector<files::FileEntry> entries;
    for (std::size_t i = 0; i < documents.size(); ++i) {
      if (auto file = builder.add(documents[i], std::move(rendered[i])))
        entries.push_back(std::move(*file));
    }
    for (auto& file : builder.closing_files()) entries.push_back(std::move(file));
    result.written = files::publish_directory(result.directory, entries);
  }
  const Instant finished = clock_.now();
  const std::int64_t documents = builder.documents();
  Json record = {{"month", m},
                 {"formats", formats},
                 {"directory", result.directory.string()},
                 {"files", builder.files_listed()},
                 {"manifest_sha256", builder.manifest_sha256()},
                 {"documents", documents},
                 {"total_cents", builder.invoiced_cents()},
                 {"written", result.written},
                 {"started_at", format_instant(started)},
                 {"finished_at", format_instant(finished)},
                 {"by", actor.id}};
  store_.transact([&](Tx& tx) {
    auto rows = tx.query(
        "INSERT INTO billing_exports(month, formats, directory, files, manifest_sha256, "
        "documents, total_cents, written, started_at, finished_at, actor) VALUES (?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?) RETURNING id",
        {m, Json(formats).dump(), result.directory.string(), builder.files_listed().dump(),
         builder.manifest_sha256(), documents, builder.invoiced_cents(), result.written ? 1 : 0,
         to_epoch(started), to_epoch(finished), actor.id});
    record["id"] = rows.at(0).integer(0);
    catalog_.audit(tx, actor, "export", "invoices", m, Json(),
                   {{"directory", result.directory.string()},
                    {"documents", documents},
                    {"written", result.written}});
  });
  log_.info("exported " + std::to_string(documents) + " documents of " + m + " to " +
            result.directory.string() + (result.written ? "" : " (unchanged)") + " in " +
            elapsed_ms(begun));
  result.record = std::move(record);
  return result;
}

std::string Billing::export_due(Instant now) {
  // Final months without an export (their files never written), then, in order, every month
  // from the one after the last final month to the previous one: a month that failed to
  // finalise (a busy store, a rate card in error) is tried again by the next run, and a run
  // after the server was down over several export days catches up. With no final month yet,
  // billing starts with the previous month.
  std::vector<date::year_month> months;
  for (const auto& r : store_.query("SELECT month FROM billing_months WHERE month NOT IN "
                                    "(SELECT month FROM billing_exports) ORDER BY month"))
    months.push_back(parse_month(r.text(0)));
  const date::year_month previous = previous_month(now);
  date::year_month next = previous;
  if (const auto latest = store_.query("SELECT MAX(month) FROM billing_months");
      !latest.empty() && !latest[0].is_null(0)) {
    next = std::min(previous, parse_month(latest[0].text(0)) + date::months(1));
  }
  const std::size_t finals = months.size();
  for (auto month = next; month <= previous; month += date::months(1)) {
    if (std::find(months.begin(), months.end(), month) == months.end()) months.push_back(month);
  }
  std::string outcome, failures;
  for (std::size_t k = 0; k < months.size(); ++k) {
    const date::year_month month = months[k];
    const std::string m = format_month(month);
    try {
      const ExportResult r =
          export_month({"system"}, month, settings_.export_formats, settings_.export_dir);
      outcome += (outcome.empty() ? "exported " : "; ") + m + " (" +
                 std::to_string(r.record.at("documents").get<std::int64_t>()) + " documents" +
                 (month == previous ? "" : ", not exported before") + ")";
    } catch (const std::exception& e) {
      log_.error("the export of " + m + " failed: " + e.what());
      failures += (failures.empty() ? "" : "; ") + m + ": " + e.what();
      // Months are final in order: the ones after a month that did not finalise wait for it.
      if (k >= finals && month != previous) {
        failures += " (" + format_month(month + date::months(1)) + " to " + format_month(previous) +
                    " wait for it)";
        break;
      }
    }
  }
  if (!failures.empty())
    throw std::runtime_error(failures + (outcome.empty() ? "" : " (" + outcome + ")"));
  return outcome + " to " + settings_.export_dir.string();
}

namespace {
Json export_row_json(const Row& r) {
  return {{"id", r.integer(0)},
          {"month", r.text(1)},
          {"formats", Json::parse(r.text(2))},
          {"directory", r.text(3)},
          {"files", Json::parse(r.text(4))},
          {"manifest_sha256", r.text(5)},
          {"documents", r.integer(6)},
          {"total_cents", r.integer(7)},
          {"written", r.integer(8) != 0},
          {"started_at", format_instant(from_epoch(r.integer(9)))},
          {"finished_at", format_instant(from_epoch(r.integer(10)))},
          {"by", r.text(11)}};
}
const char* const kExportColumns =
    "id, month, formats, directory, files, manifest_sha256, documents, total_cents, written, "
    "started_at, finished_at, actor";
}  // namespace

Json Billing::exports_json() const {
  Json out = Json::array();
  for (const auto& r :
       store_.query(std::string("SELECT ") + kExportColumns + " FROM billing_exports ORDER BY id"))
    out.push_back(export_row_json(r));
  return out;
}

Json Billing::export_json(std::int64_t id) const {
  auto rows = store_.query(
      std::string("SELECT ") + kExportColumns + " FROM billing_exports WHERE id = ?", {id});
  if (rows.empty()) throw NotFound("no export " + std::to_string(id));
  return export_row_json(rows[0]);
}

// ---- annual estimates ----

// A rate change re-issues the estimates it changes (the SLA's mid-year rate review).
void Billing::recheck_estimates(const std::string& cause) {
  try {
    log_.info(cause + " saved; estimates: " + run_estimates(clock_.now()));
  } catch (const std::exception& e) {
    log_.warning(cause + " saved, but the estimates were not re-checked: " + e.what() +
                 " (the daily job tries again)");
  }
}

std::string Billing::run_estimates(Instant now) {
  const Context ctx = context();
  const int start_month = ctx.data.fiscal_year_start_month;
  const Date today = local_date(now, ctx.zone);
  const int current = fiscal_year_of(today, start_month);
  const Date next_start = fiscal_year_start(current + 1, start_month);
  const date::year_month due_month =
      next_start.year() / next_start.month() - months(settings_.estimate_months_before);
  const bool due = today >= Date(due_month / 1);
  int issued = 0, revised = 0;
  store_.transact([&](Tx& tx) {
    issued = revised = 0;  // counted again when the transaction runs again
    issue_estimates(tx, ctx, current, now, false, issued, revised);
    issue_estimates(tx, ctx, current + 1, now, due, issued, revised);
  });
  return "issued " + std::to_string(issued) + " estimates for " + fiscal_label(current + 1) +
         (due ? "" : " (not due yet)") + ", revised " + std::to_string(revised);
}

void Billing::issue_estimates(Tx& tx, const Context& ctx, int fiscal_year, Instant now,
                              bool first_issue, int& issued, int& revised) {
  // The latest revision of each customer's estimate for the year.
  std::map<std::string, std::pair<std::int64_t, Json>> latest;
  for (const auto& r : tx.query(
           "SELECT customer, revision, body FROM billing_estimates WHERE fiscal_year = ? ORDER "
           "BY customer, revision",
           {fiscal_year}))
    latest[r.text(0)] = {r.integer(1), Json::parse(r.text(2))};
  if (latest.empty() && !first_issue) return;

  std::map<std::string, std::vector<TimeEntry>> entries;
  std::map<std::string, std::vector<OncallRequest>> oncall;
  for (const auto& r :
       tx.query(std::string("SELECT ") + kTimeColumns + " FROM billing_time_entries"))
    entries[r.text(1)].push_back(read_time_entry(r));
  for (const auto& r : tx.query(std::string("SELECT ") + kOncallColumns + " FROM billing_oncall"))
    oncall[r.text(1)].push_back(read_oncall(r));

  for (const auto& c : ctx.data.customers) {
    const auto previous = latest.find(c.id);
    if (previous == latest.end() && !first_issue) continue;
    EstimateInput in;
    in.customer = c;
    in.service_names = ctx.service_names;
    in.service_zones = ctx.service_zones;
    in.fiscal_year = fiscal_year;
    in.fiscal_year_start_month = ctx.data.fiscal_year_start_month;
    in.zone = ctx.zone;
    in.rate_cards = &ctx.cards;
    // A revision keeps the basis of the first issue (the same twelve months), so only a
    // change of prices or of the facts behind them revises it.
    in.made_on = previous == latest.end()
                     ? local_date(now, ctx.zone)
                     : parse_date(previous->second.second.at("made_on").get<std::string>());
    in.time_entries = entries[c.id];
    in.oncall = oncall[c.id];
    in.included_minutes_per_year = settings_.included_minutes_per_year;
    in.significant_basis_points = settings_.significant_basis_points;
    Json estimate;
    try {
      estimate = compute_estimate(in);
    } catch (const PricingError& e) {
      log_.warning("no estimate for customer '" + c.id + "' for " + fiscal_label(fiscal_year) +
                   ": " + e.what());
      continue;
    }
    // A customer with no service in the year (a former customer) is not sent a first
    // estimate of nothing.
    if (previous == latest.end() && estimate.at("subscriptions").empty()) continue;
    if (previous != latest.end()) {
      // Revised when a figure changes, not when a new card repeats the same prices.
      Json before = previous->second.second;
      Json now_figures = estimate;
      for (const char* key : {"revision", "issued_at", "rate_card"}) {
        before.erase(key);
        now_figures.erase(key);
      }
      if (before == now_figures) continue;
    }
    const std::int64_t revision = previous == latest.end() ? 1 : previous->second.first + 1;
    estimate["revision"] = revision;
    estimate["issued_at"] = format_instant(now);
    const auto recipients = billing_emails(c);
    if (recipients.empty()) {
      log_.warning("customer '" + c.id + "' has no billing contact: its " +
                   fiscal_label(fiscal_year) + " estimate is recorded but not sent");
    }
    tx.exec(
        "INSERT INTO billing_estimates(customer, fiscal_year, revision, body, recipients, "
        "issued_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        {c.id, fiscal_year, revision, estimate.dump(), Json(recipients).dump(), to_epoch(now)});
    const std::string subject =
        std::string(revision > 1 ? "Revised cost estimate" : "Cost estimate") + " " +
        fiscal_label(fiscal_year) + ": " + c.name;
    const std::string text = estimate_text(estimate, c.name, revision);
    for (const auto& to : recipients) {
      OutboxMessage message;
      message.channel = kEmailChannel;
      message.destination = to;
      message.subject = subject;
      message.body = text;
      message.dedupe_key = "billing-estimate:" + c.id + ":" + std::to_string(fiscal_year) + ":" +
                           std::to_string(revision) + ":" + to;
      outbox_.enqueue(tx, message);
    }
    (revision == 1 ? issued : revised) += 1;
  }
}

Json Billing::estimates_json(const std::string& fiscal_year, const std::string& customer) const {
  std::string sql =
      "SELECT customer, fiscal_year, revision, body, recipients, issued_at FROM "
      "billing_estimates WHERE 1 = 1";
  Params params;
  if (!fiscal_year.empty()) {
    std::int64_t fy = 0;
    try {
      fy = std::stoll(fiscal_year);
    } catch (const std::exception&) {
      throw ValidationError("?fiscal_year",
                            "must be a year such as 2027, not '" + fiscal_year + "'");
    }
    sql += " AND fiscal_year = ?";
    params.push_back(fy);
  }
  if (!customer.empty()) {
    sql += " AND customer = ?";
    params.push_back(customer);
  }
  Json out = Json::array();
  for (const auto& r : store_.query(sql + " ORDER BY fiscal_year, customer, revision", params)) {
    Json e = Json::parse(r.text(3));
    e["recipients"] = Json::parse(r.text(4));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace slmhub::billing
