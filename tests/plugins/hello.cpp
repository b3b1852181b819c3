// A small, well-behaved plugin for the runtime tests: a route, a job, a command, an event
// subscription and a config schema, each observable from outside.
#include <atomic>
#include <ostream>

#include "slmhub/plugin.hpp"

namespace {

class Hello : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override { return {"hello", "1.0.0", slmhub::kPluginApi, {}}; }
  std::vector<slmhub::ConfigKey> config_schema() const override {
    return {{"greeting", slmhub::ConfigType::string, "hello", "what GET /api/v1/hello answers"}};
  }
  void start(slmhub::Host& host) override {
    std::string greeting = host.config().string("greeting");
    host.http().add(
        {"GET", "/api/v1/hello", "viewer",
         [greeting, this](const slmhub::Request&) {
           return slmhub::Response::json({{"greeting", greeting}, {"events_seen", seen_.load()}});
         },
         "a greeting"});
    host.scheduler().add(
        {"hello.tick", "*/5 * * * *", "UTC", "counts ticks", [](const slmhub::JobContext& c) {
           return "tick for " + slmhub::format_instant(c.scheduled_for);
         }});
    host.commands().add(
        {"hello greet", "[NAME]", "prints a greeting",
         [greeting](const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
           out << greeting << " " << (args.empty() ? "world" : args[0]) << "\n";
           return 0;
         }});
    host.events().subscribe("counter", {"interruption.*"},
                            [this](const slmhub::Event&) { ++seen_; });
  }
  void stop() override {}

 private:
  std::atomic<int> seen_{0};
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<Hello>(); }

}  // namespace

SLMHUB_PLUGIN(create)
