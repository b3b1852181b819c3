// bench_sweep INTERVALS_BIN [--one-month YYYY-MM] [--repeat N] [--totals FILE] [--detail FILE]
//
// The floor of the availability scale benchmark: the same downtime as the engine computes for
// 24x7 services whose maintenance is wholly excluded, by a bare sort-and-sweep with no SDK,
// no ids and no credits. Per service: sort the outages, sweep their union, sweep the union
// of the maintenance windows, subtract it, clip to each month. Reads the compact binary file
// the generator writes, so its load is not a JSON parse. Output as bench_availability.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace slmhub::bench;

struct Span {
  int64_t start;
  int64_t end;
};

IntervalFile load(const std::string& path) {
  const std::string bytes = read_file(path);
  std::size_t at = 0;
  auto take = [&](void* out, std::size_t n) {
    if (at + n > bytes.size()) throw std::runtime_error(path + ": truncated");
    std::memcpy(out, bytes.data() + at, n);
    at += n;
  };
  char magic[sizeof kBinaryMagic];
  take(magic, sizeof magic);
  if (std::memcmp(magic, kBinaryMagic, sizeof magic) != 0) {
    throw std::runtime_error(path + ": not an interval file");
  }
  IntervalFile f;
  take(&f.services, sizeof f.services);
  take(&f.first_month.index, sizeof f.first_month.index);
  take(&f.months, sizeof f.months);
  for (auto* list : {&f.interruptions, &f.maintenance}) {
    int64_t n = 0;
    take(&n, sizeof n);
    list->resize(static_cast<std::size_t>(n));
    take(list->data(), list->size() * sizeof(Record));
  }
  return f;
}

// Records grouped by service (counting sort): spans of service s are
// spans[offset[s] .. offset[s + 1]).
struct ByService {
  std::vector<std::size_t> offset;
  std::vector<Span> spans;
};

ByService group(const std::vector<Record>& records, int64_t services, int64_t lo, int64_t hi) {
  ByService g;
  g.offset.assign(static_cast<std::size_t>(services) + 1, 0);
  for (const Record& r : records) {
    if (r.end > lo && r.start < hi) ++g.offset[static_cast<std::size_t>(r.service) + 1];
  }
  for (std::size_t s = 0; s < static_cast<std::size_t>(services); ++s) {
    g.offset[s + 1] += g.offset[s];
  }
  g.spans.resize(g.offset.back());
  std::vector<std::size_t> next(g.offset.begin(), g.offset.end() - 1);
  for (const Record& r : records) {
    if (r.end > lo && r.start < hi) {
      g.spans[next[static_cast<std::size_t>(r.service)]++] = {std::max(r.start, lo),
                                                              std::min(r.end, hi)};
    }
  }
  return g;
}

// Sorts [first, last) by start and merges it in place into disjoint spans; returns the new end.
Span* sweep_union(Span* first, Span* last) {
  if (first == last) return last;
  std::sort(first, last, [](const Span& a, const Span& b) { return a.start < b.start; });
  Span* out = first;
  for (Span* s = first + 1; s != last; ++s) {
    if (s->start <= out->end) {
      out->end = std::max(out->end, s->end);
    } else {
      *++out = *s;
    }
  }
  return out + 1;
}

// Disjoint sorted `down` minus disjoint sorted `minus`, appended to `out`.
void subtract(const Span* d, const Span* d_end, const Span* m, const Span* m_end,
              std::vector<Span>& out) {
  for (; d != d_end; ++d) {
    int64_t start = d->start;
    while (m != m_end && m->end <= start) ++m;
    const Span* k = m;
    while (k != m_end && k->start < d->end) {
      if (k->start > start) out.push_back({start, k->start});
      start = std::max(start, k->end);
      ++k;
    }
    if (start < d->end) out.push_back({start, d->end});
  }
}

// Downtime seconds per service per month for the months [first, first + months), into
// seconds[month * services + service].
std::vector<int64_t> compute(const IntervalFile& f, Month first, int64_t months) {
  const int64_t lo = first.start();
  std::vector<int64_t> bounds;
  Month m = first;
  for (int64_t k = 0; k <= months; ++k, m = m.next()) bounds.push_back(m.start());
  const int64_t hi = bounds.back();
  ByService down = group(f.interruptions, f.services, lo, hi);
  ByService maint = group(f.maintenance, f.services, lo, hi);
  std::vector<int64_t> seconds(static_cast<std::size_t>(months * f.services), 0);
  std::vector<Span> rest;
  for (int64_t s = 0; s < f.services; ++s) {
    const auto us = static_cast<std::size_t>(s);
    Span* d = down.spans.data() + down.offset[us];
    Span* d_end = sweep_union(d, down.spans.data() + down.offset[us + 1]);
    Span* x = maint.spans.data() + maint.offset[us];
    Span* x_end = sweep_union(x, maint.spans.data() + maint.offset[us + 1]);
    rest.clear();
    subtract(d, d_end, x, x_end, rest);
    // Clip to each month: rest is sorted and disjoint, so one pass over it and the bounds.
    std::size_t k = 0;
    for (const Span& r : rest) {
      int64_t start = r.start;
      while (start < r.end) {
        while (bounds[k + 1] <= start) ++k;
        const int64_t end = std::min(r.end, bounds[k + 1]);
        seconds[k * static_cast<std::size_t>(f.services) + us] += end - start;
        start = end;
      }
    }
  }
  return seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string path;
    std::string totals_path;
    std::string detail_path;
    Month one_month = parse_month_label("2026-01");
    int repeat = 1;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--one-month") {
        one_month = parse_month_label(value());
      } else if (arg == "--repeat") {
        repeat = std::max(1, std::stoi(value()));
      } else if (arg == "--totals") {
        totals_path = value();
      } else if (arg == "--detail") {
        detail_path = value();
      } else if (path.empty() && !arg.starts_with("--")) {
        path = arg;
      } else {
        throw std::invalid_argument("unknown argument " + arg);
      }
    }
    if (path.empty()) throw std::invalid_argument("usage: bench_sweep INTERVALS_BIN [options]");

    const auto load_start = Clock::now();
    const IntervalFile f = load(path);
    const double load_seconds = seconds_since(load_start);

    std::vector<double> one_times;
    std::vector<int64_t> one;
    for (int r = 0; r < repeat; ++r) {
      const auto start = Clock::now();
      one = compute(f, one_month, 1);
      one_times.push_back(seconds_since(start));
    }
    std::vector<double> all_times;
    std::vector<int64_t> all;
    for (int r = 0; r < repeat; ++r) {
      const auto start = Clock::now();
      all = compute(f, f.first_month, f.months);
      all_times.push_back(seconds_since(start));
    }
    const long peak_rss = peak_rss_kib();

    std::vector<MonthTotal> totals;
    DetailWriter detail;
    Month m = f.first_month;
    for (int64_t k = 0; k < f.months; ++k, m = m.next()) {
      MonthTotal t{m.label()};
      for (int64_t s = 0; s < f.services; ++s) {
        const int64_t seconds = all[static_cast<std::size_t>(k * f.services + s)];
        t.downtime += seconds;
        t.checksum += seconds * (s + 1);
        detail.add(t.month, s, seconds);
      }
      totals.push_back(t);
    }
    int64_t one_downtime = 0;
    for (int64_t seconds : one) one_downtime += seconds;
    if (!totals_path.empty()) write_totals(totals_path, totals);
    if (!detail_path.empty()) detail.write(detail_path);

    std::printf("services=%lld interruptions=%zu maintenance=%zu\n",
                static_cast<long long>(f.services), f.interruptions.size(), f.maintenance.size());
    std::printf("load_seconds=%.3f\n", load_seconds);
    std::printf("one_month=%s one_month_seconds=%.4f one_month_downtime_seconds=%lld\n",
                one_month.label().c_str(), median(one_times), static_cast<long long>(one_downtime));
    std::printf("months=%lld all_months_seconds=%.4f\n", static_cast<long long>(f.months),
                median(all_times));
    std::printf("peak_rss_kib=%ld\n", peak_rss);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_sweep: " << e.what() << "\n";
    return 1;
  }
}
