// A Clock that only moves when the test moves it, so deadlines, back-offs and schedules
// are tested without sleeping. Safe to read from the threads of the unit under test.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "slmhub/log.hpp"
#include "slmhub/time.hpp"

namespace slmhub::test {

class ManualClock : public Clock {
 public:
  explicit ManualClock(Instant start = parse_instant("2026-11-02T09:00:00Z"))
      : seconds_(start.time_since_epoch().count()) {}
  explicit ManualClock(std::string_view start) : ManualClock(parse_instant(start)) {}

  Instant now() const override {
    return Instant{std::chrono::seconds{seconds_.load(std::memory_order_acquire)}};
  }
  void set(Instant t) { seconds_.store(t.time_since_epoch().count(), std::memory_order_release); }
  void set(std::string_view t) { set(parse_instant(t)); }
  void advance(std::chrono::seconds by) {
    seconds_.fetch_add(by.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::int64_t> seconds_;
};

}  // namespace slmhub::test
