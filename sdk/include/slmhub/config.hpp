// Configuration as a plugin sees it: its own subtree (`plugins.<name>.*`), already checked
// against the schema the plugin published, with defaults filled in. Values are text in
// the file and in environment overrides; typed getters convert and the schema has
// already refused values that would not convert.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slmhub {

// `zone` (an IANA time zone) and `cron` (a 5-field schedule) are text the host checks at
// start, naming the key, so that a typo stops the plugin with the key named rather than
// surfacing later from whatever reads it. An empty value passes: what it means (none, never,
// the provider's zone) is the plugin's to say.
enum class ConfigType { string, integer, boolean, list, zone, cron };
const char* to_string(ConfigType type);  // "string", "integer", ..., "cron"

struct ConfigKey {
  std::string key;  // relative to the plugin's subtree, e.g. "report.due_business_days"
  ConfigType type = ConfigType::string;
  std::string default_value;  // text form; "" with required=false means "unset"
  std::string help;           // one line, shown by `slmhub plugins list --verbose`
  bool required = false;
};

class Config {
 public:
  virtual ~Config() = default;
  virtual std::optional<std::string> get(const std::string& key) const = 0;
  virtual std::vector<std::string> keys() const = 0;

  std::string string(const std::string& key, const std::string& fallback = {}) const;
  std::int64_t integer(const std::string& key, std::int64_t fallback = 0) const;
  bool boolean(const std::string& key, bool fallback = false) const;
  std::vector<std::string> list(const std::string& key) const;  // comma-separated
};

// Splits a comma-separated list value, trimming blanks and dropping empty items.
std::vector<std::string> split_config_list(const std::string& text);

// Parses the text forms the config file accepts; std::invalid_argument says why not.
std::int64_t parse_config_integer(const std::string& key, const std::string& text);
bool parse_config_boolean(const std::string& key, const std::string& text);

class Secrets {
 public:
  virtual ~Secrets() = default;
  // `secrets.<name>.file` (read at start, trailing newline trimmed) or the environment
  // variable SLMHUB_SECRET_<NAME>. Never logged.
  virtual std::optional<std::string> get(const std::string& name) const = 0;
};

}  // namespace slmhub
