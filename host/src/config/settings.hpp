// The server's configuration: one properties file (`key = value`, `#` comments; see
// config/slmhub.example.properties, where every key is documented), overridden per key by
// the environment (`db.url` <- SLMHUB_DB_URL), checked against the host's schema and each
// plugin's schema before anything starts. Secret values come from files or the environment
// and are never logged.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "slmhub/config.hpp"

namespace slmhub::host {

class Settings {
 public:
  Settings() = default;
  // Throws std::runtime_error "FILE:LINE: ..." for a malformed line; a missing file is an
  // error too (the caller decides whether to run on defaults).
  static Settings load(const std::string& path);
  static std::string env_name(const std::string& key);

  // The environment wins over the file.
  std::optional<std::string> get(const std::string& key) const;
  std::string string(const std::string& key) const;  // with the host default
  std::int64_t integer(const std::string& key) const;
  bool boolean(const std::string& key) const;
  void set(const std::string& key, const std::string& value) { values_[key] = value; }

  // Keys present in the file under `prefix` ("plugins.availability."), without the prefix.
  std::vector<std::string> file_keys(const std::string& prefix) const;
  // Refuses unknown host keys and values of the wrong type; one message per problem.
  std::vector<std::string> validate_host_keys() const;
  // Keys of the file under `plugins.NAME.` for a NAME none of `plugins` has (a misspelt or
  // removed plugin): one message per key, naming its line, for a warning. Such keys do not
  // stop the server, as a plugin that fails to load does not.
  std::vector<std::string> orphan_plugin_keys(const std::set<std::string>& plugins) const;
  const std::string& source() const { return source_; }
  // Directory of the config file: relative paths in the file are taken from there.
  std::string resolve_path(const std::string& path) const;

  static const std::vector<ConfigKey>& host_schema();

 private:
  // Where `key` is set: "environment SLMHUB_X", else "FILE:LINE", else the source.
  std::string location(const std::string& key) const;

  std::map<std::string, std::string> values_;
  std::map<std::string, int> lines_;
  std::string source_ = "(defaults)";
  std::string base_dir_ = ".";
};

// A plugin's view: its subtree, defaults from its schema, environment overrides.
class PluginConfig : public Config {
 public:
  PluginConfig(const Settings& settings, std::string plugin, std::vector<ConfigKey> schema);
  std::optional<std::string> get(const std::string& key) const override;
  std::vector<std::string> keys() const override;
  // Problems with the plugin's configuration: unknown keys, missing required ones, values
  // that do not convert. Empty when it may start.
  std::vector<std::string> validate() const;

 private:
  const Settings& settings_;
  std::string prefix_;
  std::vector<ConfigKey> schema_;
};

class SettingsSecrets : public Secrets {
 public:
  explicit SettingsSecrets(const Settings& settings) : settings_(settings) {}
  std::optional<std::string> get(const std::string& name) const override;

 private:
  const Settings& settings_;
};

}  // namespace slmhub::host
