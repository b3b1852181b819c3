// Waiting for what a server does in the background (an event handled, a message sent): the
// condition is polled every 50 ms until it holds or `timeout` passes.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace slmhub::test {

// Whether `done` held before `timeout` ran out (it is asked once more at the end).
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace slmhub::test
