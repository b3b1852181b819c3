#include "text.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "slmhub/json.hpp"

namespace slmhub::mail {

bool has_space_or_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7F;
  });
}

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (const char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7F ? c : '?';
  }
  if (text.size() > max) out += "...";
  return out;
}

std::optional<std::string> take_line(std::string& buffer, std::size_t& begin, std::size_t max_line,
                                     const std::string& too_long) {
  const auto end = buffer.find('\n', begin);
  if (end != std::string::npos) {
    std::string line = buffer.substr(begin, end - begin);
    begin = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  if (buffer.size() - begin > max_line) throw std::runtime_error(too_long);
  buffer.erase(0, begin);
  begin = 0;
  return std::nullopt;
}

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string endpoint(const std::string& host, int port) {
  return host + ":" + std::to_string(port);
}

void check_server_settings(const std::string& what, const std::string& host, int port,
                           int timeout_ms) {
  const auto invalid = [&what](const std::string& problem) {
    throw std::invalid_argument(what + ": " + problem);
  };
  if (host.empty() || has_space_or_control(host)) {
    invalid("host " + quote_text(host) + " is not a host name or address");
  }
  if (port < 1 || port > 65535) {
    invalid("port " + std::to_string(port) + " is outside 1-65535");
  }
  if (timeout_ms <= 0) {
    invalid("timeout_ms " + std::to_string(timeout_ms) + " must be positive");
  }
}

}  // namespace slmhub::mail
