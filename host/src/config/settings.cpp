#include "config/settings.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "app/logger.hpp"
#include "slmhub/cron.hpp"
#include "slmhub/domain.hpp"
#include "slmhub/time.hpp"

namespace slmhub::host {
namespace {

std::string trim(const std::string& s) {
  auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

const ConfigKey* find_key(const std::vector<ConfigKey>& schema, const std::string& key) {
  for (const auto& k : schema) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

std::string check_type(const ConfigKey& k, const std::string& name, const std::string& value) {
  try {
    if (k.type == ConfigType::integer) parse_config_integer(name, value);
    if (k.type == ConfigType::boolean) parse_config_boolean(name, value);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  try {
    if (k.type == ConfigType::zone && !value.empty()) find_zone(value);
    if (k.type == ConfigType::cron && !value.empty()) CronExpression::parse(value);
  } catch (const std::invalid_argument& e) {  // TimeError, CronError
    return name + ": " + e.what();
  }
  return {};
}

// Every host integer key has a range, checked before anything starts: a value the server
// cannot run with is a configuration error naming the key and its line, not an assertion of
// the library it reaches (Poco's thread pool) or a port number cut to 16 bits.
struct Bounds {
  const char* key;
  std::int64_t min;
  std::int64_t max;
  const char* meaning;
};
constexpr std::int64_t kDay = 86'400;
constexpr Bounds kBounded[] = {
    {"http.port", 0, 65'535, "a TCP port; 0 picks a free one"},
    {"http.threads", 2, 10'000, "the pool keeps two threads at least"},
    {"http.max_queued", 1, 1'000'000, "connections"},
    {"http.max_body_bytes", 1, std::int64_t{1} << 31, "up to 2 GiB"},
    {"http.max_header_count", 1, 10'000, "header fields"},
    {"http.max_header_bytes", 1'024, 16 << 20, "1 KiB to 16 MiB"},
    {"http.max_json_depth", 1, 10'000, "levels"},
    {"http.request_timeout_ms", 1, 3'600'000, "up to an hour"},
    {"auth.max_failures", 0, 1'000'000, "failures; 0: no limit"},
    {"auth.failure_window_seconds", 1, kDay, "up to a day"},
    {"db.group_commit_max", 1, 100'000, "writes"},
    {"events.poll_ms", 1, 3'600'000, "up to an hour"},
    {"events.retry_max_ms", 1'000, 7 * kDay * 1000, "the first back-off is a second; a week"},
    {"events.lease_seconds", 1, kDay, "up to a day"},
    {"outbox.max_attempts", 1, 1'000, "attempts"},
    {"outbox.initial_backoff_seconds", 1, kDay, "up to a day"},
    {"outbox.max_backoff_seconds", 1, 30 * kDay, "up to thirty days"},
    {"outbox.concurrency", 1, 64, "messages sent at once"},
    {"outbox.claim_timeout_seconds", 1, kDay, "up to a day"},
    {"events.keep_days", 0, 36'500, "a hundred years"},
    {"outbox.keep_days", 0, 36'500, "a hundred years"},
    {"jobs.tick_ms", 1, 3'600'000, "up to an hour"},
    {"jobs.lease_seconds", 1, kDay, "up to a day"},
    {"jobs.keep_days", 1, 36'500, "a hundred years"},
    {"deadlines.warn_business_days", 0, 365, "business days"},
    {"tickets.first_response_minutes.incident", 0, 525'600, "business minutes; 0: none"},
    {"tickets.first_response_minutes.service_request", 0, 525'600, "business minutes; 0: none"},
};

// Host keys whose items are e-mail addresses.
bool holds_addresses(const std::string& key) {
  return key.starts_with("deadlines.notify.") || key == "deadlines.escalate" ||
         key == "tickets.escalate";
}

}  // namespace

const std::vector<ConfigKey>& Settings::host_schema() {
  using T = ConfigType;
  static const std::vector<ConfigKey> kSchema{
      {"http.host", T::string, "127.0.0.1", "address the HTTP server binds"},
      {"http.port", T::integer, "8080", "TCP port; 0 picks a free one (printed at start)"},
      {"http.threads", T::integer, "64",
       "request threads; Poco serves a keep-alive connection on one thread, so this bounds "
       "concurrent connections"},
      {"http.max_queued", T::integer, "256", "accepted connections waiting for a worker"},
      {"http.max_body_bytes", T::integer, "1048576", "largest request body (413 above)"},
      {"http.max_header_count", T::integer, "64", "most request header fields (431 above)"},
      {"http.max_header_bytes", T::integer, "16384", "largest total header size (431 above)"},
      {"http.max_json_depth", T::integer, "64", "deepest JSON nesting in a request body"},
      {"http.request_timeout_ms", T::integer, "30000",
       "time a client has to send a whole request (and the TLS handshake), from connecting or "
       "from the previous answer; also each socket read and write"},
      {"http.tls.cert_file", T::string, "",
       "PEM certificate (then its chain) for HTTPS; empty: plain HTTP. Read again on SIGHUP"},
      {"http.tls.key_file", T::string, "", "PEM private key of http.tls.cert_file (unencrypted)"},
      {"auth.max_failures", T::integer, "10",
       "invalid tokens a client address may present per auth.failure_window_seconds before it "
       "gets 429; 0: no limit"},
      {"auth.failure_window_seconds", T::integer, "60", "see auth.max_failures"},
      {"http.public_url", T::string, "", "URL printed at start and used in links"},
      {"db.url", T::string, "sqlite:var/slmhub.db", "sqlite:PATH or postgresql://..."},
      {"db.group_commit_max", T::integer, "512", "most writes committed in one transaction"},
      {"plugins.dir", T::list, "",
       "directories of plugin libraries, comma-separated (default: ../plugins from the binary)"},
      {"plugins.enabled", T::list, "", "plugins to load; empty: every library in plugins.dir"},
      {"log.level", T::string, "information", "debug, information, warning or error"},
      {"auth.admin_token_file", T::string, "var/admin.token",
       "where the admin token generated on first start is written (mode 0600)"},
      {"events.poll_ms", T::integer, "200", "how often the event dispatcher looks for work"},
      {"events.retry_max_ms", T::integer, "300000", "longest back-off for a failing handler"},
      {"events.lease_seconds", T::integer, "30",
       "how long a subscriber stays with the instance delivering to it without renewal"},
      {"outbox.max_attempts", T::integer, "10", "attempts before a message is a dead letter"},
      {"outbox.initial_backoff_seconds", T::integer, "10",
       "wait before the first retry of a failed send; doubled each time"},
      {"outbox.max_backoff_seconds", T::integer, "3600", "longest wait between retries"},
      {"outbox.concurrency", T::integer, "4",
       "messages sent at once, each on its own connection (1 to 64); messages to one "
       "destination are sent in order"},
      {"outbox.claim_timeout_seconds", T::integer, "600",
       "a message an instance claimed for sending and did not finish (it died) is sent again "
       "after this; longer than the slowest send"},
      {"events.keep_days", T::integer, "30",
       "days an event is kept once every subscriber has handled it (0 to 36500); the daily "
       "job housekeeping.prune deletes older ones"},
      {"outbox.keep_days", T::integer, "30",
       "days a sent message is kept whole (0 to 36500); then housekeeping.prune deletes it, "
       "or, when it has a dedupe key, keeps the row without its body and headers"},
      {"jobs.tick_ms", T::integer, "1000", "how often the scheduler checks for due jobs"},
      {"jobs.lease_seconds", T::integer, "60",
       "how long a job lease lasts without renewal (renewed every third of it while running)"},
      {"jobs.keep_days", T::integer, "90",
       "days a job run's record is kept (1 to 36500); each job's latest scheduled run is "
       "always kept, since the scheduler reads it to catch up on missed runs"},
      {"housekeeping.prune_schedule", T::cron, "47 2 * * *",
       "cron schedule (UTC) of the job that deletes handled events, sent messages and job "
       "runs past their days"},
      {"deadlines.watch_schedule", T::cron, "*/15 * * * *",
       "cron schedule (UTC) of the deadline watch"},
      {"deadlines.warn_business_days", T::integer, "3",
       "warn a deadline's owner this many business days ahead"},
      {"deadlines.notify_outside_business_hours", T::boolean, "false",
       "send deadline warnings and escalations outside the provider's business hours too"},
      {"deadlines.notify.service_manager", T::list, "",
       "e-mail addresses told about the deadlines service_manager owns (empty: events and log "
       "only)"},
      {"deadlines.notify.approver", T::list, "",
       "e-mail addresses told about the deadlines approver owns"},
      {"deadlines.notify.billing", T::list, "",
       "e-mail addresses told about the deadlines billing owns"},
      {"deadlines.notify.operator", T::list, "",
       "e-mail addresses told about the deadlines operator owns"},
      {"deadlines.notify.admin", T::list, "",
       "e-mail addresses told about the deadlines admin owns"},
      {"deadlines.escalate", T::list, "",
       "e-mail addresses told about every missed deadline, whoever owns it"},
      {"tickets.first_response_minutes.incident", T::integer, "30",
       "first-response target of an incident, in business minutes of the provider calendar"},
      {"tickets.first_response_minutes.service_request", T::integer, "540",
       "first-response target of a service request, in business minutes (540: one business "
       "day of 08:00-17:00)"},
      {"tickets.response_watch_schedule", T::cron, "*/5 * * * *",
       "cron (UTC) of the job that escalates tickets past their first-response target"},
      {"tickets.escalate", T::list, "",
       "e-mail addresses told when a ticket misses its first-response target (the secondary "
       "technical contact, the account manager)"},
      {"instance.id", T::string, "", "name of this instance in leases (default: host:pid)"},
  };
  return kSchema;
}

std::string Settings::env_name(const std::string& key) {
  std::string name = "SLMHUB_";
  for (char c : key) {
    name += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(c));
  }
  return name;
}

Settings Settings::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the configuration file");
  Settings s;
  s.source_ = path;
  s.base_dir_ = std::filesystem::absolute(path).parent_path().string();
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto text = trim(line);
    if (text.empty() || text[0] == '#' || text[0] == '!') continue;
    auto eq = text.find('=');
    if (eq == std::string::npos)
      throw std::runtime_error(path + ":" + std::to_string(number) +
                               ": expected 'key = value', found '" + text + "'");
    auto key = trim(text.substr(0, eq));
    if (key.empty()) throw std::runtime_error(path + ":" + std::to_string(number) + ": empty key");
    if (s.lines_.contains(key))
      throw std::runtime_error(path + ":" + std::to_string(number) + ": '" + key +
                               "' is already set on line " + std::to_string(s.lines_[key]));
    s.values_[key] = trim(text.substr(eq + 1));
    s.lines_[key] = number;
  }
  return s;
}

std::optional<std::string> Settings::get(const std::string& key) const {
  if (const char* env = std::getenv(env_name(key).c_str())) return std::string(env);
  auto it = values_.find(key);
  if (it != values_.end()) return it->second;
  return std::nullopt;
}

std::string Settings::string(const std::string& key) const {
  if (auto v = get(key)) return *v;
  if (auto k = find_key(host_schema(), key)) return k->default_value;
  return {};
}

std::int64_t Settings::integer(const std::string& key) const {
  return parse_config_integer(key, string(key));
}

bool Settings::boolean(const std::string& key) const {
  return parse_config_boolean(key, string(key));
}

std::vector<std::string> Settings::file_keys(const std::string& prefix) const {
  std::vector<std::string> keys;
  for (const auto& [k, v] : values_) {
    if (k.starts_with(prefix)) keys.push_back(k.substr(prefix.size()));
  }
  return keys;
}

std::vector<std::string> Settings::validate_host_keys() const {
  std::vector<std::string> problems;
  for (const auto& [key, value] : values_) {
    if (key.starts_with("secrets.")) continue;
    if (key.starts_with("plugins.") && key != "plugins.dir" && key != "plugins.enabled")
      continue;  // checked against each plugin's schema
    const ConfigKey* k = find_key(host_schema(), key);
    if (!k) {
      problems.push_back(location(key) + ": unknown key '" + key + "'");
      continue;
    }
  }
  for (const auto& k : host_schema()) {
    if (auto v = get(k.key)) {
      auto problem = check_type(k, k.key, *v);
      if (!problem.empty()) problems.push_back(location(k.key) + ": " + problem);
      for (const Bounds& b : kBounded) {
        if (!problem.empty() || k.key != b.key) continue;
        const std::int64_t n = parse_config_integer(k.key, *v);
        if (n < b.min || n > b.max)
          problems.push_back(location(k.key) + ": '" + k.key + "' must be from " +
                             std::to_string(b.min) + " to " + std::to_string(b.max) + " (" +
                             b.meaning + "), found " + *v);
      }
      if (!holds_addresses(k.key)) continue;
      for (const auto& item : split_config_list(*v)) {
        if (!looks_like_email(item))
          problems.push_back(location(k.key) + ": '" + k.key +
                             "' expects e-mail addresses (local@domain), found '" + item + "'");
      }
    }
  }
  if (auto level = get("log.level"); level && !parse_log_level(*level)) {
    problems.push_back(location("log.level") +
                       ": 'log.level' must be debug, information, warning or error, found '" +
                       *level + "'");
  }
  if (problems.empty() &&
      integer("outbox.max_backoff_seconds") < integer("outbox.initial_backoff_seconds")) {
    problems.push_back(location("outbox.max_backoff_seconds") +
                       ": 'outbox.max_backoff_seconds' must be at least "
                       "'outbox.initial_backoff_seconds' (" +
                       std::to_string(integer("outbox.initial_backoff_seconds")) + ")");
  }
  return problems;
}

std::string Settings::location(const std::string& key) const {
  if (std::getenv(env_name(key).c_str())) return "environment " + env_name(key);
  const auto it = lines_.find(key);
  return it == lines_.end() ? source_ : source_ + ":" + std::to_string(it->second);
}

std::vector<std::string> Settings::orphan_plugin_keys(const std::set<std::string>& plugins) const {
  std::vector<std::string> out;
  for (const auto& [key, value] : values_) {
    if (!key.starts_with("plugins.") || key == "plugins.dir" || key == "plugins.enabled") continue;
    const std::string name = key.substr(8, key.find('.', 8) - 8);
    if (plugins.contains(name)) continue;
    out.push_back(location(key) + ": '" + key + "': no plugin '" + name +
                  "' is loaded; the key is ignored");
  }
  return out;
}

std::string Settings::resolve_path(const std::string& path) const {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir_) / path).lexically_normal().string();
}

PluginConfig::PluginConfig(const Settings& settings, std::string plugin,
                           std::vector<ConfigKey> schema)
    : settings_(settings), prefix_("plugins." + plugin + "."), schema_(std::move(schema)) {}

std::optional<std::string> PluginConfig::get(const std::string& key) const {
  if (auto v = settings_.get(prefix_ + key)) return v;
  if (auto k = find_key(schema_, key); k && !k->default_value.empty()) return k->default_value;
  return std::nullopt;
}

std::vector<std::string> PluginConfig::keys() const {
  std::vector<std::string> keys;
  for (const auto& k : schema_) keys.push_back(k.key);
  return keys;
}

std::vector<std::string> PluginConfig::validate() const {
  std::vector<std::string> problems;
  for (const auto& key : settings_.file_keys(prefix_)) {
    if (!find_key(schema_, key)) problems.push_back("unknown key '" + prefix_ + key + "'");
  }
  for (const auto& k : schema_) {
    auto v = get(k.key);
    if (!v) {
      if (k.required) problems.push_back("'" + prefix_ + k.key + "' is required: " + k.help);
      continue;
    }
    auto problem = check_type(k, prefix_ + k.key, *v);
    if (!problem.empty()) problems.push_back(problem);
  }
  return problems;
}

std::optional<std::string> SettingsSecrets::get(const std::string& name) const {
  std::string upper;
  for (char c : name) upper += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(c));
  if (const char* env = std::getenv(("SLMHUB_SECRET_" + upper).c_str())) return std::string(env);
  auto file = settings_.get("secrets." + name + ".file");
  if (!file) return std::nullopt;
  std::ifstream in(settings_.resolve_path(*file));
  if (!in) throw std::runtime_error("secret '" + name + "': cannot read " + *file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string value = buffer.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

}  // namespace slmhub::host
