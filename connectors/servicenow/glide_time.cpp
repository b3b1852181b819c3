// "yyyy-MM-dd HH:mm:ss" in UTC, the raw form of every ServiceNow date-time (GlideDateTime).
#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "client.hpp"
#include "slmhub/json.hpp"

namespace slmhub::servicenow {
namespace {

// The digits text[at, at + count) as a number; -1 unless they are all ASCII digits.
int digits(const std::string& text, std::size_t at, std::size_t count) {
  int value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::int64_t parse_glide_datetime(const std::string& text) {
  const auto invalid = [&](const std::string& why) {
    return std::invalid_argument("ServiceNow date-time " + quote_text(text) + " " + why +
                                 " (expected \"yyyy-MM-dd HH:mm:ss\" in UTC)");
  };
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' ||
      text[16] != ':') {
    throw invalid("is not in the form");
  }
  const int year = digits(text, 0, 4);
  const int month = digits(text, 5, 2);
  const int day = digits(text, 8, 2);
  const int hour = digits(text, 11, 2);
  const int minute = digits(text, 14, 2);
  const int second = digits(text, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
    throw invalid("is not in the form");
  }
  const date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                                 date::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) throw invalid("names a day that does not exist");
  if (hour > 23 || minute > 59 || second > 59) throw invalid("names a time that does not exist");
  const auto days = date::sys_days{ymd}.time_since_epoch();
  return std::chrono::duration_cast<std::chrono::seconds>(days).count() +
         std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second;
}

std::string format_glide_datetime(std::int64_t epoch_seconds) {
  // 0000-01-01 00:00:00 and 9999-12-31 23:59:59: what four year digits can hold.
  constexpr std::int64_t kFirst = -62167219200;
  constexpr std::int64_t kLast = 253402300799;
  if (epoch_seconds < kFirst || epoch_seconds > kLast) {
    throw std::invalid_argument("ServiceNow date-time: " + std::to_string(epoch_seconds) +
                                " seconds since 1970 is outside the years 0000 to 9999");
  }
  const date::sys_seconds t{std::chrono::seconds{epoch_seconds}};
  return date::format("%Y-%m-%d %H:%M:%S", t);
}

}  // namespace slmhub::servicenow
