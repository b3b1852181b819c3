// The availability plugin module: registers `slmhub report availability` and the served
// report. All logic is in slmhub_availability_core; this file only wires it into the host.
#include "slmhub/plugin.hpp"
#include "command.hpp"
#include "engine.hpp"
#include "report_json.hpp"
#include "slmhub/errors.hpp"

namespace {

class Availability : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"availability", "0.1.0", slmhub::kPluginApi, {}};
  }
  void start(slmhub::Host& host) override {
    host.commands().add(
        {slmhub::availability::kReportCommandName, slmhub::availability::kReportCommandUsage,
         slmhub::availability::kReportCommandHelp, &slmhub::availability::run_report_command});
    slmhub::Catalog& catalog = host.catalog();
    host.http().add({"GET", "/api/v1/reports/availability", "viewer",
                     [&catalog](const slmhub::Request& req) { return served_report(catalog, req); },
                     "the month's availability report from the store (DESIGN.md §5.4)"});
  }
  void stop() override {}

 private:
  // GET /api/v1/reports/availability?month=YYYY-MM[&as_of=ISO]: the same JSON as the
  // offline command, computed from what the store holds now.
  static slmhub::Response served_report(const slmhub::Catalog& catalog,
                                        const slmhub::Request& req) {
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
    auto report = slmhub::availability::compute(catalog.snapshot(), month, as_of);
    return slmhub::Response::json(slmhub::availability::report_to_json(report));
  }
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<Availability>(); }

}  // namespace

SLMHUB_PLUGIN(create)
