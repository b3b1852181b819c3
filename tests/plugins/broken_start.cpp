// Broken on purpose: start() registers a route and then throws. The host must report it,
// must not serve the route it registered before failing, and must call stop() so that
// whatever start() set going stops before the Host it was given goes away.
#include <stdexcept>

#include "slmhub/plugin.hpp"

namespace {

class BrokenStart : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"broken_start", "0.0.1", slmhub::kPluginApi, {}};
  }
  void start(slmhub::Host& host) override {
    log_ = &host.log();
    host.http().add({"GET", "/api/v1/half-started", "viewer",
                     [](const slmhub::Request&) { return slmhub::Response::json({}); }, ""});
    throw std::runtime_error("cannot reach the billing system at billing.example.org");
  }
  void stop() override {
    if (log_) log_->warning("stop() after the failed start: what it set going is stopped");
    log_ = nullptr;
  }

 private:
  slmhub::Logger* log_ = nullptr;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<BrokenStart>(); }

}  // namespace

SLMHUB_PLUGIN(create)
