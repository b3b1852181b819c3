// Logging and the clock, the two services every unit needs.
#pragma once

#include <string>

#include "slmhub/time.hpp"

namespace slmhub {

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void debug(const std::string& message) = 0;
  virtual void info(const std::string& message) = 0;
  virtual void warning(const std::string& message) = 0;
  virtual void error(const std::string& message) = 0;
};

// Every deadline and schedule reads time from here, so tests move time instead of sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant now() const = 0;
};

}  // namespace slmhub
