// The host's log: one line per message on stderr (journald adds the time when run under
// systemd; we add it too so a terminal or file log is readable), filtered by log.level.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "slmhub/log.hpp"

namespace slmhub::host {

enum class LogLevel { debug = 0, information = 1, warning = 2, error = 3 };
// nullopt for a name that is not a level (Settings::validate_host_keys names its line).
std::optional<LogLevel> parse_log_level(const std::string& text);

class StderrLogger : public Logger {
 public:
  StderrLogger(std::string source, LogLevel level, std::mutex& mutex)
      : source_(std::move(source)), level_(level), mutex_(mutex) {}
  void debug(const std::string& message) override { write(LogLevel::debug, message); }
  void info(const std::string& message) override { write(LogLevel::information, message); }
  void warning(const std::string& message) override { write(LogLevel::warning, message); }
  void error(const std::string& message) override { write(LogLevel::error, message); }

 private:
  void write(LogLevel level, const std::string& message);
  std::string source_;
  LogLevel level_;
  std::mutex& mutex_;
};

class SystemClock : public Clock {
 public:
  Instant now() const override;
};

}  // namespace slmhub::host
