// bench_availability_generate OUT_DIR [--services N] [--customers N] [--subscriptions N]
//     [--interruptions N] [--maintenance-per-service N] [--seed N]
//
// The deterministic dataset of the availability scale benchmark: one fiscal year
// (2025-09-01 .. 2026-09-01 UTC) of 24x7 production services with subscribers, overlapping
// outage interruptions and pre-approved maintenance windows. Only std::mt19937_64's raw output
// (fixed by the standard) and integer arithmetic decide the data, so every machine writes the
// same bytes. Writes into OUT_DIR:
//   dataset.json       the DESIGN.md §5.3 dataset the engine reads
//   intervals.bin      the same intervals for the bare sweep (common.hpp)
//   interruptions.tsv  service index, tstzrange, for PostgreSQL COPY
//   maintenance.tsv    the same for the maintenance windows
//   months.tsv         month label, tstzrange of the twelve months
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "common.hpp"

namespace {

using namespace slmhub::bench;

// Integer draws implemented here (not std::uniform_int_distribution, whose algorithm is
// left to the library), by rejection, so the sequence is the same with every toolchain.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Uniform in [0, n), n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // accept [0, limit)
    uint64_t x = engine_();
    while (x >= limit) x = engine_();
    return x % n;
  }
  // Uniform in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // True with probability num/den.
  bool chance(uint64_t num, uint64_t den) { return below(den) < num; }

 private:
  std::mt19937_64 engine_;
};

struct Options {
  std::string out;
  int64_t services = 10000;
  int64_t customers = -1;      // default services / 2
  int64_t subscriptions = -1;  // default services * 5
  int64_t interruptions = 1000000;
  int64_t maintenance_per_service = 20;
  uint64_t seed = 20250901;
};

struct Window {
  int64_t service;
  int64_t start;
  int64_t end;
  int64_t announced;
  std::string id;
};

struct Outage {
  int64_t service;
  int64_t start;
  int64_t end;
  std::vector<int64_t> customers;  // customer indexes; empty: every subscriber
  std::string id;
};

std::string numbered(const char* prefix, int width, int64_t n) {
  char text[32];
  std::snprintf(text, sizeof text, "%s%0*lld", prefix, width, static_cast<long long>(n));
  return text;
}

void write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0) {
    throw std::runtime_error("cannot write " + path);
  }
}

void put_i64(std::string& out, int64_t v) {
  char bytes[sizeof v];
  std::memcpy(bytes, &v, sizeof v);
  out.append(bytes, sizeof v);
}

void quoted(std::string& out, const std::string& s) {
  out += '"';
  out += s;  // generated ids and names only: nothing to escape
  out += '"';
}

void instant(std::string& out, int64_t t) {
  out += '"';
  append_instant(out, t);
  out += '"';
}

void range(std::string& out, int64_t start, int64_t end) {
  out += '[';
  append_instant(out, start, ' ', "+00");
  out += ',';
  append_instant(out, end, ' ', "+00");
  out += ')';
}

int run(const Options& o) {
  const int64_t n_services = o.services;
  const int64_t n_customers = o.customers >= 0 ? o.customers : std::max<int64_t>(1, o.services / 2);
  const int64_t n_subscriptions = o.subscriptions >= 0 ? o.subscriptions : o.services * 5;
  if (n_services < 1 || n_services > 99999 || n_customers > 99999 || o.interruptions > 9999999 ||
      o.maintenance_per_service < 0 || o.maintenance_per_service > 20 ||
      n_subscriptions > n_customers * n_services) {
    throw std::invalid_argument(
        "sizes out of range (services 1..99999, customers <= 99999, interruptions <= 9999999, "
        "maintenance per service 0..20, subscriptions <= customers x services)");
  }
  Rng rng(o.seed);
  const Month first = parse_month_label("2025-09");
  constexpr int kMonths = 12;
  std::vector<int64_t> bounds;  // kMonths + 1 month starts
  for (Month m = first; static_cast<int>(bounds.size()) <= kMonths; m = m.next()) {
    bounds.push_back(m.start());
  }
  const int64_t fy_start = bounds.front();
  const int64_t fy_end = bounds.back();
  // Maintenance that started before this is complete, later ones scheduled.
  const int64_t complete_before = parse_month_label("2026-06").start();

  // ---- customers and subscriptions ----
  std::vector<std::vector<int64_t>> subscribers(static_cast<std::size_t>(n_services));
  struct Sub {
    int64_t service;
    int64_t charge_cents;
    int64_t start = -1;  // -1: absent
    int64_t end = -1;
  };
  std::vector<std::vector<Sub>> subs(static_cast<std::size_t>(n_customers));
  for (int64_t c = 0; c < n_customers; ++c) {
    const int64_t k = n_subscriptions / n_customers + (c < n_subscriptions % n_customers ? 1 : 0);
    std::vector<int64_t> chosen;
    while (static_cast<int64_t>(chosen.size()) < k) {
      const int64_t s = rng.between(0, n_services - 1);
      if (std::find(chosen.begin(), chosen.end(), s) == chosen.end()) chosen.push_back(s);
    }
    std::sort(chosen.begin(), chosen.end());
    for (int64_t s : chosen) {
      Sub sub{s, rng.between(5000, 500000)};
      const int64_t kind = rng.between(0, 99);
      if (kind < 10) {
        sub.start = bounds[static_cast<std::size_t>(rng.between(1, kMonths - 1))];
      } else if (kind < 15) {
        sub.end = bounds[static_cast<std::size_t>(rng.between(1, kMonths - 1))];
      }
      subs[static_cast<std::size_t>(c)].push_back(sub);
      subscribers[static_cast<std::size_t>(s)].push_back(c);
    }
  }

  // ---- maintenance: one window per slot of the year, 30-120 min, so <= 40 h per service ----
  std::vector<Window> windows;
  std::vector<std::vector<std::size_t>> windows_of(static_cast<std::size_t>(n_services));
  const int64_t slot = (fy_end - fy_start) / std::max<int64_t>(1, o.maintenance_per_service);
  for (int64_t s = 0; s < n_services; ++s) {
    for (int64_t k = 0; k < o.maintenance_per_service; ++k) {
      const int64_t duration = rng.between(2, 8) * 15 * 60;
      const int64_t start = fy_start + k * slot + rng.between(0, (slot - duration) / 60) * 60;
      const int64_t announced = start - rng.between(15 * 24 * 60, 45 * 24 * 60) * 60;
      windows_of[static_cast<std::size_t>(s)].push_back(windows.size());
      windows.push_back({s, start, start + duration, announced, {}});
    }
  }

  // ---- interruptions: 70 % on the 10 % flaky services (index % 10 == 3) ----
  std::vector<int64_t> flaky;
  std::vector<int64_t> steady;
  for (int64_t s = 0; s < n_services; ++s) (s % 10 == 3 ? flaky : steady).push_back(s);
  if (flaky.empty()) flaky = steady;
  if (steady.empty()) steady = flaky;
  std::vector<int64_t> count(static_cast<std::size_t>(n_services), 0);
  for (int64_t i = 0; i < o.interruptions; ++i) {
    const auto& pool = rng.chance(7, 10) ? flaky : steady;
    ++count[static_cast<std::size_t>(pool[rng.below(pool.size())])];
  }
  std::vector<Outage> outages;
  outages.reserve(static_cast<std::size_t>(o.interruptions));
  for (int64_t s = 0; s < n_services; ++s) {
    const auto& own_windows = windows_of[static_cast<std::size_t>(s)];
    const auto& own_subscribers = subscribers[static_cast<std::size_t>(s)];
    const Outage* previous = nullptr;  // outages has its final capacity: never moves
    for (int64_t i = 0; i < count[static_cast<std::size_t>(s)]; ++i) {
      const int64_t pick = rng.between(0, 99);
      int64_t duration = 0;
      if (pick < 80) {
        duration = rng.between(60, 15 * 60);
      } else if (pick < 98) {
        duration = rng.between(15 * 60 + 1, 90 * 60);
      } else {
        duration = rng.between(90 * 60 + 1, 24 * 3600);
      }
      int64_t start = 0;
      const int64_t placement = rng.between(0, 99);
      if (previous && placement < 25) {  // a related incident inside the previous one
        start = previous->start + rng.between(0, previous->end - previous->start - 1);
      } else if (!own_windows.empty() && placement < 28) {  // during or just before maintenance
        const Window& w = windows[own_windows[rng.below(own_windows.size())]];
        start = std::max(fy_start, w.start + rng.between(-1800, w.end - w.start - 1));
      } else if (placement < 30) {  // crossing a month end
        start = bounds[static_cast<std::size_t>(rng.between(1, kMonths - 1))] -
                rng.between(60, 4 * 3600);
      } else {
        start = rng.between(fy_start, fy_end - 60);
      }
      Outage out{s, start, std::min(fy_end, start + duration), {}, {}};
      if (!own_subscribers.empty() && rng.chance(40, 100)) {
        const int64_t k =
            rng.between(1, std::min<int64_t>(3, static_cast<int64_t>(own_subscribers.size())));
        while (static_cast<int64_t>(out.customers.size()) < k) {
          const int64_t c = own_subscribers[rng.below(own_subscribers.size())];
          if (std::find(out.customers.begin(), out.customers.end(), c) == out.customers.end()) {
            out.customers.push_back(c);
          }
        }
      }
      if (outages.size() == outages.capacity()) throw std::logic_error("outages grew");
      outages.push_back(std::move(out));
      previous = &outages.back();
    }
  }

  // Records in time order, numbered in that order, as a ticketing system would export them.
  std::sort(outages.begin(), outages.end(), [](const Outage& a, const Outage& b) {
    return std::tie(a.start, a.service, a.end) < std::tie(b.start, b.service, b.end);
  });
  for (std::size_t i = 0; i < outages.size(); ++i) {
    outages[i].id = numbered("INC", 7, static_cast<int64_t>(i) + 1);
  }
  std::sort(windows.begin(), windows.end(), [](const Window& a, const Window& b) {
    return std::tie(a.start, a.service) < std::tie(b.start, b.service);
  });
  for (std::size_t i = 0; i < windows.size(); ++i) {
    windows[i].id = numbered("CHG", 7, static_cast<int64_t>(i) + 1);
  }

  auto service_id = [](int64_t s) { return numbered("svc-", 5, s); };
  auto customer_id = [](int64_t c) { return numbered("cust-", 5, c); };

  // ---- dataset.json ----
  std::string j;
  j.reserve(static_cast<std::size_t>(o.interruptions) * 130 + 64 * 1024 * 1024);
  j += "{\n\"timezone\": \"UTC\",\n\"fiscal_year_start_month\": 9,\n";
  j += "\"credit_policy\": {\"type\": \"proportional\", \"cap_percent\": 100},\n";
  j += "\"services\": [\n";
  for (int64_t s = 0; s < n_services; ++s) {
    j += s ? ",\n" : "";
    j += "{\"id\": ";
    quoted(j, service_id(s));
    j += ", \"name\": ";
    quoted(j, numbered("Service ", 5, s));
    j += ", \"environment\": \"production\", \"hours\": \"24x7\", \"target_percent\": ";
    j += s % 4 == 0 ? "99.5" : "99.75";
    j += ", \"maintenance_budget_hours_per_fy\": 40";
    if (s % 5 == 0) {
      j += ", \"credit_policy\": {\"type\": \"tiered\", \"tiers\": ["
           "{\"below_percent\": 99.75, \"credit_percent\": 10}, "
           "{\"below_percent\": 99, \"credit_percent\": 25}, "
           "{\"below_percent\": 95, \"credit_percent\": 50}]}";
    } else if (s % 5 == 1) {
      j += ", \"credit_policy\": {\"type\": \"proportional\", \"cap_percent\": 50}";
    }
    j += '}';
  }
  j += "\n],\n\"customers\": [\n";
  for (int64_t c = 0; c < n_customers; ++c) {
    j += c ? ",\n" : "";
    j += "{\"id\": ";
    quoted(j, customer_id(c));
    j += ", \"name\": ";
    quoted(j, numbered("Customer ", 5, c));
    j += ", \"billing_code\": ";
    quoted(j, numbered("BC-", 5, c));
    j += ", \"contacts\": [{\"role\": \"billing\", \"name\": ";
    quoted(j, numbered("Billing desk ", 5, c));
    j += ", \"email\": ";
    quoted(j, numbered("billing-", 5, c) + "@example.org");
    j += "}], \"subscriptions\": [";
    bool first_sub = true;
    for (const Sub& sub : subs[static_cast<std::size_t>(c)]) {
      j += first_sub ? "" : ", ";
      first_sub = false;
      j += "{\"service\": ";
      quoted(j, service_id(sub.service));
      j += ", \"monthly_charge_cents\": " + std::to_string(sub.charge_cents);
      if (sub.start >= 0) {
        j += ", \"start\": ";
        instant(j, sub.start);
      }
      if (sub.end >= 0) {
        j += ", \"end\": ";
        instant(j, sub.end);
      }
      j += '}';
    }
    j += "]}";
  }
  j += "\n],\n\"maintenance\": [\n";
  for (std::size_t i = 0; i < windows.size(); ++i) {
    const Window& w = windows[i];
    j += i ? ",\n" : "";
    j += "{\"id\": ";
    quoted(j, w.id);
    j += ", \"service\": ";
    quoted(j, service_id(w.service));
    j += ", \"category\": \"planned_outage\", \"start\": ";
    instant(j, w.start);
    j += ", \"end\": ";
    instant(j, w.end);
    j += ", \"announced_at\": ";
    instant(j, w.announced);
    j += w.start < complete_before ? ", \"status\": \"complete\"}" : ", \"status\": \"scheduled\"}";
  }
  j += "\n],\n\"interruptions\": [\n";
  for (std::size_t i = 0; i < outages.size(); ++i) {
    const Outage& x = outages[i];
    j += i ? ",\n" : "";
    j += "{\"id\": ";
    quoted(j, x.id);
    j += ", \"service\": ";
    quoted(j, service_id(x.service));
    j += ", \"type\": \"outage\", \"start\": ";
    instant(j, x.start);
    j += ", \"end\": ";
    instant(j, x.end);
    if (!x.customers.empty()) {
      j += ", \"customers\": [";
      for (std::size_t k = 0; k < x.customers.size(); ++k) {
        j += k ? ", " : "";
        quoted(j, customer_id(x.customers[k]));
      }
      j += ']';
    }
    j += '}';
  }
  j += "\n]\n}\n";
  write_text(o.out + "/dataset.json", j);
  const std::size_t json_bytes = j.size();
  j.clear();
  j.shrink_to_fit();

  // ---- intervals.bin ----
  std::string bin(kBinaryMagic, sizeof kBinaryMagic);
  put_i64(bin, n_services);
  put_i64(bin, first.index);
  put_i64(bin, kMonths);
  put_i64(bin, static_cast<int64_t>(outages.size()));
  for (const Outage& x : outages) {
    put_i64(bin, x.service);
    put_i64(bin, x.start);
    put_i64(bin, x.end);
  }
  put_i64(bin, static_cast<int64_t>(windows.size()));
  for (const Window& w : windows) {
    put_i64(bin, w.service);
    put_i64(bin, w.start);
    put_i64(bin, w.end);
  }
  write_text(o.out + "/intervals.bin", bin);

  // ---- PostgreSQL COPY text files ----
  std::string tsv;
  for (const Outage& x : outages) {
    tsv += std::to_string(x.service);
    tsv += '\t';
    range(tsv, x.start, x.end);
    tsv += '\n';
  }
  write_text(o.out + "/interruptions.tsv", tsv);
  tsv.clear();
  for (const Window& w : windows) {
    tsv += std::to_string(w.service);
    tsv += '\t';
    range(tsv, w.start, w.end);
    tsv += '\n';
  }
  write_text(o.out + "/maintenance.tsv", tsv);
  tsv.clear();
  Month m = first;
  for (int k = 0; k < kMonths; ++k, m = m.next()) {
    tsv += m.label();
    tsv += '\t';
    range(tsv, bounds[static_cast<std::size_t>(k)], bounds[static_cast<std::size_t>(k) + 1]);
    tsv += '\n';
  }
  write_text(o.out + "/months.tsv", tsv);

  int64_t named = 0;
  for (const Outage& x : outages) named += x.customers.empty() ? 0 : 1;
  std::cout << "services=" << n_services << " customers=" << n_customers
            << " subscriptions=" << n_subscriptions << " interruptions=" << outages.size()
            << " (naming customers: " << named << ") maintenance=" << windows.size()
            << " dataset.json=" << json_bytes << " bytes\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> int64_t {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return std::stoll(argv[++i]);
      };
      if (arg == "--services") {
        o.services = value();
      } else if (arg == "--customers") {
        o.customers = value();
      } else if (arg == "--subscriptions") {
        o.subscriptions = value();
      } else if (arg == "--interruptions") {
        o.interruptions = value();
      } else if (arg == "--maintenance-per-service") {
        o.maintenance_per_service = value();
      } else if (arg == "--seed") {
        o.seed = static_cast<uint64_t>(value());
      } else if (o.out.empty() && !arg.starts_with("--")) {
        o.out = arg;
      } else {
        throw std::invalid_argument("unknown argument " + arg);
      }
    }
    if (o.out.empty())
      throw std::invalid_argument("usage: bench_availability_generate OUT_DIR [options]");
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_availability_generate: " << e.what() << "\n";
    return 1;
  }
}
