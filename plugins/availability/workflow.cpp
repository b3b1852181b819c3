#include "workflow.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include "engine.hpp"
#include "report_diff.hpp"
#include "report_json.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::availability {
namespace {

constexpr int kReportDueBusinessDays = 15;  // DOMAIN.md §5, after the month closes
constexpr int kAnalysisDays = 30;           // calendar days after the month's last day

const char* const kColumns =
    "month, revision, state, as_of, computed_at, due_date, analysis_deadline, changes, steps";

Revision read_revision(const Row& r) {
  Revision out;
  out.month = r.text(0);
  out.number = r.integer(1);
  out.state = r.text(2);
  if (auto t = r.optional_integer(3)) out.as_of = from_epoch(*t);
  out.computed_at = from_epoch(r.integer(4));
  out.due_date = r.text(5);
  out.analysis_deadline = r.text(6);
  out.changes = Json::parse(r.text(7));
  out.steps = Json::parse(r.text(8));
  return out;
}

// A step's name (for the audit log), the state it starts from and the state it reaches.
struct StepRule {
  const char* name;
  const char* from;
  const char* to;
};

StepRule describe(Step step) {
  switch (step) {
    case Step::review:
      return {"review", "draft", "reviewed"};
    case Step::approve:
      return {"approve", "reviewed", "approved"};
    case Step::publish:
      return {"publish", "approved", "published"};
  }
  return {"review", "draft", "reviewed"};
}

std::string report_deadline_id(const std::string& month) { return "availability.report/" + month; }
std::string analysis_deadline_id(const std::string& month) {
  return "availability.analysis/" + month;
}

date::year_month_day last_day(date::year_month month) {
  return date::year_month_day{month / date::last};
}

// The month's deadlines in the provider's calendar (DOMAIN.md §2, §5).
std::pair<date::year_month_day, date::year_month_day> deadlines(const BusinessCalendar& provider,
                                                                date::year_month month) {
  const auto closes = last_day(month);
  return {provider.add_business_days(closes, kReportDueBusinessDays),
          date::year_month_day{date::sys_days{closes} + date::days{kAnalysisDays}}};
}

}  // namespace

Json revision_summary_json(const Revision& r) {
  Json out = {{"month", r.month},
              {"revision", r.number},
              {"state", r.state},
              {"latest", r.latest},
              {"computed_at", format_instant(r.computed_at)},
              {"due_date", r.due_date},
              {"analysis_deadline", r.analysis_deadline},
              {"steps", r.steps},
              {"changes", r.changes}};
  out["as_of"] = r.as_of ? Json(format_instant(*r.as_of)) : Json();
  return out;
}

Json revision_json(const Revision& r) {
  Json out = revision_summary_json(r);
  out["report"] = r.document;
  return out;
}

ReportBook::ReportBook(Store& store, Catalog& catalog, Events& events, Deadlines& deadlines,
                       const Clock& clock, Logger& log)
    : store_(store),
      catalog_(catalog),
      events_(events),
      deadlines_(deadlines),
      clock_(clock),
      log_(log) {}

std::vector<Migration> ReportBook::migrations() {
  return {
      {1, "availability report revisions and deadline notices",
       "CREATE TABLE availability_reports(month TEXT NOT NULL, revision BIGINT NOT NULL, "
       "state TEXT NOT NULL, as_of BIGINT, computed_at BIGINT NOT NULL, due_date TEXT NOT NULL, "
       "analysis_deadline TEXT NOT NULL, document TEXT NOT NULL, changes TEXT NOT NULL, "
       "steps TEXT NOT NULL, PRIMARY KEY(month, revision));"
       "CREATE TABLE availability_deadline_notices(month TEXT NOT NULL, kind TEXT NOT NULL, "
       "at BIGINT NOT NULL, PRIMARY KEY(month, kind))"},
      {2, "deadlines moved to the host's deadline service",
       "DROP TABLE availability_deadline_notices"},
      {3, "published SIAs, for the report page",
       "CREATE TABLE availability_sias(interruption TEXT PRIMARY KEY, sia TEXT NOT NULL, "
       "service TEXT NOT NULL, state TEXT NOT NULL)"},
  };
}

std::optional<Revision> ReportBook::latest(Tx& tx, date::year_month month) const {
  auto rows = tx.query(std::string("SELECT ") + kColumns +
                           ", document FROM availability_reports WHERE month = ? "
                           "ORDER BY revision DESC LIMIT 1",
                       {format_month(month)});
  if (rows.empty()) return std::nullopt;
  Revision r = read_revision(rows.front());
  r.document = Json::parse(rows.front().text(9));
  r.latest = true;
  return r;
}

std::vector<date::year_month> ReportBook::drafted_months() const {
  std::vector<date::year_month> out;
  for (const auto& r :
       store_.query("SELECT DISTINCT month FROM availability_reports ORDER BY month")) {
    out.push_back(parse_month(r.text(0)));
  }
  return out;
}

ReportBook::Drafted ReportBook::draft(const Actor& actor, date::year_month month) {
  std::lock_guard lock(draft_mutex_);
  const Instant now = clock_.now();
  const Dataset dataset = catalog_.snapshot();
  const BusinessCalendar provider = provider_calendar(dataset);
  // Each service's month is its own zone's, so the month is over only once it is over in
  // every service's zone.
  const Interval span = month_span(dataset, month);
  if (now < span.start) {
    throw ValidationError("month", format_month(month) + " has not begun (it starts " +
                                       format_instant(span.start) + ")");
  }
  // A month still under way is measured up to now, and says so.
  std::optional<Instant> as_of;
  if (now < span.end) as_of = now;
  const AvailabilityReport report = compute(dataset, month, as_of);
  const Json document = detailed_report_json(report, dataset, as_of);
  const auto [due, analysis] = deadlines(provider, month);

  const std::string m = format_month(month);
  const auto owe_dates = [&](Tx& tx, const Actor& by, bool again) {
    const Deadline analysis_deadline{
        analysis_deadline_id(m),
        "availability_analysis",
        m,
        "service_manager",
        "review the month's availability analysis (met / not met per service)",
        provider.end_of_day(analysis)};
    const Deadline report_deadline{report_deadline_id(m),
                                   "availability_report",
                                   m,
                                   "service_manager",
                                   "publish the month's Service Availability Report",
                                   provider.end_of_day(due)};
    for (const Deadline& d : {analysis_deadline, report_deadline}) {
      if (again) {
        deadlines_.reopen(tx, by, d);
      } else {
        deadlines_.set(tx, by, d);
      }
    }
  };

  Drafted out{{}, false};
  store_.transact([&](Tx& tx) {
    auto previous = latest(tx, month);
    Json changes = Json::array();
    if (previous) {
      changes = report_changes(previous->document, document);
      if (changes.empty() && previous->as_of == as_of) {
        // The figures stand, but the provider calendar may have changed since (a holiday
        // added): the dates owed follow it, as a new revision's would. A deadline met stays
        // met, and a published revision keeps the dates it was published with.
        if (previous->state != "published" &&
            (previous->due_date != format_date(due) ||
             previous->analysis_deadline != format_date(analysis))) {
          previous->due_date = format_date(due);
          previous->analysis_deadline = format_date(analysis);
          tx.exec(
              "UPDATE availability_reports SET due_date = ?, analysis_deadline = ? WHERE month = ? "
              "AND revision = ?",
              {previous->due_date, previous->analysis_deadline, m, previous->number});
          owe_dates(tx, actor, false);
        }
        out = {*previous, false};
        return;
      }
    }
    Revision r;
    r.month = format_month(month);
    r.number = previous ? previous->number + 1 : 1;
    r.state = "draft";
    r.latest = true;
    r.as_of = as_of;
    r.computed_at = now;
    r.due_date = format_date(due);
    r.analysis_deadline = format_date(analysis);
    r.document = document;
    r.changes = std::move(changes);
    r.steps = {{"drafted", {{"by", actor.id}, {"at", format_instant(now)}}}};
    tx.exec(
        "INSERT INTO availability_reports(month, revision, state, as_of, computed_at, due_date, "
        "analysis_deadline, document, changes, steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {r.month, r.number, r.state, as_of ? Value{to_epoch(*as_of)} : Value{}, to_epoch(now),
         r.due_date, r.analysis_deadline, document.dump(), r.changes.dump(), r.steps.dump()});
    catalog_.audit(
        tx, actor, "draft", "availability_report", r.month + "/" + std::to_string(r.number),
        previous ? Json{{"revision", previous->number}, {"state", previous->state}} : Json(),
        {{"revision", r.number}, {"state", r.state}, {"changes", r.changes.size()}});
    // A new revision is owed its review and publication, even when an earlier one met them: a
    // correction drafted after publication is not published until someone publishes it.
    owe_dates(tx, actor, true);
    out = {std::move(r), true};
  });
  if (out.created) {
    log_.info("availability report " + out.revision.month + " revision " +
              std::to_string(out.revision.number) + " drafted by " + actor.id + " (" +
              std::to_string(out.revision.changes.size()) + " changes)");
  }
  return out;
}

Revision ReportBook::advance(const Actor& actor, date::year_month month, std::int64_t number,
                             Step step) {
  const StepRule s = describe(step);
  const Instant now = clock_.now();
  Revision out;
  store_.transact([&](Tx& tx) {
    auto current = latest(tx, month);
    const std::string name = format_month(month) + " revision " + std::to_string(number);
    if (!current || number < 1 || number > current->number) {
      throw NotFound("availability report " + name + " does not exist");
    }
    if (number != current->number) {
      throw Conflict("availability report " + name + " is superseded by revision " +
                     std::to_string(current->number) + "; only the latest revision moves on");
    }
    // A revision drafted before the month ended holds part of it: the report and its
    // analysis are of the closed month (DOMAIN.md §5), so only a later draft moves on.
    if (current->as_of) {
      throw Conflict("cannot " + std::string(s.name) + " availability report " + name +
                     ": it was measured as of " + format_instant(*current->as_of) +
                     ", before the month ended; draft a new revision once the month is over");
    }
    if (current->state != s.from) {
      throw Conflict("cannot " + std::string(s.name) + " availability report " + name + ": it is " +
                     current->state + ", and only a " + s.from + " report can be " + s.to);
    }
    Revision r = std::move(*current);
    r.state = s.to;
    r.steps[s.to] = {{"by", actor.id}, {"at", format_instant(now)}};
    tx.exec(
        "UPDATE availability_reports SET state = ?, steps = ? WHERE month = ? AND revision = ? "
        "AND state = ?",
        {r.state, r.steps.dump(), r.month, r.number, std::string(s.from)});
    catalog_.audit(tx, actor, s.name, "availability_report",
                   r.month + "/" + std::to_string(r.number), {{"state", s.from}},
                   {{"state", s.to}});
    // A review is the analysis; a publication also settles it if nobody recorded one.
    deadlines_.complete(tx, actor, analysis_deadline_id(r.month));
    if (step == Step::publish) {
      deadlines_.complete(tx, actor, report_deadline_id(r.month));
      const Json& doc = r.document;
      // Each credit row as consumers see it (the credit form's data per customer).
      const auto credit_json = [&](const Json& c) {
        Json out = Json::object();
        for (const char* key : {"customer", "customer_name", "service", "billing_code",
                                "credit_cents", "downtime_seconds", "excess_downtime_seconds",
                                "monthly_charge_cents", "interruptions", "maintenance_downtime"}) {
          if (c.contains(key)) out[key] = c.at(key);
        }
        return out;
      };
      // The missed services with their credits, whole, so that one event is enough to open
      // the month's credit work orders (the workflows plugin) without reading this plugin's
      // tables or waiting for the credit.computed events that follow.
      Json missed = Json::array();
      Json missed_services = Json::array();
      std::int64_t total = 0;
      for (const auto& svc : doc.at("services")) {
        if (svc.at("met").get<bool>()) continue;
        const Json& id = svc.at("service");
        missed.push_back(id);
        Json entry = Json::object();
        for (const char* key : {"service", "name", "target_percent", "downtime_seconds",
                                "allowed_downtime_seconds", "excess_downtime_seconds",
                                "interruptions", "maintenance_downtime", "customers_impacted"}) {
          if (svc.contains(key)) entry[key] = svc.at(key);
        }
        entry["credits"] = Json::array();
        for (const auto& c : doc.at("credits")) {
          if (c.at("service") == id) entry["credits"].push_back(credit_json(c));
        }
        missed_services.push_back(std::move(entry));
      }
      for (const auto& c : doc.at("credits")) total += c.at("credit_cents").get<std::int64_t>();
      events_.publish(tx, "report.published", r.month,
                      {{"month", r.month},
                       {"revision", r.number},
                       {"published_at", format_instant(now)},
                       {"services", doc.at("services").size()},
                       {"missed", missed},
                       {"missed_services", std::move(missed_services)},
                       {"credits", doc.at("credits").size()},
                       {"credit_cents_total", total}});
      const auto subject = [&](const Json& c) {
        return r.month + "/" + c.at("service").get<std::string>() + "/" +
               c.at("customer").get<std::string>();
      };
      std::set<std::string> credited;
      for (const auto& c : doc.at("credits")) {
        Json payload = credit_json(c);
        payload["month"] = r.month;
        payload["revision"] = r.number;
        credited.insert(subject(c));
        events_.publish(tx, "credit.computed", subject(c), payload);
      }
      // A credit the previously published revision announced and this one no longer has
      // (its interruption reclassified, say) is announced again at zero, so that a consumer
      // keeping the latest credit per (month, service, customer) lets it go.
      const auto before = tx.query(
          "SELECT revision, document FROM availability_reports WHERE month = ? AND "
          "state = 'published' AND revision < ? ORDER BY revision DESC LIMIT 1",
          {r.month, r.number});
      if (!before.empty()) {
        const Json announced = Json::parse(before.front().text(1));
        for (const auto& c : announced.at("credits")) {
          if (credited.contains(subject(c))) continue;
          Json payload = Json::object();
          for (const char* key : {"customer", "customer_name", "service", "billing_code"}) {
            if (c.contains(key)) payload[key] = c.at(key);
          }
          payload["credit_cents"] = 0;
          payload["interruptions"] = Json::array();
          payload["maintenance_downtime"] = Json::array();
          payload["withdrawn"] = true;
          payload["withdrawn_revision"] = before.front().integer(0);
          payload["month"] = r.month;
          payload["revision"] = r.number;
          events_.publish(tx, "credit.computed", subject(c), payload);
        }
      }
    }
    out = std::move(r);
  });
  log_.info("availability report " + out.month + " revision " + std::to_string(out.number) + " " +
            out.state + " by " + actor.id);
  return out;
}

void ReportBook::record_sia(const Json& sia) {
  const auto text = [&](const char* key) { return sia.at(key).get<std::string>(); };
  store_.transact([&](Tx& tx) {
    tx.exec(
        "INSERT INTO availability_sias(interruption, sia, service, state) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(interruption) DO UPDATE SET sia = excluded.sia, service = excluded.service, "
        "state = excluded.state",
        {text("interruption"), text("id"), text("service"), text("state")});
  });
}

std::map<std::string, std::vector<std::pair<std::string, std::string>>> ReportBook::related_sias(
    const Json& document) const {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  for (const auto& service : document.at("services")) {
    const std::string id = service.at("service").get<std::string>();
    const Json& listed = service.at("interruptions");
    for (const auto& row : store_.query(
             "SELECT interruption, sia FROM availability_sias WHERE service = ? ORDER BY sia",
             {id})) {
      if (std::find(listed.begin(), listed.end(), Json(row.text(0))) == listed.end()) continue;
      out[id].emplace_back(row.text(1), row.text(0));
    }
  }
  return out;
}

std::vector<Revision> ReportBook::revisions(date::year_month month) const {
  auto rows = store_.query(std::string("SELECT ") + kColumns +
                               " FROM availability_reports WHERE month = ? ORDER BY revision",
                           {format_month(month)});
  std::vector<Revision> out;
  for (const auto& row : rows) out.push_back(read_revision(row));
  if (!out.empty()) out.back().latest = true;
  return out;
}

std::optional<Revision> ReportBook::revision(date::year_month month, std::int64_t number) const {
  auto rows = store_.query(std::string("SELECT ") + kColumns +
                               ", document, (SELECT MAX(revision) FROM availability_reports m "
                               "WHERE m.month = r.month) FROM availability_reports r "
                               "WHERE month = ? AND revision = ?",
                           {format_month(month), number});
  if (rows.empty()) return std::nullopt;
  Revision r = read_revision(rows.front());
  r.document = Json::parse(rows.front().text(9));
  r.latest = rows.front().integer(10) == r.number;
  return r;
}

std::optional<Revision> ReportBook::published(date::year_month month) const {
  auto rows = store_.query(
      "SELECT MAX(revision) FROM availability_reports WHERE month = ? AND state = 'published'",
      {format_month(month)});
  if (rows.empty() || rows.front().is_null(0)) return std::nullopt;
  return revision(month, rows.front().integer(0));
}

}  // namespace slmhub::availability
