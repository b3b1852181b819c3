// The requests-per-second budget of one ServiceNow instance, shared by every thread using its
// Client: a bucket of `requests_per_second` tokens in which each token comes back exactly one
// second after it was spent, so no one-second window ever holds more requests than the
// budget, while a quiet client may still send a burst of that many at once. A 429's
// Retry-After holds every caller, not only the one that was told.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>

namespace slmhub::servicenow {

class RateBudget {
 public:
  using Clock = std::chrono::steady_clock;
  using Sleep = std::function<void(std::chrono::milliseconds)>;

  // 0 requests per second = no limit (holds still apply). `sleep` waits (never empty).
  RateBudget(int requests_per_second, Sleep sleep);

  // Waits until one more request may be sent, and spends a token. A caller that has just
  // waited out a hold itself passes the hold's end (`waited_until`), so it does not wait for
  // that hold twice.
  void take(Clock::time_point waited_until = {});

  // No request starts before `until`; returns the end of the hold now in force.
  Clock::time_point hold_until(Clock::time_point until);
  // The end of the hold in force (a time past when there is none).
  Clock::time_point held_until();

 private:
  const int requests_per_second_;
  const Sleep sleep_;
  std::mutex mutex_;
  std::deque<Clock::time_point> spent_;  // the send times of the last tokens, oldest first
  Clock::time_point hold_{};
};

}  // namespace slmhub::servicenow
