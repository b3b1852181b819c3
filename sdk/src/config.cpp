#include "slmhub/config.hpp"

#include <charconv>
#include <stdexcept>

namespace slmhub {

std::int64_t parse_config_integer(const std::string& key, const std::string& text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw std::invalid_argument(key + ": '" + text + "' is not an integer");
  return value;
}

bool parse_config_boolean(const std::string& key, const std::string& text) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
  if (text == "false" || text == "no" || text == "off" || text == "0") return false;
  throw std::invalid_argument(key + ": '" + text + "' is not a boolean (true or false)");
}

std::string Config::string(const std::string& key, const std::string& fallback) const {
  return get(key).value_or(fallback);
}

std::int64_t Config::integer(const std::string& key, std::int64_t fallback) const {
  auto v = get(key);
  return v ? parse_config_integer(key, *v) : fallback;
}

bool Config::boolean(const std::string& key, bool fallback) const {
  auto v = get(key);
  return v ? parse_config_boolean(key, *v) : fallback;
}

std::vector<std::string> Config::list(const std::string& key) const {
  auto v = get(key);
  return v ? split_config_list(*v) : std::vector<std::string>{};
}

const char* to_string(ConfigType type) {
  switch (type) {
    case ConfigType::string:
      return "string";
    case ConfigType::integer:
      return "integer";
    case ConfigType::boolean:
      return "boolean";
    case ConfigType::list:
      return "list";
    case ConfigType::zone:
      return "zone";
    case ConfigType::cron:
      return "cron";
  }
  return "string";
}

std::vector<std::string> split_config_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    auto item = text.substr(start, comma - start);
    auto first = item.find_first_not_of(" \t");
    auto last = item.find_last_not_of(" \t");
    if (first != std::string::npos) items.push_back(item.substr(first, last - first + 1));
    start = comma + 1;
  }
  return items;
}

}  // namespace slmhub
