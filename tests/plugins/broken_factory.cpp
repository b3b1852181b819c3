// Broken on purpose: declares the API version but exports no factory.
#include "slmhub/plugin.hpp"

extern "C" {
__attribute__((visibility("default"))) extern const int slmhub_plugin_api;
const int slmhub_plugin_api = slmhub::kPluginApi;
}
