// The /metrics text: a gauge that is slow to read (it queries the store) holds up no request.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "http/metrics.hpp"

namespace slmhub::host {
namespace {

using namespace std::chrono_literals;

TEST(Metrics, ASlowGaugeHoldsUpNoRequest) {
  Metrics metrics;
  std::promise<void> reading, release;
  std::shared_future<void> released = release.get_future().share();
  std::once_flag first;
  metrics.gauge("slmhub_test_backlog", "a gauge whose store is slow", [&] {
    std::call_once(first, [&] { reading.set_value(); });
    released.wait_for(10s);
    return 7.0;
  });
  std::string text;
  std::thread scrape([&] { text = metrics.render(); });
  reading.get_future().wait();
  // A request answered while the scrape waits for its gauge counts itself at once.
  auto observed = std::async(std::launch::async,
                             [&] { metrics.observe_request("GET", "/healthz", 200, 1500); });
  const bool counted = observed.wait_for(5s) == std::future_status::ready;
  release.set_value();
  scrape.join();
  observed.wait();
  EXPECT_TRUE(counted) << "the request waited for the gauge";
  EXPECT_NE(text.find("slmhub_test_backlog 7\n"), std::string::npos) << text;
  EXPECT_NE(metrics.render().find(
                "slmhub_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace slmhub::host
