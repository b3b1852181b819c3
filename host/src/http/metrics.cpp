#include "http/metrics.hpp"

#include <set>
#include <sstream>

namespace slmhub::host {
namespace {

std::string escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Prometheus wants seconds; we count microseconds to stay in integers.
std::string seconds_text(std::int64_t micros) {
  std::string frac = std::to_string(1000000 + micros % 1000000).substr(1);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return std::to_string(micros / 1000000) + (frac.empty() ? "" : "." + frac);
}

}  // namespace

void Metrics::observe_request(const std::string& method, const std::string& route, int status,
                              std::int64_t micros) {
  // The method is the client's word: any other than the ones served is "other", or each made-up
  // method would be a series of its own (memory and /metrics without bound) and a quote in one
  // would break every scrape.
  static const std::set<std::string, std::less<>> kMethods{"DELETE", "GET",  "HEAD",
                                                           "PATCH",  "POST", "PUT"};
  const std::string label = kMethods.contains(method) ? method : "other";
  std::lock_guard lock(mutex_);
  ++requests_[{label, route, status}];
  auto& s = latency_[{label, route}];
  ++s.count;
  s.sum_micros += micros;
  for (std::size_t i = 0; i < kBucketsMicros.size(); ++i) {
    if (micros <= kBucketsMicros[i]) ++s.buckets[i];
  }
}

void Metrics::increment(const std::string& name, const std::string& labels, std::int64_t by) {
  std::lock_guard lock(mutex_);
  counters_[{name, labels}] += by;
}

void Metrics::gauge(const std::string& name, const std::string& help,
                    std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_.emplace_back(name, help, std::move(read));
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::unique_lock lock(mutex_);
  out << "# HELP slmhub_http_requests_total HTTP requests by route and status.\n"
      << "# TYPE slmhub_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [method, route, status] = key;
    out << "slmhub_http_requests_total{method=\"" << method << "\",route=\"" << escape(route)
        << "\",status=\"" << status << "\"} " << n << "\n";
  }
  out << "# HELP slmhub_http_request_duration_seconds Time to answer a request.\n"
      << "# TYPE slmhub_http_request_duration_seconds histogram\n";
  for (const auto& [key, s] : latency_) {
    std::string labels = "method=\"" + key.first + "\",route=\"" + escape(key.second) + "\"";
    for (std::size_t i = 0; i < kBucketsMicros.size(); ++i) {
      out << "slmhub_http_request_duration_seconds_bucket{" << labels << ",le=\""
          << seconds_text(kBucketsMicros[i]) << "\"} " << s.buckets[i] << "\n";
    }
    out << "slmhub_http_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << s.count
        << "\n";
    out << "slmhub_http_request_duration_seconds_sum{" << labels << "} "
        << seconds_text(s.sum_micros) << "\n";
    out << "slmhub_http_request_duration_seconds_count{" << labels << "} " << s.count << "\n";
  }
  std::string last_name;
  for (const auto& [key, n] : counters_) {
    if (key.first != last_name) {
      out << "# TYPE " << key.first << " counter\n";
      last_name = key.first;
    }
    out << key.first << (key.second.empty() ? "" : "{" + key.second + "}") << " " << n << "\n";
  }
  // Gauges are read without the lock: they query the store, and a slow or unreachable one
  // must not hold up every request, each of which counts itself under this lock.
  const auto gauges = gauges_;
  lock.unlock();
  for (const auto& [name, help, read] : gauges) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
        << name << " " << read() << "\n";
  }
  return out.str();
}

}  // namespace slmhub::host
