#include "plugins/plugin_manager.hpp"

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

namespace slmhub::host {

std::string to_string(PluginState state) {
  switch (state) {
    case PluginState::loaded:
      return "loaded";
    case PluginState::started:
      return "started";
    case PluginState::failed:
      return "failed";
    case PluginState::stopped:
      return "stopped";
  }
  return "unknown";
}

// Member order matters: `library` is declared first so it is destroyed last, after the
// plugin object whose code lives in it.
struct PluginManager::Loaded {
  boost::dll::shared_library library;
  std::unique_ptr<Plugin> plugin;
  PluginRecord record;
};

PluginManager::PluginManager() = default;
PluginManager::~PluginManager() { stop_all(); }

namespace {

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// Holds one plugin's offline commands until register_offline_commands() has returned, so a
// plugin that throws half-way registers none.
struct CommandBuffer : Commands {
  void add(CommandSpec command) override { commands.push_back(std::move(command)); }
  std::vector<CommandSpec> commands;
};

}  // namespace

void PluginManager::load_dirs(const std::vector<std::string>& dirs,
                              const std::vector<std::string>& enabled) {
  std::vector<std::filesystem::path> files;
  for (const auto& dir : dirs) {
    if (!std::filesystem::is_directory(dir)) continue;
    std::vector<std::filesystem::path> here;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".so")
        here.push_back(entry.path());
    }
    if (ec) throw std::runtime_error("plugins.dir " + dir + ": " + ec.message());
    std::sort(here.begin(), here.end());
    files.insert(files.end(), here.begin(), here.end());
  }

  // With plugins.enabled set, a library runs no code of its own unless it may be an enabled
  // plugin: those named after one (NAME.so, libNAME.so) are opened first, and the others only
  // while an enabled plugin is still missing (its library named otherwise), to look for it.
  auto name_of_file = [](const std::filesystem::path& file) {
    std::string name = file.stem().string();
    return name.starts_with("lib") ? name.substr(3) : name;
  };
  auto is_enabled = [&enabled](const std::string& name) {
    return std::find(enabled.begin(), enabled.end(), name) != enabled.end();
  };
  if (!enabled.empty()) {
    std::stable_partition(files.begin(), files.end(),
                          [&](const auto& file) { return is_enabled(name_of_file(file)); });
  }
  std::set<std::string> found;
  for (const auto& file : files) {
    if (!enabled.empty() && !is_enabled(name_of_file(file)) &&
        std::all_of(enabled.begin(), enabled.end(),
                    [&found](const std::string& name) { return found.contains(name); })) {
      break;  // every enabled plugin is found; the libraries left are not opened
    }
    auto loaded = std::make_unique<Loaded>();
    auto& rec = loaded->record;
    rec.path = file.string();
    rec.name = name_of_file(file);
    try {
      loaded->library.load(file.string(),
                           boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
      rec.reason = "cannot load the library: " + one_line(e.what());
      plugins_.push_back(std::move(loaded));
      continue;
    }
    // The API version is checked before any code of the plugin runs.
    if (!loaded->library.has("slmhub_plugin_api")) {
      rec.reason = "not a slmhub plugin: it exports no slmhub_plugin_api (use SLMHUB_PLUGIN)";
    } else if (int api = loaded->library.get<const int>("slmhub_plugin_api"); api != kPluginApi) {
      rec.reason = "built for plugin API " + std::to_string(api) + ", this host speaks API " +
                   std::to_string(kPluginApi) + ": rebuild it against this SDK";
    } else if (!loaded->library.has("slmhub_create_plugin")) {
      rec.reason = "no factory: the library exports no slmhub_create_plugin";
    } else {
      try {
        auto* factory = loaded->library.get<PluginFactory* const>("slmhub_create_plugin");
        loaded->plugin = factory();
        if (!loaded->plugin) throw std::runtime_error("the factory returned no plugin");
        PluginInfo info = loaded->plugin->info();
        if (info.api != kPluginApi)
          throw std::runtime_error("info() reports API " + std::to_string(info.api) +
                                   ", this host speaks API " + std::to_string(kPluginApi));
        rec.name = info.name;
        rec.version = info.version;
        rec.needs = info.needs;
        rec.config = loaded->plugin->config_schema();
        rec.state = PluginState::loaded;
      } catch (const std::exception& e) {
        loaded->plugin.reset();
        rec.reason = "the factory failed: " + one_line(e.what());
      }
    }
    if (!enabled.empty() && !is_enabled(rec.name)) {
      continue;  // opened while looking for an enabled plugin: closed again, not listed
    }
    if (rec.state == PluginState::loaded) found.insert(rec.name);
    plugins_.push_back(std::move(loaded));
  }

  std::set<std::string> seen;
  for (auto& p : plugins_) {
    if (p->record.state != PluginState::loaded) continue;
    if (!seen.insert(p->record.name).second) {
      p->record.state = PluginState::failed;
      p->record.reason = "another library already provides the plugin '" + p->record.name + "'";
      p->plugin.reset();
    }
  }
  for (const auto& name : enabled) {
    if (!seen.contains(name)) {
      std::string detail;
      for (const auto& p : plugins_) {
        if (p->record.name == name) detail = ": " + p->record.reason;
      }
      std::string where;
      for (const auto& dir : dirs) where += (where.empty() ? "" : ", ") + dir;
      throw std::runtime_error("enabled plugin '" + name + "' is not available in " + where +
                               detail);
    }
  }
}

void PluginManager::register_offline_commands(const AddCommands& add) {
  for (auto& p : plugins_) {
    if (p->record.state != PluginState::loaded) continue;
    try {
      CommandBuffer buffer;
      p->plugin->register_offline_commands(buffer);
      add(std::move(buffer.commands), p->record.name);
    } catch (const std::exception& e) {
      p->record.state = PluginState::failed;
      p->record.reason = "register_offline_commands() failed: " + one_line(e.what());
    }
  }
}

void PluginManager::start_all(const HostFactory& make_host, const Forget& forget) {
  std::map<std::string, Loaded*> by_name;
  for (auto& p : plugins_) {
    if (p->record.state == PluginState::loaded) by_name[p->record.name] = p.get();
  }
  // Depth-first topological order; a cycle or a missing need fails the plugins involved.
  std::map<std::string, int> mark;  // 1 visiting, 2 done
  std::function<bool(Loaded*)> visit = [&](Loaded* p) -> bool {
    auto& m = mark[p->record.name];
    if (m == 2) return p->record.state == PluginState::started;
    if (m == 1) {
      p->record.reason = "its needs form a cycle";
      return false;
    }
    m = 1;
    for (const auto& need : p->record.needs) {
      auto it = by_name.find(need);
      if (it == by_name.end()) {
        p->record.state = PluginState::failed;
        p->record.reason = "needs the plugin '" + need + "', which is not loaded";
      } else if (!visit(it->second)) {
        p->record.state = PluginState::failed;
        p->record.reason = "needs the plugin '" + need + "', which did not start";
      }
      if (p->record.state == PluginState::failed) break;
    }
    if (p->record.state == PluginState::loaded) {
      bool starting = false;
      try {
        Host& host = make_host(p->record);
        starting = true;
        p->plugin->register_offline_commands(host.commands());
        p->plugin->start(host);
        p->record.state = PluginState::started;
        start_order_.push_back(p);
      } catch (const std::exception& e) {
        p->record.state = PluginState::failed;
        p->record.reason = "start() failed: " + one_line(e.what());
        // What start() set going before it threw (a listener, a thread) would go on calling
        // into a Host about to be destroyed: the plugin is stopped and destroyed first.
        if (starting) {
          try {
            p->plugin->stop();
          } catch (...) {
            // Already failed; the reason above is the one to report.
          }
        }
        p->plugin.reset();
        forget(p->record.name);
      }
    }
    m = 2;
    return p->record.state == PluginState::started;
  };
  for (auto& [name, p] : by_name) visit(p);
}

void PluginManager::stop_all() {
  for (auto it = start_order_.rbegin(); it != start_order_.rend(); ++it) {
    try {
      (*it)->plugin->stop();
    } catch (...) {
      // A plugin that fails to stop must not keep the others from stopping.
    }
    (*it)->record.state = PluginState::stopped;
  }
  start_order_.clear();
  for (auto& p : plugins_) p->plugin.reset();
}

std::vector<PluginRecord> PluginManager::records() const {
  std::vector<PluginRecord> out;
  for (const auto& p : plugins_) out.push_back(p->record);
  return out;
}

std::vector<Plugin*> PluginManager::started() const {
  std::vector<Plugin*> out;
  for (auto* p : start_order_) out.push_back(p->plugin.get());
  return out;
}

}  // namespace slmhub::host
