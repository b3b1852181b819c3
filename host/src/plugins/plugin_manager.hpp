// Finds, checks, orders, starts and stops plugins (DESIGN.md §2).
//
// Each library in plugins.dir is opened with Boost.DLL; `slmhub_plugin_api` is read and
// compared with kPluginApi before anything in the library runs; then the factory is called.
// A library that cannot be loaded, speaks another API, has no factory, throws from start()
// or register_offline_commands(), or needs a plugin that is not running is reported with
// its path and a one-line reason, and the rest keep running. Libraries stay loaded until
// the manager is destroyed, which happens after everything that holds callbacks into them
// (STYLE.md shutdown order).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slmhub/plugin.hpp"

namespace slmhub::host {

enum class PluginState { loaded, started, failed, stopped };
std::string to_string(PluginState state);

struct PluginRecord {
  std::string path;
  std::string name;  // from info(); the file name when it never got that far
  std::string version;
  PluginState state = PluginState::failed;
  std::string reason;  // why it failed, one line
  std::vector<std::string> needs;
  std::vector<ConfigKey> config;  // the keys it reads under plugins.<name>.
};

class PluginManager {
 public:
  // `make_host` gives the Host a plugin's start() receives, from the plugin's record (its
  // name, and the configuration schema read at load); `forget` undoes what a plugin
  // registered when its start() fails.
  using HostFactory = std::function<Host&(const PluginRecord& plugin)>;
  using Forget = std::function<void(const std::string& name)>;
  // Takes every command one plugin registered offline, under the plugin's name.
  using AddCommands =
      std::function<void(std::vector<CommandSpec> commands, const std::string& name)>;

  PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;
  ~PluginManager();

  // Loads every *.so in `dirs`, in order (all of them when `enabled` is empty, else only
  // those whose plugin name is listed). A directory that does not exist is skipped. Throws
  // std::runtime_error when an enabled plugin is missing.
  void load_dirs(const std::vector<std::string>& dirs, const std::vector<std::string>& enabled);
  // Hands each loaded plugin's offline commands (Plugin::register_offline_commands) to `add`,
  // starting nothing. A plugin that throws, or whose commands `add` refuses, is marked failed
  // like one whose start() throws, so it is not started afterwards either.
  void register_offline_commands(const AddCommands& add);
  // Starts loaded plugins in dependency order; each one's offline commands are registered
  // through its Host just before its start().
  void start_all(const HostFactory& make_host, const Forget& forget);
  // Stops started plugins in reverse start order; then destroys the plugin objects.
  void stop_all();

  std::vector<PluginRecord> records() const;
  std::vector<Plugin*> started() const;

 private:
  struct Loaded;
  std::vector<std::unique_ptr<Loaded>> plugins_;
  std::vector<Loaded*> start_order_;
};

}  // namespace slmhub::host
