// Shared by the availability benchmark programs (generator, engine driver, bare sweep): UTC
// civil-date arithmetic in integer seconds, the compact binary interval file the sweep reads,
// the totals/detail files all three sides write for comparison, and small timing helpers.
// Deliberately free of the SDK, so the bare sweep measures nothing but the sweep.
#pragma once

#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace slmhub::bench {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
constexpr int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

constexpr Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2 ? 1 : 0), m, d};
}

// A calendar month as a count (year * 12 + month - 1), so month arithmetic is addition.
struct Month {
  int64_t index = 0;
  int64_t year() const { return index / 12; }
  unsigned month() const { return static_cast<unsigned>(index % 12) + 1; }
  // Epoch seconds of the first instant of the month in UTC.
  int64_t start() const { return days_from_civil(year(), month(), 1) * 86400; }
  Month next() const { return {index + 1}; }
  std::string label() const {
    char text[32];
    std::snprintf(text, sizeof text, "%04lld-%02u", static_cast<long long>(year()), month());
    return text;
  }
};

// `YYYY-MM`; throws std::invalid_argument otherwise.
inline Month parse_month_label(std::string_view text) {
  if (text.size() != 7 || text[4] != '-') {
    throw std::invalid_argument("expected YYYY-MM, got '" + std::string(text) + "'");
  }
  int64_t y = 0;
  unsigned m = 0;
  for (int i = 0; i < 4; ++i) {
    if (text[i] < '0' || text[i] > '9')
      throw std::invalid_argument("bad year in " + std::string(text));
    y = y * 10 + (text[i] - '0');
  }
  for (int i = 5; i < 7; ++i) {
    if (text[i] < '0' || text[i] > '9')
      throw std::invalid_argument("bad month in " + std::string(text));
    m = m * 10 + static_cast<unsigned>(text[i] - '0');
  }
  if (m < 1 || m > 12) throw std::invalid_argument("bad month in " + std::string(text));
  return {y * 12 + m - 1};
}

// `2025-09-01T00:00:00Z` (sep 'T', suffix "Z") or `2025-09-01 00:00:00+00` (sep ' ', suffix
// "+00", the form PostgreSQL's range input reads), appended to `out`.
inline void append_instant(std::string& out, int64_t t, char sep = 'T', const char* suffix = "Z") {
  int64_t days = t / 86400;
  int64_t secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  const Civil c = civil_from_days(days);
  char text[40];
  const int n = std::snprintf(
      text, sizeof text, "%04lld-%02u-%02u%c%02lld:%02lld:%02lld%s", static_cast<long long>(c.year),
      c.month, c.day, sep, static_cast<long long>(secs / 3600),
      static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60), suffix);
  out.append(text, static_cast<std::size_t>(n));
}

// ---- the binary interval file (bench only, native byte order) -----------------------------
//   magic "SLMAVB1\0", int64 services, int64 first_month_index, int64 months,
//   int64 interruptions, Record[interruptions], int64 maintenance, Record[maintenance]

inline constexpr char kBinaryMagic[8] = {'S', 'L', 'M', 'A', 'V', 'B', '1', '\0'};

struct Record {
  int64_t service;  // index into the dataset's services[]
  int64_t start;    // epoch seconds, half-open [start, end)
  int64_t end;
};

struct IntervalFile {
  int64_t services = 0;
  Month first_month;
  int64_t months = 0;
  std::vector<Record> interruptions;
  std::vector<Record> maintenance;  // every window here is wholly excluded (see RESULTS.md)
};

// ---- output shared by the three sides ------------------------------------------------------

// Per month: the sum over services of downtime seconds, and sum of downtime x (index + 1),
// which changes if any second moves from one service to another.
struct MonthTotal {
  std::string month;
  int64_t downtime = 0;
  int64_t checksum = 0;
};

inline void write_totals(const std::string& path, const std::vector<MonthTotal>& totals) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  for (const auto& t : totals) {
    std::fprintf(f, "%s %lld %lld\n", t.month.c_str(), static_cast<long long>(t.downtime),
                 static_cast<long long>(t.checksum));
  }
  std::fclose(f);
}

// One line per service-month with downtime: "YYYY-MM service_index seconds", month then
// service order.
struct DetailWriter {
  std::string text;
  void add(const std::string& month, int64_t service, int64_t seconds) {
    if (seconds == 0) return;
    text += month;
    text += ' ';
    text += std::to_string(service);
    text += ' ';
    text += std::to_string(seconds);
    text += '\n';
  }
  void write(const std::string& path) const {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
};

// ---- measuring ---------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Peak resident set size of this process so far, in KiB (Linux ru_maxrss).
inline long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

inline std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  std::string text(static_cast<std::size_t>(size > 0 ? size : 0), '\0');
  const std::size_t n = std::fread(text.data(), 1, text.size(), f);
  std::fclose(f);
  if (n != text.size()) throw std::runtime_error("short read of " + path);
  return text;
}

}  // namespace slmhub::bench
