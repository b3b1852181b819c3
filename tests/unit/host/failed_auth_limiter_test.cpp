// The failed-authentication limiter: how many guesses a client gets answered, also when it
// sends them in parallel, and which clients count as one.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "http/auth.hpp"

namespace slmhub::host {
namespace {

using namespace std::chrono_literals;

TEST(FailedAuthLimiter, AnswersLimitFailuresThenMakesTheClientWait) {
  FailedAuthLimiter limiter(3, 60s);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.settle("192.0.2.1", true).count(), 0) << i;
  const auto wait = limiter.settle("192.0.2.1", true);
  EXPECT_GT(wait, 59s);
  EXPECT_LE(wait, 60s);
  // A right credential is not answered either while the client waits, so waiting clients
  // learn nothing; other clients are not affected, and successes are never counted.
  EXPECT_GT(limiter.settle("192.0.2.1", false).count(), 0);
  EXPECT_GT(limiter.blocked_for("192.0.2.1").count(), 0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(limiter.settle("192.0.2.2", false).count(), 0);
  EXPECT_EQ(limiter.blocked_for("192.0.2.2").count(), 0);
}

TEST(FailedAuthLimiter, FailuresLeaveTheWindow) {
  FailedAuthLimiter limiter(2, 50ms);
  EXPECT_EQ(limiter.settle("192.0.2.1", true).count(), 0);
  EXPECT_EQ(limiter.settle("192.0.2.1", true).count(), 0);
  EXPECT_GT(limiter.blocked_for("192.0.2.1").count(), 0);
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(limiter.blocked_for("192.0.2.1").count(), 0);
  EXPECT_EQ(limiter.settle("192.0.2.1", true).count(), 0);
}

// Guesses checked in parallel, each passing the early check before any failure is recorded:
// still exactly `limit` of them get a verdict.
TEST(FailedAuthLimiter, ParallelGuessesGetNoMoreVerdictsThanTheLimit) {
  constexpr int kLimit = 5;
  FailedAuthLimiter limiter(kLimit, 60s);
  std::atomic<int> answered{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 50; ++i) {
        if (limiter.blocked_for("198.51.100.7").count() > 0) continue;
        if (limiter.settle("198.51.100.7", true).count() == 0) ++answered;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(answered.load(), kLimit);
}

TEST(FailedAuthLimiter, AnIpv6ClientIsItsSlash64AndAnIpv4ClientItsAddress) {
  EXPECT_EQ(FailedAuthLimiter::client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(FailedAuthLimiter::client_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(FailedAuthLimiter::client_key("::1"), "::/64");
  EXPECT_EQ(FailedAuthLimiter::client_key("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(FailedAuthLimiter::client_key("::ffff:192.0.2.1"), "::ffff:192.0.2.1");

  FailedAuthLimiter limiter(2, 60s);
  limiter.settle(FailedAuthLimiter::client_key("2001:db8:1:2::1"), true);
  limiter.settle(FailedAuthLimiter::client_key("2001:db8:1:2::2"), true);
  EXPECT_GT(limiter.blocked_for(FailedAuthLimiter::client_key("2001:db8:1:2::3")).count(), 0);
  EXPECT_EQ(limiter.blocked_for(FailedAuthLimiter::client_key("2001:db8:1:3::1")).count(), 0);
}

TEST(FailedAuthLimiter, RemembersAtMostMaxClients) {
  FailedAuthLimiter limiter(1, 60s, 3);
  for (int i = 1; i <= 4; ++i) {
    limiter.settle("192.0.2." + std::to_string(i), true);
    std::this_thread::sleep_for(1ms);  // an order of failures the limiter can see
  }
  // The one that failed longest ago was forgotten to make room for the fourth.
  EXPECT_EQ(limiter.blocked_for("192.0.2.1").count(), 0);
  for (int i = 2; i <= 4; ++i)
    EXPECT_GT(limiter.blocked_for("192.0.2." + std::to_string(i)).count(), 0) << i;
}

TEST(FailedAuthLimiter, ALimitOfZeroTurnsItOff) {
  FailedAuthLimiter limiter(0, 60s);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limiter.settle("192.0.2.1", true).count(), 0);
  EXPECT_FALSE(limiter.enabled());
}

}  // namespace
}  // namespace slmhub::host
