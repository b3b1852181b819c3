// bench_availability DATASET_JSON [--first-month YYYY-MM] [--months N] [--one-month YYYY-MM]
//     [--repeat N] [--totals FILE] [--detail FILE] [--load-only]
//
// The engine side of the availability scale benchmark. Load (read_dataset_file: the file
// mapped, decoded and checked as parse_json + parse_dataset would, its references resolved as
// the check finds them) is timed apart from computation, single-threaded, each repeated and the
// median kept: an availability::Engine over the dataset and those references (its indexing
// counted) and its §5.4 report (figures and credits, no page timeline) for one month, and the
// N months' reports from one Engine::reports call. Prints key=value lines (times in seconds, peak
// RSS in KiB, credits and their total in cents); --totals and --detail write the per-month and
// per-service-month downtime seconds that run.sh compares with the bare sweep and PostgreSQL.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "engine.hpp"
#include "slmhub/domain.hpp"

namespace {

using namespace slmhub::bench;
namespace av = slmhub::availability;

struct Options {
  std::string dataset;
  Month first_month = parse_month_label("2025-09");
  int months = 12;
  Month one_month = parse_month_label("2026-01");
  int repeat = 1;
  std::string totals;
  std::string detail;
  bool load_only = false;
};

date::year_month to_year_month(Month m) {
  return date::year{static_cast<int>(m.year())} / date::month{m.month()};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct CreditSum {
  int64_t rows = 0;
  int64_t cents = 0;
  int64_t services_missed = 0;  // service-months with `met` false
};

CreditSum add_up(const std::vector<av::AvailabilityReport>& reports) {
  CreditSum sum;
  for (const auto& r : reports) {
    sum.rows += static_cast<int64_t>(r.credits.size());
    for (const auto& c : r.credits) sum.cents += c.credit_cents;
    for (const auto& s : r.services) sum.services_missed += s.met ? 0 : 1;
  }
  return sum;
}

int run(const Options& o) {
  // ---- load ----
  const auto load_start = Clock::now();
  slmhub::DatasetReferences references;
  const slmhub::Dataset dataset = slmhub::read_dataset_file(o.dataset, references);
  const double load_seconds = seconds_since(load_start);
  const long rss_after_load = peak_rss_kib();
  if (o.load_only) {
    std::printf("load_seconds=%.3f (read_dataset_file)\n", load_seconds);
    std::printf("peak_rss_kib=%ld\n", rss_after_load);
    return 0;
  }

  // ---- one month, then every month: an Engine (its index counted) and the §5.4 reports ----
  auto run_months = [&](Month first, int count, std::vector<double>& times,
                        std::vector<double>& index_times) {
    std::vector<av::AvailabilityReport> out;
    for (int r = 0; r < o.repeat; ++r) {
      out.clear();
      const auto start = Clock::now();
      const av::Engine engine(dataset, references);
      index_times.push_back(seconds_since(start));
      std::vector<date::year_month> months;
      Month m = first;
      for (int k = 0; k < count; ++k, m = m.next()) months.push_back(to_year_month(m));
      out = engine.reports(months, std::nullopt, av::Detail::figures);
      times.push_back(seconds_since(start));
    }
    return out;
  };
  std::vector<double> one_times, one_index_times, all_times, index_times;
  const av::AvailabilityReport one_report =
      run_months(o.one_month, 1, one_times, one_index_times).front();
  const std::vector<av::AvailabilityReport> reports =
      run_months(o.first_month, o.months, all_times, index_times);
  const long peak_rss = peak_rss_kib();

  // ---- figures for comparison (not timed) ----
  std::unordered_map<std::string, int64_t> index;
  for (std::size_t i = 0; i < dataset.services.size(); ++i) {
    index.emplace(dataset.services[i].id, static_cast<int64_t>(i));
  }
  std::vector<MonthTotal> totals;
  DetailWriter detail;
  Month m = o.first_month;
  for (const auto& report : reports) {
    MonthTotal t{m.label()};
    std::vector<std::pair<int64_t, int64_t>> rows;  // service index, downtime
    for (const auto& s : report.services)
      rows.emplace_back(index.at(s.service), s.downtime_seconds);
    std::sort(rows.begin(), rows.end());
    for (const auto& [service, seconds] : rows) {
      t.downtime += seconds;
      t.checksum += seconds * (service + 1);
      detail.add(t.month, service, seconds);
    }
    totals.push_back(t);
    m = m.next();
  }
  int64_t one_downtime = 0;
  for (const auto& s : one_report.services) one_downtime += s.downtime_seconds;
  if (!o.totals.empty()) write_totals(o.totals, totals);
  if (!o.detail.empty()) detail.write(o.detail);

  const CreditSum one_sum = add_up({one_report});
  const CreditSum all_sum = add_up(reports);
  std::printf("services=%zu customers=%zu interruptions=%zu maintenance=%zu\n",
              dataset.services.size(), dataset.customers.size(), dataset.interruptions.size(),
              dataset.maintenance.size());
  std::printf("load_seconds=%.3f (read_dataset_file)\n", load_seconds);
  std::printf("rss_after_load_kib=%ld\n", rss_after_load);
  std::printf("one_month=%s one_month_seconds=%.4f one_month_downtime_seconds=%lld\n",
              o.one_month.label().c_str(), median(one_times), static_cast<long long>(one_downtime));
  std::printf("one_month_credits=%lld one_month_credit_cents=%lld\n",
              static_cast<long long>(one_sum.rows), static_cast<long long>(one_sum.cents));
  // The first run of the twelve months also pays for the fresh pages the reports are written
  // to (later runs reuse the memory the previous one freed): what a one-off report costs.
  std::printf(
      "months=%d all_months_seconds=%.4f engine_index_seconds=%.4f "
      "all_months_first_seconds=%.4f\n",
      o.months, median(all_times), median(index_times), all_times.front());
  std::printf("all_months_credits=%lld all_months_credit_cents=%lld service_months_missed=%lld\n",
              static_cast<long long>(all_sum.rows), static_cast<long long>(all_sum.cents),
              static_cast<long long>(all_sum.services_missed));
  std::printf("peak_rss_kib=%ld\n", peak_rss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--first-month") {
        o.first_month = parse_month_label(value());
      } else if (arg == "--months") {
        o.months = std::stoi(value());
      } else if (arg == "--one-month") {
        o.one_month = parse_month_label(value());
      } else if (arg == "--repeat") {
        o.repeat = std::max(1, std::stoi(value()));
      } else if (arg == "--totals") {
        o.totals = value();
      } else if (arg == "--detail") {
        o.detail = value();
      } else if (arg == "--load-only") {
        o.load_only = true;
      } else if (o.dataset.empty() && !arg.starts_with("--")) {
        o.dataset = arg;
      } else {
        throw std::invalid_argument("unknown argument " + arg);
      }
    }
    if (o.dataset.empty()) {
      throw std::invalid_argument("usage: bench_availability DATASET_JSON [options]");
    }
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_availability: " << e.what() << "\n";
    return 1;
  }
}
