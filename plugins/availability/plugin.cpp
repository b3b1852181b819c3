// The availability plugin module: registers `slmhub report availability`, the served report,
// the report workflow (revisions, review, approval, publication), the publishable page and
// the monthly jobs. All logic is in slmhub_availability_core; this file only wires it into the
// host.
#include <algorithm>
#include <memory>
#include <set>

#include "command.hpp"
#include "engine.hpp"
#include "report_html.hpp"
#include "report_json.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/plugin.hpp"
#include "workflow.hpp"

namespace {

using slmhub::Json;
using slmhub::Request;
using slmhub::Response;
using namespace slmhub::availability;

slmhub::Actor actor_of(const Request& req) { return {"token:" + req.principal.id}; }

date::year_month month_param(const Request& req) {
  try {
    return slmhub::parse_month(req.params.at("month"));
  } catch (const std::exception& e) {
    throw slmhub::ValidationError("month", e.what());
  }
}

std::int64_t revision_param(const Request& req) {
  const std::string& text = req.params.at("revision");
  try {
    std::size_t used = 0;
    const long long n = std::stoll(text, &used);
    if (used == text.size() && n > 0) return n;
  } catch (const std::exception&) {
  }
  throw slmhub::ValidationError("revision", "'" + text + "' is not a revision number (1, 2, ...)");
}

PageMeta page_meta(const ReportBook& book, const Revision& r) {
  PageMeta meta;
  meta.state = r.state;
  meta.revision = static_cast<int>(r.number);
  meta.due_date = r.due_date;
  meta.analysis_deadline = r.analysis_deadline;
  if (r.steps.contains("published")) {
    meta.published_at = r.steps["published"]["at"].get<std::string>();
  }
  // Analyses are published after the report as often as before it: the page lists those
  // published so far, while the figures stay those of the revision.
  for (auto& [service, sias] : book.related_sias(r.document)) {
    for (auto& [sia, interruption] : sias) {
      meta.sias[service].push_back({sia, interruption, "published"});
    }
  }
  return meta;
}

Response page(const ReportBook& book, const Revision& r) {
  return Response::text(render_report_html(r.document, page_meta(book, r)),
                        "text/html; charset=utf-8");
}

class Availability : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"availability", "0.2.0", slmhub::kPluginApi, {}};
  }
  std::vector<slmhub::ConfigKey> config_schema() const override {
    return {
        {"draft_schedule", slmhub::ConfigType::cron, "0 6 1 * *",
         "cron schedule of the job that drafts last month's report"},
        // The last zone on Earth to end a month (UTC-12): at 06:00 there on the first, the
        // month is over in every service's zone, so the draft is never a preview.
        {"timezone", slmhub::ConfigType::zone, "Etc/GMT+12",
         "IANA zone the schedule is read in (the default, UTC-12, is the last zone to end a "
         "month)"},
    };
  }

  // The offline report reads a dataset file, never the store.
  void register_offline_commands(slmhub::Commands& commands) override {
    commands.add(
        {kReportCommandName, kReportCommandUsage, kReportCommandHelp, &run_report_command});
  }

  void start(slmhub::Host& host) override {
    host.store().migrate("availability", ReportBook::migrations());
    book_ = std::make_unique<ReportBook>(host.store(), host.catalog(), host.events(),
                                         host.deadlines(), host.clock(), host.log());
    register_routes(host);
    register_jobs(host);
    ReportBook& book = *book_;
    host.events().subscribe("availability.sias", {"sia.published"},
                            [&book](const slmhub::Event& e) { book.record_sia(e.payload); });
  }
  void stop() override {}

 private:
  void register_routes(slmhub::Host& host) {
    auto& http = host.http();
    slmhub::Catalog& catalog = host.catalog();
    ReportBook& book = *book_;
    http.add({"GET", "/api/v1/reports/availability", "viewer",
              [&catalog, &clock = host.clock()](const Request& req) {
                return live_report(catalog, clock, req);
              },
              "the month's availability report computed from the store now (DESIGN.md §5.4)"});
    http.add({"GET", "/api/v1/reports/availability/{month}", "viewer",
              [&book](const Request& req) {
                const auto month = month_param(req);
                Json revisions = Json::array();
                for (const auto& r : book.revisions(month)) {
                  revisions.push_back(revision_summary_json(r));
                }
                const auto published = book.published(month);
                return Response::json({{"month", slmhub::format_month(month)},
                                       {"published", published ? Json(published->number) : Json()},
                                       {"revisions", std::move(revisions)}});
              },
              "the month's report revisions and their states"});
    http.add({"POST", "/api/v1/reports/availability/{month}/revisions", "service_manager",
              [&book](const Request& req) {
                auto drafted = book.draft(actor_of(req), month_param(req));
                return Response::json(revision_json(drafted.revision), drafted.created ? 201 : 200);
              },
              "computes the month from the store: a new draft revision, or the latest when the "
              "figures are unchanged"});
    http.add(
        {"GET", "/api/v1/reports/availability/{month}/revisions/{revision}", "viewer",
         [&book](const Request& req) { return Response::json(revision_json(find(book, req))); },
         "one revision with its frozen report and its changes against the previous one"});
    http.add({"GET", "/api/v1/reports/availability/{month}/revisions/{revision}/page", "viewer",
              [&book](const Request& req) { return page(book, find(book, req)); },
              "one revision as the publishable HTML page (for review before publication)"});
    struct StepRoute {
      const char* path;
      const char* role;
      Step step;
      const char* summary;
    };
    for (const StepRoute& s :
         {StepRoute{"review", "service_manager", Step::review, "draft → reviewed (service owners)"},
          StepRoute{"approve", "approver", Step::approve, "reviewed → approved (deputy directors)"},
          StepRoute{"publish", "service_manager", Step::publish,
                    "approved → published: frozen, with report.published and credit.computed"}}) {
      const Step step = s.step;
      http.add({"POST",
                std::string("/api/v1/reports/availability/{month}/revisions/{revision}/") + s.path,
                s.role,
                [&book, step](const Request& req) {
                  return Response::json(revision_json(
                      book.advance(actor_of(req), month_param(req), revision_param(req), step)));
                },
                s.summary});
    }
    http.add({"GET", "/reports/availability/{month}", "",
              [&book](const Request& req) {
                const auto month = month_param(req);
                auto published = book.published(month);
                if (!published) {
                  throw slmhub::NotFound("the availability report for " +
                                         slmhub::format_month(month) + " is not published");
                }
                return page(book, *published);
              },
              "the published Service Availability Report as a page (public)"});
  }

  void register_jobs(slmhub::Host& host) {
    const auto& config = host.config();
    const std::string zone = config.string("timezone");
    ReportBook& book = *book_;
    host.scheduler().add({"availability.monthly-draft", config.string("draft_schedule"), zone,
                          "drafts the report of the month that just closed, of any month "
                          "since the first report that has none, and again of any whose "
                          "latest draft is a preview",
                          [&book, zone, &log = host.log()](const slmhub::JobContext& ctx) {
                            return draft_due(book, log, zone, ctx.scheduled_for);
                          }});
  }

  // The month that just closed, and every month since the first one drafted that has no
  // report: a run missed while the server was down (the scheduler runs only the latest
  // missed slot) or a run that failed leaves no month without its report and deadlines.
  // An earlier month whose latest revision is a preview (drafted before the month was over
  // in some service's zone) is drafted again too: a preview can never be published.
  static std::string draft_due(ReportBook& book, slmhub::Logger& log, const std::string& zone,
                               slmhub::Instant scheduled_for) {
    const auto today = slmhub::local_date(scheduled_for, slmhub::find_zone(zone));
    const date::year_month previous = today.year() / today.month() - date::months{1};
    const std::vector<date::year_month> drafted = book.drafted_months();
    std::vector<date::year_month> months;
    std::set<date::year_month> previews;
    if (!drafted.empty()) {
      for (auto m = drafted.front(); m < previous; m += date::months{1}) {
        if (!std::binary_search(drafted.begin(), drafted.end(), m)) {
          months.push_back(m);
        } else if (const auto revisions = book.revisions(m);
                   !revisions.empty() && revisions.back().as_of) {
          months.push_back(m);
          previews.insert(m);
        }
      }
    }
    months.push_back(previous);
    std::string outcome;
    for (const auto month : months) {
      auto done = book.draft({"system:availability"}, month);
      std::string line = slmhub::format_month(month) + " revision " +
                         std::to_string(done.revision.number) +
                         (done.created ? " drafted" : " unchanged") +
                         (month == previous       ? ""
                          : previews.count(month) ? " (its report was a preview)"
                                                  : " (had no report)");
      if (const auto& as_of = done.revision.as_of) {
        // The schedule's zone is east of a service's: the month is not over there, and this
        // revision cannot be published.
        line += " as of " + slmhub::format_instant(*as_of) +
                ", before the month ended in every service's zone; the next run drafts it "
                "again (schedule this job in the zone of the westernmost service, or leave "
                "timezone at its default, to draft it once the month is over)";
        log.warning("availability.monthly-draft: " + line);
      }
      outcome += (outcome.empty() ? "" : "; ") + line;
    }
    return outcome;
  }

  static Revision find(const ReportBook& book, const Request& req) {
    const auto month = month_param(req);
    const auto number = revision_param(req);
    auto r = book.revision(month, number);
    if (!r) {
      throw slmhub::NotFound("availability report " + slmhub::format_month(month) +
                             " has no revision " + std::to_string(number));
    }
    return std::move(*r);
  }

  // GET /api/v1/reports/availability?month=YYYY-MM[&as_of=ISO]: the same JSON as the
  // offline command, computed from what the store holds now.
  static Response live_report(const slmhub::Catalog& catalog, const slmhub::Clock& clock,
                              const Request& req) {
    std::vector<slmhub::FieldError> errors;
    date::year_month month{};
    std::optional<slmhub::Instant> as_of;
    try {
      month = slmhub::parse_month(req.query_param("month"));
    } catch (const std::exception& e) {
      errors.push_back({"month", std::string(e.what()) + " (month=YYYY-MM is required)"});
    }
    if (auto text = req.query_param("as_of"); !text.empty()) {
      try {
        as_of = slmhub::parse_instant(text);
      } catch (const std::exception& e) {
        errors.push_back({"as_of", e.what()});
      }
    }
    if (!errors.empty()) throw slmhub::ValidationError(errors);
    const slmhub::Dataset dataset = catalog.snapshot();
    // Without as_of, a month still under way is measured up to now, as a draft is (open
    // interruptions are not counted into hours that have not happened), and says so.
    bool cut_here = false;
    const slmhub::Interval span = month_span(dataset, month);
    if (!as_of) {
      if (const slmhub::Instant now = clock.now(); now < span.end) {
        as_of = now;
        cut_here = true;
      }
    }
    // Before the month begins nothing is measured: every service "met" at 100 % is no report.
    if (as_of && *as_of < span.start) {
      throw slmhub::ValidationError(cut_here ? "month" : "as_of",
                                    (cut_here ? slmhub::format_month(month) + " has not begun"
                                              : slmhub::format_instant(*as_of) + " is before " +
                                                    slmhub::format_month(month) + " begins") +
                                        " (it starts " + slmhub::format_instant(span.start) + ")");
    }
    Json out = report_to_json(compute(dataset, month, as_of));
    if (cut_here) out["as_of"] = slmhub::format_instant(*as_of);
    return Response::json(out);
  }

  std::unique_ptr<ReportBook> book_;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<Availability>(); }

}  // namespace

SLMHUB_PLUGIN(create)
