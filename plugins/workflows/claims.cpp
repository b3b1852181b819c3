#include "claims.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "common.hpp"
#include "engine.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::workflows {
namespace {

constexpr int kRequestWindowDays = 60;  // after the last day of the incident's month
constexpr int kReviewDays = 30;         // after receipt
constexpr int kDisputeWindowDays = 30;  // after the credit is received
constexpr int kTopLevel = 3;            // deputy directors

// The columns written on insert; `seq` (the number in the id) comes from the store.
const std::string kRequestFields =
    "customer, service, incidents, billing_codes, claimed_seconds, notes, reply_to, filed_by, "
    "received_at, review_due_date, review_due_at, state, evidence, decision, steps, updated_at";
const std::string kRequestColumns = "seq, " + kRequestFields;
const std::string kDisputeFields =
    "credit, customer, level, state, basis, supporting_information, reply_to, filed_by, "
    "filed_at, window_closes, resolution, steps, updated_at";
const std::string kDisputeColumns = "seq, " + kDisputeFields;

Problem unprocessable(std::string detail, std::vector<FieldError> errors = {}) {
  return Problem(422, "Unprocessable Content", std::move(detail), std::move(errors));
}

date::year_month month_of(date::year_month_day day) { return {day.year(), day.month()}; }

// The last day a claim on something of `month` may be filed: `days` after the month's last
// day.
date::year_month_day window_close(date::year_month month, int days) {
  return date::sys_days(month / date::last) + date::days(days);
}

CreditRequest read_request(const Row& r) {
  CreditRequest q;
  q.id = numbered_id("CRQ", r.integer(0));
  q.customer = r.text(1);
  q.service = r.text(2);
  q.incidents = Json::parse(r.text(3));
  q.billing_codes = Json::parse(r.text(4));
  q.claimed_seconds = r.integer(5);
  q.notes = r.text(6);
  q.reply_to = r.text(7);
  q.filed_by = r.text(8);
  q.received_at = from_epoch(r.integer(9));
  q.review_due_date = r.text(10);
  q.review_due = from_epoch(r.integer(11));
  q.state = r.text(12);
  q.evidence = Json::parse(r.text(13));
  q.decision = Json::parse(r.text(14));
  q.steps = Json::parse(r.text(15));
  q.updated_at = from_epoch(r.integer(16));
  return q;
}

Dispute read_dispute(const Row& r) {
  Dispute d;
  d.id = numbered_id("DSP", r.integer(0));
  d.credit = r.text(1);
  d.customer = r.text(2);
  d.level = static_cast<int>(r.integer(3));
  d.state = r.text(4);
  d.basis = r.text(5);
  d.supporting_information = r.text(6);
  d.reply_to = r.text(7);
  d.filed_by = r.text(8);
  d.filed_at = from_epoch(r.integer(9));
  d.window_closes = r.text(10);
  d.resolution = Json::parse(r.text(11));
  d.steps = Json::parse(r.text(12));
  d.updated_at = from_epoch(r.integer(13));
  return d;
}

CreditRequest require_request(Tx& tx, const std::string& id) {
  const auto seq = parse_numbered_id("CRQ", id);
  auto rows =
      seq ? tx.query("SELECT " + kRequestColumns + " FROM credit_requests WHERE seq = ?", {*seq})
          : std::vector<Row>{};
  if (rows.empty()) throw NotFound("no credit request '" + id + "'");
  return read_request(rows.front());
}

Dispute require_dispute(Tx& tx, const std::string& id) {
  const auto seq = parse_numbered_id("DSP", id);
  auto rows = seq ? tx.query("SELECT " + kDisputeColumns + " FROM disputes WHERE seq = ?", {*seq})
                  : std::vector<Row>{};
  if (rows.empty()) throw NotFound("no dispute '" + id + "'");
  return read_dispute(rows.front());
}

std::string request_deadline(const std::string& id) { return "credit-request/" + id; }
std::string request_owner(const std::string& id) { return "credit-request/" + id; }
std::string dispute_owner(const std::string& id) { return "dispute/" + id; }

bool plausible_address(const std::string& address) {
  const auto at = address.find('@');
  return at != std::string::npos && at > 0 && at + 1 < address.size() &&
         address.find_first_of(" \t\r\n,<>") == std::string::npos;
}

std::string money(std::int64_t cents) {
  const char* sign = cents < 0 ? "-" : "";
  const std::int64_t abs = cents < 0 ? -cents : cents;
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%s%lld.%02lld", sign, static_cast<long long>(abs / 100),
                static_cast<long long>(abs % 100));
  return buffer;
}

// The customer a filer files for: its own for a customer token (another is refused), the
// body's `customer` for staff.
std::string customer_of(const Filer& filer, const std::optional<std::string>& named,
                        const char* what) {
  if (!filer.staff) {
    if (named && *named != filer.customer) {
      throw Problem(403, "Forbidden",
                    "a token of customer '" + filer.customer + "' files " + what + " only for '" +
                        filer.customer + "', not for '" + *named + "'");
    }
    return filer.customer;
  }
  if (!named) {
    throw ValidationError("$.customer", "required when filing on a customer's behalf");
  }
  return *named;
}

}  // namespace

// ---- measurement -------------------------------------------------------------------------------

// The zone of `service`'s months (zone_of), the dataset's for a service it does not hold.
const date::time_zone* service_zone(const Dataset& dataset, const std::string& service) {
  const auto svc = std::find_if(dataset.services.begin(), dataset.services.end(),
                                [&](const Service& s) { return s.id == service; });
  return find_zone(svc != dataset.services.end() ? zone_of(dataset, *svc) : dataset.timezone);
}

Json measure_claim(const Dataset& dataset, const std::string& customer, const std::string& service,
                   const std::vector<std::string>& incidents, std::int64_t claimed_seconds,
                   Instant now) {
  const date::time_zone* zone = service_zone(dataset, service);
  const std::set<std::string> wanted(incidents.begin(), incidents.end());
  std::set<date::year_month> months;
  for (const auto& inc : dataset.interruptions) {
    if (!wanted.contains(inc.id)) continue;
    const Instant end = std::min(inc.end.value_or(now), now);
    auto m = month_of(local_date(inc.start, zone));
    const auto last =
        month_of(local_date(std::max(inc.start, end - std::chrono::seconds(1)), zone));
    for (; m <= last; m += date::months(1)) months.insert(m);
  }

  const availability::Engine engine(dataset);
  std::map<std::string, std::int64_t> counted;  // incident → seconds it counted
  std::map<std::string, bool> impacted;
  // The instants the incidents that hit the customer counted: two that overlap are down at
  // the same time, and that time is measured once.
  std::vector<Interval> hit_pieces;
  Json month_rows = Json::array();
  std::int64_t credit_cents = 0;
  for (const auto& m : months) {
    const Interval bounds = month_bounds(m, zone);
    if (bounds.start > now) continue;
    const auto as_of = now < bounds.end ? std::optional<Instant>(now) : std::nullopt;
    const auto report = engine.report(m, as_of, availability::Detail::full);
    Json row = {{"month", format_month(m)}};
    for (const auto& f : report.services) {
      if (f.service != service) continue;
      row["service_downtime_seconds"] = f.downtime_seconds;
      row["allowed_downtime_seconds"] = f.allowed_downtime_seconds;
      row["service_excess_downtime_seconds"] = f.excess_downtime_seconds;
      row["met"] = f.met;
      for (const auto& e : f.timeline) {
        if (e.kind != availability::TimelineEntry::Kind::interruption || !wanted.contains(e.id)) {
          continue;
        }
        counted[e.id] += e.seconds;
        const bool hit = std::binary_search(e.customers.begin(), e.customers.end(), customer);
        impacted[e.id] = impacted[e.id] || hit;
        if (hit) hit_pieces.insert(hit_pieces.end(), e.counted.begin(), e.counted.end());
      }
    }
    row["customer_downtime_seconds"] = 0;
    row["customer_excess_downtime_seconds"] = 0;
    row["credit_cents"] = 0;
    for (const auto& c : report.credits) {
      if (c.service != service || c.customer != customer) continue;
      row["customer_downtime_seconds"] = c.downtime_seconds;
      row["customer_excess_downtime_seconds"] = c.excess_downtime_seconds;
      row["credit_cents"] = c.credit_cents;
      credit_cents += c.credit_cents;
    }
    if (as_of) row["as_of"] = format_instant(*as_of);
    month_rows.push_back(std::move(row));
  }

  Json incident_rows = Json::array();
  for (const auto& id : incidents) {
    const std::int64_t seconds = counted.contains(id) ? counted[id] : 0;
    const bool hit = impacted.contains(id) && impacted[id];
    incident_rows.push_back({{"id", id}, {"counted_seconds", seconds}, {"customer_impacted", hit}});
  }
  std::sort(hit_pieces.begin(), hit_pieces.end(),
            [](const Interval& a, const Interval& b) { return a.start < b.start; });
  std::int64_t measured = 0;
  std::optional<Interval> run;  // the union so far, piece by piece in order of start
  for (const Interval& p : hit_pieces) {
    if (run && p.start <= run->end) {
      run->end = std::max(run->end, p.end);
      continue;
    }
    if (run) measured += run->seconds();
    run = p;
  }
  if (run) measured += run->seconds();
  return {
      {"measured_at", format_instant(now)},    {"claimed_seconds", claimed_seconds},
      {"measured_seconds", measured},          {"difference_seconds", claimed_seconds - measured},
      {"incidents", std::move(incident_rows)}, {"months", std::move(month_rows)},
      {"credit_cents", credit_cents}};
}

// ---- JSON --------------------------------------------------------------------------------------

Json request_json(const CreditRequest& q) {
  Json documents = Json::array();
  for (const auto& a : q.documents) documents.push_back(attachment_json(a));
  return {{"id", q.id},
          {"customer", q.customer},
          {"service", q.service},
          {"incidents", q.incidents},
          {"billing_codes", q.billing_codes},
          {"claimed_seconds", q.claimed_seconds},
          {"notes", q.notes},
          {"reply_to", q.reply_to},
          {"filed_by", q.filed_by},
          {"received_at", format_instant(q.received_at)},
          {"review_due_date", q.review_due_date},
          {"review_due", format_instant(q.review_due)},
          {"state", q.state},
          {"evidence", q.evidence},
          {"decision", q.decision},
          {"steps", q.steps},
          {"updated_at", format_instant(q.updated_at)},
          {"documents", std::move(documents)}};
}

Json dispute_json(const Dispute& d) {
  Json documents = Json::array();
  for (const auto& a : d.documents) documents.push_back(attachment_json(a));
  return {{"id", d.id},
          {"credit", d.credit},
          {"customer", d.customer},
          {"level", d.level},
          {"state", d.state},
          {"basis", d.basis},
          {"supporting_information", d.supporting_information},
          {"reply_to", d.reply_to},
          {"filed_by", d.filed_by},
          {"filed_at", format_instant(d.filed_at)},
          {"window_closes", d.window_closes},
          {"resolution", d.resolution},
          {"steps", d.steps},
          {"updated_at", format_instant(d.updated_at)},
          {"documents", std::move(documents)}};
}

// ---- the book ----------------------------------------------------------------------------------

ClaimBook::ClaimBook(Store& store, Catalog& catalog, Events& events, Outbox& outbox,
                     Deadlines& deadlines, CreditBook& credits, Attachments& attachments,
                     const Clock& clock, Logger& log)
    : store_(store),
      catalog_(catalog),
      events_(events),
      outbox_(outbox),
      deadlines_(deadlines),
      credits_(credits),
      attachments_(attachments),
      clock_(clock),
      log_(log) {}

std::vector<Migration> ClaimBook::migrations() {
  return {{1, "single-customer credit requests and disputes",
           "CREATE TABLE credit_requests(seq {{serial}}, customer TEXT NOT NULL, "
           "service TEXT NOT NULL, incidents TEXT NOT NULL, billing_codes TEXT NOT NULL, "
           "claimed_seconds BIGINT NOT NULL, notes TEXT NOT NULL, reply_to TEXT NOT NULL, "
           "filed_by TEXT NOT NULL, received_at BIGINT NOT NULL, review_due_date TEXT NOT NULL, "
           "review_due_at BIGINT NOT NULL, state TEXT NOT NULL, evidence TEXT NOT NULL, "
           "decision TEXT NOT NULL, steps TEXT NOT NULL, updated_at BIGINT NOT NULL);"
           "CREATE INDEX credit_requests_customer ON credit_requests(customer, state);"
           "CREATE TABLE disputes(seq {{serial}}, credit TEXT NOT NULL, customer TEXT NOT NULL, "
           "level BIGINT NOT NULL, state TEXT NOT NULL, basis TEXT NOT NULL, "
           "supporting_information TEXT NOT NULL, reply_to TEXT NOT NULL, "
           "filed_by TEXT NOT NULL, filed_at BIGINT NOT NULL, window_closes TEXT NOT NULL, "
           "resolution TEXT NOT NULL, steps TEXT NOT NULL, updated_at BIGINT NOT NULL);"
           "CREATE INDEX disputes_customer ON disputes(customer, state);"
           "CREATE INDEX disputes_credit ON disputes(credit, state)"}};
}

std::vector<std::string> ClaimBook::customer_addresses(const std::string& customer,
                                                       const std::string& reply_to) const {
  std::set<std::string> out;
  if (auto c = catalog_.customer(customer)) {
    for (const auto& contact : c->contacts) {
      if (contact.role == ContactRole::billing || contact.role == ContactRole::technical_primary) {
        out.insert(contact.email);
      }
    }
  }
  if (!reply_to.empty()) out.insert(reply_to);
  // The customer must be told of a decision (DOMAIN.md §5): with nobody to tell it, it waits,
  // and nothing changes, until the customer has an address.
  if (out.empty()) {
    throw Conflict("customer '" + customer +
                   "' has no billing or primary technical contact and gave no reply_to, so "
                   "nobody would be told of this decision: add a contact to the customer first");
  }
  return {out.begin(), out.end()};
}

CreditRequest ClaimBook::file_request(const Filer& filer, const Json& body) {
  std::vector<FieldError> errors;
  ObjectReader r(body, "$", errors);
  const auto named = r.optional_string("customer");
  const std::string service = r.required_string("service");
  const auto incidents = r.required_string_list("incidents");
  auto billing_codes = r.optional_string_list("billing_codes");
  const std::int64_t claimed = r.required_int("claimed_seconds", 1);
  const std::string notes = r.optional_string("notes").value_or("");
  const std::string reply_to = r.optional_string("reply_to").value_or("");
  const auto uploads = r.optional_array("documents", read_upload);
  r.finish();
  throw_if_errors(std::move(errors));
  const std::string customer_id = customer_of(filer, named, "credit requests");

  // The facts the form names must exist and agree.
  const auto customer = catalog_.customer(customer_id);
  if (!customer) errors.push_back({"$.customer", "no customer '" + customer_id + "'"});
  if (!catalog_.service(service)) errors.push_back({"$.service", "no service '" + service + "'"});
  if (incidents.empty()) errors.push_back({"$.incidents", "name at least one incident"});
  std::vector<Interruption> records;
  std::map<std::string, std::size_t> named_at;  // incident → where the list first names it
  for (std::size_t i = 0; i < incidents.size(); ++i) {
    const std::string path = path_index("$.incidents", i);
    // Measured once however often it is named: a second mention would count its downtime
    // twice in the request's evidence against a claim that may do the same.
    if (const auto [at, first] = named_at.try_emplace(incidents[i], i); !first) {
      errors.push_back(
          {path, incidents[i] + " is named already at " + path_index("$.incidents", at->second)});
      continue;
    }
    auto inc = catalog_.interruption(incidents[i]);
    if (!inc) {
      errors.push_back({path, "no interruption '" + incidents[i] + "'"});
    } else if (inc->service != service) {
      errors.push_back({path, incidents[i] + " is an interruption of '" + inc->service +
                                  "', not of '" + service + "'"});
    } else {
      records.push_back(*inc);
    }
  }
  if (customer) {
    if (billing_codes.empty()) billing_codes.push_back(customer->billing_code);
    for (std::size_t i = 0; i < billing_codes.size(); ++i) {
      if (billing_codes[i] != customer->billing_code) {
        errors.push_back({path_index("$.billing_codes", i),
                          "'" + billing_codes[i] + "' is not the billing code of customer '" +
                              customer_id + "' (" + customer->billing_code + ")"});
      }
    }
  }
  if (!reply_to.empty() && !plausible_address(reply_to)) {
    errors.push_back({"$.reply_to", "not an e-mail address"});
  }
  if (!errors.empty()) {
    throw unprocessable("the credit request names things that do not agree", std::move(errors));
  }

  // The window: 60 calendar days from the last day of each incident's month (DOMAIN.md §5),
  // the month in the service's zone (§2, as the report counts it); the days are the
  // provider's.
  const Instant now = clock_.now();
  const BusinessCalendar provider = catalog_.provider_calendar();
  const Dataset data = catalog_.snapshot();
  const date::time_zone* months_zone = service_zone(data, service);
  const auto today = local_date(now, provider.zone());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto month = month_of(local_date(records[i].start, months_zone));
    const auto closes = window_close(month, kRequestWindowDays);
    if (today <= closes) continue;
    const date::year_month_day last{month / date::last};
    throw unprocessable(
        "a credit request must be filed within 60 calendar days of the last day of the "
        "incident's month: " +
            records[i].id + " is of " + format_month(month) + " (last day " + format_date(last) +
            "), so the window closed on " + format_date(closes) + "; this request was filed on " +
            format_date(today),
        {{path_index("$.incidents", i),
          "filed after the window closed on " + format_date(closes)}});
  }

  Json evidence = measure_claim(data, customer_id, service, incidents, claimed, now);
  const auto review_day = date::year_month_day{date::sys_days(today) + date::days(kReviewDays)};
  const Instant review_due = provider.end_of_day(review_day);
  CreditRequest out;
  store_.transact([&](Tx& tx) {
    const Json steps = {{"received", step_json(filer.actor, now)}};
    auto rows = tx.query(
        "INSERT INTO credit_requests(" + kRequestFields +
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, 'null', ?, ?) RETURNING seq",
        {customer_id, service, Json(incidents).dump(), Json(billing_codes).dump(), claimed, notes,
         reply_to, filer.actor.id, to_epoch(now), format_date(review_day), to_epoch(review_due),
         evidence.dump(), steps.dump(), to_epoch(now)});
    out = {numbered_id("CRQ", rows.at(0).integer(0)),
           customer_id,
           service,
           incidents,
           billing_codes,
           claimed,
           notes,
           reply_to,
           filer.actor.id,
           now,
           format_date(review_day),
           review_due,
           "received",
           evidence,
           Json(),
           steps,
           now,
           {}};
    for (const auto& upload : uploads) {
      out.documents.push_back(attachments_.add(tx, request_owner(out.id), upload, now));
    }
    catalog_.audit(tx, filer.actor, "file", "credit_request", out.id, Json(),
                   {{"state", "received"},
                    {"customer", customer_id},
                    {"claimed_seconds", claimed},
                    {"measured_seconds", evidence.at("measured_seconds")}});
    deadlines_.set(tx, filer.actor,
                   {request_deadline(out.id), "credit_request_review", out.id, "service_manager",
                    "review the credit request " + out.id + " of " + customer_id + " on " + service,
                    review_due});
  });
  log_.info("credit request " + out.id + " received from " + filer.actor.id + " for " +
            customer_id + " on " + service + ", review due " + out.review_due_date);
  return out;
}

std::vector<CreditRequest> ClaimBook::requests(const std::string& customer,
                                               const std::string& state) const {
  Params params;
  const std::string sql = "SELECT " + kRequestColumns + " FROM credit_requests WHERE 1 = 1" +
                          where_equal({{"customer", customer}, {"state", state}}, params);
  std::vector<CreditRequest> out;
  for (const auto& row : store_.query(sql + " ORDER BY seq", params)) {
    out.push_back(read_request(row));
    out.back().documents = attachments_.list(request_owner(out.back().id));
  }
  return out;
}

std::optional<CreditRequest> ClaimBook::request(const std::string& id) const {
  const auto seq = parse_numbered_id("CRQ", id);
  if (!seq) return std::nullopt;
  auto rows =
      store_.query("SELECT " + kRequestColumns + " FROM credit_requests WHERE seq = ?", {*seq});
  if (rows.empty()) return std::nullopt;
  CreditRequest q = read_request(rows.front());
  q.documents = attachments_.list(request_owner(q.id));
  return q;
}

CreditRequest ClaimBook::accept(const Actor& actor, const std::string& id,
                                std::optional<std::int64_t> cents, const std::string& notes) {
  const Instant now = clock_.now();
  // A month under way at receipt was measured to that moment: its scheduled and allowed
  // seconds were the month's so far, not the month's. Its credit is measured again once the
  // month has closed, and cannot be known before (DOMAIN.md §4 credits a whole month).
  std::optional<Json> remeasured;
  if (const auto q = request(id); !cents && q && q->state == "received") {
    const Json& months = q->evidence.value("months", Json::array());
    if (std::any_of(months.begin(), months.end(),
                    [](const Json& m) { return m.contains("as_of"); })) {
      remeasured =
          measure_claim(catalog_.snapshot(), q->customer, q->service,
                        q->incidents.get<std::vector<std::string>>(), q->claimed_seconds, now);
      for (const auto& m : remeasured->at("months")) {
        if (!m.contains("as_of")) continue;
        throw Conflict("credit request " + id + " is for " + m.at("month").get<std::string>() +
                       ", which is under way: its credit is known once the month has closed; "
                       "accept it then, or now with credit_cents");
      }
    }
  }
  CreditRequest out;
  store_.transact([&](Tx& tx) {
    CreditRequest q = require_request(tx, id);
    if (q.state != "received") {
      throw Conflict("cannot accept credit request " + id + ": it is " + q.state +
                     ", and only a received request can be decided");
    }
    const Json& evidence = remeasured ? *remeasured : q.evidence;
    const Json measured_months = evidence.value("months", Json::array());
    // A credit is of one month, as the report's are: without an amount, each month the
    // measurement read is credited its own measured credit less the credits already on record
    // for the customer, service and month (the report's work order, an earlier request), since
    // a request is for what the report missed (DOMAIN.md §5) and the same downtime is not
    // credited twice. Kept as one credit under the first month, a request across a month end
    // left the second month's share where neither its work order nor a later request for that
    // month saw it. With an amount, the amount is the first month's: the manager's figure.
    struct MonthCredit {
      std::string month;
      std::int64_t cents;
    };
    std::vector<MonthCredit> owed;
    std::int64_t on_record = 0;
    if (cents) {
      owed.push_back({!measured_months.empty()
                          ? measured_months.front().at("month").get<std::string>()
                          : format_month(month_of(
                                local_date(q.received_at, catalog_.provider_calendar().zone()))),
                      *cents});
    } else {
      std::string ids;
      for (const auto& row : measured_months) {
        const std::string month = row.at("month").get<std::string>();
        std::int64_t before = 0;
        for (const auto& r :
             tx.query("SELECT id, amount_cents FROM credits WHERE customer = ? AND service = ? AND "
                      "month = ? AND state <> 'withdrawn' ORDER BY id",
                      {q.customer, q.service, month})) {
          before += r.integer(1);
          ids += (ids.empty() ? "" : ", ") + r.text(0);
        }
        on_record += before;
        if (const std::int64_t left = row.at("credit_cents").get<std::int64_t>() - before; left > 0)
          owed.push_back({month, left});
      }
      if (owed.empty()) {
        throw Conflict("nothing is left to credit for credit request " + id + ": its measured " +
                       "credit of " + money(evidence.at("credit_cents").get<std::int64_t>()) +
                       " is on record already (" + ids +
                       "); accept it with credit_cents to credit more, or deny it");
      }
    }
    auto customer = catalog_.customer(q.customer);
    std::int64_t amount = 0;
    Json credit_ids = Json::array();
    for (const MonthCredit& m : owed) {
      // The first month's credit is `<request>:<customer>`; a later month's adds the month.
      const std::string credit_id =
          q.id + ":" + q.customer + (credit_ids.empty() ? "" : ":" + m.month);
      credits_.add_credit(
          tx, actor,
          Credit{credit_id,
                 q.customer,
                 q.service,
                 m.month,
                 customer ? customer->billing_code : q.billing_codes.front().get<std::string>(),
                 m.cents,
                 m.cents,
                 q.incidents,
                 "credit_request",
                 q.id,
                 "pending",
                 std::nullopt,
                 Json::array(),
                 {{"accepted", step_json(actor, now)}},
                 now,
                 now});
      amount += m.cents;
      credit_ids.push_back(credit_id);
    }
    q.state = "accepted";
    q.decision = {{"credit", credit_ids.front()},
                  {"credits", credit_ids},
                  {"credit_cents", amount},
                  {"notes", notes}};
    if (!cents) q.decision["already_credited_cents"] = on_record;
    if (remeasured) q.decision["remeasured"] = *remeasured;
    q.steps["accepted"] = step_json(actor, now);
    q.updated_at = now;
    tx.exec(
        "UPDATE credit_requests SET state = 'accepted', decision = ?, steps = ?, updated_at = ? "
        "WHERE seq = ? AND state = 'received'",
        {q.decision.dump(), q.steps.dump(), to_epoch(now), *parse_numbered_id("CRQ", id)});
    catalog_.audit(tx, actor, "accept", "credit_request", id, {{"state", "received"}},
                   {{"state", "accepted"}, {"credits", credit_ids}, {"credit_cents", amount}});
    deadlines_.complete(tx, actor, request_deadline(id));
    out = std::move(q);
  });
  out.documents = attachments_.list(request_owner(id));
  log_.info("credit request " + id + " accepted by " + actor.id);
  return out;
}

CreditRequest ClaimBook::deny(const Actor& actor, const std::string& id,
                              const std::string& reason) {
  const Instant now = clock_.now();
  CreditRequest out;
  store_.transact([&](Tx& tx) {
    CreditRequest q = require_request(tx, id);
    if (q.state != "received") {
      throw Conflict("cannot deny credit request " + id + ": it is " + q.state +
                     ", and only a received request can be decided");
    }
    q.state = "denied";
    q.decision = {{"reason", reason}};
    q.steps["denied"] = step_json(actor, now);
    q.updated_at = now;
    tx.exec(
        "UPDATE credit_requests SET state = 'denied', decision = ?, steps = ?, updated_at = ? "
        "WHERE seq = ? AND state = 'received'",
        {q.decision.dump(), q.steps.dump(), to_epoch(now), *parse_numbered_id("CRQ", id)});
    catalog_.audit(tx, actor, "deny", "credit_request", id, {{"state", "received"}},
                   {{"state", "denied"}, {"reason", reason}});
    deadlines_.complete(tx, actor, request_deadline(id));
    std::string incidents;
    for (const auto& i : q.incidents)
      incidents += (incidents.empty() ? "" : ", ") + i.get<std::string>();
    const std::string body = "Your credit request " + id + " for " + q.service + " (incidents " +
                             incidents + ", " + std::to_string(q.claimed_seconds) +
                             " seconds claimed) was denied.\n\nReason: " + reason +
                             "\n\nOur measurement of the same incidents: " +
                             std::to_string(q.evidence.at("measured_seconds").get<std::int64_t>()) +
                             " seconds.\nYou may reply to this message with further information.\n";
    for (const auto& address : customer_addresses(q.customer, q.reply_to)) {
      outbox_.enqueue(tx, {0, "email", address, "Credit request " + id + " denied", body,
                           Json::object(), "credit-request.denied/" + id + "/" + address});
    }
    out = std::move(q);
  });
  out.documents = attachments_.list(request_owner(id));
  log_.info("credit request " + id + " denied by " + actor.id);
  return out;
}

Dispute ClaimBook::file_dispute(const Filer& filer, const Json& body) {
  std::vector<FieldError> errors;
  ObjectReader r(body, "$", errors);
  const std::string credit_id = r.required_string("credit");
  const std::string basis = r.required_string("basis");
  const std::string supporting = r.required_string("supporting_information");
  const std::string reply_to = r.optional_string("reply_to").value_or("");
  const auto uploads = r.optional_array("documents", read_upload);
  r.finish();
  if (!reply_to.empty() && !plausible_address(reply_to)) {
    errors.push_back({"$.reply_to", "not an e-mail address"});
  }
  throw_if_errors(std::move(errors));

  const Instant now = clock_.now();
  const BusinessCalendar provider = catalog_.provider_calendar();
  const auto today = local_date(now, provider.zone());
  Dispute out;
  store_.transact([&](Tx& tx) {
    auto rows =
        tx.query("SELECT customer, state, issued_at FROM credits WHERE id = ?", {credit_id});
    // Another customer's credit is answered as one that does not exist: a different answer
    // would tell a customer whether another was credited (credit ids are predictable).
    if (rows.empty() || (!filer.staff && rows[0].text(0) != filer.customer)) {
      throw unprocessable("no credit '" + credit_id + "'", {{"$.credit", "no such credit"}});
    }
    const std::string customer = rows[0].text(0);
    if (rows[0].text(1) != "approved") {
      throw Conflict("credit " + credit_id + " is " + rows[0].text(1) +
                     ": only an issued (approved) credit can be disputed");
    }
    const auto issued = local_date(from_epoch(*rows[0].optional_integer(2)), provider.zone());
    const date::year_month_day closes{date::sys_days(issued) + date::days(kDisputeWindowDays)};
    if (today > closes) {
      throw unprocessable(
          "a dispute must be filed within 30 calendar days of receiving the credit: " + credit_id +
              " was issued on " + format_date(issued) + ", so the window closed on " +
              format_date(closes) + "; this dispute was filed on " + format_date(today),
          {{"$.credit", "filed after the window closed on " + format_date(closes)}});
    }
    // One dispute per credit: a resolved one is final (DOMAIN.md §5, "the dispute is closed"),
    // or a new one at level 1 would let the working group overrule the deputy directors.
    auto earlier =
        tx.query("SELECT seq, state FROM disputes WHERE credit = ? ORDER BY seq", {credit_id});
    if (!earlier.empty()) {
      const bool open = earlier[0].text(1) == "open";
      throw Conflict("credit " + credit_id + " is already disputed by " +
                     numbered_id("DSP", earlier[0].integer(0)) +
                     (open ? ", which is still open"
                           : ", which is closed: the resolution of a dispute is final"));
    }
    const Json steps = {{"filed", step_json(filer.actor, now)}, {"escalated", Json::array()}};
    auto inserted =
        tx.query("INSERT INTO disputes(" + kDisputeFields +
                     ") VALUES (?, ?, 1, 'open', ?, ?, ?, ?, ?, ?, 'null', ?, ?) RETURNING seq",
                 {credit_id, customer, basis, supporting, reply_to, filer.actor.id, to_epoch(now),
                  format_date(closes), steps.dump(), to_epoch(now)});
    out = {numbered_id("DSP", inserted.at(0).integer(0)),
           credit_id,
           customer,
           1,
           "open",
           basis,
           supporting,
           reply_to,
           filer.actor.id,
           now,
           format_date(closes),
           Json(),
           steps,
           now,
           {}};
    for (const auto& upload : uploads) {
      out.documents.push_back(attachments_.add(tx, dispute_owner(out.id), upload, now));
    }
    catalog_.audit(tx, filer.actor, "file", "dispute", out.id, Json(),
                   {{"state", "open"}, {"level", 1}, {"credit", credit_id}});
  });
  log_.info("dispute " + out.id + " of credit " + credit_id + " filed by " + filer.actor.id);
  return out;
}

std::vector<Dispute> ClaimBook::disputes(const std::string& customer,
                                         const std::string& state) const {
  Params params;
  const std::string sql = "SELECT " + kDisputeColumns + " FROM disputes WHERE 1 = 1" +
                          where_equal({{"customer", customer}, {"state", state}}, params);
  std::vector<Dispute> out;
  for (const auto& row : store_.query(sql + " ORDER BY seq", params)) {
    out.push_back(read_dispute(row));
    out.back().documents = attachments_.list(dispute_owner(out.back().id));
  }
  return out;
}

std::optional<Dispute> ClaimBook::dispute(const std::string& id) const {
  const auto seq = parse_numbered_id("DSP", id);
  if (!seq) return std::nullopt;
  auto rows = store_.query("SELECT " + kDisputeColumns + " FROM disputes WHERE seq = ?", {*seq});
  if (rows.empty()) return std::nullopt;
  Dispute d = read_dispute(rows.front());
  d.documents = attachments_.list(dispute_owner(d.id));
  return d;
}

Dispute ClaimBook::escalate(const Actor& actor, const std::string& id, const std::string& reason) {
  const Instant now = clock_.now();
  Dispute out;
  store_.transact([&](Tx& tx) {
    Dispute d = require_dispute(tx, id);
    if (d.state != "open") {
      throw Conflict("cannot escalate dispute " + id + ": it is " + d.state);
    }
    if (d.level >= kTopLevel) {
      throw Conflict("dispute " + id +
                     " is at level 3 (the deputy directors), the last level: it can only be "
                     "resolved");
    }
    Json step = step_json(actor, now);
    step["from"] = d.level;
    step["to"] = d.level + 1;
    step["reason"] = reason;
    d.steps["escalated"].push_back(step);
    d.level += 1;
    d.updated_at = now;
    tx.exec("UPDATE disputes SET level = ?, steps = ?, updated_at = ? WHERE seq = ? AND level = ?",
            {static_cast<std::int64_t>(d.level), d.steps.dump(), to_epoch(now),
             *parse_numbered_id("DSP", id), static_cast<std::int64_t>(d.level - 1)});
    catalog_.audit(tx, actor, "escalate", "dispute", id, {{"level", d.level - 1}},
                   {{"level", d.level}, {"reason", reason}});
    out = std::move(d);
  });
  out.documents = attachments_.list(dispute_owner(id));
  log_.info("dispute " + id + " escalated to level " + std::to_string(out.level) + " by " +
            actor.id);
  return out;
}

Dispute ClaimBook::resolve(const Actor& actor, bool is_manager, bool is_approver,
                           const std::string& id, std::int64_t cents, const std::string& outcome) {
  const Instant now = clock_.now();
  Dispute out;
  store_.transact([&](Tx& tx) {
    Dispute d = require_dispute(tx, id);
    if (d.state != "open") {
      throw Conflict("cannot resolve dispute " + id + ": it is " + d.state);
    }
    if (d.level == kTopLevel && !is_approver) {
      throw Problem(403, "Forbidden",
                    "dispute " + id +
                        " is at level 3, which the deputy directors decide: resolving it needs "
                        "the role 'approver'");
    }
    if (d.level < kTopLevel && !is_manager) {
      throw Problem(403, "Forbidden",
                    "dispute " + id + " is at level " + std::to_string(d.level) +
                        ", which the service managers decide: resolving it needs the role "
                        "'service_manager'");
    }
    const std::int64_t before = credits_.require_credit(tx, d.credit).amount_cents;
    const Credit credit = credits_.adjust(tx, actor, d.credit, cents, id);

    // The outcome e-mail: sent through the outbox and kept with the dispute as sent.
    const auto to = customer_addresses(d.customer, d.reply_to);
    const std::string subject = "Dispute " + id + " of credit " + d.credit + ": resolved";
    std::string body = "Your dispute " + id + " of credit " + d.credit + " (" + credit.service +
                       ", " + credit.month + ") was decided at level " + std::to_string(d.level) +
                       ".\n\n" + outcome + "\n\n";
    body += before == cents ? "The credit stays at " + money(cents) + ".\n"
                            : "The credit changes from " + money(before) + " to " + money(cents) +
                                  "; the difference of " + money(cents - before) +
                                  " is applied on your next invoice.\n";
    std::string recipients;
    for (const auto& a : to) recipients += (recipients.empty() ? "" : ", ") + a;
    for (const auto& address : to) {
      outbox_.enqueue(tx, {0, "email", address, subject, body, Json::object(),
                           "dispute.resolved/" + id + "/" + address});
    }
    const std::string message = "Date: " + format_instant(now) + "\r\nTo: " + recipients +
                                "\r\nSubject: " + subject + "\r\n\r\n" + body;
    const Attachment mail = attachments_.add(
        tx, dispute_owner(id), {"outcome-" + id + ".eml", "message/rfc822", message}, now);

    d.state = "closed";
    d.resolution = {{"level", d.level},       {"credit_cents", cents},
                    {"before_cents", before}, {"adjusted", before != cents},
                    {"outcome", outcome},     {"email", mail.id},
                    {"recipients", to}};
    d.steps["resolved"] = step_json(actor, now);
    d.updated_at = now;
    tx.exec(
        "UPDATE disputes SET state = 'closed', resolution = ?, steps = ?, updated_at = ? WHERE "
        "seq = ? AND state = 'open'",
        {d.resolution.dump(), d.steps.dump(), to_epoch(now), *parse_numbered_id("DSP", id)});
    catalog_.audit(tx, actor, "resolve", "dispute", id, {{"state", "open"}, {"level", d.level}},
                   {{"state", "closed"}, {"credit_cents", cents}, {"before_cents", before}});
    out = std::move(d);
  });
  out.documents = attachments_.list(dispute_owner(id));
  log_.info("dispute " + id + " resolved at level " + std::to_string(out.level) + " by " +
            actor.id);
  return out;
}

}  // namespace slmhub::workflows
