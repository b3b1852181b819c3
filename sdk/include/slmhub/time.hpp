// Time for service-level management: UTC instants and their ISO 8601 text form, calendar
// months and fiscal years in a service's IANA zone, half-open interval sets (the algebra
// behind availability figures), and business calendars (business hours and business-day
// deadlines). Every instant is UTC with whole-second precision; local time only exists to
// decide where a day, month or business hour begins and ends (DOMAIN.md §2).
#pragma once

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace slmhub {

// Whole seconds are the unit of every figure the product reports, so sub-second input is
// refused rather than silently truncated.
using Instant = std::chrono::sys_seconds;

// Instants as the store keeps them: integer seconds since the Unix epoch.
inline std::int64_t to_epoch(Instant t) { return t.time_since_epoch().count(); }
inline Instant from_epoch(std::int64_t seconds) { return Instant{std::chrono::seconds{seconds}}; }

// Bad time text or a bad time argument; the message quotes the input and says what is allowed.
struct TimeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// `YYYY-MM-DDTHH:MM:SS` (optionally `.000…`, zeros only) followed by `Z`, `z`, `±HH:MM` or
// `±HHMM`. An instant without an offset is an error: guessing a zone would shift deadlines.
Instant parse_instant(std::string_view text);
// `2026-11-03T14:00:00Z`.
std::string format_instant(Instant t);

// `YYYY-MM-DD`, validated (a date that does not exist is an error).
date::year_month_day parse_date(std::string_view text);
std::string format_date(date::year_month_day d);
// `YYYY-MM`.
date::year_month parse_month(std::string_view text);
std::string format_month(date::year_month m);

// The IANA zone `name` (e.g. `America/Chicago`); TimeError naming it if unknown.
const date::time_zone* find_zone(std::string_view name);

// A local wall-clock time as an instant. A time skipped by a DST gap maps to the instant the
// gap ends (02:30 on spring-forward day is the 03:00 instant); a repeated time maps to its
// earlier occurrence. This makes the mapping total and non-decreasing, which is what day,
// month and business-hour boundaries need.
Instant local_to_utc(date::local_seconds local, const date::time_zone* zone);
// The local calendar date of `t` in `zone`.
date::year_month_day local_date(Instant t, const date::time_zone* zone);

// Half-open [start, end). An interval whose end is not after its start is empty.
struct Interval {
  Instant start;
  Instant end;

  int64_t seconds() const { return empty() ? 0 : (end - start).count(); }
  bool empty() const { return end <= start; }
  bool operator==(const Interval&) const = default;
};

// A set of instants kept as sorted, disjoint, non-adjacent, non-empty intervals, so that equal
// sets compare equal and measure() never counts a second twice (overlapping interruptions
// count once). Set operations are linear merges.
class IntervalSet {
 public:
  IntervalSet() = default;
  IntervalSet(std::initializer_list<Interval> intervals);
  explicit IntervalSet(std::vector<Interval> intervals);

  void add(Interval interval);

  IntervalSet unite(const IntervalSet& other) const;
  IntervalSet intersect(const IntervalSet& other) const;
  IntervalSet subtract(const IntervalSet& other) const;

  // Total seconds.
  int64_t measure() const;
  // The first `seconds` seconds of the set in time order: all of it when `seconds` >=
  // measure(), nothing when `seconds` <= 0. (Consumes a budget such as maintenance hours.)
  IntervalSet earliest(int64_t seconds) const;
  bool contains(Instant t) const;

  const std::vector<Interval>& intervals() const { return intervals_; }
  bool empty() const { return intervals_.empty(); }
  bool operator==(const IntervalSet&) const = default;

 private:
  struct Normalized {};
  IntervalSet(Normalized, std::vector<Interval> intervals) : intervals_(std::move(intervals)) {}

  std::vector<Interval> intervals_;
};

// `[2026-11-01T05:00:00Z, 2026-12-01T06:00:00Z)`, for logs and test failure messages.
std::string to_string(const Interval& interval);
std::string to_string(const IntervalSet& set);

// The month as it is lived in `zone`: local midnight of the 1st to local midnight of the 1st of
// the next month (2026-11 in America/Chicago is 30 days and one hour).
Interval month_bounds(date::year_month month, const date::time_zone* zone);

// Opening hours of one weekday, in minutes since local midnight; 0 <= open < close <= 1440.
struct DayHours {
  int open_minute;
  int close_minute;

  bool operator==(const DayHours&) const = default;
};

// Business hours per weekday plus holidays, in one zone. Rules every business-day deadline and
// business-hours measurement (DOMAIN.md §2, §3).
class BusinessCalendar {
 public:
  // `hours` is indexed by date::weekday::c_encoding() (0 = Sunday); an empty entry is a
  // closed day. Throws TimeError for a null zone, invalid hours or an invalid holiday date.
  BusinessCalendar(std::string id, const date::time_zone* zone,
                   std::array<std::optional<DayHours>, 7> hours,
                   std::set<date::year_month_day> holidays);

  // The calendar used when the provider has none: Monday to Friday 08:00-17:00, no holidays,
  // id "default".
  static BusinessCalendar weekdays(const date::time_zone* zone);

  const std::string& id() const { return id_; }
  const date::time_zone* zone() const { return zone_; }
  const std::array<std::optional<DayHours>, 7>& hours() const { return hours_; }
  const std::set<date::year_month_day>& holidays() const { return holidays_; }

  // A weekday that has hours and is not a holiday.
  bool is_business_day(date::year_month_day day) const;

  // The real (UTC) open time of every business day, clipped to `within`. Local opening and
  // closing times are mapped with local_to_utc, so a DST change inside the open hours
  // lengthens or shortens that day by the real elapsed time.
  IntervalSet business_hours(Interval within) const;

  // The date reached by stepping forward from `day` one business day at a time, `n` times;
  // `day` itself never counts, n == 0 returns `day`. Throws TimeError (a
  // std::invalid_argument) for n < 0 or when the calendar has no business weekday.
  date::year_month_day add_business_days(date::year_month_day day, int n) const;

  // The instant the local day ends: the next local midnight.
  Instant end_of_day(date::year_month_day day) const;

  // "Within n business days after `from`": end of the local day reached by
  // add_business_days(local date of `from`, n).
  Instant business_days_after(Instant from, int n) const;

  // Notice of n business days (DOMAIN.md §3, §8): the local date of `start` is on or after
  // the local date of `announced` plus n business days. A Saturday start four business days
  // after a Monday announcement has four, not five.
  bool gives_notice(Instant announced, Instant start, int n) const;

  // The instant at which `amount` of business time has passed since `from` (a response
  // target "30 minutes in business time"): time outside the open hours does not count, so a
  // target running at closing time continues at the next opening. Zero returns `from`.
  // Throws TimeError for a negative amount or a calendar with no open hour in a year.
  Instant add_business_time(Instant from, std::chrono::seconds amount) const;

 private:
  std::string id_;
  const date::time_zone* zone_;
  std::array<std::optional<DayHours>, 7> hours_;
  std::set<date::year_month_day> holidays_;
};

// "Within n calendar days after `from`": the end of the local day that is n days after the
// local date of `from` (n may be negative, for reminders before a deadline).
Instant calendar_days_after(Instant from, int n, const date::time_zone* zone);

// A fiscal year, named by the calendar year in which it ends (with start month 9, Sep 2026 -
// Aug 2027 is FY 2027; with start month 1 it is the calendar year).
struct FiscalYear {
  int year;
  Interval bounds;

  bool operator==(const FiscalYear&) const = default;
};

// The fiscal year containing `t`, starting at local midnight on the 1st of `start_month`
// (1-12, else TimeError) in `zone`.
FiscalYear fiscal_year_of(Instant t, const date::time_zone* zone, int start_month);

}  // namespace slmhub
