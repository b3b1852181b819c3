#include "app/logger.hpp"

#include <chrono>
#include <iostream>

namespace slmhub::host {

std::optional<LogLevel> parse_log_level(const std::string& text) {
  if (text == "debug") return LogLevel::debug;
  if (text == "information" || text == "info") return LogLevel::information;
  if (text == "warning") return LogLevel::warning;
  if (text == "error") return LogLevel::error;
  return std::nullopt;
}

void StderrLogger::write(LogLevel level, const std::string& message) {
  if (level < level_) return;
  static const char* kNames[] = {"debug", "info", "warning", "error"};
  auto line =
      format_instant(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())) +
      " " + kNames[static_cast<int>(level)] + " [" + source_ + "] " + message + "\n";
  std::lock_guard lock(mutex_);
  std::cerr << line << std::flush;
}

Instant SystemClock::now() const {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace slmhub::host
