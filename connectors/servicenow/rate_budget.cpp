#include "rate_budget.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace slmhub::servicenow {

RateBudget::RateBudget(int requests_per_second, Sleep sleep)
    : requests_per_second_(requests_per_second), sleep_(std::move(sleep)) {}

void RateBudget::take(Clock::time_point waited_until) {
  Clock::time_point now;
  Clock::time_point send_at;
  {
    std::lock_guard lock(mutex_);
    now = Clock::now();
    send_at = now;
    if (hold_ > waited_until) send_at = std::max(send_at, hold_);
    if (requests_per_second_ > 0) {
      // Send times are reserved in order, so the token spent longest ago is at the front.
      if (!spent_.empty()) send_at = std::max(send_at, spent_.back());
      if (spent_.size() == static_cast<std::size_t>(requests_per_second_)) {
        send_at = std::max(send_at, spent_.front() + std::chrono::seconds(1));
        spent_.pop_front();
      }
      spent_.push_back(send_at);
    }
  }
  if (send_at > now) sleep_(std::chrono::ceil<std::chrono::milliseconds>(send_at - now));
}

RateBudget::Clock::time_point RateBudget::hold_until(Clock::time_point until) {
  std::lock_guard lock(mutex_);
  hold_ = std::max(hold_, until);
  return hold_;
}

RateBudget::Clock::time_point RateBudget::held_until() {
  std::lock_guard lock(mutex_);
  return hold_;
}

}  // namespace slmhub::servicenow
