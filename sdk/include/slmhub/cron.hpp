// Cron expressions for scheduled jobs (report drafting, deadline warnings, polling): the
// standard five fields with Vixie cron semantics, evaluated in a configured IANA zone so that
// "0 9 * * mon-fri" means 09:00 where the people are, across DST changes.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "slmhub/time.hpp"

namespace slmhub {

// A malformed expression; the message quotes the expression, names the field and the
// offending token, and says what the field allows.
struct CronError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// `minute hour day-of-month month day-of-week`, each `*`, a number or name, a range `a-b`, a
// step `*/n` or `a-b/n`, or a comma list of those. Months jan-dec and weekdays sun-sat are
// case-insensitive; 0 and 7 are both Sunday. As in Vixie cron, when both day fields are
// restricted (neither starts with `*`) a day matches if either matches.
class CronExpression {
 public:
  static CronExpression parse(std::string_view text);

  // The first matching minute strictly after `t`, matched against local time in `zone`. A
  // matching local time skipped by a DST gap fires once, when the gap ends; a repeated local
  // time fires once, at its first occurrence. nullopt if nothing matches within about five
  // years (e.g. `0 0 30 2 *`).
  std::optional<Instant> next_after(Instant t, const date::time_zone* zone) const;

  const std::string& text() const { return text_; }

 private:
  CronExpression() = default;

  bool day_matches(date::year_month_day day) const;
  std::optional<date::local_time<std::chrono::minutes>> next_local_match(
      date::local_time<std::chrono::minutes> from, date::local_days last_day) const;

  std::string text_;
  // Bit i set = value i allowed.
  uint64_t minutes_ = 0;
  uint32_t hours_ = 0;
  uint32_t days_of_month_ = 0;  // bits 1-31
  uint16_t months_ = 0;         // bits 1-12
  uint8_t days_of_week_ = 0;    // bits 0-6, 0 = Sunday
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
};

}  // namespace slmhub
