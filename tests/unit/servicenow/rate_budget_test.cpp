// The per-instance budget: never more requests in a one-second window than allowed, a burst
// up to it at once, and a Retry-After hold that every caller respects. Waits are recorded,
// not slept, so the expected values are exact up to the microseconds the test itself takes.
#include "rate_budget.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace slmhub::servicenow {
namespace {

using std::chrono::milliseconds;

struct Recorder {
  std::vector<milliseconds> waits;
  RateBudget::Sleep sleep() {
    return [this](milliseconds d) { waits.push_back(d); };
  }
};

// A wait of about `expected`: the test's own run time comes off it.
void expect_about(milliseconds wait, milliseconds expected) {
  EXPECT_LE(wait, expected);
  EXPECT_GE(wait, expected - milliseconds(100));
}

TEST(RateBudget, BurstThenOneSecondPerFullBucket) {
  Recorder recorder;
  RateBudget budget(3, recorder.sleep());
  for (int i = 0; i < 3; ++i) budget.take();
  EXPECT_TRUE(recorder.waits.empty());
  // Nobody really slept: the 4th to 6th requests wait for the first three tokens to come
  // back a second after they were spent, the 7th for the 4th token, two seconds out.
  for (int i = 0; i < 4; ++i) budget.take();
  ASSERT_EQ(recorder.waits.size(), 4u);
  expect_about(recorder.waits[0], milliseconds(1000));
  expect_about(recorder.waits[1], milliseconds(1000));
  expect_about(recorder.waits[2], milliseconds(1000));
  expect_about(recorder.waits[3], milliseconds(2000));
}

TEST(RateBudget, UnlimitedNeverWaits) {
  Recorder recorder;
  RateBudget budget(0, recorder.sleep());
  for (int i = 0; i < 1000; ++i) budget.take();
  EXPECT_TRUE(recorder.waits.empty());
}

TEST(RateBudget, AHoldStopsEveryCallerButTheOneThatWaitedItOut) {
  Recorder recorder;
  RateBudget budget(0, recorder.sleep());
  const auto until = RateBudget::Clock::now() + std::chrono::seconds(2);
  EXPECT_EQ(budget.hold_until(until), until);
  // A shorter hold does not shorten it.
  EXPECT_EQ(budget.hold_until(until - std::chrono::seconds(1)), until);
  budget.take();  // another caller: waits for the hold
  ASSERT_EQ(recorder.waits.size(), 1u);
  expect_about(recorder.waits[0], milliseconds(2000));
  budget.take(until);  // the caller that was told to wait, and did
  EXPECT_EQ(recorder.waits.size(), 1u);
  budget.take(until - milliseconds(500));  // waited for less than the hold in force
  EXPECT_EQ(recorder.waits.size(), 2u);
}

}  // namespace
}  // namespace slmhub::servicenow
