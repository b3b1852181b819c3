// Broken on purpose: needs a plugin that is not installed.
#include "slmhub/plugin.hpp"

namespace {

class BrokenNeeds : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"broken_needs", "0.0.1", slmhub::kPluginApi, {"does_not_exist"}};
  }
  void start(slmhub::Host&) override {}
  void stop() override {}
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<BrokenNeeds>(); }

}  // namespace

SLMHUB_PLUGIN(create)
