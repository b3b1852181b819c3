// The availability plugin module: registers `slmhub report availability`. All logic is in
// slmhub_availability_core; this file only wires it into the host.
#include "slmhub/plugin.hpp"
#include "command.hpp"

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
  }
  void stop() override {}
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<Availability>(); }

}  // namespace

SLMHUB_PLUGIN(create)
