// Prometheus text exposition (/metrics): request counts and latencies per route, plus
// gauges that other parts of the host report (queue depths, job runs).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace slmhub::host {

class Metrics {
 public:
  void observe_request(const std::string& method, const std::string& route, int status,
                       std::int64_t micros);
  void increment(const std::string& name, const std::string& labels = {}, std::int64_t by = 1);
  // A value read when /metrics is scraped.
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);
  std::string render() const;

 private:
  static constexpr std::array<std::int64_t, 10> kBucketsMicros{
      1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};
  struct Series {
    std::int64_t count = 0;
    std::int64_t sum_micros = 0;
    std::array<std::int64_t, kBucketsMicros.size()> buckets{};
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::int64_t> requests_;
  std::map<std::pair<std::string, std::string>, Series> latency_;
  std::map<std::pair<std::string, std::string>, std::int64_t> counters_;
  std::vector<std::tuple<std::string, std::string, std::function<double()>>> gauges_;
};

}  // namespace slmhub::host
