// A Logger that keeps what it was told, so a test can assert that a failure was reported
// (and, with SLMHUB_TEST_LOG=1 in the environment, echoes it to stderr while debugging).
#pragma once

#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "slmhub/log.hpp"

namespace slmhub::test {

class TestLogger : public Logger {
 public:
  struct Line {
    std::string level;  // "debug", "info", "warning", "error"
    std::string message;
  };

  void debug(const std::string& message) override { add("debug", message); }
  void info(const std::string& message) override { add("info", message); }
  void warning(const std::string& message) override { add("warning", message); }
  void error(const std::string& message) override { add("error", message); }

  std::vector<Line> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  // True if a line of `level` (any level when empty) contains `text`.
  bool contains(std::string_view text, std::string_view level = {}) const {
    std::lock_guard lock(mutex_);
    for (const auto& line : lines_) {
      if ((level.empty() || line.level == level) && line.message.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    lines_.clear();
  }

 private:
  void add(const char* level, const std::string& message) {
    static const bool echo = std::getenv("SLMHUB_TEST_LOG") != nullptr;
    std::lock_guard lock(mutex_);
    if (echo) std::cerr << "[" << level << "] " << message << "\n";
    lines_.push_back({level, message});
  }

  mutable std::mutex mutex_;
  std::vector<Line> lines_;
};

}  // namespace slmhub::test
