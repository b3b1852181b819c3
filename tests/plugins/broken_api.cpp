// Broken on purpose: built against a plugin API this host does not speak. The host must
// refuse it before calling its factory (which would abort the process if called).
#include <cstdlib>

#include "slmhub/plugin.hpp"

extern "C" {
__attribute__((visibility("default"))) extern const int slmhub_plugin_api;
const int slmhub_plugin_api = 999;
__attribute__((visibility("default"))) std::unique_ptr<slmhub::Plugin> abort_if_called() {
  std::abort();
}
__attribute__((visibility("default"))) extern slmhub::PluginFactory* const slmhub_create_plugin;
slmhub::PluginFactory* const slmhub_create_plugin = &abort_if_called;
}
