// Broken on purpose: start() registers a route and then throws. The host must report it
// and must not serve the route it registered before failing.
#include <stdexcept>

#include "slmhub/plugin.hpp"

namespace {

class BrokenStart : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"broken_start", "0.0.1", slmhub::kPluginApi, {}};
  }
  void start(slmhub::Host& host) override {
    host.http().add({"GET", "/api/v1/half-started", "viewer",
                     [](const slmhub::Request&) { return slmhub::Response::json({}); }, ""});
    throw std::runtime_error("cannot reach the billing system at billing.example.org");
  }
  void stop() override {}
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<BrokenStart>(); }

}  // namespace

SLMHUB_PLUGIN(create)
