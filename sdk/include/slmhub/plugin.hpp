// The plugin boundary. A plugin is a shared library exporting one factory through
// Boost.DLL under the alias `slmhub_create_plugin`; the host checks `info().api` before
// it calls anything else, starts plugins in `needs` order and stops them in reverse.
// Everything a plugin may use comes through `Host`: no globals, no Application::instance().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "slmhub/catalog.hpp"
#include "slmhub/commands.hpp"
#include "slmhub/config.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/events.hpp"
#include "slmhub/http.hpp"
#include "slmhub/log.hpp"
#include "slmhub/scheduler.hpp"
#include "slmhub/store.hpp"

namespace slmhub {

// Bumped whenever a type or virtual function in the SDK changes incompatibly.
inline constexpr int kPluginApi = 9;

struct PluginInfo {
  std::string name;     // unique; the config subtree is plugins.<name>
  std::string version;  // the plugin's own version
  int api = kPluginApi;
  std::vector<std::string> needs;  // plugins that must start first
};

class Host {
 public:
  virtual ~Host() = default;
  virtual const Config& config() const = 0;  // this plugin's subtree
  virtual Logger& log() = 0;
  virtual const Clock& clock() const = 0;
  virtual Catalog& catalog() = 0;
  virtual Tickets& tickets() = 0;
  virtual Store& store() = 0;
  virtual Events& events() = 0;
  virtual Outbox& outbox() = 0;
  virtual Scheduler& scheduler() = 0;
  virtual Deadlines& deadlines() = 0;
  virtual HttpRoutes& http() = 0;
  virtual Commands& commands() = 0;
  virtual const Secrets& secrets() const = 0;
  // Whether this process is the server (`slmhub serve`). A CLI command (`slmhub jobs run`,
  // `slmhub plugins`) starts the plugins too, for their jobs and commands, often beside a
  // running server: a plugin opens its listeners (an LMTP port) only when this is true.
  virtual bool serving() const = 0;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual PluginInfo info() const = 0;
  // Keys, types and defaults of plugins.<name>.*; the host refuses to start a plugin whose
  // configuration does not fit.
  virtual std::vector<ConfigKey> config_schema() const { return {}; }
  // Registers commands that need nothing of a running server (no store, no events), such as
  // offline report tools. When the command line names no built-in command the host calls it
  // without start(), so such a tool never opens a database; a server also calls it just
  // before start(), so the commands are listed with the plugin's other registrations. It may
  // therefore run more than once and must do nothing but register. Commands that need the
  // store register through Host::commands() in start(). Throwing marks the plugin failed.
  virtual void register_offline_commands(Commands& /*commands*/) {}
  // Registers routes, jobs, commands that need the server, and subscriptions. Throwing marks
  // the plugin failed and the host keeps serving with the others.
  virtual void start(Host& host) = 0;
  // Drains work; no calls into the host afterwards.
  virtual void stop() = 0;
};

// The factory signature every plugin exports as `slmhub_create_plugin`.
using PluginFactory = std::unique_ptr<Plugin>();

}  // namespace slmhub

// Exports a plugin: the API version it was built against (`slmhub_plugin_api`, read and
// checked by the host before it calls anything in the library) and the factory
// (`slmhub_create_plugin`, a function returning std::unique_ptr<slmhub::Plugin>). Spelled
// out here rather than with BOOST_DLL_ALIAS so plugin code needs no Boost headers; the host
// imports both with boost::dll::shared_library::get.
#define SLMHUB_PLUGIN(factory)                                                                     \
  extern "C" {                                                                                     \
  __attribute__((visibility("default"))) extern const int slmhub_plugin_api;                       \
  const int slmhub_plugin_api = slmhub::kPluginApi;                                                \
  __attribute__((visibility("default"))) extern slmhub::PluginFactory* const slmhub_create_plugin; \
  slmhub::PluginFactory* const slmhub_create_plugin = &factory;                                    \
  }
